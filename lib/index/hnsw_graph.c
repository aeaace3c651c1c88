/*
 * hnsw_graph.c - lifetime of an HNSW index: creation, slot allocation,
 * growth, the stored-vector encoding and the level generator.
 */
#include "index/hnsw.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#endif

#include "index/search_ctx.h"
#include "vector/codec.h"
#include "util/alloc.h"
#include "util/error.h"

/* Bytes of one stored vector and the element count its kernel is given. */
static void vector_shape(uint32_t dim, uint32_t metric, uint32_t *bytes, uint32_t *elems)
{
    if (metric == QZ__METRIC_HAMMING) {
        *bytes = (dim + 7) / 8;
        *elems = *bytes;
    } else {
        *bytes = dim * (uint32_t)sizeof(float);
        *elems = dim;
    }
}

/* Mean number of cache lines that `bytes` bytes starting at offset `at`
 * of a record touch, over the records of an array with this stride (which
 * starts 64-byte aligned): the offsets of consecutive records cycle through
 * at most 64 residues mod 64. */
static double mean_lines(size_t at, size_t bytes, size_t stride)
{
    size_t total = 0;
    for (size_t i = 0; i < 64; i++) {
        size_t o = (at + i * stride) & 63;
        total += (o + bytes + 63) / 64;
    }
    return (double)total / 64.0;
}

/* The layer-0 record (and, for codes other than f32, where the codes live:
 * the split layout at the end). A search reads, per visited neighbour, its
 * vector (and, for the few it expands, its link list), so the layout is chosen for
 * the fewest cache lines per vector read, at most 10% more memory than the
 * packed record, ties to the smaller stride:
 *  - packed: [links][vector], 4-byte aligned;
 *  - links first, the vector on a line boundary, whole-line records (a wide
 *    kernel then never splits a load: measured about 1.45x faster at 384+
 *    floats with AVX-512);
 *  - vector first, whole-line records: the vector starts every record on a
 *    line boundary for the price of rounding the record up once. GloVe int8
 *    (116-byte code, 132 bytes of links): 256 bytes instead of 248 packed,
 *    and every code in 2 lines instead of 3 for 50 of 64 records, but see
 *    the cache sets below: packed stays.
 * Links and vector offsets are 4-byte aligned in every case. */
static void layout_level0(qz__hnsw *h)
{
    size_t links = sizeof(uint32_t) * (1 + (size_t)h->M0), code = h->code_bytes;
    size_t packed = (links + code + 3) & ~(size_t)3;
    size_t off64 = (links + 63) & ~(size_t)63;
    size_t code4 = (code + 3) & ~(size_t)3;
    struct {
        size_t vec_offset, links_offset, stride;
    } cand[3] = {
        {links, 0, packed},
        {off64, 0, (off64 + code + 63) & ~(size_t)63},
        {0, code4, (code4 + links + 63) & ~(size_t)63},
    };
    size_t best = 0;
    double best_lines = mean_lines(cand[0].vec_offset, code, cand[0].stride);
    for (size_t i = 1; i < 3; i++) {
        if (cand[i].stride * 10 > packed * 11) continue;
        /* A whole-line stride of L lines puts the vectors' first lines in
         * every gcd(L, 64)-th cache set only; unless a vector's own lines
         * fill the sets in between, part of every cache goes unused by
         * vectors. GloVe int8, vector first at 256 bytes (L = 4, 2 lines):
         * half the sets, and 15% fewer queries per second than packed. */
        size_t g = cand[i].stride / 64, b = 64;
        while (b) {
            size_t t = g % b;
            g = b;
            b = t;
        }
        if ((code + 63) / 64 < g) continue;
        double l = mean_lines(cand[i].vec_offset, code, cand[i].stride);
        if (l < best_lines - 1e-9 || (l < best_lines + 1e-9 && cand[i].stride < cand[best].stride)) {
            best = i;
            best_lines = l;
        }
    }
    h->vec_offset = cand[best].vec_offset;
    h->links_offset = cand[best].links_offset;
    h->stride0 = cand[best].stride;
    if (h->quantized) {
        /* Split: the codes in a dense array of their own (4-byte aligned
         * stride), layer 0 holding only links. The walk reads a code per
         * computed distance and a link list per hop (GloVe ef 120: 2,309
         * against 131), so the codes are the hot data: dense, GloVe int8's
         * are 22 MB, inside this machine's 32 MB L3, where interleaved with
         * the links they spread over 47 MB. Measured (GloVe ef 120, one
         * thread, 8 alternating runs): int8 +15% median QPS, f16 +5%; MNIST
         * (9k vectors, all in L3 either way) unchanged. f32 keeps its
         * record: its code is the vector construction reads too, and a
         * dense 400- or 448-byte array measured no better than the
         * 576-byte records. */
        h->vec_stride = code4;
        h->vec_offset = 0;
        h->links_offset = 0;
        h->stride0 = links;
    }
}

