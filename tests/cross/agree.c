/*
 * agree.c - agreement check of one kernel table against the scalar
 * reference, for targets this machine can only emulate (aarch64 under qemu,
 * wasm32 under node). check_neon.sh and check_wasm.sh build it.
 *
 * It needs no C library, so that the wasm build can be freestanding
 * (-nostdlib): data lives in static arrays and nothing is printed here.
 * qz_agree_run() returns the number of disagreements; the native build's
 * main() prints a line and exits 0 or 1, the wasm build exports the
 * function (and qz_agree_first_failure) to a JS driver.
 *
 * Build with -DQZ_AGREE_TABLE=qz__kernels_neon (or _simd128); add
 * -DQZ_AGREE_NO_MAIN where there is no C library.
 *
 * Same checks and tolerance as tests/unit/test_distance.c (see there for
 * why the tolerance is what it is): lengths 0..1100, pointer offsets 0..3
 * elements, uniform / huge / tiny / mixed-magnitude data, Hamming exact;
 * f16 and asymmetric f32f16 kernels with the f32 tolerance on the widened
 * values, the u8 dot and the sq8 kernels bit for bit.
 */
#include <stddef.h>
#include <stdint.h>

#include "distance/distance.h"
#include "vector/codec.h"

#ifndef QZ_AGREE_TABLE
#error "define QZ_AGREE_TABLE, e.g. -DQZ_AGREE_TABLE=qz__kernels_neon"
#endif

#define MAX_LEN 1100

uint32_t qz_agree_run(void);
uint32_t qz_agree_first_failure(void);
uint32_t qz_agree_checks(void);

static float g_a[MAX_LEN + 4], g_b[MAX_LEN + 4];
static uint8_t g_p[MAX_LEN + 4], g_q[MAX_LEN + 4];
static uint16_t g_ha[MAX_LEN + 4], g_hb[MAX_LEN + 4];
static uint8_t g_ca[QZ__SQ8_HEADER + MAX_LEN + 4], g_cb[QZ__SQ8_HEADER + MAX_LEN + 4];
static uint64_t g_rng = 0xC0FFEE;
static uint32_t g_first_failure; /* metric * 100000 + n, 0 if none */
static uint32_t g_checks;

