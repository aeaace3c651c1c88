/* fault_storage.c - see fault_storage.h. */
#include "fault_storage.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define FAULT_MAGIC 0x46415553u /* "FAUS" */

typedef struct rule {
    int active, forever, code;
    uint64_t countdown; /* calls until the failing one: 1 = the next call */
} rule;

typedef struct fault_store {
    qz_storage pub; /* first: pub.user points back here as well */
    uint32_t magic;
    uint32_t flags;
    qz_storage *inner;
    pthread_mutex_t mu; /* guards everything below */
    uint64_t calls[FAULT_OP_COUNT], injected[FAULT_OP_COUNT];
    rule rules[FAULT_OP_COUNT];
    int read_errors;
    long open_txns;
} fault_store;

static const char *const op_names[FAULT_OP_COUNT] = {"begin", "get",    "put",   "del", "scan",
                                                     "clear", "commit", "abort", "sync"};

const char *fault_op_name(fault_op op)
{
    return op >= 0 && op < FAULT_OP_COUNT ? op_names[op] : "all";
}

static const char *code_name(int code)
{
    switch (code) {
    case QZ_EIO: return "QZ_EIO";
    case QZ_ENOMEM: return "QZ_ENOMEM";
    case QZ_ECORRUPT: return "QZ_ECORRUPT";
    case QZ_EFULL: return "QZ_EFULL";
    case QZ_EBUSY: return "QZ_EBUSY";
    case QZ_ENOTFOUND: return "QZ_ENOTFOUND";
    case QZ_EINVAL: return "QZ_EINVAL";
    default: return qz_strerror(code);
    }
}

static fault_store *F(qz_storage *s) { return (fault_store *)s->user; }

/* Count a call of @p op; return 0 to pass it through, or the code to fail it with. */
static int enter(fault_store *f, fault_op op)
{
    pthread_mutex_lock(&f->mu);
    uint64_t n = ++f->calls[op];
    int code = 0;
    if (f->read_errors && (op == FAULT_GET || op == FAULT_SCAN)) {
        code = QZ_EIO;
    } else {
        rule *r = &f->rules[op];
        if (r->active) {
            if (r->countdown > 1) {
                r->countdown--;
            } else {
                code = r->code;
                if (!r->forever) r->active = 0;
            }
        }
    }
    if (code) f->injected[op]++;
    pthread_mutex_unlock(&f->mu);
    if (code)
        qz__err(code, "fault storage: injected failure of %s call %llu (%s)", op_names[op], (unsigned long long)n,
                code_name(code));
    return code;
}

static void add_open(fault_store *f, long d)
{
    pthread_mutex_lock(&f->mu);
    f->open_txns += d;
    pthread_mutex_unlock(&f->mu);
}

static int f_begin(qz_storage *s, uint32_t flags, qz_storage_txn **txn)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_BEGIN);
    if (code) {
        if (txn) *txn = NULL;
        return code;
    }
    int rc = f->inner->begin(f->inner, flags, txn);
    if (rc == QZ_OK) add_open(f, 1);
    return rc;
}

static int f_get(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen, const void **val,
                 size_t *vlen)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_GET);
    if (code) return code;
    return f->inner->get(f->inner, txn, table, key, klen, val, vlen);
}

static int f_put(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_PUT);
    if (code) return code;
    return f->inner->put(f->inner, txn, table, key, klen, val, vlen);
}

static int f_del(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_DEL);
    if (code) return code;
    return f->inner->del(f->inner, txn, table, key, klen);
}

static int f_scan(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *prefix, size_t plen,
                  qz_storage_scan_fn fn, void *user)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_SCAN);
    if (code) return code;
    return f->inner->scan(f->inner, txn, table, prefix, plen, fn, user);
}

static int f_clear(qz_storage *s, qz_storage_txn *txn, uint32_t table)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_CLEAR);
    if (code) return code;
    return f->inner->clear(f->inner, txn, table);
}

static int f_commit(qz_storage *s, qz_storage_txn *txn)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_COMMIT);
    add_open(f, -1); /* ended either way */
    if (code) {
        /* storage.h: on failure nothing of the transaction remains and it ends. */
        f->inner->abort(f->inner, txn);
        return code;
    }
    return f->inner->commit(f->inner, txn);
}

static void f_abort(qz_storage *s, qz_storage_txn *txn)
{
    fault_store *f = F(s);
    enter(f, FAULT_ABORT); /* counted; abort never fails (no rule can be set on it) */
    add_open(f, -1);
    f->inner->abort(f->inner, txn);
}

static int f_sync(qz_storage *s)
{
    fault_store *f = F(s);
    int code = enter(f, FAULT_SYNC);
    if (code) return code;
    return f->inner->sync(f->inner);
}

