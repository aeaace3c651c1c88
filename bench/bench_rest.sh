#!/usr/bin/env bash
# bench_rest.sh [--build DIR] [--data DATASET_DIR] [--seconds S] [--threads T] [--ef EF] [--out FILE]
#
# Load test of quartzd on 127.0.0.1 with wrk, by default on the 384-dimension
# set (sapdocs-minilm384-angular: 678 base vectors, 100 queries; --data takes
# any texmex folder, e.g. glove6b-100-angular, its metric from the suffix):
#   1. search requests/s and p50/p99 latency at 1, 8 and 64 connections
#      (k = 10, the given ef), quartzd with T worker threads;
#   2. the same directory opened in-process after quartzd stopped, searched by
#      T threads calling qz_db_search() one query at a time
#      (build/bench/bench_search_threads), and the ratio HTTP / in-process;
#   3. insert requests/s (one vector per request, 8 connections) under each
#      durability mode (sync, batched, none), each on a fresh directory.
# Every phase must finish with zero socket errors and zero non-2xx answers.
# Prints a markdown report (and writes it to FILE with --out).
set -euo pipefail
cd "$(dirname "$0")/.."
args="$*"
build=build data=${QZ_DATA_DIR:-../shared/data}/sapdocs-minilm384-angular
secs=10 threads=2 ef=64 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --data) data=$2; shift ;;
    --seconds) secs=$2; shift ;;
    --threads) threads=$2; shift ;;
    --ef) ef=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--build DIR] [--data DIR] [--seconds S] [--threads T] [--ef EF] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
qd=$build/tools/quartzd/quartzd
inproc=$build/bench/bench_search_threads
for f in "$qd" "$inproc"; do [ -x "$f" ] || { echo "bench_rest: $f not built (scripts/build.sh)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "bench_rest: wrk missing (apt-get install wrk)" >&2; exit 1; }
[ -f "$data/base.fvecs" ] || { echo "bench_rest: $data/base.fvecs not found; skipped" >&2; exit 77; }
py=/usr/bin/python3

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
source bench/wrk/common.sh
port=$(qz_free_port)
url=http://127.0.0.1:$port
export QZ_WRK_DIR=$PWD/bench/wrk

# Request bodies: the queries as search bodies, the base vectors as arrays.
$py bench/wrk/bodies.py "$data" "$tmp" "$ef" --queries 1000 --vectors 10000 --batch 5000

start() { # start DATA_DIR DURABILITY
  "$qd" --listen "127.0.0.1:$port" --data "$1" --durability "$2" --threads "$threads" 2>"$tmp/quartzd.log" &
  pid=$!
  qz_wait_up "$url" "$tmp/quartzd.log"
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=""; }
read -r nbase dim nquery <"$tmp/shape"
case "$(basename "$data")" in *-euclidean) metric=l2 ;; *) metric=cosine ;; esac
make_index() {
  curl -fs -X POST "$url/api/indexes" -H 'Content-Type: application/json' \
    -d "{\"name\": \"bench\", \"dimension\": $dim, \"metric\": \"$metric\"}" >/dev/null
}
result() { qz_wrk_result "$1" "$2" "$tmp/quartzd.log"; } # result NAME WRK-OUTPUT-FILE

report=$tmp/report.md
{
  echo "Command: \`bench/bench_rest.sh $args\`"
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load before the run: $(uptime | sed 's/.*load average/load average/')"
  echo "quartzd $("$qd" --version | head -1 | awk '{print $2}'), $threads worker threads, kernels $(curl -s "$url/health" >/dev/null 2>&1; echo "see stats"); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), 1 wrk thread per 8 connections at most 2"
  echo "Data: $(basename "$data") ($nbase x $dim, $metric; $nquery queries), k = 10, ef = $ef"
  echo
} >"$report"

