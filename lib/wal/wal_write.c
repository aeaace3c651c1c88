/*
 * wal_write.c - appending to the log with group commit (model: wal.h).
 *
 * Memory: records are encoded into a singly linked list of blocks. A record
 * never spans blocks (a large one gets a block of its own) and a block never
 * moves, so the I/O leader and the applier can read bytes outside the mutex:
 * bytes below a block's len never change, and appenders only add above it.
 *
 * Three cursors walk the list, each only forwards:
 *   apply  (head, aoff)  first byte not yet applied to LMDB
 *   write  (wblk, woff)  first byte not yet written to the file
 *   end    (tail, len)   first free byte
 * apply <= write <= end. Blocks wholly before the apply cursor are freed,
 * except the tail, which keeps receiving appends.
 *
 * Only the leader (flag `leader`, taken under the mutex) moves the write
 * cursor, touches the file descriptor or replaces the file, so those need no
 * lock of their own. The applier (the journal, one thread at a time) moves
 * the apply cursor.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "util/alloc.h"
#include "util/error.h"
#include "wal/wal.h"
#include "persist/format.h"

#define WAL_BLOCK_SIZE ((size_t)1 << 20)

typedef struct wal_blk {
    struct wal_blk *next;
    size_t len, cap;
    unsigned char data[];
} wal_blk;

struct qz__wal {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* leader done / progress */
    char *path, *tmp_path, *dir_path;
    int fd;
    uint64_t generation; /* of the current file (0: no file) */
    uint64_t file_bytes;
    uint64_t next_seq;
    uint64_t written_seq, durable_seq, applied_seq;
    int leader;
    int failed; /* sticky error code, 0 if none */
    char failmsg[256];
    wal_blk *head, *tail, *wblk;
    size_t aoff, woff;
    uint64_t unapplied;
    uint64_t syncs;
};

/* ---- files -------------------------------------------------------------- */

static int io_code(int e)
{
#ifdef EDQUOT
    if (e == EDQUOT) return QZ_EFULL;
#endif
    return e == ENOSPC ? QZ_EFULL : QZ_EIO;
}

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* A random nonzero generation other than avoid (the previous one). */
static uint64_t new_generation(uint64_t avoid)
{
    static _Atomic uint64_t counter;
    for (;;) {
        uint64_t g = 0;
#if defined(__linux__)
        if (getrandom(&g, sizeof g, GRND_NONBLOCK) != (ssize_t)sizeof g) g = 0;
#endif
        if (!g) { /* no entropy source: mix what differs between files and processes */
            struct {
                struct timespec rt, mono;
                uint64_t pid, n;
                const void *addr;
            } m;
            memset(&m, 0, sizeof m);
            clock_gettime(CLOCK_REALTIME, &m.rt);
            clock_gettime(CLOCK_MONOTONIC, &m.mono);
            m.pid = (uint64_t)getpid();
            m.n = ++counter;
            m.addr = &m;
            g = XXH3_64bits(&m, sizeof m);
        }
        if (g && g != avoid) return g;
    }
}

/* Create an empty log with base_seq and the given generations at tmp, make
 * it durable, rename it to path and fsync the directory. Returns the open
 * descriptor or an error. */
static int create_log(const qz__wal *w, uint64_t base_seq, uint64_t generation, uint64_t prev_generation, int *fd_out)
{
    unsigned char h[QZ__WAL_HEADER_SIZE];
    qz__wal_header_encode(h, base_seq, generation, prev_generation);
    int fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return qz__err(io_code(errno), "cannot create %s: %s", w->tmp_path, strerror(errno));
    const char *step = "write";
    if (write_all(fd, h, sizeof h, 0) != 0) goto fail;
    step = "fdatasync";
    if (fdatasync(fd) != 0) goto fail;
    step = "rename";
    if (rename(w->tmp_path, w->path) != 0) goto fail;
    step = "fsync the directory of";
    if (fsync_dir(w->dir_path) != 0) goto fail;
    *fd_out = fd;
    return QZ_OK;
fail:;
    int e = errno;
    close(fd);
    unlink(w->tmp_path);
    return qz__err(io_code(e), "cannot %s %s: %s", step, w->path, strerror(e));
}

/* ---- helpers (mutex held) --------------------------------------------- */

static int fail_code(qz__wal *w) { return qz__err(w->failed, "%s", w->failmsg); }

/* Skip the write cursor past fully written blocks (never past the tail). */
static void wcursor_normalize(qz__wal *w)
{
    while (w->wblk && w->wblk != w->tail && w->woff == w->wblk->len) {
        w->wblk = w->wblk->next;
        w->woff = 0;
    }
}

