/*
 * jsonio.c - every JSON read and write of the quartz tool, on cJSON (the
 * project's one JSON stack; quartzd uses it too).
 *
 * Reading. cJSON parses the text and gives the tree. Before it, one linear
 * lexical pass (cli_json_lex) does the three things cJSON cannot:
 *   - strictness cJSON lacks: it accepts leading zeros ("01"), "1." and raw
 *     control bytes inside strings, treats any byte below 0x21 as
 *     whitespace, and does not check UTF-8; the pass rejects all of these,
 *     so what the tool accepts is RFC 8259 JSON;
 *   - positions: cJSON keeps none, so the pass records where each member of
 *     the top-level object starts (key) and where its value starts and ends.
 *     cJSON keeps an object's members in text order, so member k of the tree
 *     is member k of the pass;
 *   - exact integers: cJSON stores numbers as doubles only (valuestring is
 *     NULL for numbers), so an id above 2^53 would be rounded. The id is
 *     read from its own text instead (the value span of its member), as a
 *     full uint64.
 * Metadata is stored as its own text with the whitespace outside strings
 * removed (not re-printed by cJSON, whose %1.17g would turn an integer
 * above 2^53 in the metadata into a rounded double).
 *
 * Writing. Documents are cJSON trees printed with cJSON_PrintUnformatted
 * (compact). Numbers and byte strings go in as raw JSON text
 * (cJSON_CreateRaw): ids as exact uint64 decimals, floats with the fewest
 * of 6..9 significant digits that read back (strtod, then to float, as the
 * reader does) as the same float32 - cJSON's own number printer uses
 * %1.15g/%1.17g of a double, longer and unable to hold a uint64 - and bytes
 * as a JSON string literal (metadata and kv values may hold NUL or invalid
 * UTF-8, which cJSON's NUL-terminated strings cannot carry).
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "cli.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void lex_fail(char *err, size_t errcap, size_t col, const char *fmt, ...) CLI_PRINTF(4, 5);

static void lex_fail(char *err, size_t errcap, size_t col, const char *fmt, ...)
{
    if (!err || !errcap) return;
    int k = snprintf(err, errcap, "column %zu: ", col + 1);
    if (k < 0 || (size_t)k >= errcap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + k, errcap - (size_t)k, fmt, ap);
    va_end(ap);
}

/* Describe the byte at s[i] for messages. */
static const char *here(const char *s, size_t n, size_t i, char *buf, size_t cap)
{
    if (i >= n) return "end of line";
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int word_is(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    if (n != k) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != w[i]) return 0;
    }
    return 1;
}

static int is_nonfinite_word(const char *s, size_t n)
{
    return word_is(s, n, "nan") || word_is(s, n, "inf") || word_is(s, n, "infinity");
}

