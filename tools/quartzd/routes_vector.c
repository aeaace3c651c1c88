/*
 * routes_vector.c - the vector routes of one index: insert, upsert,
 * batch-insert, search, get (one, many), delete (one, many), stats.
 * Every check that can fail is made before the first qz write, so a failed
 * request changes nothing stored.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stored blob of @p eid into the thread's scratch bytes, and its vector
 * into @p vec when not NULL. Returns a qz status. */
static int fetch(qd_req *r, qd_index *ix, uint64_t eid, float *vec, const char **blob, size_t *blen)
{
    size_t cap = r->t ? 4096 : 0;
    for (int tries = 0; tries < 3; tries++) {
        char *buf = qd_scratch_bytes(r->t, cap);
        if (!buf) return QZ_ENOMEM;
        size_t n = 0;
        int rc = qz_db_get(ix->db, eid, vec, vec ? ix->dim : 0, buf, cap, &n);
        if (rc == QZ_ETOOSMALL && n > cap) {
            cap = n;
            continue;
        }
        if (rc < 0) return rc;
        *blob = buf;
        *blen = n;
        return QZ_OK;
    }
    return QZ_ENOMEM;
}

/* Does the vector stored under id->eid belong to this REST id? 1 yes, 0 no
 * (absent, or another string with the same hash: *other set), <0 error. */
static int owned(qd_req *r, qd_index *ix, const qd_id *id, float *vec, const char **meta, size_t *mlen,
                 bool *other)
{
    const char *blob, *sid;
    size_t blen, slen;
    *other = false;
    int rc = fetch(r, ix, id->eid, vec, &blob, &blen);
    if (rc == QZ_ENOTFOUND) return 0;
    if (rc < 0) return rc;
    qd_envelope_split(blob, blen, &sid, &slen, meta, mlen);
    if (id->str && (!sid || slen != id->slen || memcmp(sid, id->str, slen) != 0)) {
        *other = true;
        return 0;
    }
    return 1;
}

static void id_text(const qd_id *id, char *buf, size_t cap)
{
    if (id->str)
        snprintf(buf, cap, "\"%.*s\"", (int)(id->slen > 80 ? 80 : id->slen), id->str);
    else
        snprintf(buf, cap, "%llu", (unsigned long long)id->eid);
}

static void meta_json(jbuf *b, const char *meta, size_t mlen)
{
    if (mlen)
        jb_raw(b, meta, mlen);
    else
        jb_lit(b, "null");
}

static void vector_json(jbuf *b, const float *v, uint32_t dim)
{
    jb_char(b, '[');
    for (uint32_t i = 0; i < dim; i++) {
        if (i) jb_char(b, ',');
        jb_float(b, v[i]);
    }
    jb_char(b, ']');
}

/* Metadata text of a request row: NULL for absent or null. Caller frees. */
static bool meta_text(qd_req *r, const cJSON *m, char **out, const char *pre)
{
    *out = NULL;
    if (!m || cJSON_IsNull(m)) return true;
    *out = cJSON_PrintUnformatted(m);
    if (!*out) {
        qd_error(r, 503, "unavailable", "%sout of memory printing metadata", pre);
        return false;
    }
    return true;
}

static bool check_meta_size(qd_req *r, size_t n, const char *pre)
{
    if (n <= QZ_MAX_METADATA) return true;
    qd_error(r, 422, "out_of_range", "%smetadata is %zu bytes, the limit is %u", pre, n, QZ_MAX_METADATA);
    return false;
}

