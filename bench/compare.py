#!/usr/bin/python3
"""Run libquartz (bench_index) and hnswlib (peer_hnswlib) on every dataset
folder and summarise them side by side.

libquartz runs once per stored element type (--dtypes, default
f32,f16,int8,binary,f16-stored,int8-stored: engines quartz-f32, quartz-f16,
...; "-stored" is the same dtype in a directory opened with
QZ_OPEN_ORIGINALS_IN_STORAGE, bench_index --originals storage); every quartz
row is compared with hnswlib from the same run. With matplotlib (Debian's
python3-matplotlib) it also draws one recall-QPS chart per dataset, every
engine on it (log QPS against recall, as ann-benchmarks does), into --png-dir.

Both programs take the same arguments and print the same CSV (the loop that
times and judges them is shared C code, bench/datasets.c). This script only
runs them, keeps every row in one CSV file, and writes a markdown report:
per dataset, the best single-thread QPS among the ef values whose recall@10
reaches 0.90, 0.95 and 0.99, plus build time and memory, with quartz/hnswlib
ratios.

Standard library only. Example, from the repository root:
    /usr/bin/python3 bench/compare.py --build build --out /tmp/results.md
"""

import argparse
import csv
import datetime
import io
import os
import platform
import shlex
import struct
import subprocess
import sys
import threading

HEADER = ("dataset,engine,n,dim,metric,threads,M,ef_construction,ef,recall_at_10,"
          "qps,p50_us,p99_us,build_s,memory_bytes,oversample").split(",")
ENGINES = {"quartz": "bench_index", "hnswlib": "peer_hnswlib"}
TARGETS = (0.90, 0.95, 0.99)
DTYPES = ("f32", "f16", "int8", "binary", "f16-stored", "int8-stored")
PEER = "hnswlib"


def engine_binary_key(label):
    """'quartz-int8' -> 'quartz'."""
    return label.split("-", 1)[0]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def folder_metric(name):
    if name.endswith("-angular"):
        return "cosine"
    if name.endswith("-euclidean"):
        return "l2"
    return None


def find_datasets(root, only):
    """Dataset folders under root whose name says the metric, smallest first."""
    found = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        base = os.path.join(path, "base.fvecs")
        if not os.path.isfile(base):
            continue
        if only and name not in only:
            continue
        metric = folder_metric(name)
        if metric is None:
            print(f"compare: skipping {name}: name ends neither in -angular nor -euclidean",
                  file=sys.stderr)
            continue
        found.append((os.path.getsize(base), name, path, metric))
    found.sort()
    return [(name, path, metric) for _, name, path, metric in found]


