/*
 * cmd_import.c - quartz import: bulk-load an fvecs or JSON-lines file with
 * qz_db_insert_batch().
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_usage_import[] =
    "Usage: quartz import DIR FILE [OPTIONS]\n"
    "\n"
    "Insert every vector of FILE ('-' for standard input) into the database in\n"
    "DIR, in batches (qz_db_insert_batch). Formats:\n"
    "  fvecs   per row an int32 dimension then that many float32 (little-endian);\n"
    "          row r (from 0) gets the id START + r\n"
    "  jsonl   one JSON object per line: {\"id\": <uint64>, \"vector\": [numbers],\n"
    "          \"metadata\": <any JSON>} (metadata optional; stored as its compact\n"
    "          text); blank lines are skipped\n"
    "\n"
    "FILE is read and checked in full before anything is written: a malformed\n"
    "line, a NaN, a wrong dimension, an id given twice or (without --upsert)\n"
    "already present stops the import with exit status 1 and a message naming\n"
    "the line, and nothing is imported (with --create, nothing is created).\n"
    "The checked rows wait in an unlinked temporary file in $TMPDIR (or /tmp).\n"
    "A progress bar is drawn when standard error is a terminal; a summary line\n"
    "(rows, seconds, rows/s) is printed to standard error at the end.\n"
    "\n"
    "Options:\n"
    "      --format FMT          fvecs or jsonl (default: from the file name:\n"
    "                            .fvecs; .jsonl, .ndjson, .json)\n"
    "      --start-id N          id of the first fvecs row (default 0)\n"
    "      --batch N             rows per batch, 1..1000000 (default 10000)\n"
    "      --upsert              replace existing ids instead of failing\n"
    "      --create              create the database if DIR is missing or empty\n"
    "      --dim N               dimension for --create (default: the first row's);\n"
    "                            for an existing database it must match\n"
    "      --metric NAME         cosine (default), l2, ip or hamming, for --create;\n"
    "                            for an existing database it must match\n"
    "      --M N                 M for --create (default 16)\n"
    "      --ef-construction N   ef_construction for --create (default 200)\n"
    "      --durability MODE     sync, batched (default) or none\n"
    "      --threads N           insert threads (default: all cores)\n"
    "  -q, --quiet               no summary line\n"
    "  -h, --help                show this help\n";

enum { FMT_FVECS, FMT_JSONL };

/* Keep a batch's vectors under 64 Mi floats (256 MiB). */
#define MAX_BATCH_FLOATS (64u * 1024 * 1024)

typedef struct reader {
    const char *label; /* file name for messages */
    FILE *in;
    int fmt;
    uint64_t start_id; /* fvecs */
    uint64_t row;      /* fvecs rows read */
    float *fbuf;
    size_t fcap;
    uint64_t lineno; /* jsonl lines read */
    char *line;
    size_t linecap;
    json_record rec;
    uint64_t bytes; /* consumed, for the progress bar */
    /* the current record */
    uint64_t id;
    const float *vec;
    size_t dims;
    const char *meta;
    size_t meta_len;
    int has_meta;
    uint64_t loc; /* line (jsonl, from 1) or row (fvecs, from 0) */
} reader;

typedef struct batch {
    size_t cap, n, dims;
    uint64_t *ids;
    float *vecs;
    size_t *meta_off, *meta_len;
    const void **metas;
    uint64_t *loc;
    char *arena;
    size_t arena_len, arena_cap;
    int any_meta;
} batch;

static void loc_str(const reader *r, uint64_t loc, char *buf, size_t cap)
{
    if (r->fmt == FMT_JSONL)
        snprintf(buf, cap, "%s:%llu", r->label, (unsigned long long)loc);
    else
        snprintf(buf, cap, "%s: row %llu", r->label, (unsigned long long)loc);
}