static void f_close(qz_storage *s)
{
    fault_store *f = F(s);
    if (f->flags & FAULT_STORAGE_OWN) f->inner->close(f->inner);
    pthread_mutex_destroy(&f->mu);
    f->magic = 0;
    free(f);
}

int fault_storage_wrap(qz_storage *inner, uint32_t flags, qz_storage **out)
{
    if (!out) return qz__err(QZ_EINVAL, "fault storage: out is NULL");
    *out = NULL;
    if (!inner) return qz__err(QZ_EINVAL, "fault storage: no backend to wrap");
    if (flags & ~FAULT_STORAGE_OWN) return qz__err(QZ_EINVAL, "fault storage: unknown flags 0x%x", flags);
    if (inner->struct_size < sizeof(qz_storage) || !inner->begin || !inner->get || !inner->put || !inner->del ||
        !inner->scan || !inner->clear || !inner->commit || !inner->abort || !inner->sync || !inner->close)
        return qz__err(QZ_EINVAL, "fault storage: the wrapped backend lacks a method");
    fault_store *f = calloc(1, sizeof *f);
    if (!f) return qz__err(QZ_ENOMEM, "fault storage: out of memory");
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        return qz__err(QZ_ENOMEM, "fault storage: cannot create a mutex");
    }
    f->magic = FAULT_MAGIC;
    f->flags = flags;
    f->inner = inner;
    f->pub.struct_size = sizeof f->pub;
    f->pub.flags = inner->flags;
    f->pub.user = f;
    f->pub.begin = f_begin;
    f->pub.get = f_get;
    f->pub.put = f_put;
    f->pub.del = f_del;
    f->pub.scan = f_scan;
    f->pub.clear = f_clear;
    f->pub.commit = f_commit;
    f->pub.abort = f_abort;
    f->pub.sync = f_sync;
    f->pub.close = f_close;
    *out = &f->pub;
    return QZ_OK;
}

int fault_storage_is(const qz_storage *s)
{
    return s && s->begin == f_begin && s->user && ((const fault_store *)s->user)->magic == FAULT_MAGIC;
}

static fault_store *must(qz_storage *s)
{
    if (!fault_storage_is(s)) abort(); /* a test bug: not a fault storage */
    return F(s);
}

qz_storage *fault_storage_inner(qz_storage *s) { return must(s)->inner; }

static void set_rule(qz_storage *s, fault_op op, uint64_t n, int code, int forever)
{
    fault_store *f = must(s);
    if (op < 0 || op >= FAULT_OP_COUNT || op == FAULT_ABORT || code >= 0) abort(); /* a test bug */
    pthread_mutex_lock(&f->mu);
    f->rules[op] = (rule){1, forever, code, n ? n : 1};
    pthread_mutex_unlock(&f->mu);
}

void fault_storage_fail_nth(qz_storage *s, fault_op op, uint64_t n, int code) { set_rule(s, op, n, code, 0); }

void fault_storage_fail_from(qz_storage *s, fault_op op, uint64_t n, int code) { set_rule(s, op, n, code, 1); }

void fault_storage_heal(qz_storage *s, fault_op op)
{
    fault_store *f = must(s);
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < FAULT_OP_COUNT; i++)
        if (op == FAULT_ALL || op == i) f->rules[i].active = 0;
    pthread_mutex_unlock(&f->mu);
}

void fault_storage_read_errors(qz_storage *s, int on)
{
    fault_store *f = must(s);
    pthread_mutex_lock(&f->mu);
    f->read_errors = on != 0;
    pthread_mutex_unlock(&f->mu);
}

static uint64_t sum(fault_store *f, const uint64_t *v, fault_op op)
{
    uint64_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < FAULT_OP_COUNT; i++)
        if (op == FAULT_ALL || op == i) n += v[i];
    pthread_mutex_unlock(&f->mu);
    return n;
}

uint64_t fault_storage_calls(qz_storage *s, fault_op op)
{
    fault_store *f = must(s);
    return sum(f, f->calls, op);
}

uint64_t fault_storage_injected(qz_storage *s, fault_op op)
{
    fault_store *f = must(s);
    return sum(f, f->injected, op);
}

long fault_storage_open_txns(qz_storage *s)
{
    fault_store *f = must(s);
    pthread_mutex_lock(&f->mu);
    long n = f->open_txns;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void fault_storage_reset_counts(qz_storage *s, fault_op op)
{
    fault_store *f = must(s);
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < FAULT_OP_COUNT; i++)
        if (op == FAULT_ALL || op == i) f->calls[i] = f->injected[i] = 0;
    pthread_mutex_unlock(&f->mu);
}
