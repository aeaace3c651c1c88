/*
 * storage_lmdb.c - storage backend over an LMDB environment.
 *
 * One named LMDB database per qz_storage_table ("meta", "vectors", "graph",
 * "kv") in an environment that is the directory itself (no MDB_NOSUBDIR).
 * The environment is opened with MDB_NOTLS, so a read transaction is tied to
 * its MDB_txn object rather than to a thread and may end on another thread.
 * This file is the only one of the library that knows LMDB's file names.
 *
 * Map growth (see also storage.h): LMDB fails a write with MDB_MAP_FULL when
 * the memory map is exhausted, and the map may only be resized while no
 * transaction of the process is open. So:
 * - every transaction is counted in `active`; a resize sets `resizing`,
 *   which holds new transactions back, and waits for `active` to reach 0;
 * - a write transaction first grows the map when more than 3/4 of it is in
 *   use, and records its put/del/clear operations (copies of key and value)
 *   so that an MDB_MAP_FULL from any of them or from the commit is handled by
 *   aborting, doubling the map and replaying the record in a fresh
 *   transaction. The caller never sees MDB_MAP_FULL; it only gets QZ_EFULL
 *   when the map cannot grow (address space, QZ__LMDB_MAX_MAP).
 * - a read-only process that finds the map grown by the writer process
 *   (MDB_MAP_RESIZED) adopts the new size the same way.
 * The write transaction holds `wmu` for its whole life, including a replay,
 * so no other writer of this process can slip in between.
 *
 * Damaged files. LMDB trusts data.mdb: it follows page numbers and in-page
 * offsets as it finds them, and liblmdb is built with assertions, which
 * abort() the process. This backend therefore
 * - checks what it cheaply can before LMDB relies on it: the two meta pages
 *   (check_metas), the records of the four tables (open_tables), and that no
 *   page in use lies past the end of the file (check_tail, which reads the
 *   free-page lists);
 * - runs every LMDB call that may read pages inside a guard (LM_GUARDED): a
 *   thread-local sigsetjmp point to which the assertion callback and the
 *   SIGBUS/SIGSEGV handler jump back; the call then fails with QZ_ECORRUPT
 *   and the backend is poisoned (every later call fails the same way);
 * - checks that every key and value it hands out lies inside one page, or
 *   for an overflow value inside the file (check_span).
 * See "Fault guard" below for why jumping out of liblmdb is sound and what
 * it leaves behind.
 */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

#define QZ__LMDB_MAX_MAP ((uint64_t)1 << 40) /* 1 TiB of address space at most */
#define QZ__LMDB_MAXREADERS 1024u

static const char *const table_names[QZ_TABLE_COUNT] = {"meta", "vectors", "graph", "kv"};

#define LM_DATA_FILE "data.mdb"

/* ---- LMDB's on-disk layout (data format 1 of liblmdb 0.9) ----------------
 * Read here only to check it before liblmdb trusts it. pgno_t and txnid_t
 * are size_t; the file is in native byte order and layout.
 *   page:    pgno, pad u16, flags u16, lower u16, upper u16   (LM_PAGEHDR)
 *   meta:    magic u32, version u32, address, mapsize, dbs[2] (free, main),
 *            last_pg, txnid; at LM_PAGEHDR in pages 0 and 1
 *   MDB_db:  pad u32 (page size in the free db of a meta), flags u16,
 *            depth u16, branch, leaf, overflow, entries, root
 * A free-page record: key = txnid, value = IDL {n, pgno[n] descending}. */
#define LM_S sizeof(size_t)
#define LM_PAGEHDR (LM_S + 8)
#define LM_DBREC (8 + 5 * LM_S)
#define LM_DB_PAD 0
#define LM_DB_FLAGS 4
#define LM_DB_ROOT (8 + 4 * LM_S)
#define LM_META_MAGIC 0
#define LM_META_VERSION 4
#define LM_META_FREE (8 + 2 * LM_S)
#define LM_META_MAIN (LM_META_FREE + LM_DBREC)
#define LM_META_LAST (LM_META_MAIN + LM_DBREC)
#define LM_META_TXNID (LM_META_LAST + LM_S)
#define LM_META_SIZE (LM_META_TXNID + LM_S)
#define LM_MAGIC 0xBEEFC0DEu
#define LM_DATA_VERSION 1u
#define LM_P_META 0x08u
#define LM_P_INVALID ((size_t)~(size_t)0)
#define LM_PERSISTENT_FLAGS 0x7eu /* MDB_REVERSEKEY..MDB_REVERSEDUP */
#define LM_FREE_DBI 0 /* the free-page database, always handle 0 */
#define LM_MAIN_DBI 1 /* the main database, always handle 1 */
#define LM_MIN_PSIZE 512u
#define LM_MAX_PSIZE 0x8000u

/* A call of LMDB interrupted by the guard (not an LMDB or errno code). */
#define LM_TRIPPED (-31999)

enum { OP_PUT = 1, OP_DEL = 2, OP_CLEAR = 3 };

/* A recorded write operation, replayed after a map resize. */
typedef struct lm_op {
    struct lm_op *next;
    uint32_t kind, table;
    size_t klen, vlen;
    unsigned char data[]; /* key, then value */
} lm_op;

/* The operations of a write transaction live in chunks of whole pages from
 * the system (qz__pages_alloc), returned at its end. With one malloc per
 * operation they were freed between the dirty pages LMDB allocates in the
 * same transaction and keeps for reuse (its free-page cache never shrinks),
 * and the holes stayed resident: measured on GloVe 190k int8 with the
 * originals in storage, 7.4 MB that malloc_trim() could give back. */
#define LM_CHUNK_BYTES ((size_t)1 << 20)
typedef struct lm_chunk {
    struct lm_chunk *next;
    size_t used, cap; /* cap: bytes of the whole mapping */
    _Alignas(16) unsigned char data[];
} lm_chunk;

typedef struct lm_store {
    qz_storage base; /* first: a qz_storage * is an lm_store * */
    MDB_env *env;
    MDB_dbi dbi[QZ_TABLE_COUNT];
    int have[QZ_TABLE_COUNT]; /* read-only: the table exists */
    uint32_t flags;
    unsigned psize;
    unsigned maxkey;
    pthread_mutex_t wmu; /* held by the open write transaction */
    pthread_mutex_t mu;  /* guards active, resizing, the map range and the poison message */
    pthread_cond_t cv;
    int active;
    int resizing;
    char *dir;
    /* The data map, for the fault handler and check_span; changes only
     * while no transaction is open (map resize). */
    uintptr_t map_lo;
    size_t map_len;
    _Atomic uint64_t file_size; /* bytes of data.mdb last seen (the file only grows) */
    dev_t dev;                  /* data.mdb, for the registry of leaked environments */
    ino_t ino;
    /* Damage: once poisoned, every call fails with poison_msg. Wedged: the
     * damage interrupted LMDB while it was changing its state, so the
     * environment is leaked on purpose (see "Fault guard"). */
    atomic_int poisoned;
    atomic_int wedged;
    char poison_msg[512];
} lm_store;

struct qz_storage_txn {
    MDB_txn *txn; /* NULL after a failed resize or after the guard tripped in a write */
    uint32_t flags;
    int failed;  /* a write failed: only abort/commit (which fails) remain */
    int corrupt; /* LMDB reported damage: its MDB_BAD_TXN afterwards means damage too */
    int leaked;  /* the guard tripped inside a modifying LMDB call: txn is abandoned */
    lm_op *ops, **tail;
    lm_chunk *chunks; /* where ops live, newest first */
};

/* ---- small helpers ------------------------------------------------------ */

/* Room for an operation of @p bytes in t's chunks; NULL when out of memory. */
static lm_op *op_alloc(qz_storage_txn *t, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    lm_chunk *c = t->chunks;
    if (!c || c->cap - offsetof(lm_chunk, data) - c->used < bytes) {
        if (bytes > SIZE_MAX - offsetof(lm_chunk, data) - LM_CHUNK_BYTES) return NULL;
        size_t cap = offsetof(lm_chunk, data) + bytes;
        cap = cap < LM_CHUNK_BYTES ? LM_CHUNK_BYTES : (cap + LM_CHUNK_BYTES - 1) & ~(LM_CHUNK_BYTES - 1);
        c = qz__pages_alloc(cap);
        if (!c) return NULL;
        c->next = t->chunks;
        c->used = 0;
        c->cap = cap;
        t->chunks = c;
    }
    lm_op *op = (lm_op *)(void *)(c->data + c->used);
    c->used += bytes;
    return op;
}