int cli_json_lex(const char *s, size_t n, cli_json_spans *sp, char *err, size_t errcap)
{
    size_t depth = 0, last_end = 0;
    int root_object = 0, expect_key = 0, in_value = 0;
    size_t cur = 0; /* member being read at depth 1 */
    char b[16];
    if (sp) sp->count = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        unsigned char u = (unsigned char)c;
        if (is_ws(c)) {
            i++;
            continue;
        }
        if (c == '"') {
            size_t start = i++;
            for (;;) {
                if (i >= n) return 0; /* unterminated: cJSON reports it */
                unsigned char d = (unsigned char)s[i];
                if (d >= 0x20 && d < 0x80 && d != '"' && d != '\\') { /* the common case first */
                    i++;
                    continue;
                }
                if (d == '"') {
                    i++;
                    break;
                }
                if (d == '\\') {
                    char e = i + 1 < n ? s[i + 1] : '\0';
                    if (e == 'u') {
                        for (size_t h = i + 2; h < i + 6; h++)
                            if (h >= n || !strchr("0123456789abcdefABCDEF", s[h]) || !s[h]) {
                                lex_fail(err, errcap, i, "\\u needs 4 hex digits");
                                return -1;
                            }
                        i += 6;
                        continue;
                    }
                    if (!e || !strchr("\"\\/bfnrt", e)) {
                        if (i + 1 >= n)
                            return 0; /* unterminated: cJSON reports it */
                        else if ((unsigned char)e > 0x20 && (unsigned char)e < 0x7f)
                            lex_fail(err, errcap, i, "invalid escape '\\%c'", e);
                        else
                            lex_fail(err, errcap, i, "invalid escape: byte 0x%02x after '\\'", (unsigned char)e);
                        return -1;
                    }
                    i += 2;
                    continue;
                }
                if (d < 0x20) {
                    lex_fail(err, errcap, i, "control byte 0x%02x inside a string (escape it)", d);
                    return -1;
                }
                if (d >= 0x80) {
                    size_t k = cli_utf8_len((const unsigned char *)s + i, n - i);
                    if (!k) {
                        lex_fail(err, errcap, i, "invalid UTF-8 inside a string");
                        return -1;
                    }
                    i += k;
                } else {
                    i++;
                }
            }
            if (depth == 1 && root_object && expect_key) {
                cur = sp ? sp->count : 0;
                if (sp) {
                    if (sp->count < CLI_JSON_MAX_MEMBERS) {
                        sp->m[sp->count].key = start;
                        sp->m[sp->count].vstart = sp->m[sp->count].vend = 0;
                    }
                    sp->count++;
                }
                expect_key = 0;
            }
            last_end = i;
            continue;
        }
        if (c == '-' || is_digit(c)) {
            /* One pass over the number, checking the grammar
             * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as it goes. */
            size_t start = i;
            const char *why = NULL;
            if (c == '-') i++;
            if (i < n && s[i] == '0') {
                i++;
                if (i < n && is_digit(s[i])) why = "numbers must not have leading zeros";
            } else if (i < n && is_digit(s[i])) {
                while (i < n && is_digit(s[i])) i++;
            } else {
                if (i < n && is_alpha(s[i])) {
                    size_t w = i;
                    while (w < n && is_alpha(s[w])) w++;
                    if (is_nonfinite_word(s + i, w - i)) {
                        lex_fail(err, errcap, start,
                                 "'-%.*s': JSON has no NaN or infinity (numbers must be finite)", (int)(w - i),
                                 s + i);
                        return -1;
                    }
                }
                why = "expected a digit";
            }
            if (!why && i < n && s[i] == '.') {
                i++;
                if (i < n && is_digit(s[i]))
                    while (i < n && is_digit(s[i])) i++;
                else
                    why = "expected a digit after '.'";
            }
            if (!why && i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '+' || s[i] == '-')) i++;
                if (i < n && is_digit(s[i]))
                    while (i < n && is_digit(s[i])) i++;
                else
                    why = "expected a digit in the exponent";
            }
            if (!why && i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-'))
                why = "malformed number";
            if (why) {
                size_t e = i;
                while (e < n && (is_digit(s[e]) || s[e] == '.' || s[e] == 'e' || s[e] == 'E' || s[e] == '+' ||
                                 s[e] == '-'))
                    e++;
                if (e == start) e = start + 1;
                lex_fail(err, errcap, start, "%s in the number '%.*s'", why, (int)(e - start < 40 ? e - start : 40),
                         s + start);
                return -1;
            }
            last_end = i;
            continue;
        }
        if (is_alpha(c)) {
            size_t start = i;
            while (i < n && is_alpha(s[i])) i++;
            size_t w = i - start;
            if (is_nonfinite_word(s + start, w)) {
                lex_fail(err, errcap, start, "'%.*s': JSON has no NaN or infinity (numbers must be finite)", (int)w,
                         s + start);
                return -1;
            }
            if (!word_is(s + start, w, "true") && !word_is(s + start, w, "false") && !word_is(s + start, w, "null")) {
                lex_fail(err, errcap, start, "unexpected word '%.*s'", (int)(w < 40 ? w : 40), s + start);
                return -1;
            }
            /* "True" and the like: cJSON compares exactly and reports it. */
            last_end = i;
            continue;
        }
        if (u < 0x20 || u >= 0x7f) {
            lex_fail(err, errcap, i, "unexpected %s outside a string", here(s, n, i, b, sizeof b));
            return -1;
        }
        switch (c) {
        case '{':
        case '[':
            depth++;
            if (depth == 1 && c == '{') {
                root_object = 1;
                expect_key = 1;
            }
            break;
        case '}':
        case ']':
            if (depth == 1 && root_object && in_value) {
                if (sp && cur < CLI_JSON_MAX_MEMBERS) sp->m[cur].vend = last_end;
                in_value = 0;
            }
            if (depth > 0) depth--;
            break;
        case ':':
            if (depth == 1 && root_object && !in_value) {
                size_t v = i + 1;
                while (v < n && is_ws(s[v])) v++;
                if (sp && cur < CLI_JSON_MAX_MEMBERS && sp->count > cur) sp->m[cur].vstart = v;
                in_value = 1;
            }
            break;
        case ',': {
            size_t nx = i + 1;
            while (nx < n && is_ws(s[nx])) nx++;
            if (nx < n && (s[nx] == '}' || s[nx] == ']')) {
                lex_fail(err, errcap, nx, "trailing comma before '%c'", s[nx]);
                return -1;
            }
        }
            if (depth == 1 && root_object) {
                if (in_value && sp && cur < CLI_JSON_MAX_MEMBERS) sp->m[cur].vend = last_end;
                in_value = 0;
                expect_key = 1;
            }
            break;
        default: break; /* anything else: cJSON reports it */
        }
        i++;
        last_end = i;
    }
    return 0;
}