/* insert / upsert of one vector */
static void put_one(qd_req *r, qd_index *ix, const char *body, size_t blen, bool upsert)
{
    float *vec = qd_scratch_floats(r->t, ix->dim);
    if (!vec) {
        qd_error(r, 503, "unavailable", "out of memory");
        return;
    }
    bool fast = qd_fastvec_take((char *)body, blen, "vector", vec, ix->dim);
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    char err[512], idt[100];
    qd_id id;
    char *meta = NULL;
    if (!qd_id_from_json(cJSON_GetObjectItemCaseSensitive(j, "id"), &id, err, sizeof err)) {
        qd_error(r, 400, "invalid_argument", "%s", err);
        goto out;
    }
    if (!fast && !qd_read_vector(r, cJSON_GetObjectItemCaseSensitive(j, "vector"), ix->dim, vec, "vector", -1))
        goto out;
    if (!meta_text(r, cJSON_GetObjectItemCaseSensitive(j, "metadata"), &meta, "")) goto out;
    jbuf *env = qd_scratch_jbuf(r->t);
    qd_envelope(env, &id, meta, meta ? strlen(meta) : 0);
    if (env->oom) {
        qd_error(r, 503, "unavailable", "out of memory");
        goto out;
    }
    if (!check_meta_size(r, env->len, "")) goto out;
    id_text(&id, idt, sizeof idt);
    if (id.str) {
        const char *m;
        size_t ml;
        bool other;
        /* fetch() uses the scratch bytes, not the envelope buffer */
        int own = owned(r, ix, &id, NULL, &m, &ml, &other);
        if (own < 0) {
            qd_error_qz(r, own, "");
            goto out;
        }
        if (other) {
            qd_error(r, 409, "id_collision", "id %s maps to engine id %llu, which holds another string id", idt,
                     (unsigned long long)id.eid);
            goto out;
        }
        if (own && !upsert) {
            qd_error(r, 409, "already_exists", "id %s already exists", idt);
            goto out;
        }
    }
    int rc = upsert ? qz_db_upsert(ix->db, id.eid, vec, ix->dim, env->len ? env->p : NULL, env->len)
                    : qz_db_insert(ix->db, id.eid, vec, ix->dim, env->len ? env->p : NULL, env->len);
    if (rc == QZ_EEXISTS) {
        qd_error(r, 409, "already_exists", "id %s already exists", idt);
        goto out;
    }
    if (rc < 0) {
        qd_error_qz(r, rc, "");
        goto out;
    }
    jb_reset(r->out);
    jb_lit(r->out, "{\"id\":");
    qd_id_json(r->out, &id);
    jb_lit(r->out, upsert ? ",\"upserted\":true}" : ",\"inserted\":true}");
    qd_reply(r, upsert ? 200 : 201);
out:
    free(meta);
    cJSON_Delete(j);
}

typedef struct rowid {
    uint64_t eid;
    size_t row;
} rowid;