static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = qz__malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* dir + "/" + name in a fresh allocation. */
static char *path_of(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = qz__malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static size_t rd_size(const unsigned char *p)
{
    size_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t rd_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint16_t rd_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static const char *tname(int table) { return table >= 0 && table < QZ_TABLE_COUNT ? table_names[table] : "(main)"; }

/* ---- errors ----------------------------------------------------------- */

static const char *rc_name(int rc)
{
    switch (rc) {
    case MDB_KEYEXIST: return "MDB_KEYEXIST";
    case MDB_NOTFOUND: return "MDB_NOTFOUND";
    case MDB_PAGE_NOTFOUND: return "MDB_PAGE_NOTFOUND";
    case MDB_CORRUPTED: return "MDB_CORRUPTED";
    case MDB_PANIC: return "MDB_PANIC";
    case MDB_VERSION_MISMATCH: return "MDB_VERSION_MISMATCH";
    case MDB_INVALID: return "MDB_INVALID";
    case MDB_MAP_FULL: return "MDB_MAP_FULL";
    case MDB_DBS_FULL: return "MDB_DBS_FULL";
    case MDB_READERS_FULL: return "MDB_READERS_FULL";
    case MDB_TLS_FULL: return "MDB_TLS_FULL";
    case MDB_TXN_FULL: return "MDB_TXN_FULL";
    case MDB_CURSOR_FULL: return "MDB_CURSOR_FULL";
    case MDB_PAGE_FULL: return "MDB_PAGE_FULL";
    case MDB_MAP_RESIZED: return "MDB_MAP_RESIZED";
    case MDB_INCOMPATIBLE: return "MDB_INCOMPATIBLE";
    case MDB_BAD_RSLOT: return "MDB_BAD_RSLOT";
    case MDB_BAD_TXN: return "MDB_BAD_TXN";
    case MDB_BAD_VALSIZE: return "MDB_BAD_VALSIZE";
    case MDB_BAD_DBI: return "MDB_BAD_DBI";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EBUSY: return "EBUSY";
    default: return NULL;
    }
}

/* LMDB codes that mean the file's pages are not what LMDB wrote. Our trees
 * are a few levels deep, so a cursor stack overflow (MDB_CURSOR_FULL, 32
 * levels) can only come from a page that points back up the tree. */
static int rc_is_damage(int rc)
{
    return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_INCOMPATIBLE ||
           rc == MDB_CURSOR_FULL || rc == MDB_PAGE_FULL;
}

static int rc_code(int rc)
{
    if (rc_is_damage(rc)) return QZ_ECORRUPT;
    switch (rc) {
    case MDB_NOTFOUND: return QZ_ENOTFOUND;
    case MDB_VERSION_MISMATCH: return QZ_EVERSION;
    case MDB_MAP_FULL:
    case MDB_DBS_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return QZ_EFULL;
    case MDB_READERS_FULL:
    case EAGAIN:
    case EBUSY: return QZ_EBUSY;
    case ENOMEM: return QZ_ENOMEM;
    case EINVAL:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI: return QZ_EINVAL;
    default: return QZ_EIO;
    }
}

/* Set "lmdb: MDB_X while <what> (<lmdb text>)[: data.mdb is damaged]" and
 * return the qz code. */
static int lm_fail(int rc, const char *fmt, ...) QZ__PRINTF(2, 3);
static int lm_fail(int rc, const char *fmt, ...)
{
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *name = rc_name(rc);
    char num[32];
    if (!name) {
        snprintf(num, sizeof num, "error %d", rc);
        name = num;
    }
    if (rc_is_damage(rc))
        return qz__err(QZ_ECORRUPT, "lmdb: %s while %s (%s): " LM_DATA_FILE " is damaged", name, what,
                       mdb_strerror(rc));
    if (rc == MDB_VERSION_MISMATCH)
        return qz__err(QZ_EVERSION, "lmdb: %s while %s (%s): " LM_DATA_FILE " has another LMDB data format than "
                       "this liblmdb (%d.%d.%d) reads", name, what, mdb_strerror(rc), MDB_VERSION_MAJOR,
                       MDB_VERSION_MINOR, MDB_VERSION_PATCH);
    return qz__err(rc_code(rc), "lmdb: %s while %s (%s)", name, what, mdb_strerror(rc));
}

/* An LMDB call of transaction t failed with rc while doing <what>. */
static int txn_fail(qz_storage_txn *t, int rc, const char *fmt, ...) QZ__PRINTF(3, 4);
static int txn_fail(qz_storage_txn *t, int rc, const char *fmt, ...)
{
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc_is_damage(rc)) t->corrupt = 1;
    if (rc == MDB_BAD_TXN && t->corrupt)
        return qz__err(QZ_ECORRUPT, "lmdb: MDB_BAD_TXN while %s: the transaction already found " LM_DATA_FILE
                       " damaged", what);
    return lm_fail(rc, "%s", what);
}

/* ---- Fault guard ----------------------------------------------------------
 *
 * LM_GUARDED(s, table, modifying, rc, call) runs one LMDB call with a
 * sigsetjmp point recorded in the thread-local lm_tl_guard. Two things jump
 * back to it with siglongjmp:
 *   - lm_assert_cb, installed with mdb_env_set_assert(): liblmdb calls it
 *     from mdb_assert_fail() right before abort(), so not returning from it
 *     is the only way not to abort;
 *   - lm_fault, the process's SIGBUS and SIGSEGV handler, for a fault raised
 *     while a guard is active on the faulting thread: SIGBUS from touching a
 *     mapped page past the end of data.mdb, SIGSEGV from an offset read in a
 *     damaged page that leads outside the map. Faults elsewhere, or sent with
 *     kill(), go to the handler that was installed before (or the default
 *     action).
 * The call then yields LM_TRIPPED and guard_tripped() poisons the backend.
 *
 * Why abandoning liblmdb's stack frames is sound, by kind of call (the g_*
 * wrappers below say which kind each is):
 *   - Reading calls (mdb_get, mdb_cursor_get, mdb_cursor_open, mdb_stat,
 *     mdb_dbi_open without MDB_CREATE, mdb_txn_begin of a read-only
 *     transaction): they change nothing shared. In a read-only transaction
 *     they only move the cursor they were given (or one on their own
 *     stack); in a write transaction they only read pages (a dirty heap copy
 *     or the map) and the dirty list. They hold no lock while they read
 *     pages (the reader-table mutex is held only around the slot
 *     bookkeeping of mdb_txn_begin, which reads no page), and they allocate
 *     only before they read (mdb_cursor_open's cursor, which then leaks).
 *     So the environment, the transaction and other threads' transactions
 *     stay consistent: the transaction is still ended with mdb_txn_abort()
 *     (for a read-only one that only marks its reader slot free in
 *     lock.mdb), a cursor still closed with mdb_cursor_close(), and close
 *     still calls mdb_env_close(). Any faulting address is accepted: no
 *     malloc() or lock can be in progress, so the fault is liblmdb (or
 *     memcmp/memcpy on its behalf) following a damaged offset or size.
 *   - Modifying calls (mdb_put, mdb_del, mdb_drop, mdb_txn_commit, mdb_txn_begin
 *     of a write transaction, mdb_dbi_open with MDB_CREATE): liblmdb links
 *     cursors that live in its stack frames into txn->mt_cursors while they
 *     work (mdb_put, WITH_CURSOR_TRACKING), may be between two steps of its
 *     page lists, and the transaction holds the writer mutex in lock.mdb.
 *     mdb_txn_abort() would walk and free() those dead stack cursors, so the
 *     MDB_txn is abandoned (never passed to liblmdb again) and the
 *     environment is "wedged": close does not call mdb_env_close() but leaks
 *     the MDB_env (its two mappings, its file descriptors and its heap
 *     blocks, kept reachable in lm_wedged) until the process exits. Keeping
 *     lock.mdb mapped is required, not just prudent: the writer mutex is a
 *     robust process-shared pthread mutex, still locked, and linked into the
 *     locking thread's robust-mutex list, whose links live inside the
 *     mutexes; unmapping it would leave glibc (at the thread's next robust
 *     lock or unlock) and the kernel (at thread exit) following a pointer
 *     into unmapped memory. State left in lock.mdb: the writer mutex stays
 *     owned by that thread; the last committed txnid (mti_txnid) is the one
 *     before the abandoned transaction, which never reached its meta page (a
 *     commit reads mapped pages only while it updates the table records and
 *     the free-page list, before it writes anything, so a trip in a commit
 *     commits nothing); the reader slots
 *     are untouched (writers have none; read-only transactions release
 *     theirs as usual). Another process that wants to write blocks until
 *     the owning thread or process ends; then it gets EOWNERDEAD and liblmdb
 *     recovers (mdb_mutex_failed). While the database is open, the journal's
 *     LOCK file keeps other writer processes out anyway. Readers, here and
 *     elsewhere, are not affected. A second open of the same data.mdb in
 *     this process would share or re-initialise that lock state (fcntl locks
 *     are per process), so it is refused with QZ_EBUSY while the leaked
 *     environment lives. In a modifying call only faults inside the data map
 *     (or just past it) are accepted: anywhere else the fault could be
 *     inside malloc(), whose lock a jump would leave held; it is passed on
 *     and kills the process as it would have without the guard.
 * Limits:
 *   - liblmdb is not async-signal-safe; the jump is sound because of what
 *     the interrupted code is (above), not in general. An assertion or fault
 *     outside any guarded call still aborts or kills.
 *   - A write transaction works on heap copies of the pages it modifies. A
 *     damaged in-page offset or size in such a page (mp_upper, a node size)
 *     can make liblmdb write past its heap copy before any check fires; that
 *     corrupts the heap and cannot be made sound here. Every put and del
 *     first descends to its key with a reading call, and the open checks the
 *     meta pages, the table records and the free-page lists, so damage on
 *     those paths is found before liblmdb modifies anything; damage that
 *     only a page split, merge or rebalance reads (a sibling, the parent's
 *     other separators) is not.
 *   - A damaged page that still looks valid (a flipped byte inside a key or
 *     value that keeps the keys in order, a page number pointing at another
 *     valid page of the same table) is not detected here; the layers above
 *     checksum their records.
 *   - The handlers are process-wide. They are (re)installed at every open,
 *     chaining to whatever was installed before; a handler the application
 *     installs later replaces them, and then damage crashes as before.
 */
typedef struct lm_guard {
    sigjmp_buf jb;
    lm_store *s;
    struct lm_guard *prev;
    int table;
    int modifying;
} lm_guard;

/* What interrupted the call: written by the callback/handler before the
 * jump, read after it on the same thread. */
typedef struct lm_trip {
    int signo; /* 0: an assertion */
    void *addr;
    char text[256];
} lm_trip;

/* The handler reads lm_tl_guard on every fault of any thread: initial-exec
 * keeps that access free of a lazy TLS allocation (dlopen'ed library).
 * lm_tl_trip is only written by a handler on a thread inside a guarded
 * call, which touched it before (LM_GUARDED), so it is allocated by then. */
#if defined(__GNUC__) && defined(__ELF__)
#define LM_TLS_IE __attribute__((tls_model("initial-exec")))
#else
#define LM_TLS_IE
#endif
static _Thread_local lm_guard *lm_tl_guard LM_TLS_IE;
static _Thread_local lm_trip lm_tl_trip;

#define LM_GUARDED(gs, gtable, gmod, rc, call)                                                                    \
    do {                                                                                                          \
        lm_guard lm_g_;                                                                                           \
        lm_g_.s = (gs);                                                                                           \
        lm_g_.table = (gtable);                                                                                   \
        lm_g_.modifying = (gmod);                                                                                 \
        lm_g_.prev = lm_tl_guard;                                                                                 \
        lm_tl_trip.signo = -1;                                                                                    \
        if (sigsetjmp(lm_g_.jb, 0) == 0) {                                                                        \
            lm_tl_guard = &lm_g_;                                                                                 \
            (rc) = (call);                                                                                        \
            lm_tl_guard = lm_g_.prev;                                                                             \
        } else {                                                                                                  \
            lm_tl_guard = lm_g_.prev;                                                                             \
            (rc) = LM_TRIPPED;                                                                                    \
        }                                                                                                         \
    } while (0)

static void lm_assert_cb(MDB_env *env, const char *msg)
{
    lm_guard *g = lm_tl_guard;
    if (!g || !g->s || g->s->env != env) return; /* not inside a guarded call: liblmdb aborts */
    lm_tl_trip.signo = 0;
    lm_tl_trip.addr = NULL;
    snprintf(lm_tl_trip.text, sizeof lm_tl_trip.text, "%s", msg ? msg : "?");
    siglongjmp(g->jb, 1);
}

/* The actions that were installed before ours, to pass foreign faults on. */
static struct sigaction lm_prev_bus, lm_prev_segv;
static pthread_mutex_t lm_sig_mu = PTHREAD_MUTEX_INITIALIZER;

/* Slack past the end of the map accepted in modifying calls: LMDB's wild
 * reads from a damaged 16-bit offset or key size stay within 128 KiB of a
 * page inside the map. */
#define LM_FAULT_SLACK ((uintptr_t)1 << 20)

static void lm_fault(int sig, siginfo_t *si, void *uc);

/* An action that runs lm_fault, also when someone saved it with signal()
 * and put it back without SA_SIGINFO. */
static int lm_is_ours(const struct sigaction *a)
{
    if (a->sa_flags & SA_SIGINFO) return a->sa_sigaction == lm_fault;
    void (*h)(int) = a->sa_handler;
    void (*f)(int, siginfo_t *, void *) = lm_fault;
    return sizeof h == sizeof f && memcmp(&h, &f, sizeof h) == 0;
}

static void lm_fault(int sig, siginfo_t *si, void *uc)
{
    lm_guard *g = lm_tl_guard;
    if (g && si && si->si_code > 0) {
        uintptr_t a = (uintptr_t)si->si_addr;
        int ours = !g->modifying || (g->s && g->s->map_len && a >= g->s->map_lo &&
                                     a - g->s->map_lo < g->s->map_len + LM_FAULT_SLACK);
        if (ours) {
            lm_tl_trip.signo = sig;
            lm_tl_trip.addr = si->si_addr;
            lm_tl_trip.text[0] = '\0';
            siglongjmp(g->jb, 1);
        }
    }
    struct sigaction *p = sig == SIGBUS ? &lm_prev_bus : &lm_prev_segv;
    if ((p->sa_flags & SA_SIGINFO) && p->sa_sigaction && !lm_is_ours(p)) {
        p->sa_sigaction(sig, si, uc);
        return;
    }
    if (!(p->sa_flags & SA_SIGINFO) && p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN && !lm_is_ours(p)) {
        p->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return, so that the faulting
     * instruction runs again and the process dies of the signal. */
    struct sigaction d;
    memset(&d, 0, sizeof d);
    d.sa_handler = SIG_DFL;
    sigemptyset(&d.sa_mask);
    sigaction(sig, &d, NULL);
    if (!si || si->si_code <= 0) raise(sig);
}

/* Install lm_fault for SIGBUS and SIGSEGV unless it is the current handler. */
static void lm_install_fault_handlers(void)
{
    static const int sigs[2] = {SIGBUS, SIGSEGV};
    pthread_mutex_lock(&lm_sig_mu);
    for (int i = 0; i < 2; i++) {
        struct sigaction cur, sa;
        if (sigaction(sigs[i], NULL, &cur) != 0) continue;
        if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == lm_fault) continue;
        if (!lm_is_ours(&cur)) *(i == 0 ? &lm_prev_bus : &lm_prev_segv) = cur; /* else keep the one before */
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = lm_fault;
        /* NODEFER: siglongjmp(jb, savemask = 0) leaves the mask alone, so
         * the signal must not be blocked while the handler runs. */
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    pthread_mutex_unlock(&lm_sig_mu);
}

/* The guarded LMDB calls: each in its own small function, so that no local
 * of a caller lives across a sigsetjmp. R = reading, M = modifying. */
static int g_txn_begin(lm_store *s, int ro, MDB_txn **txn)
{
    int rc;
    LM_GUARDED(s, -1, !ro, rc, mdb_txn_begin(s->env, NULL, ro ? MDB_RDONLY : 0, txn));
    return rc;
}

static int g_commit(lm_store *s, MDB_txn *txn) /* M (a read-only txn's commit reads nothing) */
{
    int rc;
    LM_GUARDED(s, -1, 1, rc, mdb_txn_commit(txn));
    return rc;
}

static int g_get(lm_store *s, int table, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v) /* R */
{
    int rc;
    LM_GUARDED(s, table, 0, rc, mdb_get(txn, dbi, k, v));
    return rc;
}

static int g_put(lm_store *s, int table, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v) /* M */
{
    int rc;
    LM_GUARDED(s, table, 1, rc, mdb_put(txn, dbi, k, v, 0));
    return rc;
}

static int g_del(lm_store *s, int table, MDB_txn *txn, MDB_dbi dbi, MDB_val *k) /* M */
{
    int rc;
    LM_GUARDED(s, table, 1, rc, mdb_del(txn, dbi, k, NULL));
    return rc;
}

static int g_drop(lm_store *s, int table, MDB_txn *txn, MDB_dbi dbi) /* M */
{
    int rc;
    LM_GUARDED(s, table, 1, rc, mdb_drop(txn, dbi, 0));
    return rc;
}

static int g_cursor_open(lm_store *s, int table, MDB_txn *txn, MDB_dbi dbi, MDB_cursor **c) /* R */
{
    int rc;
    LM_GUARDED(s, table, 0, rc, mdb_cursor_open(txn, dbi, c));
    return rc;
}

static int g_cursor_get(lm_store *s, int table, MDB_cursor *c, MDB_val *k, MDB_val *v, MDB_cursor_op op) /* R */
{
    int rc;
    LM_GUARDED(s, table, 0, rc, mdb_cursor_get(c, k, v, op));
    return rc;
}

static int g_dbi_open(lm_store *s, int table, MDB_txn *txn, unsigned flags, MDB_dbi *dbi) /* R, M with MDB_CREATE */
{
    int rc;
    LM_GUARDED(s, table, (flags & MDB_CREATE) != 0, rc, mdb_dbi_open(txn, table_names[table], flags, dbi));
    return rc;
}

static int g_stat(lm_store *s, MDB_txn *txn, MDB_dbi dbi, MDB_stat *st) /* R: may read the table's record */
{
    int rc;
    LM_GUARDED(s, -1, 0, rc, mdb_stat(txn, dbi, st));
    return rc;
}

/* Environments leaked after a trip in a modifying call (see above). */
#define LM_WEDGED_MAX 64
static struct {
    dev_t dev;
    ino_t ino;
    MDB_env *env;
} lm_wedged[LM_WEDGED_MAX];
static int lm_nwedged;
static pthread_mutex_t lm_wedged_mu = PTHREAD_MUTEX_INITIALIZER;

static int wedged_has(dev_t dev, ino_t ino)
{
    int found = 0;
    pthread_mutex_lock(&lm_wedged_mu);
    for (int i = 0; i < lm_nwedged && !found; i++) found = lm_wedged[i].dev == dev && lm_wedged[i].ino == ino;
    pthread_mutex_unlock(&lm_wedged_mu);
    return found;
}

static void wedged_add(lm_store *s)
{
    pthread_mutex_lock(&lm_wedged_mu);
    if (lm_nwedged < LM_WEDGED_MAX) {
        lm_wedged[lm_nwedged].dev = s->dev;
        lm_wedged[lm_nwedged].ino = s->ino;
        lm_wedged[lm_nwedged].env = s->env; /* kept reachable: leaked on purpose */
        lm_nwedged++;
    }
    pthread_mutex_unlock(&lm_wedged_mu);
}

/* Bytes of data.mdb now (0 if unknown). */
static uint64_t file_size_now(lm_store *s)
{
    int fd = -1;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0) return 0;
    uint64_t n = (uint64_t)st.st_size;
    atomic_store(&s->file_size, n);
    return n;
}

static int poisoned_err(lm_store *s)
{
    return qz__err(QZ_ECORRUPT, "%s", s->poison_msg);
}

/* A guarded call of transaction t (NULL: none) tripped while doing <what>:
 * describe it, poison the backend and return QZ_ECORRUPT. */
static int guard_tripped(lm_store *s, qz_storage_txn *t, int table, int modifying, const char *what)
{
    const lm_trip *tr = &lm_tl_trip;
    char msg[sizeof s->poison_msg];
    if (tr->signo == 0) {
        /* liblmdb's text: "mdb.c:5921: Assertion 'IS_LEAF(mp)' failed in mdb_cursor_next()" */
        const char *a = strstr(tr->text, ": Assertion '");
        const char *e = a ? strstr(a + 13, "' failed") : NULL;
        if (a && e)
            snprintf(msg, sizeof msg,
                     LM_DATA_FILE " is damaged: LMDB assertion '%.*s' in table %s of %s (%.*s, %s, while %s)",
                     (int)(e - a - 13), a + 13, tname(table), s->dir, (int)(a - tr->text), tr->text, e + 2, what);
        else
            snprintf(msg, sizeof msg, LM_DATA_FILE " is damaged: LMDB assertion '%s' in table %s of %s (while %s)",
                     tr->text, tname(table), s->dir, what);
    } else {
        uintptr_t a = (uintptr_t)tr->addr;
        const char *sig = tr->signo == SIGBUS ? "SIGBUS" : "SIGSEGV";
        if (a >= s->map_lo && a - s->map_lo < s->map_len) {
            uint64_t off = (uint64_t)(a - s->map_lo), fs = file_size_now(s);
            if (off >= fs)
                snprintf(msg, sizeof msg, LM_DATA_FILE " of %s is truncated: LMDB touched page %llu, past the end of "
                         "the file (%llu bytes), in table %s (%s, while %s)", s->dir,
                         (unsigned long long)(off / s->psize), (unsigned long long)fs, tname(table), sig, what);
            else
                snprintf(msg, sizeof msg, LM_DATA_FILE " is damaged: LMDB faulted at page %llu in table %s of %s (%s, "
                         "while %s)", (unsigned long long)(off / s->psize), tname(table), s->dir, sig, what);
        } else {
            snprintf(msg, sizeof msg, LM_DATA_FILE " is damaged: LMDB followed a damaged offset to address %p, "
                     "outside the map, in table %s of %s (%s, while %s)", tr->addr, tname(table), s->dir, sig, what);
        }
    }
    pthread_mutex_lock(&s->mu);
    if (!atomic_load(&s->poisoned)) {
        snprintf(s->poison_msg, sizeof s->poison_msg, "%s", msg);
        atomic_store(&s->poisoned, 1);
    }
    pthread_mutex_unlock(&s->mu);
    if (modifying) {
        if (t) {
            t->txn = NULL;
            t->leaked = 1;
        }
        if (!atomic_exchange(&s->wedged, 1)) wedged_add(s);
    }
    if (t) t->failed = t->corrupt = 1;
    return qz__err(QZ_ECORRUPT, "%s", msg);
}

/* ---- transaction accounting and map resizing ---------------------------- */

static void txn_enter(lm_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->resizing) pthread_cond_wait(&s->cv, &s->mu);
    s->active++;
    pthread_mutex_unlock(&s->mu);
}

