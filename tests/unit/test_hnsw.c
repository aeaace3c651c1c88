/*
 * test_hnsw.c - the HNSW index (lib/index) driven directly, without lib/api:
 * create, insert, search, mark_deleted, repair, check, growth, slot reuse,
 * reachability after repair, deletion epochs, the stored-vector encoding and
 * the saturating distance, heavy delete/reinsert churn, and the cost of a
 * repair when deleted nodes far outnumber live ones.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/hnsw.h"
#include "testutil.h"

#define DIM 8

static qz__hnsw *make(uint32_t metric, uint32_t M, uint32_t efc, uint64_t capacity)
{
    qz__hnsw_config cfg = {.dim = DIM, .metric = metric, .M = M, .ef_construction = efc, .capacity = capacity,
                           .seed = 12345};
    qz__hnsw *h = NULL;
    TU_OK(qz__hnsw_create(&cfg, qz__kernels_active(), &h));
    assert_non_null(h);
    return h;
}

/* Insert float vector v under label; returns its slot. */
static uint32_t put(qz__hnsw *h, uint64_t label, const float *v)
{
    uint8_t enc[DIM * sizeof(float)];
    qz__hnsw_encode(h, v, enc);
    uint32_t slot;
    TU_OK(qz__hnsw_alloc_slot(h, &slot));
    TU_OK(qz__hnsw_insert(h, slot, label, enc, NULL, 0));
    return slot;
}

static void del(qz__hnsw *h, uint32_t slot)
{
    pthread_rwlock_rdlock(&h->resize);
    qz__hnsw_mark_deleted(h, slot);
    pthread_rwlock_unlock(&h->resize);
}

static size_t search(qz__hnsw *h, const float *q, size_t k, uint32_t ef, qz__hit *hits)
{
    uint8_t enc[DIM * sizeof(float)];
    qz__hnsw_encode(h, q, enc);
    size_t n;
    pthread_rwlock_rdlock(&h->resize);
    TU_OK(qz__hnsw_search(h, enc, k, ef, 0, NULL, NULL, hits, &n));
    pthread_rwlock_unlock(&h->resize);
    return n;
}

/* Exact answer with the index's own arithmetic: every LIVE slot, sorted. */
static size_t brute(qz__hnsw *h, const float *q, qz__hit *out)
{
    uint8_t enc[DIM * sizeof(float)];
    qz__hnsw_encode(h, q, enc);
    size_t n = 0;
    uint32_t hw = qz__hnsw_high_water(h);
    for (uint32_t s = 0; s < hw; s++)
        if (atomic_load(&h->state[s]) == QZ__LIVE) out[n++] = (qz__hit){qz__dist(h, enc, qz__node_vec(h, s)), s};
    qsort(out, n, sizeof *out, qz__hit_cmp);
    return n;
}

/* Live nodes reachable on layer 0 from the entry point, by BFS. */
static size_t reachable_live(qz__hnsw *h, unsigned char *seen)
{
    uint32_t hw = qz__hnsw_high_water(h);
    memset(seen, 0, hw);
    uint64_t e = atomic_load(&h->entry);
    if (e == UINT64_MAX) return 0;
    uint32_t *queue = malloc((hw + 1) * sizeof *queue);
    size_t head = 0, tail = 0, live = 0;
    queue[tail++] = (uint32_t)e;
    seen[(uint32_t)e] = 1;
    while (head < tail) {
        uint32_t p = queue[head++];
        live += atomic_load(&h->state[p]) == QZ__LIVE;
        _Atomic uint32_t *ll = qz__links(h, p, 0);
        for (uint32_t i = 1; i <= ll[0]; i++) {
            uint32_t t = ll[i];
            if (!seen[t]) {
                seen[t] = 1;
                queue[tail++] = t;
            }
        }
    }
    free(queue);
    return live;
}

static const uint32_t metrics[] = {QZ__METRIC_L2, QZ__METRIC_COSINE, QZ__METRIC_IP, QZ__METRIC_HAMMING};

