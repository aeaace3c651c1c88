/*
 * cmd_vectors.c - quartz search, get and delete.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char cli_usage_search[] =
    "Usage: quartz search DIR (--vector LIST | --vector-file FILE [--row N]) [OPTIONS]\n"
    "\n"
    "Print the k nearest neighbours of a query vector, nearest first, one per\n"
    "line: rank, id and distance separated by tabs (smaller is closer).\n"
    "Opens the database read-only.\n"
    "\n"
    "Options:\n"
    "      --vector LIST       the query: floats separated by commas and/or blanks,\n"
    "                          optionally in brackets: \"0.1,0.2,0.3\" or \"[0.1, 0.2, 0.3]\"\n"
    "      --vector-file FILE  read the query from an fvecs file\n"
    "      --row N             which row of --vector-file, from 0 (default 0)\n"
    "  -k, --k N               number of results, 1..10000 (default 10)\n"
    "      --ef N              candidate list size, 1..100000 (default: the database's)\n"
    "      --with-metadata     add the metadata as a fourth column\n"
    "      --json              print a JSON array of {rank, id, distance[, metadata]}\n"
    "  -h, --help              show this help\n"
    "\n"
    "In text output, tabs, newlines and other control bytes of metadata are\n"
    "escaped (\\t \\n \\r \\xNN) so that each result stays on one line; --json\n"
    "gives the exact bytes.\n";

const char cli_usage_get[] =
    "Usage: quartz get DIR ID [--json]\n"
    "\n"
    "Print the vector and the metadata stored under ID (metadata control bytes\n"
    "escaped as in search; no metadata line when there is none). Exits 1 if there is no\n"
    "such id. Opens the database read-only. Under the cosine metric the stored\n"
    "vector is normalised; under hamming its components are 0 or 1.\n"
    "\n"
    "Options:\n"
    "      --json   print {\"id\":..., \"vector\":[...], \"metadata\":...}; metadata that\n"
    "               is valid JSON is embedded as is, other bytes as a JSON string\n"
    "  -h, --help   show this help\n";

const char cli_usage_delete[] =
    "Usage: quartz delete DIR ID... [OPTIONS]\n"
    "\n"
    "Delete the vectors with the given ids, all or none: if an id is missing,\n"
    "nothing is deleted and the command exits 1.\n"
    "\n"
    "Options:\n"
    "      --missing-ok        skip ids that are not present instead of failing\n"
    "      --durability MODE   sync, batched (default) or none\n"
    "  -h, --help              show this help\n";

/* Metadata of @p id into a malloc'd buffer (NULL when empty). */
static int fetch_meta(qz_db *db, uint64_t id, float *vec, size_t vec_cap, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        size_t need = 0;
        int rc = qz_db_get(db, id, NULL, 0, NULL, 0, &need);
        if (rc < 0) return rc;
        char *buf = need ? malloc(need) : NULL;
        if (need && !buf) return QZ_ENOMEM;
        size_t got = 0;
        rc = qz_db_get(db, id, vec, vec_cap, buf, need, &got);
        if (rc == QZ_ETOOSMALL) { /* replaced in between: try again */
            free(buf);
            continue;
        }
        if (rc < 0) {
            free(buf);
            return rc;
        }
        *out = buf;
        *out_len = got;
        return QZ_OK;
    }
    return QZ_ETOOSMALL;
}

static int db_dims(const char *cmd, qz_db *db, uint32_t *dims)
{
    qz_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    int rc = qz_db_stats(db, &st);
    if (rc < 0) return cli_qz_fail(cmd, rc);
    *dims = st.dimensions;
    return CLI_OK;
}

/* ------------------------------------------------------------------ */

