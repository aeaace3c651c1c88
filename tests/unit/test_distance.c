/*
 * test_distance.c - every distance kernel table this machine runs agrees
 * with the scalar reference, and the dispatcher picks and switches tables
 * as distance.h says.
 *
 * Tolerance of the float kernels. The scalar reference sums in double and
 * rounds once, so it is within half a float ulp of the exact value. A SIMD
 * kernel sums in float: every table has at least 4 lanes, so a lane adds at
 * most ceil(n/4) + 3 terms and the lanes meet in a tree of depth <= 6. With
 * u = 2^-24 the textbook bound for such a sum is
 *     |got - exact| <= (h + 3) * u * sum|t_i|,   h = n/4 + 9,
 * where t_i are the terms (a_i - b_i)^2 or a_i * b_i and the extra 3 covers
 * the rounded difference, the rounded product (wasm has no FMA) and the
 * final rounding. For l2 all terms are positive, so this is a relative bound
 * on the result; for dot it is relative to sum|a_i b_i|, because with mixed
 * signs the result itself can cancel to almost nothing. Subnormal products
 * (the tiny-magnitude data) lose up to 2^-150 absolute per rounding, hence
 * (n + 16) * 2^-149. We allow twice the bound: a kernel that drops or
 * repeats one element is off by about sum|t_i| / n, which for n <= 1100 is
 * still more than 5 times the allowance, so real bugs are caught.
 * Hamming counts are integers and must match exactly.
 *
 * The f16 kernels widen to f32 and then sum like the f32 ones: the same
 * bound, on the terms of the widened values. The asymmetric f32f16 kernels
 * widen only the code's side (exactly: every binary16 value is a float) and
 * then sum like the f32 kernels, so again the same bound, on the terms
 * (a_i - w_i)^2 or a_i * w_i of the f32 values a_i and the widened codes
 * w_i. The u8 dot product is an
 * exact integer in every table, and the sq8 kernels combine it with the
 * codes' headers the same way everywhere (vector/codec.h), so both must
 * match scalar bit for bit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distance/distance.h"
#include "vector/codec.h"

#define MAX_LEN 1100
#define MAX_TABLES 16

static const char *g_argv0;

/* ---- fixed-seed data ---------------------------------------------------- */

static uint64_t g_rng;

static void rng_seed(uint64_t s)
{
    g_rng = s;
}