static void empty_index_answers_nothing(void **state)
{
    (void)state;
    qz__hnsw *h = make(QZ__METRIC_L2, 16, 64, 0);
    float q[DIM] = {1, 2, 3};
    qz__hit hits[4];
    assert_int_equal(search(h, q, 4, 10, hits), 0);
    TU_OK(qz__hnsw_check(h));
    TU_OK(qz__hnsw_repair(h));
    assert_int_equal(qz__hnsw_max_level(h), 0);
    assert_true(qz__hnsw_memory(h) > 0);
    assert_int_equal(qz__hnsw_high_water(h), 0);
    qz__hnsw_destroy(h);
}

/* Tiny sets at M = 2 and 3, every metric: k >= n returns exactly every
 * live node with its exact distance, before and after deletes and repair. */
static void tiny_sets_give_exact_results(void **state)
{
    (void)state;
    for (uint32_t M = 2; M <= 3; M++) {
        for (size_t mi = 0; mi < 4; mi++) {
            for (size_t n = 1; n <= 24; n++) {
                qz__hnsw *h = make(metrics[mi], M, 8, 4);
                float *x = tu_dataset(n, DIM, 2, 100 * n + M);
                float *q = tu_dataset(3, DIM, 0, 7 * n);
                for (size_t i = 0; i < n; i++) put(h, 1000 + i, x + i * DIM);
                TU_OK(qz__hnsw_check(h));
                for (int phase = 0; phase < 3; phase++) {
                    if (phase == 1)
                        for (size_t s = 0; s < n; s += 2) del(h, (uint32_t)s);
                    if (phase == 2) TU_OK(qz__hnsw_repair(h));
                    TU_OK(qz__hnsw_check(h));
                    for (size_t j = 0; j < 3; j++) {
                        qz__hit got[64], want[64];
                        size_t nw = brute(h, q + j * DIM, want);
                        size_t ng = search(h, q + j * DIM, n + 2, 4, got);
                        if (ng != nw)
                            fail_msg("metric %u M %u n %zu phase %d: %zu results, %zu live", metrics[mi], M, n, phase,
                                     ng, nw);
                        for (size_t i = 0; i < ng; i++) {
                            /* ties may come in any order: compare distances, and membership */
                            assert_true(got[i].dist == want[i].dist);
                            assert_int_equal(atomic_load(&h->state[got[i].slot]), QZ__LIVE);
                            for (size_t t = 0; t < i; t++) assert_int_not_equal(got[t].slot, got[i].slot);
                        }
                    }
                }
                free(x);
                free(q);
                qz__hnsw_destroy(h);
            }
        }
    }
}

/* Delete a share of a graph, repair, and every live node is reachable from
 * the entry point on layer 0; nothing links to a freed slot (check). */
static void repair_keeps_every_live_node_reachable(void **state)
{
    (void)state;
    enum { N = 3000 };
    for (uint32_t M = 2; M <= 3; M++) {
        for (int share = 1; share <= 3; share++) { /* delete 1/4, 2/4, 3/4 */
            qz__hnsw *h = make(QZ__METRIC_L2, M, 32, 0);
            float *x = tu_dataset(N, DIM, 20, 40 + M * 3 + share);
            uint32_t *slots = malloc(N * sizeof *slots);
            for (size_t i = 0; i < N; i++) slots[i] = put(h, i, x + i * DIM);
            tu_rng r = {99u + share};
            size_t deleted = 0;
            for (size_t i = 0; i < N; i++)
                if (tu_next(&r) % 4 < (unsigned)share) {
                    del(h, slots[i]);
                    deleted++;
                }
            assert_int_equal(atomic_load(&h->n_deleted), deleted);
            TU_OK(qz__hnsw_repair(h));
            TU_OK(qz__hnsw_check(h));
            assert_int_equal(atomic_load(&h->n_deleted), 0);
            assert_int_equal(atomic_load(&h->n_live), N - deleted);
            unsigned char *seen = malloc(qz__hnsw_high_water(h) + 1);
            size_t reach = reachable_live(h, seen);
            if (reach != N - deleted)
                fail_msg("M %u, %d/4 deleted: %zu of %zu live nodes reachable after repair", M, share, reach,
                         N - deleted);
            free(seen);
            free(x);
            free(slots);
            qz__hnsw_destroy(h);
        }
    }
}