static int all_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* 1: a record; 0: end of input; CLI_FAIL: error (printed). */
static int next_record(const char *cmd, reader *r, cli_progress *prog)
{
    char err[256];
    /* Every message below is printed after clearing the progress bar. */
    if (r->fmt == FMT_FVECS) {
        uint32_t d;
        int got = cli_fvecs_read(r->in, &r->fbuf, &r->fcap, &d, err, sizeof err);
        if (got < 0) {
            if (prog) cli_progress_clear(prog);
            cli_fail(cmd, "%s: row %llu: %s", r->label, (unsigned long long)r->row, err);
            return -1;
        }
        if (got == 0) return 0;
        if (r->row > UINT64_MAX - r->start_id) {
            if (prog) cli_progress_clear(prog);
            cli_fail(cmd, "%s: row %llu: the id overflows 64 bits (--start-id too large)", r->label,
                     (unsigned long long)r->row);
            return -1;
        }
        r->id = r->start_id + r->row;
        r->vec = r->fbuf;
        r->dims = d;
        r->meta = NULL;
        r->meta_len = 0;
        r->has_meta = 0;
        r->loc = r->row++;
        r->bytes += 4 + 4 * (uint64_t)d;
        return 1;
    }
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->linecap, r->in);
        if (n < 0) {
            if (ferror(r->in)) {
                if (prog) cli_progress_clear(prog);
            cli_fail(cmd, "%s: read error after line %llu: %s", r->label, (unsigned long long)r->lineno,
                         strerror(errno ? errno : EIO));
                return -1;
            }
            return 0;
        }
        r->lineno++;
        r->bytes += (uint64_t)n;
        char *s = r->line;
        size_t len = (size_t)n;
        if (r->lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) { /* UTF-8 byte order mark */
            s += 3;
            len -= 3;
        }
        if (strlen(s) != len) {
            if (prog) cli_progress_clear(prog);
            cli_fail(cmd, "%s:%llu: invalid JSON: the line contains a NUL byte", r->label,
                     (unsigned long long)r->lineno);
            return -1;
        }
        if (all_blank(s, len)) continue;
        if (json_parse_record(s, len, &r->rec, err, sizeof err) < 0) {
            if (prog) cli_progress_clear(prog);
            cli_fail(cmd, "%s:%llu: invalid JSON: %s", r->label, (unsigned long long)r->lineno, err);
            return -1;
        }
        r->id = r->rec.id;
        r->vec = r->rec.vec;
        r->dims = r->rec.dims;
        r->meta = r->rec.meta;
        r->meta_len = r->rec.meta_len;
        r->has_meta = r->rec.has_meta;
        r->loc = r->lineno;
        return 1;
    }
}

static int batch_init(batch *b, size_t cap, size_t dims)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->dims = dims;
    b->ids = malloc(cap * sizeof *b->ids);
    b->vecs = malloc(cap * dims * sizeof *b->vecs);
    b->meta_off = malloc(cap * sizeof *b->meta_off);
    b->meta_len = malloc(cap * sizeof *b->meta_len);
    b->metas = malloc(cap * sizeof *b->metas);
    b->loc = malloc(cap * sizeof *b->loc);
    return b->ids && b->vecs && b->meta_off && b->meta_len && b->metas && b->loc ? 0 : -1;
}

static void batch_free(batch *b)
{
    free(b->ids);
    free(b->vecs);
    free(b->meta_off);
    free(b->meta_len);
    free(b->metas);
    free(b->loc);
    free(b->arena);
}

/* ---- the spool: checked rows, in binary, between the two passes ---- */

typedef struct spool_hdr {
    uint64_t id;
    uint64_t loc;
    uint64_t meta_len;
} spool_hdr;

typedef struct spool {
    FILE *f;
    uint64_t rows;
    char *meta; /* compacting buffer */
    size_t meta_cap;
} spool;

static int spool_open(spool *sp)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path) return -1;
    snprintf(path, n, "%s/quartz-import.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        free(path);
        errno = e;
        return -1;
    }
    unlink(path); /* gone when the process ends, however it ends */
    free(path);
    sp->f = fdopen(fd, "w+b");
    if (!sp->f) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return 0;
}

/* Append the current record (already checked); its metadata compacted. */
static int spool_put(spool *sp, const reader *r, const char *meta, size_t meta_len)
{
    spool_hdr h = {r->id, r->loc, meta_len};
    if (fwrite(&h, sizeof h, 1, sp->f) != 1) return -1;
    if (fwrite(r->vec, sizeof *r->vec, r->dims, sp->f) != r->dims) return -1;
    if (meta_len && fwrite(meta, 1, meta_len, sp->f) != meta_len) return -1;
    sp->rows++;
    return 0;
}

