/*
 * util.c - option parsing, strict number and vector parsing, error messages,
 * database and directory helpers, fvecs reading, output and progress helpers
 * of the quartz command-line tool.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* messages                                                             */
/* ------------------------------------------------------------------ */

static void vmsg(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "quartz: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    /* "kv put" -> "quartz help kv" */
    const char *sp = strchr(cmd, ' ');
    int n = sp ? (int)(sp - cmd) : (int)strlen(cmd);
    fprintf(stderr, "Try 'quartz help %.*s'.\n", n, cmd);
    return CLI_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_qz_fail(const char *cmd, int rc)
{
    const char *detail = qz_errmsg();
    if (detail && *detail)
        fprintf(stderr, "quartz: %s: %s: %s\n", cmd, qz_strerror(rc), detail);
    else
        fprintf(stderr, "quartz: %s: %s\n", cmd, qz_strerror(rc));
    return CLI_FAIL;
}

int cli_qz_fail_ctx(const char *cmd, int rc, const char *fmt, ...)
{
    const char *detail = qz_errmsg();
    va_list ap;
    fprintf(stderr, "quartz: %s: %s: ", cmd, qz_strerror(rc));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (detail && *detail) fprintf(stderr, ": %s", detail);
    fputc('\n', stderr);
    return CLI_FAIL;
}

/* ------------------------------------------------------------------ */
/* option parsing                                                       */
/* ------------------------------------------------------------------ */

static int find_long(const cli_args *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->nopts; i++)
        if (strlen(a->opts[i].name) == len && strncmp(a->opts[i].name, name, len) == 0) return (int)i;
    return -1;
}

static int find_short(const cli_args *a, char c)
{
    for (size_t i = 0; i < a->nopts; i++)
        if (a->opts[i].short_name && a->opts[i].short_name == c) return (int)i;
    return -1;
}

int cli_parse(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts, size_t nopts, int argc,
              char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->usage = usage;
    a->opts = opts;
    a->nopts = nopts < CLI_MAX_OPTS ? nopts : CLI_MAX_OPTS;
    a->pos = malloc(sizeof *a->pos * (size_t)(argc > 0 ? argc : 1));
    if (!a->pos) return cli_fail(cmd, "out of memory");
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == '\0') { /* "-" alone means stdin */
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        int idx;
        const char *val = NULL;
        if (s[1] == '-') {
            const char *name = s + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && strncmp(name, "help", 4) == 0 && !eq) {
                fputs(usage, stdout);
                return CLI_HELP;
            }
            idx = find_long(a, name, len);
            if (idx < 0) return cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
            if (a->opts[idx].takes_arg) {
                if (eq)
                    val = eq + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return cli_usage_error(cmd, "option '--%s' needs a value", a->opts[idx].name);
            } else if (eq) {
                return cli_usage_error(cmd, "option '--%s' takes no value", a->opts[idx].name);
            }
        } else {
            if (s[1] == 'h' && s[2] == '\0') {
                fputs(usage, stdout);
                return CLI_HELP;
            }
            idx = find_short(a, s[1]);
            if (idx < 0) return cli_usage_error(cmd, "unknown option '%s'", s);
            if (a->opts[idx].takes_arg) {
                if (s[2])
                    val = s + 2;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return cli_usage_error(cmd, "option '-%c' needs a value", s[1]);
            } else if (s[2]) {
                return cli_usage_error(cmd, "unknown option '%s'", s);
            }
        }
        a->seen[idx]++;
        a->val[idx] = val;
    }
    return CLI_OK;
}

void cli_args_free(cli_args *a)
{
    free(a->pos);
    a->pos = NULL;
    a->npos = 0;
}

static int opt_index(const cli_args *a, const char *name)
{
    int i = find_long(a, name, strlen(name));
    if (i < 0) { /* a programming error: the option is not in the table */
        fprintf(stderr, "quartz: internal error: option --%s is not declared for %s\n", name, a->cmd);
        abort();
    }
    return i;
}

const char *cli_get(const cli_args *a, const char *name)
{
    return a->val[opt_index(a, name)];
}

int cli_has(const cli_args *a, const char *name)
{
    return a->seen[opt_index(a, name)] > 0;
}

/* ------------------------------------------------------------------ */
/* numbers                                                              */
/* ------------------------------------------------------------------ */

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0])) return -1; /* no sign, no blank */
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || end == s || *end != '\0') return -1;
    if ((unsigned long long)(uint64_t)v != v) return -1;
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (cli_parse_u64(s, &v) < 0 || v < min || v > max) return -1;
    *out = (uint32_t)v;
    return 0;
}