static void repaired_slots_are_reused(void **state)
{
    (void)state;
    enum { N = 500 };
    qz__hnsw *h = make(QZ__METRIC_COSINE, 3, 32, 0);
    float *x = tu_dataset(N, DIM, 4, 5);
    uint32_t slots[N];
    for (size_t i = 0; i < N; i++) slots[i] = put(h, i, x + i * DIM);
    uint32_t hw = qz__hnsw_high_water(h);
    assert_int_equal(hw, N);
    for (size_t i = 0; i < N; i += 2) del(h, slots[i]);
    /* deleted but not repaired: their slots are not free yet */
    uint32_t s;
    TU_OK(qz__hnsw_alloc_slot(h, &s));
    assert_int_equal(s, N);
    qz__hnsw_release_slot(h, s);
    TU_OK(qz__hnsw_repair(h));
    unsigned char *freed = calloc(N + 1, 1);
    for (size_t i = 0; i < N; i += 2) freed[slots[i]] = 1;
    freed[N] = 1; /* the one given back */
    for (size_t i = 0; i < N; i += 2) {
        uint32_t ns = put(h, 10000 + i, x + i * DIM);
        assert_true(ns <= N);
        assert_true(freed[ns]);
        freed[ns] = 0;
        assert_int_equal(h->labels[ns], 10000 + i);
    }
    assert_true(qz__hnsw_high_water(h) <= N + 1);
    TU_OK(qz__hnsw_check(h));
    qz__hit hits[4];
    for (size_t i = 0; i < N; i += 25) {
        size_t n = search(h, x + i * DIM, 4, 64, hits);
        assert_true(n == 4);
        int found = 0;
        for (size_t j = 0; j < n; j++) found |= h->labels[hits[j].slot] == (i % 2 ? i : 10000 + i);
        assert_true(found);
    }
    free(freed);
    free(x);
    qz__hnsw_destroy(h);
}

static void grows_from_a_tiny_capacity(void **state)
{
    (void)state;
    enum { N = 2000 };
    qz__hnsw *h = make(QZ__METRIC_L2, 8, 32, 2);
    assert_int_equal(h->capacity, 2);
    float *x = tu_dataset(N, DIM, 8, 11);
    for (size_t i = 0; i < N; i++) put(h, i, x + i * DIM);
    assert_true(h->capacity >= N);
    TU_OK(qz__hnsw_reserve(h, 3 * N));
    assert_true(h->capacity >= 3 * N);
    TU_OK(qz__hnsw_check(h));
    qz__hit *all = malloc(N * sizeof *all), *want = malloc(N * sizeof *want);
    assert_int_equal(search(h, x, N, 16, all), N); /* k = n: all of them */
    assert_int_equal(brute(h, x, want), N);
    for (size_t i = 0; i < N; i++) assert_true(all[i].dist == want[i].dist);
    size_t self = 0;
    for (size_t i = 0; i < N; i += 10) {
        qz__hit hits[1];
        assert_int_equal(search(h, x + i * DIM, 1, 64, hits), 1);
        self += h->labels[hits[0].slot] == i;
    }
    assert_true(self >= 198);
    assert_int_equal(qz__hnsw_reserve(h, (size_t)QZ__MAX_SLOTS + 1), QZ_EFULL);
    free(all);
    free(want);
    free(x);
    qz__hnsw_destroy(h);
}

/* mark_deleted stamps a LIVE slot once with a fresh epoch; a search that
 * starts afterwards never returns it. */
