/*
 * cli.h - shared declarations of the quartz command-line tool.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 *
 * The tool links the public API only (quartz.h). Exit codes: 0 success,
 * 1 runtime error, 2 usage error.
 */
#ifndef QUARTZ_CLI_H
#define QUARTZ_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <quartz.h>

#define CLI_OK 0
#define CLI_FAIL 1  /* runtime error */
#define CLI_USAGE 2 /* usage error */
#define CLI_HELP (-1) /* cli_parse(): --help was given */

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* ---- subcommands (one entry of the table in main.c each) ---- */

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;               /* one line for `quartz --help` */
    const char *usage;                 /* full text for `quartz help CMD` */
} cli_command;

int cmd_create(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_kv(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_compact(int argc, char **argv);

extern const char cli_usage_create[];
extern const char cli_usage_import[];
extern const char cli_usage_search[];
extern const char cli_usage_get[];
extern const char cli_usage_delete[];
extern const char cli_usage_kv[];
extern const char cli_usage_stats[];
extern const char cli_usage_check[];
extern const char cli_usage_compact[];

/* ---- option parsing (util.c) ---- */

#define CLI_MAX_OPTS 24

typedef struct cli_opt {
    const char *name; /* long name without the dashes: "dim" for --dim */
    char short_name;  /* 'k' for -k, or 0 */
    int takes_arg;    /* 1: needs a value (--dim 4, --dim=4, -k4, -k 4) */
} cli_opt;

typedef struct cli_args {
    const char *cmd; /* for messages: "import", "kv put" */
    const char *usage;
    const cli_opt *opts;
    size_t nopts;
    const char *val[CLI_MAX_OPTS]; /* last value given, or NULL */
    int seen[CLI_MAX_OPTS];        /* times given */
    char **pos;                    /* positional arguments, in order */
    int npos;
} cli_args;

/* Parse argv[1..argc-1] (argv[0] is the command name). "--" ends the
 * options. Returns CLI_OK, CLI_HELP (usage printed to stdout), or CLI_USAGE
 * (message printed). Free with cli_args_free() in every case. */
int cli_parse(cli_args *a, const char *cmd, const char *usage, const cli_opt *opts, size_t nopts, int argc,
              char **argv);
void cli_args_free(cli_args *a);
const char *cli_get(const cli_args *a, const char *name);
int cli_has(const cli_args *a, const char *name);

/* ---- messages ---- */

/* "quartz: CMD: message" + hint to `quartz help CMD`; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);
/* "quartz: CMD: message"; returns CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);
/* "quartz: CMD: <qz_strerror(rc)>: <qz_errmsg()>"; returns CLI_FAIL. Call it
 * right after the failing qz_ call (qz_errmsg() is reset by the next call). */
int cli_qz_fail(const char *cmd, int rc);
/* As cli_qz_fail() with a context prefix on the detail:
 * "quartz: CMD: <strerror>: <context>: <qz_errmsg()>". */
int cli_qz_fail_ctx(const char *cmd, int rc, const char *fmt, ...) CLI_PRINTF(3, 4);

/* ---- strict number parsing: 0 on success, -1 on any junk ---- */

int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
int cli_parse_float(const char *s, float *out);
/* "0.1,0.2 0.3" or "[0.1, 0.2]": comma and/or blank separated floats. The
 * result is malloc'd. Returns 0, or -1 with a message in err. */
int cli_parse_vector(const char *s, float **out, size_t *dims, char *err, size_t errcap);

/* Option value helpers: print a usage error and return CLI_USAGE on junk. */
int cli_opt_u32(const cli_args *a, const char *name, uint32_t min, uint32_t max, uint32_t *out);
int cli_opt_u64(const cli_args *a, const char *name, uint64_t *out);

/* Metric names are the library's (qz_metric_name()). */
int cli_parse_metric(const char *s, uint32_t *out);
/* qz_metric_name(), or "unknown". */
const char *cli_metric_name(uint32_t metric);
/* "cosine, l2, ip or hamming": every name qz_metric_name() knows. */
const char *cli_metric_list(void);
int cli_parse_durability(const char *s, uint32_t *out);

/* ---- database helpers ---- */

/* Open the database in DIR (read-only, or for writing with the given
 * durability) with QZ_OPEN_EXISTING, so nothing is ever created. A
 * directory that holds no database (missing, empty or foreign) gives a clear
 * message through cli_no_database(). Prints errors; returns CLI_OK or
 * CLI_FAIL. */
int cli_open_existing(const char *cmd, const char *dir, int readonly, uint32_t durability, qz_db **db);
/* Print "DIR: no database here (REASON); create one with ..." and return
 * CLI_FAIL; for a QZ_ENOTFOUND from an open with QZ_OPEN_EXISTING. */
int cli_no_database(const char *cmd, const char *dir);
/* Close and report a failed final flush. Returns CLI_OK or CLI_FAIL. */
int cli_close(const char *cmd, qz_db *db);
/* 1 if DIR is missing or an empty directory, 0 if it has entries, -1 if it
 * cannot be read or is not a directory (errno set). */
int cli_dir_is_empty(const char *dir);
/* Apparent size (sum of st_size) and allocated size of the regular files
 * under DIR, recursively. Returns 0 or -1 (errno set). */
int cli_dir_size(const char *dir, uint64_t *bytes, uint64_t *allocated);

/* ---- fvecs ---- */

/* Read one fvecs row: int32 dim (little-endian) then dim float32. *buf is
 * grown as needed. Returns 1 (row read), 0 (clean EOF), -1 (error: message
 * in err). */
int cli_fvecs_read(FILE *f, float **buf, size_t *cap, uint32_t *dim, char *err, size_t errcap);

/* ---- output ---- */

/* Bytes with tab, newline, CR and other control bytes escaped (\t \n \r
 * \xNN), so one record stays on one line. Backslashes are kept as they are,
 * so JSON text reads naturally; --json output or `kv get` give exact bytes. */
void cli_print_escaped(FILE *f, const void *data, size_t len);
/* Format a float for text output: the fewest of 6..9 significant digits
 * that read back as the same float (as JSON output does, jsonio.c). */
void cli_print_float(FILE *f, float v);

/* ---- progress ---- */

typedef struct cli_progress {
    int enabled;    /* stderr is a terminal */
    double t0;      /* start, seconds */
    double last;    /* last redraw */
    uint64_t total; /* units (bytes or rows) expected; 0 = unknown */
    int drawn;
} cli_progress;

double cli_now(void);
void cli_progress_start(cli_progress *p, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t rows);
void cli_progress_clear(cli_progress *p);

/* ---- JSON, on cJSON (jsonio.c) ---- */

typedef struct json_record {
    uint64_t id;
    float *vec; /* grown as needed, owned by the caller (free it) */
    size_t dims, vec_cap;
    const char *meta; /* metadata value as it appears in the line */
    size_t meta_len;
    int has_meta;
} json_record;

/* Where the members of a top-level JSON object are (byte offsets). */
#define CLI_JSON_MAX_MEMBERS 4
typedef struct cli_json_spans {
    size_t count; /* members of the top-level object (all, not only those kept) */
    struct {
        size_t key;          /* the key's opening quote */
        size_t vstart, vend; /* the value: [vstart, vend) */
    } m[CLI_JSON_MAX_MEMBERS];
} cli_json_spans;

/* The lexical pass before cJSON: RFC 8259 strictness cJSON lacks (leading
 * zeros, "1.", control bytes, UTF-8, NaN/Infinity words) and the member
 * positions of a top-level object (sp may be NULL). Structure errors are
 * left to cJSON. Returns 0, or -1 with "column N: ..." in err. */
int cli_json_lex(const char *s, size_t n, cli_json_spans *sp, char *err, size_t errcap);
/* Parse one JSON line {"id":..., "vector":[...], "metadata":...} (cJSON).
 * Returns 0, or -1 with "column N: ..." in err. */
int json_parse_record(const char *line, size_t len, json_record *rec, char *err, size_t errcap);
/* on=1: give cJSON a bump allocator emptied after each parsed line (no
 * tree may outlive the call that parsed it); on=0: back to malloc/free. */
void cli_json_arena(int on);
/* 1 if the bytes are exactly one JSON value (with optional whitespace). */
int cli_json_is_valid(const char *s, size_t len);
/* Copy a valid JSON text without the whitespace outside strings. dst needs
 * len bytes. Returns the compact length. */
size_t cli_json_compact(const char *src, size_t len, char *dst);

/* Output: cJSON nodes holding raw JSON text (NULL when out of memory). */
cJSON *cli_jfloat(float v);                       /* shortest round-trip float, null if not finite */
cJSON *cli_ju64(uint64_t v);                      /* exact decimal */
cJSON *cli_jbytes(const void *data, size_t len);  /* JSON string of the bytes (invalid UTF-8: \u00XX) */
cJSON *cli_jmeta(const void *data, size_t len);   /* raw if valid JSON, else a string; null if empty */
/* Add item under key (item freed on failure). Returns 0 or -1. */
int cli_jadd(cJSON *obj, const char *key, cJSON *item);
/* cJSON_PrintUnformatted(item) to f, then free item. Returns 0 or -1. */
int cli_jprint(FILE *f, cJSON *item);
/* The float text of cli_jfloat(); cap >= 32. */
void cli_format_float(char *buf, size_t cap, float v);

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is invalid or cut short. */
size_t cli_utf8_len(const unsigned char *p, size_t avail);

#endif /* QUARTZ_CLI_H */