static void txn_leave(lm_store *s)
{
    pthread_mutex_lock(&s->mu);
    if (--s->active == 0) pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Where liblmdb mapped data.mdb: mdb_env_info() only reports a fixed map
 * address, so find the shared mapping of the file at offset 0 (of the map's
 * size) in /proc/self/maps, by device and inode, or by path where those
 * differ from stat()'s (overlayfs shows the lower file's). Without procfs
 * the range stays unknown: check_span() cannot check and faults inside
 * modifying calls are passed on; reading calls are still guarded. */
static void note_map(lm_store *s)
{
    MDB_envinfo info;
    s->map_lo = 0;
    s->map_len = 0;
    if (mdb_env_info(s->env, &info) != 0) return;
    char real[PATH_MAX], want[PATH_MAX + 16];
    want[0] = '\0';
    if (realpath(s->dir, real)) snprintf(want, sizeof want, "%s/" LM_DATA_FILE, real);
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return;
    char line[PATH_MAX + 128];
    int at_start = 1;
    while (fgets(line, sizeof line, f)) {
        int whole = at_start;
        size_t len = strlen(line);
        at_start = len && line[len - 1] == '\n';
        if (!whole) continue; /* the rest of a line too long to match */
        if (at_start) line[--len] = '\0';
        unsigned long lo, hi, off, ino;
        unsigned maj, mnr;
        char perm[8];
        int pathpos = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &lo, &hi, perm, &off, &maj, &mnr, &ino, &pathpos) < 7)
            continue;
        if (off != 0 || perm[0] != 'r' || perm[3] != 's') continue;
        int same = (ino == (unsigned long)s->ino && maj == major(s->dev) && mnr == minor(s->dev)) ||
                   (want[0] && pathpos > 0 && strcmp(line + pathpos, want) == 0);
        if (!same || ((size_t)(hi - lo) != (size_t)info.me_mapsize && s->map_len)) continue;
        s->map_lo = (uintptr_t)lo;
        s->map_len = (size_t)(hi - lo);
        if (s->map_len == (size_t)info.me_mapsize) break;
    }
    fclose(f);
}

