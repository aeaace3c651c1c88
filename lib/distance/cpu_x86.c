/*
 * cpu_x86.c - which of our x86 kernels this CPU *and* OS can run.
 *
 * Built with baseline flags. A CPUID bit alone is not enough: AVX registers
 * are only usable when the OS saves their state on a context switch, which it
 * announces by setting OSXSAVE (CPUID.1:ECX[27]) and the state bits of XCR0,
 * read with XGETBV. YMM needs XCR0 bits 1-2 (SSE, AVX); AVX-512 also needs
 * bits 5-7 (opmask, upper halves of ZMM0-15, ZMM16-31). A hypervisor or
 * kernel that hides AVX-512 (for example Linux booted with noxsave, or some
 * VMs) leaves the CPUID bits set but clears those XCR0 bits; without this
 * check our first VADDPS ZMM would be #UD.
 *
 * macOS enables AVX-512 state lazily, on first use, so XCR0 may not show it
 * yet; there the kernel's own answer (sysctl hw.optional.avx512f) is used.
 */
#include "distance/distance.h"

#if defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#define XCR0_YMM 0x06u /* SSE + AVX state */
#define XCR0_ZMM 0xE0u /* opmask + ZMM_Hi256 + Hi16_ZMM state */

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
#if defined(_MSC_VER) && !defined(__clang__)
    int v[4];
    __cpuidex(v, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)v[i];
#else
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

static unsigned long long xgetbv0(void)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return _xgetbv(0);
#else
    /* The mnemonic, not _xgetbv(): that intrinsic needs -mxsave, and this
     * file must stay at baseline flags. */
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
#endif
}

#if defined(__APPLE__)
static int apple_avx512_enabled(void)
{
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.avx512f", &v, &len, NULL, 0) == 0 && v != 0;
}
#endif

unsigned qz__dist_cpu_features(void)
{
    unsigned r[4]; /* eax, ebx, ecx, edx */
    unsigned feat = 0;

    cpuid(0, 0, r);
    unsigned max_leaf = r[0];
    if (max_leaf < 1) return 0;

    cpuid(1, 0, r);
    unsigned ecx1 = r[2];
    if (ecx1 & (1u << 23)) feat |= QZ__CPU_POPCNT;

    int osxsave = (ecx1 & (1u << 27)) != 0;
    int avx = (ecx1 & (1u << 28)) != 0;
    if (!osxsave || !avx) return feat;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & XCR0_YMM) != XCR0_YMM) return feat;

    if (ecx1 & (1u << 12)) feat |= QZ__CPU_FMA;
    if (ecx1 & (1u << 29)) feat |= QZ__CPU_F16C;
    if (max_leaf < 7) return feat;

    cpuid(7, 0, r);
    unsigned ebx7 = r[1], ecx7 = r[2];
    if (ebx7 & (1u << 5)) feat |= QZ__CPU_AVX2;

    int zmm_os = (xcr0 & XCR0_ZMM) == XCR0_ZMM;
#if defined(__APPLE__)
    if (!zmm_os) zmm_os = apple_avx512_enabled();
#endif
    if (zmm_os && (ebx7 & (1u << 16))) {
        feat |= QZ__CPU_AVX512F;
        if (ebx7 & (1u << 30)) feat |= QZ__CPU_AVX512BW;
        if (ebx7 & (1u << 31)) feat |= QZ__CPU_AVX512VL;
        if (ecx7 & (1u << 14)) feat |= QZ__CPU_AVX512VPOPCNTDQ;
        if (ecx7 & (1u << 11)) feat |= QZ__CPU_AVX512VNNI;
    }
    return feat;
}