static int cmp_rowid(const void *a, const void *b)
{
    const rowid *x = a, *y = b;
    if (x->eid != y->eid) return x->eid < y->eid ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static void batch_insert(qd_req *r, qd_index *ix, const char *body, size_t blen)
{
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    char err[512], pre[48], idt[100];
    qd_id *ids = NULL;
    uint64_t *eids = NULL;
    rowid *sorted = NULL;
    size_t *offs = NULL, *lens = NULL;
    const void **metas = NULL;
    jbuf all = {0};
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "vectors");
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(j, "upsert");
    if (!cJSON_IsArray(rows)) {
        qd_error(r, 400, "invalid_argument", rows ? "\"vectors\" must be an array" : "missing field \"vectors\"");
        goto out;
    }
    if (up && !cJSON_IsBool(up)) {
        qd_error(r, 400, "invalid_argument", "\"upsert\" must be true or false");
        goto out;
    }
    bool upsert = up && cJSON_IsTrue(up);
    size_t n = (size_t)cJSON_GetArraySize(rows);
    if (n > qd_cfg.max_batch) {
        r->close = false;
        qd_error(r, 413, "payload_too_large", "the batch has %zu vectors, the limit is %zu", n, qd_cfg.max_batch);
        goto out;
    }
    float *vecs = qd_scratch_floats(r->t, n * ix->dim);
    ids = calloc(n ? n : 1, sizeof *ids);
    eids = calloc(n ? n : 1, sizeof *eids);
    sorted = calloc(n ? n : 1, sizeof *sorted);
    offs = calloc(n ? n : 1, sizeof *offs);
    lens = calloc(n ? n : 1, sizeof *lens);
    metas = calloc(n ? n : 1, sizeof *metas);
    if (!vecs || !ids || !eids || !sorted || !offs || !lens || !metas) {
        qd_error(r, 503, "unavailable", "out of memory for a batch of %zu", n);
        goto out;
    }
    bool any_meta = false;
    size_t i = 0;
    for (const cJSON *row = rows->child; row; row = row->next, i++) {
        snprintf(pre, sizeof pre, "row %zu: ", i);
        if (!cJSON_IsObject(row)) {
            qd_error(r, 400, "invalid_argument", "%sa row must be an object {id, vector, metadata?}", pre);
            goto out;
        }
        if (!qd_id_from_json(cJSON_GetObjectItemCaseSensitive(row, "id"), &ids[i], err, sizeof err)) {
            qd_error(r, 400, "invalid_argument", "%s%s", pre, err);
            goto out;
        }
        eids[i] = ids[i].eid;
        sorted[i] = (rowid){ids[i].eid, i};
        if (!qd_read_vector(r, cJSON_GetObjectItemCaseSensitive(row, "vector"), ix->dim, vecs + i * ix->dim,
                            "vector", (long)i))
            goto out;
        char *meta;
        if (!meta_text(r, cJSON_GetObjectItemCaseSensitive(row, "metadata"), &meta, pre)) goto out;
        jbuf *env = qd_scratch_jbuf(r->t);
        qd_envelope(env, &ids[i], meta, meta ? strlen(meta) : 0);
        free(meta);
        if (!check_meta_size(r, env->len, pre)) goto out;
        offs[i] = all.len;
        lens[i] = env->len;
        if (env->len) any_meta = true;
        jb_raw(&all, env->p, env->len);
        if (env->oom || all.oom) {
            qd_error(r, 503, "unavailable", "out of memory");
            goto out;
        }
    }
    qsort(sorted, n, sizeof *sorted, cmp_rowid);
    for (i = 1; i < n; i++)
        if (sorted[i].eid == sorted[i - 1].eid) {
            const qd_id *a = &ids[sorted[i - 1].row], *b = &ids[sorted[i].row];
            id_text(b, idt, sizeof idt);
            if (a->str && b->str && (a->slen != b->slen || memcmp(a->str, b->str, a->slen) != 0))
                qd_error(r, 409, "id_collision", "row %zu: id %s maps to the same engine id as row %zu", sorted[i].row,
                         idt, sorted[i - 1].row);
            else
                qd_error(r, 409, "already_exists", "row %zu: id %s appears twice in the batch (rows %zu and %zu)",
                         sorted[i].row, idt, sorted[i - 1].row, sorted[i].row);
            goto out;
        }
    for (i = 0; i < n; i++) {
        const char *m;
        size_t ml;
        bool other;
        if (!ids[i].str) continue;
        int own = owned(r, ix, &ids[i], NULL, &m, &ml, &other);
        id_text(&ids[i], idt, sizeof idt);
        if (own < 0) {
            snprintf(pre, sizeof pre, "row %zu: ", i);
            qd_error_qz(r, own, pre);
            goto out;
        }
        if (other) {
            qd_error(r, 409, "id_collision", "row %zu: id %s maps to an engine id that holds another string id", i,
                     idt);
            goto out;
        }
        if (own && !upsert) {
            qd_error(r, 409, "already_exists", "row %zu: id %s already exists", i, idt);
            goto out;
        }
    }
    for (i = 0; i < n; i++) metas[i] = lens[i] ? all.p + offs[i] : NULL;
    int rc = n ? qz_db_insert_batch(ix->db, n, eids, vecs, ix->dim, any_meta ? metas : NULL,
                                    any_meta ? lens : NULL, upsert ? QZ_BATCH_UPSERT : 0)
               : QZ_OK;
    if (rc < 0) {
        qd_error_qz(r, rc, "");
        goto out;
    }
    jb_reset(r->out);
    jb_lit(r->out, "{\"inserted\":");
    jb_u64(r->out, n);
    jb_lit(r->out, ",\"ids\":[");
    for (i = 0; i < n; i++) {
        if (i) jb_char(r->out, ',');
        qd_id_json(r->out, &ids[i]);
    }
    jb_lit(r->out, "]}");
    qd_reply(r, 201);
out:
    free(ids);
    free(eids);
    free(sorted);
    free(offs);
    free(lens);
    free(metas);
    free(all.p);
    cJSON_Delete(j);
}

