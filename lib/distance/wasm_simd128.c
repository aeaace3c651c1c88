/*
 * wasm_simd128.c - distance kernels for WebAssembly SIMD (128-bit).
 *
 * CPU features: the wasm "simd128" proposal (Chrome 91+, Firefox 89+,
 * Safari 16.4+, Node 16.4+, workerd). Built with -msimd128. wasm has no
 * run-time feature test: a module holding these opcodes fails to validate
 * on an engine without SIMD, so the loader chooses between a simd128 build
 * and a scalar build; dispatch.c never has to refuse this table.
 *
 * Tails: the float kernels run 16 floats per step in four independent
 * accumulators, then up to three 4-float steps, then load the last 1..3
 * floats lane by lane (v128.load32_lane) into a zeroed vector. The Hamming
 * kernel counts 16-byte blocks with i8x16.popcnt and widening pairwise adds,
 * then the last 0..15 bytes with i32.popcnt one byte at a time. Nothing past
 * the end of either buffer is read (wasm would trap at the end of memory).
 *
 * f16 kernels: simd128 has no half-precision conversion, so 4 halves at a
 * time are widened in scalar code (vector/codec.h) and then handled as f32;
 * the tail is zero-padded. The asymmetric f32f16 kernels widen only the
 * code's side that way; the f32 query is loaded 4 floats at a time, its
 * last 1..3 lane by lane as in the f32 kernels. u8 dot: i16x8.extmul_{low,high}_i8x16_u and
 * i32x4.extadd_pairwise_i16x8_u into 32-bit lanes, flushed to 64 bits every
 * 16 KiB; the last 0..15 bytes one at a time. Exact.
 *
 * Precision: baseline simd128 has no fused multiply-add (only relaxed-simd
 * does, with unspecified fusing), so each element costs a rounded multiply
 * and a rounded add: about twice the rounding error of the FMA kernels.
 * Float accumulation in 16 lanes (4 wide x 4); each lane sums at most
 * ceil(n/16) + 3 terms. Hamming is exact.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#include "distance/distance.h"
#include "vector/codec.h"

/* The first r (1..3) floats at p in lanes 0..r-1, zeros elsewhere. */
static inline v128_t load_tail(const float *p, size_t r)
{
    v128_t v = wasm_f32x4_splat(0.0f);
    v = wasm_v128_load32_lane(p, v, 0);
    if (r > 1) v = wasm_v128_load32_lane(p + 1, v, 1);
    if (r > 2) v = wasm_v128_load32_lane(p + 2, v, 2);
    return v;
}

static inline float hsum(v128_t v)
{
    return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

static inline v128_t sq_acc(v128_t s, v128_t xv, v128_t yv)
{
    v128_t d = wasm_f32x4_sub(xv, yv);
    return wasm_f32x4_add(s, wasm_f32x4_mul(d, d));
}

static inline v128_t dot_acc(v128_t s, v128_t xv, v128_t yv)
{
    return wasm_f32x4_add(s, wasm_f32x4_mul(xv, yv));
}

static float qz__dist_l2sq_f32_simd128(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = sq_acc(s0, wasm_v128_load(x + i), wasm_v128_load(y + i));
        s1 = sq_acc(s1, wasm_v128_load(x + i + 4), wasm_v128_load(y + i + 4));
        s2 = sq_acc(s2, wasm_v128_load(x + i + 8), wasm_v128_load(y + i + 8));
        s3 = sq_acc(s3, wasm_v128_load(x + i + 12), wasm_v128_load(y + i + 12));
    }
    if (i + 4 <= n) {
        s0 = sq_acc(s0, wasm_v128_load(x + i), wasm_v128_load(y + i));
        i += 4;
        if (i + 4 <= n) {
            s1 = sq_acc(s1, wasm_v128_load(x + i), wasm_v128_load(y + i));
            i += 4;
            if (i + 4 <= n) {
                s2 = sq_acc(s2, wasm_v128_load(x + i), wasm_v128_load(y + i));
                i += 4;
            }
        }
    }
    if (i < n) s3 = sq_acc(s3, load_tail(x + i, n - i), load_tail(y + i, n - i));
    return hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
}

static float qz__dist_dot_f32_simd128(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = dot_acc(s0, wasm_v128_load(x + i), wasm_v128_load(y + i));
        s1 = dot_acc(s1, wasm_v128_load(x + i + 4), wasm_v128_load(y + i + 4));
        s2 = dot_acc(s2, wasm_v128_load(x + i + 8), wasm_v128_load(y + i + 8));
        s3 = dot_acc(s3, wasm_v128_load(x + i + 12), wasm_v128_load(y + i + 12));
    }
    if (i + 4 <= n) {
        s0 = dot_acc(s0, wasm_v128_load(x + i), wasm_v128_load(y + i));
        i += 4;
        if (i + 4 <= n) {
            s1 = dot_acc(s1, wasm_v128_load(x + i), wasm_v128_load(y + i));
            i += 4;
            if (i + 4 <= n) {
                s2 = dot_acc(s2, wasm_v128_load(x + i), wasm_v128_load(y + i));
                i += 4;
            }
        }
    }
    if (i < n) s3 = dot_acc(s3, load_tail(x + i, n - i), load_tail(y + i, n - i));
    return hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
}