/* Set the map size (0 = adopt the size another process set) once no
 * transaction of this process is open. The caller holds none. With
 * patience_ms > 0, give up (QZ_EBUSY) when readers stay open that long. */
static int map_resize_wait(lm_store *s, uint64_t size, unsigned patience_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(patience_ms % 1000) * 1000000L;
    until.tv_sec += (time_t)(patience_ms / 1000) + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->mu);
    while (s->resizing) pthread_cond_wait(&s->cv, &s->mu);
    s->resizing = 1;
    while (s->active > 0) {
        if (!patience_ms) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && s->active > 0) {
            s->resizing = 0;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return QZ_EBUSY;
        }
    }
    int rc = mdb_env_set_mapsize(s->env, (size_t)size);
    note_map(s);
    s->resizing = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc) return lm_fail(rc, "growing the map of %s to %llu bytes", s->dir, (unsigned long long)size);
    return QZ_OK;
}

static int map_resize(lm_store *s, uint64_t size) { return map_resize_wait(s, size, 0); }

static uint64_t map_size(lm_store *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    return (uint64_t)info.me_mapsize;
}

/* Double the map (a MAP_FULL happened). */
static int map_grow(lm_store *s)
{
    uint64_t cur = map_size(s);
    if (cur >= QZ__LMDB_MAX_MAP)
        return qz__err(QZ_EFULL, "lmdb: MDB_MAP_FULL while writing to %s: the map is already %llu bytes", s->dir,
                       (unsigned long long)cur);
    return map_resize(s, cur * 2);
}

/* Grow ahead when more than 3/4 of the map is used. Best effort. */
static void map_grow_ahead(lm_store *s)
{
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) != 0) return;
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
    uint64_t cur = (uint64_t)info.me_mapsize;
    if (used <= cur / 4 * 3 || cur >= QZ__LMDB_MAX_MAP) return;
    uint64_t want = cur * 2;
    if (want < used * 2) want = used * 2;
    /* Readers may be slow to finish: do not hold the writer (or new readers)
     * back for long; the MAP_FULL path grows the map anyway. */
    if (map_resize_wait(s, want, 20) < 0) qz__err_clear();
}

/* ---- spans handed out ------------------------------------------------------ */

/* A key or value LMDB returned: inside the map it must stay within its page,
 * unless it is an overflow value (which starts right after a page header),
 * and must not reach past the end of the file: the caller will read it, and
 * a damaged size would take it into another page or off the mapping (SIGBUS).
 * Outside the map it is in a page this write transaction copied (heap). */
static int check_span(lm_store *s, const void *p, size_t n, int table, const char *what)
{
    uintptr_t a = (uintptr_t)p;
    if (a < s->map_lo || a - s->map_lo >= s->map_len) return QZ_OK;
    uint64_t off = (uint64_t)(a - s->map_lo);
    size_t inpage = (size_t)(off % s->psize);
    /* Inline data starts after the node header, key and page header, never
     * right after the page header: that is where an overflow value starts.
     * LMDB did not touch an overflow value's pages (it only computed their
     * address), so they may lie past the end of the file: check them against
     * the file's size. The size is cached and asked of the file again only
     * when a span reaches past the cached one (the file only grows while it
     * is open; re-ranking against stored originals reads many overflow
     * values, and an fstat each cost 3% of an MNIST search). */
    int overflow = inpage == LM_PAGEHDR;
    if (!overflow && n > s->psize - inpage)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " is damaged: a %s of %zu bytes at offset %zu of page %llu of table %s of "
                       "%s reaches past its page", what, n, inpage, (unsigned long long)(off / s->psize), tname(table),
                       s->dir);
    uint64_t fs = atomic_load(&s->file_size);
    if (n > s->map_len - off || off + n > fs) fs = file_size_now(s);
    if (n > s->map_len - off || off + n > fs)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " is damaged: a %s of %zu bytes at page %llu of table %s of %s "
                       "reaches past the end of the file (%llu bytes)", what, n, (unsigned long long)(off / s->psize),
                       tname(table), s->dir, (unsigned long long)fs);
    return QZ_OK;
}

/* ---- operations --------------------------------------------------------- */

static int check_args(lm_store *s, uint32_t table, const void *key, size_t klen)
{
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "lmdb storage: no table %u", table);
    if (!key || klen == 0 || klen > s->maxkey)
        return qz__err(QZ_EINVAL, "lmdb storage: key of %zu bytes (must be 1..%u)", klen, s->maxkey);
    return QZ_OK;
}

static int check_write(lm_store *s, qz_storage_txn *t)
{
    if (t->flags & QZ_TXN_READONLY) return qz__err(QZ_EINVAL, "lmdb storage: write in a read-only transaction");
    if (atomic_load(&s->poisoned)) {
        t->failed = 1;
        return poisoned_err(s);
    }
    if (t->failed || !t->txn) {
        if (t->corrupt)
            return qz__err(QZ_ECORRUPT, "lmdb storage: write in a transaction of %s that found " LM_DATA_FILE
                           " damaged", s->dir);
        return qz__err(QZ_EIO, "lmdb storage: write in a transaction of %s that already failed", s->dir);
    }
    return QZ_OK;
}

/* Apply op in txn, guarded. */
static int op_apply(lm_store *s, MDB_txn *txn, const lm_op *op)
{
    MDB_val k = {op->klen, (void *)op->data};
    MDB_val v = {op->vlen, (void *)(op->data + op->klen)};
    MDB_dbi dbi = s->dbi[op->table];
    int rc;
    switch (op->kind) {
    case OP_PUT: return g_put(s, (int)op->table, txn, dbi, &k, &v);
    case OP_DEL:
        rc = g_del(s, (int)op->table, txn, dbi, &k);
        return rc == MDB_NOTFOUND ? 0 : rc;
    default: return g_drop(s, (int)op->table, txn, dbi);
    }
}

/* The current MDB transaction hit MAP_FULL (and may be gone already): grow
 * the map and redo every recorded operation in a new transaction. */
static int txn_regrow(lm_store *s, qz_storage_txn *t)
{
    for (;;) {
        if (t->txn) mdb_txn_abort(t->txn);
        t->txn = NULL;
        txn_leave(s);
        int qrc = map_grow(s);
        txn_enter(s);
        if (qrc < 0) return qrc;
        MDB_txn *nt = NULL;
        int rc;
        rc = g_txn_begin(s, 0, &nt);
        if (rc == LM_TRIPPED) return guard_tripped(s, t, -1, 1, "restarting a write transaction");
        if (rc) return txn_fail(t, rc, "restarting a write transaction on %s after growing the map", s->dir);
        t->txn = nt;
        const lm_op *op = t->ops;
        for (; op && rc == 0; op = op->next) {
            rc = op_apply(s, t->txn, op);
            if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)op->table, 1, "replaying a write transaction");
            if (rc) break;
        }
        if (rc == 0) return QZ_OK;
        if (rc != MDB_MAP_FULL) return txn_fail(t, rc, "replaying a write transaction on %s after growing the map", s->dir);
    }
}