/* ---- an arena for cJSON's nodes while import reads lines ----
 * cJSON mallocs every node and key and frees them one by one; for a line of
 * 100 numbers that is over a hundred malloc/free pairs, some 15% of the
 * parse time. cJSON_InitHooks() lets us give it an allocator: a bump
 * allocator whose free does nothing, emptied after each line. The hooks are
 * global, so they are set only around import's reading pass
 * (cli_json_arena(1) ... cli_json_arena(0)), where nothing else uses cJSON
 * and no tree outlives its line. */

typedef struct arena_blk {
    struct arena_blk *next;
    size_t cap, used;
    max_align_t data[];
} arena_blk;

#define ARENA_BLOCK 65536

static arena_blk *arena_head;
static int arena_on;

static void *arena_malloc(size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!arena_head || arena_head->cap - arena_head->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        arena_blk *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = arena_head;
        arena_head = b;
    }
    void *p = (char *)arena_head->data + arena_head->used;
    arena_head->used += n;
    return p;
}

static void arena_free(void *p)
{
    (void)p; /* everything goes at once in arena_reset() */
}

/* Empty the arena, keeping one standard block for the next line. */
static void arena_reset(int keep)
{
    arena_blk *kept = NULL;
    while (arena_head) {
        arena_blk *b = arena_head;
        arena_head = b->next;
        if (keep && !kept && b->cap == ARENA_BLOCK) {
            kept = b;
            kept->used = 0;
            kept->next = NULL;
        } else {
            free(b);
        }
    }
    arena_head = kept;
}

void cli_json_arena(int on)
{
    if (on && !arena_on) {
        cJSON_Hooks h = {arena_malloc, arena_free};
        cJSON_InitHooks(&h);
        arena_on = 1;
    } else if (!on && arena_on) {
        cJSON_InitHooks(NULL);
        arena_reset(0);
        arena_on = 0;
    }
}

static void tree_free(cJSON *root)
{
    if (arena_on)
        arena_reset(1);
    else
        cJSON_Delete(root);
}

/* Parse s[0..n) with cJSON after the lexical pass; exactly one value with
 * optional whitespace. Returns the tree, or NULL with "column N: ..." in err. */
static cJSON *parse_text(const char *s, size_t n, cli_json_spans *sp, char *err, size_t errcap)
{
    char b[16];
    if (cli_json_lex(s, n, sp, err, errcap) < 0) return NULL;
    size_t first = 0;
    while (first < n && is_ws(s[first])) first++;
    if (first == n) {
        lex_fail(err, errcap, first, "expected a JSON value, found end of line");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!root) {
        if (arena_on) arena_reset(1);
        size_t col = end && end >= s && end <= s + n ? (size_t)(end - s) : 0;
        /* cJSON gives only where it stopped, which is at or just after the
         * fault. */
        size_t rest = col;
        while (rest < n && is_ws(s[rest])) rest++;
        if (rest >= n)
            lex_fail(err, errcap, col, "the line ends inside the JSON value (unterminated string, array or object?)");
        else
            lex_fail(err, errcap, col, "invalid JSON near %s", here(s, n, col, b, sizeof b));
        return NULL;
    }
    size_t i = (size_t)(end - s);
    while (i < n && is_ws(s[i])) i++;
    if (i != n) {
        lex_fail(err, errcap, i, "unexpected %s after the JSON value", here(s, n, i, b, sizeof b));
        tree_free(root);
        return NULL;
    }
    return root;
}

int cli_json_is_valid(const char *s, size_t len)
{
    cJSON *root = parse_text(s, len, NULL, NULL, 0);
    if (!root) return 0;
    tree_free(root);
    return 1;
}

size_t cli_json_compact(const char *src, size_t len, char *dst)
{
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (in_str) {
            dst[o++] = c;
            if (c == '\\' && i + 1 < len)
                dst[o++] = src[++i];
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
            dst[o++] = c;
        } else if (!is_ws(c)) {
            dst[o++] = c;
        }
    }
    return o;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an unknown value";
}