int qz__hnsw_create(const qz__hnsw_config *cfg, const qz__kernels *k, qz__hnsw **out)
{
    *out = NULL;
    qz__hnsw *h = qz__calloc(1, sizeof *h);
    if (!h) return qz__err(QZ_ENOMEM, "out of memory creating the index");
    h->dim = cfg->dim;
    h->metric = cfg->metric;
    h->M = cfg->M;
    h->M0 = 2 * cfg->M;
    h->ef_construction = cfg->ef_construction;
    h->seed = cfg->seed;
    h->level_mult = 1.0 / log((double)cfg->M);
    uint32_t elems;
    vector_shape(cfg->dim, cfg->metric, &h->vec_bytes, &elems);
    int l2 = cfg->metric == QZ__METRIC_L2;
    qz__space xs = {0};
    xs.elems = elems;
    xs.bytes = h->vec_bytes;
    switch (cfg->metric) {
    case QZ__METRIC_L2:
        xs.kind = QZ__DIST_L2;
        xs.kernel = k->l2sq_f32;
        xs.wide = 1;
        break;
    case QZ__METRIC_HAMMING:
        xs.kind = QZ__DIST_HAMMING;
        xs.kernel = k->hamming_b8;
        break;
    default: /* cosine (normalised when stored) and inner product */
        xs.kind = QZ__DIST_ONE_MINUS_DOT;
        xs.kernel = k->dot_f32;
        xs.wide = 1;
        break;
    }
    h->dtype = cfg->dtype == 0 || cfg->metric == QZ__METRIC_HAMMING ? QZ__DTYPE_F32 : cfg->dtype;
    qz__space cs = xs;
    switch (h->dtype) {
    case QZ__DTYPE_F16:
        cs.kernel = l2 ? k->l2sq_f16 : k->dot_f16;
        cs.bytes = cfg->dim * 2;
        cs.wide = 0; /* f16 values and their squares cannot overflow an f32 sum */
        break;
    case QZ__DTYPE_INT8:
        cs.kernel = l2 ? k->l2sq_sq8 : k->dot_sq8;
        cs.bytes = QZ__SQ8_HEADER + cfg->dim;
        cs.wide = 0; /* the sq8 kernels saturate */
        break;
    case QZ__DTYPE_BINARY:
        cs.kind = QZ__DIST_HAMMING;
        cs.kernel = k->hamming_b8;
        cs.bytes = (cfg->dim + 7) / 8;
        cs.elems = cs.bytes;
        cs.wide = 0;
        break;
    default: break;
    }
    h->quantized = h->dtype != QZ__DTYPE_F32;
    if (h->quantized) xs.in_orig = 1; /* with orig_external never read through xs (hnsw_orig.c) */
    h->cs = cs;
    h->xs = xs;
    /* Queries on f16 codes keep their f32 form: the asymmetric kernel
     * converts only the code's side, and the query is not rounded. Its sum
     * can overflow where the f16 one cannot (f32 query components beyond
     * 2^64), so it is not `wide`: qz__sdist() saturates what comes back. */
    h->qs = cs;
    if (h->dtype == QZ__DTYPE_F16 && k->l2sq_f32f16 && k->dot_f32f16) {
        h->qs.kernel = l2 ? k->l2sq_f32f16 : k->dot_f32f16;
        h->q_raw = 1;
    }
    /* int8 queries are prepared once where the table has kernels for it
     * (vector/codec.h, qz__sq8_prepare) */
    if (h->dtype == QZ__DTYPE_INT8 && k->l2sq_sq8q && k->dot_sq8q) {
        h->qs.kernel = l2 ? k->l2sq_sq8q : k->dot_sq8q;
        h->q_prep = 1;
    }
    /* Construction measures exact distances when the originals are at hand,
     * so the graph is as good as an f32 one whatever the codes are. Without
     * them (orig_external, f16 and int8 only: lib/engine refuses binary) it
     * measures on the codes: on GloVe int8 recall@10 stayed within 0.0003
     * of the exact-built graph at ef 40 and 120 (bench/results/quant.md). */
    h->orig_external = h->quantized && cfg->orig_external && h->dtype != QZ__DTYPE_BINARY;
    h->bs = h->orig_external ? &h->cs : &h->xs;
    h->code_bytes = cs.bytes;
    atomic_init(&h->oversample, qz__dtype_default_oversample(h->dtype));
    h->kernel_name = k->name;
    h->sq8_encode = qz__kernels_sq8_encode(k);
    layout_level0(h);
    atomic_init(&h->entry, UINT64_MAX);
    atomic_init(&h->n_live, 0);
    atomic_init(&h->n_deleted, 0);
    atomic_init(&h->n_inserting, 0);
    atomic_init(&h->del_clock, 0);
    atomic_init(&h->upper_bytes, 0);
    atomic_init(&h->payload_bytes, 0);
    atomic_init(&h->level_counter, 0);
    atomic_init(&h->ef_search, 64);

    qz__rwlock_init_writer_pref(&h->resize);
    pthread_mutex_init(&h->alloc_lock, NULL);
    pthread_mutex_init(&h->entry_lock, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    pthread_mutex_init(&h->pin_mu, NULL);
    atomic_init(&h->pin_above, 0);
    atomic_init(&h->pin_bytes, 0);

    size_t cap = cfg->capacity ? (size_t)cfg->capacity : 1024;
    int rc = qz__hnsw_reserve(h, cap);
    if (rc < 0) {
        qz__hnsw_destroy(h);
        return rc;
    }
    *out = h;
    return QZ_OK;
}

void qz__hnsw_destroy(qz__hnsw *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->high_water; i++) {
        if (h->upper) qz__free(h->upper[i]);
        if (h->payload) qz__free(h->payload[i]);
        if (h->pin) qz__free(atomic_load(&h->pin[i]));
    }
    qz__free((void *)h->pin);
    qz__free(h->pinq);
    pthread_mutex_destroy(&h->pin_mu);
    for (size_t i = 0; i < h->n_pool; i++) qz__ctx_free(h->pool[i]);
    qz__free(h->pool);
    free(h->level0); /* posix_memalign */
    free(h->vecs);
    free(h->orig);   /* posix_memalign too */
    qz__free(h->upper);
    qz__free(h->levels);
    qz__free((void *)h->state);
    qz__free((void *)h->locks);
    qz__free(h->labels);
    qz__free(h->payload);
    qz__free(h->seqs);
    qz__free((void *)h->del_stamp);
    qz__free(h->free_slots);
    pthread_rwlock_destroy(&h->resize);
    pthread_mutex_destroy(&h->alloc_lock);
    pthread_mutex_destroy(&h->entry_lock);
    pthread_mutex_destroy(&h->pool_lock);
    qz__free(h);
}

