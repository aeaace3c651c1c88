/*
 * options_record.c - the options a database was created with, stored in
 * META "options" (layout: persist/format.h), and how a later open's options
 * are merged with them.
 */
#include <string.h>
#include <xxhash.h>

#include "engine/internal.h"
#include "persist/format.h"
#include "util/error.h"
#include "vector/codec.h"
#include "vector/metric.h"

int qz__optrec_read(qz_storage *s, qz__config *c, int *found)
{
    *found = 0;
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v;
    size_t n;
    int rc = s->get(s, t, QZ_TABLE_META, QZ__META_OPTIONS, strlen(QZ__META_OPTIONS), &v, &n);
    if (rc == QZ_ENOTFOUND) {
        qz__err_clear();
        rc = QZ_OK;
    } else if (rc == QZ_OK) {
        const unsigned char *p = v;
        if (n != QZ__OPTREC_SIZE) {
            rc = qz__err(QZ_ECORRUPT, "options record has %zu bytes, expected %u", n, QZ__OPTREC_SIZE);
        } else if (XXH3_64bits(p, 40) != qz__get_u64le(p + 40)) {
            rc = qz__err(QZ_ECORRUPT, "options record fails its checksum");
        } else if (qz__get_u32le(p) > QZ__OPTREC_VERSION) {
            rc = qz__err(QZ_EVERSION, "options record version %u is newer than this library", qz__get_u32le(p));
        } else {
            memset(c, 0, sizeof *c);
            c->dim = qz__get_u32le(p + 4);
            c->metric = qz__get_u32le(p + 8);
            c->dtype = qz__get_u32le(p + 12);
            c->M = qz__get_u32le(p + 16);
            c->ef_construction = qz__get_u32le(p + 20);
            c->ef_search = qz__get_u32le(p + 24);
            c->seed = qz__get_u64le(p + 32);
            *found = 1;
        }
    }
    s->abort(s, t);
    return rc;
}

int qz__optrec_write(qz_storage *s, const qz__config *c)
{
    unsigned char p[QZ__OPTREC_SIZE];
    qz__put_u32le(p, QZ__OPTREC_VERSION);
    qz__put_u32le(p + 4, c->dim);
    qz__put_u32le(p + 8, c->metric);
    qz__put_u32le(p + 12, c->dtype);
    qz__put_u32le(p + 16, c->M);
    qz__put_u32le(p + 20, c->ef_construction);
    qz__put_u32le(p + 24, c->ef_search);
    qz__put_u32le(p + 28, 0);
    qz__put_u64le(p + 32, c->seed);
    qz__put_u64le(p + 40, XXH3_64bits(p, 40));
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, 0, &t));
    int rc = s->put(s, t, QZ_TABLE_META, QZ__META_OPTIONS, strlen(QZ__META_OPTIONS), p, sizeof p);
    if (rc < 0) {
        s->abort(s, t);
        return rc;
    }
    return s->commit(s, t);
}

static const char *dname(uint32_t t)
{
    const char *n = qz__dtype_name(t);
    return n ? n : "unknown";
}

static const char *mname(uint32_t m)
{
    const char *n = qz__metric_name(m);
    return n ? n : "unknown";
}

int qz__optrec_merge(qz__config *c, const qz__config *so)
{
    if (c->dim && c->dim != so->dim)
        return qz__err(QZ_EDIM, "database has %u dimensions, the options ask for %u", so->dim, c->dim);
    if (c->metric && c->metric != so->metric)
        return qz__err(QZ_EINVAL, "database uses the %s metric, the options ask for %s", mname(so->metric),
                       mname(c->metric));
    if (c->dtype && c->dtype != so->dtype)
        return qz__err(QZ_EINVAL,
                       "database stores vector type %s (%u), the options ask for %s (%u); the type is fixed "
                       "when a database is created: open with dtype 0 or %u, or copy the vectors into a new database",
                       dname(so->dtype), so->dtype, dname(c->dtype), c->dtype, so->dtype);
    c->dim = so->dim;
    c->metric = so->metric;
    c->dtype = so->dtype;
    c->M = so->M;
    c->ef_construction = so->ef_construction;
    c->seed = so->seed;
    if (!c->ef_search) c->ef_search = so->ef_search;
    return QZ_OK;
}