/* splitmix64: tiny, fast, and the same sequence on every platform. */
static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_unit(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

typedef enum data_kind {
    DATA_UNIT,     /* uniform [-1, 1) */
    DATA_LARGE,    /* ~1e16: squares near 1e32, sums stay finite */
    DATA_SMALL,    /* ~1e-20: products are subnormal */
    DATA_MIXED,    /* each element scaled by 2^k, k in [-20, 20] */
    DATA_POSITIVE, /* [0, 1): no cancellation in dot */
    DATA_KINDS
} data_kind;

static const char *const g_kind_names[DATA_KINDS] = {"unit", "large", "small", "mixed",
                                                     "positive"};

static float rng_value(data_kind kind)
{
    float u = rng_unit();
    switch (kind) {
    case DATA_LARGE: return u * 1e16f;
    case DATA_SMALL: return u * 1e-20f;
    case DATA_MIXED: {
        int k = (int)(rng_next() % 41) - 20;
        float s = 1.0f;
        for (; k > 0; k--) s *= 2.0f;
        for (; k < 0; k++) s *= 0.5f;
        return u * s;
    }
    case DATA_POSITIVE: return u < 0 ? -u : u;
    default: return u;
    }
}

/* ---- helpers ------------------------------------------------------------ */

static double dabs(double v)
{
    return v < 0 ? -v : v;
}

static size_t tables(const qz__kernels **out)
{
    size_t n = qz__kernels_list(out, MAX_TABLES);
    assert_true(n >= 1);
    return n;
}

/* Floats allocated so that the last one ends the allocation: AddressSanitizer
 * then flags any plain load past element n - 1. off shifts the start by off
 * floats from malloc's alignment, so off = 1..3 gives 4, 8, 12-byte offsets. */
static float *alloc_floats(size_t off, size_t n, void **block)
{
    *block = malloc((off + n) * sizeof(float) + 1);
    assert_non_null(*block);
    return (float *)*block + off;
}

static int agrees(float got, float ref, double abs_sum, size_t n)
{
    double h = (double)n / 4.0 + 9.0;
    double bound = (h + 3.0) * 0x1p-24 * abs_sum + (double)(n + 16) * 0x1p-149;
    double allowed = 2.0 * bound + dabs((double)ref) * 0x1p-24;
    return got == got && dabs((double)got - (double)ref) <= allowed;
}

typedef enum metric { M_L2, M_DOT } metric;

static qz__dist_fn pick(const qz__kernels *k, metric m)
{
    return m == M_L2 ? k->l2sq_f32 : k->dot_f32;
}

/* Sweeps every table against scalar for lengths 1..MAX_LEN, four pointer
 * offsets for each of a and b, and every data kind. */
static void sweep_float(metric m)
{
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    qz__dist_fn ref_fn = pick(&qz__kernels_scalar, m);
    size_t checked = 0;

    rng_seed(m == M_L2 ? 0x1234 : 0x5678);
    for (int kind = 0; kind < DATA_KINDS; kind++) {
        for (size_t n = 1; n <= MAX_LEN; n++) {
            for (size_t off = 0; off < 4; off++) {
                void *ba, *bb;
                float *a = alloc_floats(off, n, &ba);
                float *b = alloc_floats((off + 1) % 4, n, &bb);
                double abs_sum = 0.0;
                for (size_t i = 0; i < n; i++) {
                    a[i] = rng_value((data_kind)kind);
                    b[i] = rng_value((data_kind)kind);
                    double t = m == M_L2 ? ((double)a[i] - b[i]) * ((double)a[i] - b[i])
                                         : (double)a[i] * b[i];
                    abs_sum += dabs(t);
                }
                float ref = ref_fn(a, b, n);
                for (size_t t = 0; t < ntab; t++) {
                    float got = pick(tab[t], m)(a, b, n);
                    if (!agrees(got, ref, abs_sum, n)) {
                        print_error("%s %s: n=%zu off=%zu data=%s got %.9g want %.9g "
                                    "(sum|t|=%.9g)\n",
                                    tab[t]->name, m == M_L2 ? "l2sq" : "dot", n, off,
                                    g_kind_names[kind], (double)got, (double)ref, abs_sum);
                        fail();
                    }
                    checked++;
                }
                free(ba);
                free(bb);
            }
        }
    }
    assert_true(checked >= (size_t)DATA_KINDS * MAX_LEN * 4);
}

/* ---- tests -------------------------------------------------------------- */

static void every_kernel_matches_scalar_l2_for_lengths_1_to_1100(void **state)
{
    (void)state;
    sweep_float(M_L2);
}

static void every_kernel_matches_scalar_dot_for_lengths_1_to_1100(void **state)
{
    (void)state;
    sweep_float(M_DOT);
}

static void every_kernel_matches_scalar_hamming_exactly_for_byte_lengths_1_to_1100(
    void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    rng_seed(0x9abc);
    for (size_t n = 1; n <= MAX_LEN; n++) {
        for (size_t off = 0; off < 4; off++) {
            /* Exact-fit, offset by off bytes and (off+2)%4 bytes. */
            uint8_t *ba = malloc(off + n);
            uint8_t *bb = malloc((off + 2) % 4 + n);
            assert_non_null(ba);
            assert_non_null(bb);
            uint8_t *a = ba + off, *b = bb + (off + 2) % 4;
            /* Sparse differences on even lengths, dense on odd ones. */
            for (size_t i = 0; i < n; i++) {
                a[i] = (uint8_t)rng_next();
                b[i] = (n % 2 == 0 && rng_next() % 4 != 0) ? a[i] : (uint8_t)rng_next();
            }
            float ref = qz__kernels_scalar.hamming_b8(a, b, n);
            for (size_t t = 0; t < ntab; t++) {
                float got = tab[t]->hamming_b8(a, b, n);
                if (got != ref) {
                    print_error("%s hamming: n=%zu off=%zu got %.1f want %.1f\n", tab[t]->name,
                                n, off, (double)got, (double)ref);
                    fail();
                }
            }
            free(ba);
            free(bb);
        }
    }
}

static void every_kernel_returns_zero_for_length_zero(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    for (size_t t = 0; t < ntab; t++) {
        assert_true(tab[t]->l2sq_f32(a, b, 0) == 0.0f);
        assert_true(tab[t]->dot_f32(a, b, 0) == 0.0f);
        assert_true(tab[t]->hamming_b8(a, b, 0) == 0.0f);
        assert_true(tab[t]->l2sq_f16(a, b, 0) == 0.0f);
        assert_true(tab[t]->dot_f16(a, b, 0) == 0.0f);
        assert_true(tab[t]->l2sq_f32f16(a, b, 0) == 0.0f);
        assert_true(tab[t]->dot_f32f16(a, b, 0) == 0.0f);
        assert_true(tab[t]->ip_u8((const uint8_t *)a, (const uint8_t *)b, 0) == 0);
    }
}

static void every_kernel_gives_known_answers_exactly(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    const float a[3] = {1, 2, 3}, b[3] = {4, 6, 8}, c[3] = {4, 5, 6};
    const uint8_t p[3] = {0x0F, 0xF0, 0xFF}, q[3] = {0x00, 0x00, 0x0F};
    /* 40 floats: i and 40 - i; every partial sum is a small integer. */
    float u[40], v[40];
    for (int i = 0; i < 40; i++) {
        u[i] = (float)i;
        v[i] = (float)(40 - i);
    }
    for (size_t t = 0; t < ntab; t++) {
        assert_true(tab[t]->l2sq_f32(a, b, 3) == 50.0f);
        assert_true(tab[t]->dot_f32(a, c, 3) == 32.0f);
        assert_true(tab[t]->hamming_b8(p, q, 3) == 12.0f);
        assert_true(tab[t]->l2sq_f32(u, v, 40) == 21360.0f);
        assert_true(tab[t]->dot_f32(u, v, 40) == 10660.0f);
    }
}

static void l2_of_identical_vectors_is_exactly_zero(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    rng_seed(42);
    float *a = malloc(MAX_LEN * sizeof(float));
    assert_non_null(a);
    for (size_t i = 0; i < MAX_LEN; i++) a[i] = rng_value(DATA_MIXED);
    for (size_t t = 0; t < ntab; t++)
        for (size_t n = 1; n <= MAX_LEN; n += 7) assert_true(tab[t]->l2sq_f32(a, a, n) == 0.0f);
    free(a);
}

static void hamming_counts_every_bit_of_complementary_vectors(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    uint8_t a[MAX_LEN], b[MAX_LEN];
    rng_seed(7);
    for (size_t i = 0; i < MAX_LEN; i++) {
        a[i] = (uint8_t)rng_next();
        b[i] = (uint8_t)~a[i];
    }
    for (size_t t = 0; t < ntab; t++) {
        for (size_t n = 1; n <= MAX_LEN; n++) {
            assert_true(tab[t]->hamming_b8(a, b, n) == (float)(8 * n));
            assert_true(tab[t]->hamming_b8(a, a, n) == 0.0f);
        }
    }
}

/* Masked vector loads are invisible to AddressSanitizer, so also check that
 * nothing after element n - 1 reaches the result: the data is followed by
 * NaNs (floats) or by bytes that differ in every bit (Hamming). */
static void kernels_ignore_everything_past_the_last_element(void **state)
{
    (void)state;
    enum { PAD = 80 };
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    float *a = malloc((MAX_LEN + PAD) * sizeof(float));
    float *b = malloc((MAX_LEN + PAD) * sizeof(float));
    uint8_t *p = malloc(MAX_LEN + PAD), *q = malloc(MAX_LEN + PAD);
    assert_true(a && b && p && q);
    rng_seed(99);
    for (size_t n = 1; n <= 300; n++) {
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_unit();
            b[i] = rng_unit();
            p[i] = (uint8_t)rng_next();
            q[i] = (uint8_t)rng_next();
        }
        for (size_t t = 0; t < ntab; t++) {
            /* Reference: the same kernel on the same values, clean padding. */
            for (size_t i = n; i < n + PAD; i++) a[i] = b[i] = 0.0f, p[i] = q[i] = 0;
            float l2 = tab[t]->l2sq_f32(a, b, n), dot = tab[t]->dot_f32(a, b, n);
            float ham = tab[t]->hamming_b8(p, q, n);
            for (size_t i = n; i < n + PAD; i++) {
                a[i] = b[i] = (float)NAN;
                p[i] = 0x00;
                q[i] = 0xFF;
            }
            if (tab[t]->l2sq_f32(a, b, n) != l2 || tab[t]->dot_f32(a, b, n) != dot ||
                tab[t]->hamming_b8(p, q, n) != ham) {
                print_error("%s reads past the end at n=%zu\n", tab[t]->name, n);
                fail();
            }
        }
    }
    free(a);
    free(b);
    free(p);
    free(q);
}