int cli_parse_float(const char *s, float *out)
{
    if (!s || !*s || isspace((unsigned char)s[0])) return -1;
    /* strtof also takes "inf", "nan" and hex floats; only accept decimal text */
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return -1;
    errno = 0;
    char *end = NULL;
    float v = strtof(s, &end);
    if (end == s || *end != '\0') return -1;
    if (errno == ERANGE && (isinf(v) || fabsf(v) >= FLT_MAX)) return -1; /* overflow */
    if (!isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_parse_vector(const char *s, float **out, size_t *dims, char *err, size_t errcap)
{
    size_t cap = 16, n = 0;
    float *v = malloc(cap * sizeof *v);
    char tok[128];
    if (!v) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    int bracket = 0;
    if (*p == '[') {
        bracket = 1;
        p++;
    }
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (*p == '\0' || (bracket && *p == ']')) break;
        const char *start = p;
        while (*p && *p != ',' && *p != ']' && !isspace((unsigned char)*p)) p++;
        size_t len = (size_t)(p - start);
        if (len == 0) {
            snprintf(err, errcap, "empty component %zu", n + 1);
            goto fail;
        }
        if (len >= sizeof tok) {
            snprintf(err, errcap, "component %zu is too long", n + 1);
            goto fail;
        }
        memcpy(tok, start, len);
        tok[len] = '\0';
        float f;
        if (cli_parse_float(tok, &f) < 0) {
            snprintf(err, errcap, "component %zu '%s' is not a finite number", n + 1, tok);
            goto fail;
        }
        if (n == cap) {
            float *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                snprintf(err, errcap, "out of memory");
                goto fail;
            }
            v = nv;
            cap *= 2;
        }
        v[n++] = f;
        while (isspace((unsigned char)*p)) p++;
        if (*p == ',') {
            p++;
            while (isspace((unsigned char)*p)) p++;
            if (*p == '\0' || *p == ']') {
                snprintf(err, errcap, "trailing comma after component %zu", n);
                goto fail;
            }
        }
    }
    if (bracket) {
        if (*p != ']') {
            snprintf(err, errcap, "missing ']'");
            goto fail;
        }
        p++;
        while (isspace((unsigned char)*p)) p++;
    }
    if (*p != '\0') {
        snprintf(err, errcap, "unexpected '%c' after the vector", *p);
        goto fail;
    }
    if (n == 0) {
        snprintf(err, errcap, "the vector is empty");
        goto fail;
    }
    *out = v;
    *dims = n;
    return 0;
fail:
    free(v);
    return -1;
}

int cli_opt_u32(const cli_args *a, const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
    const char *s = cli_get(a, name);
    if (!s) return CLI_OK;
    if (cli_parse_u32(s, min, max, out) < 0)
        return cli_usage_error(a->cmd, "--%s '%s' is not an integer in %u..%u", name, s, min, max);
    return CLI_OK;
}

int cli_opt_u64(const cli_args *a, const char *name, uint64_t *out)
{
    const char *s = cli_get(a, name);
    if (!s) return CLI_OK;
    if (cli_parse_u64(s, out) < 0)
        return cli_usage_error(a->cmd, "--%s '%s' is not an unsigned 64-bit integer", name, s);
    return CLI_OK;
}

/* Metric names come from the library (qz_metric_name()): values 1, 2, ...
 * until the first one it does not know. */
int cli_parse_metric(const char *s, uint32_t *out)
{
    for (uint32_t m = QZ_METRIC_COSINE;; m++) {
        const char *name = qz_metric_name(m);
        if (!name) return -1;
        if (strcmp(s, name) == 0) {
            *out = m;
            return 0;
        }
    }
}

const char *cli_metric_name(uint32_t metric)
{
    const char *name = qz_metric_name(metric);
    return name ? name : "unknown";
}

const char *cli_metric_list(void)
{
    static char list[128];
    if (!list[0]) {
        size_t len = 0, n = 0;
        while (qz_metric_name(QZ_METRIC_COSINE + (uint32_t)n)) n++;
        for (size_t i = 0; i < n; i++) {
            const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", sep, qz_metric_name(QZ_METRIC_COSINE + (uint32_t)i));
            if (len >= sizeof list) break;
        }
    }
    return list;
}

int cli_parse_durability(const char *s, uint32_t *out)
{
    if (strcmp(s, "sync") == 0)
        *out = QZ_DURABILITY_SYNC;
    else if (strcmp(s, "batched") == 0)
        *out = QZ_DURABILITY_BATCHED;
    else if (strcmp(s, "none") == 0)
        *out = QZ_DURABILITY_NONE;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* database and directory helpers                                      */
/* ------------------------------------------------------------------ */

int cli_dir_is_empty(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0) return errno == ENOENT ? 1 : -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) return -1;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

int cli_dir_size(const char *dir, uint64_t *bytes, uint64_t *allocated)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    size_t dlen = strlen(dir);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t plen = dlen + 1 + strlen(e->d_name) + 1;
        char *path = malloc(plen);
        if (!path) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        snprintf(path, plen, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISREG(st.st_mode)) {
                *bytes += (uint64_t)st.st_size;
                *allocated += (uint64_t)st.st_blocks * 512u;
            } else if (S_ISDIR(st.st_mode)) {
                if (cli_dir_size(path, bytes, allocated) < 0) rc = -1;
            }
        } else if (errno != ENOENT) { /* a file removed meanwhile is fine */
            rc = -1;
        }
        free(path);
        if (rc < 0) break;
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return rc;
}