/* Grow one array to `ncap` elements of `size`, zeroing the new part. */
static int grow_array(void **p, size_t old, size_t ncap, size_t size, int zero)
{
    void *q = qz__realloc(*p, ncap * size);
    if (!q) return -1;
    if (zero) memset((char *)q + old * size, 0, (ncap - old) * size);
    *p = q;
    return 0;
}

/* Layer 0 (and the originals of a quantized index) live in 64-byte
 * aligned memory (see the layout note in qz__hnsw_create), so they grow by
 * copying rather than realloc. Runs under
 * `resize` exclusive; growth doubles, so copying is amortised.
 *
 * Large arrays are 2 MB aligned and asked for transparent huge pages: a
 * search visits records scattered over the whole array, and with 4 KB pages
 * nearly every one is a TLB miss (the second-level TLB covers a few MB; a
 * 190k x 100 index is 100 MB). Debian's default THP mode is "madvise", so
 * without the advice there are no huge pages at all. The advice is a hint:
 * where the kernel has none to give, nothing changes. Measured on GloVe
 * (190k x 100, ef 120, one thread, six alternating runs): 1.05-1.42x the
 * QPS, median 1.17x (bench/results/hugepages.md). The environment variable
 * QZ_NO_HUGEPAGES (any value) turns the advice off: for that comparison,
 * and for hosts where huge pages are unwelcome. */
