#!/usr/bin/env bash
# bench/worker/bench_worker.sh [--build DIR] [--data DATASET_DIR] [--seconds S] [--ef EF] [--out FILE]
#
# Load test of the QuartzDB Worker on workerd (127.0.0.1, scripts/worker-dev.sh)
# side by side with quartzd (the native server, --threads 2) in the same run,
# on the 384-dimension set (sapdocs-minilm384-angular: 678 x 384, 100 queries), wrk:
#   1. search requests/s and p50/p99 at 1 and 8 connections: worker (4 shards) vs quartzd;
#   2. shard fan-out: search at 8 connections over the same data in indexes of 1, 4 and 16 shards;
#   3. insert requests/s (one vector per request, 8 connections), worker vs quartzd (sync).
# Every phase must end with zero socket errors and zero non-2xx answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build data=${QZ_DATA_DIR:-../shared/data}/sapdocs-minilm384-angular
secs=10 ef=64 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --data) data=$2; shift ;;
    --seconds) secs=$2; shift ;;
    --ef) ef=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--build DIR] [--data DIR] [--seconds S] [--ef EF] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
qd=$build/tools/quartzd/quartzd
[ -x "$qd" ] || { echo "bench_worker: $qd not built" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_worker: wrk missing (apt-get install wrk)" >&2; exit 1; }
[ -f "$data/base.fvecs" ] || { echo "bench_worker: $data/base.fvecs not found; skipped" >&2; exit 77; }
py=/usr/bin/python3
bash scripts/worker-dev.sh --build-only >/dev/null 2>&1 || { echo "bench_worker: wasm build failed" >&2; exit 1; }

tmp=$(mktemp -d)
wpid="" qpid=""
cleanup() {
  [ -n "$wpid" ] && kill -TERM "$wpid" 2>/dev/null
  [ -n "$qpid" ] && kill -TERM "$qpid" 2>/dev/null
  wait 2>/dev/null; rm -rf "$tmp"
}
trap cleanup EXIT
source bench/wrk/common.sh
wport=$(qz_free_port); qport=$(qz_free_port)
wurl=http://127.0.0.1:$wport qurl=http://127.0.0.1:$qport
key=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export QZ_WRK_DIR=$PWD/bench/wrk

$py bench/wrk/bodies.py "$data" "$tmp" "$ef"

QUARTZ_API_KEY=$key QUARTZ_MAX_BODY=$((64 << 20)) bash scripts/worker-dev.sh "$wport" "$tmp/worker-data" 2>"$tmp/workerd.log" &
wpid=$!
"$qd" --listen "127.0.0.1:$qport" --data "$tmp/quartzd-data" --durability sync --threads 2 2>"$tmp/quartzd.log" &
qpid=$!
qz_wait_up "$wurl" "$tmp/workerd.log"; qz_wait_up "$qurl" "$tmp/quartzd.log"
mk() { # mk URL NAME SHARDS
  curl -fs -X POST "$1/api/indexes" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"name\": \"$2\", \"dimension\": 384, \"metric\": \"cosine\", \"shards\": $3}" >/dev/null
}
load() { curl -fs -X POST "$1/api/indexes/$2/vector/batch-insert" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' --data-binary @"$tmp/batch-0000000.json" >/dev/null; }
result() { qz_wrk_result "$1" "$2" "$tmp/workerd.log"; }
run() { # run NAME URL PATH BODIES SCRIPT CONNS
  local t=1; [ "$6" -ge 8 ] && t=2
  QZ_WRK_KEY=$key QZ_WRK_BODIES=$4 QZ_WRK_PATH=$3 wrk -t$t -c$6 -d${secs}s -s "bench/wrk/$5" "$2" >"$tmp/wrk.out" 2>&1
  result "$1" "$tmp/wrk.out"
}

for s in 1 4 16; do mk "$wurl" "s$s" "$s"; load "$wurl" "s$s"; done
mk "$qurl" s4 4; load "$qurl" s4
report=$tmp/report.md
{
  echo "Command: \`bench/worker/bench_worker.sh --seconds $secs --ef $ef\`"
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load before the run: $(uptime | sed 's/.*load average/load average/')"
  echo "workerd $("$PWD/examples/worker/node_modules/@cloudflare/workerd-linux-64/bin/workerd" --version | awk '{print $2}') (one process, wasm simd128, 96 MB linear memory), quartzd $("$qd" --version | head -1 | awk '{print $2}') with 2 threads; wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "Data: $(basename "$data") (678 x 384, cosine), k = 10, ef = $ef, $secs s per row"
  echo
  echo "| search | connections | requests/s | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|---:|---:|"
} >"$report"
QZ_WRK_KEY=$key QZ_WRK_BODIES=$tmp/search.jsonl QZ_WRK_PATH=/api/indexes/s4/vector/search \
  wrk -t1 -c8 -d2s -s bench/wrk/search.lua "$wurl" >/dev/null # warm-up
for c in 1 8; do
  run "worker search c=$c" "$wurl" /api/indexes/s4/vector/search "$tmp/search.jsonl" search.lua $c
  echo "| worker, 4 shards | $c | $r_rps | $r_p50_ms | $r_p99_ms |" >>"$report"
  run "quartzd search c=$c" "$qurl" /api/indexes/s4/vector/search "$tmp/search.jsonl" search.lua $c
  echo "| quartzd | $c | $r_rps | $r_p50_ms | $r_p99_ms |" >>"$report"
done
{
  echo
  echo "| fan-out: search, 8 connections | shards | requests/s | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|---:|---:|"
} >>"$report"
for s in 1 4 16; do
  run "fan-out $s" "$wurl" "/api/indexes/s$s/vector/search" "$tmp/search.jsonl" search.lua 8
  echo "| worker | $s | $r_rps | $r_p50_ms | $r_p99_ms |" >>"$report"
done
{
  echo
  echo "| insert, 8 connections, one vector per request | requests/s | p50 (ms) | p99 (ms) | acknowledged | stored |"
  echo "|---|---:|---:|---:|---:|---:|"
} >>"$report"
export QZ_WRK_ID_BASE=1000000
for side in worker quartzd; do
  u=$wurl; [ $side = quartzd ] && u=$qurl
  mk "$u" ins 4
  run "$side insert" "$u" /api/indexes/ins/vector/insert "$tmp/vectors.jsonl" insert.lua 8
  n=$(curl -fs -H "Authorization: Bearer $key" "$u/api/indexes/ins" | $py -c 'import json,sys; print(json.load(sys.stdin)["index"]["count"])')
  echo "| $side (sync) | $r_rps | $r_p50_ms | $r_p99_ms | $r_requests | $n |" >>"$report"
  [ "$n" -ge "$r_requests" ] || { echo "bench_worker: $side stored $n of $r_requests acknowledged inserts"; exit 1; }
done
echo >>"$report"
echo "Every phase: 0 socket errors, 0 non-2xx answers; every acknowledged insert was stored." >>"$report"
cat "$report"
[ -n "$out" ] && cp "$report" "$out"
exit 0
