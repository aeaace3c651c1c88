/*
 * test_idmap.c - the sharded id -> slot map (lib/index/idmap.c) on its own:
 * put, get, del, reserve, tombstone reuse, growth, foreach, out-of-memory,
 * and a long random run against a trivially correct model.
 */
#include <stdlib.h>
#include <string.h>

#include "index/idmap.h"
#include "testutil.h"
#include "util/alloc.h"

static qz__idmap *new_map(void)
{
    qz__idmap *m = malloc(sizeof *m);
    assert_non_null(m);
    qz__idmap_init(m);
    return m;
}

static void free_map(qz__idmap *m)
{
    qz__idmap_destroy(m);
    free(m);
}

static void empty_map_has_nothing(void **state)
{
    (void)state;
    qz__idmap *m = new_map();
    uint32_t slot = 77;
    assert_int_equal(qz__idmap_get(m, 0, &slot), 0);
    assert_int_equal(qz__idmap_get(m, UINT64_MAX, &slot), 0);
    assert_int_equal(slot, 77); /* untouched when absent */
    assert_int_equal(qz__idmap_del(m, 5), 0);
    assert_int_equal(qz__idmap_count(m), 0);
    assert_true(qz__idmap_memory(m) >= sizeof *m);
    free_map(m);
}

static void put_get_replace_delete_extreme_keys(void **state)
{
    (void)state;
    qz__idmap *m = new_map();
    const uint64_t keys[] = {0, 1, 2, UINT64_MAX, UINT64_MAX - 1, 1ull << 63, 0x00000000ffffffffull,
                             0xdeadbeefcafebabeull};
    const size_t nk = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < nk; i++) TU_OK(qz__idmap_put(m, keys[i], (uint32_t)i * 10));
    assert_int_equal(qz__idmap_count(m), nk);
    for (size_t i = 0; i < nk; i++) {
        uint32_t s;
        assert_int_equal(qz__idmap_get(m, keys[i], &s), 1);
        assert_int_equal(s, i * 10);
        assert_ptr_equal(qz__idmap_shard_of(m, keys[i]), qz__idmap_shard_of(m, keys[i]));
    }
    /* replace: same count, new slot (slot values up to UINT32_MAX - 1 are valid) */
    TU_OK(qz__idmap_put(m, UINT64_MAX, UINT32_MAX - 1));
    TU_OK(qz__idmap_put(m, 0, 12345));
    assert_int_equal(qz__idmap_count(m), nk);
    uint32_t s;
    assert_int_equal(qz__idmap_get(m, UINT64_MAX, &s), 1);
    assert_int_equal(s, UINT32_MAX - 1);
    assert_int_equal(qz__idmap_get(m, 0, &s), 1);
    assert_int_equal(s, 12345);
    /* delete: gone, once; the others stay */
    assert_int_equal(qz__idmap_del(m, 0), 1);
    assert_int_equal(qz__idmap_del(m, 0), 0);
    assert_int_equal(qz__idmap_get(m, 0, &s), 0);
    assert_int_equal(qz__idmap_del(m, UINT64_MAX), 1);
    assert_int_equal(qz__idmap_get(m, UINT64_MAX, &s), 0);
    assert_int_equal(qz__idmap_count(m), nk - 2);
    for (size_t i = 1; i < nk; i++) {
        if (keys[i] == UINT64_MAX) continue;
        assert_int_equal(qz__idmap_get(m, keys[i], &s), 1);
        assert_int_equal(s, i * 10);
    }
    /* and back again over the tombstones */
    TU_OK(qz__idmap_put(m, 0, 1));
    TU_OK(qz__idmap_put(m, UINT64_MAX, 2));
    assert_int_equal(qz__idmap_get(m, 0, &s), 1);
    assert_int_equal(s, 1);
    assert_int_equal(qz__idmap_get(m, UINT64_MAX, &s), 1);
    assert_int_equal(s, 2);
    assert_int_equal(qz__idmap_count(m), nk);
    free_map(m);
}

static void grows_to_many_keys(void **state)
{
    (void)state;
    enum { N = 200000 };
    qz__idmap *m = new_map();
    size_t mem0 = qz__idmap_memory(m);
    /* sequential, strided and high keys */
    for (uint64_t i = 0; i < N; i++) TU_OK(qz__idmap_put(m, i * 0x9e3779b97f4a7c15ull, (uint32_t)i));
    assert_int_equal(qz__idmap_count(m), N);
    assert_true(qz__idmap_memory(m) > mem0 + N * sizeof(qz__idmap_entry));
    for (uint64_t i = 0; i < N; i++) {
        uint32_t s;
        assert_int_equal(qz__idmap_get(m, i * 0x9e3779b97f4a7c15ull, &s), 1);
        assert_int_equal(s, (uint32_t)i);
    }
    uint32_t s;
    assert_int_equal(qz__idmap_get(m, 1, &s), 0); /* i * stride == 1 only for i = stride^-1 mod 2^64, far above N */
    free_map(m);
}

