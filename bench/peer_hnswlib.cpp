/*
 * peer_hnswlib.cpp - the hnswlib side of the comparison (engine "hnswlib").
 *
 * Same command line, same measurement loop and same CSV as bench_index (both
 * come from datasets.c); only the index differs. It is set up the way
 * hnswlib's own Python binding sets it up, since that is how most people run
 * it:
 * - cosine: hnswlib 0.6.2 has no cosine space, so vectors are normalised and
 *   indexed with InnerProductSpace (distance 1 - dot). Like the binding's
 *   "cosine" space, each base vector is normalised inside the timed build and
 *   each query inside the timed search, into a per-thread buffer, so no second
 *   copy of the base counts against its memory.
 * - the build adds the first point alone (it becomes the entry point), then
 *   the rest from --threads threads taking rows from a shared counter, as the
 *   binding's ParallelFor does.
 * - search is searchKnn(), one query per call; ef is set once per ef value
 *   with setEf() before the searchers start, because ef_ is a plain member.
 */
#include "datasets.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Peer {
    std::unique_ptr<hnswlib::SpaceInterface<float> > space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float> > index;
    size_t dim = 0;
    bool normalize = false;
};

/* The vector to hand to hnswlib: the input, or its normalised copy in buf. */
const float *prepare(const Peer *p, const float *v, std::vector<float> &buf)
{
    if (!p->normalize)
        return v;
    buf.assign(v, v + p->dim);
    bench_normalize_rows(buf.data(), 1, p->dim);
    return buf.data();
}

int peer_search(void *ctx, const float *query, size_t k, size_t /*ef: set by peer_set_ef*/, uint64_t *ids,
                size_t *found)
{
    const Peer *p = static_cast<const Peer *>(ctx);
    static thread_local std::vector<float> buf;
    try {
        std::priority_queue<std::pair<float, hnswlib::labeltype> > res =
            p->index->searchKnn(prepare(p, query, buf), k);
        /* The queue pops the farthest first. */
        size_t n = res.size();
        for (size_t i = n; i-- > 0;) {
            ids[i] = static_cast<uint64_t>(res.top().second);
            res.pop();
        }
        *found = n;
        return 0;
    } catch (const std::exception &ex) {
        std::fprintf(stderr, "hnswlib: searchKnn failed: %s\n", ex.what());
        return -1;
    }
}

int peer_set_ef(void *ctx, size_t ef)
{
    static_cast<Peer *>(ctx)->index->setEf(ef);
    return 0;
}

/* Builds the index from ds->base; returns false (after printing why) on failure. */
bool build(Peer &p, const bench_options &o, const bench_dataset &ds)
{
    const size_t n = ds.base.n, dim = ds.base.dim;
    p.dim = dim;
    p.normalize = o.metric == BENCH_METRIC_COSINE;
    try {
        if (o.metric == BENCH_METRIC_L2)
            p.space.reset(new hnswlib::L2Space(dim));
        else
            p.space.reset(new hnswlib::InnerProductSpace(dim));
        p.index.reset(new hnswlib::HierarchicalNSW<float>(p.space.get(), n, o.M, o.ef_construction));
    } catch (const std::exception &ex) {
        std::fprintf(stderr, "hnswlib: cannot create the index: %s\n", ex.what());
        return false;
    }

    std::atomic<size_t> next(0);
    std::atomic<bool> failed(false);
    std::string why;
    std::mutex why_lock;
    auto worker = [&]() {
        std::vector<float> buf;
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= n || failed.load(std::memory_order_relaxed))
                return;
            try {
                p.index->addPoint(prepare(&p, ds.base.data + i * dim, buf), static_cast<hnswlib::labeltype>(i));
            } catch (const std::exception &ex) {
                std::lock_guard<std::mutex> g(why_lock);
                why = ex.what();
                failed = true;
                return;
            }
        }
    };

    /* The first point alone: it becomes the entry point everyone else descends from. */
    if (n > 0) {
        std::vector<float> buf;
        try {
            p.index->addPoint(prepare(&p, ds.base.data, buf), 0);
        } catch (const std::exception &ex) {
            std::fprintf(stderr, "hnswlib: addPoint(0) failed: %s\n", ex.what());
            return false;
        }
        next = 1;
    }
    unsigned nthreads = o.threads > 0 ? o.threads : 1;
    std::vector<std::thread> pool;
    try {
        for (unsigned t = 1; t < nthreads; t++)
            pool.emplace_back(worker);
    } catch (const std::exception &ex) {
        std::fprintf(stderr, "hnswlib: cannot start build threads: %s\n", ex.what());
        failed = true;
    }
    worker(); /* the main thread is one of the builders */
    for (auto &t : pool)
        t.join();
    if (failed) {
        std::fprintf(stderr, "hnswlib: addPoint failed: %s\n", why.c_str());
        return false;
    }
    return true;
}

} // namespace

/* hnswlib's own metrics (HierarchicalNSW::metric_hops and
 * metric_distance_computations, the latter the sum of the neighbour lists
 * read, visited or not); it does not count the distances it computes. */
static void peer_counters(void *engine, double out[3])
{
    Peer *p = static_cast<Peer *>(engine);
    out[0] = (double)p->index->metric_hops.load();
    out[1] = (double)p->index->metric_distance_computations.load();
    out[2] = -1;
}

int main(int argc, char **argv)
{
    bench_options o;
    int r = bench_parse_args(argc, argv, "hnswlib", &o);
    if (r != 0)
        return r > 0 ? 0 : 2;

    bench_dataset ds;
    char err[1024];
    if (bench_dataset_load(o.data_dir, o.metric, o.limit_queries, o.k, &ds, err, sizeof err) != 0) {
        std::fprintf(stderr, "peer_hnswlib: %s\n", err);
        return 1;
    }
    if (bench_dataset_limit_base(&ds, o.limit_base, o.k, o.threads, err, sizeof err) != 0) {
        std::fprintf(stderr, "peer_hnswlib: %s\n", err);
        bench_dataset_free(&ds);
        return 1;
    }

    Peer p;
    bench_build b;
    int64_t rss0 = bench_rss_bytes();
    double t0 = bench_now();
    bool ok = build(p, o, ds);
    b.build_s = bench_now() - t0;
    b.memory_bytes = bench_rss_bytes() - rss0;
    if (!ok) {
        bench_dataset_free(&ds);
        return 1;
    }
#if defined(USE_AVX512)
    const char *simd = "avx512";
#elif defined(USE_AVX)
    const char *simd = "avx";
#elif defined(USE_SSE)
    const char *simd = "sse";
#else
    const char *simd = "scalar";
#endif
    std::fprintf(stderr,
                 "info: engine=hnswlib dataset=%s n=%zu dim=%zu metric=%s build_s=%.3f rss_delta_bytes=%lld "
                 "simd=%s threads=%u\n",
                 ds.name, ds.base.n, ds.base.dim, bench_metric_name(o.metric), b.build_s,
                 (long long)b.memory_bytes, simd, o.threads);

    bench_engine e;
    e.name = "hnswlib";
    e.ctx = &p;
    e.search = peer_search;
    e.set_ef = peer_set_ef;
    e.counters = peer_counters;
    e.oversample = 0;
    r = bench_run_searches(&o, &ds, &e, &b, stdout);
    p.index.reset();
    p.space.reset();
    bench_dataset_free(&ds);
    return r == 0 ? 0 : 1;
}