static void deletion_is_stamped_once(void **state)
{
    (void)state;
    qz__hnsw *h = make(QZ__METRIC_L2, 4, 16, 0);
    float *x = tu_dataset(20, DIM, 0, 3);
    uint32_t slots[20];
    for (size_t i = 0; i < 20; i++) slots[i] = put(h, i, x + i * DIM);
    for (size_t i = 0; i < 20; i++) assert_int_equal(atomic_load(&h->del_stamp[slots[i]]), 0);
    uint64_t c0 = atomic_load(&h->del_clock);
    del(h, slots[3]);
    uint64_t st = atomic_load(&h->del_stamp[slots[3]]);
    assert_int_equal(st, c0 + 1);
    assert_int_equal(atomic_load(&h->del_clock), c0 + 1);
    del(h, slots[3]); /* already deleted: neither a new stamp nor a new count */
    assert_int_equal(atomic_load(&h->del_stamp[slots[3]]), st);
    assert_int_equal(atomic_load(&h->n_deleted), 1);
    assert_int_equal(atomic_load(&h->n_live), 19);
    qz__hit hits[40];
    size_t n = search(h, x + 3 * DIM, 40, 40, hits);
    assert_int_equal(n, 19);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(hits[i].slot, slots[3]);
    TU_OK(qz__hnsw_repair(h));
    assert_int_equal(atomic_load(&h->del_stamp[slots[3]]), 0); /* freed: stamp cleared for the next node */
    uint32_t again = put(h, 77, x + 3 * DIM);
    assert_int_equal(again, slots[3]);
    assert_int_equal(atomic_load(&h->del_stamp[again]), 0);
    n = search(h, x + 3 * DIM, 1, 16, hits);
    assert_int_equal(n, 1);
    assert_int_equal(h->labels[hits[0].slot], 77);
    free(x);
    qz__hnsw_destroy(h);
}

static void encode_keeps_tiny_and_huge_vectors_finite(void **state)
{
    (void)state;
    qz__hnsw *h = make(QZ__METRIC_COSINE, 4, 16, 0);
    const float in[][DIM] = {
        {3e-41f, 0, 0, 0, 0, 0, 0, 0},
        {1e-45f, -1e-45f, 0, 0, 0, 0, 0, 1e-45f},
        {FLT_MAX, FLT_MAX, FLT_MAX, FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX},
        {1e38f, 1e-38f, 1e-45f, 0, 0, 0, 0, 1},
        {1, 2, 3, 4, 5, 6, 7, 8},
    };
    for (size_t v = 0; v < sizeof in / sizeof in[0]; v++) {
        float out[DIM];
        qz__hnsw_encode(h, in[v], out);
        double norm = 0, ref = 0;
        for (int i = 0; i < DIM; i++) {
            assert_true(isfinite(out[i]));
            norm += (double)out[i] * out[i];
        }
        assert_true(fabs(sqrt(norm) - 1) < 1e-6);
        /* the direction: out[i] ~ in[i] / |in|, computed here in long double */
        long double s = 0, big = 0;
        for (int i = 0; i < DIM; i++)
            if (fabsl((long double)in[v][i]) > big) big = fabsl((long double)in[v][i]);
        for (int i = 0; i < DIM; i++) s += ((long double)in[v][i] / big) * ((long double)in[v][i] / big);
        for (int i = 0; i < DIM; i++) {
            ref = (double)((long double)in[v][i] / big / sqrtl(s));
            assert_true(fabs(out[i] - ref) <= 1e-7);
        }
    }
    qz__hnsw_destroy(h);
}

