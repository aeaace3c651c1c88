/*
 * distance.h - the distance kernel table (internal).
 *
 * Owns: one table of kernel function pointers per instruction set, and the
 * run-time choice among them. The HNSW index copies the pointer it needs at
 * open so that the hot loop never looks anything up.
 *
 * Every kernel has the same signature. n counts elements: floats for the
 * *_f32 kernels, bytes for the bit kernel. Pointers need no alignment, n may
 * be any value >= 1 (0 returns 0). Kernels are pure and thread-safe.
 */
#ifndef QZ_DISTANCE_H
#define QZ_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

typedef float (*qz__dist_fn)(const void *a, const void *b, size_t n);
/* Exact integer dot product of two u8 arrays of n bytes. */
typedef uint64_t (*qz__ipu8_fn)(const uint8_t *a, const uint8_t *b, size_t n);
/* Encode n finite floats into an 8-bit code (vector/codec.h qz__sq8_encode). */
typedef void (*qz__encode_fn)(const float *x, size_t n, void *out);

/* The element types other than f32 (vector/codec.h defines the codes):
 * *_f16 take binary16 arrays of n elements and compute in f32; *_sq8 take
 * two 8-bit codes (16-byte header, then n bytes) and return the distance of
 * the decoded vectors, built on ip_u8. */
typedef struct qz__kernels {
    const char *name;       /* "scalar", "avx2", "avx512", "avx512vpopcnt", "avx512vnni", "neon", "simd128" */
    qz__dist_fn l2sq_f32;   /* sum (a[i]-b[i])^2 */
    qz__dist_fn dot_f32;    /* sum a[i]*b[i] */
    qz__dist_fn hamming_b8; /* popcount(a[i] ^ b[i]) over n bytes, as float */
    qz__dist_fn l2sq_f16;   /* sum (a[i]-b[i])^2, f16 inputs */
    qz__dist_fn dot_f16;    /* sum a[i]*b[i], f16 inputs */
    qz__ipu8_fn ip_u8;      /* sum a[i]*b[i], u8 inputs, exact */
    qz__dist_fn l2sq_sq8;   /* ||decoded a - decoded b||^2 */
    qz__dist_fn dot_sq8;    /* decoded a . decoded b */
    /* Asymmetric f16: a is n f32 (the query, unrounded), b n binary16 (a
     * stored code); computed in f32 like the f32 kernels. A query then
     * converts only the code's side, and keeps its own precision. */
    qz__dist_fn l2sq_f32f16; /* sum (a[i]-b[i])^2 */
    qz__dist_fn dot_f32f16;  /* sum a[i]*b[i] */
    /* sq8 with a prepared query (qz__sq8_prepare, vector/codec.h): a is a
     * query code whose bytes are stored as q - 128 (int8), b a stored code;
     * the same value as l2sq_sq8 / dot_sq8 of the unprepared code. NULL in
     * tables where it would not be faster (all but scalar and avx512vnni):
     * queries then use the symmetric kernels. */
    qz__dist_fn l2sq_sq8q;
    qz__dist_fn dot_sq8q;
    /* qz__sq8_encode compiled for this ISA: the same bytes as the scalar
     * one (integer sums, no contraction: tests/unit/test_distance.c), in a
     * few wide passes. Every int8 query is encoded, so on 784-d MNIST the
     * baseline build of it was 6% of a search at ef 10. NULL: the scalar
     * one (qz__kernels_sq8_encode). */
    qz__encode_fn sq8_encode;
} qz__kernels;

/* The table's sq8 encoder, or the baseline one where it has none. */
qz__encode_fn qz__kernels_sq8_encode(const qz__kernels *k);

/* The best table this CPU and OS support, or the one named by the environment
 * variable QZ_SIMD if that one is available (an unknown or unavailable name
 * is ignored and the best is used). Chosen once, thread-safe, never NULL. */
const qz__kernels *qz__kernels_active(void);

/* The table with this name if this build has it and this CPU runs it, else NULL. */
const qz__kernels *qz__kernels_get(const char *name);

/* Make the named table the active one (tests and benchmarks only).
 * Returns 0, or -1 when the name is unknown or unavailable here. */
int qz__kernels_force(const char *name);

/* All tables built in and runnable here, best first; returns how many were
 * written to out (at most cap). */
size_t qz__kernels_list(const qz__kernels **out, size_t cap);

/* Per-ISA tables; a symbol exists only when that file is compiled in. Each
 * ISA file defines only its table; dispatch.c decides whether it may run. */
extern const qz__kernels qz__kernels_scalar;
extern const qz__kernels qz__kernels_avx2;
extern const qz__kernels qz__kernels_avx512;
extern const qz__kernels qz__kernels_neon;
extern const qz__kernels qz__kernels_simd128;

/* x86 only: the avx512 table with a VPOPCNTDQ Hamming kernel (Ice Lake, Zen 4
 * and later). Its float kernels are the avx512 ones; QZ_SIMD=avx512 picks the
 * plain table, whose Hamming kernel needs only AVX-512BW. */
extern const qz__kernels qz__kernels_avx512vpopcnt;
/* x86 only: avx512vpopcnt plus AVX512_VNNI (VPDPBUSD) for the 8-bit dot
 * (Ice Lake, Zen 4 and later): the best table where it runs. */
extern const qz__kernels qz__kernels_avx512vnni;

/* CPU features, as reported by cpu_x86.c or cpu_arm.c for dispatch.c only.
 * A vector-register feature is reported only when the OS also saves that
 * register state (XGETBV on x86), so a set bit means "may run". */
#define QZ__CPU_POPCNT (1u << 0)
#define QZ__CPU_AVX2 (1u << 1)    /* with OS-enabled YMM state */
#define QZ__CPU_FMA (1u << 2)     /* FMA3, with OS-enabled YMM state */
#define QZ__CPU_AVX512F (1u << 3) /* with OS-enabled ZMM and opmask state */
#define QZ__CPU_AVX512BW (1u << 4)
#define QZ__CPU_AVX512VL (1u << 5)
#define QZ__CPU_AVX512VPOPCNTDQ (1u << 6)
#define QZ__CPU_F16C (1u << 7)        /* with OS-enabled YMM state */
#define QZ__CPU_AVX512VNNI (1u << 8)
#define QZ__CPU_NEON (1u << 16)
unsigned qz__dist_cpu_features(void);

#endif
