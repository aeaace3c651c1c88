/*
 * x86_avx512.c - distance kernels for AVX-512 (Skylake-SP, Zen 4 and later).
 *
 * CPU features: AVX-512F, AVX-512BW and AVX-512VL, with ZMM, upper-16 and
 * opmask state enabled by the OS (XGETBV bits 5-7). Built with -mavx512f
 * -mavx512bw -mavx512vl (-mavx512vl only for completeness: these kernels use
 * 512-bit vectors and opmasks). One more kernel, the Hamming kernel of the
 * separate table "avx512vpopcnt", also needs AVX512_VPOPCNTDQ (Ice Lake,
 * Zen 4); it alone carries a target("avx512vpopcntdq") attribute, so no other
 * function in this file can pick up that instruction. dispatch.c checks the
 * features of each table before it hands it out.
 *
 * Tails: none in scalar code. The float kernels run 64 floats per step in
 * four independent accumulators, then cover the last 0..63 floats with up to
 * four zero-masked 16-float loads (the last one partly masked). The Hamming
 * kernels do the same with 128-byte steps and up to two zero-masked 64-byte
 * loads. A masked-off element is never read: it cannot fault, and nothing
 * past the end of either buffer is touched (AddressSanitizer does not see
 * masked loads, so tests also poison the bytes after the end).
 *
 * f16 kernels: 32 halves per step (VCVTPH2PS zmm is AVX-512F), two
 * accumulators, the last 0..31 halves with up to two zero-masked 16-half
 * loads. The asymmetric f32f16 kernels walk the same way: 32 elements per
 * step in two accumulators, VMOVUPS on the f32 query and VCVTPH2PS on the
 * f16 code, the last 0..31 with up to two zero-masked 16-element loads on
 * each side (one mask serves both). The u8 dot: VPMOVZXBW + VPMADDWD (exact, as in x86_avx2.c) in the
 * avx512 tables; the table "avx512vnni" (also needs AVX512_VNNI; its kernel
 * alone carries target("avx512vnni")) uses VPDPBUSD, which multiplies u8 by
 * s8: b is flipped to b - 128 (XOR 0x80) and 128 * sum(a) (VPSADBW) added
 * back. 64 bytes per step, masked tail loads; 32-bit lanes take at most
 * 4 * 255 * 128 per step, far from 2^31 for every allowed dimension.
 *
 * Precision: float accumulation in 64 lanes (16 wide x 4), summed by
 * _mm512_reduce_add_ps at the end; FMA rounds once per element. Each lane
 * sums at most ceil(n/64) + 1 terms. Hamming is exact.
 */
#include <immintrin.h>
#include <stdint.h>

#include "distance/distance.h"
#include "vector/codec.h"

/* Mask of the first min(r, 16) lanes. */
static inline __mmask16 mask16(size_t r)
{
    return r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1u);
}

/* Mask of the first min(r, 64) bytes. */
static inline __mmask64 mask64(size_t r)
{
    return r >= 64 ? (__mmask64)~0ULL : (__mmask64)((1ULL << r) - 1ULL);
}

static float qz__dist_l2sq_f32_avx512(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    size_t r = n - i;
    if (r > 0) {
        __mmask16 m = mask16(r);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
        if (r > 16) {
            m = mask16(r - 16);
            d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i + 16),
                              _mm512_maskz_loadu_ps(m, y + i + 16));
            s1 = _mm512_fmadd_ps(d, d, s1);
            if (r > 32) {
                m = mask16(r - 32);
                d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i + 32),
                                  _mm512_maskz_loadu_ps(m, y + i + 32));
                s2 = _mm512_fmadd_ps(d, d, s2);
                if (r > 48) {
                    m = mask16(r - 48);
                    d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i + 48),
                                      _mm512_maskz_loadu_ps(m, y + i + 48));
                    s3 = _mm512_fmadd_ps(d, d, s3);
                }
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static float qz__dist_dot_f32_avx512(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), s3);
    }
    size_t r = n - i;
    if (r > 0) {
        __mmask16 m = mask16(r);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s0);
        if (r > 16) {
            m = mask16(r - 16);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i + 16),
                                 _mm512_maskz_loadu_ps(m, y + i + 16), s1);
            if (r > 32) {
                m = mask16(r - 32);
                s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i + 32),
                                     _mm512_maskz_loadu_ps(m, y + i + 32), s2);
                if (r > 48) {
                    m = mask16(r - 48);
                    s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i + 48),
                                         _mm512_maskz_loadu_ps(m, y + i + 48), s3);
                }
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Per-byte bit counts with AVX-512BW: VPSHUFB looks each nibble up in a
 * 16-entry table (repeated per 128-bit lane, as VPSHUFB indexes within one). */