int cli_open_existing(const char *cmd, const char *dir, int readonly, uint32_t durability, qz_db **db)
{
    *db = NULL;
    /* QZ_OPEN_EXISTING: a directory that holds no database gives
     * QZ_ENOTFOUND and nothing is created in it, so no command but create
     * (and import --create) ever turns a directory into a database. */
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = QZ_OPEN_EXISTING | (readonly ? QZ_OPEN_READONLY : 0);
    if (!readonly) o.durability = durability;
    int rc = qz_db_open(dir, &o, db);
    if (rc == QZ_ENOTFOUND) {
        *db = NULL;
        return cli_no_database(cmd, dir);
    }
    if (rc < 0) {
        cli_qz_fail(cmd, rc);
        *db = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_no_database(const char *cmd, const char *dir)
{
    /* Only to word the message: the library already said there is none. */
    struct stat st;
    const char *why = stat(dir, &st) != 0        ? "no such directory"
                      : !S_ISDIR(st.st_mode)     ? "not a directory"
                      : cli_dir_is_empty(dir) == 1 ? "the directory is empty"
                                                 : "the directory holds no database";
    return cli_fail(cmd, "%s: no database here (%s); create one with 'quartz create %s --dim N'", dir, why, dir);
}

int cli_close(const char *cmd, qz_db *db)
{
    int rc = qz_db_close(db);
    if (rc < 0) return cli_qz_fail_ctx(cmd, rc, "closing the database");
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* fvecs                                                                */
/* ------------------------------------------------------------------ */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

int cli_fvecs_read(FILE *f, float **buf, size_t *cap, uint32_t *dim, char *err, size_t errcap)
{
    unsigned char h[4];
    size_t got = fread(h, 1, 4, f);
    if (got == 0) {
        if (ferror(f)) {
            snprintf(err, errcap, "read error: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    if (got < 4) {
        snprintf(err, errcap, "file ends inside a row header (truncated file?)");
        return -1;
    }
    uint32_t u = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    int32_t d = (int32_t)u; /* two's complement on every supported host */
    if (d <= 0 || (uint32_t)d > QZ_MAX_DIMENSIONS) {
        snprintf(err, errcap, "row dimension %ld is not in 1..%u (is this an fvecs file?)", (long)d,
                 QZ_MAX_DIMENSIONS);
        return -1;
    }
    if (*cap < (size_t)d) {
        float *nb = realloc(*buf, (size_t)d * sizeof **buf);
        if (!nb) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        *buf = nb;
        *cap = (size_t)d;
    }
    got = fread(*buf, sizeof(float), (size_t)d, f);
    if (got != (size_t)d) {
        snprintf(err, errcap, "file ends inside a row (%zu of %ld floats; truncated file?)", got, (long)d);
        return -1;
    }
    if (!host_is_little_endian()) {
        unsigned char *p = (unsigned char *)*buf;
        for (size_t i = 0; i < (size_t)d; i++, p += 4) {
            unsigned char t = p[0];
            p[0] = p[3];
            p[3] = t;
            t = p[1];
            p[1] = p[2];
            p[2] = t;
        }
    }
    *dim = (uint32_t)d;
    return 1;
}

/* ------------------------------------------------------------------ */
/* output                                                               */
/* ------------------------------------------------------------------ */

void cli_print_escaped(FILE *f, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        switch (c) {
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
    }
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is invalid. */
size_t cli_utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

void cli_print_float(FILE *f, float v)
{
    char buf[48];
    cli_format_float(buf, sizeof buf, v);
    fputs(buf, f);
}

/* ------------------------------------------------------------------ */
/* progress                                                             */
/* ------------------------------------------------------------------ */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->enabled = isatty(fileno(stderr));
    p->t0 = cli_now();
    p->total = total;
}

void cli_progress_update(cli_progress *p, uint64_t done, uint64_t rows)
{
    if (!p->enabled) return;
    double t = cli_now();
    if (p->drawn && t - p->last < 0.1) return;
    p->last = t;
    p->drawn = 1;
    double el = t - p->t0;
    double rate = el > 0 ? (double)rows / el : 0.0;
    enum { W = 30 };
    if (p->total) {
        double frac = (double)done / (double)p->total;
        if (frac > 1) frac = 1;
        int fill = (int)(frac * W);
        char bar[W + 1];
        for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
        bar[W] = '\0';
        fprintf(stderr, "\r[%s] %3d%%  %llu rows  %.1f s  %.0f rows/s   ", bar, (int)(frac * 100),
                (unsigned long long)rows, el, rate);
    } else {
        fprintf(stderr, "\r%llu rows  %.1f s  %.0f rows/s   ", (unsigned long long)rows, el, rate);
    }
    fflush(stderr);
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->enabled || !p->drawn) return;
    fprintf(stderr, "\r%80s\r", "");
    fflush(stderr);
    p->drawn = 0;
}