/* LMDB's default order: bytes compared as unsigned, a prefix sorts first. */
static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* A key LMDB returned from a table: a length this backend can have written,
 * inside one page (and the file). */
static int check_key(lm_store *s, const MDB_val *k, int table)
{
    if (k->mv_size == 0 || k->mv_size > s->maxkey)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " is damaged: a key of %zu bytes in table %s of %s", k->mv_size,
                       tname(table), s->dir);
    return check_span(s, k->mv_data, k->mv_size, table, "key");
}

/* A lookup missed. Damage that LMDB does not notice (a flipped separator key
 * in a branch page, a flipped key byte in a leaf, a node offset pointing at
 * other bytes) can send its binary search the wrong way, which also ends in
 * MDB_NOTFOUND: a key that is there would silently read as absent. So look
 * at the neighbourhood where the key would be: two keys after it and two
 * before must be in strict order around it. A wrong turn is caused by a key
 * out of place next to that spot, so it shows there. One more descent and
 * four cursor steps per miss; a damaged key that still sorts between its neighbours stays unseen
 * (the layers above check their records). */
static int confirm_notfound(lm_store *s, qz_storage_txn *t, uint32_t table, const void *key, size_t klen)
{
    MDB_cursor *c = NULL;
    int rc = g_cursor_open(s, (int)table, t->txn, s->dbi[table], &c);
    if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)table, 0, "looking around a missing key");
    if (rc) return txn_fail(t, rc, "opening a cursor on table %s of %s", table_names[table], s->dir);
    /* in order: before[1] < before[0] < key < after[0] < after[1], from one
     * descent: SET_RANGE, NEXT, then back with PREV (a failed NEXT leaves
     * the cursor where it was) */
    MDB_val k = {klen, (void *)key}, v, prev = {klen, (void *)key};
    const char *bad = NULL;
    int steps = 0;
    rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) {
        rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_LAST); /* past the last key: before it */
    } else {
        for (; rc == 0 && steps < 2; steps++) {
            if (check_key(s, &k, (int)table) < 0 || key_cmp(k.mv_data, k.mv_size, prev.mv_data, prev.mv_size) <= 0) {
                bad = "the keys after it are out of order";
                break;
            }
            prev = k;
            if (steps == 0) rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_NEXT);
        }
        if (!bad && rc == MDB_NOTFOUND) rc = 0; /* no second key after it: still at the first */
        if (!bad && rc == 0 && steps == 2) rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_PREV); /* back to the first */
        if (!bad && rc == 0) rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_PREV);
    }
    prev.mv_size = klen;
    prev.mv_data = (void *)key;
    for (int n = 0; !bad && rc == 0 && n < 2; n++) {
        if (check_key(s, &k, (int)table) < 0 || key_cmp(k.mv_data, k.mv_size, prev.mv_data, prev.mv_size) >= 0) {
            bad = "the keys before it are out of order";
            break;
        }
        prev = k;
        if (n == 0) rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_PREV);
    }
    qz__err_clear();
    mdb_cursor_close(c); /* also after a trip: the cursor was only being read */
    if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)table, 0, "looking around a missing key");
    if (bad)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " is damaged: LMDB does not find a %zu-byte key in table %s of %s, "
                       "but %s: its search may have taken a wrong turn", klen, table_names[table], s->dir, bad);
    if (rc && rc != MDB_NOTFOUND)
        return txn_fail(t, rc, "looking around a missing key in table %s of %s", table_names[table], s->dir);
    return QZ_ENOTFOUND;
}

/* Record op, then apply it (growing the map if needed). */
static int txn_write(lm_store *s, qz_storage_txn *t, uint32_t kind, uint32_t table, const void *key, size_t klen,
                     const void *val, size_t vlen, const char *what)
{
    if (vlen > SIZE_MAX - sizeof(lm_op) - klen) return qz__err(QZ_ENOMEM, "lmdb storage: value too large");
    int rc;
    if (kind != OP_CLEAR) {
        /* Descend to the key first with a reading call: damage on the path
         * trips there, where interrupting LMDB is harmless, rather than in
         * the modifying call (see "Fault guard"). It also answers del's
         * NOTFOUND, which op_apply hides for replays. */
        MDB_val k = {klen, (void *)key}, v;
        rc = g_get(s, (int)table, t->txn, s->dbi[table], &k, &v);
        if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)table, 0, what);
        if (rc == MDB_NOTFOUND) {
            /* a wrong turn would drop a delete, or insert a duplicate */
            int qrc = confirm_notfound(s, t, table, key, klen);
            if (qrc != QZ_ENOTFOUND) {
                t->failed = 1;
                return qrc;
            }
            if (kind == OP_DEL) return QZ_ENOTFOUND;
        } else if (rc) {
            t->failed = 1;
            return txn_fail(t, rc, "%s in table %s of %s", what, table_names[table], s->dir);
        }
    }
    lm_op *op = op_alloc(t, sizeof *op + klen + vlen);
    if (!op) return qz__err(QZ_ENOMEM, "lmdb storage: out of memory recording a %s of %zu bytes", what, vlen);
    op->next = NULL;
    op->kind = kind;
    op->table = table;
    op->klen = klen;
    op->vlen = vlen;
    if (klen) memcpy(op->data, key, klen);
    if (vlen) memcpy(op->data + klen, val, vlen);

    rc = op_apply(s, t->txn, op);
    *t->tail = op;
    t->tail = &op->next;
    if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)table, 1, what);
    if (rc == MDB_MAP_FULL) {
        int qrc = txn_regrow(s, t);
        if (qrc < 0) t->failed = 1;
        return qrc;
    }
    if (rc) {
        t->failed = 1;
        return txn_fail(t, rc, "%s in table %s of %s", what, table_names[table], s->dir);
    }
    return QZ_OK;
}

static void txn_free(lm_store *s, qz_storage_txn *t)
{
    while (t->chunks) {
        lm_chunk *n = t->chunks->next;
        qz__pages_free(t->chunks, t->chunks->cap);
        t->chunks = n;
    }
    txn_leave(s);
    if (!(t->flags & QZ_TXN_READONLY)) pthread_mutex_unlock(&s->wmu);
    qz__free(t);
}

/* End t's MDB transaction without committing, unless the guard abandoned it. */
static void txn_drop(qz_storage_txn *t)
{
    if (t->txn && !t->leaked) mdb_txn_abort(t->txn);
    t->txn = NULL;
}

/* ---- methods ---------------------------------------------------------- */

static int lm_begin(qz_storage *base, uint32_t flags, qz_storage_txn **out)
{
    lm_store *s = (lm_store *)base;
    if (!out || (flags & ~QZ_TXN_READONLY)) return qz__err(QZ_EINVAL, "lmdb storage: bad begin() arguments");
    int ro = (flags & QZ_TXN_READONLY) != 0;
    if (!ro && (s->flags & QZ__LMDB_READONLY))
        return qz__err(QZ_EREADONLY, "lmdb storage: %s is open read-only", s->dir);
    if (atomic_load(&s->poisoned)) return poisoned_err(s);
    qz_storage_txn *t = qz__calloc(1, sizeof *t);
    if (!t) return qz__err(QZ_ENOMEM, "lmdb storage: out of memory for a transaction");
    t->flags = flags;
    t->tail = &t->ops;
    if (!ro) {
        pthread_mutex_lock(&s->wmu);
        map_grow_ahead(s);
    }
    txn_enter(s);
    int rc;
    for (int tries = 0;; tries++) {
        MDB_txn *nt = NULL;
        rc = g_txn_begin(s, ro, &nt);
        if (rc == 0) t->txn = nt;
        if (rc != MDB_MAP_RESIZED || tries >= 3) break;
        /* the writer process grew the map: adopt its size */
        txn_leave(s);
        int qrc = map_resize(s, 0);
        txn_enter(s);
        if (qrc < 0) {
            txn_free(s, t);
            return qrc;
        }
    }
    if (rc == LM_TRIPPED) {
        int qrc = guard_tripped(s, t, -1, !ro, ro ? "beginning a read transaction" : "beginning a write transaction");
        txn_free(s, t);
        return qrc;
    }
    if (rc) {
        t->txn = NULL;
        int qrc = lm_fail(rc, "beginning a %s transaction on %s", ro ? "read" : "write", s->dir);
        txn_free(s, t);
        return qrc;
    }
    *out = t;
    return QZ_OK;
}

static int lm_get(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *key, size_t klen,
                  const void **val, size_t *vlen)
{
    lm_store *s = (lm_store *)base;
    QZ_CHECK(check_args(s, table, key, klen));
    if (atomic_load(&s->poisoned)) return poisoned_err(s);
    if (t->corrupt)
        return qz__err(QZ_ECORRUPT, "lmdb storage: read in a transaction of %s that found " LM_DATA_FILE " damaged",
                       s->dir);
    if (t->failed || !t->txn) return qz__err(QZ_EIO, "lmdb storage: read in a failed transaction of %s", s->dir);
    if (!s->have[table]) return QZ_ENOTFOUND;
    MDB_val k = {klen, (void *)key}, v;
    int rc;
    rc = g_get(s, (int)table, t->txn, s->dbi[table], &k, &v);
    if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)table, 0, "reading a key");
    if (rc == MDB_NOTFOUND) return confirm_notfound(s, t, table, key, klen);
    if (rc) return txn_fail(t, rc, "reading a %zu-byte key from table %s of %s", klen, table_names[table], s->dir);
    QZ_CHECK(check_span(s, v.mv_data, v.mv_size, (int)table, "value"));
    if (val) *val = v.mv_data;
    if (vlen) *vlen = v.mv_size;
    return QZ_OK;
}

