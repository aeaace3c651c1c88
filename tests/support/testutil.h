/*
 * testutil.h - helpers shared by the test programs: a fixed-seed generator,
 * synthetic data, a brute-force oracle, temporary directories.
 */
#ifndef QZ_TESTUTIL_H
#define QZ_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "quartz.h"

typedef struct tu_rng {
    uint64_t s;
} tu_rng;

uint64_t tu_next(tu_rng *r);
/* Uniform in [0, 1). */
double tu_uniform(tu_rng *r);
/* Standard normal. */
double tu_normal(tu_rng *r);

/* n x dim floats: `clusters` Gaussian blobs (0 = isotropic noise), fixed seed. */
float *tu_dataset(size_t n, size_t dim, size_t clusters, uint64_t seed);

/* Exact k nearest rows of base to q under metric (as quartz.h defines
 * distances), ids = row numbers; writes k ids, returns how many. `alive`
 * may be NULL; else rows with alive[i] == 0 are skipped. */
size_t tu_brute_knn(const float *base, size_t n, size_t dim, const float *q, uint32_t metric, size_t k,
                    const unsigned char *alive, uint64_t *ids, double *dists);
double tu_distance(const float *a, const float *b, size_t dim, uint32_t metric);

/* Open an in-memory database; fails the test on error. */
qz_db *tu_open_mem(uint32_t dim, uint32_t metric, uint32_t M, uint32_t efc);

/* mkdtemp under /tmp; free with tu_rmtree + free. */
char *tu_tempdir(void);
void tu_rmtree(const char *path);

/* Whole-file helpers for the tests that damage files. tu_slurp: the bytes
 * (malloc'ed, one spare byte) and *len; NULL if the file does not exist and
 * may_be_missing, else a missing file fails the test. */
unsigned char *tu_slurp(const char *path, size_t *len, int may_be_missing);
void tu_spit(const char *path, const void *b, size_t n);
void tu_copy_file(const char *from, const char *to);
/* Replace `to` by a copy of the database directory `from` (LOCK, data.mdb,
 * lock.mdb, quartz.log: those that exist). */
void tu_copy_db(const char *from, const char *to);

/* Assert a status with the library's message in the failure output. */
#define TU_OK(expr)                                                                                               \
    do {                                                                                                          \
        int tu_rc_ = (expr);                                                                                      \
        if (tu_rc_ != QZ_OK) fail_msg("%s -> %d (%s): %s", #expr, tu_rc_, qz_strerror(tu_rc_), qz_errmsg());     \
    } while (0)

#endif
