/*
 * test_checkpoint.c - the graph snapshot follows a long-running writer, so
 * an open after SIGKILL re-inserts only the writes since the last
 * checkpoint (by write count, or by age from the background thread), and a
 * clean close leaves nothing to re-insert.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 16

static qz_open_options opts(void)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.durability = QZ_DURABILITY_SYNC;
    o.threads = 1;
    return o;
}

/* A child writes n vectors (ids from `first`) after setting the two
 * checkpoint parameters, sleeps `linger_ms`, reports on a pipe, and is
 * killed. */
static void write_and_die(const char *dir, const float *x, size_t first, size_t n, int64_t every, int64_t ms,
                          unsigned linger_ms)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        qz_open_options o = opts();
        qz_db *db;
        if (qz_db_open(dir, &o, &db) != QZ_OK) _exit(3);
        if (qz_db_set_param(db, QZ_PARAM_CHECKPOINT_WRITES, every) != QZ_OK) _exit(4);
        if (qz_db_set_param(db, QZ_PARAM_CHECKPOINT_MS, ms) != QZ_OK) _exit(4);
        for (size_t i = 0; i < n; i++)
            if (qz_db_insert(db, first + i, x + i * DIM, DIM, NULL, 0) != QZ_OK) _exit(5);
        usleep(linger_ms * 1000u);
        char c = 1;
        if (write(fd[1], &c, 1) != 1) _exit(6);
        for (;;) pause();
    }
    close(fd[1]);
    char c = 0;
    assert_int_equal(read(fd[0], &c, 1), 1);
    close(fd[0]);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
}

static uint64_t reopen_reinserted(const char *dir, size_t expect_count)
{
    qz_db *db;
    TU_OK(qz_db_open(dir, NULL, &db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, expect_count);
    TU_OK(qz_db_check(db));
    TU_OK(qz_db_close(db));
    return st.open_reinserted;
}

static void test_by_write_count(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    const size_t n = 1050;
    float *x = tu_dataset(n, DIM, 4, 5);
    /* checkpoint every 200 writes, never by age: at the kill, at most the
     * 50 writes after the fifth checkpoint are not covered */
    write_and_die(dir, x, 0, n, 200, 86400000, 0);
    uint64_t r = reopen_reinserted(dir, n);
    print_message("after SIGKILL with a checkpoint every 200 writes: %llu of %zu re-inserted\n", (unsigned long long)r, n);
    assert_true(r <= 200);
    assert_true(r >= 1); /* the last 50 are certainly not in a snapshot */
    /* the clean close of reopen_reinserted() left a full snapshot */
    assert_int_equal(reopen_reinserted(dir, n), 0);
    tu_rmtree(dir);
    free(dir);
    free(x);
}

static void test_by_age(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    const size_t n = 300;
    float *x = tu_dataset(n, DIM, 4, 6);
    /* no count trigger; the background thread checkpoints 50 ms after the
     * first unsaved write; the writer lingers 600 ms before it dies */
    write_and_die(dir, x, 0, n, 1000000000, 50, 600);
    uint64_t r = reopen_reinserted(dir, n);
    print_message("after SIGKILL with a checkpoint by age: %llu of %zu re-inserted\n", (unsigned long long)r, n);
    assert_int_equal(r, 0);
    tu_rmtree(dir);
    free(dir);
    free(x);
}

static void test_without_checkpoints(void **state)
{
    /* The control: triggers that never fire leave everything to re-insert. */
    (void)state;
    char *dir = tu_tempdir();
    const size_t n = 300;
    float *x = tu_dataset(n, DIM, 4, 7);
    write_and_die(dir, x, 0, n, 1000000000, 86400000, 0);
    assert_int_equal(reopen_reinserted(dir, n), n);
    tu_rmtree(dir);
    free(dir);
    free(x);
}

static void test_param_range(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 16, 100);
    assert_int_equal(qz_db_set_param(db, QZ_PARAM_CHECKPOINT_WRITES, 0), QZ_ERANGE);
    assert_int_equal(qz_db_set_param(db, QZ_PARAM_CHECKPOINT_MS, -1), QZ_ERANGE);
    assert_int_equal(qz_db_set_param(db, QZ_PARAM_CHECKPOINT_MS, 86400001), QZ_ERANGE);
    TU_OK(qz_db_set_param(db, QZ_PARAM_CHECKPOINT_WRITES, 5));
    TU_OK(qz_db_close(db));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_write_count),
        cmocka_unit_test(test_by_age),
        cmocka_unit_test(test_without_checkpoints),
        cmocka_unit_test(test_param_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
