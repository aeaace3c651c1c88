/*
 * cmd_kv.c - quartz kv get|put|del|scan: the key-value store beside the
 * vectors.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char cli_usage_kv[] =
    "Usage: quartz kv get DIR KEY\n"
    "       quartz kv put DIR KEY [VALUE] [--durability MODE]\n"
    "       quartz kv del DIR KEY [--durability MODE]\n"
    "       quartz kv scan DIR [PREFIX] [--json]\n"
    "\n"
    "The key-value store beside the vectors. Keys are 1..511 bytes, values up\n"
    "to 16 MiB; keys sort bytewise.\n"
    "\n"
    "  get    print the value of KEY exactly as stored (no newline added);\n"
    "         exits 1 if the key is missing\n"
    "  put    store VALUE under KEY, replacing any previous value; without\n"
    "         VALUE the value is read from standard input (binary-safe)\n"
    "  del    remove KEY; exits 1 if the key is missing\n"
    "  scan   print KEY<TAB>VALUE lines for every key starting with PREFIX\n"
    "         (all keys without PREFIX), in ascending byte order; tabs,\n"
    "         newlines and other control bytes are escaped as \\t \\n \\r \\xNN;\n"
    "         with --json, one JSON array of {\"key\":..., \"value\":...} strings\n"
    "\n"
    "get and scan open the database read-only. Use -- before a key or value\n"
    "that starts with '-'.\n"
    "\n"
    "Options:\n"
    "      --durability MODE   sync, batched (default) or none (put, del)\n"
    "      --json              JSON output (scan)\n"
    "  -h, --help              show this help\n";

static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (n == cap) {
            if (cap > QZ_MAX_METADATA) break; /* the library reports the limit */
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                return -1;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

static int parse_durability(const cli_args *a, uint32_t *out)
{
    const char *s = cli_get(a, "durability");
    *out = 0;
    if (s && cli_parse_durability(s, out) < 0)
        return cli_usage_error(a->cmd, "--durability '%s' must be sync, batched or none", s);
    return CLI_OK;
}

static int kv_put(cli_args *a)
{
    if (a->npos != 2 && a->npos != 3) return cli_usage_error(a->cmd, "expected DIR KEY [VALUE]");
    uint32_t durability;
    int rc = parse_durability(a, &durability);
    if (rc != CLI_OK) return rc;
    const char *key = a->pos[1];
    char *val = NULL;
    size_t vlen;
    int owned = 0;
    if (a->npos == 3) {
        val = a->pos[2];
        vlen = strlen(val);
    } else {
        if (read_all(stdin, &val, &vlen) < 0) return cli_fail(a->cmd, "reading standard input: %s", strerror(errno));
        owned = 1;
    }
    qz_db *db = NULL;
    rc = cli_open_existing(a->cmd, a->pos[0], 0, durability, &db);
    if (rc == CLI_OK) {
        int qrc = qz_kv_put(db, key, strlen(key), val, vlen);
        if (qrc < 0) {
            rc = cli_qz_fail(a->cmd, qrc);
            qz_db_close(db);
        } else {
            rc = cli_close(a->cmd, db);
        }
    }
    if (owned) free(val);
    return rc;
}

static int kv_get(cli_args *a)
{
    if (a->npos != 2) return cli_usage_error(a->cmd, "expected DIR KEY");
    const char *key = a->pos[1];
    size_t klen = strlen(key);
    qz_db *db = NULL;
    int rc = cli_open_existing(a->cmd, a->pos[0], 1, 0, &db);
    if (rc != CLI_OK) return rc;
    char *buf = NULL;
    size_t cap = 0, vlen = 0;
    int qrc;
    for (;;) {
        qrc = qz_kv_get(db, key, klen, buf, cap, &vlen);
        if (qrc != QZ_ETOOSMALL) break;
        char *nb = realloc(buf, vlen ? vlen : 1);
        if (!nb) {
            qrc = QZ_ENOMEM;
            break;
        }
        buf = nb;
        cap = vlen;
    }
    if (qrc < 0) {
        if (qrc == QZ_ENOTFOUND)
            rc = cli_qz_fail_ctx(a->cmd, qrc, "key \"%s\"", key);
        else
            rc = cli_qz_fail(a->cmd, qrc);
    } else if (vlen) {
        fwrite(buf, 1, vlen, stdout);
    }
    free(buf);
    qz_db_close(db);
    return rc;
}

