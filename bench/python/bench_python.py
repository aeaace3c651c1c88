#!/usr/bin/python3
"""bench_python.py - the quartz Python binding against C and against hnswlib's
Python binding (Debian python3-hnswlib), in one run, on one dataset (GloVe by
default).

1. quartz via the binding: build a directory database (durability "none";
   one db.add() of the whole base, M=16, ef_construction=200), close it.
2. Reopen it read-only through the binding, and start bench/bench_search_batch
   --readonly --serve (C, built in BUILD) on the same directory: both search
   the same graph. For each ef, C's qz_db_search_batch() over all queries and
   the binding's db.search(all queries) (which calls qz_db_search_batch())
   run alternately, --repeats times each, fastest kept; then a single 10-NN
   query: C's qz_db_search() and qz_db_search_batch() with nq = 1, the bare
   ctypes call, and db.search(one 1-D query), again alternately; then T
   Python threads each searching one query at a time.
3. hnswlib (Python): build with the same M / ef_construction / threads, time
   knn_query(all queries) at each ef, a single query, and the same threads.

Recall@k is the overlap of the returned ids with the first k ground-truth
ids. C and the binding search the same graph, so their recall must agree.
Each timing is the fastest of --repeats runs. The markdown report goes to
--out (and stdout), with the command, the date and the machine load.

    /usr/bin/python3 bench/python/bench_python.py --build build --out bench/results/python.md
"""
import argparse
import ctypes
import datetime
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    rows = raw.reshape(-1, d + 1)
    assert np.all(rows[:, 0] == d), path
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def write_vecs(path, x):
    x = np.ascontiguousarray(x)
    rows = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.int32)
    rows[:, 0] = x.shape[1]
    rows[:, 1:] = x.view(np.int32)
    rows.tofile(path)


def exact_gt(base, query, k):
    """Exact cosine top-k of each query over base (for a --limit subset)."""
    bn = base / np.linalg.norm(base, axis=1, keepdims=True)
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    out = np.empty((len(query), k), dtype=np.int32)
    for s in range(0, len(query), 500):
        sim = qn[s:s + 500] @ bn.T
        part = np.argpartition(-sim, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, part, 1), axis=1, kind="stable")
        out[s:s + 500] = np.take_along_axis(part, order, 1)
    return out


def recall(ids, gt, k):
    ids = np.asarray(ids).astype(np.int64)
    return float((ids[:, :k, None] == gt[:, None, :k]).any(-1).sum()) / (len(ids) * k)


