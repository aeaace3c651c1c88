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

/* "cosine", "l2", "ip", "hamming"; NULL for other values (0 is cosine). */
static inline const char *qz__metric_name(unsigned m)
{
    switch (m) {
    case 0:
    case QZ__METRIC_COSINE: return "cosine";
    case QZ__METRIC_L2: return "l2";
    case QZ__METRIC_IP: return "ip";
    case QZ__METRIC_HAMMING: return "hamming";
    default: return 0;
    }
}

#endif