static inline __m512i popcount_bytes(__m512i v)
{
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(v, low4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
    return _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
}

/* XOR of the next 64 bytes, zero beyond the first r of them. */
static inline __m512i xor_block(const uint8_t *x, const uint8_t *y, size_t r)
{
    __mmask64 m = mask64(r);
    return _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x), _mm512_maskz_loadu_epi8(m, y));
}

static float qz__dist_hamming_b8_avx512(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    const __m512i zero = _mm512_setzero_si512();
    __m512i acc0 = zero, acc1 = zero; /* eight 64-bit bit counts each */
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i v0 = _mm512_xor_si512(_mm512_loadu_si512(x + i), _mm512_loadu_si512(y + i));
        __m512i v1 =
            _mm512_xor_si512(_mm512_loadu_si512(x + i + 64), _mm512_loadu_si512(y + i + 64));
        /* VPSADBW against zero sums each 8 byte counts into a 64-bit lane. */
        acc0 = _mm512_add_epi64(acc0, _mm512_sad_epu8(popcount_bytes(v0), zero));
        acc1 = _mm512_add_epi64(acc1, _mm512_sad_epu8(popcount_bytes(v1), zero));
    }
    size_t r = n - i;
    if (r > 0) {
        acc0 = _mm512_add_epi64(acc0, _mm512_sad_epu8(popcount_bytes(xor_block(x + i, y + i, r)), zero));
        if (r > 64) {
            __m512i v = xor_block(x + i + 64, y + i + 64, r - 64);
            acc1 = _mm512_add_epi64(acc1, _mm512_sad_epu8(popcount_bytes(v), zero));
        }
    }
    return (float)_mm512_reduce_add_epi64(_mm512_add_epi64(acc0, acc1));
}

/* Same walk as above, one VPOPCNTQ per 64 bytes instead of the lookup. */
__attribute__((target("avx512vpopcntdq"))) static float
qz__dist_hamming_b8_avx512vpopcnt(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i v0 = _mm512_xor_si512(_mm512_loadu_si512(x + i), _mm512_loadu_si512(y + i));
        __m512i v1 =
            _mm512_xor_si512(_mm512_loadu_si512(x + i + 64), _mm512_loadu_si512(y + i + 64));
        acc0 = _mm512_add_epi64(acc0, _mm512_popcnt_epi64(v0));
        acc1 = _mm512_add_epi64(acc1, _mm512_popcnt_epi64(v1));
    }
    size_t r = n - i;
    if (r > 0) {
        acc0 = _mm512_add_epi64(acc0, _mm512_popcnt_epi64(xor_block(x + i, y + i, r)));
        if (r > 64)
            acc1 = _mm512_add_epi64(acc1,
                                    _mm512_popcnt_epi64(xor_block(x + i + 64, y + i + 64, r - 64)));
    }
    return (float)_mm512_reduce_add_epi64(_mm512_add_epi64(acc0, acc1));
}

static inline __m512 f16_load16(const uint16_t *p, size_t r)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(r), p));
}