typedef struct idset {
    uint64_t *v;
    size_t n;
} idset;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int in_set(uint64_t id, void *user)
{
    const idset *s = user;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->v[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->v[lo] == id;
}

static bool opt_bool(qd_req *r, const cJSON *j, const char *name, bool dflt, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    *out = dflt;
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsBool(v)) {
        qd_error(r, 400, "invalid_argument", "\"%s\" must be true or false", name);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* An optional integer field in lo..hi; 0 when absent. */
static bool opt_uint(qd_req *r, const cJSON *j, const char *name, double lo, double hi, uint32_t *out)
{
    return qd_field_uint(r, j, name, false, lo, hi, out);
}

static double score_of(uint32_t metric, float d, uint32_t dim)
{
    switch (metric) {
    case QZ_METRIC_L2: return 1.0 / (1.0 + sqrt(d > 0 ? (double)d : 0.0));
    case QZ_METRIC_HAMMING: return 1.0 - (double)d / (double)dim;
    default: return 1.0 - (double)d;
    }
}

static void search(qd_req *r, qd_index *ix, const char *body, size_t blen)
{
    float *q = qd_scratch_floats(r->t, (size_t)ix->dim * 2);
    if (!q) {
        qd_error(r, 503, "unavailable", "out of memory");
        return;
    }
    bool fast = qd_fastvec_take((char *)body, blen, "query", q, ix->dim);
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    uint64_t sids[64];
    float sdist[64];
    uint64_t *ids = sids;
    float *dist = sdist;
    idset filter = {0};
    uint32_t k, ef, os;
    bool with_meta, with_vec;
    float *vbuf = q + ix->dim;
    if (!fast && !qd_read_vector(r, cJSON_GetObjectItemCaseSensitive(j, "query"), ix->dim, q, "query", -1)) goto out;
    if (!opt_uint(r, j, "k", 1, QZ_MAX_K, &k) || !opt_uint(r, j, "ef", 1, QZ_MAX_EF, &ef) ||
        !opt_uint(r, j, "oversample", 1, QZ_MAX_OVERSAMPLE, &os))
        goto out;
    if (!cJSON_GetObjectItemCaseSensitive(j, "k")) k = 10;
    if (!opt_bool(r, j, "include_metadata", true, &with_meta) ||
        !opt_bool(r, j, "include_vectors", false, &with_vec))
        goto out;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "filter_ids");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsArray(f)) {
            qd_error(r, 400, "invalid_argument", "\"filter_ids\" must be an array of ids");
            goto out;
        }
        size_t n = (size_t)cJSON_GetArraySize(f), i = 0;
        filter.v = malloc((n ? n : 1) * sizeof *filter.v);
        if (!filter.v) {
            qd_error(r, 503, "unavailable", "out of memory");
            goto out;
        }
        char err[400];
        for (const cJSON *c = f->child; c; c = c->next, i++) {
            qd_id id;
            if (!qd_id_from_json(c, &id, err, sizeof err)) {
                qd_error(r, 400, "invalid_argument", "filter_ids[%zu]: %s", i, err);
                goto out;
            }
            filter.v[i] = id.eid;
        }
        filter.n = n;
        qsort(filter.v, n, sizeof *filter.v, cmp_u64);
    }
    if (k > 64) {
        ids = malloc(k * sizeof *ids);
        dist = malloc(k * sizeof *dist);
        if (!ids || !dist) {
            qd_error(r, 503, "unavailable", "out of memory");
            goto out;
        }
    }
    qz_search_params p = QZ_SEARCH_PARAMS_INIT;
    p.ef = ef;
    p.oversample = os; /* 0 (absent): the dtype's default; f32 ignores it */
    if (f && !cJSON_IsNull(f)) {
        p.filter = in_set;
        p.filter_user = &filter;
    }
    size_t found = 0;
    int rc = filter.v && filter.n == 0 ? QZ_OK : qz_db_search(ix->db, q, ix->dim, k, &p, ids, dist, &found);
    if (rc < 0) {
        qd_error_qz(r, rc, "");
        goto out;
    }
    uint32_t ef_used = ef ? ef : atomic_load(&ix->ef_search);
    if (ef_used < k) ef_used = k;
    jbuf *o = r->out;
    jb_reset(o);
    jb_lit(o, "{\"results\":[");
    size_t count = 0;
    for (size_t i = 0; i < found; i++) {
        bool hashed = (ids[i] >> 63) != 0;
        const char *blob = NULL, *sid = NULL, *meta = NULL;
        size_t bl = 0, sl = 0, ml = 0;
        if (with_meta || with_vec || hashed) {
            rc = fetch(r, ix, ids[i], with_vec ? vbuf : NULL, &blob, &bl);
            if (rc == QZ_ENOTFOUND) continue; /* deleted since the search */
            if (rc < 0) {
                qd_error_qz(r, rc, "");
                goto out;
            }
            qd_envelope_split(blob, bl, &sid, &sl, &meta, &ml);
        }
        if (count++) jb_char(o, ',');
        jb_lit(o, "{\"id\":");
        if (sid)
            jb_str(o, sid, sl);
        else
            jb_u64(o, ids[i]);
        jb_lit(o, ",\"distance\":");
        jb_float(o, dist[i]);
        jb_lit(o, ",\"score\":");
        jb_float(o, (float)score_of(ix->metric, dist[i], ix->dim));
        if (with_meta) {
            jb_lit(o, ",\"metadata\":");
            meta_json(o, meta, ml);
        }
        if (with_vec) {
            jb_lit(o, ",\"vector\":");
            vector_json(o, vbuf, ix->dim);
        }
        jb_char(o, '}');
    }
    jb_lit(o, "],\"count\":");
    jb_u64(o, count);
    jb_lit(o, ",\"k\":");
    jb_u64(o, k);
    jb_lit(o, ",\"ef\":");
    jb_u64(o, ef_used);
    jb_char(o, '}');
    qd_reply(r, 200);
