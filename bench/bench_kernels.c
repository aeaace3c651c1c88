/*
 * bench_kernels.c - throughput of every distance kernel table this machine
 * runs, beside the machine's measured peak.
 *
 * For each table, metric and dimension (100, 384, 768, 1536) it reports
 * distance evaluations per second and GFLOP/s (l2sq counts 3 flops per
 * element: subtract, multiply, add; dot counts 2; Hamming reports the bytes
 * of vector data it reads per second instead) in two modes:
 *   hot  - one query against a few vectors that stay in L1 (the kernel's
 *          own speed: what HNSW gets when neighbours were just touched),
 *          once with the vectors where flat storage puts them and once
 *          shifted by 4 bytes, which shows what unaligned storage costs
 *          (a 64-byte load that splits two cache lines is two loads);
 *   cold - one query against vectors picked at random from a 256 MiB set,
 *          far larger than L2 and L3, in a precomputed random order, as a
 *          graph search visits them (memory latency and bandwidth bound;
 *          back-to-back evaluations overlap their misses, so this is an
 *          upper bound for a real search that also does bookkeeping).
 * Hamming vectors are D bits packed into ceil(D/8) bytes. The stored element
 * types have rows too: *_f16 (binary16 inputs, 2 bytes per element, f32
 * arithmetic: flops as for f32), *_f32f16 (asymmetric: an f32 query against
 * binary16 vectors, 4 + 2 = 6 bytes read per element, flops as for f32) and
 * *_sq8 (8-bit codes, 16-byte header +
 * D bytes: an exact u8 dot, VPDPBUSD on avx512vnni, counted as 2 integer ops
 * per element in the GFLOP/s column, then the header combine). The inputs
 * are the arena's random bits read as halves or codes: the speed of these
 * kernels does not depend on the values.
 *
 * Peak: measured, not looked up. For each ISA we run a loop of independent
 * FMA chains (more chains than latency x throughput needs) and count 2 flops
 * per lane per FMA; the scalar row is f64 multiply + add, what scalar.c does.
 * Single thread; the CPU model comes from /proc/cpuinfo.
 *
 * Usage: bench_kernels [--quick]   (markdown on stdout)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distance/distance.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QZ_BENCH_X86 1
#elif defined(__aarch64__)
#include <arm_neon.h>
#define QZ_BENCH_ARM 1
#endif

static volatile float g_sink;
static double g_min_seconds = 0.25;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 0x2545F4914F6CDD1DULL;
static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        /* x86: "model name"; some Arm kernels: "Hardware" or "CPU part". */
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Hardware", 8) == 0) {
            char *colon = strchr(line, ':');
            if (colon == NULL) continue;
            colon++;
            while (*colon == ' ' || *colon == '\t') colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}

/* ---- measured peak --------------------------------------------------------
 * Each function runs iters steps of CHAINS independent accumulators,
 * acc = acc * m + c (|m| < 1, so values stay finite and normal), and returns
 * a sum so the work cannot be discarded. */

typedef float (*peak_fn)(uint64_t iters);

#if QZ_BENCH_X86
#define BARRIER(v) __asm__ volatile("" : "+x"(v))
#elif QZ_BENCH_ARM
#define BARRIER(v) __asm__ volatile("" : "+w"(v))
#else
#define BARRIER(v) ((void)0)
#endif

/* 12 chains of f64 multiply then add (latency ~6-8 cycles, 2 per cycle).
 * The empty asm keeps each chain in its own scalar register, so the compiler
 * cannot fuse the chains into SSE2/NEON vectors behind our back. */
