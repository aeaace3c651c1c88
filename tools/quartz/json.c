/*
 * json.c - a small strict JSON reader (RFC 8259) for the lines that
 * `quartz import --format jsonl` reads: objects with "id", "vector" and
 * "metadata". It validates any JSON value (numbers, strings with escapes and
 * UTF-8, arrays, objects, true/false/null) and decodes only what import needs.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "cli.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 256

typedef struct jp {
    const char *s;
    size_t n, i;
    int depth;
    char *err;
    size_t errcap;
    int failed;
} jp;

static void jp_fail(jp *p, const char *fmt, ...) CLI_PRINTF(2, 3);

static void jp_fail(jp *p, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = 1;
    if (!p->err || !p->errcap) return;
    int k = snprintf(p->err, p->errcap, "column %zu: ", p->i + 1);
    if (k < 0 || (size_t)k >= p->errcap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + k, p->errcap - (size_t)k, fmt, ap);
    va_end(ap);
}

/* Describe the character at the cursor for messages. */
static const char *jp_here(jp *p, char *buf, size_t cap)
{
    if (p->i >= p->n) return "end of line";
    unsigned char c = (unsigned char)p->s[p->i];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static void jp_ws(jp *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static int jp_peek(const jp *p)
{
    return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int jp_expect(jp *p, char c, const char *what)
{
    if (jp_peek(p) == (unsigned char)c) {
        p->i++;
        return 0;
    }
    char b[16];
    jp_fail(p, "expected %s, found %s", what, jp_here(p, b, sizeof b));
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int jp_hex4(jp *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = p->i < p->n ? hexval((unsigned char)p->s[p->i]) : -1;
        if (h < 0) {
            jp_fail(p, "\\u needs 4 hex digits");
            return -1;
        }
        v = v << 4 | (unsigned)h;
        p->i++;
    }
    *out = v;
    return 0;
}

/* Append code point cp as UTF-8 to out (if there is room; *len counts all). */
static void put_utf8(char *out, size_t cap, size_t *len, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    for (size_t k = 0; k < n; k++, (*len)++)
        if (out && *len < cap) out[*len] = (char)b[k];
}

/* A string at the cursor. Decoded into out (cap bytes; *outlen gets the full
 * decoded length) when out is not NULL. */
static int jp_string(jp *p, char *out, size_t cap, size_t *outlen)
{
    size_t len = 0;
    if (jp_expect(p, '"', "'\"'") < 0) return -1;
    for (;;) {
        if (p->i >= p->n) {
            jp_fail(p, "unterminated string");
            return -1;
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) {
            jp_fail(p, "control byte 0x%02x inside a string (escape it)", c);
            return -1;
        }
        if (c == '\\') {
            p->i++;
            int e = jp_peek(p);
            unsigned cp;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                p->i++;
                if (jp_hex4(p, &cp) < 0) return -1;
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    p->i -= 6;
                    jp_fail(p, "lone low surrogate \\u%04x", cp);
                    return -1;
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (p->i + 1 >= p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                        jp_fail(p, "high surrogate \\u%04x is not followed by a low surrogate", cp);
                        return -1;
                    }
                    p->i += 2;
                    if (jp_hex4(p, &lo) < 0) return -1;
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        jp_fail(p, "high surrogate \\u%04x is not followed by a low surrogate", cp);
                        return -1;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(out, cap, &len, cp);
                continue; /* the cursor is already past the escape */
            }
            default:
                if (e < 0)
                    jp_fail(p, "unterminated string");
                else if (e > 0x20 && e < 0x7f)
                    jp_fail(p, "invalid escape '\\%c'", e);
                else
                    jp_fail(p, "invalid escape: byte 0x%02x after '\\'", (unsigned)e);
                return -1;
            }
            p->i++;
            put_utf8(out, cap, &len, cp);
            continue;
        }
        /* raw byte(s): must be UTF-8 */
        size_t n = cli_utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
        if (!n) {
            jp_fail(p, "invalid UTF-8 inside a string");
            return -1;
        }
        for (size_t k = 0; k < n; k++, len++)
            if (out && len < cap) out[len] = p->s[p->i + k];
        p->i += n;
    }
    if (outlen) *outlen = len;
    return 0;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* A number at the cursor; sets *is_int when it has no fraction/exponent. */
static int jp_number(jp *p, int *is_int)
{
    size_t start = p->i;
    int integer = 1;
    if (jp_peek(p) == '-') p->i++;
    if (jp_peek(p) == '0') {
        p->i++;
        if (is_digit(jp_peek(p))) {
            jp_fail(p, "numbers must not have leading zeros");
            return -1;
        }
    } else if (is_digit(jp_peek(p))) {
        while (is_digit(jp_peek(p))) p->i++;
    } else {
        char b[16];
        jp_fail(p, "expected a digit, found %s", jp_here(p, b, sizeof b));
        return -1;
    }
    if (jp_peek(p) == '.') {
        integer = 0;
        p->i++;
        if (!is_digit(jp_peek(p))) {
            jp_fail(p, "expected a digit after '.'");
            return -1;
        }
        while (is_digit(jp_peek(p))) p->i++;
    }
    if (jp_peek(p) == 'e' || jp_peek(p) == 'E') {
        integer = 0;
        p->i++;
        if (jp_peek(p) == '+' || jp_peek(p) == '-') p->i++;
        if (!is_digit(jp_peek(p))) {
            jp_fail(p, "expected a digit in the exponent");
            return -1;
        }
        while (is_digit(jp_peek(p))) p->i++;
    }
    if (is_int) *is_int = integer && p->s[start] != '-';
    return 0;
}

static int jp_literal(jp *p, const char *word)
{
    size_t n = strlen(word);
    if (p->n - p->i >= n && memcmp(p->s + p->i, word, n) == 0) {
        p->i += n;
        return 0;
    }
    char b[16];
    jp_fail(p, "unexpected %s", jp_here(p, b, sizeof b));
    return -1;
}

static int jp_value(jp *p);

static int jp_array(jp *p)
{
    p->i++; /* '[' */
    jp_ws(p);
    if (jp_peek(p) == ']') {
        p->i++;
        return 0;
    }
    for (;;) {
        jp_ws(p);
        if (jp_value(p) < 0) return -1;
        jp_ws(p);
        if (jp_peek(p) == ',') {
            p->i++;
            continue;
        }
        return jp_expect(p, ']', "',' or ']'");
    }
}

static int jp_object(jp *p)
{
    p->i++; /* '{' */
    jp_ws(p);
    if (jp_peek(p) == '}') {
        p->i++;
        return 0;
    }
    for (;;) {
        jp_ws(p);
        if (jp_peek(p) != '"') return jp_expect(p, '"', "a string key");
        if (jp_string(p, NULL, 0, NULL) < 0) return -1;
        jp_ws(p);
        if (jp_expect(p, ':', "':'") < 0) return -1;
        jp_ws(p);
        if (jp_value(p) < 0) return -1;
        jp_ws(p);
        if (jp_peek(p) == ',') {
            p->i++;
            continue;
        }
        return jp_expect(p, '}', "',' or '}'");
    }
}

static int jp_value(jp *p)
{
    int c = jp_peek(p);
    int rc;
    switch (c) {
    case '{':
    case '[':
        if (++p->depth > JSON_MAX_DEPTH) {
            jp_fail(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
            return -1;
        }
        rc = c == '{' ? jp_object(p) : jp_array(p);
        p->depth--;
        return rc;
    case '"': return jp_string(p, NULL, 0, NULL);
    case 't': return jp_literal(p, "true");
    case 'f': return jp_literal(p, "false");
    case 'n': return jp_literal(p, "null");
    default:
        if (c == '-' || is_digit(c)) return jp_number(p, NULL);
        {
            char b[16];
            jp_fail(p, "expected a JSON value, found %s", jp_here(p, b, sizeof b));
        }
        return -1;
    }
}

int json_is_valid(const char *s, size_t len)
{
    jp p = {s, len, 0, 0, NULL, 0, 0};
    jp_ws(&p);
    if (jp_value(&p) < 0) return 0;
    jp_ws(&p);
    return p.i == p.n;
}

size_t json_compact(const char *src, size_t len, char *dst)
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
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            dst[o++] = c;
        }
    }
    return o;
}