/* Append the next spooled row to the batch. Returns 0 or -1 (read error). */
static int batch_add_spooled(batch *b, spool *sp)
{
    size_t i = b->n;
    spool_hdr h;
    if (fread(&h, sizeof h, 1, sp->f) != 1) return -1;
    if (fread(b->vecs + i * b->dims, sizeof *b->vecs, b->dims, sp->f) != b->dims) return -1;
    b->ids[i] = h.id;
    b->loc[i] = h.loc;
    b->meta_off[i] = b->arena_len;
    b->meta_len[i] = (size_t)h.meta_len;
    if (h.meta_len) {
        if (b->arena_cap - b->arena_len < h.meta_len) {
            size_t nc = b->arena_cap ? b->arena_cap : 4096;
            while (nc - b->arena_len < h.meta_len) nc *= 2;
            char *na = realloc(b->arena, nc);
            if (!na) return -1;
            b->arena = na;
            b->arena_cap = nc;
        }
        if (fread(b->arena + b->arena_len, 1, (size_t)h.meta_len, sp->f) != h.meta_len) return -1;
        b->arena_len += (size_t)h.meta_len;
        b->any_meta = 1;
    }
    b->n++;
    return 0;
}

typedef struct id_loc {
    uint64_t id, loc;
} id_loc;

static int cmp_id_loc(const void *x, const void *y)
{
    const id_loc *a = x, *b = y;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->loc < b->loc ? -1 : a->loc > b->loc;
}

static void batch_reset(batch *b)
{
    b->n = 0;
    b->arena_len = 0;
    b->any_meta = 0;
}

/* After a failure: what did reach the database. */
static void report_partial(const char *cmd, uint64_t done)
{
    if (done == 0)
        fprintf(stderr, "quartz: %s: nothing was imported\n", cmd);
    else
        fprintf(stderr, "quartz: %s: %llu rows of earlier batches were imported; the failing batch was not\n", cmd,
                (unsigned long long)done);
}

static int batch_flush(const char *cmd, qz_db *db, batch *b, const reader *r, uint32_t flags, uint64_t done,
                       cli_progress *prog)
{
    if (b->n == 0) return CLI_OK;
    if (b->any_meta)
        for (size_t i = 0; i < b->n; i++) b->metas[i] = b->meta_len[i] ? b->arena + b->meta_off[i] : NULL;
    int rc = qz_db_insert_batch(db, b->n, b->ids, b->vecs, b->dims, b->any_meta ? b->metas : NULL,
                                b->any_meta ? b->meta_len : NULL, flags);
    if (rc == QZ_OK) {
        batch_reset(b);
        return CLI_OK;
    }
    cli_progress_clear(prog);
    /* The library names the row inside the batch ("row 5: ...", "(rows 1
     * and 3)"); name the input lines instead. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qz_errmsg());
    size_t row, row2;
    char where[300], other[300];
    const char *pair = strstr(msg, "(rows ");
    if (sscanf(msg, "row %zu", &row) == 1 && row < b->n) {
        const char *rest = msg + 4; /* past "row ", the number, ':' and blanks */
        while (*rest >= '0' && *rest <= '9') rest++;
        if (*rest == ':') rest++;
        while (*rest == ' ') rest++;
        loc_str(r, b->loc[row], where, sizeof where);
        fprintf(stderr, "quartz: %s: %s: %s: %s\n", cmd, qz_strerror(rc), where, *rest ? rest : msg);
    } else if (pair && sscanf(pair, "(rows %zu and %zu)", &row, &row2) == 2 && row < b->n && row2 < b->n) {
        loc_str(r, b->loc[row2], where, sizeof where);
        loc_str(r, b->loc[row], other, sizeof other);
        fprintf(stderr, "quartz: %s: %s: %s: %s; the first is at %s\n", cmd, qz_strerror(rc), where, msg, other);
    } else {
        loc_str(r, b->loc[0], where, sizeof where);
        loc_str(r, b->loc[b->n - 1], other, sizeof other);
        fprintf(stderr, "quartz: %s: %s: batch %s .. %s: %s\n", cmd, qz_strerror(rc), where, other, msg);
    }
    report_partial(cmd, done);
    return CLI_FAIL;
}

static int infer_format(const char *path, int *fmt)
{
    const char *dot = strrchr(path, '.');
    if (!dot) return -1;
    if (strcmp(dot, ".fvecs") == 0)
        *fmt = FMT_FVECS;
    else if (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".ndjson") == 0 || strcmp(dot, ".json") == 0)
        *fmt = FMT_JSONL;
    else
        return -1;
    return 0;
}