static float peak_scalar(uint64_t iters)
{
    double a0 = 1, a1 = 2, a2 = 3, a3 = 4, a4 = 5, a5 = 6, a6 = 7, a7 = 8, a8 = 9, a9 = 10,
           a10 = 11, a11 = 12;
    const double m = 0.999999, c = 1e-7;
    for (uint64_t i = 0; i < iters; i++) {
#define STEP(v)                                                                                    \
    v = v * m + c;                                                                                 \
    BARRIER(v)
        STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
        STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
#undef STEP
    }
    return (float)(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
}
#define PEAK_SCALAR_FLOPS (12.0 * 2.0)

#if QZ_BENCH_X86
/* 12 chains of 8-lane FMA: AVX2 has 16 YMM registers, 12 + m + c fit. */
__attribute__((target("avx2,fma"))) static float peak_avx2(uint64_t iters)
{
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    /* Distinct starting values: equal chains would be merged by the compiler. */
#define INIT(k) _mm256_set1_ps(1.0f + 0.125f * (k))
    __m256 a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3), a4 = INIT(4), a5 = INIT(5);
    __m256 a6 = INIT(6), a7 = INIT(7), a8 = INIT(8), a9 = INIT(9), a10 = INIT(10), a11 = INIT(11);
#undef INIT
    for (uint64_t i = 0; i < iters; i++) {
#define STEP(v) v = _mm256_fmadd_ps(v, m, c)
        STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
        STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
#undef STEP
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#define PEAK_AVX2_FLOPS (12.0 * 8.0 * 2.0)

/* 16 chains of 16-lane FMA (32 ZMM registers). */
__attribute__((target("avx512f"))) static float peak_avx512(uint64_t iters)
{
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define INIT(k) _mm512_set1_ps(1.0f + 0.125f * (k))
    __m512 a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3), a4 = INIT(4), a5 = INIT(5);
    __m512 a6 = INIT(6), a7 = INIT(7), a8 = INIT(8), a9 = INIT(9), a10 = INIT(10), a11 = INIT(11);
    __m512 a12 = INIT(12), a13 = INIT(13), a14 = INIT(14), a15 = INIT(15);
#undef INIT
    for (uint64_t i = 0; i < iters; i++) {
#define STEP(v) v = _mm512_fmadd_ps(v, m, c)
        STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5); STEP(a6); STEP(a7);
        STEP(a8); STEP(a9); STEP(a10); STEP(a11); STEP(a12); STEP(a13); STEP(a14); STEP(a15);
#undef STEP
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9),
                                                     _mm512_add_ps(a10, a11)),
                                       _mm512_add_ps(_mm512_add_ps(a12, a13),
                                                     _mm512_add_ps(a14, a15))));
    return _mm512_reduce_add_ps(s);
}
#define PEAK_AVX512_FLOPS (16.0 * 16.0 * 2.0)
#endif

#if QZ_BENCH_ARM
/* 16 chains of 4-lane FMLA (32 vector registers). */
static float peak_neon(uint64_t iters)
{
    const float32x4_t m = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
#define INIT(k) vdupq_n_f32(1.0f + 0.125f * (k))
    float32x4_t a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3), a4 = INIT(4), a5 = INIT(5);
    float32x4_t a6 = INIT(6), a7 = INIT(7), a8 = INIT(8), a9 = INIT(9), a10 = INIT(10);
    float32x4_t a11 = INIT(11), a12 = INIT(12), a13 = INIT(13), a14 = INIT(14), a15 = INIT(15);
#undef INIT
    for (uint64_t i = 0; i < iters; i++) {
#define STEP(v) v = vfmaq_f32(c, v, m)
        STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5); STEP(a6); STEP(a7);
        STEP(a8); STEP(a9); STEP(a10); STEP(a11); STEP(a12); STEP(a13); STEP(a14); STEP(a15);
#undef STEP
    }
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)),
                              vaddq_f32(vaddq_f32(a4, a5), vaddq_f32(a6, a7)));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(vaddq_f32(a8, a9), vaddq_f32(a10, a11)),
                               vaddq_f32(vaddq_f32(a12, a13), vaddq_f32(a14, a15))));
    return vaddvq_f32(s);
}
#define PEAK_NEON_FLOPS (16.0 * 4.0 * 2.0)
#endif

typedef struct peak {
    const char *isa; /* matches the start of a table name */
    const char *what;
    peak_fn fn;
    double flops_per_iter;
    double gflops; /* measured */
} peak;

