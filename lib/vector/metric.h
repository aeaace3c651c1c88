/*
 * metric.h - the core's own names for metrics (internal).
 *
 * The core never uses the public ABI enums as its state. The values equal
 * the public ones because they are also what the options record stores on
 * disk (persist/format.h); lib/api checks that at compile time.
 */
#ifndef QZ_VECTOR_METRIC_H
#define QZ_VECTOR_METRIC_H

enum qz__metric {
    QZ__METRIC_COSINE = 1,
    QZ__METRIC_L2 = 2,
    QZ__METRIC_IP = 3,
    QZ__METRIC_HAMMING = 4
};

#endif
