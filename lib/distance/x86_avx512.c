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
 * Precision: float accumulation in 64 lanes (16 wide x 4), summed by
 * _mm512_reduce_add_ps at the end; FMA rounds once per element. Each lane
 * sums at most ceil(n/64) + 1 terms. Hamming is exact.
 */
#include <immintrin.h>
#include <stdint.h>

#include "distance/distance.h"

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

const qz__kernels qz__kernels_avx512 = {
    "avx512",
    qz__dist_l2sq_f32_avx512,
    qz__dist_dot_f32_avx512,
    qz__dist_hamming_b8_avx512,
};

const qz__kernels qz__kernels_avx512vpopcnt = {
    "avx512vpopcnt",
    qz__dist_l2sq_f32_avx512,
    qz__dist_dot_f32_avx512,
    qz__dist_hamming_b8_avx512vpopcnt,
};
