/*
 * codec.h - the stored element types (dtypes) and their code layouts
 * (internal). One place for what a code is; the kernels (lib/distance) and
 * the index (lib/index/hnsw_graph.c, which encodes) both include it.
 *
 * Every database keeps the f32 "record form" of a vector (normalised under
 * cosine, packed bits under Hamming): the journal stores it, qz_db_get
 * returns it and re-ranking compares against it. The dtype decides the
 * "code" the graph is traversed on:
 *
 *   F32     the record form itself (no second copy, no re-ranking)
 *   F16     IEEE binary16 per component, round to nearest even; finite
 *           components beyond +-65504 saturate to +-65504 (re-ranking on
 *           the originals keeps the results exact among the candidates)
 *   INT8    8-bit scalar quantisation with a PER-VECTOR scale and offset:
 *             x_i ~ o + s * q_i,  q_i in 0..255,  o = min x, s = (max - min) / 255
 *           laid out as a 16-byte header then dim bytes:
 *             0 f32 s   4 f32 o   8 f32 Q = sum q_i (exact: < 2^24)
 *            12 f32 N = ||decoded x||^2   16 u8 q[dim]
 *           Dot product of the decoded vectors, with one integer dot:
 *             x.y = n*ox*oy + ox*sy*Qy + oy*sx*Qx + sx*sy*sum(qx_i*qy_i)
 *           and L2 = Nx + Ny - 2 x.y. So cosine (unit vectors), inner product
 *           and L2 are all the exact distance of the decoded vectors, and
 *           the inner loop is a pure u8 x u8 dot (VPDPBUSD on AVX-512 VNNI).
 *           Why per vector and not per dimension: a per-dimension scale
 *           puts a weight s_i^2 inside the loop (or forces an f32 query),
 *           and it needs training data before the first insert and goes
 *           stale as data drifts; a per-vector range needs nothing, fits
 *           each vector's own spread (unit vectors of any direction, MNIST
 *           pixels 0..255, data offset far from 0 - the offset keeps all
 *           256 levels in use where a symmetric signed scale wastes half of
 *           them on non-negative data) and works for streaming inserts.
 *           Error per component is at most s/2.
 *   BINARY  one bit per dimension (bit i of byte i/8 is component i > t;
 *           t = 0 under cosine and inner product, the vector's own mean
 *           under L2), compared by Hamming distance, for traversal only:
 *           the graph is built on the originals and results are re-ranked.
 *
 * Values equal the public QZ_DTYPE_* (lib/api checks at compile time) and
 * are what the options record stores.
 *
 * Freestanding (tests/cross builds the kernels without a C library):
 * __builtin_memcpy of constant sizes only, no libc calls.
 */
#ifndef QZ_VECTOR_CODEC_H
#define QZ_VECTOR_CODEC_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

enum qz__dtype { QZ__DTYPE_F32 = 1, QZ__DTYPE_F16 = 2, QZ__DTYPE_INT8 = 3, QZ__DTYPE_BINARY = 4 };

/* "f32", "f16", "int8", "binary"; 0 is "default"; NULL for unknown values. */
static inline const char *qz__dtype_name(unsigned t)
{
    switch (t) {
    case 0: return "default";
    case QZ__DTYPE_F32: return "f32";
    case QZ__DTYPE_F16: return "f16";
    case QZ__DTYPE_INT8: return "int8";
    case QZ__DTYPE_BINARY: return "binary";
    default: return 0;
    }
}

/* ---- binary16 ---------------------------------------------------------- */

/* f32 -> f16, round to nearest even; finite values beyond the f16 range
 * saturate to +-65504 (never infinity); NaN stays NaN (callers never pass
 * one: lib/api refuses non-finite vectors). */
static inline uint16_t qz__f32_to_f16(float f)
{
    uint32_t x;
    __builtin_memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7bffu); /* rounds to >= 65520 or inf: saturate */
    if (ax < 0x38800000u) {                                   /* below the smallest normal f16, 2^-14 */
        if (ax < 0x33000000u) return sign;                    /* below half the smallest subnormal */
        /* subnormal: value = m * 2^-24, m = round(ax_value * 2^24) */
        uint32_t e = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* value = mant * 2^(e - 150); m = mant * 2^(e - 126) */
        uint32_t m = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    }
    /* normal: rebias exponent, round 13 mantissa bits away */
    uint32_t r = ax - 0x38000000u; /* exponent 127 -> 15 */
    uint32_t m = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (m & 1u))) m++;
    return (uint16_t)(sign | m);
}