def best_of(repeats, fn):
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def per_call_us(repeats, queries, fn):
    """(wall, thread CPU) microseconds per call, each the fastest of `repeats` rounds."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        c0, t0 = time.thread_time(), time.perf_counter()
        for q in queries:
            fn(q)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.thread_time() - c0)
    return wall * 1e6 / len(queries), cpu * 1e6 / len(queries)


def timed(fn):
    """(wall seconds, process CPU seconds, result) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def threaded_qps(nthreads, queries, fn, repeats):
    parts = np.array_split(np.arange(len(queries)), nthreads)

    def run():
        barrier = threading.Barrier(nthreads + 1)

        def work(idx):
            barrier.wait()
            for i in idx:
                fn(queries[i])

        ts = [threading.Thread(target=work, args=(p,)) for p in parts]
        for t in ts:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in ts:
            t.join()
        return time.perf_counter() - t0

    return len(queries) / min(run() for _ in range(repeats))


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d logical CPUs, %s" % (model, os.cpu_count() or 0, platform.platform())


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def dpkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build directory")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "glove6b-100-angular"))
    ap.add_argument("--limit", type=int, default=0, help="use the first N base rows (exact ground truth recomputed)")
    ap.add_argument("--limit-queries", type=int, default=0)
    ap.add_argument("--ef", default="10,20,40,80,120,200,400")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="build and batch-search threads of both engines")
    ap.add_argument("--py-threads", default="1,2,4", help="Python threads of the one-query-at-a-time rows")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--single", type=int, default=2000, help="queries of the single-query timing")
    ap.add_argument("--single-ef", type=int, default=64)
    ap.add_argument("--single-rounds", type=int, default=7, help="rounds of the single-query timing (fastest kept)")
    ap.add_argument("--workdir", default=None, help="where the quartz directory goes (default: a temp dir)")
    ap.add_argument("--out", default=None, help="markdown report (also printed)")
    ap.add_argument("--append", action="store_true", help="append the report to --out instead of replacing it")
    ap.add_argument("--engines", default="quartz,c,hnswlib,fixed",
                    help="quartz (the binding), c, hnswlib, fixed (the fixed cost of a call on a 100-row database); "
                         "'fixed' alone skips the large build")
    a = ap.parse_args()
    command = "/usr/bin/python3 " + " ".join(shlex.quote(x) for x in [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    efs = [int(x) for x in a.ef.split(",")]
    py_threads = [int(x) for x in a.py_threads.split(",") if x]
    engines = set(a.engines.split(","))
    build = os.path.abspath(a.build)
    os.environ.setdefault("QUARTZ_LIBRARY", os.path.join(build, "lib", "libquartz.so.1"))
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import quartz

    log = lambda *m: print(*m, file=sys.stderr, flush=True)
    load_before = uptime()
    started = datetime.datetime.now(datetime.timezone.utc)
    base = read_vecs(os.path.join(a.data, "base.fvecs"), np.float32)
    query = read_vecs(os.path.join(a.data, "query.fvecs"), np.float32)
    gt = read_vecs(os.path.join(a.data, "gt.ivecs"), np.int32)
    if a.limit_queries:
        query, gt = query[:a.limit_queries], gt[:a.limit_queries]
    work = tempfile.mkdtemp(prefix="qz-bench-py-", dir=a.workdir)
    qpath, gpath = os.path.join(a.data, "query.fvecs"), os.path.join(a.data, "gt.ivecs")
    if a.limit:
        base = np.ascontiguousarray(base[:a.limit])
        log("exact ground truth of %d queries over the first %d rows..." % (len(query), len(base)))
        gt = exact_gt(base, query, a.k)
    if a.limit or a.limit_queries:
        qpath, gpath = os.path.join(work, "query.fvecs"), os.path.join(work, "gt.ivecs")
        write_vecs(qpath, query)
        write_vecs(gpath, gt)
    n, dim = base.shape
    single_q = query[:min(a.single, len(query))]
    res = {"efs": efs, "simd": quartz.simd_backend()}
    full = bool(engines & {"quartz", "c", "hnswlib"})
    dbdir = os.path.join(work, "quartz.db")
    try:
        if full:
            # ---- 1. build through the binding -------------------------------------------
            log("quartz: building %d x %d through the binding..." % (n, dim))
            db = quartz.open(dbdir, dim=dim, metric="cosine", M=a.M, ef_construction=a.efc, durability="none",
                             threads=a.threads, capacity=n)
            t0 = time.perf_counter()
            db.add(np.arange(n, dtype=np.uint64), base)
            res["q_build"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            db.close()
            res["q_close"] = time.perf_counter() - t0
            log("quartz: build %.1f s, close %.1f s" % (res["q_build"], res["q_close"]))

            # ---- 2 + 3. C and the binding on the same directory, interleaved --------------
            # Both processes hold the directory open read-only; each C measurement is
            # followed at once by the same measurement through the binding, so that
            # the load of the shared machine hits both alike. Fastest of --repeats.
            t0 = time.perf_counter()
            db = quartz.open(dbdir, threads=a.threads, readonly=True)
            res["q_open"] = time.perf_counter() - t0
            assert len(db) == n
            res["simd"] = db.stats().simd
            cproc = None
            if "c" in engines:
                exe = os.path.join(build, "bench", "bench_search_batch")
                cmd = [exe, dbdir, qpath, gpath, "--k", str(a.k), "--threads", str(a.threads), "--readonly", "--serve"]
                log("C: " + " ".join(cmd))
                cproc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                assert cproc.stdout.readline().strip() == "ready"

            def c_ask(line, answers=1):
                cproc.stdin.write(line + "\n")
                cproc.stdin.flush()
                out = []
                for _ in range(answers):
                    reply = cproc.stdout.readline()
                    if not reply:
                        raise RuntimeError("bench_search_batch died")
                    out.append(dict(re.findall(r"(\w+)=(\S+)", reply)))
                return out

            res["py"], res["c"], res["py_cpu"], res["c_cpu"] = {}, {}, {}, {}
            for ef in efs:
                best_c = best_p = cpu_c = cpu_p = float("inf")
                rc_ = None
                for _ in range(a.repeats):
                    if cproc:
                        kv = c_ask("batch %d" % ef)[0]
                        best_c = min(best_c, float(kv["seconds"]))
                        cpu_c = min(cpu_c, float(kv["cpu_seconds"]))
                        rc_ = float(kv["recall"])
                    wall, cpu, r = timed(lambda: db.search(query, k=a.k, ef=ef))
                    best_p, cpu_p = min(best_p, wall), min(cpu_p, cpu)
                res["py"][ef] = (len(query) / best_p, recall(r.ids, gt, a.k))
                res["py_cpu"][ef] = cpu_p * 1e6 / len(query)
                if cproc:
                    res["c"][ef] = (len(query) / best_c, rc_)
                    res["c_cpu"][ef] = cpu_c * 1e6 / len(query)
                log("ef=%d python qps=%.0f recall=%.4f | C qps=%s" % (
                    ef, res["py"][ef][0], res["py"][ef][1], "%.0f recall=%.4f" % res["c"][ef] if cproc else "-"))

            ef1 = a.single_ef
            # the C call through ctypes with every argument prepared: the floor of any ctypes binding
            lib = quartz._lib.load()
            ptr = db._ptr
            sp = quartz._lib.SearchParams(ctypes.sizeof(quartz._lib.SearchParams), ef1, None, None)
            spr = ctypes.byref(sp)
            o_ids = np.empty(a.k, np.uint64)
            o_d = np.empty(a.k, np.float32)
            o_c = np.empty(1, np.uintp)
            oi, od, oc = o_ids.ctypes.data, o_d.ctypes.data, o_c.ctypes.data
            qa = [single_q[i].ctypes.data for i in range(len(single_q))]
            raw = lambda i: lib.qz_db_search_batch(ptr, qa[i], 1, dim, a.k, spr, oi, od, oc)
            binding = lambda i: db.search(single_q[i], k=a.k, ef=ef1)
            rounds = max(a.repeats, a.single_rounds)
            idx = range(len(single_q))
            inf = (float("inf"), float("inf"))
            best = {"py": inf, "raw": inf, "c_s": inf, "c_b": inf}
            low = lambda x, y: (min(x[0], y[0]), min(x[1], y[1]))
            for _ in range(rounds):
                if cproc:
                    s1, s2 = c_ask("single %d %d" % (ef1, len(single_q)), 2)
                    best["c_s"] = low(best["c_s"], (float(s1["us_per_call"]), float(s1["cpu_us_per_call"])))
                    best["c_b"] = low(best["c_b"], (float(s2["us_per_call"]), float(s2["cpu_us_per_call"])))
                best["py"] = low(best["py"], per_call_us(1, idx, binding))
                best["raw"] = low(best["raw"], per_call_us(1, idx, raw))
            res["py_single"], res["raw_single"] = best["py"], best["raw"]
            if cproc:
                res["c_single_qz_db_search"], res["c_single_qz_db_search_batch"] = best["c_s"], best["c_b"]
                cproc.stdin.write("quit\n")
                cproc.stdin.close()
                cproc.wait()
            log("single: %s" % best)
            res["py_threads"] = {t: threaded_qps(t, single_q, lambda q: db.search(q, k=a.k, ef=ef1), a.repeats)
                                 for t in py_threads}
            log("python threads: %s" % res["py_threads"])
            db.close()

            # ---- 4. hnswlib ---------------------------------------------------------------
            if "hnswlib" in engines:
                import hnswlib
                log("hnswlib: building...")
                p = hnswlib.Index(space="cosine", dim=dim)
                t0 = time.perf_counter()
                p.init_index(max_elements=n, M=a.M, ef_construction=a.efc, random_seed=100)
                p.add_items(base, np.arange(n), num_threads=a.threads)
                res["h_build"] = time.perf_counter() - t0
                log("hnswlib: build %.1f s" % res["h_build"])
                res["h"], res["h_cpu"] = {}, {}
                for ef in efs:
                    p.set_ef(ef)
                    best_h = cpu_h = float("inf")
                    for _ in range(a.repeats):
                        wall, cpu, (labels, _) = timed(lambda: p.knn_query(query, k=a.k, num_threads=a.threads))
                        best_h, cpu_h = min(best_h, wall), min(cpu_h, cpu)
                    res["h"][ef] = (len(query) / best_h, recall(labels, gt, a.k))
                    res["h_cpu"][ef] = cpu_h * 1e6 / len(query)
                    log("hnswlib batch ef=%d qps=%.0f recall=%.4f" % (ef, *res["h"][ef]))
                p.set_ef(a.single_ef)
                res["h_single"] = per_call_us(max(a.repeats, a.single_rounds), single_q,
                                              lambda q: p.knn_query(q, k=a.k, num_threads=1))
                res["h_threads"] = {t: threaded_qps(t, single_q, lambda q: p.knn_query(q, k=a.k, num_threads=1),
                                                    a.repeats) for t in py_threads}
                log("hnswlib single %s us, threads %s" % (res["h_single"], res["h_threads"]))

        # ---- 4. the fixed cost of one call ------------------------------------------
        # On a database of 100 rows a 10-NN query costs C a few microseconds, so
        # what a call adds on top of the search stands out from the noise.
        if "fixed" in engines:
            res["fixed"] = fixed_cost(a, build, quartz, base, qpath, gpath, query, work, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load_after = uptime()
    report = render(a, res, n, dim, len(query), command, started, load_before, load_after, quartz, full)
    print(report)
    if a.out:
        with open(a.out, "a" if a.append else "w") as f:
            f.write(("\n" if a.append else "") + report)


def fmt(x, digits=0):
    return "{:,.{d}f}".format(x, d=digits)


def fixed_cost(a, build, quartz, base, qpath, gpath, query, work, log, rows=100, calls=2000, rounds=15):
    """Per-call wall and CPU microseconds of a 10-NN query (ef 10) on a 100-row
    database: C (qz_db_search, qz_db_search_batch nq = 1), the bare ctypes call,
    db.search(1-D q) and hnswlib's knn_query, interleaved, fastest of `rounds`."""
    d = os.path.join(work, "tiny.db")
    with quartz.open(d, dim=base.shape[1], metric="cosine", M=a.M, ef_construction=a.efc, durability="none") as db:
        db.add(np.arange(rows), base[:rows])
    db = quartz.open(d, readonly=True)
    qs = np.ascontiguousarray(query[:calls])
    ef, k = 10, a.k
    cmd = [os.path.join(build, "bench", "bench_search_batch"), d, qpath, gpath, "--k", str(k), "--readonly", "--serve"]
    cproc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert cproc.stdout.readline().strip() == "ready"
    lib = quartz._lib.load()
    sp = quartz._lib.SearchParams(ctypes.sizeof(quartz._lib.SearchParams), ef, None, None)
    spr = ctypes.byref(sp)
    out = np.empty(2 * k + 1, np.uint64)
    oi = out.ctypes.data
    qa = [qs[i].ctypes.data for i in range(len(qs))]
    ptr, dim = db._ptr, base.shape[1]
    import hnswlib
    h = hnswlib.Index(space="cosine", dim=dim)
    h.init_index(max_elements=rows, M=a.M, ef_construction=a.efc, random_seed=100)
    h.add_items(base[:rows], np.arange(rows), num_threads=1)
    h.set_ef(ef)
    idx = range(len(qs))
    fns = {
        "raw": lambda i: lib.qz_db_search_batch(ptr, qa[i], 1, dim, k, spr, oi, oi + 8 * k, oi + 12 * k),
        "py": lambda i: db.search(qs[i], k=k, ef=ef),
        "h": lambda i: h.knn_query(qs[i], k=k, num_threads=1),
    }
    inf = (float("inf"), float("inf"))
    best = dict.fromkeys(["c_s", "c_b", "raw", "py", "h"], inf)
    low = lambda x, y: (min(x[0], y[0]), min(x[1], y[1]))
    for _ in range(rounds):
        cproc.stdin.write("single %d %d\n" % (ef, len(qs)))
        cproc.stdin.flush()
        for key in ("c_s", "c_b"):
            kv = dict(re.findall(r"(\w+)=(\S+)", cproc.stdout.readline()))
            best[key] = low(best[key], (float(kv["us_per_call"]), float(kv["cpu_us_per_call"])))
        for key, fn in fns.items():
            best[key] = low(best[key], per_call_us(1, idx, fn))
    cproc.stdin.write("quit\n")
    cproc.stdin.close()
    cproc.wait()
    db.close()
    log("fixed cost: %s" % best)
    best.update(rows=rows, calls=len(qs), rounds=rounds, ef=ef)
    return best


def render_fixed(a, f):
    L = ["The fixed cost of one call: a 10-NN query at ef=%d on a database of the first %d rows (so that "
         "the search itself is a few microseconds), %s queries per round, fastest of %d interleaved rounds "
         "(wall clock, and CPU time of the calling thread):" % (f["ef"], f["rows"], fmt(f["calls"]), f["rounds"]),
         "", "| call | wall us per call | CPU us per call |", "|---|---:|---:|"]
    L.append("| C `qz_db_search` | %.2f | %.2f |" % f["c_s"])
    L.append("| C `qz_db_search_batch`, nq = 1 | %.2f | %.2f |" % f["c_b"])
    L.append("| ctypes call of `qz_db_search_batch` nq = 1, arguments prepared (no binding code) | %.2f | %.2f |"
             % f["raw"])
    L.append("| Python `db.search(q, k=10, ef=10)` | %.2f | %.2f |" % f["py"])
    L.append("| Python hnswlib `knn_query(q, k=10, num_threads=1)` (its own 100-row index) | %.2f | %.2f |" % f["h"])
    L.append("| **binding overhead** over C `qz_db_search` | **%.2f** | **%.2f** |" % (
        f["py"][0] - f["c_s"][0], f["py"][1] - f["c_s"][1]))
    L.append("| binding overhead over C `qz_db_search_batch` nq = 1 | %.2f | %.2f |" % (
        f["py"][0] - f["c_b"][0], f["py"][1] - f["c_b"][1]))
    L.append("| of which the binding's own Python code (over the bare ctypes call) | %.2f | %.2f |" % (
        f["py"][0] - f["raw"][0], f["py"][1] - f["raw"][1]))
    L.append("")
    return L


def render(a, res, n, dim, nq, command, started, load_before, load_after, quartz, full=True):
    name = os.path.basename(os.path.normpath(a.data))
    L = []
    L.append("## Python binding: quartz vs C vs hnswlib (%s)" % name)
    L.append("")
    L.append("- Date: %s" % started.strftime("%Y-%m-%d %H:%M UTC"))
    L.append("- Machine: %s; **shared with up to 5 other agents' jobs during the run**" % machine())
    L.append("- Load (`uptime`) before: `%s`" % load_before)
    L.append("- Load (`uptime`) after: `%s`" % load_after)
    L.append("- quartz: libquartz %s (%s kernels) through bindings/python (ctypes), numpy %s, Python %s" % (
        quartz.library_version(), res.get("simd", "?"), np.__version__, platform.python_version()))
    L.append("- hnswlib: Debian python3-hnswlib %s" % dpkg_version("python3-hnswlib"))
    L.append("- Data: %s, n=%s%s, dim=%d, cosine, %s queries, k=%d" % (
        name, fmt(n), " (first %s rows; exact ground truth recomputed)" % fmt(n) if a.limit else "", dim, fmt(nq),
        a.k))
    L.append("- Parameters: M=%d, ef_construction=%d, %d build and batch-search threads for both engines, "
             "best of %d timed runs" % (a.M, a.efc, a.threads, a.repeats))
    L.append("- Command: `%s`" % command)
    L.append("")
    if not full:
        L.extend(render_fixed(a, res["fixed"]))
        return "\n".join(L)
    L.append("Batch search = all %s queries in one call: `db.search(Q, k, ef)` (binding -> "
             "`qz_db_search_batch`), `bench/bench_search_batch --serve` (C, same call, on the same directory and graph, both "
             "processes holding it open read-only; each C run is followed at once by the Python run, and the "
             "fastest of %d runs of each is kept), "
             "`Index.knn_query(Q, k, num_threads)` (hnswlib). Recall@%d = overlap with the first %d "
             "ground-truth ids." % (fmt(nq), a.repeats, a.k, a.k))
    L.append("")
    L.append("| ef | recall@%d C | recall@%d Python | C QPS | Python QPS | **Python / C** | C CPU us/query "
             "| Python CPU us/query | **C / Python CPU** | hnswlib recall@%d | hnswlib QPS | hnswlib CPU us/query "
             "| quartz Python / hnswlib QPS |" % (a.k, a.k, a.k))
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ef in res["efs"]:
        c = res.get("c", {}).get(ef)
        cc = res.get("c_cpu", {}).get(ef)
        p = res["py"][ef]
        pc = res["py_cpu"][ef]
        h = res.get("h", {}).get(ef)
        hc = res.get("h_cpu", {}).get(ef)
        L.append("| %d | %s | %.4f | %s | %s | %s | %s | %.1f | %s | %s | %s | %s | %s |" % (
            ef, "%.4f" % c[1] if c else "-", p[1], fmt(c[0]) if c else "-", fmt(p[0]),
            "%.3f" % (p[0] / c[0]) if c else "-", "%.1f" % cc if cc else "-", pc,
            "%.3f" % (cc / pc) if cc else "-", "%.4f" % h[1] if h else "-", fmt(h[0]) if h else "-",
            "%.1f" % hc if hc else "-", "%.2f" % (p[0] / h[0]) if h else "-"))
    L.append("")
    L.append("QPS = queries / wall-clock seconds of the call. CPU us/query = CPU time of the whole process "
             "(every thread) during the call / queries: on a shared, oversubscribed machine it moves much less "
             "than the wall clock, because it does not count the time other processes ran instead. "
             "Python / C (QPS) and C / Python (CPU) at or above 1 mean the binding is as fast as C; the "
             "binding adds one Python call per batch, so what differs is the machine's noise.")
    L.append("")
    L.append("One 10-NN query at ef=%d on the calling thread, microseconds per call (mean over %s queries, "
             "fastest of %d interleaved rounds; CPU = the calling thread's CPU time):" % (
                 a.single_ef, fmt(min(a.single, nq)), max(a.repeats, a.single_rounds)))
    L.append("")
    L.append("| call | wall us per call | CPU us per call |")
    L.append("|---|---:|---:|")
    cs = res.get("c_single_qz_db_search")
    cb = res.get("c_single_qz_db_search_batch")
    ps, rs = res["py_single"], res["raw_single"]
    if cs:
        L.append("| C `qz_db_search` | %.2f | %.2f |" % cs)
    if cb:
        L.append("| C `qz_db_search_batch`, nq = 1 | %.2f | %.2f |" % cb)
    L.append("| ctypes call of `qz_db_search_batch` nq = 1, arguments prepared (no binding code) | %.2f | %.2f |" % rs)
    L.append("| Python `db.search(q, k=10, ef=%d)` (1-D q) | %.2f | %.2f |" % ((a.single_ef,) + ps))
    if "h_single" in res:
        L.append("| Python hnswlib `knn_query(q, k=10, num_threads=1)` | %.2f | %.2f |" % res["h_single"])
    if cs:
        L.append("| **binding overhead** over C `qz_db_search` | **%.2f** | **%.2f** |" % (ps[0] - cs[0], ps[1] - cs[1]))
    if cb:
        L.append("| binding overhead over C `qz_db_search_batch` nq = 1 | %.2f | %.2f |" % (ps[0] - cb[0], ps[1] - cb[1]))
    L.append("| of which the binding's own Python code (over the bare ctypes call) | %.2f | %.2f |" % (
        ps[0] - rs[0], ps[1] - rs[1]))
    L.append("")
    L.append("Python threads, each searching its share of the %s queries one at a time (ef=%d), QPS:" % (
        fmt(min(a.single, nq)), a.single_ef))
    L.append("")
    L.append("| Python threads | quartz | hnswlib |")
    L.append("|---:|---:|---:|")
    for t, q in res["py_threads"].items():
        h = res.get("h_threads", {}).get(t)
        L.append("| %d | %s | %s |" % (t, fmt(q), fmt(h) if h else "-"))
    L.append("")
    L.append("Build (%d threads): quartz through the binding %.1f s (one `db.add`, directory, durability none; "
             "close %.1f s, reopen %.2f s)%s." % (
                 a.threads, res["q_build"], res["q_close"], res["q_open"],
                 ", hnswlib %.1f s" % res["h_build"] if "h_build" in res else ""))
    L.append("")
    if "fixed" in res:
        L.extend(render_fixed(a, res["fixed"]))
    return "\n".join(L)


if __name__ == "__main__":
    main()
