/*
 * ids.c - REST ids to 64-bit engine ids, and the metadata envelope.
 *
 * The rules (also in docs/rest-api.md, "Vector ids", so the Worker applies
 * the same ones):
 * - a JSON integer 0..2^53-1 is the engine id itself;
 * - a string in canonical decimal form ("0", "42"; no sign, no leading zero)
 *   whose value is at most 2^53-1 is that integer;
 * - any other string of 1..256 bytes maps to FNV-1a-64(bytes) with the top
 *   bit set, so a hashed id never equals an integer id. The string is kept
 *   in the stored metadata blob (the envelope below) so that responses give
 *   it back and a second string with the same hash is detected (409
 *   id_collision).
 *
 * Envelope (the bytes given to qz_db_insert as metadata):
 * - integer id: the metadata's JSON text, or nothing for no metadata;
 * - string id:  0x01, the id's bytes, 0x00, then the metadata's JSON text
 *   (or nothing). JSON text never starts with 0x01, and the id cannot
 *   contain 0x00 (it is refused), so the split is unambiguous.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1 */

uint64_t qd_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool canonical_decimal(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > 16) return false;
    if (n > 1 && s[0] == '0') return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > 9007199254740991ull) return false;
    *v = x;
    return true;
}

bool qd_id_from_text(const char *s, size_t n, qd_id *out, char *err, size_t errcap)
{
    if (n == 0 || n > QD_MAX_ID_BYTES) {
        snprintf(err, errcap, "id must be 1 to %d bytes, got %zu", QD_MAX_ID_BYTES, n);
        return false;
    }
    if (memchr(s, 0, n)) {
        snprintf(err, errcap, "id must not contain a NUL character");
        return false;
    }
    uint64_t v;
    if (canonical_decimal(s, n, &v)) {
        out->eid = v;
        out->str = NULL;
        out->slen = 0;
        return true;
    }
    out->eid = qd_hash64(s, n, 0) | 0x8000000000000000ull;
    out->str = s;
    out->slen = n;
    return true;
}

bool qd_id_from_json(const cJSON *v, qd_id *out, char *err, size_t errcap)
{
    if (!v) {
        snprintf(err, errcap, "missing field \"id\"");
        return false;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= 0) || d > MAX_SAFE_INT || d != floor(d)) {
            snprintf(err, errcap, "id must be an integer from 0 to 2^53-1 or a string, got %.17g", d);
            return false;
        }
        out->eid = (uint64_t)d;
        out->str = NULL;
        out->slen = 0;
        return true;
    }
    if (cJSON_IsString(v)) return qd_id_from_text(v->valuestring, strlen(v->valuestring), out, err, errcap);
    snprintf(err, errcap, "id must be an integer or a string");
    return false;
}

void qd_id_json(jbuf *b, const qd_id *id)
{
    if (id->str)
        jb_str(b, id->str, id->slen);
    else
        jb_u64(b, id->eid);
}

void qd_envelope(jbuf *b, const qd_id *id, const char *meta, size_t mlen)
{
    jb_reset(b);
    if (id->str) {
        jb_char(b, 1);
        jb_raw(b, id->str, id->slen);
        jb_char(b, 0);
    }
    if (meta) jb_raw(b, meta, mlen);
}

void qd_envelope_split(const char *blob, size_t n, const char **sid, size_t *slen, const char **meta,
                       size_t *mlen)
{
    *sid = NULL;
    *slen = 0;
    if (n > 0 && blob[0] == 1) {
        const char *z = memchr(blob + 1, 0, n - 1);
        if (z) {
            *sid = blob + 1;
            *slen = (size_t)(z - blob - 1);
            size_t head = (size_t)(z - blob) + 1;
            blob += head;
            n -= head;
        }
    }
    *meta = n ? blob : NULL;
    *mlen = n;
}