static int read_query_file(const char *cmd, const char *path, uint64_t row, float **vec, size_t *dims)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return cli_fail(cmd, "%s: %s", path, strerror(errno));
    float *buf = NULL;
    size_t cap = 0;
    uint32_t d = 0;
    char err[160];
    int rc = CLI_OK;
    for (uint64_t r = 0;; r++) {
        int got = cli_fvecs_read(f, &buf, &cap, &d, err, sizeof err);
        if (got < 0) {
            rc = cli_fail(cmd, "%s: row %llu: %s", path, (unsigned long long)r, err);
            break;
        }
        if (got == 0) {
            rc = cli_fail(cmd, "%s has %llu rows, so there is no row %llu", path, (unsigned long long)r,
                          (unsigned long long)row);
            break;
        }
        if (r == row) {
            *vec = buf;
            *dims = d;
            buf = NULL;
            break;
        }
    }
    free(buf);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    static const cli_opt opts[] = {
        {"vector", 0, 1}, {"vector-file", 0, 1}, {"row", 0, 1}, {"k", 'k', 1},
        {"ef", 0, 1},     {"json", 0, 0},        {"with-metadata", 0, 0},
    };
    cli_args a;
    qz_db *db = NULL;
    float *q = NULL;
    uint64_t *ids = NULL;
    float *dist = NULL;
    int rc = cli_parse(&a, "search", cli_usage_search, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos != 1) {
        rc = cli_usage_error(a.cmd, a.npos ? "expected one directory" : "missing the database directory");
        goto out;
    }
    uint32_t k = 10, ef = 0;
    uint64_t row = 0;
    if ((rc = cli_opt_u32(&a, "k", 1, QZ_MAX_K, &k)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "ef", 1, QZ_MAX_EF, &ef)) != CLI_OK) goto out;
    if ((rc = cli_opt_u64(&a, "row", &row)) != CLI_OK) goto out;
    const char *vs = cli_get(&a, "vector"), *vf = cli_get(&a, "vector-file");
    if (!!vs == !!vf) {
        rc = cli_usage_error(a.cmd, "give exactly one of --vector and --vector-file");
        goto out;
    }
    if (cli_has(&a, "row") && !vf) {
        rc = cli_usage_error(a.cmd, "--row needs --vector-file");
        goto out;
    }
    size_t dims = 0;
    if (vs) {
        char err[160];
        if (cli_parse_vector(vs, &q, &dims, err, sizeof err) < 0) {
            rc = cli_usage_error(a.cmd, "--vector: %s", err);
            goto out;
        }
    } else if ((rc = read_query_file(a.cmd, vf, row, &q, &dims)) != CLI_OK) {
        goto out;
    }
    if ((rc = cli_open_existing(a.cmd, a.pos[0], 1, 0, &db)) != CLI_OK) goto out;
    ids = malloc(k * sizeof *ids);
    dist = malloc(k * sizeof *dist);
    if (!ids || !dist) {
        rc = cli_fail(a.cmd, "out of memory");
        goto out;
    }
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = ef;
    size_t found = 0;
    int qrc = qz_db_search(db, q, dims, k, &sp, ids, dist, &found);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    int json = cli_has(&a, "json"), with_meta = cli_has(&a, "with-metadata");
    if (json) fputs("[", stdout);
    for (size_t i = 0; i < found; i++) {
        char *meta = NULL;
        size_t mlen = 0;
        if (with_meta) {
            qrc = fetch_meta(db, ids[i], NULL, 0, &meta, &mlen);
            if (qrc == QZ_ENOTFOUND) { /* deleted by a writer since the search */
                meta = NULL;
                mlen = 0;
            } else if (qrc < 0) {
                rc = cli_qz_fail(a.cmd, qrc);
                goto out;
            }
        }
        if (json) {
            /* One result per line. */
            cJSON *o = cJSON_CreateObject();
            int bad = cli_jadd(o, "rank", cli_ju64(i + 1));
            bad |= cli_jadd(o, "id", cli_ju64(ids[i]));
            bad |= cli_jadd(o, "distance", cli_jfloat(dist[i]));
            if (with_meta) bad |= cli_jadd(o, "metadata", cli_jmeta(meta, mlen));
            free(meta);
            meta = NULL;
            if (bad) {
                cJSON_Delete(o);
                rc = cli_fail(a.cmd, "out of memory");
                goto out;
            }
            fputs(i ? ",\n" : "\n", stdout);
            if (cli_jprint(stdout, o) < 0) {
                rc = cli_fail(a.cmd, "out of memory");
                goto out;
            }
        } else {
            printf("%zu\t%llu\t", i + 1, (unsigned long long)ids[i]);
            cli_print_float(stdout, dist[i]);
            if (with_meta) {
                fputc('\t', stdout);
                cli_print_escaped(stdout, meta, mlen);
            }
            fputc('\n', stdout);
        }
        free(meta);
    }
    if (json) fputs(found ? "\n]\n" : "]\n", stdout);
out:
    free(q);
    free(ids);
    free(dist);
    if (db) qz_db_close(db);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}

/* ------------------------------------------------------------------ */