static float qz__dist_hamming_b8_simd128(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    uint64_t bits = 0;
    size_t i = 0;
    while (i + 16 <= n) {
        /* A block adds at most 16 to a 16-bit lane: flush every 2048. */
        size_t blocks = (n - i) / 16;
        if (blocks > 2048) blocks = 2048;
        v128_t acc = wasm_i16x8_splat(0);
        for (size_t k = 0; k < blocks; k++, i += 16) {
            v128_t v = wasm_v128_xor(wasm_v128_load(x + i), wasm_v128_load(y + i));
            acc = wasm_i16x8_add(acc, wasm_u16x8_extadd_pairwise_u8x16(wasm_i8x16_popcnt(v)));
        }
        v128_t w = wasm_u32x4_extadd_pairwise_u16x8(acc);
        bits += (uint64_t)wasm_u32x4_extract_lane(w, 0) + wasm_u32x4_extract_lane(w, 1) +
                wasm_u32x4_extract_lane(w, 2) + wasm_u32x4_extract_lane(w, 3);
    }
    for (; i < n; i++) bits += (uint64_t)__builtin_popcount((unsigned)(x[i] ^ y[i]));
    return (float)bits;
}

/* Up to 4 halves (r, 1..4) as floats, zero beyond them. */
static inline v128_t f16x4(const uint16_t *p, size_t r)
{
    float f[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < r && j < 4; j++) f[j] = qz__f16_to_f32(p[j]);
    return wasm_v128_load(f);
}

static float qz__dist_l2sq_f16_simd128(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    v128_t s = wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < n; i += 4) {
        size_t r = n - i;
        v128_t d = wasm_f32x4_sub(f16x4(x + i, r), f16x4(y + i, r));
        s = wasm_f32x4_add(s, wasm_f32x4_mul(d, d));
    }
    return hsum(s);
}

static float qz__dist_dot_f16_simd128(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    v128_t s = wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < n; i += 4) {
        size_t r = n - i;
        s = wasm_f32x4_add(s, wasm_f32x4_mul(f16x4(x + i, r), f16x4(y + i, r)));
    }
    return hsum(s);
}

static float qz__dist_l2sq_f32f16_simd128(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    v128_t s = wasm_f32x4_splat(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) s = sq_acc(s, wasm_v128_load(x + i), f16x4(y + i, 4));
    if (i < n) s = sq_acc(s, load_tail(x + i, n - i), f16x4(y + i, n - i));
    return hsum(s);
}

static float qz__dist_dot_f32f16_simd128(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    v128_t s = wasm_f32x4_splat(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) s = dot_acc(s, wasm_v128_load(x + i), f16x4(y + i, 4));
    if (i < n) s = dot_acc(s, load_tail(x + i, n - i), f16x4(y + i, n - i));
    return hsum(s);
}

static uint64_t qz__ip_u8_simd128(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i + 16 <= n) {
        size_t end = n - i > 16384 ? i + 16384 : n;
        v128_t acc = wasm_i32x4_splat(0);
        for (; i + 16 <= end; i += 16) {
            v128_t x = wasm_v128_load(a + i), y = wasm_v128_load(b + i);
            acc = wasm_i32x4_add(acc, wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extmul_low_u8x16(x, y)));
            acc = wasm_i32x4_add(acc, wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extmul_high_u8x16(x, y)));
        }
        total += (uint64_t)wasm_u32x4_extract_lane(acc, 0) + wasm_u32x4_extract_lane(acc, 1) +
                 wasm_u32x4_extract_lane(acc, 2) + wasm_u32x4_extract_lane(acc, 3);
    }
    for (; i < n; i++) total += (uint64_t)a[i] * b[i];
    return total;
}

QZ__SQ8_KERNELS(simd128, qz__ip_u8_simd128)

const qz__kernels qz__kernels_simd128 = {
    "simd128",
    qz__dist_l2sq_f32_simd128,
    qz__dist_dot_f32_simd128,
    qz__dist_hamming_b8_simd128,
    qz__dist_l2sq_f16_simd128,
    qz__dist_dot_f16_simd128,
    qz__ip_u8_simd128,
    qz__dist_l2sq_sq8_simd128,
    qz__dist_dot_sq8_simd128,
    qz__dist_l2sq_f32f16_simd128,
    qz__dist_dot_f32f16_simd128,
    NULL, /* l2sq_sq8q and dot_sq8q: no prepared-query kernels here (distance.h) */
    NULL,
    NULL, /* sq8_encode: the baseline one */
};
