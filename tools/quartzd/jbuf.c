/*
 * jbuf.c - the JSON output buffer. One per worker thread, reused across
 * requests, so a response costs no allocation once the buffer has grown.
 * Floats are printed with "%.9g" (enough digits to round-trip a float),
 * with a fast path for small integers.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool jb_grow(jbuf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->len + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void jb_reset(jbuf *b)
{
    b->len = 0;
    b->oom = false;
}

void jb_raw(jbuf *b, const char *s, size_t n)
{
    if (n == 0 || !jb_grow(b, n)) return; /* n == 0: s may be NULL */
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void jb_lit(jbuf *b, const char *s) { jb_raw(b, s, strlen(s)); }

void jb_char(jbuf *b, char c)
{
    if (!jb_grow(b, 1)) return;
    b->p[b->len++] = c;
}

void jb_str(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!jb_grow(b, n + 2)) return;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            if (!jb_grow(b, 2)) return;
            b->p[b->len++] = (char)c;
            continue;
        }
        if (!jb_grow(b, 7)) return;
        char *o = b->p + b->len;
        switch (c) {
        case '"': memcpy(o, "\\\"", 2); b->len += 2; break;
        case '\\': memcpy(o, "\\\\", 2); b->len += 2; break;
        case '\n': memcpy(o, "\\n", 2); b->len += 2; break;
        case '\r': memcpy(o, "\\r", 2); b->len += 2; break;
        case '\t': memcpy(o, "\\t", 2); b->len += 2; break;
        default:
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            b->len += 6;
        }
    }
    jb_char(b, '"');
}

void jb_cstr(jbuf *b, const char *s) { jb_str(b, s, strlen(s)); }

void jb_u64(jbuf *b, uint64_t v)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jb_raw(b, tmp + i, (size_t)(24 - i));
}

void jb_i64(jbuf *b, int64_t v)
{
    if (v < 0) {
        jb_char(b, '-');
        jb_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        jb_u64(b, (uint64_t)v);
    }
}

void jb_float(jbuf *b, double v)
{
    if (!isfinite(v)) {
        jb_lit(b, "null");
        return;
    }
    /* Fast path: integral values (hamming components, distances 0/1/2...). */
    if (v == (double)(int32_t)v && !(v == 0 && signbit(v))) {
        jb_i64(b, (int32_t)v);
        return;
    }
    if (!jb_grow(b, 32)) return;
    int n = snprintf(b->p + b->len, 32, "%.9g", v);
    if (n > 0) b->len += (size_t)n;
}

void jb_key(jbuf *b, const char *k)
{
    jb_cstr(b, k);
    jb_char(b, ':');
}