out:
    if (ids != sids) free(ids);
    if (dist != sdist) free(dist);
    free(filter.v);
    cJSON_Delete(j);
}

/* Append {id, vector, metadata} of a found vector. */
static void record_json(jbuf *o, const qd_id *id, const float *vec, uint32_t dim, const char *meta, size_t ml)
{
    jb_lit(o, "{\"id\":");
    qd_id_json(o, id);
    jb_lit(o, ",\"vector\":");
    vector_json(o, vec, dim);
    jb_lit(o, ",\"metadata\":");
    meta_json(o, meta, ml);
    jb_char(o, '}');
}

static bool path_id(qd_req *r, char *arg, qd_id *id)
{
    size_t n = strlen(arg);
    char err[400];
    if (!qd_pct_decode(arg, &n)) {
        qd_error(r, 400, "invalid_argument", "the id in the path has a bad percent escape");
        return false;
    }
    if (!qd_id_from_text(arg, n, id, err, sizeof err)) {
        qd_error(r, 400, "invalid_argument", "%s", err);
        return false;
    }
    return true;
}

static void get_one(qd_req *r, qd_index *ix, char *arg)
{
    qd_id id;
    if (!path_id(r, arg, &id)) return;
    float *vec = qd_scratch_floats(r->t, ix->dim);
    if (!vec) {
        qd_error(r, 503, "unavailable", "out of memory");
        return;
    }
    const char *meta;
    size_t ml;
    bool other;
    char idt[100];
    int own = owned(r, ix, &id, vec, &meta, &ml, &other);
    id_text(&id, idt, sizeof idt);
    if (own < 0) {
        qd_error_qz(r, own, "");
        return;
    }
    if (!own) {
        qd_error(r, 404, "not_found", "no vector with id %s", idt);
        return;
    }
    jb_reset(r->out);
    record_json(r->out, &id, vec, ix->dim, meta, ml);
    qd_reply(r, 200);
}