static float qz__dist_l2sq_f16_avx512(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + i))),
                                  _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(y + i))));
        __m512 d1 =
            _mm512_sub_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + i + 16))),
                          _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(y + i + 16))));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    size_t r = n - i;
    if (r > 0) {
        __m512 d = _mm512_sub_ps(f16_load16(x + i, r), f16_load16(y + i, r));
        s0 = _mm512_fmadd_ps(d, d, s0);
        if (r > 16) {
            d = _mm512_sub_ps(f16_load16(x + i + 16, r - 16), f16_load16(y + i + 16, r - 16));
            s1 = _mm512_fmadd_ps(d, d, s1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float qz__dist_dot_f16_avx512(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + i))),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(y + i))), s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + i + 16))),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(y + i + 16))), s1);
    }
    size_t r = n - i;
    if (r > 0) {
        s0 = _mm512_fmadd_ps(f16_load16(x + i, r), f16_load16(y + i, r), s0);
        if (r > 16) s1 = _mm512_fmadd_ps(f16_load16(x + i + 16, r - 16), f16_load16(y + i + 16, r - 16), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* 16 halves from the code, widened, as in the f16 kernels above. */
static inline __m512 f16_loadu16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

static float qz__dist_l2sq_f32f16_avx512(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), f16_loadu16(y + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), f16_loadu16(y + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    size_t r = n - i;
    if (r > 0) {
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask16(r), x + i), f16_load16(y + i, r));
        s0 = _mm512_fmadd_ps(d, d, s0);
        if (r > 16) {
            d = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask16(r - 16), x + i + 16), f16_load16(y + i + 16, r - 16));
            s1 = _mm512_fmadd_ps(d, d, s1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float qz__dist_dot_f32f16_avx512(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), f16_loadu16(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), f16_loadu16(y + i + 16), s1);
    }
    size_t r = n - i;
    if (r > 0) {
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask16(r), x + i), f16_load16(y + i, r), s0);
        if (r > 16)
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask16(r - 16), x + i + 16), f16_load16(y + i + 16, r - 16),
                                 s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* Mask of the first min(r, 32) lanes. */
static inline __mmask32 mask32(size_t r)
{
    return r >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << r) - 1u);
}

static inline uint64_t reduce_epi32_u64(__m512i v)
{
    __m512i lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(v));
    __m512i hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(v, 1));
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(lo, hi));
}

static uint64_t qz__ip_u8_avx512(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i < n) {
        /* at most 32768 bytes per block: 512 steps of 130050 per lane */
        size_t end = n - i > 32768 ? i + 32768 : n;
        __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
        for (; i + 64 <= end; i += 64) {
            __m512i x0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(a + i)));
            __m512i y0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(b + i)));
            __m512i x1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(a + i + 32)));
            __m512i y1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(b + i + 32)));
            acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(x0, y0));
            acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(x1, y1));
        }
        size_t r = end - i;
        if (r > 0) {
            __mmask32 m = mask32(r);
            __m512i x0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
            __m512i y0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
            acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(x0, y0));
            if (r > 32) {
                m = mask32(r - 32);
                __m512i x1 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i + 32));
                __m512i y1 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, b + i + 32));
                acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(x1, y1));
            }
            i = end;
        }
        total += reduce_epi32_u64(acc0) + reduce_epi32_u64(acc1);
    }
    return total;
}

__attribute__((target("avx512vnni"))) static uint64_t qz__ip_u8_avx512vnni(const uint8_t *a, const uint8_t *b,
                                                                          size_t n)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i acc0 = zero, acc1 = zero; /* sum a * (b - 128), 32-bit lanes */
    __m512i sa = zero;                /* sum a, 64-bit lanes */
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i x0 = _mm512_loadu_si512(a + i), x1 = _mm512_loadu_si512(a + i + 64);
        __m512i y0 = _mm512_xor_si512(_mm512_loadu_si512(b + i), flip);
        __m512i y1 = _mm512_xor_si512(_mm512_loadu_si512(b + i + 64), flip);
        acc0 = _mm512_dpbusd_epi32(acc0, x0, y0);
        acc1 = _mm512_dpbusd_epi32(acc1, x1, y1);
        sa = _mm512_add_epi64(sa, _mm512_add_epi64(_mm512_sad_epu8(x0, zero), _mm512_sad_epu8(x1, zero)));
    }
    size_t r = n - i;
    while (r > 0) { /* zero-masked a makes the flipped b's lanes contribute 0 */
        __mmask64 m = mask64(r);
        __m512i x = _mm512_maskz_loadu_epi8(m, a + i);
        __m512i y = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, b + i), flip);
        acc0 = _mm512_dpbusd_epi32(acc0, x, y);
        sa = _mm512_add_epi64(sa, _mm512_sad_epu8(x, zero));
        size_t step = r < 64 ? r : 64;
        i += step;
        r -= step;
    }
    int64_t signed_sum = _mm512_reduce_add_epi64(_mm512_add_epi64(
        _mm512_cvtepi32_epi64(_mm512_castsi512_si256(_mm512_add_epi32(acc0, acc1))),
        _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(_mm512_add_epi32(acc0, acc1), 1))));
    return (uint64_t)(signed_sum + 128 * (int64_t)_mm512_reduce_add_epi64(sa));
}

