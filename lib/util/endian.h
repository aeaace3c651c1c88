/*
 * endian.h - explicit byte order for everything written to storage
 * (internal). Every on-disk integer goes through these, so a file written on
 * one host reads the same on any other (little-endian unless a layout in
 * persist/format.h says big-endian, which only ids used as sort keys are).
 */
#ifndef QZ_UTIL_ENDIAN_H
#define QZ_UTIL_ENDIAN_H

#include <stdint.h>

static inline void qz__put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void qz__put_u64le(unsigned char *p, uint64_t v)
{
    qz__put_u32le(p, (uint32_t)v);
    qz__put_u32le(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t qz__get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t qz__get_u64le(const unsigned char *p)
{
    return (uint64_t)qz__get_u32le(p) | (uint64_t)qz__get_u32le(p + 4) << 32;
}

static inline void qz__put_u32be(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

static inline uint32_t qz__get_u32be(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void qz__put_u64be(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

static inline uint64_t qz__get_u64be(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

#endif