static int lm_put(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
    lm_store *s = (lm_store *)base;
    QZ_CHECK(check_args(s, table, key, klen));
    QZ_CHECK(check_write(s, t));
    if (!val && vlen) return qz__err(QZ_EINVAL, "lmdb storage: NULL value of %zu bytes", vlen);
    return txn_write(s, t, OP_PUT, table, key, klen, val, vlen, "writing a record");
}

static int lm_del(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *key, size_t klen)
{
    lm_store *s = (lm_store *)base;
    QZ_CHECK(check_args(s, table, key, klen));
    QZ_CHECK(check_write(s, t));
    return txn_write(s, t, OP_DEL, table, key, klen, NULL, 0, "deleting a record");
}

static int lm_clear(qz_storage *base, qz_storage_txn *t, uint32_t table)
{
    lm_store *s = (lm_store *)base;
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "lmdb storage: no table %u", table);
    QZ_CHECK(check_write(s, t));
    return txn_write(s, t, OP_CLEAR, table, NULL, 0, NULL, 0, "clearing");
}

static int lm_scan(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *prefix, size_t plen,
                   qz_storage_scan_fn fn, void *user)
{
    lm_store *s = (lm_store *)base;
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "lmdb storage: no table %u", table);
    if (!fn || (plen && !prefix)) return qz__err(QZ_EINVAL, "lmdb storage: bad scan() arguments");
    if (atomic_load(&s->poisoned)) return poisoned_err(s);
    if (t->corrupt)
        return qz__err(QZ_ECORRUPT, "lmdb storage: scan in a transaction of %s that found " LM_DATA_FILE " damaged",
                       s->dir);
    if (t->failed || !t->txn) return qz__err(QZ_EIO, "lmdb storage: scan in a failed transaction of %s", s->dir);
    if (!s->have[table]) return QZ_OK;
    MDB_cursor *c = NULL;
    int rc;
    rc = g_cursor_open(s, (int)table, t->txn, s->dbi[table], &c);
    if (rc == LM_TRIPPED) return guard_tripped(s, t, (int)table, 0, "opening a cursor");
    if (rc) return txn_fail(t, rc, "opening a cursor on table %s of %s", table_names[table], s->dir);
    MDB_val k = {plen, (void *)prefix}, v;
    rc = g_cursor_get(s, (int)table, c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    int ret = QZ_OK;
    /* LMDB returns keys in tree order; a damaged page (a node offset that
     * points at other bytes) shows as a key out of order. */
    unsigned char prev[QZ_MAX_KEY];
    size_t prevlen = 0;
    int first = 1;
    while (rc == 0) {
        if ((ret = check_key(s, &k, (int)table)) < 0) break;
        if (first ? key_cmp(k.mv_data, k.mv_size, prefix, plen) < 0
                  : key_cmp(k.mv_data, k.mv_size, prev, prevlen) <= 0) {
            ret = qz__err(QZ_ECORRUPT, LM_DATA_FILE " is damaged: a scan of table %s of %s meets a key out of order",
                          table_names[table], s->dir);
            break;
        }
        if (k.mv_size < plen || (plen && memcmp(k.mv_data, prefix, plen) != 0)) break;
        if ((ret = check_span(s, v.mv_data, v.mv_size, (int)table, "value")) < 0) break;
        first = 0;
        prevlen = k.mv_size <= sizeof prev ? k.mv_size : sizeof prev;
        memcpy(prev, k.mv_data, prevlen);
        ret = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, user);
        if (ret) break;
        rc = g_cursor_get(s, (int)table, c, &k, &v, MDB_NEXT);
    }
    if (rc == LM_TRIPPED) {
        /* closing is safe: the cursor was only being read (see "Fault guard") */
        mdb_cursor_close(c);
        return guard_tripped(s, t, (int)table, 0, "scanning");
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    if (rc && rc != MDB_NOTFOUND) return txn_fail(t, rc, "scanning table %s of %s", table_names[table], s->dir);
    return QZ_OK;
}

static int lm_commit(qz_storage *base, qz_storage_txn *t)
{
    lm_store *s = (lm_store *)base;
    if (t->flags & QZ_TXN_READONLY) {
        txn_drop(t);
        txn_free(s, t);
        return QZ_OK;
    }
    int qrc = QZ_OK;
    if (atomic_load(&s->poisoned)) {
        txn_drop(t);
        qrc = poisoned_err(s);
    } else if (t->failed || !t->txn) {
        txn_drop(t);
        qrc = t->corrupt ? qz__err(QZ_ECORRUPT, "lmdb storage: commit of a transaction on %s that found " LM_DATA_FILE
                                   " damaged (nothing written)", s->dir)
                         : qz__err(QZ_EIO, "lmdb storage: commit of a failed transaction on %s (nothing written)", s->dir);
    } else {
        for (;;) {
            int rc;
            rc = g_commit(s, t->txn);
            if (rc == LM_TRIPPED) {
                qrc = guard_tripped(s, t, -1, 1, "committing");
                break;
            }
            t->txn = NULL; /* freed by LMDB whatever the outcome */
            if (rc == 0) break;
            if (rc != MDB_MAP_FULL) {
                qrc = txn_fail(t, rc, "committing a write transaction on %s", s->dir);
                break;
            }
            qrc = txn_regrow(s, t);
            if (qrc < 0) {
                txn_drop(t);
                break;
            }
        }
    }
    txn_free(s, t);
    return qrc;
}

static void lm_abort(qz_storage *base, qz_storage_txn *t)
{
    lm_store *s = (lm_store *)base;
    if (!t) return;
    txn_drop(t);
    txn_free(s, t);
}

static int lm_sync(qz_storage *base)
{
    lm_store *s = (lm_store *)base;
    if (s->flags & QZ__LMDB_READONLY) return QZ_OK;
    if (atomic_load(&s->poisoned)) return poisoned_err(s);
    int rc = mdb_env_sync(s->env, 1);
    if (rc) return lm_fail(rc, "syncing %s", s->dir);
    return QZ_OK;
}

static void lm_close(qz_storage *base)
{
    lm_store *s = (lm_store *)base;
    if (!s) return;
    /* A wedged environment is leaked on purpose (see "Fault guard"). */
    if (s->env && !atomic_load(&s->wedged)) mdb_env_close(s->env);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    qz__free(s->dir);
    qz__free(s);
}

uint64_t qz__storage_lmdb_map_size(qz_storage *base)
{
    if (!base || base->begin != lm_begin) return 0;
    return map_size((lm_store *)base);
}

/* ---- checks at open ------------------------------------------------------ */

/* The two meta pages, before LMDB opens the file. LMDB itself refuses a
 * meta page without P_META, the magic or data version 1 (MDB_INVALID,
 * MDB_VERSION_MISMATCH), so those cases are left to it. Checked here: what
 * would make LMDB pick the wrong snapshot or follow a wrong page number
 * straight away.
 *   - LMDB writes the meta of transaction T into page T & 1, so the current
 *     meta (the larger txnid) and the other one are T and T - 1 (or 0 and 0
 *     in a fresh file); a flipped txnid bit breaks that and could make LMDB
 *     read an older snapshot.
 *   - The current meta's page size is a power of two LMDB can have written,
 *     the same in both pages; its last page and roots are in range; its main
 *     and free databases have the flags LMDB gave them.
 * Returns QZ_OK also when the file is absent, empty or too short for LMDB
 * to consider (LMDB's own answer follows). */
static int check_metas_once(lm_store *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return QZ_OK;
    unsigned char m[2][LM_META_SIZE];
    ssize_t got = pread(fd, m[0], LM_META_SIZE, (off_t)LM_PAGEHDR);
    unsigned char h0[LM_PAGEHDR];
    int ok0 = got == (ssize_t)LM_META_SIZE && pread(fd, h0, LM_PAGEHDR, 0) == (ssize_t)LM_PAGEHDR;
    size_t ps0 = ok0 ? rd_u32(m[0] + LM_META_FREE + LM_DB_PAD) : 0;
    int ok1 = ok0 && ps0 >= LM_MIN_PSIZE && ps0 <= LM_MAX_PSIZE &&
              pread(fd, m[1], LM_META_SIZE, (off_t)(ps0 + LM_PAGEHDR)) == (ssize_t)LM_META_SIZE;
    close(fd);
    if (!ok0) return QZ_OK;
    for (int i = 0; i < 2; i++) {
        if (i == 1 && !ok1) break;
        if (rd_u32(m[i] + LM_META_MAGIC) != LM_MAGIC || rd_u32(m[i] + LM_META_VERSION) != LM_DATA_VERSION)
            return QZ_OK; /* LMDB says MDB_INVALID / MDB_VERSION_MISMATCH */
    }
    if (!(rd_u16(h0 + LM_S + 2) & LM_P_META)) return QZ_OK; /* LMDB says MDB_INVALID */
    if (!ok1) {
        if (ps0 < LM_MIN_PSIZE || ps0 > LM_MAX_PSIZE || (ps0 & (ps0 - 1)))
            return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: meta page 0 gives a page size of %zu bytes",
                           s->dir, ps0);
        return QZ_OK; /* too short for a second meta page: LMDB says MDB_INVALID */
    }
    size_t txn[2], ps[2];
    for (int i = 0; i < 2; i++) {
        txn[i] = rd_size(m[i] + LM_META_TXNID);
        ps[i] = rd_u32(m[i] + LM_META_FREE + LM_DB_PAD);
    }
    int cur = txn[0] < txn[1]; /* LMDB's mdb_env_pick_meta() */
    const unsigned char *c = m[cur];
    size_t tc = txn[cur], to = txn[!cur];
    if (!((tc == 0 && to == 0) || (to == tc - 1 && (tc & 1) == (size_t)cur)))
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: its meta pages hold transactions %zu (page 0) "
                       "and %zu (page 1), LMDB writes consecutive ones alternately", s->dir, txn[0], txn[1]);
    if (ps[0] != ps[1] || (ps[0] & (ps[0] - 1)) || ps[0] < LM_MIN_PSIZE || ps[0] > LM_MAX_PSIZE)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: its meta pages give page sizes %zu and %zu",
                       s->dir, ps[0], ps[1]);
    size_t last = rd_size(c + LM_META_LAST);
    if (last < 1 || last >= QZ__LMDB_MAX_MAP / ps[cur])
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: its current meta page (transaction %zu) says "
                       "the last page is %zu", s->dir, tc, last);
    static const char *const which[2] = {"free-page", "main"};
    for (int d = 0; d < 2; d++) {
        const unsigned char *db = c + (d ? LM_META_MAIN : LM_META_FREE);
        size_t root = rd_size(db + LM_DB_ROOT);
        unsigned fl = rd_u16(db + LM_DB_FLAGS);
        if (root != LM_P_INVALID && (root < 2 || root > last))
            return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: the %s database's root is page %zu, outside "
                           "2..%zu (current meta page, transaction %zu)", s->dir, which[d], root, last, tc);
        /* free db: MDB_INTEGERKEY plus the environment's creation flags;
         * main db: no flags (named databases cannot live under others) */
        unsigned bad = d ? (fl & LM_PERSISTENT_FLAGS) : (fl & (LM_PERSISTENT_FLAGS & ~(unsigned)MDB_INTEGERKEY));
        if (bad)
            return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: the %s database has flags 0x%x (current meta "
                           "page, transaction %zu)", s->dir, which[d], fl, tc);
    }
    return QZ_OK;
}