static inline float qz__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { /* subnormal: m * 2^-24 */
            float f = (float)m * 0x1p-24f;
            __builtin_memcpy(&x, &f, 4);
            x |= sign;
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    __builtin_memcpy(&f, &x, 4);
    return f;
}

/* ---- 8-bit codes ------------------------------------------------------- */

#define QZ__SQ8_HEADER 16u

typedef struct qz__sq8_head {
    float s, o, q, n2;
} qz__sq8_head;

static inline qz__sq8_head qz__sq8_head_get(const void *code)
{
    qz__sq8_head h;
    __builtin_memcpy(&h, code, sizeof h);
    return h;
}

/* Dot product of two decoded codes of n components, given the integer dot
 * ip = sum qa_i * qb_i. Computed in double, saturated to +-FLT_MAX. */
static inline double qz__sq8_dot_d(const void *a, const void *b, size_t n, uint64_t ip)
{
    qz__sq8_head x = qz__sq8_head_get(a), y = qz__sq8_head_get(b);
    return (double)n * x.o * y.o + (double)x.o * y.s * y.q + (double)y.o * x.s * x.q +
           (double)x.s * y.s * (double)ip;
}

static inline float qz__sq8_sat(double d)
{
    if (!(d <= FLT_MAX)) return FLT_MAX;
    if (d < -FLT_MAX) return -FLT_MAX;
    return (float)d;
}

static inline float qz__sq8_dot(const void *a, const void *b, size_t n, uint64_t ip)
{
    return qz__sq8_sat(qz__sq8_dot_d(a, b, n, ip));
}

static inline float qz__sq8_l2(const void *a, const void *b, size_t n, uint64_t ip)
{
    qz__sq8_head x = qz__sq8_head_get(a), y = qz__sq8_head_get(b);
    double d = (double)x.n2 + (double)y.n2 - 2.0 * qz__sq8_dot_d(a, b, n, ip);
    return qz__sq8_sat(d < 0 ? 0 : d);
}

/* Defines the two sq8 distance kernels of one ISA file from its integer dot
 * `ipfn` (uint64_t ipfn(const uint8_t *, const uint8_t *, size_t)). */
#define QZ__SQ8_KERNELS(suffix, ipfn)                                                                   \
    static float qz__dist_l2sq_sq8_##suffix(const void *a, const void *b, size_t n)                     \
    {                                                                                                   \
        if (n == 0) return 0.0f;                                                                        \
        return qz__sq8_l2(a, b, n,                                                                      \
                          ipfn((const uint8_t *)a + QZ__SQ8_HEADER, (const uint8_t *)b + QZ__SQ8_HEADER, n)); \
    }                                                                                                   \
    static float qz__dist_dot_sq8_##suffix(const void *a, const void *b, size_t n)                      \
    {                                                                                                   \
        if (n == 0) return 0.0f;                                                                        \
        return qz__sq8_dot(a, b, n,                                                                     \
                           ipfn((const uint8_t *)a + QZ__SQ8_HEADER, (const uint8_t *)b + QZ__SQ8_HEADER, n)); \
    }

/* The query form of a code for the *_sq8q kernels: each byte q becomes
 * q - 128 as int8 (q ^ 0x80), the header unchanged. VPDPBUSD multiplies
 * u8 by s8, so the stored code is the u8 side and a prepared query the s8
 * side: sum b*(q-128) = ip - 128*sum b, where sum b is the code's Q (an
 * exact integer in f32: n*255 < 2^24 for n <= 65536). A query is prepared
 * once; per distance the flip of the code and the sum of the query's bytes
 * that the symmetric kernel does are gone. */
static inline void qz__sq8_prepare(void *code, size_t n)
{
    uint8_t *q = (uint8_t *)code + QZ__SQ8_HEADER;
    for (size_t i = 0; i < n; i++) q[i] ^= 0x80u;
}