/* Parse {ids: [...]} into an array; sends the error. */
static qd_id *parse_ids(qd_req *r, const cJSON *j, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "ids");
    char err[400];
    if (!cJSON_IsArray(a)) {
        qd_error(r, 400, "invalid_argument", a ? "\"ids\" must be an array of ids" : "missing field \"ids\"");
        return NULL;
    }
    *n = (size_t)cJSON_GetArraySize(a);
    if (*n > qd_cfg.max_batch) {
        qd_error(r, 413, "payload_too_large", "the request names %zu ids, the limit is %zu", *n, qd_cfg.max_batch);
        return NULL;
    }
    qd_id *ids = calloc(*n ? *n : 1, sizeof *ids);
    if (!ids) {
        qd_error(r, 503, "unavailable", "out of memory");
        return NULL;
    }
    size_t i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++)
        if (!qd_id_from_json(c, &ids[i], err, sizeof err)) {
            qd_error(r, 400, "invalid_argument", "ids[%zu]: %s", i, err);
            free(ids);
            return NULL;
        }
    return ids;
}

/* The ids flagged in @p miss as a JSON array, closing the response object. */
static void missing_json(jbuf *o, const qd_id *ids, const bool *miss, size_t n)
{
    for (size_t i = 0, m = 0; i < n; i++)
        if (miss[i]) {
            if (m++) jb_char(o, ',');
            qd_id_json(o, &ids[i]);
        }
    jb_lit(o, "]}");
}

static void get_many(qd_req *r, qd_index *ix, const char *body, size_t blen)
{
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    size_t n = 0;
    qd_id *ids = parse_ids(r, j, &n);
    bool *miss = ids ? calloc(n ? n : 1, sizeof *miss) : NULL;
    float *vec = qd_scratch_floats(r->t, ix->dim);
    if (!ids) goto out;
    if (!miss || !vec) {
        qd_error(r, 503, "unavailable", "out of memory");
        goto out;
    }
    jbuf *o = r->out;
    jb_reset(o);
    jb_lit(o, "{\"vectors\":[");
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        const char *meta;
        size_t ml;
        bool other;
        int own = owned(r, ix, &ids[i], vec, &meta, &ml, &other);
        if (own < 0) {
            qd_error_qz(r, own, "");
            goto out;
        }
        if (!own) {
            miss[i] = true;
            continue;
        }
        if (nf++) jb_char(o, ',');
        record_json(o, &ids[i], vec, ix->dim, meta, ml);
    }
    jb_lit(o, "],\"missing\":[");
    missing_json(o, ids, miss, n);
    qd_reply(r, 200);
out:
    free(miss);
    free(ids);
    cJSON_Delete(j);
}

/* Delete one REST id: 1 deleted, 0 absent, <0 error. */
static int delete_id(qd_req *r, qd_index *ix, const qd_id *id)
{
    if (id->str) {
        const char *meta;
        size_t ml;
        bool other;
        int own = owned(r, ix, id, NULL, &meta, &ml, &other);
        if (own <= 0) return own;
    }
    int rc = qz_db_delete(ix->db, id->eid);
    if (rc == QZ_ENOTFOUND) return 0;
    return rc < 0 ? rc : 1;
}