/* A writer process may be rewriting a meta page while we read it (LMDB's
 * readers cope the same way: they retry until the txnid they read agrees),
 * so damage must be seen a few times in a row. */
static int check_metas(lm_store *s, const char *path)
{
    int rc = QZ_OK;
    for (int attempt = 0; attempt < 4; attempt++) {
        if (attempt) {
            qz__err_clear();
            struct timespec ts = {0, 2000000L};
            nanosleep(&ts, NULL);
        }
        if ((rc = check_metas_once(s, path)) == QZ_OK) break;
    }
    return rc;
}

/* A table's record in the main database (an MDB_db), read before LMDB uses it. */
static int check_table_record(lm_store *s, MDB_txn *txn, int i, size_t last)
{
    MDB_val k = {strlen(table_names[i]), (void *)table_names[i]}, v;
    int rc;
    rc = g_get(s, i, txn, LM_MAIN_DBI, &k, &v);
    if (rc == LM_TRIPPED) return guard_tripped(s, NULL, i, 0, "reading the table records");
    if (rc) return lm_fail(rc, "reading the record of table %s of %s", table_names[i], s->dir);
    if (v.mv_size != LM_DBREC)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: the record of table %s is %zu bytes, not %zu", s->dir,
                       table_names[i], v.mv_size, (size_t)LM_DBREC);
    QZ_CHECK(check_span(s, v.mv_data, v.mv_size, i, "table record"));
    const unsigned char *p = v.mv_data;
    unsigned fl = rd_u16(p + LM_DB_FLAGS);
    size_t root = rd_size(p + LM_DB_ROOT);
    if (fl & LM_PERSISTENT_FLAGS)
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: table %s has LMDB flags 0x%x (it was created with "
                       "none)", s->dir, table_names[i], fl);
    if (root != LM_P_INVALID && (root < 2 || root > last))
        return qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: table %s's root is page %zu, outside 2..%zu",
                       s->dir, table_names[i], root, last);
    return QZ_OK;
}

/* Pages past the end of data.mdb. Without MDB_WRITEMAP liblmdb never sets
 * the file's size: it grows only where mdb_page_flush() pwrite()s a dirty
 * page. A transaction takes new pages from the end (mt_next_pgno, which
 * becomes mm_last_pg + 1 of its meta page) but does not write every one:
 * overflow pages of a value it wrote and then replaced or deleted again are
 * taken off the dirty list (mdb_ovpage_free, when it holds reclaimed pages)
 * and loose pages (dirty pages freed again, after a merge say) are skipped
 * by mdb_page_flush(). When those were the highest pages, the committed
 * meta counts pages the file does not have - after a clean close as after
 * a crash (a killed process loses no completed pwrite()). Such pages are
 * free in the committed snapshot, i.e. listed in the free-page database
 * (LMDB's invariant: every page up to mm_last_pg is used by exactly one tree
 * or listed in a free-page record), and a page in use was written before the
 * meta page that made it part of the snapshot. Hence data.mdb lost pages in
 * use (was truncated, or a meta page is damaged) iff some page from the
 * file's end up to mm_last_pg is not in a free-page record. LMDB never reads
 * a free page, so a database whose missing tail is free is healthy and opens.
 *
 * In a read-write open the free-page records are also checked for the shape
 * LMDB relies on when it reuses them (mdb_page_alloc reads n and copies n
 * page numbers): a damaged record would make it read past the record and
 * hand out pages still in use. A read-only open never reads them, so there
 * a malformed record only means the truncation verdict is unknown and the
 * open goes on (the fault guard still catches a read past the end).
 *
 * A page neither in use nor free would break LMDB's invariant (a leak); the
 * verdict allows for as many as the counts of the trees say there are, so
 * that such a page past the end cannot make a readable database refused.
 *
 * txn is a read-only transaction of the snapshot whose last page is @p last
 * and whose transaction id is @p txnid; @p fsize the file's size after it began. */
#define LM_TAIL_BITMAP_MAX ((uint64_t)1 << 23) /* pages tracked one by one (1 MiB of bits) */

static int count_tree_pages(lm_store *s, MDB_txn *txn, MDB_dbi dbi, uint64_t *pages)
{
    MDB_stat st;
    int rc = g_stat(s, txn, dbi, &st);
    if (rc == 0) *pages += (uint64_t)st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    return rc;
}

static int check_tail(lm_store *s, MDB_txn *txn, size_t last, uint64_t fsize, size_t txnid)
{
    int ro = (s->flags & QZ__LMDB_READONLY) != 0;
    uint64_t fpages = (fsize + s->psize - 1) / s->psize; /* a partial last page reads as zeros */
    if (ro && fpages > last) return QZ_OK;
    uint64_t tail = fpages > last ? 0 : (uint64_t)last + 1 - fpages; /* pages fpages..last */
    unsigned char *seen = NULL;
    if (tail && tail <= LM_TAIL_BITMAP_MAX) {
        seen = qz__calloc((size_t)(tail / 8 + 1), 1);
        if (!seen) return qz__err(QZ_ENOMEM, "lmdb storage: out of memory checking the end of %s", s->dir);
    }
    MDB_cursor *c = NULL;
    int rc, qrc = QZ_OK, malformed = 0;
    uint64_t marked = 0, nfree = 0;
    char bad[200] = "";
    rc = g_cursor_open(s, -1, txn, LM_FREE_DBI, &c);
    if (rc == 0) {
        MDB_val k, v;
        size_t prev_key = 0;
        rc = g_cursor_get(s, -1, c, &k, &v, MDB_FIRST);
        while (rc == 0) {
            size_t key = 0;
            if (k.mv_size == sizeof key) memcpy(&key, k.mv_data, sizeof key);
            const unsigned char *d = v.mv_data;
            size_t n = v.mv_size >= LM_S && v.mv_size % LM_S == 0 ? rd_size(d) : (size_t)-1;
            if (k.mv_size != sizeof key || key <= prev_key || key > txnid) {
                snprintf(bad, sizeof bad, "a free-page record has key %zu (%zu bytes) after %zu, current transaction %zu",
                         key, k.mv_size, prev_key, txnid);
            } else if (n == (size_t)-1 || n > v.mv_size / LM_S - 1) {
                snprintf(bad, sizeof bad, "the free-page record of transaction %zu is %zu bytes, too short for its count",
                         key, v.mv_size);
            } else if (check_span(s, v.mv_data, v.mv_size, -1, "free-page record") < 0) {
                qz__err_clear();
                snprintf(bad, sizeof bad, "the free-page record of transaction %zu reaches out of its page or file", key);
            } else {
                size_t prev = (size_t)-1;
                for (size_t j = 1; j <= n; j++) {
                    size_t pg = rd_size(d + j * LM_S);
                    if (pg >= prev || pg < 2 || pg > last) {
                        snprintf(bad, sizeof bad, "the free-page record of transaction %zu lists page %zu (entry %zu of "
                                 "%zu) out of order or outside 2..%zu", key, pg, j, n, last);
                        break;
                    }
                    prev = pg;
                    if (tail && pg >= fpages) {
                        uint64_t b = pg - fpages;
                        if (!seen) {
                            marked++;
                        } else if (!(seen[b / 8] & (1u << (b % 8)))) {
                            seen[b / 8] |= (unsigned char)(1u << (b % 8));
                            marked++;
                        }
                    }
                }
                nfree += n;
            }
            if (bad[0]) {
                malformed = 1;
                break;
            }
            prev_key = key;
            rc = g_cursor_get(s, -1, c, &k, &v, MDB_NEXT);
        }
    }
    if (rc == LM_TRIPPED) {
        if (c) mdb_cursor_close(c);
        qz__free(seen);
        return guard_tripped(s, NULL, -1, 0, "reading the free-page lists");
    }
    if (c) mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) {
        qz__free(seen);
        return lm_fail(rc, "reading the free-page lists of %s", s->dir);
    }
    if (malformed && !ro) {
        qrc = qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: %s (LMDB would reuse pages wrongly; a read-only "
                      "open can still read it)", s->dir, bad);
    } else if (!malformed && marked < tail) {
        /* pages neither used nor free, by the trees' own counts */
        uint64_t used = 2 + nfree;
        rc = count_tree_pages(s, txn, LM_FREE_DBI, &used);
        if (rc != LM_TRIPPED) rc = count_tree_pages(s, txn, LM_MAIN_DBI, &used);
        for (int i = 0; i < QZ_TABLE_COUNT && rc != LM_TRIPPED; i++)
            if (s->have[i]) rc = count_tree_pages(s, txn, s->dbi[i], &used);
        if (rc == LM_TRIPPED) {
            qz__free(seen);
            return guard_tripped(s, NULL, -1, 0, "counting the pages of the tables");
        }
        uint64_t leaked = (uint64_t)last + 1 > used ? (uint64_t)last + 1 - used : 0;
        if (tail - marked > leaked) {
            char first[64] = "";
            if (seen) {
                uint64_t f = 0;
                while (seen[f / 8] & (1u << (f % 8))) f++;
                snprintf(first, sizeof first, ", the first is page %llu", (unsigned long long)(fpages + f));
            }
            qrc = qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is truncated (or its meta page damaged): it is %llu bytes "
                          "(%llu pages of %u) but %llu of the pages up to %zu, the last one of the current snapshot "
                          "(transaction %zu), lie past its end and are not free%s", s->dir, (unsigned long long)fsize,
                          (unsigned long long)fpages, s->psize, (unsigned long long)(tail - marked), last, txnid, first);
        }
    }
    qz__free(seen);
    return qrc;
}