/* ---- f16, u8 and sq8 kernels --------------------------------------------- */

static uint16_t *alloc_halves(size_t off, size_t n, void **block)
{
    *block = malloc((off + n) * sizeof(uint16_t) + 1);
    assert_non_null(*block);
    return (uint16_t *)*block + off;
}

/* The f16 kernels (asym 0: both sides f16) and the asymmetric ones (asym 1:
 * a is f32, unrounded query values; b f16 codes of independent values of
 * the same kind), every table against scalar. */
static qz__dist_fn half_kernel(const qz__kernels *k, metric m, int asym)
{
    if (asym) return m == M_L2 ? k->l2sq_f32f16 : k->dot_f32f16;
    return m == M_L2 ? k->l2sq_f16 : k->dot_f16;
}

static void sweep_half(metric m, int asym)
{
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    qz__dist_fn ref_fn = half_kernel(&qz__kernels_scalar, m, asym);
    size_t checked = 0;
    rng_seed(asym ? (m == M_L2 ? 0x3216 : 0x6123) : (m == M_L2 ? 0x1616 : 0x6161));
    for (int kind = 0; kind < DATA_KINDS; kind++) {
        for (size_t n = 1; n <= MAX_LEN; n++) {
            for (size_t off = 0; off < 4; off++) {
                void *ba, *bb;
                /* odd offsets of halves: 2-byte aligned only */
                float *af = asym ? alloc_floats(off, n, &ba) : NULL;
                uint16_t *ah = asym ? NULL : alloc_halves(off, n, &ba);
                uint16_t *b = alloc_halves((off + 1) % 4, n, &bb);
                double abs_sum = 0.0;
                for (size_t i = 0; i < n; i++) {
                    double x;
                    if (asym) {
                        af[i] = rng_value((data_kind)kind);
                        x = af[i];
                    } else {
                        ah[i] = qz__f32_to_f16(rng_value((data_kind)kind));
                        x = qz__f16_to_f32(ah[i]);
                    }
                    b[i] = qz__f32_to_f16(rng_value((data_kind)kind));
                    double y = qz__f16_to_f32(b[i]);
                    abs_sum += dabs(m == M_L2 ? (x - y) * (x - y) : x * y);
                }
                const void *a = asym ? (const void *)af : (const void *)ah;
                float ref = ref_fn(a, b, n);
                for (size_t t = 0; t < ntab; t++) {
                    float got = half_kernel(tab[t], m, asym)(a, b, n);
                    if (!agrees(got, ref, abs_sum, n)) {
                        print_error("%s %s_%s: n=%zu off=%zu data=%s got %.9g want %.9g\n", tab[t]->name,
                                    m == M_L2 ? "l2sq" : "dot", asym ? "f32f16" : "f16", n, off,
                                    g_kind_names[kind], (double)got, (double)ref);
                        fail();
                    }
                    checked++;
                }
                free(ba);
                free(bb);
            }
        }
    }
    assert_true(checked >= (size_t)DATA_KINDS * MAX_LEN * 4);
}

