/*
 * test_errors.c - status texts, per-thread error messages, metric names.
 *
 *  - qz_strerror(): every status code of quartz.h has its own non-empty
 *    text; any other value gives "unknown error".
 *  - qz_errmsg(): never NULL; "" after a successful call; after a failure
 *    it describes that failure, and a later failure replaces it; it is per
 *    thread (two threads that fail differently each see their own message,
 *    a third that only succeeds sees "").
 *  - qz_metric_name(): the name of every metric, NULL for other values.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const int all_codes[] = {
    QZ_OK,      QZ_EINVAL,     QZ_ENOMEM,  QZ_ENOTFOUND, QZ_EEXISTS,    QZ_EIO,
    QZ_ECORRUPT, QZ_EFULL,     QZ_EBUSY,   QZ_EVERSION,  QZ_EDIM,       QZ_EUSER,
    QZ_ENONFINITE, QZ_EZEROVEC, QZ_ERANGE, QZ_ETOOSMALL, QZ_EREADONLY, QZ_EUNSUPPORTED,
};
#define NCODES (sizeof all_codes / sizeof all_codes[0])

static void every_status_code_has_its_own_nonempty_text(void **state)
{
    (void)state;
    /* The list above is every code: 0 down to the last one, no gaps. */
    for (size_t i = 0; i < NCODES; i++) assert_int_equal(all_codes[i], -(int)i);
    for (size_t i = 0; i < NCODES; i++) {
        const char *t = qz_strerror(all_codes[i]);
        if (!t || !*t) fail_msg("qz_strerror(%d) is %s", all_codes[i], t ? "empty" : "NULL");
        if (strcmp(t, "unknown error") == 0) fail_msg("qz_strerror(%d) is \"unknown error\"", all_codes[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t, qz_strerror(all_codes[j])) == 0)
                fail_msg("qz_strerror(%d) and qz_strerror(%d) are both \"%s\"", all_codes[i], all_codes[j], t);
    }
    /* Static storage: the same pointer every time. */
    assert_ptr_equal(qz_strerror(QZ_EDIM), qz_strerror(QZ_EDIM));
}

static void unknown_codes_give_unknown_error(void **state)
{
    (void)state;
    const int unknown[] = {-(int)NCODES, -(int)NCODES - 1, -100, -1000, 1, 2, 42, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *t = qz_strerror(unknown[i]);
        assert_non_null(t);
        if (strcmp(t, "unknown error") != 0) fail_msg("qz_strerror(%d) is \"%s\", expected \"unknown error\"", unknown[i], t);
    }
}

/* Fails on purpose: a vector of 3 floats into a database of 4 dimensions. */
static void fail_with_edim(qz_db *db)
{
    const float v[3] = {1, 2, 3};
    assert_int_equal(qz_db_insert(db, 1, v, 3, NULL, 0), QZ_EDIM);
    const char *m = qz_errmsg();
    assert_non_null(m);
    if (!strstr(m, "3") || !strstr(m, "4")) fail_msg("QZ_EDIM message does not name both dimensions: \"%s\"", m);
}

static void expect_empty_errmsg(const char *after)
{
    const char *m = qz_errmsg();
    assert_non_null(m);
    if (*m) fail_msg("qz_errmsg() after a successful %s is \"%s\", expected \"\"", after, m);
}

