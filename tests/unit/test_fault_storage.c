/*
 * test_fault_storage.c - the fault-injecting storage wrapper of
 * tests/support/fault_storage.h, over the in-memory backend.
 *
 * Checks that the wrapper passes everything through and counts it, that
 * each kind of rule fails exactly the calls it names with the chosen code
 * and a message, that injected failures keep storage.h's promises (a failed
 * commit leaves nothing; a failed get or put leaves the transaction usable;
 * a failed begin opens nothing), the read-error switch, healing, the
 * open-transaction count and thread safety of the counters.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_storage.h"
#include "storage/storage.h"
#include "testutil.h"

static qz_storage *wrap_mem(void)
{
    qz_storage *mem = NULL, *s = NULL;
    TU_OK(qz__storage_mem_open(&mem));
    TU_OK(fault_storage_wrap(mem, FAULT_STORAGE_OWN, &s));
    assert_true(fault_storage_is(s));
    assert_false(fault_storage_is(mem));
    assert_ptr_equal(fault_storage_inner(s), mem);
    return s;
}

static int put_str(qz_storage *s, qz_storage_txn *t, const char *k, const char *v)
{
    return s->put(s, t, QZ_TABLE_KV, k, strlen(k), v, strlen(v));
}

/* Value of k in a fresh read-only transaction ("" when absent). */
static void read_committed(qz_storage *s, const char *k, char *buf, size_t cap)
{
    qz_storage_txn *t = NULL;
    TU_OK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v = NULL;
    size_t vl = 0;
    int rc = s->get(s, t, QZ_TABLE_KV, k, strlen(k), &v, &vl);
    buf[0] = '\0';
    if (rc == QZ_OK) {
        assert_true(vl < cap);
        memcpy(buf, v, vl);
        buf[vl] = '\0';
    } else if (rc != QZ_ENOTFOUND) {
        fail_msg("get %s -> %d (%s): %s", k, rc, qz_strerror(rc), qz_errmsg());
    }
    s->abort(s, t);
}

static int commit_one(qz_storage *s, const char *k, const char *v)
{
    qz_storage_txn *t = NULL;
    int rc = s->begin(s, 0, &t);
    if (rc) return rc;
    rc = put_str(s, t, k, v);
    if (rc) {
        s->abort(s, t);
        return rc;
    }
    return s->commit(s, t);
}

static int count_fn(const void *k, size_t kl, const void *v, size_t vl, void *u)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(int *)u;
    return 0;
}

static void passes_everything_through_and_counts_calls(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    assert_int_equal(fault_storage_calls(s, FAULT_ALL), 0);
    qz_storage_txn *t = NULL;
    TU_OK(s->begin(s, 0, &t));
    assert_int_equal(fault_storage_open_txns(s), 1);
    TU_OK(put_str(s, t, "a", "1"));
    TU_OK(put_str(s, t, "b", "2"));
    TU_OK(put_str(s, t, "c", "3"));
    TU_OK(s->del(s, t, QZ_TABLE_KV, "c", 1));
    assert_int_equal(s->del(s, t, QZ_TABLE_KV, "zz", 2), QZ_ENOTFOUND); /* the inner's own answer */
    TU_OK(s->put(s, t, QZ_TABLE_META, "m", 1, "x", 1));
    TU_OK(s->clear(s, t, QZ_TABLE_META));
    TU_OK(s->commit(s, t));
    assert_int_equal(fault_storage_open_txns(s), 0);
    TU_OK(s->sync(s));
    char buf[16];
    read_committed(s, "a", buf, sizeof buf);
    assert_string_equal(buf, "1");
    read_committed(s, "c", buf, sizeof buf);
    assert_string_equal(buf, "");
    TU_OK(s->begin(s, QZ_TXN_READONLY, &t));
    int n = 0;
    TU_OK(s->scan(s, t, QZ_TABLE_KV, NULL, 0, count_fn, &n));
    assert_int_equal(n, 2);
    s->abort(s, t);

    assert_int_equal(fault_storage_calls(s, FAULT_BEGIN), 4); /* 1 + 2 read_committed + 1 */
    assert_int_equal(fault_storage_calls(s, FAULT_PUT), 4);
    assert_int_equal(fault_storage_calls(s, FAULT_DEL), 2);
    assert_int_equal(fault_storage_calls(s, FAULT_CLEAR), 1);
    assert_int_equal(fault_storage_calls(s, FAULT_COMMIT), 1);
    assert_int_equal(fault_storage_calls(s, FAULT_SYNC), 1);
    assert_int_equal(fault_storage_calls(s, FAULT_GET), 2);
    assert_int_equal(fault_storage_calls(s, FAULT_SCAN), 1);
    assert_int_equal(fault_storage_calls(s, FAULT_ABORT), 3);
    assert_int_equal(fault_storage_calls(s, FAULT_ALL), 19);
    assert_int_equal(fault_storage_injected(s, FAULT_ALL), 0);
    assert_int_equal(fault_storage_open_txns(s), 0);
    fault_storage_reset_counts(s, FAULT_PUT);
    assert_int_equal(fault_storage_calls(s, FAULT_PUT), 0);
    assert_int_equal(fault_storage_calls(s, FAULT_BEGIN), 4);
    fault_storage_reset_counts(s, FAULT_ALL);
    assert_int_equal(fault_storage_calls(s, FAULT_ALL), 0);
    s->close(s);
}

