/*
 * dispatch.c - picks the distance kernel table once, at first use.
 *
 * This file MUST be built with baseline flags (no -mavx*, -msimd128): it runs
 * before we know what the CPU supports, and a compiler given -mavx2 here may
 * emit AVX2 anywhere in it (xxHash's xxh_x86dispatch.c refuses to build that
 * way for the same reason). Only the per-ISA files get ISA flags.
 *
 * Which tables exist is decided by the build: lib/distance/meson.build writes
 * distance/isa_config.h with one QZ_HAVE_<ISA> per static library it built.
 * For ad-hoc builds without that header we assume the set meson builds for
 * the target architecture.
 *
 * Which table runs is decided here, once: the first table in g_candidates
 * whose features the CPU and OS provide, unless the environment variable
 * QZ_SIMD names another available table (used to test and benchmark lower
 * tables on a big machine; an unknown or unavailable name is ignored). The
 * choice is made under pthread_once (a plain flag in single-threaded wasm)
 * and published through an atomic pointer, so qz__kernels_force() may
 * switch it later while other threads read it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "distance/distance.h"
#include "vector/codec.h"

#if defined(__has_include)
#if __has_include("distance/isa_config.h")
#include "distance/isa_config.h"
#define QZ_HAVE_ISA_CONFIG 1
#endif
#endif

#ifndef QZ_HAVE_ISA_CONFIG
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#define QZ_HAVE_AVX2 1
#define QZ_HAVE_AVX512 1
#elif defined(__aarch64__) || defined(_M_ARM64)
#define QZ_HAVE_NEON 1
#elif defined(__wasm_simd128__)
#define QZ_HAVE_SIMD128 1
#endif
#endif

#if defined(__wasm__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define QZ_SINGLE_THREADED 1
#else
#include <pthread.h>
#endif

typedef struct qz_candidate {
    const qz__kernels *table;
    unsigned needs; /* QZ__CPU_* bits that must all be present */
} qz_candidate;

/* Best first. */
static const qz_candidate g_candidates[] = {
#if QZ_HAVE_AVX512
    {&qz__kernels_avx512vnni,
     QZ__CPU_AVX512F | QZ__CPU_AVX512BW | QZ__CPU_AVX512VL | QZ__CPU_AVX512VPOPCNTDQ | QZ__CPU_AVX512VNNI |
         QZ__CPU_AVX2 | QZ__CPU_FMA | QZ__CPU_POPCNT},
    {&qz__kernels_avx512vpopcnt,
     QZ__CPU_AVX512F | QZ__CPU_AVX512BW | QZ__CPU_AVX512VL | QZ__CPU_AVX512VPOPCNTDQ |
         QZ__CPU_AVX2 | QZ__CPU_FMA | QZ__CPU_POPCNT},
    {&qz__kernels_avx512, QZ__CPU_AVX512F | QZ__CPU_AVX512BW | QZ__CPU_AVX512VL | QZ__CPU_AVX2 |
                              QZ__CPU_FMA | QZ__CPU_POPCNT},
#endif
#if QZ_HAVE_AVX2
    {&qz__kernels_avx2, QZ__CPU_AVX2 | QZ__CPU_FMA | QZ__CPU_POPCNT | QZ__CPU_F16C},
#endif
#if QZ_HAVE_NEON
    {&qz__kernels_neon, QZ__CPU_NEON},
#endif
#if QZ_HAVE_SIMD128
    /* No run-time detection in wasm: a module with SIMD opcodes either
     * validates on the engine or does not load at all. */
    {&qz__kernels_simd128, 0},
#endif
    {&qz__kernels_scalar, 0},
};

#define QZ_NCANDIDATES (sizeof g_candidates / sizeof g_candidates[0])

/* Written once by choose(), read only after it (pthread_once orders that). */
static const qz__kernels *g_avail[QZ_NCANDIDATES];
static size_t g_navail;
static _Atomic(const qz__kernels *) g_active;

static unsigned cpu_features(void)
{
#if QZ_HAVE_AVX2 || QZ_HAVE_AVX512 || QZ_HAVE_NEON
    return qz__dist_cpu_features();
#else
    return 0;
#endif
}

static void choose(void)
{
    unsigned have = cpu_features();
    for (size_t i = 0; i < QZ_NCANDIDATES; i++)
        if ((g_candidates[i].needs & have) == g_candidates[i].needs)
            g_avail[g_navail++] = g_candidates[i].table;

    const qz__kernels *pick = g_avail[0]; /* scalar needs nothing: never empty */
    const char *want = getenv("QZ_SIMD");
    if (want != NULL) {
        for (size_t i = 0; i < g_navail; i++)
            if (strcmp(g_avail[i]->name, want) == 0) pick = g_avail[i];
    }
    atomic_store_explicit(&g_active, pick, memory_order_release);
}

#if QZ_SINGLE_THREADED
static int g_chosen;
static void ensure_chosen(void)
{
    if (!g_chosen) {
        g_chosen = 1;
        choose();
    }
}
#else
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void ensure_chosen(void)
{
    pthread_once(&g_once, choose);
}
#endif

const qz__kernels *qz__kernels_active(void)
{
    const qz__kernels *k = atomic_load_explicit(&g_active, memory_order_acquire);
    if (k != NULL) return k;
    ensure_chosen();
    return atomic_load_explicit(&g_active, memory_order_acquire);
}

static void sq8_encode_baseline(const float *x, size_t n, void *out) { qz__sq8_encode(x, n, out); }

qz__encode_fn qz__kernels_sq8_encode(const qz__kernels *k)
{
    return k && k->sq8_encode ? k->sq8_encode : sq8_encode_baseline;
}

const qz__kernels *qz__kernels_get(const char *name)
{
    if (name == NULL) return NULL;
    ensure_chosen();
    for (size_t i = 0; i < g_navail; i++)
        if (strcmp(g_avail[i]->name, name) == 0) return g_avail[i];
    return NULL;
}

int qz__kernels_force(const char *name)
{
    const qz__kernels *k = qz__kernels_get(name); /* also makes the first choice */
    if (k == NULL) return -1;
    atomic_store_explicit(&g_active, k, memory_order_release);
    return 0;
}

size_t qz__kernels_list(const qz__kernels **out, size_t cap)
{
    ensure_chosen();
    size_t n = g_navail < cap ? g_navail : cap;
    for (size_t i = 0; i < n; i++) out[i] = g_avail[i];
    return n;
}
