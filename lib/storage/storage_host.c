/*
 * storage_host.c - a qz_storage backend whose methods are synchronous calls
 * into the JavaScript host (WebAssembly builds only).
 *
 * C cannot await a promise, so every import is synchronous. The host side
 * (bindings/wasm/host_storage.mjs) keeps a read-write transaction's writes in
 * a JS overlay and applies them at commit in one step: over a Durable
 * Object's SQLite storage that step is one ctx.storage.sql transactionSync,
 * so commit returns only once the rows are stored; over a JS Map it is a
 * plain apply (tests). Values larger than one row are split by the host into
 * rows of at most 2 MB.
 *
 * Byte transfer: get() asks the host for the value's length, allocates the
 * buffer here and has the host copy into it; the buffer lives until the
 * transaction ends (the lifetime lib/storage/storage.h promises). Scans run
 * a host cursor row by row, so a scan over 50,000 vectors never holds them
 * all in JS at once.
 *
 * The build is single-threaded: no lock is needed. A read-only transaction
 * reads the last committed state; none is held across a commit by the engine
 * in this build (no background thread), so that is the snapshot it began
 * with.
 *
 * Each backend is named by a host handle (an integer the JS side chose when
 * it registered its store); the imports receive it first.
 */
#include <emscripten.h>
#include <stdint.h>
#include <string.h>

#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"

/* ---- imports: forwarded to Module.qzHost (bindings/wasm/host_storage.mjs) ---- */

EM_JS(int, qzh_begin, (int h, int readonly), { return Module.qzHost.begin(h, readonly); });
EM_JS(int, qzh_get, (int h, int t, int table, const void *k, int klen),
      { return Module.qzHost.get(h, t, table, k, klen); });
EM_JS(void, qzh_take, (int h, void *dst), { Module.qzHost.take(h, dst); });
EM_JS(int, qzh_put, (int h, int t, int table, const void *k, int klen, const void *v, int vlen),
      { return Module.qzHost.put(h, t, table, k, klen, v, vlen); });
EM_JS(int, qzh_del, (int h, int t, int table, const void *k, int klen),
      { return Module.qzHost.del(h, t, table, k, klen); });
EM_JS(int, qzh_clear, (int h, int t, int table), { return Module.qzHost.clear(h, t, table); });
EM_JS(int, qzh_scan_open, (int h, int t, int table, const void *p, int plen),
      { return Module.qzHost.scanOpen(h, t, table, p, plen); });
EM_JS(int, qzh_scan_next, (int h, int c), { return Module.qzHost.scanNext(h, c); });
EM_JS(int, qzh_scan_vlen, (int h, int c), { return Module.qzHost.scanVlen(h, c); });
EM_JS(void, qzh_scan_copy, (int h, int c, void *kdst, void *vdst), { Module.qzHost.scanCopy(h, c, kdst, vdst); });
EM_JS(void, qzh_scan_close, (int h, int c), { Module.qzHost.scanClose(h, c); });
EM_JS(int, qzh_commit, (int h, int t), { return Module.qzHost.commit(h, t); });
EM_JS(void, qzh_abort, (int h, int t), { Module.qzHost.abort(h, t); });
EM_JS(void, qzh_close, (int h), { Module.qzHost.close(h); });

/* Status codes the host may return: negative qz_status values (QZ_EIO with
 * the host's message already handed to qz__host_error below). */

typedef struct hbuf {
    struct hbuf *next;
} hbuf;

struct qz_storage_txn {
    int id;
    hbuf *bufs; /* values handed out by get(), freed at the end */
};

typedef struct host {
    qz_storage s;
    int handle;
} host;

static int hnd(qz_storage *s) { return ((host *)s)->handle; }

static void txn_free(qz_storage_txn *t)
{
    for (hbuf *b = t->bufs; b;) {
        hbuf *n = b->next;
        qz__free(b);
        b = n;
    }
    qz__free(t);
}

static int status(int rc, const char *what)
{
    if (rc >= 0) return rc;
    if (rc == QZ_ENOTFOUND) return rc;
    if (rc == QZ_ENOMEM) return qz__err(rc, "host storage: out of memory in %s", what);
    return qz__err(rc, "host storage: %s failed (%s)", what, qz_strerror(rc));
}