static void every_kernel_matches_scalar_f16_l2_for_lengths_1_to_1100(void **state)
{
    (void)state;
    sweep_half(M_L2, 0);
}

static void every_kernel_matches_scalar_f16_dot_for_lengths_1_to_1100(void **state)
{
    (void)state;
    sweep_half(M_DOT, 0);
}

static void every_kernel_matches_scalar_f32f16_l2_for_lengths_1_to_1100(void **state)
{
    (void)state;
    sweep_half(M_L2, 1);
}

static void every_kernel_matches_scalar_f32f16_dot_for_lengths_1_to_1100(void **state)
{
    (void)state;
    sweep_half(M_DOT, 1);
}

static void every_kernel_matches_scalar_u8_dot_and_sq8_exactly_for_lengths_1_to_1100(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    rng_seed(0x0808);
    float *fx = malloc(MAX_LEN * sizeof(float)), *fy = malloc(MAX_LEN * sizeof(float));
    assert_true(fx && fy);
    for (size_t n = 1; n <= MAX_LEN; n++) {
        for (size_t off = 0; off < 4; off++) {
            /* codes (header + n bytes) that end their allocations, at byte offsets off, (off+3)%4 */
            uint8_t *ba = malloc(off + QZ__SQ8_HEADER + n), *bb = malloc((off + 3) % 4 + QZ__SQ8_HEADER + n);
            assert_true(ba && bb);
            uint8_t *ca = ba + off, *cb = bb + (off + 3) % 4;
            int mode = (int)(n % 3); /* 0: random bytes, 1: all 255 (largest sums), 2: sparse */
            for (size_t i = 0; i < n; i++) {
                fx[i] = rng_unit();
                fy[i] = (float)(rng_unit() * 3.0 + 0.5);
            }
            qz__sq8_encode(fx, n, ca);
            qz__sq8_encode(fy, n, cb);
            uint8_t *qa = ca + QZ__SQ8_HEADER, *qb = cb + QZ__SQ8_HEADER;
            for (size_t i = 0; i < n; i++) {
                if (mode == 1) qa[i] = qb[i] = 255;
                if (mode == 2 && rng_next() % 4) qa[i] = 0;
            }
            uint64_t ref = qz__kernels_scalar.ip_u8(qa, qb, n);
            float rl2 = qz__kernels_scalar.l2sq_sq8(ca, cb, n), rdot = qz__kernels_scalar.dot_sq8(ca, cb, n);
            if (mode == 1) assert_true(ref == (uint64_t)n * 65025u);
            for (size_t t = 0; t < ntab; t++) {
                uint64_t got = tab[t]->ip_u8(qa, qb, n);
                float l2 = tab[t]->l2sq_sq8(ca, cb, n), dot = tab[t]->dot_sq8(ca, cb, n);
                if (got != ref || !(l2 == rl2) || !(dot == rdot)) {
                    print_error("%s u8/sq8: n=%zu off=%zu mode=%d ip %llu want %llu, l2 %.9g/%.9g dot %.9g/%.9g\n",
                                tab[t]->name, n, off, mode, (unsigned long long)got, (unsigned long long)ref,
                                (double)l2, (double)rl2, (double)dot, (double)rdot);
                    fail();
                }
            }
            free(ba);
            free(bb);
        }
    }
    free(fx);
    free(fy);
}

/* Recompute the header's Q (sum of the bytes) of a code whose bytes were set by hand. */
static void sq8_fix_q(uint8_t *code, size_t n)
{
    qz__sq8_head h = qz__sq8_head_get(code);
    double q = 0;
    for (size_t i = 0; i < n; i++) q += code[QZ__SQ8_HEADER + i];
    h.q = (float)q;
    memcpy(code, &h, sizeof h);
}

/* The prepared-query kernels (a query code with its bytes flipped to
 * q - 128) give exactly what the symmetric scalar kernels give on the
 * unprepared code, in every table that has them; scalar has them. */