/* Distances that overflow float saturate at +-FLT_MAX, never inf or NaN. */
static void distances_saturate_instead_of_overflowing(void **state)
{
    (void)state;
    qz__hnsw *l2 = make(QZ__METRIC_L2, 4, 16, 0), *ip = make(QZ__METRIC_IP, 4, 16, 0);
    const float a[DIM] = {FLT_MAX, -FLT_MAX, 1e38f, 1e38f, 0, 0, 0, 0};
    const float b[DIM] = {-FLT_MAX, FLT_MAX, 1e38f, -1e38f, 0, 0, 0, 0};
    const float c[DIM] = {1e30f, 1, 2, 3, 0, 0, 0, 0};
    assert_true(qz__dist(l2, a, b) == FLT_MAX);
    assert_true(qz__dist(l2, a, a) == 0);
    assert_true(qz__dist(l2, c, a) == FLT_MAX);
    float d = qz__dist(l2, c, c);
    assert_true(d == 0);
    /* IP: FLT_MAX^2 terms of both signs: the float kernel meets inf - inf */
    const float p[DIM] = {1e38f, 1e38f, 0, 0, 0, 0, 0, 0};
    const float q[DIM] = {1e38f, -1e38f, 0, 0, 0, 0, 0, 0};
    assert_true(qz__dist(ip, p, q) == 1.0f); /* 1 - (1e76 - 1e76) */
    assert_true(qz__dist(ip, p, p) == -FLT_MAX);
    const float nq[DIM] = {-1e38f, -1e38f, 0, 0, 0, 0, 0, 0};
    assert_true(qz__dist(ip, p, nq) == FLT_MAX);
    const float one[DIM] = {1, 0, 0, 0, 0, 0, 0, 0};
    assert_true(qz__dist(ip, one, one) == 0);
    qz__hnsw_destroy(l2);
    qz__hnsw_destroy(ip);
}

/* Delete and reinsert the same labels over and over, repairing between
 * batches: deleted nodes never pile up, slots are recycled, the graph
 * passes its check, and every live label is found by its own vector. */
static void heavy_churn_stays_bounded_and_searchable(void **state)
{
    (void)state;
    enum { N = 1500, BATCH = 150, ROUNDS = 40 };
    for (uint32_t M = 3; M <= 12; M += 9) {
        qz__hnsw *h = make(QZ__METRIC_L2, M, 64, 0);
        float *x = tu_dataset(N, DIM, 10, 1234 + M);
        uint32_t *slot = malloc(N * sizeof *slot);
        for (size_t i = 0; i < N; i++) slot[i] = put(h, i, x + i * DIM);
        tu_rng r = {M};
        size_t max_deleted = 0;
        for (int round = 0; round < ROUNDS; round++) {
            for (int b = 0; b < BATCH; b++) {
                size_t i = tu_next(&r) % N;
                /* a new version of label i, near the old one; the old node goes */
                for (int j = 0; j < DIM; j++) x[i * DIM + j] += (float)tu_normal(&r) * 0.05f;
                uint32_t old = slot[i];
                slot[i] = put(h, i, x + i * DIM);
                del(h, old);
                size_t d = atomic_load(&h->n_deleted);
                if (d > max_deleted) max_deleted = d;
            }
            TU_OK(qz__hnsw_repair(h));
            assert_int_equal(atomic_load(&h->n_deleted), 0);
            assert_int_equal(atomic_load(&h->n_live), N);
            if (round % 10 == 9) TU_OK(qz__hnsw_check(h));
        }
        assert_true(max_deleted <= BATCH);
        /* Slots are recycled: at most one batch beyond the live count. */
        assert_true(qz__hnsw_high_water(h) <= N + BATCH);
        unsigned char *seen = malloc(qz__hnsw_high_water(h) + 1);
        assert_int_equal(reachable_live(h, seen), N);
        free(seen);
        size_t missed = 0;
        for (size_t i = 0; i < N; i++) {
            qz__hit hits[10];
            size_t n = search(h, x + i * DIM, 10, 100, hits);
            assert_int_equal(n, 10);
            int found = 0;
            for (size_t j = 0; j < n; j++) found |= hits[j].slot == slot[i];
            missed += !found;
        }
        print_message("M %u: %d rounds of %d replacements, at most %zu deleted at once; %zu of %d labels not found\n",
                      M, ROUNDS, BATCH, max_deleted, missed, N);
        assert_int_equal(missed, 0);
        free(x);
        free(slot);
        qz__hnsw_destroy(h);
    }
}

