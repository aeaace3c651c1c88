#!/usr/bin/env bash
# soak_crash.sh - a long SIGKILL soak of a durable database directory.
#
# Usage: bench/soak_crash.sh [--build DIR] [--rounds N] [--pool N] [--prefill N]
#                            [--dir DIR] [--seed N] [--log FILE]
#
# Runs the crash test program (DIR/tests/api_test_crash, built if missing) in
# its soak mode (QZ_CRASH_SOAK=1, see the comment at the top of
# tests/api/test_crash.c): N SIGKILL rounds in SYNC mode and N in BATCHED
# mode (default 2,000 each, alternating in blocks of 10) on one directory
# that accumulates and grows past 50 MiB (20,000 ids of 384 dimensions with
# metadata up to 32 KiB, 1,000 kv keys with values up to 64 KiB). There is
# no time budget; on 2 cores the default run takes roughly 25-35 minutes.
#
# Soak mode counts failures instead of stopping at the first: a database
# that does not open or fails qz_db_check() is set aside (the first three as
# DB.failed-N beside the database, for post-mortem) and the soak goes on in a
# fresh directory; after lost acknowledged writes it goes on from the state
# that was recovered. Every failure is printed on a FAILURE line with its
# round and the library's message.
#
# The full output goes to the log (default bench/out/soak_crash-DATE.log);
# the last line printed is
#   soak: rounds R (SYNC S, BATCHED B), unopenable databases U, lost
#   acknowledged SYNC writes L, final size F MiB (largest M MiB), T s
# Exit status: 0 if nothing was found, 1 if anything was, 2 on bad usage or
# when the program could not be built or run.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build rounds=2000 pool=20000 prefill=8000 dir="" seed="" log=""
usage() { sed -n '3,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --pool) pool=${2:?}; shift 2 ;;
    --prefill) prefill=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --log) log=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "soak_crash.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for n in "$rounds" "$pool" "$prefill" ${seed:+"$seed"}; do
  case "$n" in ''|*[!0-9]*) echo "soak_crash.sh: '$n' is not a number" >&2; exit 2 ;; esac
done

exe=$build/tests/api_test_crash
if [ ! -x "$exe" ]; then
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dbuildtype=release >/dev/null || { echo "soak_crash.sh: meson setup $build failed" >&2; exit 2; }
  fi
  ninja -C "$build" tests/api_test_crash >/dev/null || { echo "soak_crash.sh: cannot build $exe" >&2; exit 2; }
fi
[ -n "$log" ] || { mkdir -p bench/out; log=bench/out/soak_crash-$(date +%Y%m%d-%H%M%S).log; }

echo "soak: $rounds SYNC + $rounds BATCHED rounds, pool $pool, prefill $prefill; log $log"
export QZ_CRASH_SOAK=1 QZ_CRASH_ROUNDS=$rounds QZ_CRASH_SECONDS=0 QZ_CRASH_POOL=$pool QZ_CRASH_PREFILL=$prefill
[ -n "$dir" ] && export QZ_CRASH_DIR=$dir
[ -n "$seed" ] && export QZ_CRASH_SEED=$seed
start=$(date +%s)
# Progress and failures on the terminal, everything in the log.
"$exe" 2>&1 | tee "$log" | grep --line-buffered -E '^(FAILURE|  after|  directory kept|crash|kept|NOTE)'
rc=${PIPESTATUS[0]}

sum=$(grep -m1 '^crash summary:' "$log" || true)
if [ -z "$sum" ]; then
  echo "soak: the program ended (status $rc) without a summary after $(( $(date +%s) - start )) s; see $log"
  exit 2
fi
field() { printf '%s\n' "$sum" | sed -n "s/.*$1 \([0-9][0-9.]*\).*/\1/p"; }
printf 'soak: rounds %s (SYNC %s, BATCHED %s), unopenable databases %s, lost acknowledged SYNC writes %s, final size %s MiB (largest %s MiB), %s s\n' \
  "$(field 'rounds')" "$(field 'SYNC')" "$(field 'BATCHED')" "$(field 'unopenable databases')" \
  "$(field 'lost acknowledged SYNC writes')" "$(field 'final size')" "$(field 'largest')" "$(( $(date +%s) - start ))"
[ "$rc" -eq 0 ] && exit 0
exit 1
