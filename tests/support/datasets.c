/* datasets.c - fvecs/ivecs reading for the tests. */
#include "datasets.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read a whole *vecs file of 4-byte elements; rows must share one dim. */
static void *read_vecs(const char *path, size_t *rows, size_t *dim, char *why, size_t why_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "%s not found", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    int32_t d;
    if (sz < 4 || fread(&d, 4, 1, f) != 1 || d <= 0 || sz % (4 + 4L * d)) {
        snprintf(why, why_len, "%s is not a valid vecs file", path);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)sz / (4 + 4 * (size_t)d);
    char *out = malloc(n * (size_t)d * 4);
    fseek(f, 0, SEEK_SET);
    for (size_t i = 0; i < n; i++) {
        int32_t di;
        if (fread(&di, 4, 1, f) != 1 || di != d || fread(out + i * (size_t)d * 4, 4, (size_t)d, f) != (size_t)d) {
            snprintf(why, why_len, "%s: row %zu is malformed", path, i);
            free(out);
            fclose(f);
            return NULL;
        }
    }
    fclose(f);
    *rows = n;
    *dim = (size_t)d;
    return out;
}

int tu_load_dataset(const char *name, tu_dataset_files *d, char *why, size_t why_len)
{
    memset(d, 0, sizeof *d);
    const char *root = getenv("QZ_DATA_DIR");
    if (!root) root = "../shared/data";
    char p[4096];
    size_t n2, d2;
    snprintf(p, sizeof p, "%s/%s/base.fvecs", root, name);
    if (!(d->base = read_vecs(p, &d->n, &d->dim, why, why_len))) return -1;
    snprintf(p, sizeof p, "%s/%s/query.fvecs", root, name);
    if (!(d->query = read_vecs(p, &d->nq, &d2, why, why_len))) goto bad;
    snprintf(p, sizeof p, "%s/%s/gt.ivecs", root, name);
    if (!(d->gt = read_vecs(p, &n2, &d->gt_k, why, why_len))) goto bad;
    snprintf(p, sizeof p, "%s/%s/gt_dist.fvecs", root, name);
    if (!(d->gt_dist = read_vecs(p, &n2, &d2, why, why_len))) goto bad;
    return 0;
bad:
    tu_free_dataset(d);
    return -1;
}

void tu_free_dataset(tu_dataset_files *d)
{
    free(d->base);
    free(d->query);
    free(d->gt);
    free(d->gt_dist);
    memset(d, 0, sizeof *d);
}