# 1. search
start "$tmp/search-data" sync
make_index
t0=$(date +%s.%N)
for b in "$tmp"/batch-*.json; do
  curl -fs -X POST "$url/api/indexes/bench/vector/batch-insert" -H 'Content-Type: application/json' \
    --data-binary @"$b" >/dev/null
done
build_s=$($py -c "import time; print('%.1f' % (time.time() - $t0))")
simd=$(curl -fs "$url/api/indexes/bench/vector/stats" | $py -c 'import json,sys; print(json.load(sys.stdin)["simd"])')
sed -i "s/kernels see stats/kernels $simd/" "$report"
export QZ_WRK_BODIES=$tmp/search.jsonl QZ_WRK_PATH=/api/indexes/bench/vector/search
wrk -t1 -c8 -d2s -s bench/wrk/search.lua "$url" >/dev/null # warm-up
{
  echo "| search, HTTP | connections | requests/s | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|---:|---:|"
} >>"$report"
best=0
for c in 1 8 64; do
  t=1; [ "$c" -ge 8 ] && t=2
  wrk -t$t -c$c -d${secs}s -s bench/wrk/search.lua "$url" >"$tmp/wrk.out" 2>&1
  result "search c=$c" "$tmp/wrk.out"
  echo "| quartzd | $c | $r_rps | $r_p50_ms | $r_p99_ms |" >>"$report"
  [ "${r_rps%.*}" -gt "$best" ] && best=${r_rps%.*}
done
stop

# 2. in-process, same directory, same queries, k, ef and threads
"$inproc" "$tmp/search-data/indexes/bench" "$data/query.fvecs" --threads "$threads" --seconds "$secs" --k 10 --ef "$ef" \
  >"$tmp/inproc.out"
inqps=$(sed 's/.*qps=\([0-9]*\).*/\1/' "$tmp/inproc.out")
inp50=$(sed 's/.*p50_us=\([0-9.]*\).*/\1/' "$tmp/inproc.out")
ratio=$($py -c "print('%.2f' % ($best / $inqps))")
{
  echo
  echo "| search, in-process | threads | queries/s | p50 (µs) |"
  echo "|---|---:|---:|---:|"
  echo "| qz_db_search | $threads | $inqps | $inp50 |"
  echo
  echo "HTTP / in-process search throughput (best HTTP row / in-process): **$ratio**"
  echo
  echo "Loading the index: $nbase vectors in batch inserts of 5,000 over HTTP, ${build_s} s."
  echo
  echo "| insert, HTTP (8 connections, one vector per request) | durability | requests/s | p50 (ms) | p99 (ms) |"
  echo "|---|---|---:|---:|---:|"
} >>"$report"

# 3. inserts under each durability mode
export QZ_WRK_BODIES=$tmp/vectors.jsonl QZ_WRK_PATH=/api/indexes/bench/vector/insert QZ_WRK_ID_BASE=1000000
for mode in sync batched none; do
  start "$tmp/insert-$mode" "$mode"
  make_index
  wrk -t2 -c8 -d${secs}s -s bench/wrk/insert.lua "$url" >"$tmp/wrk.out" 2>&1
  result "insert $mode" "$tmp/wrk.out"
  n=$(curl -fs "$url/api/indexes/bench" | $py -c 'import json,sys; print(json.load(sys.stdin)["index"]["count"])')
  stop
  echo "| quartzd | $mode | $r_rps | $r_p50_ms | $r_p99_ms |" >>"$report"
  echo "insert $mode: $r_requests acknowledged, $n stored" >&2
  # wrk stops counting at the deadline; requests still in flight may land too
  [ "$n" -ge "$r_requests" ] || { echo "bench_rest: $mode stored $n of $r_requests acknowledged inserts"; exit 1; }
done
echo >>"$report"
echo "Every phase: 0 socket errors, 0 non-2xx answers; every acknowledged insert was stored." >>"$report"
cat "$report"
[ -n "$out" ] && cp "$report" "$out"
exit 0
