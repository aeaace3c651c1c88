/* version.c - run-time version and the active SIMD kernels. */
#include "distance/distance.h"
#include "quartz.h"
#include "quartz_experimental.h"
#include "util/error.h"
#include "vector/metric.h"

QZ_API uint32_t qz_version_number(void) { return QZ_VERSION_NUMBER; }

QZ_API const char *qz_version_string(void) { return QZ_VERSION_STRING; }

QZ_API const char *qz_simd_backend(void) { return qz__kernels_active()->name; }

QZ_API int qz_force_isa(const char *isa)
{
    qz__err_clear();
    if (!isa) return qz__err(QZ_EINVAL, "isa is NULL");
    if (qz__kernels_force(isa) < 0)
        return qz__err(QZ_EUNSUPPORTED, "distance kernels \"%s\" are not available on this CPU or build", isa);
    return QZ_OK;
}

QZ_API const char *qz_metric_name(uint32_t metric) { return qz__metric_name(metric); }