static void prepared_query_sq8_kernels_match_scalar_exactly_for_lengths_1_to_1100(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    assert_non_null(qz__kernels_scalar.l2sq_sq8q);
    assert_non_null(qz__kernels_scalar.dot_sq8q);
    rng_seed(0x5818);
    float *fx = malloc(MAX_LEN * sizeof(float)), *fy = malloc(MAX_LEN * sizeof(float));
    assert_true(fx && fy);
    size_t checked = 0;
    for (size_t n = 1; n <= MAX_LEN; n++) {
        for (size_t off = 0; off < 4; off++) {
            uint8_t *ba = malloc(off + QZ__SQ8_HEADER + n), *bb = malloc((off + 1) % 4 + QZ__SQ8_HEADER + n);
            uint8_t *bp = malloc((off + 2) % 4 + QZ__SQ8_HEADER + n);
            assert_true(ba && bb && bp);
            uint8_t *ca = ba + off, *cb = bb + (off + 1) % 4, *pa = bp + (off + 2) % 4;
            int mode = (int)(n % 3); /* 0: encoded data, 1: every byte 255 (largest sums), 2: a sparse query */
            for (size_t i = 0; i < n; i++) {
                fx[i] = rng_unit();
                fy[i] = (float)(rng_unit() * 3.0 + 0.5);
            }
            qz__sq8_encode(fx, n, ca);
            qz__sq8_encode(fy, n, cb);
            for (size_t i = 0; i < n; i++) {
                if (mode == 1) ca[QZ__SQ8_HEADER + i] = cb[QZ__SQ8_HEADER + i] = 255;
                if (mode == 2 && rng_next() % 4) ca[QZ__SQ8_HEADER + i] = 0;
            }
            sq8_fix_q(ca, n);
            sq8_fix_q(cb, n);
            memcpy(pa, ca, QZ__SQ8_HEADER + n);
            qz__sq8_prepare(pa, n);
            float rl2 = qz__kernels_scalar.l2sq_sq8(ca, cb, n), rdot = qz__kernels_scalar.dot_sq8(ca, cb, n);
            for (size_t t = 0; t < ntab; t++) {
                if (!tab[t]->l2sq_sq8q || !tab[t]->dot_sq8q) {
                    assert_true(!tab[t]->l2sq_sq8q && !tab[t]->dot_sq8q); /* both or neither */
                    continue;
                }
                float l2 = tab[t]->l2sq_sq8q(pa, cb, n), dot = tab[t]->dot_sq8q(pa, cb, n);
                checked++;
                if (!(l2 == rl2) || !(dot == rdot)) {
                    print_error("%s sq8q: n=%zu off=%zu mode=%d l2 %.9g want %.9g, dot %.9g want %.9g\n",
                                tab[t]->name, n, off, mode, (double)l2, (double)rl2, (double)dot, (double)rdot);
                    fail();
                }
            }
            free(ba);
            free(bb);
            free(bp);
        }
    }
    assert_true(checked >= MAX_LEN * 4); /* scalar at least */
    for (size_t t = 0; t < ntab; t++)
        if (tab[t]->l2sq_sq8q) assert_true(tab[t]->l2sq_sq8q(fx, fy, 0) == 0.0f && tab[t]->dot_sq8q(fx, fy, 0) == 0.0f);
    free(fx);
    free(fy);
}

static void u8_dot_is_exact_at_the_largest_dimension(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    size_t n = 65536;
    uint8_t *a = malloc(n), *b = malloc(n);
    assert_true(a && b);
    memset(a, 255, n);
    memset(b, 255, n);
    for (size_t t = 0; t < ntab; t++) assert_true(tab[t]->ip_u8(a, b, n) == (uint64_t)n * 65025u);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 7);
    uint64_t ref = qz__kernels_scalar.ip_u8(a, b, n);
    for (size_t t = 0; t < ntab; t++) assert_true(tab[t]->ip_u8(a, b, n) == ref);
    free(a);
    free(b);
}

/* The sq8 distance is the distance of the decoded vectors (o + s * q), and
 * decoding is within s/2 of the input per component. */
static void sq8_codes_decode_within_half_a_step_and_kernels_measure_the_decoded_vectors(void **state)
{
    (void)state;
    rng_seed(0x5eed);
    enum { N = 300 };
    float x[N], y[N];
    uint8_t cx[QZ__SQ8_HEADER + N], cy[QZ__SQ8_HEADER + N];
    for (int rep = 0; rep < 200; rep++) {
        size_t n = 1 + rng_next() % N;
        double scale = rep % 3 == 0 ? 1e-3 : rep % 3 == 1 ? 1.0 : 300.0, shift = rep % 2 ? 1000.0 : 0.0;
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)(rng_unit() * scale + shift);
            y[i] = (float)(rng_unit() * scale + shift);
        }
        qz__sq8_encode(x, n, cx);
        qz__sq8_encode(y, n, cy);
        qz__sq8_head hx = qz__sq8_head_get(cx), hy = qz__sq8_head_get(cy);
        double dl2 = 0, ddot = 0;
        for (size_t i = 0; i < n; i++) {
            double a = (double)hx.o + (double)hx.s * cx[QZ__SQ8_HEADER + i];
            double b = (double)hy.o + (double)hy.s * cy[QZ__SQ8_HEADER + i];
            assert_true(dabs(a - x[i]) <= hx.s * 0.5 * (1 + 1e-5) + dabs(x[i]) * 1e-6);
            dl2 += (a - b) * (a - b);
            ddot += a * b;
        }
        float l2 = qz__kernels_scalar.l2sq_sq8(cx, cy, n), dot = qz__kernels_scalar.dot_sq8(cx, cy, n);
        /* dot: relative; l2 from norms and dot: relative to the norms (cancellation) */
        double norms = (double)hx.n2 + (double)hy.n2;
        assert_true(dabs(dot - ddot) <= 1e-6 * (dabs(ddot) + norms) + 1e-30);
        assert_true(dabs(l2 - dl2) <= 1e-6 * norms + 1e-30);
        /* identical codes are at distance 0 up to that rounding */
        assert_true(qz__kernels_scalar.l2sq_sq8(cx, cx, n) <= 1e-6 * hx.n2 + 1e-30);
    }
}