static void leader_take(qz__wal *w)
{
    while (w->leader) pthread_cond_wait(&w->cv, &w->mu);
    w->leader = 1;
}

static void leader_release(qz__wal *w)
{
    w->leader = 0;
    pthread_cond_broadcast(&w->cv);
}

/* Leader only, mutex held on entry and exit (dropped during I/O): write
 * every appended byte and, if do_sync, fdatasync. */
static int do_io(qz__wal *w, int do_sync)
{
    if (w->failed) return fail_code(w);
    wcursor_normalize(w);
    uint64_t upto = w->next_seq - 1;
    int need_write = w->wblk && !(w->wblk == w->tail && w->woff == w->tail->len);
    int need_sync = do_sync && (need_write || w->durable_seq < w->written_seq);
    if (!need_write && !need_sync) return QZ_OK;
    if (!w->path) { /* no file: "written" only moves the cursor */
        wal_blk *eb = w->tail;
        w->wblk = eb;
        w->woff = eb ? eb->len : 0;
        w->written_seq = upto;
        if (do_sync) w->durable_seq = upto;
        return QZ_OK;
    }

    struct iovec *iov = NULL;
    int niov = 0;
    size_t total = 0;
    wal_blk *end_blk = w->tail;
    size_t end_off = w->tail ? w->tail->len : 0;
    if (need_write) {
        int n = 0;
        for (wal_blk *b = w->wblk; b; b = b->next) n++;
        iov = qz__malloc(sizeof *iov * (size_t)n);
        if (!iov) return qz__err(QZ_ENOMEM, "quartz.log: out of memory for %d write segments", n);
        for (wal_blk *b = w->wblk; b; b = b->next) {
            size_t start = b == w->wblk ? w->woff : 0;
            size_t stop = b == end_blk ? end_off : b->len;
            if (stop > start) {
                iov[niov].iov_base = b->data + start;
                iov[niov].iov_len = stop - start;
                total += stop - start;
                niov++;
            }
            if (b == end_blk) break;
        }
    }
    uint64_t off = w->file_bytes;
    int fd = w->fd;
    pthread_mutex_unlock(&w->mu);

    int err = 0;
    const char *what = "write";
    for (int i = 0; i < niov && !err;) {
        int cnt = niov - i < IOV_MAX ? niov - i : IOV_MAX;
        ssize_t k = pwritev(fd, iov + i, cnt, (off_t)off);
        if (k <= 0) {
            if (k == 0) err = EIO; /* no progress on a regular file: give up */
            else if (errno != EINTR) err = errno;
            continue;
        }
        off += (uint64_t)k;
        while (k > 0 && i < niov) { /* consume written bytes */
            if ((size_t)k >= iov[i].iov_len) {
                k -= (ssize_t)iov[i].iov_len;
                i++;
            } else {
                iov[i].iov_base = (unsigned char *)iov[i].iov_base + k;
                iov[i].iov_len -= (size_t)k;
                k = 0;
            }
        }
    }
    if (!err && need_sync) {
        what = "fdatasync";
        if (fdatasync(fd) != 0) err = errno;
    }
    qz__free(iov);

    pthread_mutex_lock(&w->mu);
    if (err) {
        w->failed = io_code(err);
        snprintf(w->failmsg, sizeof w->failmsg, "quartz.log: %s failed: %s (the log is unusable; reopen the database)",
                 what, strerror(err));
        return fail_code(w);
    }
    if (need_write) {
        w->wblk = end_blk;
        w->woff = end_off;
        w->file_bytes += total;
        w->written_seq = upto;
    }
    if (need_sync) {
        w->durable_seq = w->written_seq;
        w->syncs++;
    }
    return QZ_OK;
}

/* ---- public ------------------------------------------------------------- */