static void nth_commit_fails_once_and_leaves_nothing(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    fault_storage_fail_nth(s, FAULT_COMMIT, 2, QZ_EIO);
    TU_OK(commit_one(s, "k1", "one"));
    int rc = commit_one(s, "k2", "two");
    assert_int_equal(rc, QZ_EIO);
    const char *m = qz_errmsg();
    if (!strstr(m, "injected") || !strstr(m, "commit") || !strstr(m, "QZ_EIO"))
        fail_msg("message of the injected failure: \"%s\"", m);
    assert_int_equal(fault_storage_open_txns(s), 0); /* the failed commit ended its transaction */
    TU_OK(commit_one(s, "k3", "three"));             /* once only; and the writer lock was released */
    char buf[16];
    read_committed(s, "k1", buf, sizeof buf);
    assert_string_equal(buf, "one");
    read_committed(s, "k2", buf, sizeof buf);
    assert_string_equal(buf, ""); /* nothing of the failed transaction remains */
    read_committed(s, "k3", buf, sizeof buf);
    assert_string_equal(buf, "three");
    assert_int_equal(fault_storage_calls(s, FAULT_COMMIT), 3);
    assert_int_equal(fault_storage_injected(s, FAULT_COMMIT), 1);
    assert_int_equal(fault_storage_injected(s, FAULT_ALL), 1);
    s->close(s);
}

static void every_put_from_the_nth_fails_until_healed(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    qz_storage_txn *t = NULL;
    fault_storage_fail_from(s, FAULT_PUT, 3, QZ_EFULL);
    TU_OK(s->begin(s, 0, &t));
    TU_OK(put_str(s, t, "p1", "a"));
    TU_OK(put_str(s, t, "p2", "b"));
    for (int i = 0; i < 5; i++) assert_int_equal(put_str(s, t, "p3", "c"), QZ_EFULL);
    /* The transaction stays usable: gets and deletes go on, the commit keeps what was put. */
    const void *v = NULL;
    size_t vl = 0;
    TU_OK(s->get(s, t, QZ_TABLE_KV, "p2", 2, &v, &vl));
    assert_int_equal(vl, 1);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "p3", 2, &v, &vl), QZ_ENOTFOUND);
    TU_OK(s->commit(s, t));
    assert_int_equal(commit_one(s, "p4", "d"), QZ_EFULL);
    assert_int_equal(fault_storage_injected(s, FAULT_PUT), 6);
    fault_storage_heal(s, FAULT_PUT);
    TU_OK(commit_one(s, "p4", "d"));
    char buf[16];
    read_committed(s, "p1", buf, sizeof buf);
    assert_string_equal(buf, "a");
    read_committed(s, "p3", buf, sizeof buf);
    assert_string_equal(buf, "");
    read_committed(s, "p4", buf, sizeof buf);
    assert_string_equal(buf, "d");
    assert_int_equal(fault_storage_open_txns(s), 0);
    s->close(s);
}

