/*
 * arm_neon.c - distance kernels for AArch64 Advanced SIMD (NEON).
 *
 * CPU features: AArch64 NEON with FMA (FMLA), part of the AArch64 baseline,
 * so this file needs no extra compile flags. Not built for 32-bit Arm.
 *
 * Tails: the float kernels run 16 floats per step in four independent
 * accumulators, then up to three 4-float steps, then load the last 1..3
 * floats lane by lane (LD1 {v.s}[lane]) into a zeroed vector, so nothing past
 * the end of either buffer is read. The Hamming kernel counts 16-byte blocks
 * with CNT + UADALP (byte counts pairwise-added into 16-bit lanes, flushed to
 * 64 bits before they can overflow), then one 8-byte block with CNT, then
 * the last 0..7 bytes one at a time.
 *
 * f16 kernels: FCVTL (vcvt_f32_f16, AArch64 baseline) 8 halves per step in
 * two accumulators; the last 0..7 halves are copied into a zeroed block.
 * The asymmetric f32f16 kernels: the same 8-element steps (LD1 on the f32
 * query, FCVTL on the f16 code), then one 4-element step, then the last
 * 1..3 elements lane by lane on both sides (LD1 {v.s}[lane], {v.h}[lane]).
 * u8 dot: UMULL (8 bytes to 16-bit products, 255*255 fits) and UADALP into
 * 32-bit lanes, flushed to 64 bits every 16 KiB; the last 0..7 bytes one at
 * a time. Exact.
 *
 * Precision: float accumulation in 16 lanes (4 wide x 4), FMLA rounds once
 * per element; each lane sums at most ceil(n/16) + 3 terms. Hamming is exact.
 */
#include <arm_neon.h>
#include <stdint.h>

#include <string.h>

#include "distance/distance.h"
#include "vector/codec.h"

/* The first r (1..3) floats at p in lanes 0..r-1, zeros elsewhere. */
static inline float32x4_t load_tail(const float *p, size_t r)
{
    float32x4_t v = vdupq_n_f32(0.0f);
    v = vld1q_lane_f32(p, v, 0);
    if (r > 1) v = vld1q_lane_f32(p + 1, v, 1);
    if (r > 2) v = vld1q_lane_f32(p + 2, v, 2);
    return v;
}