/* Open the four tables. A database this backend wrote has all four (they
 * are created together in the first transaction); an environment with none
 * is new (or was never finished) and gets them in read-write mode. Some but
 * not all, or none in a main database that holds other keys, is damage: a
 * lookup that misses because of a damaged page must not create an empty
 * table in place of the real one. In read-only mode missing tables read as
 * empty. Before that, in a read-only snapshot: the table records and the end
 * of the file (check_tail). */
static int open_tables(lm_store *s)
{
    int ro = (s->flags & QZ__LMDB_READONLY) != 0;
    int missing = 0, present = 0;
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn = NULL;
        int rc;
        rc = g_txn_begin(s, 1, &txn);
        if (rc == LM_TRIPPED) return guard_tripped(s, NULL, -1, 0, "beginning the transaction that opens the tables");
        if (rc == MDB_MAP_RESIZED && attempt < 4) {
            QZ_CHECK(map_resize(s, 0));
            continue;
        }
        if (rc) return lm_fail(rc, "beginning the transaction that opens the tables of %s", s->dir);
        MDB_envinfo ei;
        mdb_env_info(s->env, &ei);
        size_t txnid = mdb_txn_id(txn);
        if (txnid != ei.me_last_txnid && attempt < 8) {
            mdb_txn_abort(txn); /* a writer process committed in between: again */
            continue;
        }
        int qrc = QZ_OK;
        missing = present = 0;
        for (int i = 0; i < QZ_TABLE_COUNT && qrc == QZ_OK; i++) {
            rc = g_dbi_open(s, i, txn, 0, &s->dbi[i]);
            if (rc == LM_TRIPPED) {
                qrc = guard_tripped(s, NULL, i, 0, "opening the tables");
            } else if (rc == 0) {
                s->have[i] = 1;
                present++;
                qrc = check_table_record(s, txn, i, ei.me_last_pgno);
            } else if (rc == MDB_NOTFOUND) {
                s->have[i] = 0;
                missing++;
            } else {
                qrc = lm_fail(rc, "opening table %s of %s", table_names[i], s->dir);
            }
        }
        if (qrc == QZ_OK && present && missing) {
            char names[64] = "";
            for (int i = 0; i < QZ_TABLE_COUNT; i++)
                if (!s->have[i]) snprintf(names + strlen(names), sizeof names - strlen(names), " %s", table_names[i]);
            qrc = qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged: table(s)%s are missing while the others exist",
                          s->dir, names);
        }
        if (qrc == QZ_OK && !present) {
            /* nothing of ours: the main database must be empty too */
            MDB_cursor *c = NULL;
            MDB_val k, v;
            rc = g_cursor_open(s, -1, txn, LM_MAIN_DBI, &c);
            if (rc == 0) rc = g_cursor_get(s, -1, c, &k, &v, MDB_FIRST);
            if (c && rc != LM_TRIPPED) mdb_cursor_close(c);
            if (rc == LM_TRIPPED)
                qrc = guard_tripped(s, NULL, -1, 0, "reading the main database");
            else if (rc == 0)
                qrc = qz__err(QZ_ECORRUPT, LM_DATA_FILE " of %s is damaged or foreign: its main database holds keys "
                              "but none of the tables meta, vectors, graph, kv", s->dir);
            else if (rc != MDB_NOTFOUND)
                qrc = lm_fail(rc, "reading the main database of %s", s->dir);
        }
        if (qrc == QZ_OK) {
            qrc = check_tail(s, txn, ei.me_last_pgno, file_size_now(s), txnid);
        }
        if (qrc < 0) {
            if (!atomic_load(&s->wedged)) mdb_txn_abort(txn);
            return qrc;
        }
        /* commit, not abort: an aborted txn closes the handles it opened */
        rc = mdb_txn_commit(txn);
        if (rc) return lm_fail(rc, "opening the tables of %s", s->dir);
        break;
    }
    if (ro || !missing) return QZ_OK;

    /* A new environment: create the four tables. */
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn = NULL;
        int rc;
        rc = g_txn_begin(s, 0, &txn);
        if (rc == LM_TRIPPED) return guard_tripped(s, NULL, -1, 1, "beginning the transaction that creates the tables");
        if (rc) return lm_fail(rc, "beginning the transaction that creates the tables of %s", s->dir);
        for (int i = 0; i < QZ_TABLE_COUNT && rc == 0; i++) {
            rc = g_dbi_open(s, i, txn, MDB_CREATE, &s->dbi[i]);
            if (rc == 0) s->have[i] = 1;
        }
        if (rc == LM_TRIPPED) return guard_tripped(s, NULL, -1, 1, "creating the tables");
        if (rc == 0) {
            rc = g_commit(s, txn);
            if (rc == LM_TRIPPED) return guard_tripped(s, NULL, -1, 1, "committing the new tables");
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == MDB_MAP_FULL && attempt < 8) {
            QZ_CHECK(map_grow(s));
            continue;
        }
        if (rc) return lm_fail(rc, "creating the tables of %s", s->dir);
        return QZ_OK;
    }
}

int qz__storage_lmdb_exists(const char *dir)
{
    if (!dir || !*dir) return 0;
    char *p = path_of(dir, LM_DATA_FILE);
    if (!p) return 0;
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    qz__free(p);
    return ok;
}

int qz__storage_lmdb_open_ex(const char *dir, uint32_t flags, uint64_t map, qz_storage **out)
{
    if (!out) return qz__err(QZ_EINVAL, "lmdb storage: NULL out");
    *out = NULL;
    if (!dir || !*dir) return qz__err(QZ_EINVAL, "lmdb storage: no directory");
    if (flags & ~(QZ__LMDB_READONLY | QZ__LMDB_NOSYNC)) return qz__err(QZ_EINVAL, "lmdb storage: unknown flags 0x%x", flags);
    int ro = (flags & QZ__LMDB_READONLY) != 0;
    /* LMDB would create lock.mdb (and, given a data.mdb of 0 bytes, try to
     * initialise it) even read-only: look first. */
    if (ro && !qz__storage_lmdb_exists(dir)) return qz__err(QZ_ENOTFOUND, "%s holds no database", dir);
    if (!ro && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return qz__err(errno == ENOSPC ? QZ_EFULL : QZ_EIO, "lmdb storage: cannot create directory %s: %s", dir,
                       strerror(errno));

    lm_store *s = qz__calloc(1, sizeof *s);
    char *path = path_of(dir, LM_DATA_FILE);
    if (!s || !path || !(s->dir = str_dup(dir))) {
        qz__free(path);
        if (s) qz__free(s->dir);
        qz__free(s);
        return qz__err(QZ_ENOMEM, "lmdb storage: out of memory");
    }
    s->flags = flags;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);

    int qrc = QZ_OK;
    struct stat fst;
    if (stat(path, &fst) == 0) {
        s->dev = fst.st_dev;
        s->ino = fst.st_ino;
        if (wedged_has(fst.st_dev, fst.st_ino)) {
            qrc = qz__err(QZ_EBUSY, "lmdb storage: an earlier handle of this process found %s damaged while writing and "
                          "still holds LMDB's writer lock of %s; it is released when the process exits", path, dir);
            goto fail;
        }
    }
    if ((qrc = check_metas(s, path)) < 0) goto fail;

    lm_install_fault_handlers();
    int rc = mdb_env_create(&s->env);
    if (rc) {
        s->env = NULL;
        qrc = lm_fail(rc, "creating the environment for %s", dir);
        goto fail;
    }
    mdb_env_set_assert(s->env, lm_assert_cb);
    if (!map) map = QZ__LMDB_DEFAULT_MAP;
    if ((rc = mdb_env_set_maxdbs(s->env, QZ_TABLE_COUNT + 4)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, QZ__LMDB_MAXREADERS)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)map)) != 0) {
        qrc = lm_fail(rc, "configuring the environment for %s", dir);
        goto fail;
    }
    unsigned envflags = MDB_NOTLS | (ro ? MDB_RDONLY : 0) | ((flags & QZ__LMDB_NOSYNC) ? MDB_NOSYNC : 0);
    rc = mdb_env_open(s->env, dir, envflags, 0644);
    if (rc) {
        qrc = lm_fail(rc, "opening the environment %s%s", dir, ro ? " read-only" : "");
        goto fail;
    }
    if (stat(path, &fst) == 0) { /* created just now */
        s->dev = fst.st_dev;
        s->ino = fst.st_ino;
    }
    MDB_stat st;
    if ((rc = mdb_env_stat(s->env, &st)) != 0) {
        qrc = lm_fail(rc, "reading the page size of %s", dir);
        goto fail;
    }
    s->psize = st.ms_psize;
    s->maxkey = (unsigned)mdb_env_get_maxkeysize(s->env);
    if (s->maxkey > QZ_MAX_KEY) s->maxkey = QZ_MAX_KEY;
    note_map(s);
    file_size_now(s);
    if ((qrc = open_tables(s)) < 0) goto fail;
    qz__free(path);

    qz_storage *b = &s->base;
    b->struct_size = (uint32_t)sizeof *b;
    b->flags = 0;
    b->user = s;
    b->begin = lm_begin;
    b->get = lm_get;
    b->put = lm_put;
    b->del = lm_del;
    b->scan = lm_scan;
    b->clear = lm_clear;
    b->commit = lm_commit;
    b->abort = lm_abort;
    b->sync = lm_sync;
    b->close = lm_close;
    *out = b;
    return QZ_OK;

fail:
    qz__free(path);
    lm_close(&s->base);
    return qrc;
}

int qz__storage_lmdb_open(const char *dir, uint32_t flags, qz_storage **out)
{
    return qz__storage_lmdb_open_ex(dir, flags, 0, out);
}