static int parse_id(jp *p, uint64_t *out)
{
    size_t start = p->i;
    int is_int = 0;
    if (jp_peek(p) != '-' && !is_digit(jp_peek(p))) {
        char b[16];
        jp_fail(p, "\"id\" must be a non-negative integer, found %s", jp_here(p, b, sizeof b));
        return -1;
    }
    if (jp_peek(p) == '-') {
        jp_fail(p, "\"id\" must be a non-negative integer");
        return -1;
    }
    if (jp_number(p, &is_int) < 0) return -1;
    if (!is_int) {
        p->i = start;
        jp_fail(p, "\"id\" must be a non-negative integer without fraction or exponent");
        return -1;
    }
    uint64_t v = 0;
    for (size_t k = start; k < p->i; k++) {
        unsigned d = (unsigned)(p->s[k] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            p->i = start;
            jp_fail(p, "\"id\" is larger than 18446744073709551615");
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_vector(jp *p, json_record *rec)
{
    rec->dims = 0;
    if (jp_peek(p) != '[') {
        char b[16];
        jp_fail(p, "\"vector\" must be an array of numbers, found %s", jp_here(p, b, sizeof b));
        return -1;
    }
    p->i++;
    jp_ws(p);
    if (jp_peek(p) == ']') {
        jp_fail(p, "\"vector\" is empty");
        return -1;
    }
    for (;;) {
        jp_ws(p);
        size_t start = p->i;
        int c = jp_peek(p);
        if (c != '-' && !is_digit(c)) {
            char b[16];
            jp_fail(p, "\"vector\" component %zu must be a number, found %s", rec->dims + 1,
                    jp_here(p, b, sizeof b));
            return -1;
        }
        if (jp_number(p, NULL) < 0) return -1;
        /* The text is a valid JSON number, followed by a non-number byte or
         * the terminating NUL, so strtod reads exactly it. */
        errno = 0;
        double d = strtod(p->s + start, NULL);
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX) {
            p->i = start;
            jp_fail(p, "\"vector\" component %zu is outside the float range", rec->dims + 1);
            return -1;
        }
        if (rec->dims == rec->vec_cap) {
            size_t nc = rec->vec_cap ? rec->vec_cap * 2 : 64;
            if (nc > QZ_MAX_DIMENSIONS) nc = QZ_MAX_DIMENSIONS;
            if (rec->dims >= nc) {
                jp_fail(p, "\"vector\" has more than %u components", QZ_MAX_DIMENSIONS);
                return -1;
            }
            float *nv = realloc(rec->vec, nc * sizeof *nv);
            if (!nv) {
                jp_fail(p, "out of memory");
                return -1;
            }
            rec->vec = nv;
            rec->vec_cap = nc;
        }
        rec->vec[rec->dims++] = (float)d;
        jp_ws(p);
        if (jp_peek(p) == ',') {
            p->i++;
            continue;
        }
        return jp_expect(p, ']', "',' or ']'");
    }
}

int json_parse_record(const char *line, size_t len, json_record *rec, char *err, size_t errcap)
{
    jp p = {line, len, 0, 0, err, errcap, 0};
    int have_id = 0, have_vec = 0;
    rec->dims = 0;
    rec->meta = NULL;
    rec->meta_len = 0;
    rec->has_meta = 0;
    jp_ws(&p);
    if (jp_peek(&p) != '{') {
        char b[16];
        jp_fail(&p, "expected a JSON object '{', found %s", jp_here(&p, b, sizeof b));
        return -1;
    }
    p.i++;
    jp_ws(&p);
    if (jp_peek(&p) != '}') {
        for (;;) {
            char key[16];
            size_t klen = 0;
            jp_ws(&p);
            size_t kstart = p.i;
            if (jp_peek(&p) != '"') {
                jp_expect(&p, '"', "a string key");
                return -1;
            }
            if (jp_string(&p, key, sizeof key, &klen) < 0) return -1;
            size_t kend = p.i;
            jp_ws(&p);
            if (jp_expect(&p, ':', "':'") < 0) return -1;
            jp_ws(&p);
            int which = -1; /* 0 id, 1 vector, 2 metadata */
            if (klen == 2 && memcmp(key, "id", 2) == 0)
                which = 0;
            else if (klen == 6 && memcmp(key, "vector", 6) == 0)
                which = 1;
            else if (klen == 8 && memcmp(key, "metadata", 8) == 0)
                which = 2;
            if (which < 0) {
                p.i = kstart;
                jp_fail(&p, "unknown key %.*s%s (expected \"id\", \"vector\" or \"metadata\")",
                        (int)(kend - kstart < 40 ? kend - kstart : 40), line + kstart,
                        kend - kstart > 40 ? "..." : "");
                return -1;
            }
            int *seen = which == 0 ? &have_id : which == 1 ? &have_vec : &rec->has_meta;
            if (*seen) {
                p.i = kstart;
                jp_fail(&p, "key \"%.*s\" appears twice", (int)klen, key);
                return -1;
            }
            *seen = 1;
            if (which == 0) {
                if (parse_id(&p, &rec->id) < 0) return -1;
            } else if (which == 1) {
                if (parse_vector(&p, rec) < 0) return -1;
            } else {
                size_t start = p.i;
                if (jp_value(&p) < 0) return -1;
                rec->meta = line + start;
                rec->meta_len = p.i - start;
            }
            jp_ws(&p);
            if (jp_peek(&p) == ',') {
                p.i++;
                continue;
            }
            if (jp_expect(&p, '}', "',' or '}'") < 0) return -1;
            break;
        }
    } else {
        p.i++;
    }
    jp_ws(&p);
    if (p.i != p.n) {
        char b[16];
        jp_fail(&p, "unexpected %s after the object", jp_here(&p, b, sizeof b));
        return -1;
    }
    if (!have_id) {
        jp_fail(&p, "the object has no \"id\"");
        return -1;
    }
    if (!have_vec) {
        jp_fail(&p, "the object has no \"vector\"");
        return -1;
    }
    return 0;
}