static int h_begin(qz_storage *s, uint32_t flags, qz_storage_txn **out)
{
    *out = NULL;
    qz_storage_txn *t = qz__calloc(1, sizeof *t);
    if (!t) return qz__err(QZ_ENOMEM, "host storage: no memory for a transaction");
    int id = qzh_begin(hnd(s), (flags & QZ_TXN_READONLY) ? 1 : 0);
    if (id <= 0) {
        qz__free(t);
        return status(id ? id : QZ_EIO, "begin");
    }
    t->id = id;
    *out = t;
    return QZ_OK;
}

static int h_get(qz_storage *s, qz_storage_txn *t, uint32_t table, const void *key, size_t klen, const void **val,
                 size_t *vlen)
{
    int n = qzh_get(hnd(s), t->id, (int)table, key, (int)klen);
    if (n < 0) return status(n, "get");
    hbuf *b = qz__malloc(sizeof *b + (size_t)n + 1);
    if (!b) return qz__err(QZ_ENOMEM, "host storage: no memory for a value of %d bytes", n);
    qzh_take(hnd(s), b + 1);
    b->next = t->bufs;
    t->bufs = b;
    *val = b + 1;
    *vlen = (size_t)n;
    return QZ_OK;
}

static int h_put(qz_storage *s, qz_storage_txn *t, uint32_t table, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    if (klen == 0 || klen > 511) return qz__err(QZ_EINVAL, "host storage: key of %zu bytes (1..511)", klen);
    return status(qzh_put(hnd(s), t->id, (int)table, key, (int)klen, val, (int)vlen), "put");
}

static int h_del(qz_storage *s, qz_storage_txn *t, uint32_t table, const void *key, size_t klen)
{
    return status(qzh_del(hnd(s), t->id, (int)table, key, (int)klen), "del");
}

static int h_clear(qz_storage *s, qz_storage_txn *t, uint32_t table)
{
    return status(qzh_clear(hnd(s), t->id, (int)table), "clear");
}

static int h_scan(qz_storage *s, qz_storage_txn *t, uint32_t table, const void *prefix, size_t plen,
                  qz_storage_scan_fn fn, void *user)
{
    int h = hnd(s);
    int c = qzh_scan_open(h, t->id, (int)table, prefix, (int)plen);
    if (c <= 0) return status(c ? c : QZ_EIO, "scan");
    int rc = QZ_OK;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (;;) {
        int kl = qzh_scan_next(h, c);
        if (kl < 0) {
            if (kl != QZ_ENOTFOUND) rc = status(kl, "scan");
            break;
        }
        int vl = qzh_scan_vlen(h, c);
        size_t need = (size_t)kl + (size_t)vl + 1;
        if (need > cap) {
            uint8_t *nb = qz__malloc(need);
            if (!nb) {
                rc = qz__err(QZ_ENOMEM, "host storage: no memory for a scanned row of %zu bytes", need);
                break;
            }
            qz__free(buf);
            buf = nb;
            cap = need;
        }
        qzh_scan_copy(h, c, buf, buf + kl);
        rc = fn(buf, (size_t)kl, buf + kl, (size_t)vl, user);
        if (rc != 0) break;
    }
    qzh_scan_close(h, c);
    qz__free(buf);
    return rc;
}

static int h_commit(qz_storage *s, qz_storage_txn *t)
{
    int rc = qzh_commit(hnd(s), t->id);
    txn_free(t);
    return status(rc, "commit");
}

static void h_abort(qz_storage *s, qz_storage_txn *t)
{
    qzh_abort(hnd(s), t->id);
    txn_free(t);
}

/* A host commit is already as durable as the host makes it. */
static int h_sync(qz_storage *s) { return QZ_OK; }

static void h_close(qz_storage *s)
{
    qzh_close(hnd(s));
    qz__free(s);
}

int qz__storage_host_open(int handle, qz_storage **out)
{
    *out = NULL;
    host *h = qz__calloc(1, sizeof *h);
    if (!h) return qz__err(QZ_ENOMEM, "host storage: no memory");
    h->handle = handle;
    h->s.struct_size = sizeof h->s;
    h->s.user = h;
    h->s.begin = h_begin;
    h->s.get = h_get;
    h->s.put = h_put;
    h->s.del = h_del;
    h->s.scan = h_scan;
    h->s.clear = h_clear;
    h->s.commit = h_commit;
    h->s.abort = h_abort;
    h->s.sync = h_sync;
    h->s.close = h_close;
    *out = &h->s;
    return QZ_OK;
}