def count_vectors(path):
    """Rows of a texmex file, from its first dimension and its size."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        (dim,) = struct.unpack("<i", head)
        return os.path.getsize(path) // (4 + 4 * dim)
    except (OSError, struct.error, ZeroDivisionError):
        return None


def find_binary(build, name):
    for cand in (os.path.join(build, "bench", name), os.path.join(build, name)):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def run_engine(binary, engine, args, info):
    """Run one engine on one dataset; returns (rows, error). stderr is echoed
    live; its 'info: key=value ...' line is kept in `info`."""
    cmd = [binary] + args
    print("compare: $ " + shlex.join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines = []

    def pump_stderr():
        for line in proc.stderr:
            err_lines.append(line)
            sys.stderr.write(f"  [{engine}] {line}")
            sys.stderr.flush()

    t = threading.Thread(target=pump_stderr, daemon=True)
    t.start()
    out_lines = []
    for line in proc.stdout:
        out_lines.append(line)
        sys.stderr.write(f"  [{engine}] {line}")
        sys.stderr.flush()
    rc = proc.wait()
    t.join()
    for line in err_lines:
        if line.startswith("info:"):
            for item in line[5:].split():
                if "=" in item:
                    k, v = item.split("=", 1)
                    info[k] = v
    if rc != 0:
        tail = "".join(err_lines[-3:]).strip()
        return [], f"exit status {rc}: {tail}"
    reader = csv.reader(io.StringIO("".join(out_lines)))
    rows = list(reader)
    if not rows or rows[0] != HEADER:
        return [], "unexpected CSV header: " + (",".join(rows[0]) if rows else "(no output)")
    return [dict(zip(HEADER, r)) for r in rows[1:] if r], None


def best_of_rounds(rows):
    """One row per (engine, threads, ef, oversample): the fastest of the
    rounds (each round's row is a real measurement, with its own recall,
    which differs between builds on several threads only in the fourth
    decimal), with the shortest build time of the engine's rounds and the
    memory of that build. One round: the rows as they are."""
    best, build = {}, {}
    for r in rows:
        b = build.get(r["engine"])
        if b is None or float(r["build_s"]) < float(b[0]):
            build[r["engine"]] = (r["build_s"], r["memory_bytes"])
        key = (r["engine"], r["threads"], r["ef"], r.get("oversample", ""))
        if key not in best or float(r["qps"]) > float(best[key]["qps"]):
            best[key] = r
    out = []
    for r in best.values():
        r = dict(r)
        r.pop("round", None)
        r["build_s"], r["memory_bytes"] = build[r["engine"]]
        out.append(r)
    return out


def fmt_int(x):
    return f"{x:,.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def row_os(r):
    """The row's oversampling factor (0: none or the dtype's default; CSVs
    written before the column existed have none)."""
    return int(r.get("oversample") or 0)


def best_qps(rows, engine, target):
    """Highest single-thread QPS among the (ef, oversample) settings with
    recall >= target: (qps, ef, oversample)."""
    best = None
    for r in rows:
        if r["engine"] != engine or int(r["threads"]) != 1:
            continue
        if float(r["recall_at_10"]) + 1e-12 >= target:
            q = float(r["qps"])
            if best is None or q > best[0]:
                best = (q, int(r["ef"]), row_os(r))
    return best


def engine_build(rows, engine):
    for r in rows:
        if r["engine"] == engine:
            return float(r["build_s"]), int(r["memory_bytes"])
    return None, None


def machine_info():
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    simd = [x for x in ("avx512f", "avx2", "fma", "neon") if x in fl]
                    flags = ", ".join(simd)
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1048576:.1f} GiB RAM"
                    break
    except (OSError, ValueError):
        pass
    cores = os.cpu_count() or 0
    parts = [model, f"{cores} logical CPUs"]
    if flags:
        parts.append(flags)
    if mem:
        parts.append(mem)
    parts.append(f"{platform.system()} {platform.release()}")
    return ", ".join(parts)


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def markdown(results, settings, infos, command, started):
    engines = settings["engines"]
    out = []
    out.append("## QuartzDB vs hnswlib on real datasets\n")
    out.append(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}"
               + (" (report made from an earlier CSV)" if settings["repeats"] is None else ""))
    out.append(f"- Machine: {machine_info()}")
    cc = tool_version(["cc", "--version"])
    if cc:
        out.append(f"- Compiler: {cc}")
    hv = tool_version(["dpkg-query", "-W", "-f", "${Version}", "libhnswlib-dev"])
    qinfo = next((i for (e, _), i in infos.items() if engine_binary_key(e) == "quartz" and i), {})
    hinfo = next((i for (e, _), i in infos.items() if e == "hnswlib" and i), {})
    if any(engine_binary_key(e) == "quartz" for e in engines):
        out.append(f"- quartz: libquartz {qinfo.get('version', '?')}, kernels {qinfo.get('simd', '?')},"
                   " in-memory database, public API (qz_db_insert_batch, qz_db_search); quartz-<dtype> is"
                   " qz_open_options.dtype, f16/int8/binary walk codes and re-rank k * oversample"
                   " candidates on the f32 originals (oversample "
                   + (f"{{{settings.get('oversample')}}} for f16 and int8, swept like ef: a cell's"
                      " setting is (ef, os); binary 16"
                      if settings.get("oversample") not in (None, "", "0") else
                      "default: f16 2, int8 3, binary 16") + "; the candidate list is at least that, so"
                   " a row's effective ef is max(ef, 10 * oversample)); quartz-<dtype>-stored is the same"
                   " dtype in a directory under /var/tmp opened with QZ_OPEN_ORIGINALS_IN_STORAGE (the f32"
                   " originals stay in LMDB, re-ranking reads them there; the graph is built on the codes),"
                   " durability NONE, flushed after the build")
    if "hnswlib" in engines:
        out.append(f"- hnswlib: {hv or 'headers'} (Debian libhnswlib-dev), kernels "
                   f"{hinfo.get('simd', '?')}, -O3 -march=native; cosine = normalised vectors + "
                   "InnerProductSpace")
    out.append(f"- Parameters: M={settings['M']}, ef_construction={settings['efc']}, "
               f"ef in {{{settings['ef']}}}, build threads={settings['threads']}, k=10"
               + (f", best of {settings['repeats']} timed runs per row" if settings["repeats"] else "")
               + (f" and of {settings['rounds']} rounds per engine (alternating order; build time the "
                  f"shortest round's)" if settings.get("rounds", 1) > 1 else "")
               + (f", first {settings['limit_queries']} queries" if settings["limit_queries"] else "")
               + (f", first {settings['limit_base']:,} base vectors (ground truth recomputed)"
                  if settings.get("limit_base") else ""))
    out.append(f"- Command: `{command}`")
    out.append("")
    out.append("QPS is single-thread (one query at a time), the best among the settings whose "
               "tie-aware recall@10 reaches the target (the ef, and the oversampling factor where it "
               "was swept, in brackets; n/a: none reached it). "
               "Memory is the growth of resident memory (VmRSS) over the build, with the dataset "
               "already loaded; for the -stored engines it is the growth of RssAnon (the process's "
               "own memory: LMDB's file pages that re-ranking reads are the kernel's page cache, "
               "evictable, and not counted), measured after the flush; qz_stats.memory_bytes is what "
               "libquartz counts itself (codes, originals where in memory, graph, id map). Ratios are engine / hnswlib: above 1 is better for QPS, "
               "below 1 is better for build time and memory.\n")
    for ds, rows, errors in results:
        r0 = rows[0] if rows else None
        nq = ds.get("queries")
        title = f"### {ds['name']}"
        if r0:
            title += f" (n={int(r0['n']):,}, dim={r0['dim']}, {r0['metric']}"
            title += f", {nq:,} queries)" if nq else ")"
        out.append(title + "\n")
        for eng, msg in errors.items():
            out.append(f"- **{eng} failed**: {msg}")
        if errors:
            out.append("")
        present = [e for e in engines if any(r["engine"] == e for r in rows)]
        peer = PEER if PEER in present else None
        cell = lambda x: (f"{fmt_int(x[0])} (ef {x[1]}" + (f", os {x[2]})" if x[2] else ")")) if x else "n/a"
        f_s = lambda x: f"{x:.2f}" if x is not None else "n/a"
        f_m = lambda x: f"{x / 1048576:.1f}" if x is not None else "n/a"
        head = "| engine |"
        sep = "|---|"
        for t in TARGETS:
            head += f" QPS at recall >= {t:.2f} |"
            sep += "---:|"
            if peer:
                head += f" / {peer} |"
                sep += "---:|"
        head += f" build, {settings['threads']} threads (s) |" + (f" / {peer} |" if peer else "")
        head += " memory, RSS growth (MiB) |" + (f" / {peer} |" if peer else "")
        head += " qz_stats.memory_bytes (MiB) |"
        sep += "---:|" * ((2 if peer else 1) * 2 + 1)
        out.append(head)
        out.append(sep)
        pb, pm = engine_build(rows, peer) if peer else (None, None)
        for e in present:
            line = f"| {e} |"
            for t in TARGETS:
                a = best_qps(rows, e, t)
                line += f" {cell(a)} |"
                if peer:
                    b = best_qps(rows, peer, t)
                    line += f" {ratio(a[0] if a else None, b[0] if b else None)} |"
            ba, ma = engine_build(rows, e)
            line += f" {f_s(ba)} |" + (f" {ratio(ba, pb)} |" if peer else "")
            line += f" {f_m(ma)} |" + (f" {ratio(ma, pm)} |" if peer else "")
            qm = infos.get((e, ds["name"]), {}).get("qz_stats.memory_bytes")
            line += f" {f_m(int(qm)) if qm else 'n/a'} |"
            out.append(line)
        out.append("")
        if ds.get("png"):
            out.append(f"![recall-QPS, {ds['name']}]({ds['png']})\n")
        if rows:
            out.append("All runs (threads > 1: that many searchers at once; latencies in microseconds):\n")
            out.append("| engine | threads | oversample | ef | recall@10 | QPS | p50 | p99 |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in sorted(rows, key=lambda r: (engines.index(r["engine"]) if r["engine"] in engines
                                                 else 9, int(r["threads"]), row_os(r), int(r["ef"]))):
                out.append(f"| {r['engine']} | {r['threads']} | {row_os(r) or '-'} | {r['ef']} | "
                           f"{float(r['recall_at_10']):.4f} | {fmt_int(float(r['qps']))} | "
                           f"{float(r['p50_us']):.1f} | {float(r['p99_us']):.1f} |")
            out.append("")
    return "\n".join(out) + "\n"


def plot(ds_name, rows, engines, path):
    """recall-QPS chart of one dataset (single-thread rows); False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("compare: matplotlib missing (python3-matplotlib): no chart", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for e in engines:
        pts = sorted((float(r["recall_at_10"]), float(r["qps"])) for r in rows
                     if r["engine"] == e and int(r["threads"]) == 1)
        if not pts:
            continue
        # the Pareto front, as ann-benchmarks draws it
        front, best = [], 0.0
        for rec, q in sorted(pts, key=lambda p: -p[0]):
            if q > best:
                front.append((rec, q))
                best = q
        front.sort()
        ax.plot([p[0] for p in front], [p[1] for p in front], marker="o", ms=3,
                ls="--" if e == PEER else "-", label=e)
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 (tie-aware)")
    ax.set_ylabel("queries per second, 1 thread (log)")
    ax.set_title(ds_name)
    for t in (0.95, 0.99):
        ax.axvline(t, color="grey", lw=0.6, ls=":")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"compare: chart written to {path}", file=sys.stderr)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="meson build directory holding bench/bench_index and bench/peer_hnswlib "
                         "(default: %(default)s)")
    ap.add_argument("--data-root", default=os.path.join(os.path.dirname(REPO), "shared", "data"),
                    help="folder of dataset folders (default: %(default)s)")
    ap.add_argument("--datasets", default="", help="comma-separated folder names (default: all)")
    ap.add_argument("--engines", default="quartz,hnswlib", help="default: %(default)s")
    ap.add_argument("--dtypes", default=",".join(DTYPES),
                    help="quartz element types to run, each as engine quartz-<dtype> (default: %(default)s)")
    ap.add_argument("--oversample", default="0",
                    help="qz_search_params.oversample for the f16 and int8 engines, one value or a "
                         "comma-separated list swept like ef (every ef at every factor, on the same index; "
                         "the report takes the best setting per recall target); 0 = the dtype's default "
                         "(default: %(default)s)")
    ap.add_argument("--png-dir", default=os.path.join(REPO, "bench", "results"),
                    help="folder for the recall-QPS charts, quant_<dataset>.png (default: %(default)s); "
                         "'' = none")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", default="10,20,40,80,120,200,400")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit-queries", type=int, default=0, help="0 = all queries")
    ap.add_argument("--limit-base", type=int, default=0,
                    help="index the first N base vectors only (ground truth recomputed exactly); 0 = all")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every engine this many times per dataset, in alternating order, "
                         "and keep each row's fastest round (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="time each run this often, keep the fastest (default: %(default)s)")
    ap.add_argument("--min-seconds", type=float, default=None,
                    help="passed on: repeat the query set until a timed run lasts this long")
    ap.add_argument("--csv", default=None,
                    help="write every CSV row here (default: BUILD/bench_results.csv)")
    ap.add_argument("--out", default=None, help="write the markdown report here (it is also printed)")
    ap.add_argument("--from-csv", default=None,
                    help="do not run anything: make the report from a CSV written earlier")
    a = ap.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    command = shlex.join([sys.executable] + sys.argv)
    programs = [e.strip() for e in a.engines.split(",") if e.strip()]
    for e in programs:
        if e not in ENGINES:
            ap.error(f"unknown engine {e} (known: {', '.join(ENGINES)})")
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    for d in dtypes:
        if d not in DTYPES:
            ap.error(f"unknown dtype {d} (known: {', '.join(DTYPES)})")
    # engine labels: quartz-<dtype> per dtype, then the others
    engines = []
    for e in programs:
        engines += [f"{e}-{d}" for d in dtypes] if e == "quartz" else [e]
    settings = {"engines": engines, "M": a.M, "efc": a.efc, "ef": a.ef, "threads": a.threads,
                "limit_queries": a.limit_queries, "repeats": a.repeats, "oversample": a.oversample,
                "rounds": a.rounds,
                "limit_base": a.limit_base}
    results = []   # (dataset dict, rows, {engine: error})
    infos = {}     # (engine, dataset) -> info dict
    all_rows = []
    raw_rows = []  # every round's rows (--rounds > 1)

    if a.from_csv:
        with open(a.from_csv, newline="") as f:
            rows = list(csv.DictReader(f))
        def values(col):
            vals = sorted({int(r[col]) for r in rows})
            return ",".join(str(v) for v in vals)
        # The parameters are what the CSV holds, not this command's defaults.
        settings.update(M=values("M"), efc=values("ef_construction"), ef=values("ef"),
                        threads=max(int(r["threads"]) for r in rows), repeats=None, limit_queries=0,
                        oversample=",".join(str(v) for v in sorted({row_os(r) for r in rows} - {0})) or "0")
        by_ds = {}
        for r in rows:
            by_ds.setdefault(r["dataset"], []).append(r)
        seen = []
        for r in rows:
            if r["engine"] not in seen:
                seen.append(r["engine"])
        settings["engines"] = engines = seen
        for name, rs in by_ds.items():
            q = count_vectors(os.path.join(a.data_root, name, "query.fvecs"))
            results.append(({"name": name, "queries": q}, rs, {}))
    else:
        only = set(x for x in a.datasets.split(",") if x)
        datasets = find_datasets(a.data_root, only)
        if not datasets:
            print(f"compare: no dataset folders in {a.data_root}", file=sys.stderr)
            return 1
        binaries = {}
        for e in engines:
            prog = ENGINES[engine_binary_key(e)]
            binaries[e] = find_binary(a.build, prog)
            if not binaries[e]:
                print(f"compare: {prog} not found under {a.build}; {e} is skipped",
                      file=sys.stderr)
        for name, path, metric in datasets:
            args = ["--data", path, "--metric", metric, "--M", str(a.M), "--efc", str(a.efc),
                    "--ef", a.ef, "--threads", str(a.threads)]
            if a.limit_queries:
                args += ["--limit-queries", str(a.limit_queries)]
            if a.limit_base:
                args += ["--limit-base", str(a.limit_base)]
            args += ["--repeats", str(a.repeats)]
            if a.min_seconds is not None:
                args += ["--min-seconds", str(a.min_seconds)]
            rows, errors = [], {}
            for rnd in range(a.rounds):
                # Rounds alternate the order (hnswlib last, then first), so
                # each engine is measured early and late in the dataset's
                # time: the VM's speed drifts by tens of percent within
                # minutes, and one run of one engine can land in a slow spell.
                order = engines if rnd % 2 == 0 else list(reversed(engines))
                for e in order:
                    if not binaries[e]:
                        errors[e] = f"{ENGINES[engine_binary_key(e)]} was not built"
                        continue
                    info = {}
                    eargs = list(args)
                    if engine_binary_key(e) == "quartz":
                        d = e.split("-", 1)[1]
                        if d.endswith("-stored"):
                            eargs += ["--dtype", d[:-len("-stored")], "--originals", "storage"]
                        else:
                            eargs += ["--dtype", d]
                        if a.oversample not in ("", "0") and d.split("-")[0] in ("f16", "int8"):
                            eargs += ["--oversample", a.oversample]
                    got, err = run_engine(binaries[e], e, eargs, info)
                    if a.rounds > 1:
                        print(f"compare: round {rnd + 1} of {a.rounds} done for {e} on {name}",
                              file=sys.stderr)
                    if (e, name) not in infos or not err:
                        infos[(e, name)] = info
                    if err:
                        errors[e] = err
                    for r in got:
                        r["round"] = str(rnd + 1)
                    rows += got
            raw_rows += rows
            rows = best_of_rounds(rows)
            q = count_vectors(os.path.join(path, "query.fvecs"))
            if q and a.limit_queries:
                q = min(q, a.limit_queries)
            results.append(({"name": name, "queries": q}, rows, errors))
            all_rows += rows
        csv_path = a.csv or os.path.join(a.build, "bench_results.csv")
        os.makedirs(os.path.dirname(os.path.abspath(csv_path)), exist_ok=True)
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HEADER, lineterminator="\n")
            w.writeheader()
            w.writerows(all_rows)
        print(f"compare: {len(all_rows)} rows written to {csv_path}", file=sys.stderr)
        if a.rounds > 1:
            # every round's rows, as measured (the report keeps the fastest)
            raw_path = os.path.splitext(csv_path)[0] + "_rounds.csv"
            with open(raw_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=HEADER + ["round"], lineterminator="\n")
                w.writeheader()
                w.writerows(raw_rows)
            print(f"compare: {len(raw_rows)} rows of every round written to {raw_path}", file=sys.stderr)

    if a.png_dir:
        os.makedirs(a.png_dir, exist_ok=True)
        out_dir = os.path.dirname(os.path.abspath(a.out)) if a.out else None
        for ds, rows, _ in results:
            path = os.path.join(a.png_dir, f"quant_{ds['name']}.png")
            if rows and plot(ds["name"], rows, settings["engines"], path):
                ds["png"] = os.path.relpath(path, out_dir) if out_dir else path
    report = markdown(results, settings, infos, command, started)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)
        print(f"compare: report written to {a.out}", file=sys.stderr)
    return 0 if all(not errs for _, _, errs in results) else 1


if __name__ == "__main__":
    sys.exit(main())
