/*
 * quickstart.c - create a database, insert, search, filter, delete, and
 * print what happened. Runs on an embedded default: 2,000 vectors of 384
 * dimensions (the ancestor's sentence-embedding size) generated from a
 * fixed seed, or a directory path given as the first argument.
 *
 *   ./quickstart            # in memory
 *   ./quickstart ./vectors  # durable, in a directory
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quartz.h"

#define DIM 384
#define N 2000

static uint64_t rng = 42;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s failed: %s (%d): %s\n", what, qz_strerror(rc), rc, qz_errmsg());
    return 1;
}

static int even_only(uint64_t id, void *user)
{
    (void)user;
    return id % 2 == 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    printf("libquartz %s, distance kernels: %s\n", qz_version_string(), qz_simd_backend());

    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_COSINE;
    qz_db *db = NULL;
    int rc = qz_db_open(path, &o, &db);
    if (rc < 0) return fail("qz_db_open", rc);
    printf("opened %s\n", path ? path : "an in-memory database");

    float *vecs = malloc(sizeof(float) * DIM * N);
    uint64_t *ids = malloc(sizeof(uint64_t) * N);
    for (size_t i = 0; i < N; i++) {
        ids[i] = 1000 + i;
        for (size_t j = 0; j < DIM; j++) vecs[i * DIM + j] = frand();
    }
    rc = qz_db_insert_batch(db, N, ids, vecs, DIM, NULL, NULL, QZ_BATCH_UPSERT);
    if (rc < 0) return fail("qz_db_insert_batch", rc);
    const char *meta = "{\"title\":\"the query's twin\"}";
    rc = qz_db_upsert(db, 7, vecs, DIM, meta, strlen(meta));
    if (rc < 0) return fail("qz_db_upsert", rc);
    printf("inserted %d vectors of %d dimensions, plus id 7 with metadata\n", N, DIM);

    uint64_t hit[5];
    float dist[5];
    size_t found = 0;
    rc = qz_db_search(db, vecs, DIM, 5, NULL, hit, dist, &found);
    if (rc < 0) return fail("qz_db_search", rc);
    printf("top %zu for the first vector:\n", found);
    for (size_t i = 0; i < found; i++) printf("  id %-6llu cosine distance %.4f\n", (unsigned long long)hit[i], dist[i]);

    char buf[128];
    size_t len = 0;
    rc = qz_db_get(db, 7, NULL, 0, buf, sizeof buf - 1, &len);
    if (rc < 0) return fail("qz_db_get", rc);
    buf[len] = '\0';
    printf("metadata of id 7: %s\n", buf);

    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.filter = even_only;
    rc = qz_db_search(db, vecs, DIM, 3, &sp, hit, dist, &found);
    if (rc < 0) return fail("qz_db_search (filtered)", rc);
    printf("top %zu with even ids only:", found);
    for (size_t i = 0; i < found; i++) printf(" %llu", (unsigned long long)hit[i]);
    printf("\n");

    rc = qz_db_delete(db, 7);
    if (rc < 0) return fail("qz_db_delete", rc);
    rc = qz_db_search(db, vecs, DIM, 1, NULL, hit, dist, &found);
    if (rc < 0) return fail("qz_db_search", rc);
    printf("deleted id 7; nearest is now id %llu (distance %.4f)\n", (unsigned long long)hit[0], dist[0]);
    rc = qz_db_delete(db, 7);
    printf("deleting id 7 again: %s: %s\n", qz_strerror(rc), qz_errmsg());

    qz_stats st = {.struct_size = sizeof st};
    qz_db_stats(db, &st);
    printf("stats: %llu live, %llu deleted, %.1f MiB, M=%u, ef_construction=%u, max level %u, simd %s\n",
           (unsigned long long)st.count, (unsigned long long)st.deleted, st.memory_bytes / 1048576.0, st.M,
           st.ef_construction, st.max_level, st.simd);
    free(vecs);
    free(ids);
    rc = qz_db_close(db);
    if (rc < 0) return fail("qz_db_close", rc);
    printf("closed\n");
    return 0;
}