/* The encoder as first written: branches, double sums. The library's is
 * branch-free so that it vectorizes; it must give the same bytes and
 * header on every input, extremes included. */
static void sq8_encode_reference(const float *x, size_t n, uint8_t *out)
{
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    double range = (double)hi - (double)lo;
    double s = range > 0 ? range / 255.0 : 0.0, inv = range > 0 ? 255.0 / range : 0.0;
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        long v = (long)(((double)x[i] - lo) * inv + 0.5);
        if (v < 0) v = 0;
        if (v > 255) v = 255;
        out[QZ__SQ8_HEADER + i] = (uint8_t)v;
        sum += (double)v;
        sum2 += (double)v * (double)v;
    }
    qz__sq8_head h = {(float)s, lo, (float)sum, 0};
    double fs = h.s, fo = h.o, n2 = (double)n * fo * fo + 2.0 * fo * fs * sum + fs * fs * sum2;
    h.n2 = n2 <= FLT_MAX ? (float)n2 : FLT_MAX;
    memcpy(out, &h, sizeof h);
}

static void every_sq8_encoder_gives_the_reference_bytes_on_extreme_inputs(void **state)
{
    (void)state;
    rng_seed(0xe8c0de);
    enum { N = 1100 };
    static float x[N], xu[N + 1];
    static uint8_t got[QZ__SQ8_HEADER + N], want[QZ__SQ8_HEADER + N];
    const float special[] = {0.0f, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 0x1p-149f, -0x1p-149f, 1.0f, -1.0f};
    for (int rep = 0; rep < 600; rep++) {
        size_t n = 1 + rng_next() % (rep < 300 ? 40 : N);
        int kind = rep % 5;
        for (size_t i = 0; i < n; i++) {
            double u = rng_unit() * 2 - 1;
            switch (kind) {
            case 0: x[i] = (float)u; break;                                             /* ordinary */
            case 1: x[i] = (float)(u * 1e38); break;                                    /* huge, both signs */
            case 2: x[i] = (float)(u * 1e-40); break;                                   /* subnormal */
            case 3: x[i] = special[rng_next() % (sizeof special / sizeof *special)]; break; /* extremes, -0 */
            default: x[i] = (float)(rng_next() % 3) - 1.0f; break;                     /* few values, ties */
            }
        }
        if (rep % 37 == 0)
            for (size_t i = 0; i < n; i++) x[i] = -2.5f; /* constant: range 0 */
        memset(want, 0x5a, sizeof want);
        sq8_encode_reference(x, n, want);
        memset(got, 0xa5, sizeof got);
        qz__sq8_encode(x, n, got);
        if (memcmp(got, want, QZ__SQ8_HEADER + n) != 0) {
            print_error("rep %d kind %d n %zu: codes differ\n", rep, kind, n);
            fail();
        }
        /* every table's encoder (the ISA builds of the same loops), from
         * an unaligned copy of the input too */
        const qz__kernels *t[16];
        size_t nt = qz__kernels_list(t, 16);
        for (size_t j = 0; j < nt; j++) {
            memcpy(xu + 1, x, n * sizeof *x);
            for (int u = 0; u < 2; u++) {
                memset(got, 0xa5, sizeof got);
                qz__kernels_sq8_encode(t[j])(u ? xu + 1 : x, n, got);
                if (memcmp(got, want, QZ__SQ8_HEADER + n) != 0) {
                    print_error("%s encoder, rep %d kind %d n %zu%s: codes differ\n", t[j]->name, rep, kind, n,
                                u ? " (unaligned)" : "");
                    fail();
                }
            }
        }
    }
}