#define QZ__HUGE_PAGE ((size_t)2 << 20)
static void *alloc_records(size_t bytes)
{
    void *p = NULL;
#if defined(__linux__) && !defined(__EMSCRIPTEN__) && defined(MADV_HUGEPAGE)
    if (bytes >= 4 * QZ__HUGE_PAGE && !getenv("QZ_NO_HUGEPAGES")) {
        if (posix_memalign(&p, QZ__HUGE_PAGE, bytes) != 0) return NULL;
        (void)madvise(p, bytes & ~(QZ__HUGE_PAGE - 1), MADV_HUGEPAGE);
        return p;
    }
#endif
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    return p;
}

/* Grow a record array (layer 0, the originals) from `old` to `ncap` slots
 * of `size` bytes, by copying; the new part is zeroed when asked. */
static int grow_records(uint8_t **arr, size_t old, size_t ncap, size_t size, int zero)
{
    uint8_t *p = alloc_records(ncap * size);
    if (!p) return -1;
    if (old) memcpy(p, *arr, old * size);
    if (zero) memset(p + old * size, 0, (ncap - old) * size);
    free(*arr);
    *arr = p;
    return 0;
}

int qz__hnsw_reserve(qz__hnsw *h, size_t slots)
{
    if (slots > QZ__MAX_SLOTS) return qz__err(QZ_EFULL, "index is limited to %u vectors", QZ__MAX_SLOTS);
    pthread_rwlock_wrlock(&h->resize);
    int rc = QZ_OK;
    size_t old = h->capacity;
    if (slots > old) {
        size_t ncap = old * 2 > slots ? old * 2 : slots;
        if (ncap > QZ__MAX_SLOTS) ncap = QZ__MAX_SLOTS;
        /* Each array is updated in place as soon as it succeeds, so a
         * failure part-way leaves arrays at least `old` long and
         * `capacity` still old: consistent. */
        if (grow_records(&h->level0, old, ncap, h->stride0, 0) ||
            (h->vec_stride && grow_records(&h->vecs, old, ncap, h->vec_stride, 0)) ||
            (h->quantized && !h->orig_external && grow_records(&h->orig, old, ncap, h->vec_bytes, 1)) ||
            (h->orig_external && grow_array((void **)&h->pin, old, ncap, sizeof *h->pin, 1)) ||
            grow_array((void **)&h->upper, old, ncap, sizeof *h->upper, 1) ||
            grow_array((void **)&h->levels, old, ncap, 1, 1) ||
            grow_array((void **)&h->state, old, ncap, sizeof *h->state, 1) ||
            grow_array((void **)&h->locks, old, ncap, sizeof *h->locks, 1) ||
            grow_array((void **)&h->labels, old, ncap, sizeof *h->labels, 1) ||
            grow_array((void **)&h->payload, old, ncap, sizeof *h->payload, 1) ||
            grow_array((void **)&h->seqs, old, ncap, sizeof *h->seqs, 1) ||
            grow_array((void **)&h->del_stamp, old, ncap, sizeof *h->del_stamp, 1)) {
            rc = qz__err(QZ_ENOMEM, "out of memory growing the index from %zu to %zu vectors", old, ncap);
        } else {
            pthread_mutex_lock(&h->alloc_lock); /* alloc_slot reads capacity under it */
            h->capacity = ncap;
            pthread_mutex_unlock(&h->alloc_lock);
        }
    }
    pthread_rwlock_unlock(&h->resize);
    return rc;
}

