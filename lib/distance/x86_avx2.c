/*
 * x86_avx2.c - distance kernels for AVX2 + FMA3 (Haswell, Zen 1 and later).
 *
 * CPU features: AVX2, FMA3 and POPCNT, with YMM state enabled by the OS.
 * Built with -mavx2 -mfma -mpopcnt; dispatch.c checks all three (and XGETBV)
 * before it hands this table out. Nothing here may run before that check.
 *
 * Tails: the float kernels run 32 floats per step in four independent
 * accumulators (FMA latency 4-5 cycles, so one chain would leave the FMA
 * ports idle), then up to three 8-float steps, then one VMASKMOVPS load of
 * the last 1..7 floats. Masked-off lanes of VMASKMOVPS are never read, so
 * they cannot fault and no byte past the end of either buffer is touched.
 * The Hamming kernel counts 32-byte blocks with the nibble-lookup popcount
 * (VPSHUFB, Mula et al.) and the last 0..31 bytes with POPCNT on 8-, 4-, 2-
 * and 1-byte pieces; again nothing past the end is read.
 *
 * f16 kernels (F16C, also checked by dispatch.c): 16 halves per step in two
 * accumulators, VCVTPH2PS to f32, then FMA as above; the last 0..15 halves
 * are copied into a zeroed stack block first (nothing past the end is read).
 * The asymmetric f32f16 kernels take the same steps: VMOVUPS on the f32
 * query, VCVTPH2PS on the f16 code; in the tail the code's last 1..7 halves
 * go through the zeroed block and the query's through VMASKMOVPS.
 * The u8 dot widens 16 bytes to 16-bit lanes (VPMOVZXBW) and multiplies
 * pairs into 32-bit lanes (VPMADDWD): exact, 255*255*2 per lane and step,
 * so a 32-bit lane cannot overflow below 2^31 / 130050 * 16 = 264,000
 * bytes; the sum is widened to 64 bits at the end. Tail as for f16.
 *
 * Precision: float accumulation in 32 lanes (8 wide x 4), lanes summed
 * pairwise at the end; FMA rounds once per element. Each lane sums at most
 * ceil(n/32) + 3 terms, so the error is a few ulps of the sum of |terms|
 * for the dimensions in use. Hamming is exact.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "distance/distance.h"
#include "vector/codec.h"

/* Loading 8 ints from qz_tail_mask_src + 8 - r gives a mask whose first r
 * lanes are set (r = 1..7): the VMASKMOVPS mask for the last r floats. */
static const int32_t qz_tail_mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                             0,  0,  0,  0,  0,  0,  0,  0};

static inline __m256i tail_mask(size_t r)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)(qz_tail_mask_src + 8 - r));
}

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float qz__dist_l2sq_f32_avx2(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    /* 0..3 whole 8-float steps, each into its own chain. */
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
        if (i + 8 <= n) {
            d = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
            s1 = _mm256_fmadd_ps(d, d, s1);
            i += 8;
            if (i + 8 <= n) {
                d = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
                s2 = _mm256_fmadd_ps(d, d, s2);
                i += 8;
            }
        }
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static float qz__dist_dot_f32_avx2(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        i += 8;
        if (i + 8 <= n) {
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s1);
            i += 8;
            if (i + 8 <= n) {
                s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s2);
                i += 8;
            }
        }
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s3 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), s3);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* Bit counts of the 16 nibble values, repeated for both 128-bit halves
 * because VPSHUFB looks up within each half. */
static inline __m256i popcount_bytes(__m256i v)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

static float qz__dist_hamming_b8_avx2(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc0 = zero, acc1 = zero; /* four 64-bit bit counts each */
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i v0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(x + i)),
                                      _mm256_loadu_si256((const __m256i *)(const void *)(y + i)));
        __m256i v1 =
            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(x + i + 32)),
                             _mm256_loadu_si256((const __m256i *)(const void *)(y + i + 32)));
        /* VPSADBW against zero sums each 8 byte counts into a 64-bit lane. */
        acc0 = _mm256_add_epi64(acc0, _mm256_sad_epu8(popcount_bytes(v0), zero));
        acc1 = _mm256_add_epi64(acc1, _mm256_sad_epu8(popcount_bytes(v1), zero));
    }
    if (i + 32 <= n) {
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(x + i)),
                                     _mm256_loadu_si256((const __m256i *)(const void *)(y + i)));
        acc0 = _mm256_add_epi64(acc0, _mm256_sad_epu8(popcount_bytes(v), zero));
        i += 32;
    }
    __m256i acc = _mm256_add_epi64(acc0, acc1);
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
    uint64_t bits;
    _mm_storel_epi64((__m128i *)(void *)&bits, s);

    /* 0..31 bytes left: fixed-size memcpy compiles to one unaligned load. */
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        bits += (uint64_t)__builtin_popcountll(u ^ v);
    }
    if (i + 4 <= n) {
        uint32_t u, v;
        memcpy(&u, x + i, 4);
        memcpy(&v, y + i, 4);
        bits += (uint64_t)__builtin_popcount(u ^ v);
        i += 4;
    }
    if (i + 2 <= n) {
        uint16_t u, v;
        memcpy(&u, x + i, 2);
        memcpy(&v, y + i, 2);
        bits += (uint64_t)__builtin_popcount((unsigned)(u ^ v));
        i += 2;
    }
    if (i < n) bits += (uint64_t)__builtin_popcount((unsigned)(x[i] ^ y[i]));
    return (float)bits;
}