static void f16_conversion_round_trips_every_half_and_saturates(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t v = (uint16_t)h;
        if ((v & 0x7c00u) == 0x7c00u && (v & 0x3ffu)) continue; /* NaN */
        if ((v & 0x7fffu) == 0x7c00u) continue;                  /* inf: encode saturates it */
        float f = qz__f16_to_f32(v);
        if (qz__f32_to_f16(f) != v) {
            print_error("half 0x%04x -> %.9g -> 0x%04x\n", h, (double)f, qz__f32_to_f16(f));
            fail();
        }
    }
    assert_true(qz__f32_to_f16(1e9f) == 0x7bffu);
    assert_true(qz__f32_to_f16(-1e9f) == 0xfbffu);
    assert_true(qz__f32_to_f16(65519.0f) == 0x7bffu); /* rounds down to 65504 */
    assert_true(qz__f32_to_f16(65520.0f) == 0x7bffu); /* would round to inf: saturates */
    assert_true(qz__f32_to_f16(1.0f + 0x1p-11f) == 0x3c00u); /* tie: even */
    assert_true(qz__f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02u); /* tie: even, up */
    assert_true(qz__f32_to_f16(0x1p-25f) == 0);                    /* tie at half the smallest: even (0) */
    assert_true(qz__f32_to_f16(0x1.8p-25f) == 1);
    assert_true(qz__f32_to_f16(-0.0f) == 0x8000u);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif

static void f16_encoding_matches_the_cpu_on_random_floats(void **state)
{
    (void)state;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("f16c")) {
        print_message("SKIP: no F16C on this CPU\n");
        skip();
    }
    rng_seed(0xf16c);
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)rng_next();
        /* exponents around the f16 range (2^-26 .. 2^17) */
        bits = (bits & 0x807fffffu) | ((uint32_t)(101 + rng_next() % 43) << 23);
        float f;
        memcpy(&f, &bits, 4);
        uint16_t want = hw_f32_to_f16(f);
        if ((want & 0x7fffu) == 0x7c00u) want = (uint16_t)((want & 0x8000u) | 0x7bffu); /* we saturate */
        if (qz__f32_to_f16(f) != want) {
            print_error("%a: got 0x%04x, F16C 0x%04x\n", (double)f, qz__f32_to_f16(f), want);
            fail();
        }
    }
#else
    print_message("SKIP: not x86-64\n");
    skip();
#endif
}

static void f16_and_u8_kernels_ignore_everything_past_the_last_element(void **state)
{
    (void)state;
    enum { PAD = 80 };
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    uint16_t *a = malloc((MAX_LEN + PAD) * 2), *b = malloc((MAX_LEN + PAD) * 2);
    uint8_t *p = malloc(MAX_LEN + PAD), *q = malloc(MAX_LEN + PAD);
    float *f = malloc((MAX_LEN + PAD) * sizeof(float)); /* the f32 side of the f32f16 kernels */
    assert_true(a && b && p && q && f);
    rng_seed(98);
    for (size_t n = 1; n <= 300; n++) {
        for (size_t i = 0; i < n; i++) {
            a[i] = qz__f32_to_f16(rng_unit());
            b[i] = qz__f32_to_f16(rng_unit());
            p[i] = (uint8_t)rng_next();
            q[i] = (uint8_t)rng_next();
            f[i] = rng_unit();
        }
        for (size_t t = 0; t < ntab; t++) {
            for (size_t i = n; i < n + PAD; i++) a[i] = b[i] = 0, p[i] = q[i] = 0, f[i] = 0.0f;
            float l2 = tab[t]->l2sq_f16(a, b, n), dot = tab[t]->dot_f16(a, b, n);
            float l2a = tab[t]->l2sq_f32f16(f, b, n), dota = tab[t]->dot_f32f16(f, b, n);
            uint64_t ip = tab[t]->ip_u8(p, q, n);
            for (size_t i = n; i < n + PAD; i++) {
                a[i] = b[i] = 0x7e00u; /* NaN */
                p[i] = q[i] = 0xFF;
                f[i] = (float)NAN;
            }
            if (tab[t]->l2sq_f16(a, b, n) != l2 || tab[t]->dot_f16(a, b, n) != dot || tab[t]->ip_u8(p, q, n) != ip) {
                print_error("%s f16/u8 reads past the end at n=%zu\n", tab[t]->name, n);
                fail();
            }
            if (tab[t]->l2sq_f32f16(f, b, n) != l2a || tab[t]->dot_f32f16(f, b, n) != dota) {
                print_error("%s f32f16 reads past the end at n=%zu\n", tab[t]->name, n);
                fail();
            }
        }
    }
    free(a);
    free(b);
    free(p);
    free(q);
    free(f);
}

static void list_is_best_first_ends_with_scalar_and_matches_get(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    assert_ptr_equal(tab[ntab - 1], &qz__kernels_scalar);
    for (size_t t = 0; t < ntab; t++) {
        assert_ptr_equal(qz__kernels_get(tab[t]->name), tab[t]);
        assert_non_null(tab[t]->l2sq_f32);
        assert_non_null(tab[t]->dot_f32);
        assert_non_null(tab[t]->hamming_b8);
        assert_non_null(tab[t]->l2sq_f32f16);
        assert_non_null(tab[t]->dot_f32f16);
        print_message("kernel table %zu: %s\n", t, tab[t]->name);
    }
    assert_null(qz__kernels_get("no-such-isa"));
    assert_null(qz__kernels_get(NULL));
    const qz__kernels *one[1];
    assert_int_equal(qz__kernels_list(one, 1), 1);
    assert_ptr_equal(one[0], tab[0]);
    assert_int_equal(qz__kernels_list(one, 0), 0);
}