/* Insert/delete cycles over ever new keys with few present at a time: the
 * tombstones are cleared by rehashing, so the table stays small and probes
 * stay finite (a table full of tombstones would make a miss loop forever). */
static void tombstones_do_not_accumulate(void **state)
{
    (void)state;
    qz__idmap *m = new_map();
    for (uint64_t i = 0; i < 64; i++) TU_OK(qz__idmap_put(m, i, (uint32_t)i));
    size_t mem_small = 0;
    for (uint64_t round = 0; round < 2000; round++) {
        for (uint64_t i = 0; i < 64; i++) {
            uint64_t k = 1000 + round * 64 + i;
            TU_OK(qz__idmap_put(m, k, (uint32_t)i));
        }
        for (uint64_t i = 0; i < 64; i++) assert_int_equal(qz__idmap_del(m, 1000 + round * 64 + i), 1);
        if (round == 10) mem_small = qz__idmap_memory(m);
        uint32_t s;
        assert_int_equal(qz__idmap_get(m, 999999999, &s), 0); /* a miss terminates */
    }
    assert_int_equal(qz__idmap_count(m), 64);
    /* 128,000 keys went through; the tables stayed as large as for ~128 */
    assert_true(qz__idmap_memory(m) <= mem_small * 2);
    for (uint64_t i = 0; i < 64; i++) {
        uint32_t s;
        assert_int_equal(qz__idmap_get(m, i, &s), 1);
        assert_int_equal(s, i);
    }
    free_map(m);
}

static void reserve_makes_later_puts_allocation_free(void **state)
{
    (void)state;
    enum { N = 20000 };
    qz__idmap *m = new_map();
    TU_OK(qz__idmap_reserve(m, N));
    size_t mem = qz__idmap_memory(m);
    /* Half of the reservation: far below what any shard was given. */
    qz__alloc_fail_after(0);
    for (uint64_t i = 0; i < N / 2; i++) {
        int rc = qz__idmap_put(m, i, (uint32_t)i);
        if (rc != QZ_OK) {
            qz__alloc_fail_after(-1);
            fail_msg("put %llu after reserve allocated", (unsigned long long)i);
        }
    }
    qz__alloc_fail_after(-1);
    assert_int_equal(qz__idmap_memory(m), mem);
    assert_int_equal(qz__idmap_count(m), N / 2);

    /* reserve_one: room for exactly the next put into that key's shard */
    qz__idmap *m2 = new_map();
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t k = UINT64_MAX - i * 7;
        TU_OK(qz__idmap_reserve_one(m2, k));
        qz__alloc_fail_after(0);
        int rc = qz__idmap_put(m2, k, (uint32_t)i);
        qz__alloc_fail_after(-1);
        if (rc != QZ_OK) fail_msg("put of key %llu after reserve_one allocated", (unsigned long long)k);
    }
    assert_int_equal(qz__idmap_count(m2), 5000);
    free_map(m2);
    free_map(m);
}

static void failed_growth_changes_nothing(void **state)
{
    (void)state;
    qz__idmap *m = new_map();
    size_t ok = 0, failed = 0;
    for (uint64_t i = 0; i < 3000; i++) {
        qz__alloc_fail_after(0);
        int rc = qz__idmap_put(m, i, (uint32_t)i);
        qz__alloc_fail_after(-1);
        uint32_t s;
        if (rc == QZ_OK) {
            ok++;
            continue;
        }
        assert_int_equal(rc, QZ_ENOMEM);
        failed++;
        assert_int_equal(qz__idmap_get(m, i, &s), 0);
        assert_int_equal(qz__idmap_count(m), ok);
        TU_OK(qz__idmap_put(m, i, (uint32_t)i)); /* with memory it works */
        ok++;
    }
    assert_true(failed > 0);
    for (uint64_t i = 0; i < 3000; i++) {
        uint32_t s;
        assert_int_equal(qz__idmap_get(m, i, &s), 1);
        assert_int_equal(s, i);
    }
    free_map(m);
}

typedef struct visit_state {
    size_t n;
    unsigned char *seen;
    uint64_t stop_after;
} visit_state;

