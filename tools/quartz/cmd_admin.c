/*
 * cmd_admin.c - quartz create, stats, check and compact.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "cli.h"

#include <errno.h>
#include <string.h>

const char cli_usage_create[] =
    "Usage: quartz create DIR --dim N [OPTIONS]\n"
    "\n"
    "Create an empty database in DIR (a missing or empty directory).\n"
    "\n"
    "Options:\n"
    "      --dim N               vector dimension, 1..65536 (required)\n"
    "      --metric NAME         cosine (default), l2, ip or hamming\n"
    "      --dtype NAME          element type of the codes the graph is searched on:\n"
    "                            f32 (default), f16, int8 or binary (not with hamming)\n"
    "      --M N                 links per node on upper layers, 2..256 (default 16)\n"
    "      --ef-construction N   candidate list while inserting, 1..100000 (default 200)\n"
    "      --durability MODE     sync, batched (default) or none, for this command\n"
    "  -h, --help                show this help\n"
    "\n"
    "The metric, dtype, M and ef-construction are stored; later opens use them.\n";

const char cli_usage_stats[] =
    "Usage: quartz stats DIR [--json]\n"
    "\n"
    "Print the index statistics (qz_db_stats) and the on-disk size of DIR.\n"
    "Opens the database read-only.\n"
    "\n"
    "Options:\n"
    "      --json   print one JSON object\n"
    "  -h, --help   show this help\n";

const char cli_usage_check[] =
    "Usage: quartz check DIR\n"
    "\n"
    "Load the database read-only and verify the index's invariants\n"
    "(qz_db_check). Prints OK and exits 0, or prints the first violation and\n"
    "exits 1.\n"
    "\n"
    "Options:\n"
    "  -h, --help   show this help\n";

const char cli_usage_compact[] =
    "Usage: quartz compact DIR [--durability MODE]\n"
    "\n"
    "Unlink every deleted vector from the graph now (qz_db_compact) and flush\n"
    "(qz_db_flush), then print the directory size before and after.\n"
    "\n"
    "Options:\n"
    "      --durability MODE   sync, batched (default) or none\n"
    "  -h, --help              show this help\n";

static const char *dtype_name(uint32_t dtype, uint32_t metric)
{
    if (dtype == QZ_DTYPE_F32) return "f32";
    if (dtype == QZ_DTYPE_DEFAULT) return metric == QZ_METRIC_HAMMING ? "bits" : "f32";
    if (dtype == QZ_DTYPE_F16) return "f16";
    if (dtype == QZ_DTYPE_INT8) return "int8";
    if (dtype == QZ_DTYPE_BINARY) return "binary";
    return "unknown";
}

static int opt_durability(const cli_args *a, uint32_t *out)
{
    const char *s = cli_get(a, "durability");
    *out = 0;
    if (s && cli_parse_durability(s, out) < 0)
        return cli_usage_error(a->cmd, "--durability '%s' must be sync, batched or none", s);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */

int cmd_create(int argc, char **argv)
{
    static const cli_opt opts[] = {
        {"dim", 0, 1}, {"metric", 0, 1}, {"dtype", 0, 1}, {"M", 0, 1}, {"ef-construction", 0, 1},
        {"durability", 0, 1},
    };
    cli_args a;
    int rc = cli_parse(&a, "create", cli_usage_create, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos != 1) {
        rc = cli_usage_error(a.cmd, a.npos ? "expected one directory" : "missing the database directory");
        goto out;
    }
    const char *dir = a.pos[0];
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    if (!cli_has(&a, "dim")) {
        rc = cli_usage_error(a.cmd, "--dim N is required");
        goto out;
    }
    if ((rc = cli_opt_u32(&a, "dim", 1, QZ_MAX_DIMENSIONS, &o.dimensions)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "M", 2, QZ_MAX_M, &o.M)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "ef-construction", 1, QZ_MAX_EF, &o.ef_construction)) != CLI_OK) goto out;
    if ((rc = opt_durability(&a, &o.durability)) != CLI_OK) goto out;
    o.metric = QZ_METRIC_COSINE;
    const char *m = cli_get(&a, "metric");
    if (m && cli_parse_metric(m, &o.metric) < 0) {
        rc = cli_usage_error(a.cmd, "--metric '%s' must be %s", m, cli_metric_list());
        goto out;
    }
    const char *dt = cli_get(&a, "dtype");
    if (dt) {
        static const char *const names[] = {"f32", "f16", "int8", "binary"};
        static const uint32_t values[] = {QZ_DTYPE_F32, QZ_DTYPE_F16, QZ_DTYPE_INT8, QZ_DTYPE_BINARY};
        size_t i = 0;
        while (i < 4 && strcmp(dt, names[i]) != 0) i++;
        if (i == 4) {
            rc = cli_usage_error(a.cmd, "--dtype '%s' must be f32, f16, int8 or binary", dt);
            goto out;
        }
        o.dtype = values[i];
    }

    int empty = cli_dir_is_empty(dir);
    if (empty < 0) {
        rc = cli_fail(a.cmd, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (!empty) {
        /* Only a missing or empty directory becomes a new database. Say
         * whether it is one already: a read-only open of an existing
         * database only, which takes no lock and creates nothing. */
        qz_open_options ro = QZ_OPEN_OPTIONS_INIT;
        qz_db *existing = NULL;
        ro.flags = QZ_OPEN_READONLY | QZ_OPEN_EXISTING;
        int orc = qz_db_open(dir, &ro, &existing);
        if (orc == QZ_OK) qz_db_close(existing);
        if (orc == QZ_ENOTFOUND)
            rc = cli_fail(a.cmd, "%s is not empty; refusing to create a database in it", dir);
        else
            rc = cli_fail(a.cmd, "%s already holds a database%s%s", dir, orc ? " that does not open: " : "",
                          orc ? qz_strerror(orc) : "");
        goto out;
    }
    qz_db *db = NULL;
    int qrc = qz_db_open(dir, &o, &db);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    qz_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    qrc = qz_db_stats(db, &st);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        qz_db_close(db);
        goto out;
    }
    if ((rc = cli_close(a.cmd, db)) != CLI_OK) goto out;
    printf("created %s: dim %u, metric %s, M %u, ef_construction %u\n", dir, st.dimensions,
           cli_metric_name(st.metric), st.M, st.ef_construction);
out:
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}

/* ------------------------------------------------------------------ */

int cmd_stats(int argc, char **argv)
{
    static const cli_opt opts[] = {{"json", 0, 0}};
    cli_args a;
    qz_db *db = NULL;
    int rc = cli_parse(&a, "stats", cli_usage_stats, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos != 1) {
        rc = cli_usage_error(a.cmd, a.npos ? "expected one directory" : "missing the database directory");
        goto out;
    }
    const char *dir = a.pos[0];
    if ((rc = cli_open_existing(a.cmd, dir, 1, 0, &db)) != CLI_OK) goto out;
    qz_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    int qrc = qz_db_stats(db, &st);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    uint64_t bytes = 0, alloc = 0;
    if (cli_dir_size(dir, &bytes, &alloc) < 0) {
        rc = cli_fail(a.cmd, "%s: measuring the directory: %s", dir, strerror(errno));
        goto out;
    }
    char simd[sizeof st.simd + 1];
    memcpy(simd, st.simd, sizeof st.simd);
    simd[sizeof st.simd] = '\0';
    if (cli_has(&a, "json")) {
        cJSON *o = cJSON_CreateObject();
        int bad = cli_jadd(o, "path", cli_jbytes(dir, strlen(dir)));
        bad |= cli_jadd(o, "dimensions", cli_ju64(st.dimensions));
        bad |= cli_jadd(o, "metric", cJSON_CreateString(cli_metric_name(st.metric)));
        bad |= cli_jadd(o, "dtype", cJSON_CreateString(dtype_name(st.dtype, st.metric)));
        bad |= cli_jadd(o, "M", cli_ju64(st.M));
        bad |= cli_jadd(o, "ef_construction", cli_ju64(st.ef_construction));
        bad |= cli_jadd(o, "ef_search", cli_ju64(st.ef_search));
        bad |= cli_jadd(o, "max_level", cli_ju64(st.max_level));
        bad |= cli_jadd(o, "count", cli_ju64(st.count));
        bad |= cli_jadd(o, "deleted", cli_ju64(st.deleted));
        bad |= cli_jadd(o, "capacity", cli_ju64(st.capacity));
        bad |= cli_jadd(o, "memory_bytes", cli_ju64(st.memory_bytes));
        bad |= cli_jadd(o, "simd", cli_jbytes(simd, strlen(simd)));
        bad |= cli_jadd(o, "disk_bytes", cli_ju64(bytes));
        bad |= cli_jadd(o, "disk_allocated_bytes", cli_ju64(alloc));
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
        printf("path:                 %s\n", dir);
        printf("dimensions:           %u\n", st.dimensions);
        printf("metric:               %s\n", cli_metric_name(st.metric));
        printf("dtype:                %s\n", dtype_name(st.dtype, st.metric));
        printf("M:                    %u\n", st.M);
        printf("ef_construction:      %u\n", st.ef_construction);
        printf("ef_search:            %u\n", st.ef_search);
        printf("max_level:            %u\n", st.max_level);
        printf("count:                %llu\n", (unsigned long long)st.count);
        printf("deleted:              %llu\n", (unsigned long long)st.deleted);
        printf("capacity:             %llu\n", (unsigned long long)st.capacity);
        printf("memory_bytes:         %llu\n", (unsigned long long)st.memory_bytes);
        printf("simd:                 %s\n", simd);
        printf("disk_bytes:           %llu\n", (unsigned long long)bytes);
        printf("disk_allocated_bytes: %llu\n", (unsigned long long)alloc);
    }
out:
    if (db) qz_db_close(db);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}