int qz__hnsw_alloc_slot(qz__hnsw *h, uint32_t *slot)
{
    for (;;) {
        pthread_mutex_lock(&h->alloc_lock);
        if (h->n_free) {
            *slot = h->free_slots[--h->n_free];
            pthread_mutex_unlock(&h->alloc_lock);
            return QZ_OK;
        }
        if (h->high_water < h->capacity) {
            *slot = h->high_water++;
            pthread_mutex_unlock(&h->alloc_lock);
            return QZ_OK;
        }
        size_t want = h->capacity + 1;
        pthread_mutex_unlock(&h->alloc_lock);
        int rc = qz__hnsw_reserve(h, want);
        if (rc < 0) return rc;
    }
}

uint32_t qz__hnsw_high_water(qz__hnsw *h)
{
    pthread_mutex_lock(&h->alloc_lock);
    uint32_t hw = h->high_water;
    pthread_mutex_unlock(&h->alloc_lock);
    return hw;
}

void qz__hnsw_release_slot(qz__hnsw *h, uint32_t slot)
{
    pthread_mutex_lock(&h->alloc_lock);
    if (h->n_free == h->cap_free) {
        size_t nc = h->cap_free ? h->cap_free * 2 : 64;
        uint32_t *p = qz__realloc(h->free_slots, nc * sizeof *p);
        if (!p) { /* the slot is leaked until the next repair; harmless */
            pthread_mutex_unlock(&h->alloc_lock);
            return;
        }
        h->free_slots = p;
        h->cap_free = nc;
    }
    h->free_slots[h->n_free++] = slot;
    pthread_mutex_unlock(&h->alloc_lock);
}

size_t qz__hnsw_memory(const qz__hnsw *h)
{
    size_t per_slot = h->stride0 + h->vec_stride + (h->quantized && !h->orig_external ? h->vec_bytes : 0) +
                      (h->orig_external ? sizeof *h->pin : 0) + sizeof *h->upper + 1 + sizeof *h->state +
                      sizeof *h->locks + sizeof *h->labels + sizeof *h->payload + sizeof *h->seqs +
                      sizeof *h->del_stamp;
    size_t m = sizeof *h + h->capacity * per_slot + h->cap_free * sizeof(uint32_t);
    m += atomic_load(&h->upper_bytes) + atomic_load(&h->payload_bytes) + atomic_load(&h->pin_bytes);
    m += h->cap_pinq * sizeof *h->pinq;
    m += qz__ctx_pool_memory((qz__hnsw *)h);
    return m;
}

int qz__hnsw_max_level(const qz__hnsw *h)
{
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    return e == UINT64_MAX ? 0 : (int)(e >> 32);
}

void qz__hnsw_encode(const qz__hnsw *h, const float *in, void *out)
{
    if (h->metric == QZ__METRIC_HAMMING) {
        uint8_t *b = out;
        memset(b, 0, h->vec_bytes);
        for (uint32_t i = 0; i < h->dim; i++)
            if (in[i] > 0.0f) b[i >> 3] |= (uint8_t)(1u << (i & 7));
    } else if (h->metric == QZ__METRIC_COSINE) {
        /* Scale by the largest magnitude first, then sum in double: a
         * denormal vector's squares would underflow (1/norm then overflows
         * float and the stored vector is inf/NaN), and near FLT_MAX a float
         * 1/norm is denormal and loses precision. Scaled, every component
         * is in [-1, 1] and the largest is +-1, so the sum is in [1, dim]
         * and every finite non-zero vector is stored finite, unit length. */
        float *f = out;
        double big = 0;
        for (uint32_t i = 0; i < h->dim; i++) {
            double a = fabs((double)in[i]);
            if (a > big) big = a;
        }
        if (!(big > 0) || !isfinite(big)) { /* zero or non-finite: lib/api refuses these */
            memset(f, 0, h->vec_bytes);
            return;
        }
        double s = 0;
        for (uint32_t i = 0; i < h->dim; i++) {
            double x = (double)in[i] / big;
            s += x * x;
        }
        double scale = 1.0 / sqrt(s);
        for (uint32_t i = 0; i < h->dim; i++) f[i] = (float)((double)in[i] / big * scale);
    } else {
        memcpy(out, in, h->vec_bytes);
    }
}