static int visit(uint64_t key, uint32_t slot, void *u)
{
    visit_state *v = u;
    uint64_t i = key == UINT64_MAX ? 1000 : key; /* key UINT64_MAX stands for row 1000 */
    assert_true(i <= 1000);
    assert_int_equal(slot, (uint32_t)(i + 1));
    assert_false(v->seen[i]);
    v->seen[i] = 1;
    v->n++;
    return v->stop_after && v->n == v->stop_after ? 42 : 0;
}

static void foreach_visits_every_key_once_and_can_stop(void **state)
{
    (void)state;
    qz__idmap *m = new_map();
    for (uint64_t i = 0; i < 1000; i++) TU_OK(qz__idmap_put(m, i, (uint32_t)(i + 1)));
    TU_OK(qz__idmap_put(m, UINT64_MAX, 1001));
    for (uint64_t i = 0; i < 1000; i += 3) assert_int_equal(qz__idmap_del(m, i), 1); /* tombstones are skipped */
    unsigned char seen[1001] = {0};
    visit_state v = {0, seen, 0};
    assert_int_equal(qz__idmap_foreach(m, visit, &v), 0);
    assert_int_equal(v.n, qz__idmap_count(m));
    for (uint64_t i = 0; i < 1000; i++) assert_int_equal(seen[i], i % 3 != 0);
    assert_int_equal(seen[1000], 1);
    memset(seen, 0, sizeof seen);
    visit_state stop = {0, seen, 10};
    assert_int_equal(qz__idmap_foreach(m, visit, &stop), 42);
    assert_int_equal(stop.n, 10);
    qz__idmap *e = new_map();
    visit_state none = {0, seen, 0};
    assert_int_equal(qz__idmap_foreach(e, visit, &none), 0);
    assert_int_equal(none.n, 0);
    free_map(e);
    free_map(m);
}

/* A model: the pool of keys, whether each is present and its slot. */
static void random_operations_agree_with_a_model(void **state)
{
    (void)state;
    enum { POOL = 3000, OPS = 400000 };
    uint64_t *pool = malloc(POOL * sizeof *pool);
    unsigned char *present = calloc(POOL, 1);
    uint32_t *slot = calloc(POOL, sizeof *slot);
    tu_rng r = {2024};
    pool[0] = 0;
    pool[1] = UINT64_MAX;
    pool[2] = 1;
    pool[3] = UINT64_MAX - 1;
    for (size_t i = 4; i < POOL; i++) {
        uint64_t x = tu_next(&r);
        /* small, high and clustered keys: tu_next, its top bits, and runs */
        pool[i] = i % 3 == 0 ? x : i % 3 == 1 ? x >> 40 : 5000000 + i;
        for (size_t j = 0; j < i; j++)
            if (pool[j] == pool[i]) { /* keep the pool distinct */
                pool[i] = tu_next(&r);
                j = (size_t)-1;
            }
    }
    qz__idmap *m = new_map();
    size_t count = 0;
    for (size_t op = 0; op < OPS; op++) {
        size_t i = tu_next(&r) % POOL;
        unsigned what = (unsigned)(tu_next(&r) % 10);
        uint32_t s;
        if (what < 4) {
            uint32_t v = (uint32_t)tu_next(&r);
            TU_OK(qz__idmap_put(m, pool[i], v));
            count += !present[i];
            present[i] = 1;
            slot[i] = v;
        } else if (what < 7) {
            assert_int_equal(qz__idmap_del(m, pool[i]), present[i]);
            count -= present[i];
            present[i] = 0;
        } else {
            int got = qz__idmap_get(m, pool[i], &s);
            assert_int_equal(got, present[i]);
            if (got) assert_int_equal(s, slot[i]);
        }
        if (op % 50000 == 0) assert_int_equal(qz__idmap_count(m), count);
    }
    assert_int_equal(qz__idmap_count(m), count);
    for (size_t i = 0; i < POOL; i++) {
        uint32_t s;
        assert_int_equal(qz__idmap_get(m, pool[i], &s), present[i]);
        if (present[i]) assert_int_equal(s, slot[i]);
    }
    free_map(m);
    free(pool);
    free(present);
    free(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_map_has_nothing),
        cmocka_unit_test(put_get_replace_delete_extreme_keys),
        cmocka_unit_test(grows_to_many_keys),
        cmocka_unit_test(tombstones_do_not_accumulate),
        cmocka_unit_test(reserve_makes_later_puts_allocation_free),
        cmocka_unit_test(failed_growth_changes_nothing),
        cmocka_unit_test(foreach_visits_every_key_once_and_can_stop),
        cmocka_unit_test(random_operations_agree_with_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