/* ------------------------------------------------------------------ */

int cmd_check(int argc, char **argv)
{
    cli_args a;
    qz_db *db = NULL;
    int rc = cli_parse(&a, "check", cli_usage_check, NULL, 0, argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos != 1) {
        rc = cli_usage_error(a.cmd, a.npos ? "expected one directory" : "missing the database directory");
        goto out;
    }
    /* A failed load (checksum, format) is reported by the open itself. */
    if ((rc = cli_open_existing(a.cmd, a.pos[0], 1, 0, &db)) != CLI_OK) goto out;
    int qrc = qz_db_check(db);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    printf("OK\n");
out:
    if (db) qz_db_close(db);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}

/* ------------------------------------------------------------------ */

int cmd_compact(int argc, char **argv)
{
    static const cli_opt opts[] = {{"durability", 0, 1}};
    cli_args a;
    qz_db *db = NULL;
    uint32_t durability = 0;
    int rc = cli_parse(&a, "compact", cli_usage_compact, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    if (a.npos != 1) {
        rc = cli_usage_error(a.cmd, a.npos ? "expected one directory" : "missing the database directory");
        goto out;
    }
    if ((rc = opt_durability(&a, &durability)) != CLI_OK) goto out;
    const char *dir = a.pos[0];
    uint64_t before = 0, after = 0, alloc_before = 0, alloc_after = 0;
    if (cli_dir_size(dir, &before, &alloc_before) < 0 && errno != ENOENT) {
        rc = cli_fail(a.cmd, "%s: measuring the directory: %s", dir, strerror(errno));
        goto out;
    }
    if ((rc = cli_open_existing(a.cmd, dir, 0, durability, &db)) != CLI_OK) goto out;
    qz_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    int qrc = qz_db_stats(db, &st);
    if (qrc < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    uint64_t deleted = st.deleted;
    if ((qrc = qz_db_compact(db)) < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    if ((qrc = qz_db_flush(db)) < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    if ((qrc = qz_db_stats(db, &st)) < 0) {
        rc = cli_qz_fail(a.cmd, qrc);
        goto out;
    }
    rc = cli_close(a.cmd, db);
    db = NULL;
    if (rc != CLI_OK) goto out;
    if (cli_dir_size(dir, &after, &alloc_after) < 0) {
        rc = cli_fail(a.cmd, "%s: measuring the directory: %s", dir, strerror(errno));
        goto out;
    }
    printf("unlinked:    %llu deleted vectors (%llu left)\n", (unsigned long long)(deleted - st.deleted),
           (unsigned long long)st.deleted);
    printf("live:        %llu vectors\n", (unsigned long long)st.count);
    printf("size before: %llu bytes (%llu allocated)\n", (unsigned long long)before,
           (unsigned long long)alloc_before);
    printf("size after:  %llu bytes (%llu allocated)\n", (unsigned long long)after,
           (unsigned long long)alloc_after);
out:
    if (db) qz_db_close(db);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}
