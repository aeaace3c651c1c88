#!/usr/bin/env bash
# demo.sh [--once] [--port PORT] [--data DIR] [BUILDDIR]
#
# Start quartzd on 127.0.0.1:PORT (default 8787) over the data directory DIR
# (default ./quartz-data), then walk through the REST API with curl: health,
# a named index, insert, batch insert, search, get, upsert, delete, stats and
# the key-value store, each command printed before its answer. Afterwards
# quartzd keeps serving in the foreground (Ctrl-C stops it, and it flushes and
# exits cleanly) so the README's curl examples can be tried from another
# terminal; with --once it is stopped (SIGTERM) and the script exits.
#
# No API key is configured, so quartzd listens on loopback only. Exit status:
# 0 when every step answered as expected, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
once=0 port=8787 data=./quartz-data build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --once) once=1 ;;
    --port) port=${2:?--port needs a value}; shift ;;
    --data) data=${2:?--data needs a value}; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
qd=$build/tools/quartzd/quartzd
[ -x "$qd" ] || { echo "demo.sh: $qd not found; run scripts/build.sh first" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo.sh: curl is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

url=http://127.0.0.1:$port
log=$(mktemp "${TMPDIR:-/tmp}/quartzd-demo.XXXXXX.log")
mkdir -p "$data"
"$qd" --listen "127.0.0.1:$port" --data "$data" 2>"$log" &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 100); do
  curl -fs "$url/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "demo.sh: quartzd exited:"; cat "$log"; exit 1; }
  sleep 0.1
done

failed=0
step() { # step EXPECTED-STATUS curl-args... : print the command, run it, check the status
  local want=$1; shift
  local a line='$ curl'
  for a in "$@"; do
    case "$a" in *[!A-Za-z0-9_./:=-]*) line+=" '$a'" ;; *) line+=" $a" ;; esac
  done
  printf '\n%s\n' "$line"
  local out status
  out=$(curl -s -w '\n%{http_code}' "$@")
  status=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}" | cut -c1-400
  if [ "$status" != "$want" ]; then echo "!! expected HTTP $want, got $status"; failed=1; fi
}
json=(-H 'Content-Type: application/json')

echo "$("$qd" --version | head -1) is serving on $url (data in $data, log in $log)"
step 200 "$url/health"
curl -s -o /dev/null -X DELETE "$url/api/indexes/demo" # a clean start when the demo ran before
step 201 -X POST "$url/api/indexes" "${json[@]}" -d '{"name": "demo", "dimension": 4, "metric": "cosine"}'
step 201 -X POST "$url/api/indexes/demo/vector/insert" "${json[@]}" \
  -d '{"id": 1, "vector": [0.9, 0.1, 0.0, 0.0], "metadata": {"title": "first"}}'
step 201 -X POST "$url/api/indexes/demo/vector/batch-insert" "${json[@]}" \
  -d '{"vectors": [{"id": 2, "vector": [0.1, 0.9, 0.0, 0.0]}, {"id": "doc-3", "vector": [0.7, 0.3, 0.1, 0.0], "metadata": {"title": "third"}}]}'
step 200 -X POST "$url/api/indexes/demo/vector/search" "${json[@]}" -d '{"query": [1, 0, 0, 0], "k": 2}'
step 200 "$url/api/indexes/demo/vector/get/doc-3"
step 200 -X POST "$url/api/indexes/demo/vector/upsert" "${json[@]}" \
  -d '{"id": 2, "vector": [0.2, 0.8, 0.0, 0.0], "metadata": {"title": "second, updated"}}'
step 200 -X DELETE "$url/api/indexes/demo/vector/delete/1"
step 404 "$url/api/indexes/demo/vector/get/1"
step 200 "$url/api/indexes/demo/vector/stats"
step 422 -X POST "$url/api/indexes/demo/vector/insert" "${json[@]}" -d '{"id": 9, "vector": [1, 2, 3]}'
step 200 -X POST "$url/api/put" "${json[@]}" -d '{"key": "greeting", "value": {"hello": "world"}}'
step 200 "$url/api/get/greeting"

if [ "$failed" -ne 0 ]; then echo; echo "demo.sh: a step did not answer as expected"; exit 1; fi
echo
if [ "$once" -eq 1 ]; then
  echo "every step answered as expected; stopping quartzd (--once)"
  exit 0
fi
echo "every step answered as expected. quartzd keeps serving on $url; try the README's"
echo "curl examples from another terminal. Ctrl-C stops it (it flushes and exits)."
trap - EXIT
trap 'kill -TERM "$pid" 2>/dev/null' INT TERM
wait "$pid" || true
wait "$pid" 2>/dev/null || true