static int kv_del(cli_args *a)
{
    if (a->npos != 2) return cli_usage_error(a->cmd, "expected DIR KEY");
    uint32_t durability;
    int rc = parse_durability(a, &durability);
    if (rc != CLI_OK) return rc;
    const char *key = a->pos[1];
    qz_db *db = NULL;
    rc = cli_open_existing(a->cmd, a->pos[0], 0, durability, &db);
    if (rc != CLI_OK) return rc;
    int qrc = qz_kv_delete(db, key, strlen(key));
    if (qrc < 0) {
        rc = qrc == QZ_ENOTFOUND ? cli_qz_fail_ctx(a->cmd, qrc, "key \"%s\"", key) : cli_qz_fail(a->cmd, qrc);
        qz_db_close(db);
        return rc;
    }
    return cli_close(a->cmd, db);
}

typedef struct scan_state {
    int json;
    size_t n;
    int oom;
} scan_state;

static int scan_print(const void *key, size_t klen, const void *val, size_t vlen, void *user)
{
    scan_state *s = user;
    if (s->json) {
        /* One element per line, streamed: the scan may be larger than memory. */
        cJSON *o = cJSON_CreateObject();
        int bad = cli_jadd(o, "key", cli_jbytes(key, klen));
        bad |= cli_jadd(o, "value", cli_jbytes(val, vlen));
        if (bad) {
            cJSON_Delete(o);
            s->oom = 1;
            return 1;
        }
        fputs(s->n ? ",\n" : "\n", stdout);
        if (cli_jprint(stdout, o) < 0) {
            s->oom = 1;
            return 1;
        }
    } else {
        cli_print_escaped(stdout, key, klen);
        fputc('\t', stdout);
        cli_print_escaped(stdout, val, vlen);
        fputc('\n', stdout);
    }
    s->n++;
    return ferror(stdout) ? 1 : 0;
}

static int kv_scan(cli_args *a)
{
    if (a->npos != 1 && a->npos != 2) return cli_usage_error(a->cmd, "expected DIR [PREFIX]");
    const char *prefix = a->npos == 2 ? a->pos[1] : "";
    qz_db *db = NULL;
    int rc = cli_open_existing(a->cmd, a->pos[0], 1, 0, &db);
    if (rc != CLI_OK) return rc;
    scan_state st = {cli_has(a, "json"), 0, 0};
    if (st.json) fputc('[', stdout);
    int qrc = qz_kv_scan(db, prefix, strlen(prefix), scan_print, &st);
    if (qrc < 0)
        rc = cli_qz_fail(a->cmd, qrc);
    else if (qrc > 0 && st.oom)
        rc = cli_fail(a->cmd, "out of memory");
    else if (qrc > 0)
        rc = cli_fail(a->cmd, "error writing to standard output: %s", strerror(errno));
    else if (st.json)
        fputs(st.n ? "\n]\n" : "]\n", stdout);
    qz_db_close(db);
    return rc;
}

int cmd_kv(int argc, char **argv)
{
    static const cli_opt write_opts[] = {{"durability", 0, 1}};
    static const cli_opt scan_opts[] = {{"json", 0, 0}};
    static const struct {
        const char *name, *cmd;
        int (*fn)(cli_args *);
        const cli_opt *opts;
        size_t nopts;
    } subs[] = {
        {"get", "kv get", kv_get, NULL, 0},
        {"put", "kv put", kv_put, write_opts, 1},
        {"del", "kv del", kv_del, write_opts, 1},
        {"scan", "kv scan", kv_scan, scan_opts, 1},
    };
    if (argc < 2) return cli_usage_error("kv", "missing the operation: get, put, del or scan");
    const char *op = argv[1];
    if (strcmp(op, "-h") == 0 || strcmp(op, "--help") == 0) {
        fputs(cli_usage_kv, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(op, subs[i].name) != 0) continue;
        cli_args a;
        int rc = cli_parse(&a, subs[i].cmd, cli_usage_kv, subs[i].opts, subs[i].nopts, argc - 1, argv + 1);
        if (rc == CLI_OK) rc = subs[i].fn(&a);
        cli_args_free(&a);
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    return cli_usage_error("kv", "unknown operation '%s' (expected get, put, del or scan)", op);
}