int cmd_get(int argc, char **argv)
{
    static const cli_opt opts[] = {{"json", 0, 0}};
    cli_args a;
    qz_db *db = NULL;
    float *vec = NULL;
    char *meta = NULL;
    int rc = cli_parse(&a, "get", cli_usage_get, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos != 2) {
        rc = cli_usage_error(a.cmd, "expected DIR ID");
        goto out;
    }
    uint64_t id;
    if (cli_parse_u64(a.pos[1], &id) < 0) {
        rc = cli_usage_error(a.cmd, "id '%s' is not an unsigned 64-bit integer", a.pos[1]);
        goto out;
    }
    if ((rc = cli_open_existing(a.cmd, a.pos[0], 1, 0, &db)) != CLI_OK) goto out;
    uint32_t dims = 0;
    if ((rc = db_dims(a.cmd, db, &dims)) != CLI_OK) goto out;
    vec = malloc(dims * sizeof *vec);
    if (!vec) {
        rc = cli_fail(a.cmd, "out of memory");
        goto out;
    }
    size_t mlen = 0;
    int qrc = fetch_meta(db, id, vec, dims, &meta, &mlen);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    if (cli_has(&a, "json")) {
        /* The same shape as an import line, so the output imports back. */
        cJSON *o = cJSON_CreateObject(), *v = cJSON_CreateArray();
        int bad = !v;
        for (uint32_t i = 0; !bad && i < dims; i++) {
            cJSON *x = cli_jfloat(vec[i]);
            if (!x || !cJSON_AddItemToArray(v, x)) {
                cJSON_Delete(x);
                bad = 1;
            }
        }
        bad |= cli_jadd(o, "id", cli_ju64(id));
        bad |= cli_jadd(o, "vector", v);
        bad |= cli_jadd(o, "metadata", cli_jmeta(meta, mlen));
        if (bad) {
            cJSON_Delete(o);
            rc = cli_fail(a.cmd, "out of memory");
            goto out;
        }
        if (cli_jprint(stdout, o) < 0) {
            rc = cli_fail(a.cmd, "out of memory");
            goto out;
        }
        fputc('\n', stdout);
    } else {
        printf("id: %llu\nvector: ", (unsigned long long)id);
        for (uint32_t i = 0; i < dims; i++) {
            if (i) fputc(',', stdout);
            cli_print_float(stdout, vec[i]);
        }
        fputc('\n', stdout);
        if (mlen) {
            fputs("metadata: ", stdout);
            cli_print_escaped(stdout, meta, mlen);
            fputc('\n', stdout);
        }
    }
out:
    free(vec);
    free(meta);
    if (db) qz_db_close(db);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}

/* ------------------------------------------------------------------ */

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

int cmd_delete(int argc, char **argv)
{
    static const cli_opt opts[] = {{"missing-ok", 0, 0}, {"durability", 0, 1}};
    cli_args a;
    qz_db *db = NULL;
    uint64_t *ids = NULL;
    int rc = cli_parse(&a, "delete", cli_usage_delete, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos < 2) {
        rc = cli_usage_error(a.cmd, "expected DIR ID...");
        goto out;
    }
    uint32_t durability = 0;
    const char *ds = cli_get(&a, "durability");
    if (ds && cli_parse_durability(ds, &durability) < 0) {
        rc = cli_usage_error(a.cmd, "--durability '%s' must be sync, batched or none", ds);
        goto out;
    }
    size_t n = (size_t)a.npos - 1;
    ids = malloc(n * sizeof *ids);
    if (!ids) {
        rc = cli_fail(a.cmd, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (cli_parse_u64(a.pos[i + 1], &ids[i]) < 0) {
            rc = cli_usage_error(a.cmd, "id '%s' is not an unsigned 64-bit integer", a.pos[i + 1]);
            goto out;
        }
    qsort(ids, n, sizeof *ids, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || ids[i] != ids[m - 1]) ids[m++] = ids[i];
    if ((rc = cli_open_existing(a.cmd, a.pos[0], 0, durability, &db)) != CLI_OK) goto out;
    int missing_ok = cli_has(&a, "missing-ok");
    size_t keep = 0;
    for (size_t i = 0; i < m; i++) {
        int c = qz_db_contains(db, ids[i]);
        if (c < 0) {
            rc = cli_qz_fail(a.cmd, c);
            goto out;
        }
        if (c == 0 && !missing_ok) {
            rc = cli_fail(a.cmd, "%s: id %llu is not in the database (nothing was deleted)",
                          qz_strerror(QZ_ENOTFOUND), (unsigned long long)ids[i]);
            goto out;
        }
        if (c) ids[keep++] = ids[i];
    }
    if (keep) {
        qz_txn *t = NULL;
        int qrc = qz_txn_begin(db, &t);
        for (size_t i = 0; qrc == QZ_OK && i < keep; i++) qrc = qz_txn_delete(t, ids[i]);
        if (qrc < 0) {
            rc = cli_qz_fail(a.cmd, qrc);
            qz_txn_abort(t);
            goto out;
        }
        qrc = qz_txn_commit(t);
        if (qrc < 0) {
            rc = cli_qz_fail(a.cmd, qrc);
            goto out;
        }
    }
    rc = cli_close(a.cmd, db);
    db = NULL;
    if (rc == CLI_OK) printf("deleted %zu\n", keep);
out:
    free(ids);
    if (db) qz_db_close(db);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}