static void errmsg_is_empty_after_each_successful_call(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 32);
    expect_empty_errmsg("qz_db_open");
    const float v[4] = {1, 2, 3, 4};
    float out[4];
    uint64_t ids[4];
    float d[4];
    size_t n = 0, vl = 0;
    qz_stats st = {.struct_size = sizeof st};
    char val[8];

    fail_with_edim(db);
    TU_OK(qz_db_insert(db, 7, v, 4, "m", 1));
    expect_empty_errmsg("qz_db_insert");
    fail_with_edim(db);
    TU_OK(qz_db_upsert(db, 7, v, 4, "mm", 2));
    expect_empty_errmsg("qz_db_upsert");
    fail_with_edim(db);
    TU_OK(qz_db_get(db, 7, out, 4, NULL, 0, NULL));
    expect_empty_errmsg("qz_db_get");
    fail_with_edim(db);
    TU_OK(qz_db_search(db, v, 4, 1, NULL, ids, d, &n));
    expect_empty_errmsg("qz_db_search");
    fail_with_edim(db);
    TU_OK(qz_db_stats(db, &st));
    expect_empty_errmsg("qz_db_stats");
    fail_with_edim(db);
    TU_OK(qz_kv_put(db, "k", 1, "v", 1));
    expect_empty_errmsg("qz_kv_put");
    fail_with_edim(db);
    TU_OK(qz_kv_get(db, "k", 1, val, sizeof val, &vl));
    expect_empty_errmsg("qz_kv_get");
    fail_with_edim(db);
    TU_OK(qz_db_check(db));
    expect_empty_errmsg("qz_db_check");
    fail_with_edim(db);
    TU_OK(qz_db_delete(db, 7));
    expect_empty_errmsg("qz_db_delete");
    fail_with_edim(db);
    TU_OK(qz_db_close(db));
    expect_empty_errmsg("qz_db_close");
}

static void errmsg_describes_the_last_failure(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 32);
    fail_with_edim(db);
    char first[512];
    strncpy(first, qz_errmsg(), sizeof first - 1);
    first[sizeof first - 1] = '\0';
    /* A different failure replaces the message. */
    assert_int_equal(qz_db_get(db, 123456789, NULL, 0, NULL, 0, NULL), QZ_ENOTFOUND);
    const char *m = qz_errmsg();
    if (!*m || strcmp(m, first) == 0) fail_msg("the message after QZ_ENOTFOUND is still \"%s\"", m);
    if (!strstr(m, "123456789")) fail_msg("QZ_ENOTFOUND message does not name the id: \"%s\"", m);
    const float nan_v[4] = {1, 0, (float)NAN, 0};
    assert_int_equal(qz_db_insert(db, 1, nan_v, 4, NULL, 0), QZ_ENONFINITE);
    if (!*qz_errmsg()) fail_msg("QZ_ENONFINITE left no message");
    TU_OK(qz_db_close(db));
    /* Failures without a handle have messages too. */
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    qz_db *x = NULL;
    o.dimensions = QZ_MAX_DIMENSIONS + 1;
    assert_int_equal(qz_db_open(NULL, &o, &x), QZ_ERANGE);
    if (!*qz_errmsg()) fail_msg("QZ_ERANGE from qz_db_open left no message");
    assert_null(x);
}

/* ---- per thread ---------------------------------------------------------- */

typedef struct shared {
    qz_db *db;
    pthread_barrier_t bar;
    char msg[3][512];
    int rc[3];
} shared;

typedef struct targ {
    shared *s;
    int which;
} targ;

static void keep(shared *s, int which, int rc)
{
    s->rc[which] = rc;
    strncpy(s->msg[which], qz_errmsg(), sizeof s->msg[which] - 1);
}

static void *worker(void *p)
{
    targ *a = p;
    shared *s = a->s;
    const float v3[3] = {1, 2, 3};
    /* Step 1: thread 0 fails with QZ_EDIM. */
    if (a->which == 0) keep(s, 0, qz_db_insert(s->db, 1, v3, 3, NULL, 0));
    pthread_barrier_wait(&s->bar);
    /* Step 2: thread 1 fails with QZ_ENOTFOUND, thread 2 succeeds. */
    if (a->which == 1) keep(s, 1, qz_db_delete(s->db, 987654321));
    if (a->which == 2) keep(s, 2, qz_db_contains(s->db, 5) < 0 ? -1 : qz_kv_put(s->db, "t", 1, "x", 1));
    pthread_barrier_wait(&s->bar);
    /* Step 3: each reads its own message again after the others failed. */
    char now[512];
    strncpy(now, qz_errmsg(), sizeof now - 1);
    now[sizeof now - 1] = '\0';
    pthread_barrier_wait(&s->bar);
    if (strcmp(now, s->msg[a->which]) != 0) {
        snprintf(s->msg[a->which], sizeof s->msg[a->which], "CHANGED to \"%.400s\"", now);
        s->rc[a->which] = 1;
    }
    return NULL;
}