QZ__SQ8_KERNELS(avx512, qz__ip_u8_avx512)
QZ__SQ8_KERNELS(avx512vnni, qz__ip_u8_avx512vnni)

/* sum b_i * (int8)q_i for a prepared query q (vector/codec.h): one VPDPBUSD
 * per 64 bytes, the stored code as its u8 operand, nothing else in the
 * loop. A zero-masked tail of b contributes 0. 32-bit lanes cannot
 * overflow: a lane adds 4 products of at most 255 * 128 per 64 bytes, so
 * 2^31 takes more than 2^14 steps (a million bytes); n <= 65536 here. */
__attribute__((target("avx512vnni"))) static inline int64_t qz__ipq_avx512vnni(const uint8_t *q, const uint8_t *b,
                                                                              size_t n)
{
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(b + i), _mm512_loadu_si512(q + i));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(b + i + 64), _mm512_loadu_si512(q + i + 64));
    }
    while (i < n) {
        __mmask64 m = mask64(n - i);
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_maskz_loadu_epi8(m, b + i), _mm512_maskz_loadu_epi8(m, q + i));
        i += n - i < 64 ? n - i : 64;
    }
    __m512i acc = _mm512_add_epi32(acc0, acc1);
    return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc)),
                                                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1))));
}

QZ__SQ8Q_KERNELS(avx512vnni, qz__ipq_avx512vnni, __attribute__((target("avx512vnni"))))

/* The codec's encoder with this file's flags (AVX-512F/BW/VL): the inline
 * loops vectorize 8 doubles wide; the arithmetic, and so every byte, is
 * that of the baseline build. */
static void qz__sq8_encode_avx512(const float *x, size_t n, void *out) { qz__sq8_encode(x, n, out); }

const qz__kernels qz__kernels_avx512 = {
    "avx512",
    qz__dist_l2sq_f32_avx512,
    qz__dist_dot_f32_avx512,
    qz__dist_hamming_b8_avx512,
    qz__dist_l2sq_f16_avx512,
    qz__dist_dot_f16_avx512,
    qz__ip_u8_avx512,
    qz__dist_l2sq_sq8_avx512,
    qz__dist_dot_sq8_avx512,
    qz__dist_l2sq_f32f16_avx512,
    qz__dist_dot_f32f16_avx512,
    NULL, /* l2sq_sq8q and dot_sq8q: no prepared-query kernels here (distance.h) */
    NULL,
    qz__sq8_encode_avx512,
};

const qz__kernels qz__kernels_avx512vpopcnt = {
    "avx512vpopcnt",
    qz__dist_l2sq_f32_avx512,
    qz__dist_dot_f32_avx512,
    qz__dist_hamming_b8_avx512vpopcnt,
    qz__dist_l2sq_f16_avx512,
    qz__dist_dot_f16_avx512,
    qz__ip_u8_avx512,
    qz__dist_l2sq_sq8_avx512,
    qz__dist_dot_sq8_avx512,
    qz__dist_l2sq_f32f16_avx512,
    qz__dist_dot_f32f16_avx512,
    NULL, /* l2sq_sq8q and dot_sq8q: no prepared-query kernels here (distance.h) */
    NULL,
    qz__sq8_encode_avx512,
};

const qz__kernels qz__kernels_avx512vnni = {
    "avx512vnni",
    qz__dist_l2sq_f32_avx512,
    qz__dist_dot_f32_avx512,
    qz__dist_hamming_b8_avx512vpopcnt,
    qz__dist_l2sq_f16_avx512,
    qz__dist_dot_f16_avx512,
    qz__ip_u8_avx512vnni,
    qz__dist_l2sq_sq8_avx512vnni,
    qz__dist_dot_sq8_avx512vnni,
    qz__dist_l2sq_f32f16_avx512,
    qz__dist_dot_f32f16_avx512,
    qz__dist_l2sq_sq8q_avx512vnni,
    qz__dist_dot_sq8q_avx512vnni,
    qz__sq8_encode_avx512,
};