/* A log without a file (path NULL) or with one. */
static int wal_new(const char *path, uint64_t base_seq, qz__wal **out)
{
    *out = NULL;
    qz__wal *w = qz__calloc(1, sizeof *w);
    if (!w) return qz__err(QZ_ENOMEM, "out of memory opening the log %s", path ? path : "(in memory)");
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->next_seq = base_seq + 1;
    w->written_seq = w->durable_seq = w->applied_seq = base_seq;
    if (path) {
        w->path = qz__strdup2(path, NULL);
        w->tmp_path = qz__strdup2(path, ".tmp");
        w->dir_path = qz__strdup2(path, NULL);
        if (!w->path || !w->tmp_path || !w->dir_path) {
            qz__wal_close(w);
            return qz__err(QZ_ENOMEM, "out of memory opening %s", path);
        }
        char *slash = strrchr(w->dir_path, '/');
        if (!slash)
            strcpy(w->dir_path, ".");
        else if (slash == w->dir_path)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    *out = w;
    return QZ_OK;
}

int qz__wal_open(const char *path, uint64_t base_seq, uint64_t prev_generation, qz__wal **out)
{
    if (!out || !path || !*path) return qz__err(QZ_EINVAL, "log: no path");
    QZ_CHECK(wal_new(path, base_seq, out));
    qz__wal *w = *out;
    w->generation = new_generation(prev_generation);
    int rc = create_log(w, base_seq, w->generation, prev_generation, &w->fd);
    if (rc < 0) {
        qz__wal_close(w);
        *out = NULL;
        return rc;
    }
    w->file_bytes = QZ__WAL_HEADER_SIZE;
    return QZ_OK;
}

int qz__wal_open_mem(uint64_t base_seq, qz__wal **out)
{
    if (!out) return qz__err(QZ_EINVAL, "log: NULL out");
    return wal_new(NULL, base_seq, out);
}

void qz__wal_close(qz__wal *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    wal_blk *b = w->head;
    while (b) {
        wal_blk *n = b->next;
        qz__free(b);
        b = n;
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    qz__free(w->path);
    qz__free(w->tmp_path);
    qz__free(w->dir_path);
    qz__free(w);
}

int qz__wal_append(qz__wal *w, uint32_t type, const qz__wal_part *parts, int nparts, uint64_t *seq)
{
    uint64_t plen = 0;
    for (int i = 0; i < nparts; i++) plen += parts[i].n;
    if (plen > QZ__WAL_MAX_PAYLOAD)
        return qz__err(QZ_EFULL, "log record of %llu bytes exceeds the %u-byte limit", (unsigned long long)plen,
                       (unsigned)QZ__WAL_MAX_PAYLOAD);
    size_t rec = (size_t)plen + QZ__WAL_REC_OVERHEAD;

    pthread_mutex_lock(&w->mu);
    if (w->failed) {
        int rc = fail_code(w);
        pthread_mutex_unlock(&w->mu);
        return rc;
    }
    if (!w->tail || w->tail->cap - w->tail->len < rec) {
        size_t cap = rec > WAL_BLOCK_SIZE ? rec : WAL_BLOCK_SIZE;
        wal_blk *b = qz__malloc(sizeof *b + cap);
        if (!b) {
            pthread_mutex_unlock(&w->mu);
            return qz__err(QZ_ENOMEM, "out of memory for a %zu-byte log block", cap);
        }
        b->next = NULL;
        b->len = 0;
        b->cap = cap;
        if (w->tail) {
            w->tail->next = b;
        } else {
            w->head = w->wblk = b;
            w->aoff = w->woff = 0;
        }
        w->tail = b;
    }
    unsigned char *p = w->tail->data + w->tail->len;
    uint64_t s = w->next_seq++;
    qz__put_u32le(p, (uint32_t)plen);
    qz__put_u32le(p + 4, type);
    qz__put_u64le(p + 8, s);
    size_t off = QZ__WAL_REC_HEADER;
    for (int i = 0; i < nparts; i++) {
        if (parts[i].n) memcpy(p + off, parts[i].p, parts[i].n);
        off += parts[i].n;
    }
    qz__put_u64le(p + off, XXH3_64bits(p, off));
    w->tail->len += rec;
    w->unapplied += rec;
    pthread_mutex_unlock(&w->mu);
    if (seq) *seq = s;
    return QZ_OK;
}

int qz__wal_sync(qz__wal *w, uint64_t seq)
{
    pthread_mutex_lock(&w->mu);
    int rc = QZ_OK;
    if (seq >= w->next_seq) {
        rc = qz__err(QZ_EINVAL, "log sequence %llu was never appended", (unsigned long long)seq);
    } else {
        while (!w->failed && w->durable_seq < seq) {
            if (w->leader) {
                pthread_cond_wait(&w->cv, &w->mu);
                continue;
            }
            w->leader = 1;
            rc = do_io(w, 1);
            leader_release(w);
            if (rc < 0) break;
        }
        if (w->failed) rc = fail_code(w);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int qz__wal_write_out(qz__wal *w, int do_sync)
{
    pthread_mutex_lock(&w->mu);
    leader_take(w);
    int rc = do_io(w, do_sync);
    leader_release(w);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int qz__wal_pending(qz__wal *w, size_t max_bytes, qz__wal_rec_fn fn, void *user, qz__wal_pos *pos)
{
    pthread_mutex_lock(&w->mu);
    wcursor_normalize(w);
    wal_blk *b = w->head;
    size_t start = w->aoff;
    wal_blk *wb = w->wblk;
    size_t woff = w->woff;
    uint64_t seq = w->applied_seq + 1;
    pthread_mutex_unlock(&w->mu);

    pos->blk = b;
    pos->off = start;
    pos->seq = seq - 1;
    pos->bytes = 0;
    int visited = 0;
    /* Blocks before wb are complete and immutable; wb is read up to woff. */
    while (b) {
        size_t stop = b == wb ? woff : b->len;
        while (start < stop) {
            if (visited && pos->bytes >= max_bytes) return visited;
            qz__wal_rec rec;
            size_t sz;
            const char *why;
            if (!qz__wal_rec_check(b->data + start, stop - start, seq, &rec, &sz, &why))
                return qz__err(QZ_ECORRUPT, "log buffer: record seq %llu in memory is invalid (%s)",
                               (unsigned long long)seq, why);
            int rc = fn(&rec, user);
            if (rc) return rc;
            start += sz;
            pos->blk = b;
            pos->off = start;
            pos->seq = seq++;
            pos->bytes += sz;
            visited++;
        }
        if (b == wb) break;
        b = b->next;
        start = 0;
    }
    return visited;
}

void qz__wal_mark_applied(qz__wal *w, const qz__wal_pos *pos)
{
    if (pos->bytes == 0) return;
    pthread_mutex_lock(&w->mu);
    wcursor_normalize(w);
    wal_blk *target = pos->blk;
    while (w->head != target) { /* wholly applied blocks before the target */
        wal_blk *n = w->head->next;
        qz__free(w->head);
        w->head = n;
    }
    w->aoff = pos->off;
    if (w->head != w->tail && w->aoff == w->head->len) {
        wal_blk *n = w->head->next;
        if (w->wblk == w->head) { /* cannot happen after normalize; kept for safety */
            w->wblk = n;
            w->woff = 0;
        }
        qz__free(w->head);
        w->head = n;
        w->aoff = 0;
    }
    w->applied_seq = pos->seq;
    w->unapplied -= pos->bytes;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int qz__wal_checkpoint(qz__wal *w, int (*apply)(void *user), void *user)
{
    pthread_mutex_lock(&w->mu);
    leader_take(w);
    int rc = do_io(w, 1);
    pthread_mutex_unlock(&w->mu);
    if (rc == QZ_OK) rc = apply(user);
    pthread_mutex_lock(&w->mu);
    if (rc == QZ_OK && w->applied_seq != w->written_seq)
        rc = qz__err(QZ_EIO, "log reset: records up to %llu written but only %llu applied",
                     (unsigned long long)w->written_seq, (unsigned long long)w->applied_seq);
    if (rc == QZ_OK && w->path && w->file_bytes > QZ__WAL_HEADER_SIZE) {
        uint64_t base = w->written_seq;
        uint64_t prev = w->generation, gen = new_generation(prev);
        pthread_mutex_unlock(&w->mu);
        int fd = -1;
        rc = create_log(w, base, gen, prev, &fd); /* on failure the old file stays in use */
        pthread_mutex_lock(&w->mu);
        if (rc == QZ_OK) {
            close(w->fd);
            w->fd = fd;
            w->file_bytes = QZ__WAL_HEADER_SIZE;
            w->generation = gen;
        }
    }
    leader_release(w);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

#define WAL_GETTER(name, field)                                                                    \
    uint64_t name(qz__wal *w)                                                                      \
    {                                                                                              \
        pthread_mutex_lock(&w->mu);                                                                \
        uint64_t v = (uint64_t)(field);                                                            \
        pthread_mutex_unlock(&w->mu);                                                              \
        return v;                                                                                  \
    }

WAL_GETTER(qz__wal_last_seq, w->next_seq - 1)
WAL_GETTER(qz__wal_durable_seq, w->durable_seq)
WAL_GETTER(qz__wal_applied_seq, w->applied_seq)
WAL_GETTER(qz__wal_file_bytes, w->file_bytes)
WAL_GETTER(qz__wal_unapplied_bytes, w->unapplied)
WAL_GETTER(qz__wal_syncs, w->syncs)
WAL_GETTER(qz__wal_generation, w->generation)
