/*
 * bench_reopen.c - how long opening a database takes after a clean close
 * and after the writer was killed, and how much of the work since the last
 * graph snapshot that open has to redo.
 *
 * (a) Build: the first --n rows of DIR/base.fvecs by qz_db_insert_batch()
 *     into a fresh directory, close (which writes the graph snapshot). Time
 *     the open after that clean close, then close again.
 * (b) Crash: fork a child that opens the directory (--durability, SYNC by
 *     default so that an acknowledged write is a durable one), performs
 *     --writes writes on --threads threads (write i is an upsert of an
 *     existing id for --upsert-pct percent of them, else an insert of a new
 *     id) and SIGKILLs itself right after the --kill-after'th acknowledged
 *     write (default: the last one): no thread starts another write, and
 *     after --kill-delay-ms (default 0; use at least the batch window with
 *     BATCHED, whose acknowledged writes are durable only after it) the
 *     process dies with writes of other threads possibly in flight. The
 *     parent times the next open, checks what it holds, then times the
 *     close (a full checkpoint) and one more open.
 *
 * The open after the kill re-inserts every VECTORS record whose (id, seq)
 * has no node in the stored graph snapshot. The snapshot is the one of the
 * clean close in (a) unless the engine checkpoints while writes run, so
 * the count printed is inferred: the distinct ids of the acknowledged
 * writes (exact with one writer thread; with T threads up to T-1 writes in
 * flight at the kill may have reached the log too), together with the
 * work of the open in CPU seconds against the build's CPU time per vector.
 * The public API does not report it. Every step is given in wall and in
 * CPU seconds of this process (the library's threads included): on a
 * shared machine the CPU figure is the steadier one.
 *
 * Public API only. Prints markdown. Without DIR/base.fvecs it says why and
 * exits 0.
 *
 *   bench_reopen [--data DIR] [--n N] [--writes W] [--kill-after K]
 *                [--upsert-pct P] [--threads T] [--durability sync|batched]
 *                [--kill-delay-ms D] [--tmp DIR]
 * DIR defaults to $QZ_DATA_DIR/glove6b-100-angular, else
 * ../shared/data/glove6b-100-angular.
 */
#include <errno.h>
#include <math.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "datasets.h"
#include "quartz.h"