void qz__hnsw_decode(const qz__hnsw *h, const void *in, float *out)
{
    if (h->metric == QZ__METRIC_HAMMING) {
        const uint8_t *b = in;
        for (uint32_t i = 0; i < h->dim; i++) out[i] = (b[i >> 3] >> (i & 7)) & 1 ? 1.0f : 0.0f;
    } else {
        memcpy(out, in, h->vec_bytes);
    }
}

unsigned qz__dtype_default_oversample(unsigned dtype)
{
    switch (dtype) {
    case QZ__DTYPE_F16: return 2;
    case QZ__DTYPE_INT8: return 3;
    case QZ__DTYPE_BINARY: return 16;
    default: return 1;
    }
}

void qz__hnsw_quantize(const qz__hnsw *h, const void *rec, void *code)
{
    const float *f = rec;
    switch (h->dtype) {
    case QZ__DTYPE_F16: {
        uint16_t *o = code;
        for (uint32_t i = 0; i < h->dim; i++) o[i] = qz__f32_to_f16(f[i]);
        break;
    }
    case QZ__DTYPE_INT8: h->sq8_encode(f, h->dim, code); break;
    case QZ__DTYPE_BINARY: {
        /* threshold 0 for angles (cosine, inner product), the vector's own
         * mean under L2 (so data far from the origin keeps its bits) */
        double t = 0;
        if (h->metric == QZ__METRIC_L2) {
            for (uint32_t i = 0; i < h->dim; i++) t += f[i];
            t /= h->dim;
        }
        uint8_t *b = code;
        memset(b, 0, h->code_bytes);
        for (uint32_t i = 0; i < h->dim; i++)
            if ((double)f[i] > t) b[i >> 3] |= (uint8_t)(1u << (i & 7));
        break;
    }
    default: memcpy(code, rec, h->vec_bytes); break;
    }
}

float qz__dist_wide(const qz__space *sp, const void *a, const void *b)
{
    double d = 0;
    if (!sp->wide) { /* counts, f16 and sq8 kernels: saturate what came back */
        float r = sp->kernel(a, b, sp->elems);
        if (sp->kind == QZ__DIST_ONE_MINUS_DOT) r = 1.0f - r;
        if (!(r <= FLT_MAX)) return FLT_MAX;
        return r < -FLT_MAX ? -FLT_MAX : r;
    }
    const float *x = a, *y = b;
    if (sp->kind == QZ__DIST_L2) {
        for (uint32_t i = 0; i < sp->elems; i++) {
            double t = (double)x[i] - y[i];
            d += t * t;
        }
    } else {
        for (uint32_t i = 0; i < sp->elems; i++) d += (double)x[i] * y[i];
        d = 1.0 - d;
    }
    /* Finite floats keep every term below 2^258 and 65536 dimensions add
     * 2^16, far inside double's range: d is finite unless a vector is not
     * (never: lib/api checks input, encode stores finite values). Even then
     * the NaN maps to FLT_MAX, the farthest, instead of poisoning compares. */
    if (!(d <= FLT_MAX)) return FLT_MAX;
    if (d < -FLT_MAX) return -FLT_MAX;
    return (float)d;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int qz__hnsw_random_level(qz__hnsw *h)
{
    uint64_t n = atomic_fetch_add_explicit(&h->level_counter, 1, memory_order_relaxed);
    uint64_t r = splitmix64(h->seed ^ splitmix64(n));
    /* 53 random bits to a double in (0, 1] */
    double u = ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double l = -log(u) * h->level_mult;
    return l >= QZ__HNSW_MAX_LEVEL ? QZ__HNSW_MAX_LEVEL : (int)l;
}