/* Defines the two prepared-query kernels of one ISA file from `ipqfn`
 * (int64_t ipqfn(const uint8_t *qs8, const uint8_t *b, size_t n) = sum
 * b_i * (int8)qs8_i), with a function attribute (a target). */
#define QZ__SQ8Q_KERNELS(suffix, ipqfn, attr)                                                           \
    attr static uint64_t qz__sq8q_ip_##suffix(const void *a, const void *b, size_t n)                   \
    {                                                                                                   \
        int64_t t = ipqfn((const uint8_t *)a + QZ__SQ8_HEADER, (const uint8_t *)b + QZ__SQ8_HEADER, n); \
        return (uint64_t)(t + 128 * (int64_t)qz__sq8_head_get(b).q);                                    \
    }                                                                                                   \
    attr static float qz__dist_l2sq_sq8q_##suffix(const void *a, const void *b, size_t n)               \
    {                                                                                                   \
        if (n == 0) return 0.0f;                                                                        \
        return qz__sq8_l2(a, b, n, qz__sq8q_ip_##suffix(a, b, n));                                      \
    }                                                                                                   \
    attr static float qz__dist_dot_sq8q_##suffix(const void *a, const void *b, size_t n)                \
    {                                                                                                   \
        if (n == 0) return 0.0f;                                                                        \
        return qz__sq8_dot(a, b, n, qz__sq8q_ip_##suffix(a, b, n));                                     \
    }

/* Encode n floats (finite) into an 8-bit code of QZ__SQ8_HEADER + n bytes. */
static inline void qz__sq8_encode(const float *x, size_t n, void *out)
{
    /* min and max on the floats' bits mapped to integers of the same
     * order (finite inputs; -0 sorts below +0, the same value): integer
     * min/max vectorizes, a float one does not without -ffast-math */
    int32_t ilo = INT32_MAX, ihi = INT32_MIN;
    for (size_t i = 0; i < n; i++) {
        int32_t b;
        __builtin_memcpy(&b, &x[i], 4);
        b ^= (int32_t)((uint32_t)(b >> 31) >> 1); /* negative: flip the magnitude bits */
        ilo = b < ilo ? b : ilo;
        ihi = b > ihi ? b : ihi;
    }
    ilo ^= (int32_t)((uint32_t)(ilo >> 31) >> 1);
    ihi ^= (int32_t)((uint32_t)(ihi >> 31) >> 1);
    float lo, hi;
    __builtin_memcpy(&lo, &ilo, 4);
    __builtin_memcpy(&hi, &ihi, 4);
    double range = (double)hi - (double)lo;
    double s = range > 0 ? range / 255.0 : 0.0;
    /* a multiply per component, not a divide: queries are encoded too, and
     * on 784-d MNIST the divides were 7% of a search */
    double inv = range > 0 ? 255.0 / range : 0.0;
    uint8_t *q = (uint8_t *)out + QZ__SQ8_HEADER;
    /* lo <= x[i] <= hi, and rounding is monotone: 0 <= t <= 255 (1 + 2^-52),
     * so t + 0.5 converts to 0..255 (the clamp is a guard). No branches and
     * no floating-point sums (integer ones are exact, as the double ones
     * were): the compiler vectorizes the loop, and the bytes are the same. */
    uint64_t sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        double t = ((double)x[i] - lo) * inv;
        int32_t iv = (int32_t)(t + 0.5);
        uint32_t v = iv > 255 ? 255u : (uint32_t)iv;
        q[i] = (uint8_t)v;
        sum += v;
        sum2 += (uint64_t)(v * v);
    }
    qz__sq8_head h;
    h.s = (float)s;
    h.o = lo;
    h.q = (float)sum;
    /* ||decoded||^2 with the float s and o actually stored */
    double fs = h.s, fo = h.o;
    double n2 = (double)n * fo * fo + 2.0 * fo * fs * (double)sum + fs * fs * (double)sum2;
    h.n2 = n2 <= FLT_MAX ? (float)n2 : FLT_MAX;
    __builtin_memcpy(out, &h, sizeof h);
}

#endif