static int by_dist_then_slot(const void *a, const void *b)
{
    const qz__hit *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

/* The inlined sort and nearest-k selection repair uses, against qsort. */
static void hit_sort_and_selection_agree_with_qsort(void **state)
{
    (void)state;
    tu_rng r = {5};
    qz__hit a[700], b[700];
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = tu_next(&r) % 700;
        unsigned spread = trial % 3 == 0 ? 4 : 1000000; /* many ties, or few */
        for (size_t i = 0; i < n; i++) {
            a[i].dist = (float)(tu_next(&r) % spread) * (trial % 5 == 0 ? -1.0f : 1.0f);
            a[i].slot = (uint32_t)i;
        }
        if (trial % 7 == 0) qsort(a, n, sizeof *a, by_dist_then_slot); /* sorted input */
        if (trial % 11 == 0) /* reversed input */
            for (size_t i = 0; i < n / 2; i++) {
                qz__hit t = a[i];
                a[i] = a[n - 1 - i];
                a[n - 1 - i] = t;
            }
        memcpy(b, a, n * sizeof *a);
        qsort(b, n, sizeof *b, by_dist_then_slot);
        qz__hit c[700];
        memcpy(c, a, n * sizeof *a);
        qz__hits_sort(c, n);
        assert_memory_equal(c, b, n * sizeof *c);
        size_t k = n ? tu_next(&r) % (n + 3) : 0;
        memcpy(c, a, n * sizeof *a);
        qz__hits_nearest(c, n, k);
        if (k > n) k = n;
        qz__hits_sort(c, k); /* the k nearest, in some order */
        assert_memory_equal(c, b, k * sizeof *c);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Time one repair of `live` survivors among `live + deleted` nodes. */
static double time_repair(uint32_t M, size_t live, size_t deleted, size_t *reach)
{
    size_t n = live + deleted;
    qz__hnsw *h = make(QZ__METRIC_L2, M, 100, n);
    float *x = tu_dataset(n, DIM, 10, 555 + n);
    uint32_t *slots = malloc(n * sizeof *slots);
    for (size_t i = 0; i < n; i++) slots[i] = put(h, i, x + i * DIM);
    /* delete all but `live`, spread over the set */
    tu_rng r = {n};
    unsigned char *keep = calloc(n, 1);
    for (size_t kept = 0; kept < live;) {
        size_t i = tu_next(&r) % n;
        if (!keep[i]) keep[i] = 1, kept++;
    }
    for (size_t i = 0; i < n; i++)
        if (!keep[i]) del(h, slots[i]);
    double t0 = now_s();
    TU_OK(qz__hnsw_repair(h));
    double t = now_s() - t0;
    TU_OK(qz__hnsw_check(h));
    assert_int_equal(atomic_load(&h->n_live), live);
    unsigned char *seen = malloc(qz__hnsw_high_water(h) + 1);
    *reach = reachable_live(h, seen);
    free(seen);
    free(keep);
    free(slots);
    free(x);
    qz__hnsw_destroy(h);
    return t;
}

static void repair_cost_follows_the_deleted_nodes(void **state)
{
    (void)state;
    static const size_t cases[][2] = {{10, 10000}, {100, 10000}, {10000, 1250}, {1000, 1250}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t reach;
        double t = time_repair(16, cases[c][0], cases[c][1], &reach);
        print_message("repair of %zu live + %zu deleted (M 16, ef_construction 100): %.1f ms\n", cases[c][0],
                      cases[c][1], t * 1e3);
        assert_int_equal(reach, cases[c][0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_index_answers_nothing),
        cmocka_unit_test(tiny_sets_give_exact_results),
        cmocka_unit_test(repair_keeps_every_live_node_reachable),
        cmocka_unit_test(repaired_slots_are_reused),
        cmocka_unit_test(grows_from_a_tiny_capacity),
        cmocka_unit_test(deletion_is_stamped_once),
        cmocka_unit_test(encode_keeps_tiny_and_huge_vectors_finite),
        cmocka_unit_test(distances_saturate_instead_of_overflowing),
        cmocka_unit_test(heavy_churn_stays_bounded_and_searchable),
        cmocka_unit_test(hit_sort_and_selection_agree_with_qsort),
        cmocka_unit_test(repair_cost_follows_the_deleted_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