#define CHECK(expr)                                                                                                \
    do {                                                                                                           \
        int rc_ = (expr);                                                                                          \
        if (rc_ != QZ_OK) {                                                                                        \
            fprintf(stderr, "%s:%d: %s -> %d (%s): %s\n", __FILE__, __LINE__, #expr, rc_, qz_strerror(rc_),        \
                    qz_errmsg());                                                                                  \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

/* CPU seconds (user + system) used by this process so far: on a shared
 * machine a better measure of work than wall time. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rmtree(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* ---- the write sequence, known to child and parent alike ---- */

typedef struct plan {
    size_t n;          /* rows built in (a): ids 0 .. n-1 */
    size_t writes;
    unsigned upsert_pct;
    size_t dim;
    const float *base;
    size_t base_n;
} plan;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int is_upsert(const plan *p, size_t i) { return mix(i * 2 + 1) % 100 < p->upsert_pct; }

/* Id of write i: an existing id (upsert) or a new one past the build. */
static uint64_t write_id(const plan *p, size_t i)
{
    return is_upsert(p, i) ? mix(i) % p->n : p->n + i;
}

/* Vector of write i: another base row, slightly moved (never a copy of
 * the row the id already has). */
static void write_vec(const plan *p, size_t i, float *out)
{
    size_t row = (size_t)(mix(i ^ 0x5bd1e995u) % p->base_n);
    const float *r = p->base + row * p->dim;
    for (size_t d = 0; d < p->dim; d++) out[d] = r[d] + (float)((mix(i * 131 + d) % 1000) - 500) * 1e-5f;
}

/* ---- (b): the child that writes and is killed ---- */

typedef struct shared {
    atomic_size_t acked;  /* acknowledged writes so far */
    atomic_int failed;
    atomic_int stop;      /* kill point reached: start no more writes */
    unsigned char ack[];  /* ack[i] = 1 once write i returned QZ_OK */
} shared;

typedef struct child_ctx {
    qz_db *db;
    const plan *p;
    shared *sh;
    size_t kill_after;
    unsigned threads, t;
    unsigned kill_delay_ms;
} child_ctx;

static void *child_writer(void *arg)
{
    child_ctx *c = arg;
    float *v = malloc(c->p->dim * sizeof *v);
    for (size_t i = c->t; i < c->p->writes && !atomic_load(&c->sh->stop); i += c->threads) {
        write_vec(c->p, i, v);
        uint64_t id = write_id(c->p, i);
        int rc = is_upsert(c->p, i) ? qz_db_upsert(c->db, id, v, c->p->dim, NULL, 0)
                                    : qz_db_insert(c->db, id, v, c->p->dim, NULL, 0);
        if (rc != QZ_OK) {
            fprintf(stderr, "child: write %zu (id %llu) -> %d: %s\n", i, (unsigned long long)id, rc, qz_errmsg());
            atomic_store(&c->sh->failed, 1);
            kill(getpid(), SIGKILL);
        }
        c->sh->ack[i] = 1;
        size_t done = atomic_fetch_add(&c->sh->acked, 1) + 1;
        if (done == c->kill_after) {
            atomic_store(&c->sh->stop, 1); /* writes already started still finish */
            if (c->kill_delay_ms) {
                struct timespec ts = {c->kill_delay_ms / 1000, (long)(c->kill_delay_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            kill(getpid(), SIGKILL); /* no close, no flush, no snapshot */
        }
    }
    free(v);
    return NULL;
}

static void child_main(const char *dir, const plan *p, shared *sh, size_t kill_after, unsigned threads,
                       uint32_t durability, unsigned kill_delay_ms)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.durability = durability;
    qz_db *db;
    CHECK(qz_db_open(dir, &o, &db));
    child_ctx c[64];
    pthread_t th[64];
    for (unsigned t = 0; t < threads; t++) {
        c[t] = (child_ctx){db, p, sh, kill_after, threads, t, kill_delay_ms};
        pthread_create(&th[t], NULL, child_writer, &c[t]);
    }
    for (unsigned t = 0; t < threads; t++) pthread_join(th[t], NULL);
    /* Only reached when kill_after > writes: die anyway, unclosed. */
    kill(getpid(), SIGKILL);
    _exit(3);
}

/* ---- main ---- */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--data DIR] [--n N] [--writes W] [--kill-after K] [--upsert-pct P] [--threads T]\n"
            "          [--durability sync|batched] [--kill-delay-ms D] [--tmp DIR]\n",
            argv0);
}

int main(int argc, char **argv)
{
    char defdata[1024];
    const char *env = getenv("QZ_DATA_DIR");
    if (env && *env) snprintf(defdata, sizeof defdata, "%s/glove6b-100-angular", env);
    else snprintf(defdata, sizeof defdata, "../shared/data/glove6b-100-angular");
    const char *data = defdata, *tmp = "/tmp";
    size_t n = 0, writes = 20000, kill_after = 0;
    unsigned upsert_pct = 50, threads = 1, kill_delay_ms = 0;
    uint32_t durability = QZ_DURABILITY_SYNC;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v) data = v, i++;
        else if (!strcmp(a, "--n") && v) n = (size_t)atol(v), i++;
        else if (!strcmp(a, "--writes") && v) writes = (size_t)atol(v), i++;
        else if (!strcmp(a, "--kill-after") && v) kill_after = (size_t)atol(v), i++;
        else if (!strcmp(a, "--upsert-pct") && v) upsert_pct = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--threads") && v) threads = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--kill-delay-ms") && v) kill_delay_ms = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--tmp") && v) tmp = v, i++;
        else if (!strcmp(a, "--durability") && v) {
            if (!strcmp(v, "sync")) durability = QZ_DURABILITY_SYNC;
            else if (!strcmp(v, "batched")) durability = QZ_DURABILITY_BATCHED;
            else return usage(argv[0]), 2;
            i++;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || upsert_pct > 100) return usage(argv[0]), 2;
    if (!kill_after || kill_after > writes) kill_after = writes;

    char path[1100], err[512];
    snprintf(path, sizeof path, "%s/base.fvecs", data);
    bench_fmat base = {0};
    if (access(path, R_OK) != 0 || bench_read_fvecs(path, &base, err, sizeof err) != 0) {
        printf("bench_reopen: skipped: cannot read %s (%s); pass --data DIR or set QZ_DATA_DIR\n", path,
               access(path, R_OK) != 0 ? strerror(errno) : err);
        return 0;
    }
    if (!n || n > base.n) n = base.n;
    plan p = {n, writes, upsert_pct, base.dim, base.data, base.n};

    char root[1100];
    snprintf(root, sizeof root, "%s/qzbench-reopen-XXXXXX", tmp);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/db", root);

    struct utsname un;
    uname(&un);
    printf("# bench_reopen\n\nlibquartz %s, kernels %s, %ld online cores, %s %s; data %s (%zu x %zu, first %zu "
           "built); database under %s (M 16, ef_construction 200, cosine)\n\n",
           qz_version_string(), qz_simd_backend(), sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release, data,
           base.n, base.dim, n, tmp);

    /* (a) build, clean close, timed open */
    fprintf(stderr, "(a) building %zu rows\n", n);
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = (uint32_t)base.dim;
    o.metric = QZ_METRIC_COSINE;
    o.initial_capacity = n + writes;
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    double t0 = bench_now(), c0 = cpu_now();
    qz_db *db;
    CHECK(qz_db_open(dir, &o, &db));
    CHECK(qz_db_insert_batch(db, n, ids, base.data, base.dim, NULL, NULL, 0));
    double t_ins = bench_now() - t0, c_ins = cpu_now() - c0;
    double t1 = bench_now(), c1 = cpu_now();
    CHECK(qz_db_close(db));
    double t_close = bench_now() - t1, c_close = cpu_now() - c1;
    free(ids);

    t1 = bench_now(), c1 = cpu_now();
    CHECK(qz_db_open(dir, NULL, &db));
    double t_open_clean = bench_now() - t1, c_open_clean = cpu_now() - c1;
    qz_stats st = {.struct_size = sizeof st};
    CHECK(qz_db_stats(db, &st));
    if (st.count != n) {
        fprintf(stderr, "open after clean close holds %llu vectors, expected %zu\n", (unsigned long long)st.count, n);
        return 1;
    }
    CHECK(qz_db_close(db));

    /* (b) writes in a child killed by SIGKILL */
    fprintf(stderr, "(b) child: %zu writes (%u%% upserts) on %u thread(s), %s, SIGKILL after write %zu\n", writes,
            upsert_pct, threads, durability == QZ_DURABILITY_SYNC ? "SYNC" : "BATCHED", kill_after);
    size_t shbytes = sizeof(shared) + writes;
    shared *sh = mmap(NULL, shbytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    atomic_init(&sh->acked, 0);
    atomic_init(&sh->failed, 0);
    atomic_init(&sh->stop, 0);
    fflush(stdout);
    double tw = bench_now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) child_main(dir, &p, sh, kill_after, threads, durability, kill_delay_ms);
    int status = 0;
    waitpid(pid, &status, 0);
    double t_child = bench_now() - tw;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL || atomic_load(&sh->failed)) {
        fprintf(stderr, "the writer child did not die of SIGKILL as planned (status %d)\n", status);
        return 1;
    }
    size_t acked = atomic_load(&sh->acked);

    /* What the open must redo: distinct ids among the acknowledged writes. */
    unsigned char *seen = calloc(n + writes, 1);
    size_t distinct = 0, new_ids = 0, last = SIZE_MAX;
    for (size_t i = 0; i < writes; i++) {
        if (!sh->ack[i]) continue;
        last = i;
        uint64_t id = write_id(&p, i);
        if (!seen[id]) {
            seen[id] = 1;
            distinct++;
            if (id >= n) new_ids++;
        }
    }

    t1 = bench_now(), c1 = cpu_now();
    CHECK(qz_db_open(dir, NULL, &db));
    double t_open_kill = bench_now() - t1, c_open_kill = cpu_now() - c1;
    CHECK(qz_db_stats(db, &st));
    uint64_t count_after = st.count, reinserted = st.open_reinserted;
    /* Every acknowledged write is there; with one writer the count is exact
     * and the last write's vector is the stored one. */
    size_t missing = 0;
    for (size_t i = 0; i < writes; i++)
        if (sh->ack[i] && qz_db_contains(db, write_id(&p, i)) != 1) missing++;
    int count_ok = threads == 1 ? count_after == n + new_ids
                                : count_after >= n + new_ids && count_after < n + new_ids + threads;
    double last_dot = 1.0;
    if (last != SIZE_MAX && threads == 1) {
        float *w = malloc(base.dim * sizeof *w), *g = malloc(base.dim * sizeof *g);
        write_vec(&p, last, w);
        CHECK(qz_db_get(db, write_id(&p, last), g, base.dim, NULL, 0, NULL));
        double dot = 0, nw = 0, ng = 0;
        for (size_t d = 0; d < base.dim; d++) dot += (double)w[d] * g[d], nw += (double)w[d] * w[d], ng += (double)g[d] * g[d];
        last_dot = dot / (sqrt(nw) * sqrt(ng));
        free(w);
        free(g);
    }
    t1 = bench_now(), c1 = cpu_now();
    CHECK(qz_db_close(db));
    double t_close2 = bench_now() - t1, c_close2 = cpu_now() - c1;
    t1 = bench_now(), c1 = cpu_now();
    CHECK(qz_db_open(dir, NULL, &db));
    double t_open_again = bench_now() - t1, c_open_again = cpu_now() - c1;
    CHECK(qz_db_close(db));

    double per_insert = c_ins / (double)n; /* CPU seconds per built vector */
    double est = (c_open_kill - c_open_clean) / per_insert;
    printf("## (a) Build %zu rows, clean close, open\n\n", n);
    printf("| step | wall s | CPU s |\n|---|---:|---:|\n");
    printf("| qz_db_insert_batch of %zu rows (all cores) | %.2f | %.2f |\n", n, t_ins, c_ins);
    printf("| close (flush + graph snapshot) | %.2f | %.2f |\n", t_close, c_close);
    printf("| **open after the clean close** | **%.3f** | %.3f |\n\n", t_open_clean, c_open_clean);
    printf("## (b) %zu writes (%u%% upserts), SIGKILL after acknowledged write %zu, open\n\n", writes, upsert_pct,
           kill_after);
    printf("Writer child: %u thread(s), durability %s, kill delay %u ms; %zu writes acknowledged, %zu distinct ids "
           "(%zu new), child ran %.2f s (open + writes).\n\n",
           threads, durability == QZ_DURABILITY_SYNC ? "SYNC" : "BATCHED", kill_delay_ms, acked, distinct, new_ids,
           t_child);
    printf("| step | wall s | CPU s |\n|---|---:|---:|\n");
    printf("| **open after SIGKILL** | **%.3f** | %.3f |\n", t_open_kill, c_open_kill);
    printf("| close after that open (repair + full snapshot) | %.2f | %.2f |\n", t_close2, c_close2);
    printf("| open after that close | %.3f | %.3f |\n\n", t_open_again, c_open_again);
    printf("Vectors the open after SIGKILL re-inserted (qz_stats.open_reinserted): %llu, of %zu distinct ids "
           "written since the clean close of (a)%s (the rest were covered by a checkpoint). The open used %.2f CPU s "
           "more than the clean one; at the build's %.3f CPU ms per vector that is the work of ~%.0f inserts.\n\n",
           (unsigned long long)reinserted, distinct, threads > 1 ? " (plus up to threads-1 in flight at the kill)" : "",
           c_open_kill - c_open_clean, per_insert * 1e3, est);
    printf("Check after the open: %llu vectors (%s), %zu acknowledged ids missing", (unsigned long long)count_after,
           count_ok ? "as expected" : "NOT as expected", missing);
    if (threads == 1) printf(", last write's vector %s (cosine %.6f).\n", last_dot > 0.9999 ? "stored" : "WRONG", last_dot);
    else printf(" (vectors not compared with several writers).\n");
    free(seen);
    munmap(sh, shbytes);
    rmtree(root);
    bench_fmat_free(&base);
    return (missing || !count_ok || last_dot <= 0.9999) ? 1 : 0;
}