static void failed_begin_opens_nothing(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    fault_storage_fail_nth(s, FAULT_BEGIN, 1, QZ_EBUSY);
    qz_storage_txn *t = (qz_storage_txn *)&t;
    assert_int_equal(s->begin(s, 0, &t), QZ_EBUSY);
    assert_null(t);
    assert_int_equal(fault_storage_open_txns(s), 0);
    /* A write transaction can begin at once: the failed one holds no writer lock. */
    TU_OK(commit_one(s, "x", "1"));
    fault_storage_fail_from(s, FAULT_BEGIN, 1, QZ_EIO);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_EIO);
    assert_int_equal(s->begin(s, 0, &t), QZ_EIO);
    fault_storage_heal(s, FAULT_ALL);
    char buf[8];
    read_committed(s, "x", buf, sizeof buf);
    assert_string_equal(buf, "1");
    assert_int_equal(fault_storage_injected(s, FAULT_BEGIN), 3);
    s->close(s);
}

static void get_fails_with_the_chosen_code_and_the_transaction_goes_on(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    TU_OK(commit_one(s, "g", "value"));
    qz_storage_txn *t = NULL;
    TU_OK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v = NULL;
    size_t vl = 0;
    fault_storage_fail_nth(s, FAULT_GET, 2, QZ_ECORRUPT);
    TU_OK(s->get(s, t, QZ_TABLE_KV, "g", 1, &v, &vl));
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "g", 1, &v, &vl), QZ_ECORRUPT);
    assert_non_null(strstr(qz_errmsg(), "get call 2"));
    TU_OK(s->get(s, t, QZ_TABLE_KV, "g", 1, &v, &vl));
    assert_int_equal(vl, 5);
    assert_memory_equal(v, "value", 5);
    s->abort(s, t);
    s->close(s);
}

static void read_error_switch_fails_gets_and_scans_only(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    TU_OK(commit_one(s, "r", "1"));
    fault_storage_read_errors(s, 1);
    qz_storage_txn *t = NULL;
    TU_OK(s->begin(s, 0, &t));
    const void *v = NULL;
    size_t vl = 0;
    int n = 0;
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "r", 1, &v, &vl), QZ_EIO);
    assert_int_equal(s->scan(s, t, QZ_TABLE_KV, NULL, 0, count_fn, &n), QZ_EIO);
    assert_int_equal(n, 0); /* the callback never ran */
    TU_OK(put_str(s, t, "w", "2")); /* writes still work */
    TU_OK(s->commit(s, t));
    /* A rule on get is overridden by the switch while it is on, kept afterwards. */
    fault_storage_fail_nth(s, FAULT_GET, 1, QZ_ENOMEM);
    TU_OK(s->begin(s, QZ_TXN_READONLY, &t));
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "w", 1, &v, &vl), QZ_EIO);
    fault_storage_read_errors(s, 0);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "w", 1, &v, &vl), QZ_ENOMEM);
    TU_OK(s->get(s, t, QZ_TABLE_KV, "w", 1, &v, &vl));
    TU_OK(s->scan(s, t, QZ_TABLE_KV, NULL, 0, count_fn, &n));
    assert_int_equal(n, 2);
    s->abort(s, t);
    assert_int_equal(fault_storage_injected(s, FAULT_GET), 3);
    assert_int_equal(fault_storage_injected(s, FAULT_SCAN), 1);
    s->close(s);
}

static void del_clear_scan_and_sync_rules(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    TU_OK(commit_one(s, "d", "1"));
    qz_storage_txn *t = NULL;
    fault_storage_fail_nth(s, FAULT_DEL, 1, QZ_EIO);
    fault_storage_fail_nth(s, FAULT_CLEAR, 1, QZ_EIO);
    fault_storage_fail_nth(s, FAULT_SCAN, 1, QZ_EIO);
    fault_storage_fail_nth(s, FAULT_SYNC, 1, QZ_EIO);
    TU_OK(s->begin(s, 0, &t));
    int n = 0;
    assert_int_equal(s->del(s, t, QZ_TABLE_KV, "d", 1), QZ_EIO);
    assert_int_equal(s->clear(s, t, QZ_TABLE_KV), QZ_EIO);
    assert_int_equal(s->scan(s, t, QZ_TABLE_KV, NULL, 0, count_fn, &n), QZ_EIO);
    TU_OK(s->scan(s, t, QZ_TABLE_KV, NULL, 0, count_fn, &n));
    assert_int_equal(n, 1); /* neither the failed del nor the failed clear removed anything */
    TU_OK(s->del(s, t, QZ_TABLE_KV, "d", 1));
    TU_OK(s->commit(s, t));
    assert_int_equal(s->sync(s), QZ_EIO);
    TU_OK(s->sync(s));
    char buf[8];
    read_committed(s, "d", buf, sizeof buf);
    assert_string_equal(buf, "");
    s->close(s);
}