static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static float rng_value(int kind)
{
    float u = (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
    switch (kind) {
    case 1: return u * 1e16f;
    case 2: return u * 1e-20f;
    case 3: {
        int k = (int)(rng_next() % 41) - 20;
        float s = 1.0f;
        for (; k > 0; k--) s *= 2.0f;
        for (; k < 0; k++) s *= 0.5f;
        return u * s;
    }
    default: return u;
    }
}

static double dabs(double v)
{
    return v < 0 ? -v : v;
}

static int agrees(float got, float ref, double abs_sum, size_t n)
{
    double h = (double)n / 4.0 + 9.0;
    double bound = (h + 3.0) * 0x1p-24 * abs_sum + (double)(n + 16) * 0x1p-149;
    double allowed = 2.0 * bound + dabs((double)ref) * 0x1p-24;
    return got == got && dabs((double)got - (double)ref) <= allowed;
}

static uint32_t fail(uint32_t metric, size_t n)
{
    if (g_first_failure == 0) g_first_failure = metric * 100000u + (uint32_t)n;
    return 1;
}

uint32_t qz_agree_run(void)
{
    const qz__kernels *k = &QZ_AGREE_TABLE;
    const qz__kernels *s = &qz__kernels_scalar;
    uint32_t bad = 0;

    if (k->l2sq_f32(g_a, g_b, 0) != 0.0f || k->dot_f32(g_a, g_b, 0) != 0.0f ||
        k->hamming_b8(g_p, g_q, 0) != 0.0f || k->l2sq_f32f16(g_a, g_hb, 0) != 0.0f ||
        k->dot_f32f16(g_a, g_hb, 0) != 0.0f)
        bad += fail(9, 0);

    for (int kind = 0; kind < 4; kind++) {
        for (size_t n = 1; n <= MAX_LEN; n++) {
            for (size_t off = 0; off < 4; off++) {
                float *a = g_a + off, *b = g_b + (off + 1) % 4;
                double l2_abs = 0, dot_abs = 0;
                for (size_t i = 0; i < n; i++) {
                    a[i] = rng_value(kind);
                    b[i] = rng_value(kind);
                    double d = (double)a[i] - (double)b[i];
                    l2_abs += d * d;
                    dot_abs += dabs((double)a[i] * (double)b[i]);
                }
                if (!agrees(k->l2sq_f32(a, b, n), s->l2sq_f32(a, b, n), l2_abs, n))
                    bad += fail(1, n);
                if (!agrees(k->dot_f32(a, b, n), s->dot_f32(a, b, n), dot_abs, n))
                    bad += fail(2, n);
                g_checks += 2;
            }
        }
    }
    for (size_t n = 1; n <= MAX_LEN; n++) {
        for (size_t off = 0; off < 4; off++) {
            uint8_t *p = g_p + off, *q = g_q + (off + 2) % 4;
            for (size_t i = 0; i < n; i++) {
                p[i] = (uint8_t)rng_next();
                q[i] = (n % 2 == 0 && rng_next() % 4 != 0) ? p[i] : (uint8_t)rng_next();
            }
            if (k->hamming_b8(p, q, n) != s->hamming_b8(p, q, n)) bad += fail(3, n);
            for (size_t i = 0; i < n; i++) q[i] = (uint8_t)~p[i];
            if (k->hamming_b8(p, q, n) != (float)(8 * n)) bad += fail(4, n);
            g_checks += 2;
        }
    }
    for (int kind = 0; kind < 4; kind++) {
        for (size_t n = 1; n <= MAX_LEN; n++) {
            for (size_t off = 0; off < 4; off++) {
                uint16_t *a = g_ha + off, *b = g_hb + (off + 1) % 4;
                double l2_abs = 0, dot_abs = 0;
                for (size_t i = 0; i < n; i++) {
                    a[i] = qz__f32_to_f16(rng_value(kind));
                    b[i] = qz__f32_to_f16(rng_value(kind));
                    double x = qz__f16_to_f32(a[i]), y = qz__f16_to_f32(b[i]);
                    l2_abs += (x - y) * (x - y);
                    dot_abs += dabs(x * y);
                }
                if (!agrees(k->l2sq_f16(a, b, n), s->l2sq_f16(a, b, n), l2_abs, n)) bad += fail(5, n);
                if (!agrees(k->dot_f16(a, b, n), s->dot_f16(a, b, n), dot_abs, n)) bad += fail(6, n);
                g_checks += 2;
            }
        }
    }
    for (size_t n = 1; n <= MAX_LEN; n++) {
        for (size_t off = 0; off < 4; off++) {
            uint8_t *ca = g_ca + off, *cb = g_cb + (off + 3) % 4;
            /* a header as the encoder writes it, then random or all-255 bytes */
            float hx[4] = {0.01f, -1.0f, 0, 0}, hy[4] = {0.02f, 0.5f, 0, 0};
            __builtin_memcpy(ca, hx, sizeof hx);
            __builtin_memcpy(cb, hy, sizeof hy);
            for (size_t i = 0; i < n; i++) {
                ca[QZ__SQ8_HEADER + i] = n % 3 == 1 ? 255 : (uint8_t)rng_next();
                cb[QZ__SQ8_HEADER + i] = n % 3 == 1 ? 255 : (uint8_t)rng_next();
            }
            const uint8_t *qa = ca + QZ__SQ8_HEADER, *qb = cb + QZ__SQ8_HEADER;
            if (k->ip_u8(qa, qb, n) != s->ip_u8(qa, qb, n)) bad += fail(7, n);
            if (n % 3 == 1 && k->ip_u8(qa, qb, n) != (uint64_t)n * 65025u) bad += fail(7, n);
            if (!(k->l2sq_sq8(ca, cb, n) == s->l2sq_sq8(ca, cb, n)) || !(k->dot_sq8(ca, cb, n) == s->dot_sq8(ca, cb, n)))
                bad += fail(8, n);
            g_checks += 3;
        }
    }
    /* Asymmetric: f32 query values, f16 codes of values of the same kind. */
    for (int kind = 0; kind < 4; kind++) {
        for (size_t n = 1; n <= MAX_LEN; n++) {
            for (size_t off = 0; off < 4; off++) {
                float *a = g_a + off;
                uint16_t *b = g_hb + (off + 1) % 4;
                double l2_abs = 0, dot_abs = 0;
                for (size_t i = 0; i < n; i++) {
                    a[i] = rng_value(kind);
                    b[i] = qz__f32_to_f16(rng_value(kind));
                    double x = a[i], y = qz__f16_to_f32(b[i]);
                    l2_abs += (x - y) * (x - y);
                    dot_abs += dabs(x * y);
                }
                if (!agrees(k->l2sq_f32f16(a, b, n), s->l2sq_f32f16(a, b, n), l2_abs, n))
                    bad += fail(10, n);
                if (!agrees(k->dot_f32f16(a, b, n), s->dot_f32f16(a, b, n), dot_abs, n))
                    bad += fail(11, n);
                g_checks += 2;
            }
        }
    }
    return bad;
}

uint32_t qz_agree_first_failure(void)
{
    return g_first_failure;
}

uint32_t qz_agree_checks(void)
{
    return g_checks;
}

#ifndef QZ_AGREE_NO_MAIN
#include <stdio.h>

int main(void)
{
    uint32_t bad = qz_agree_run();
    printf("%s vs scalar: %u checks, %u disagreements", QZ_AGREE_TABLE.name,
           (unsigned)qz_agree_checks(), (unsigned)bad);
    if (bad != 0)
        printf(" (first: metric %u at n=%u)", (unsigned)(qz_agree_first_failure() / 100000u),
               (unsigned)(qz_agree_first_failure() % 100000u));
    printf("\n");
#ifdef QZ_AGREE_DISPATCH
    /* On the target the dispatcher must pick this table by itself. */
    if (qz__kernels_active() != &QZ_AGREE_TABLE) {
        printf("dispatcher picked %s, not %s\n", qz__kernels_active()->name, QZ_AGREE_TABLE.name);
        return 1;
    }
    printf("dispatcher picks %s\n", qz__kernels_active()->name);
#endif
    return bad == 0 ? 0 : 1;
}
#endif