static void delete_one(qd_req *r, qd_index *ix, char *arg)
{
    qd_id id;
    char idt[100];
    if (!path_id(r, arg, &id)) return;
    int rc = delete_id(r, ix, &id);
    id_text(&id, idt, sizeof idt);
    if (rc < 0) {
        qd_error_qz(r, rc, "");
        return;
    }
    if (rc == 0) {
        qd_error(r, 404, "not_found", "no vector with id %s", idt);
        return;
    }
    jb_reset(r->out);
    jb_lit(r->out, "{\"id\":");
    qd_id_json(r->out, &id);
    jb_lit(r->out, ",\"deleted\":true}");
    qd_reply(r, 200);
}

static void delete_many(qd_req *r, qd_index *ix, const char *body, size_t blen)
{
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    size_t n = 0, deleted = 0;
    qd_id *ids = parse_ids(r, j, &n);
    bool *miss = ids ? calloc(n ? n : 1, sizeof *miss) : NULL;
    if (!ids) goto out;
    if (!miss) {
        qd_error(r, 503, "unavailable", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = delete_id(r, ix, &ids[i]);
        if (rc < 0) {
            qd_error_qz(r, rc, "");
            goto out;
        }
        if (rc == 0)
            miss[i] = true;
        else
            deleted++;
    }
    jbuf *o = r->out;
    jb_reset(o);
    jb_lit(o, "{\"deleted\":");
    jb_u64(o, deleted);
    jb_lit(o, ",\"missing\":[");
    missing_json(o, ids, miss, n);
    qd_reply(r, 200);
out:
    free(miss);
    free(ids);
    cJSON_Delete(j);
}

static void stats(qd_req *r, qd_index *ix)
{
    qz_stats st = {.struct_size = sizeof st};
    int rc = qz_db_stats(ix->db, &st);
    if (rc < 0) {
        qd_error_qz(r, rc, "");
        return;
    }
    jbuf *o = r->out;
    jb_reset(o);
    jb_lit(o, "{\"index\":");
    qd_index_describe(ix, o);
    jb_lit(o, ",\"dimension\":");
    jb_u64(o, st.dimensions);
    jb_lit(o, ",\"metric\":");
    jb_cstr(o, qz_metric_name(st.metric) ? qz_metric_name(st.metric) : "unknown");
    jb_lit(o, ",\"count\":");
    jb_u64(o, st.count);
    jb_lit(o, ",\"deleted\":");
    jb_u64(o, st.deleted);
    jb_lit(o, ",\"memory_bytes\":");
    jb_u64(o, st.memory_bytes);
    jb_lit(o, ",\"simd\":");
    jb_cstr(o, st.simd);
    jb_char(o, '}');
    qd_reply(r, 200);
}

void qd_route_vector(qd_req *r, qd_index *ix, const char *op, const char *arg, const char *method,
                     const char *body, size_t blen)
{
    if (strcmp(op, "insert") == 0) put_one(r, ix, body, blen, false);
    else if (strcmp(op, "upsert") == 0) put_one(r, ix, body, blen, true);
    else if (strcmp(op, "batch-insert") == 0) batch_insert(r, ix, body, blen);
    else if (strcmp(op, "search") == 0) search(r, ix, body, blen);
    else if (strcmp(op, "get") == 0) get_many(r, ix, body, blen);
    else if (strcmp(op, "get1") == 0) get_one(r, ix, (char *)arg);
    else if (strcmp(op, "delete") == 0) delete_many(r, ix, body, blen);
    else if (strcmp(op, "delete1") == 0) delete_one(r, ix, (char *)arg);
    else if (strcmp(op, "stats") == 0) stats(r, ix);
    else qd_error(r, 404, "not_found", "no vector route %s", op);
}
