/*
 * cpu_arm.c - which of our Arm kernels this CPU can run.
 *
 * Built for aarch64 only. Advanced SIMD (NEON) is part of the AArch64 base
 * architecture and every AArch64 OS saves its registers, so NEON is always
 * present and needs no run-time probe. Later tables (SVE, dotprod) would be
 * probed here with getauxval(AT_HWCAP) on Linux and sysctl on macOS.
 */
#include "distance/distance.h"

unsigned qz__dist_cpu_features(void)
{
    return QZ__CPU_NEON;
}