static float qz__dist_l2sq_f32_neon(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vld1q_f32(y + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        float32x4_t d2 = vsubq_f32(vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        float32x4_t d3 = vsubq_f32(vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
    }
    if (i + 4 <= n) {
        float32x4_t d = vsubq_f32(vld1q_f32(x + i), vld1q_f32(y + i));
        s0 = vfmaq_f32(s0, d, d);
        i += 4;
        if (i + 4 <= n) {
            d = vsubq_f32(vld1q_f32(x + i), vld1q_f32(y + i));
            s1 = vfmaq_f32(s1, d, d);
            i += 4;
            if (i + 4 <= n) {
                d = vsubq_f32(vld1q_f32(x + i), vld1q_f32(y + i));
                s2 = vfmaq_f32(s2, d, d);
                i += 4;
            }
        }
    }
    if (i < n) {
        float32x4_t d = vsubq_f32(load_tail(x + i, n - i), load_tail(y + i, n - i));
        s3 = vfmaq_f32(s3, d, d);
    }
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

static float qz__dist_dot_f32_neon(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
        s1 = vfmaq_f32(s1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    if (i + 4 <= n) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
        i += 4;
        if (i + 4 <= n) {
            s1 = vfmaq_f32(s1, vld1q_f32(x + i), vld1q_f32(y + i));
            i += 4;
            if (i + 4 <= n) {
                s2 = vfmaq_f32(s2, vld1q_f32(x + i), vld1q_f32(y + i));
                i += 4;
            }
        }
    }
    if (i < n) s3 = vfmaq_f32(s3, load_tail(x + i, n - i), load_tail(y + i, n - i));
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

static float qz__dist_hamming_b8_neon(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    uint64_t bits = 0;
    size_t i = 0;
    while (i + 16 <= n) {
        /* Each 16-byte block adds at most 2 * 8 to a 16-bit lane of one
         * accumulator; 2048 blocks (<= 32768) cannot overflow it. */
        size_t blocks = (n - i) / 16;
        if (blocks > 2048) blocks = 2048;
        uint16x8_t acc0 = vdupq_n_u16(0), acc1 = acc0;
        size_t k = 0;
        for (; k + 2 <= blocks; k += 2, i += 32) {
            uint8x16_t v0 = veorq_u8(vld1q_u8(x + i), vld1q_u8(y + i));
            uint8x16_t v1 = veorq_u8(vld1q_u8(x + i + 16), vld1q_u8(y + i + 16));
            acc0 = vpadalq_u8(acc0, vcntq_u8(v0));
            acc1 = vpadalq_u8(acc1, vcntq_u8(v1));
        }
        if (k < blocks) {
            acc0 = vpadalq_u8(acc0, vcntq_u8(veorq_u8(vld1q_u8(x + i), vld1q_u8(y + i))));
            i += 16;
        }
        bits += vaddlvq_u16(acc0) + vaddlvq_u16(acc1);
    }
    if (i + 8 <= n) {
        bits += vaddv_u8(vcnt_u8(veor_u8(vld1_u8(x + i), vld1_u8(y + i))));
        i += 8;
    }
    for (; i < n; i++) bits += (uint64_t)__builtin_popcount((unsigned)(x[i] ^ y[i]));
    return (float)bits;
}

static inline float32x4_t f16x4(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static float qz__dist_l2sq_f16_neon(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t d0 = vsubq_f32(f16x4(x + i), f16x4(y + i));
        float32x4_t d1 = vsubq_f32(f16x4(x + i + 4), f16x4(y + i + 4));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    if (i < n) {
        uint16_t bx[8] = {0}, by[8] = {0};
        memcpy(bx, x + i, (n - i) * 2);
        memcpy(by, y + i, (n - i) * 2);
        float32x4_t d0 = vsubq_f32(f16x4(bx), f16x4(by));
        float32x4_t d1 = vsubq_f32(f16x4(bx + 4), f16x4(by + 4));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    return vaddvq_f32(vaddq_f32(s0, s1));
}

static float qz__dist_dot_f16_neon(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, f16x4(x + i), f16x4(y + i));
        s1 = vfmaq_f32(s1, f16x4(x + i + 4), f16x4(y + i + 4));
    }
    if (i < n) {
        uint16_t bx[8] = {0}, by[8] = {0};
        memcpy(bx, x + i, (n - i) * 2);
        memcpy(by, y + i, (n - i) * 2);
        s0 = vfmaq_f32(s0, f16x4(bx), f16x4(by));
        s1 = vfmaq_f32(s1, f16x4(bx + 4), f16x4(by + 4));
    }
    return vaddvq_f32(vaddq_f32(s0, s1));
}

/* The first r (1..3) halves at p, widened, in lanes 0..r-1, zeros elsewhere. */
static inline float32x4_t f16_tail(const uint16_t *p, size_t r)
{
    uint16x4_t v = vdup_n_u16(0);
    v = vld1_lane_u16(p, v, 0);
    if (r > 1) v = vld1_lane_u16(p + 1, v, 1);
    if (r > 2) v = vld1_lane_u16(p + 2, v, 2);
    return vcvt_f32_f16(vreinterpret_f16_u16(v));
}

static float qz__dist_l2sq_f32f16_neon(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), f16x4(y + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(x + i + 4), f16x4(y + i + 4));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    if (i + 4 <= n) {
        float32x4_t d = vsubq_f32(vld1q_f32(x + i), f16x4(y + i));
        s0 = vfmaq_f32(s0, d, d);
        i += 4;
    }
    if (i < n) {
        float32x4_t d = vsubq_f32(load_tail(x + i, n - i), f16_tail(y + i, n - i));
        s1 = vfmaq_f32(s1, d, d);
    }
    return vaddvq_f32(vaddq_f32(s0, s1));
}

static float qz__dist_dot_f32f16_neon(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), f16x4(y + i));
        s1 = vfmaq_f32(s1, vld1q_f32(x + i + 4), f16x4(y + i + 4));
    }
    if (i + 4 <= n) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), f16x4(y + i));
        i += 4;
    }
    if (i < n) s1 = vfmaq_f32(s1, load_tail(x + i, n - i), f16_tail(y + i, n - i));
    return vaddvq_f32(vaddq_f32(s0, s1));
}

static uint64_t qz__ip_u8_neon(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i + 8 <= n) {
        size_t end = n - i > 16384 ? i + 16384 : n;
        uint32x4_t acc = vdupq_n_u32(0);
        for (; i + 8 <= end; i += 8) acc = vpadalq_u16(acc, vmull_u8(vld1_u8(a + i), vld1_u8(b + i)));
        total += vaddlvq_u32(acc);
    }
    for (; i < n; i++) total += (uint64_t)a[i] * b[i];
    return total;
}

QZ__SQ8_KERNELS(neon, qz__ip_u8_neon)

const qz__kernels qz__kernels_neon = {
    "neon",
    qz__dist_l2sq_f32_neon,
    qz__dist_dot_f32_neon,
    qz__dist_hamming_b8_neon,
    qz__dist_l2sq_f16_neon,
    qz__dist_dot_f16_neon,
    qz__ip_u8_neon,
    qz__dist_l2sq_sq8_neon,
    qz__dist_dot_sq8_neon,
    qz__dist_l2sq_f32f16_neon,
    qz__dist_dot_f32f16_neon,
    NULL, /* l2sq_sq8q and dot_sq8q: no prepared-query kernels here (distance.h) */
    NULL,
    NULL, /* sq8_encode: the baseline one */
};
