/*
 * quartz_experimental.h - unstable API outside the ABI promise.
 *
 * Functions here may change or vanish in any release. They exist for tests
 * and benchmarks; bindings must not use them.
 */
#ifndef QUARTZ_EXPERIMENTAL_H
#define QUARTZ_EXPERIMENTAL_H

#include "quartz.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Force the distance kernels named @p isa ("scalar", "avx2", "avx512",
 *  "neon", "simd128") for databases opened from now on.
 *  @return ::QZ_OK; ::QZ_EUNSUPPORTED if this build or CPU lacks it;
 *  ::QZ_EINVAL for NULL. Thread safety: call before opening databases. */
QZ_API int qz_force_isa(const char *isa);

#ifdef __cplusplus
}
#endif
#endif