static double measure_peak(peak_fn fn, double flops_per_iter)
{
    uint64_t iters = 1u << 16;
    double best = 0;
    for (;;) { /* double iters until one run takes a quarter of the budget */
        double t0 = now();
        g_sink = fn(iters);
        double dt = now() - t0;
        if (dt >= g_min_seconds / 4) {
            best = (double)iters * flops_per_iter / dt * 1e-9;
            break;
        }
        iters *= 2;
    }
    /* Two more runs: keep the best (peak means least disturbed). */
    for (int r = 0; r < 2; r++) {
        double t0 = now();
        g_sink = fn(iters);
        double g = (double)iters * flops_per_iter / (now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

/* ---- kernel timing ------------------------------------------------------- */

typedef enum metric {
    M_L2,
    M_DOT,
    M_HAMMING,
    M_L2_F16,
    M_DOT_F16,
    M_L2_F32F16,
    M_DOT_F32F16,
    M_L2_SQ8,
    M_DOT_SQ8,
    M_L2_SQ8Q,
    M_DOT_SQ8Q,
    M_COUNT
} metric;
static const char *const g_metric_names[M_COUNT] = {"l2sq_f32",    "dot_f32",    "hamming_b8",
                                                    "l2sq_f16",    "dot_f16",    "l2sq_f32f16",
                                                    "dot_f32f16",  "l2sq_sq8",   "dot_sq8",
                                                    "l2sq_sq8q",   "dot_sq8q"};

static qz__dist_fn kernel_of(const qz__kernels *k, metric m)
{
    switch (m) {
    case M_L2: return k->l2sq_f32;
    case M_DOT: return k->dot_f32;
    case M_HAMMING: return k->hamming_b8;
    case M_L2_F16: return k->l2sq_f16;
    case M_DOT_F16: return k->dot_f16;
    case M_L2_F32F16: return k->l2sq_f32f16;
    case M_DOT_F32F16: return k->dot_f32f16;
    case M_L2_SQ8: return k->l2sq_sq8;
    case M_L2_SQ8Q: return k->l2sq_sq8q; /* NULL in most tables */
    case M_DOT_SQ8Q: return k->dot_sq8q;
    default: return k->dot_sq8;
    }
}

/* The n given to the kernel and the bytes of one (base) vector; the query
 * has the same size except for the f32f16 kernels (see query_bytes). */
static void shape(metric m, size_t dim, size_t *n, size_t *stride)
{
    switch (m) {
    case M_HAMMING: *n = *stride = (dim + 7) / 8; break;
    case M_L2_F16:
    case M_DOT_F16:
    case M_L2_F32F16:
    case M_DOT_F32F16: *n = dim, *stride = 2 * dim; break;
    case M_L2_SQ8:
    case M_DOT_SQ8:
    case M_L2_SQ8Q:
    case M_DOT_SQ8Q: *n = dim, *stride = 16 + dim; break;
    default: *n = dim, *stride = 4 * dim; break;
    }
}

/* The bytes of the query: f32 for the asymmetric kernels, else as a base vector. */
static size_t query_bytes(metric m, size_t dim, size_t stride)
{
    return m == M_L2_F32F16 || m == M_DOT_F32F16 ? 4 * dim : stride;
}

#define COLD_BYTES ((size_t)256 << 20)
#define COLD_ORDER (1u << 20)

static float *g_arena;     /* COLD_BYTES of random floats in [-1, 1), 64-byte aligned */
static uint32_t *g_order;  /* COLD_ORDER random vector indices */

/* Runs `count` evaluations; returns seconds. hot: vectors 1..targets of the
 * arena; cold: vectors from g_order, which indexes the whole arena. */
static double run(qz__dist_fn fn, const char *query, const char *base, size_t stride,
                  size_t n, int cold, size_t targets, size_t count, size_t nvec)
{
    float acc = 0;
    double t0 = now();
    if (cold) {
        for (size_t i = 0; i < count; i++) {
            size_t v = g_order[i & (COLD_ORDER - 1)] % nvec;
            acc += fn(query, base + v * stride, n);
        }
    } else {
        for (size_t i = 0, t = 0; i < count; i++) {
            acc += fn(query, base + t * stride, n);
            if (++t == targets) t = 0;
        }
    }
    double dt = now() - t0;
    g_sink = acc;
    return dt;
}

/* Evaluations per second: the best of 5 runs of about g_min_seconds / 5
 * each. Best, not mean: on a shared or virtual machine the disturbances
 * (other tenants, frequency changes) only ever make a run slower. */
static double evals_per_second(qz__dist_fn fn, size_t dim, metric m, int cold, size_t shift)
{
    size_t n, stride; /* elements, bytes */
    shape(m, dim, &n, &stride);
    const char *arena = (const char *)g_arena;
    /* The query lives apart from the base vectors, as in a search. */
    static _Alignas(64) float query[4096];
    memcpy(query, g_arena, dim * sizeof(float));
    size_t nvec = COLD_BYTES / stride - 2;
    /* Hot: as many targets as fit beside the query in 24 KiB, 1..8. */
    size_t targets = (24u << 10) / stride;
    targets = targets < 2 ? 1 : targets - 1;
    if (targets > 8) targets = 8;
    /* Vector 0 is the query's source. With stride a multiple of 64 every
     * base vector starts on a cache line unless shifted by `shift` bytes. */
    const char *base = arena + stride + shift;

    size_t count = 1024;
    double slice = g_min_seconds / 5, dt;
    run(fn, (const char *)query, base, stride, n, cold, targets, count, nvec); /* warm up */
    for (;;) {
        dt = run(fn, (const char *)query, base, stride, n, cold, targets, count, nvec);
        if (dt >= slice) break;
        size_t next = dt > 0 ? (size_t)((double)count * slice * 1.2 / dt) : count * 8;
        count = next > count * 8 ? count * 8 : next < count * 2 ? count * 2 : next;
    }
    double best = dt;
    for (int r = 1; r < 5; r++) {
        dt = run(fn, (const char *)query, base, stride, n, cold, targets, count, nvec);
        if (dt < best) best = dt;
    }
    return (double)count / best;
}

static const peak *peak_for(const peak *peaks, size_t npeaks, const char *table)
{
    for (size_t i = 0; i < npeaks; i++)
        if (strncmp(table, peaks[i].isa, strlen(peaks[i].isa)) == 0) return &peaks[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) g_min_seconds = 0.05;

    const qz__kernels *tab[16];
    size_t ntab = qz__kernels_list(tab, 16);

    char model[256];
    cpu_model(model, sizeof model);

    peak peaks[4];
    size_t npeaks = 0;
    peaks[npeaks++] = (peak){"scalar", "f64 mul+add, 1 lane", peak_scalar, PEAK_SCALAR_FLOPS, 0};
#if QZ_BENCH_X86
    if (qz__kernels_get("avx2") != NULL)
        peaks[npeaks++] = (peak){"avx2", "f32 FMA, 8 lanes", peak_avx2, PEAK_AVX2_FLOPS, 0};
    if (qz__kernels_get("avx512") != NULL)
        peaks[npeaks++] = (peak){"avx512", "f32 FMA, 16 lanes", peak_avx512, PEAK_AVX512_FLOPS, 0};
#endif
#if QZ_BENCH_ARM
    if (qz__kernels_get("neon") != NULL)
        peaks[npeaks++] = (peak){"neon", "f32 FMA, 4 lanes", peak_neon, PEAK_NEON_FLOPS, 0};
#endif
    for (size_t i = 0; i < npeaks; i++)
        peaks[i].gflops = measure_peak(peaks[i].fn, peaks[i].flops_per_iter);

    printf("# Distance kernels\n\n");
    printf("CPU: %s (/proc/cpuinfo); one thread; active table: %s; tables:", model,
           qz__kernels_active()->name);
    for (size_t t = 0; t < ntab; t++) printf(" %s", tab[t]->name);
    printf("\n\n## Measured peak (independent FMA chains, one core)\n\n");
    printf("| ISA | loop | GFLOP/s |\n|---|---|---:|\n");
    for (size_t i = 0; i < npeaks; i++)
        printf("| %s | %s | %.1f |\n", peaks[i].isa, peaks[i].what, peaks[i].gflops);

    g_arena = aligned_alloc(64, COLD_BYTES);
    g_order = malloc(COLD_ORDER * sizeof *g_order);
    if (g_arena == NULL || g_order == NULL) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < COLD_BYTES / sizeof(float); i++)
        g_arena[i] = (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
    for (size_t i = 0; i < COLD_ORDER; i++) g_order[i] = (uint32_t)rng_next();

    static const size_t dims[] = {100, 384, 768, 1536};
    printf("\n## Kernels\n\nhot: a 64-byte-aligned query + up to 8 vectors in L1, laid out "
           "flat (stride = vector size, so dim 100 vectors are 16-byte aligned, the others "
           "64-byte aligned); \"hot ns, +4 B\": the same with the vectors shifted 4 bytes "
           "(every wide load splits cache lines); cold: random vectors from a 256 MiB set. "
           "GFLOP/s: l2sq 3 and dot 2 flops per element; %% peak is hot GFLOP/s over the "
           "ISA's measured FMA peak. hamming: D bits = ceil(D/8) bytes, GB/s counts both "
           "vectors (f32f16: an f32 query and an f16 vector, 6 bytes per element).\n\n");
    printf("| dim | metric | table | hot Mevals/s | hot ns | hot GFLOP/s | hot GB/s | %% peak "
           "| hot ns, +4 B | cold Mevals/s | cold ns | cold GB/s |\n");
    printf("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        for (int m = 0; m < M_COUNT; m++) {
            for (size_t t = 0; t < ntab; t++) {
                qz__dist_fn fn = kernel_of(tab[t], (metric)m);
                if (!fn) continue; /* no prepared-query sq8 kernels in this table */
                /* A table may reuse a lower table's kernel (avx512vpopcnt
                 * has the avx512 float kernels): measure it once, under the
                 * lowest table that has it. */
                int later = 0;
                for (size_t u = t + 1; u < ntab; u++) later |= kernel_of(tab[u], (metric)m) == fn;
                if (later) continue;
                size_t dim = dims[d];
                size_t n_el, vbytes;
                shape((metric)m, dim, &n_el, &vbytes);
                double bytes = (double)query_bytes((metric)m, dim, vbytes) + (double)vbytes;
                double flops = (m == M_L2 || m == M_L2_F16 || m == M_L2_F32F16) ? 3.0 * dim
                               : (m == M_DOT || m == M_DOT_F16 || m == M_DOT_F32F16 || m == M_L2_SQ8 ||
                                  m == M_DOT_SQ8 || m == M_L2_SQ8Q || m == M_DOT_SQ8Q)
                                   ? 2.0 * dim
                                   : 0.0;
                double hot = evals_per_second(fn, dim, (metric)m, 0, 0);
                double hot_u = evals_per_second(fn, dim, (metric)m, 0, 4);
                double cold = evals_per_second(fn, dim, (metric)m, 1, 0);
                const peak *p = peak_for(peaks, npeaks, tab[t]->name);
                char gf[32] = "-", pct[32] = "-";
                if (flops > 0) {
                    snprintf(gf, sizeof gf, "%.1f", hot * flops * 1e-9);
                    if (p != NULL)
                        snprintf(pct, sizeof pct, "%.0f%%", 100.0 * hot * flops * 1e-9 / p->gflops);
                }
                printf("| %zu | %s | %s | %.1f | %.1f | %s | %.1f | %s | %.1f | %.2f | %.1f | %.1f |\n",
                       dim, g_metric_names[m], tab[t]->name, hot * 1e-6, 1e9 / hot, gf,
                       hot * bytes * 1e-9, pct, 1e9 / hot_u, cold * 1e-6, 1e9 / cold,
                       cold * bytes * 1e-9);
                fflush(stdout);
            }
        }
    }
    for (size_t t = 0; t < ntab; t++)
        for (int m = 0; m < M_COUNT; m++)
            for (size_t u = ntab; u-- > t + 1;)
                if (kernel_of(tab[t], (metric)m) && kernel_of(tab[u], (metric)m) == kernel_of(tab[t], (metric)m)) {
                    printf("\n%s %s is the %s kernel (not repeated above).", tab[t]->name,
                           g_metric_names[m], tab[u]->name);
                    break;
                }
    printf("\n");
    free(g_arena);
    free(g_order);
    return 0;
}