static void wrapper_without_ownership_leaves_the_inner_backend_open(void **state)
{
    (void)state;
    qz_storage *mem = NULL, *s = NULL, *s2 = NULL;
    TU_OK(qz__storage_mem_open(&mem));
    assert_int_equal(fault_storage_wrap(NULL, 0, &s), QZ_EINVAL);
    assert_int_equal(fault_storage_wrap(mem, 0x80, &s), QZ_EINVAL);
    assert_null(s);
    TU_OK(fault_storage_wrap(mem, 0, &s));
    TU_OK(commit_one(s, "kept", "yes"));
    s->close(s);
    /* Wrappers stack: a second one over the same backend sees the data. */
    TU_OK(fault_storage_wrap(mem, 0, &s));
    TU_OK(fault_storage_wrap(s, FAULT_STORAGE_OWN, &s2));
    char buf[8];
    read_committed(s2, "kept", buf, sizeof buf);
    assert_string_equal(buf, "yes");
    fault_storage_fail_nth(s, FAULT_COMMIT, 1, QZ_EIO); /* the inner wrapper fails it */
    assert_int_equal(commit_one(s2, "lost", "x"), QZ_EIO);
    assert_int_equal(fault_storage_calls(s2, FAULT_COMMIT), 1);
    assert_int_equal(fault_storage_injected(s2, FAULT_COMMIT), 0);
    assert_int_equal(fault_storage_injected(s, FAULT_COMMIT), 1);
    assert_int_equal(fault_storage_open_txns(s), 0);
    assert_int_equal(fault_storage_open_txns(s2), 0);
    s2->close(s2); /* closes s, not mem */
    read_committed(mem, "lost", buf, sizeof buf);
    assert_string_equal(buf, "");
    mem->close(mem);
}

typedef struct reader_arg {
    qz_storage *s;
    int n;
    int bad;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        qz_storage_txn *t = NULL;
        if (a->s->begin(a->s, QZ_TXN_READONLY, &t)) {
            a->bad++;
            continue;
        }
        const void *v = NULL;
        size_t vl = 0;
        if (a->s->get(a->s, t, QZ_TABLE_KV, "t", 1, &v, &vl) != QZ_OK) a->bad++;
        a->s->abort(a->s, t);
    }
    return NULL;
}

static void counters_are_exact_under_concurrent_readers(void **state)
{
    (void)state;
    qz_storage *s = wrap_mem();
    TU_OK(commit_one(s, "t", "1"));
    fault_storage_reset_counts(s, FAULT_ALL);
    enum { THREADS = 4, N = 5000 };
    pthread_t th[THREADS];
    reader_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (reader_arg){s, N, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &a[i]), 0);
    }
    for (int i = 0; i < 200; i++) TU_OK(commit_one(s, "w", "x"));
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    assert_int_equal(fault_storage_calls(s, FAULT_GET), THREADS * N);
    assert_int_equal(fault_storage_calls(s, FAULT_BEGIN), THREADS * N + 200);
    assert_int_equal(fault_storage_calls(s, FAULT_ABORT), THREADS * N);
    assert_int_equal(fault_storage_calls(s, FAULT_COMMIT), 200);
    assert_int_equal(fault_storage_open_txns(s), 0);
    s->close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passes_everything_through_and_counts_calls),
        cmocka_unit_test(nth_commit_fails_once_and_leaves_nothing),
        cmocka_unit_test(every_put_from_the_nth_fails_until_healed),
        cmocka_unit_test(failed_begin_opens_nothing),
        cmocka_unit_test(get_fails_with_the_chosen_code_and_the_transaction_goes_on),
        cmocka_unit_test(read_error_switch_fails_gets_and_scans_only),
        cmocka_unit_test(del_clear_scan_and_sync_rules),
        cmocka_unit_test(wrapper_without_ownership_leaves_the_inner_backend_open),
        cmocka_unit_test(counters_are_exact_under_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
