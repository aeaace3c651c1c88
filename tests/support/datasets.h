/*
 * datasets.h - texmex files (fvecs/ivecs) of the real datasets, for tests.
 * Tests find them under $QZ_DATA_DIR (set by meson to ../shared/data) and
 * skip with a message when they are absent.
 */
#ifndef QZ_TEST_DATASETS_H
#define QZ_TEST_DATASETS_H

#include <stddef.h>

typedef struct tu_dataset_files {
    float *base, *query, *gt_dist;
    int *gt;
    size_t n, nq, dim, gt_k;
} tu_dataset_files;

/* Load DIR/name/{base,query}.fvecs, gt.ivecs, gt_dist.fvecs. Returns 0, or
 * -1 with a reason in why (missing folder or file, bad format). */
int tu_load_dataset(const char *name, tu_dataset_files *d, char *why, size_t why_len);
void tu_free_dataset(tu_dataset_files *d);

#endif