static void force_switches_the_active_table_and_refuses_unknown_names(void **state)
{
    (void)state;
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    assert_non_null(qz__kernels_active());
    for (size_t t = ntab; t-- > 0;) {
        assert_int_equal(qz__kernels_force(tab[t]->name), 0);
        assert_ptr_equal(qz__kernels_active(), tab[t]);
    }
    /* Unknown and not-runnable-here names change nothing. */
    static const char *const every_isa[] = {"avx512vnni", "avx512vpopcnt", "avx512", "avx2", "neon",
                                            "simd128", "scalar"};
    for (size_t i = 0; i < sizeof every_isa / sizeof every_isa[0]; i++)
        if (qz__kernels_get(every_isa[i]) == NULL)
            assert_int_equal(qz__kernels_force(every_isa[i]), -1);
    assert_int_equal(qz__kernels_force("bogus"), -1);
    assert_int_equal(qz__kernels_force(NULL), -1);
    assert_ptr_equal(qz__kernels_active(), tab[0]);
}

/* Runs this program again as a child with QZ_SIMD set; the child checks the
 * table it got on first use (see main). */
static int child_reports(const char *qz_simd, const char *expect)
{
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, "QZ_SIMD='%s' '%s' --expect-active '%s'", qz_simd,
                       g_argv0, expect);
    assert_true(len > 0 && (size_t)len < sizeof cmd);
    return system(cmd) == 0;
}

static void qz_simd_environment_variable_picks_a_lower_table_at_first_use(void **state)
{
    (void)state;
    if (g_argv0 == NULL || strchr(g_argv0, '\'') != NULL || system(NULL) == 0) {
        skip();
        return;
    }
    const qz__kernels *tab[MAX_TABLES];
    size_t ntab = tables(tab);
    for (size_t t = 0; t < ntab; t++) assert_true(child_reports(tab[t]->name, tab[t]->name));
    /* An unknown name, or one this CPU cannot run, leaves the best table. */
    assert_true(child_reports("bogus", tab[0]->name));
    assert_true(child_reports("", tab[0]->name));
    static const char *const every_isa[] = {"avx512vnni", "avx512vpopcnt", "avx512", "avx2", "neon",
                                            "simd128"};
    for (size_t i = 0; i < sizeof every_isa / sizeof every_isa[0]; i++)
        if (qz__kernels_get(every_isa[i]) == NULL)
            assert_true(child_reports(every_isa[i], tab[0]->name));
    /* The self-check works: a wrong expectation is reported as a failure. */
    assert_false(child_reports("scalar", "no-such-isa"));
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--expect-active") == 0) {
        /* Child mode: the first call into the dispatcher happens here. */
        return strcmp(qz__kernels_active()->name, argv[2]) == 0 ? 0 : 1;
    }
    g_argv0 = argc > 0 ? argv[0] : NULL;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_is_best_first_ends_with_scalar_and_matches_get),
        cmocka_unit_test(every_kernel_returns_zero_for_length_zero),
        cmocka_unit_test(every_kernel_gives_known_answers_exactly),
        cmocka_unit_test(every_kernel_matches_scalar_l2_for_lengths_1_to_1100),
        cmocka_unit_test(every_kernel_matches_scalar_dot_for_lengths_1_to_1100),
        cmocka_unit_test(every_kernel_matches_scalar_hamming_exactly_for_byte_lengths_1_to_1100),
        cmocka_unit_test(l2_of_identical_vectors_is_exactly_zero),
        cmocka_unit_test(hamming_counts_every_bit_of_complementary_vectors),
        cmocka_unit_test(kernels_ignore_everything_past_the_last_element),
        cmocka_unit_test(every_kernel_matches_scalar_f16_l2_for_lengths_1_to_1100),
        cmocka_unit_test(every_kernel_matches_scalar_f16_dot_for_lengths_1_to_1100),
        cmocka_unit_test(every_kernel_matches_scalar_f32f16_l2_for_lengths_1_to_1100),
        cmocka_unit_test(every_kernel_matches_scalar_f32f16_dot_for_lengths_1_to_1100),
        cmocka_unit_test(every_kernel_matches_scalar_u8_dot_and_sq8_exactly_for_lengths_1_to_1100),
        cmocka_unit_test(prepared_query_sq8_kernels_match_scalar_exactly_for_lengths_1_to_1100),
        cmocka_unit_test(u8_dot_is_exact_at_the_largest_dimension),
        cmocka_unit_test(sq8_codes_decode_within_half_a_step_and_kernels_measure_the_decoded_vectors),
        cmocka_unit_test(every_sq8_encoder_gives_the_reference_bytes_on_extreme_inputs),
        cmocka_unit_test(f16_conversion_round_trips_every_half_and_saturates),
        cmocka_unit_test(f16_encoding_matches_the_cpu_on_random_floats),
        cmocka_unit_test(f16_and_u8_kernels_ignore_everything_past_the_last_element),
        cmocka_unit_test(force_switches_the_active_table_and_refuses_unknown_names),
        cmocka_unit_test(qz_simd_environment_variable_picks_a_lower_table_at_first_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