/* The id from its own text (an exact uint64), s[0..n) being a JSON number. */
static int parse_id_text(const char *s, size_t n, size_t col, uint64_t *out, char *err, size_t errcap)
{
    if (n && s[0] == '-') {
        lex_fail(err, errcap, col, "\"id\" must be a non-negative integer");
        return -1;
    }
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        if (!is_digit(s[k])) {
            lex_fail(err, errcap, col, "\"id\" must be a non-negative integer without fraction or exponent");
            return -1;
        }
        unsigned d = (unsigned)(s[k] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            lex_fail(err, errcap, col, "\"id\" is larger than 18446744073709551615");
            return -1;
        }
        v = v * 10 + d;
    }
    if (n == 0) {
        lex_fail(err, errcap, col, "\"id\" must be a non-negative integer");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_vector(const cJSON *arr, size_t col, json_record *rec, char *err, size_t errcap)
{
    rec->dims = 0;
    if (!cJSON_IsArray(arr)) {
        lex_fail(err, errcap, col, "\"vector\" must be an array of numbers, found %s", type_name(arr));
        return -1;
    }
    if (!arr->child) {
        lex_fail(err, errcap, col, "\"vector\" is empty");
        return -1;
    }
    for (const cJSON *c = arr->child; c; c = c->next) {
        if (!cJSON_IsNumber(c)) {
            lex_fail(err, errcap, col, "\"vector\" component %zu must be a number, found %s", rec->dims + 1,
                     type_name(c));
            return -1;
        }
        double d = c->valuedouble;
        /* Text that rounds to a finite float is in range: 3.4028235e38,
         * the shortest text of FLT_MAX, is above FLT_MAX as a double. Past
         * the midpoint between FLT_MAX and 2^128 it would round to infinity. */
        if (!isfinite(d) || fabs(d) >= 0x1.ffffffp127) {
            lex_fail(err, errcap, col, "\"vector\" component %zu is outside the float range", rec->dims + 1);
            return -1;
        }
        if (fabs(d) > (double)FLT_MAX) d = d < 0 ? -(double)FLT_MAX : (double)FLT_MAX;
        if (rec->dims == rec->vec_cap) {
            size_t nc = rec->vec_cap ? rec->vec_cap * 2 : 64;
            if (nc > QZ_MAX_DIMENSIONS) nc = QZ_MAX_DIMENSIONS;
            if (rec->dims >= nc) {
                lex_fail(err, errcap, col, "\"vector\" has more than %u components", QZ_MAX_DIMENSIONS);
                return -1;
            }
            float *nv = realloc(rec->vec, nc * sizeof *nv);
            if (!nv) {
                lex_fail(err, errcap, col, "out of memory");
                return -1;
            }
            rec->vec = nv;
            rec->vec_cap = nc;
        }
        rec->vec[rec->dims++] = (float)d;
    }
    return 0;
}

int json_parse_record(const char *line, size_t len, json_record *rec, char *err, size_t errcap)
{
    cli_json_spans sp;
    char b[16];
    rec->dims = 0;
    rec->meta = NULL;
    rec->meta_len = 0;
    rec->has_meta = 0;
    cJSON *root = parse_text(line, len, &sp, err, errcap);
    if (!root) return -1;
    int rc = -1, have_id = 0, have_vec = 0;
    if (!cJSON_IsObject(root)) {
        size_t first = 0;
        while (first < len && is_ws(line[first])) first++;
        lex_fail(err, errcap, first, "expected a JSON object '{', found %s", here(line, len, first, b, sizeof b));
        goto out;
    }
    size_t k = 0;
    for (const cJSON *m = root->child; m; m = m->next, k++) {
        /* At most CLI_JSON_MAX_MEMBERS - 1 members are valid (id, vector,
         * metadata), so the spans of every member read here are known. */
        size_t kcol = k < CLI_JSON_MAX_MEMBERS ? sp.m[k].key : 0;
        const char *key = m->string ? m->string : "";
        int which = strcmp(key, "id") == 0 ? 0 : strcmp(key, "vector") == 0 ? 1 : strcmp(key, "metadata") == 0 ? 2 : -1;
        if (which < 0) {
            size_t kl = strlen(key);
            lex_fail(err, errcap, kcol, "unknown key \"%.*s\"%s (expected \"id\", \"vector\" or \"metadata\")",
                     (int)(kl < 40 ? kl : 40), key, kl > 40 ? "..." : "");
            goto out;
        }
        int *seen = which == 0 ? &have_id : which == 1 ? &have_vec : &rec->has_meta;
        if (*seen) {
            lex_fail(err, errcap, kcol, "key \"%s\" appears twice", key);
            goto out;
        }
        *seen = 1;
        if (k >= CLI_JSON_MAX_MEMBERS || sp.count != (size_t)cJSON_GetArraySize(root)) {
            lex_fail(err, errcap, kcol, "internal error: member positions do not match the parse");
            goto out;
        }
        size_t vs = sp.m[k].vstart, ve = sp.m[k].vend;
        if (which == 0) {
            if (!cJSON_IsNumber(m)) {
                lex_fail(err, errcap, vs, "\"id\" must be a non-negative integer, found %s", type_name(m));
                goto out;
            }
            if (parse_id_text(line + vs, ve - vs, vs, &rec->id, err, errcap) < 0) goto out;
        } else if (which == 1) {
            if (parse_vector(m, vs, rec, err, errcap) < 0) goto out;
        } else {
            rec->meta = line + vs;
            rec->meta_len = ve - vs;
        }
    }
    if (!have_id) {
        lex_fail(err, errcap, len, "the object has no \"id\"");
        goto out;
    }
    if (!have_vec) {
        lex_fail(err, errcap, len, "the object has no \"vector\"");
        goto out;
    }
    rc = 0;
out:
    tree_free(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* writing                                                              */
/* ------------------------------------------------------------------ */

void cli_format_float(char *buf, size_t cap, float v)
{
    /* The reader turns text into a double (strtod, in cJSON) and then into
     * a float; check the candidate along the same path. 9 significant
     * digits always read back (FLT_DECIMAL_DIG). */
    if (!buf || cap == 0) return;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v) return;
    }
}

cJSON *cli_jfloat(float v)
{
    if (!isfinite(v)) return cJSON_CreateNull();
    char buf[48];
    cli_format_float(buf, sizeof buf, v);
    return cJSON_CreateRaw(buf);
}

cJSON *cli_ju64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

/* Write the escape \u00XX of byte c; returns the end. */
static char *put_u00(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(o, "\\u00", 4);
    o[4] = hex[c >> 4];
    o[5] = hex[c & 15];
    return o + 6;
}

/* The JSON string literal of the bytes into a malloc'd NUL-terminated
 * buffer: '"' and '\' escaped, control bytes as \n \r \t \b \f or \u00XX,
 * valid UTF-8 kept, each other byte as the code point U+00XX. */
static char *string_literal(const void *data, size_t len)
{
    const unsigned char *p = data;
    /* The exact size first: a value may be 16 MiB. */
    size_t need = 3;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n = c == '"' || c == '\\' ? 1 : c < 0x20 || c == 0x7f ? 0 : cli_utf8_len(p + i, len - i);
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f')
            need += 2, i++;
        else if (n == 0)
            need += 6, i++;
        else
            need += n, i += n;
    }
    char *out = malloc(need), *o = out;
    if (!out) return NULL;
    *o++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': memcpy(o, "\\n", 2), o += 2; break;
            case '\r': memcpy(o, "\\r", 2), o += 2; break;
            case '\t': memcpy(o, "\\t", 2), o += 2; break;
            case '\b': memcpy(o, "\\b", 2), o += 2; break;
            case '\f': memcpy(o, "\\f", 2), o += 2; break;
            default: o = put_u00(o, c);
            }
            i++;
        } else {
            size_t n = cli_utf8_len(p + i, len - i);
            if (n == 0) { /* not UTF-8: the byte as the code point U+00XX */
                o = put_u00(o, c);
                i++;
            } else {
                memcpy(o, p + i, n);
                o += n;
                i += n;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

cJSON *cli_jbytes(const void *data, size_t len)
{
    char *lit = string_literal(data, len);
    if (!lit) return NULL;
    cJSON *j = cJSON_CreateRaw(lit);
    free(lit);
    return j;
}

cJSON *cli_jmeta(const void *data, size_t len)
{
    if (len == 0) return cJSON_CreateNull();
    if (!cli_json_is_valid(data, len)) return cli_jbytes(data, len);
    /* Raw needs a NUL-terminated copy; valid JSON text holds no NUL. */
    char *t = malloc(len + 1);
    if (!t) return NULL;
    memcpy(t, data, len);
    t[len] = '\0';
    cJSON *j = cJSON_CreateRaw(t);
    free(t);
    return j;
}

int cli_jadd(cJSON *obj, const char *key, cJSON *item)
{
    if (!obj || !item) {
        cJSON_Delete(item);
        return -1;
    }
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

int cli_jprint(FILE *f, cJSON *item)
{
    char *text = item ? cJSON_PrintUnformatted(item) : NULL;
    cJSON_Delete(item);
    if (!text) return -1;
    fputs(text, f);
    cJSON_free(text);
    return 0;
}
