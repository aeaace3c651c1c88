/*
 * scalar.c - the reference distance kernels.
 *
 * CPU features: none (plain C11). This table is always built, is the last
 * resort of the dispatcher, and is what every SIMD table is tested against.
 *
 * Tails: none; each loop walks every element once, in order.
 *
 * Precision: the float kernels accumulate in double and round once at the
 * end, so for the dimensions we support (<= 65536) the result is the exact
 * sum correctly rounded to float, give or take one float ulp. The Hamming
 * count is an exact integer; it is exact as a float up to 2^24 differing
 * bits (2 MiB of input), far beyond QZ_MAX_DIMENSIONS.
 *
 * Keep this file obvious. It is slow on purpose: do not "optimise" it, since
 * a clever reference would hide the same mistake in the kernels it checks.
 */
#include <stdint.h>

#include "distance/distance.h"
#include "vector/codec.h"

static float qz__dist_l2sq_f32_scalar(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        sum += d * d;
    }
    return (float)sum;
}

static float qz__dist_dot_f32_scalar(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const float *y = b;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * (double)y[i];
    return (float)sum;
}

static float qz__dist_hamming_b8_scalar(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)(x[i] ^ y[i]);
        while (v != 0) { /* clear the lowest set bit until none is left */
            v &= v - 1;
            bits++;
        }
    }
    return (float)bits;
}

static float qz__dist_l2sq_f16_scalar(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)qz__f16_to_f32(x[i]) - (double)qz__f16_to_f32(y[i]);
        sum += d * d;
    }
    return (float)sum;
}

static float qz__dist_dot_f16_scalar(const void *a, const void *b, size_t n)
{
    const uint16_t *x = a;
    const uint16_t *y = b;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)qz__f16_to_f32(x[i]) * (double)qz__f16_to_f32(y[i]);
    return (float)sum;
}

/* Asymmetric f16: a is n floats (the query), b n halves (the code). */
static float qz__dist_l2sq_f32f16_scalar(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)qz__f16_to_f32(y[i]);
        sum += d * d;
    }
    return (float)sum;
}

static float qz__dist_dot_f32f16_scalar(const void *a, const void *b, size_t n)
{
    const float *x = a;
    const uint16_t *y = b;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * (double)qz__f16_to_f32(y[i]);
    return (float)sum;
}

static uint64_t qz__ip_u8_scalar(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (uint64_t)a[i] * b[i];
    return sum;
}

QZ__SQ8_KERNELS(scalar, qz__ip_u8_scalar)

static int64_t qz__ipq_scalar(const uint8_t *qs8, const uint8_t *b, size_t n)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int64_t)b[i] * (int8_t)qs8[i];
    return sum;
}

QZ__SQ8Q_KERNELS(scalar, qz__ipq_scalar, )

const qz__kernels qz__kernels_scalar = {
    "scalar",
    qz__dist_l2sq_f32_scalar,
    qz__dist_dot_f32_scalar,
    qz__dist_hamming_b8_scalar,
    qz__dist_l2sq_f16_scalar,
    qz__dist_dot_f16_scalar,
    qz__ip_u8_scalar,
    qz__dist_l2sq_sq8_scalar,
    qz__dist_dot_sq8_scalar,
    qz__dist_l2sq_f32f16_scalar,
    qz__dist_dot_f32f16_scalar,
    qz__dist_l2sq_sq8q_scalar,
    qz__dist_dot_sq8q_scalar,
    NULL, /* sq8_encode: the baseline one */
};