/* The last r (< 8) halves as floats, zero beyond them. */
static inline __m256 f16_tail(const uint16_t *p, size_t r)
{
    uint16_t buf[8] = {0};
    memcpy(buf, p, r * sizeof *p);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)buf));
}

static inline __m256 f16_load(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static float qz__dist_l2sq_f16_avx2(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(f16_load(x + i), f16_load(y + i));
        __m256 d1 = _mm256_sub_ps(f16_load(x + i + 8), f16_load(y + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(f16_load(x + i), f16_load(y + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(f16_tail(x + i, n - i), f16_tail(y + i, n - i));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

static float qz__dist_dot_f16_avx2(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(f16_load(x + i), f16_load(y + i), s0);
        s1 = _mm256_fmadd_ps(f16_load(x + i + 8), f16_load(y + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(f16_load(x + i), f16_load(y + i), s0);
        i += 8;
    }
    if (i < n) s1 = _mm256_fmadd_ps(f16_tail(x + i, n - i), f16_tail(y + i, n - i), s1);
    return hsum256(_mm256_add_ps(s0, s1));
}

static float qz__dist_l2sq_f32f16_avx2(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), f16_load(y + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), f16_load(y + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), f16_load(y + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + i, tail_mask(n - i)), f16_tail(y + i, n - i));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

static float qz__dist_dot_f32f16_avx2(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), f16_load(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), f16_load(y + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), f16_load(y + i), s0);
        i += 8;
    }
    if (i < n) s1 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, tail_mask(n - i)), f16_tail(y + i, n - i), s1);
    return hsum256(_mm256_add_ps(s0, s1));
}

static inline uint64_t hsum_epi32_u64(__m256i v)
{
    /* lanes are non-negative and < 2^31: widen to 64 bits and add */
    __m256i lo = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(v));
    __m256i hi = _mm256_cvtepu32_epi64(_mm256_extracti128_si256(v, 1));
    __m256i s = _mm256_add_epi64(lo, hi);
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (uint64_t)_mm_cvtsi128_si64(t) + (uint64_t)_mm_extract_epi64(t, 1);
}

static uint64_t qz__ip_u8_avx2(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i < n) {
        /* at most 16384 bytes per block: 1024 steps of 130050 stay below 2^31 */
        size_t end = n - i > 16384 ? i + 16384 : n;
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        for (; i + 32 <= end; i += 32) {
            __m256i x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(a + i)));
            __m256i y0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + i)));
            __m256i x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(a + i + 16)));
            __m256i y1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + i + 16)));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(x0, y0));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(x1, y1));
        }
        if (i < end) {
            uint8_t bx[32] = {0}, by[32] = {0};
            memcpy(bx, a + i, end - i);
            memcpy(by, b + i, end - i);
            __m256i x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)bx));
            __m256i y0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)by));
            __m256i x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bx + 16)));
            __m256i y1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(by + 16)));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(x0, y0));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(x1, y1));
            i = end;
        }
        total += hsum_epi32_u64(acc0) + hsum_epi32_u64(acc1);
    }
    return total;
}

QZ__SQ8_KERNELS(avx2, qz__ip_u8_avx2)

/* The codec's encoder with this file's flags (AVX2): see x86_avx512.c. */
static void qz__sq8_encode_avx2(const float *x, size_t n, void *out) { qz__sq8_encode(x, n, out); }

const qz__kernels qz__kernels_avx2 = {
    "avx2",
    qz__dist_l2sq_f32_avx2,
    qz__dist_dot_f32_avx2,
    qz__dist_hamming_b8_avx2,
    qz__dist_l2sq_f16_avx2,
    qz__dist_dot_f16_avx2,
    qz__ip_u8_avx2,
    qz__dist_l2sq_sq8_avx2,
    qz__dist_dot_sq8_avx2,
    qz__dist_l2sq_f32f16_avx2,
    qz__dist_dot_f32f16_avx2,
    NULL, /* l2sq_sq8q and dot_sq8q: no prepared-query kernels here (distance.h) */
    NULL,
    qz__sq8_encode_avx2,
};