static void errmsg_is_per_thread(void **state)
{
    (void)state;
    shared s;
    memset(&s, 0, sizeof s);
    s.db = tu_open_mem(4, QZ_METRIC_L2, 8, 32);
    assert_int_equal(pthread_barrier_init(&s.bar, NULL, 3), 0);
    pthread_t t[3];
    targ a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (targ){&s, i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&s.bar);
    TU_OK(qz_db_close(s.db));
    if (s.rc[0] != QZ_EDIM) fail_msg("thread 0: rc %d, message \"%s\"", s.rc[0], s.msg[0]);
    if (s.rc[1] != QZ_ENOTFOUND) fail_msg("thread 1: rc %d, message \"%s\"", s.rc[1], s.msg[1]);
    if (s.rc[2] != QZ_OK) fail_msg("thread 2: rc %d, message \"%s\"", s.rc[2], s.msg[2]);
    if (!strstr(s.msg[0], "3") || !strstr(s.msg[0], "4"))
        fail_msg("thread 0 does not see its QZ_EDIM message: \"%s\"", s.msg[0]);
    if (!strstr(s.msg[1], "987654321"))
        fail_msg("thread 1 does not see its QZ_ENOTFOUND message: \"%s\"", s.msg[1]);
    if (s.msg[2][0]) fail_msg("thread 2 only succeeded but sees \"%s\"", s.msg[2]);
    if (strcmp(s.msg[0], s.msg[1]) == 0) fail_msg("threads 0 and 1 see the same message \"%s\"", s.msg[0]);
}

/* ---- metric names ------------------------------------------------------------ */

static void metric_names_of_every_metric_and_null_for_others(void **state)
{
    (void)state;
    static const struct {
        uint32_t m;
        const char *name;
    } known[] = {
        {QZ_METRIC_DEFAULT, "cosine"}, {QZ_METRIC_COSINE, "cosine"}, {QZ_METRIC_L2, "l2"},
        {QZ_METRIC_IP, "ip"},          {QZ_METRIC_HAMMING, "hamming"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *n = qz_metric_name(known[i].m);
        if (!n || strcmp(n, known[i].name) != 0)
            fail_msg("qz_metric_name(%u) is %s%s%s, expected \"%s\"", known[i].m, n ? "\"" : "", n ? n : "NULL",
                     n ? "\"" : "", known[i].name);
    }
    const uint32_t unknown[] = {QZ_METRIC_HAMMING + 1, 5, 16, 255, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *n = qz_metric_name(unknown[i]);
        if (n) fail_msg("qz_metric_name(%u) is \"%s\", expected NULL", unknown[i], n);
    }
    /* The name of what a database reports is the name it was opened with. */
    for (uint32_t m = QZ_METRIC_COSINE; m <= QZ_METRIC_HAMMING; m++) {
        qz_db *db = tu_open_mem(8, m, 8, 32);
        qz_stats st = {.struct_size = sizeof st};
        TU_OK(qz_db_stats(db, &st));
        assert_string_equal(qz_metric_name(st.metric), known[m].name);
        TU_OK(qz_db_close(db));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_status_code_has_its_own_nonempty_text),
        cmocka_unit_test(unknown_codes_give_unknown_error),
        cmocka_unit_test(errmsg_is_empty_after_each_successful_call),
        cmocka_unit_test(errmsg_describes_the_last_failure),
        cmocka_unit_test(errmsg_is_per_thread),
        cmocka_unit_test(metric_names_of_every_metric_and_null_for_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