int cmd_import(int argc, char **argv)
{
    static const cli_opt opts[] = {
        {"format", 0, 1}, {"start-id", 0, 1},        {"batch", 0, 1},      {"upsert", 0, 0},
        {"create", 0, 0}, {"dim", 0, 1},             {"metric", 0, 1},     {"M", 0, 1},
        {"ef-construction", 0, 1}, {"durability", 0, 1}, {"threads", 0, 1}, {"quiet", 'q', 0},
    };
    cli_args a;
    reader r;
    batch b;
    spool sp;
    id_loc *ids = NULL;
    size_t nids = 0;
    qz_db *db = NULL;
    memset(&r, 0, sizeof r);
    memset(&b, 0, sizeof b);
    memset(&sp, 0, sizeof sp);
    int rc = cli_parse(&a, "import", cli_usage_import, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc != CLI_OK) goto out;
    const char *cmd = a.cmd;
    if (a.npos != 2) {
        rc = cli_usage_error(cmd, "expected DIR FILE");
        goto out;
    }
    const char *dir = a.pos[0], *path = a.pos[1];

    /* ---- options ---- */
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    uint32_t batch_rows = 10000;
    if ((rc = cli_opt_u32(&a, "batch", 1, 1000000, &batch_rows)) != CLI_OK) goto out;
    if ((rc = cli_opt_u64(&a, "start-id", &r.start_id)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "dim", 1, QZ_MAX_DIMENSIONS, &o.dimensions)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "M", 2, QZ_MAX_M, &o.M)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "ef-construction", 1, QZ_MAX_EF, &o.ef_construction)) != CLI_OK) goto out;
    if ((rc = cli_opt_u32(&a, "threads", 1, 4096, &o.threads)) != CLI_OK) goto out;
    const char *s = cli_get(&a, "metric");
    if (s && cli_parse_metric(s, &o.metric) < 0) {
        rc = cli_usage_error(cmd, "--metric '%s' must be %s", s, cli_metric_list());
        goto out;
    }
    s = cli_get(&a, "durability");
    if (s && cli_parse_durability(s, &o.durability) < 0) {
        rc = cli_usage_error(cmd, "--durability '%s' must be sync, batched or none", s);
        goto out;
    }
    s = cli_get(&a, "format");
    if (s) {
        if (strcmp(s, "fvecs") == 0)
            r.fmt = FMT_FVECS;
        else if (strcmp(s, "jsonl") == 0)
            r.fmt = FMT_JSONL;
        else {
            rc = cli_usage_error(cmd, "--format '%s' must be fvecs or jsonl", s);
            goto out;
        }
    } else if (infer_format(path, &r.fmt) < 0) {
        rc = cli_usage_error(cmd, "cannot tell the format of '%s' from its name; give --format fvecs or jsonl", path);
        goto out;
    }
    if (cli_has(&a, "start-id") && r.fmt != FMT_FVECS) {
        rc = cli_usage_error(cmd, "--start-id applies to fvecs input only (JSON lines carry their ids)");
        goto out;
    }
    int create = cli_has(&a, "create");
    uint32_t flags = cli_has(&a, "upsert") ? QZ_BATCH_UPSERT : 0;

    /* ---- input ---- */
    r.label = strcmp(path, "-") == 0 ? "<stdin>" : path;
    r.in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!r.in) {
        rc = cli_fail(cmd, "%s: %s", path, strerror(errno));
        goto out;
    }
    uint64_t total = 0;
    struct stat st;
    if (fstat(fileno(r.in), &st) == 0 && S_ISREG(st.st_mode)) total = (uint64_t)st.st_size;

    /* The first record tells the dimension for --create without --dim. */
    double t0 = cli_now();
    cli_json_arena(1); /* until the reading pass ends */
    int have = next_record(cmd, &r, NULL);
    if (have < 0) {
        report_partial(cmd, 0);
        rc = CLI_FAIL;
        goto out;
    }

    /* ---- database: open an existing one now; create a new one only
     * after the whole input has been checked ---- */
    int empty = cli_dir_is_empty(dir);
    if (empty < 0) {
        rc = cli_fail(cmd, "%s: %s", dir, strerror(errno));
        goto out;
    }
    size_t dims;
    uint32_t metric;
    if (empty) {
        if (!create) {
            rc = cli_fail(cmd, "%s: no database here; create one with 'quartz create %s --dim N' or pass --create",
                          dir, dir);
            goto out;
        }
        if (!o.dimensions) {
            if (!have) {
                rc = cli_fail(cmd, "%s is empty, so --create needs --dim", r.label);
                goto out;
            }
            if (r.dims > QZ_MAX_DIMENSIONS) {
                rc = cli_fail(cmd, "%s: the first vector has %zu dimensions, more than %u", r.label, r.dims,
                              QZ_MAX_DIMENSIONS);
                goto out;
            }
            o.dimensions = (uint32_t)r.dims;
        }
        if (!o.metric) o.metric = QZ_METRIC_COSINE;
        dims = o.dimensions;
        metric = o.metric;
    } else {
        /* Not empty: an existing database only; a foreign directory gives
         * QZ_ENOTFOUND and stays untouched. */
        o.flags |= QZ_OPEN_EXISTING;
        int qrc = qz_db_open(dir, &o, &db);
        if (qrc == QZ_ENOTFOUND) {
            db = NULL;
            if (create)
                rc = cli_fail(cmd, "%s is not empty and holds no database; refusing to create one in it", dir);
            else
                rc = cli_no_database(cmd, dir);
            goto out;
        }
        if (qrc < 0) {
            rc = cli_qz_fail(cmd, qrc);
            db = NULL;
            goto out;
        }
        qz_stats dbst;
        memset(&dbst, 0, sizeof dbst);
        dbst.struct_size = sizeof dbst;
        if ((qrc = qz_db_stats(db, &dbst)) < 0) {
            rc = cli_qz_fail(cmd, qrc);
            goto out;
        }
        dims = dbst.dimensions;
        metric = dbst.metric;
    }

    /* ---- pass 1: read and check every row, spool it ---- */
    if (spool_open(&sp) < 0) {
        rc = cli_fail(cmd, "cannot create a temporary file: %s", strerror(errno));
        goto out;
    }
    cli_progress prog;
    cli_progress_start(&prog, total);
    char where[300], other[300];
    size_t ids_cap = 0;
    while (have > 0) {
        loc_str(&r, r.loc, where, sizeof where);
        if (r.dims != dims) {
            cli_progress_clear(&prog);
            rc = cli_fail(cmd, "%s: %s: vector has %zu dimensions, database expects %zu", qz_strerror(QZ_EDIM),
                          where, r.dims, dims);
            report_partial(cmd, 0);
            goto out;
        }
        int nonzero = 0;
        for (size_t i = 0; i < r.dims; i++) {
            if (!isfinite(r.vec[i])) { /* fvecs; JSON has no such numbers */
                cli_progress_clear(&prog);
                rc = cli_fail(cmd, "%s: %s: vector component %zu is %s", qz_strerror(QZ_ENONFINITE), where, i,
                              isnan(r.vec[i]) ? "NaN" : "infinite");
                report_partial(cmd, 0);
                goto out;
            }
            nonzero |= r.vec[i] != 0.0f;
        }
        if (!nonzero && metric == QZ_METRIC_COSINE) {
            cli_progress_clear(&prog);
            rc = cli_fail(cmd, "%s: %s: the vector is all zeros, which has no direction under the cosine metric",
                          qz_strerror(QZ_EZEROVEC), where);
            report_partial(cmd, 0);
            goto out;
        }
        size_t mlen = 0;
        if (r.has_meta) {
            if (sp.meta_cap < r.meta_len) {
                char *nm = realloc(sp.meta, r.meta_len);
                if (!nm) {
                    cli_progress_clear(&prog);
                    rc = cli_fail(cmd, "out of memory");
                    goto out;
                }
                sp.meta = nm;
                sp.meta_cap = r.meta_len;
            }
            /* The metadata passed the JSON checks, so compacting is safe. */
            mlen = cli_json_compact(r.meta, r.meta_len, sp.meta);
            if (mlen > QZ_MAX_METADATA) {
                cli_progress_clear(&prog);
                rc = cli_fail(cmd, "%s: %s: metadata is %zu bytes, the limit is %u", qz_strerror(QZ_ERANGE), where,
                              mlen, QZ_MAX_METADATA);
                report_partial(cmd, 0);
                goto out;
            }
        }
        if (db && !(flags & QZ_BATCH_UPSERT)) {
            int c = qz_db_contains(db, r.id);
            if (c < 0) {
                cli_progress_clear(&prog);
                rc = cli_qz_fail(cmd, c);
                goto out;
            }
            if (c) {
                cli_progress_clear(&prog);
                rc = cli_fail(cmd, "%s: %s: id %llu already exists (give --upsert to replace it)",
                              qz_strerror(QZ_EEXISTS), where, (unsigned long long)r.id);
                report_partial(cmd, 0);
                goto out;
            }
        }
        if (nids == ids_cap) {
            size_t nc = ids_cap ? ids_cap * 2 : 1024;
            id_loc *ni = realloc(ids, nc * sizeof *ni);
            if (!ni) {
                cli_progress_clear(&prog);
                rc = cli_fail(cmd, "out of memory");
                goto out;
            }
            ids = ni;
            ids_cap = nc;
        }
        ids[nids].id = r.id;
        ids[nids].loc = r.loc;
        nids++;
        if (spool_put(&sp, &r, sp.meta, mlen) < 0) {
            cli_progress_clear(&prog);
            rc = cli_fail(cmd, "writing the temporary file: %s", strerror(errno ? errno : EIO));
            report_partial(cmd, 0);
            goto out;
        }
        cli_progress_update(&prog, r.bytes, nids);
        have = next_record(cmd, &r, &prog);
        if (have < 0) {
            cli_progress_clear(&prog);
            report_partial(cmd, 0);
            rc = CLI_FAIL;
            goto out;
        }
    }
    /* An id given twice: the library refuses it inside one batch, and across
     * batches the later row would silently win; refuse it everywhere. */
    qsort(ids, nids, sizeof *ids, cmp_id_loc);
    for (size_t i = 1; i < nids; i++) {
        if (ids[i].id != ids[i - 1].id) continue;
        cli_progress_clear(&prog);
        loc_str(&r, ids[i].loc, where, sizeof where);
        loc_str(&r, ids[i - 1].loc, other, sizeof other);
        rc = cli_fail(cmd, "%s: %s: id %llu appears twice in the input; the first is at %s", qz_strerror(QZ_EEXISTS),
                      where, (unsigned long long)ids[i].id, other);
        report_partial(cmd, 0);
        goto out;
    }
    free(ids);
    ids = NULL;
    cli_json_arena(0);
    if (fflush(sp.f) != 0 || fseek(sp.f, 0, SEEK_SET) != 0) {
        cli_progress_clear(&prog);
        rc = cli_fail(cmd, "writing the temporary file: %s", strerror(errno ? errno : EIO));
        report_partial(cmd, 0);
        goto out;
    }

    /* ---- create the database now that the input is known to be good ---- */
    if (!db) {
        int qrc = qz_db_open(dir, &o, &db);
        if (qrc < 0) {
            cli_progress_clear(&prog);
            rc = cli_qz_fail(cmd, qrc);
            db = NULL;
            goto out;
        }
    }
    size_t cap = batch_rows;
    if (cap * dims > MAX_BATCH_FLOATS) cap = MAX_BATCH_FLOATS / dims ? MAX_BATCH_FLOATS / dims : 1;
    if (batch_init(&b, cap, dims) < 0) {
        cli_progress_clear(&prog);
        rc = cli_fail(cmd, "out of memory for a batch of %zu rows", cap);
        goto out;
    }

    /* ---- pass 2: load the spooled rows in batches ---- */
    cli_progress_clear(&prog);
    cli_progress_start(&prog, sp.rows);
    uint64_t done = 0;
    for (uint64_t row = 0; row < sp.rows; row++) {
        if (batch_add_spooled(&b, &sp) < 0) {
            cli_progress_clear(&prog);
            rc = cli_fail(cmd, "reading the temporary file: %s", ferror(sp.f) ? strerror(errno ? errno : EIO)
                                                                              : "out of memory or truncated");
            report_partial(cmd, done);
            goto out;
        }
        if (b.n == b.cap) {
            size_t n = b.n;
            if ((rc = batch_flush(cmd, db, &b, &r, flags, done, &prog)) != CLI_OK) goto out;
            done += n;
        }
        cli_progress_update(&prog, done + b.n, done + b.n);
    }
    {
        size_t n = b.n;
        if ((rc = batch_flush(cmd, db, &b, &r, flags, done, &prog)) != CLI_OK) goto out;
        done += n;
    }
    rc = cli_close(cmd, db);
    db = NULL;
    cli_progress_clear(&prog);
    if (rc != CLI_OK) goto out;
    double secs = cli_now() - t0;
    if (!cli_has(&a, "quiet"))
        fprintf(stderr, "imported %llu row%s in %.2f s (%.0f rows/s)\n", (unsigned long long)done, done == 1 ? "" : "s", secs,
                secs > 0 ? (double)done / secs : 0.0);
out:
    cli_json_arena(0);
    if (db) qz_db_close(db);
    if (r.in && r.in != stdin) fclose(r.in);
    free(r.fbuf);
    free(r.line);
    free(r.rec.vec);
    free(ids);
    if (sp.f) fclose(sp.f);
    free(sp.meta);
    batch_free(&b);
    cli_args_free(&a);
    return rc == CLI_HELP ? CLI_OK : rc;
}
