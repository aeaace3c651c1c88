#!/usr/bin/env bash
# test.sh - build and run the whole test suite, three ways:
#   build/        release build, every suite (unit, api, abi, tools, and the
#                 real-data recall tests when ../shared/data is present)
#   build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer, every suite
#                 but the slow real-data one
#   build-tsan/   ThreadSanitizer: the concurrency test and the tests whose
#                 calls start threads (batch inserts, repair, kv, filters)
# The last line is "N passed, M failed", counted from meson's test logs
# (one count per test program). Exit status is 0 only if nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export QZ_DATA_DIR=${QZ_DATA_DIR:-$root/../shared/data}
[ -d "$QZ_DATA_DIR" ] || echo "note: $QZ_DATA_DIR not found; real-data recall tests will be skipped"

pass=0 fail=0
count() { # count results of the last meson test run in build dir $1
  local log="$1/meson-logs/testlog.json" p f
  if [ ! -s "$log" ]; then fail=$((fail + 1)); echo "no test log in $1"; return; fi
  read -r p f < <(python3 - "$log" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "SKIP", "EXPECTEDFAIL"): p += 1
    else: f += 1
print(p, f)
PY
)
  pass=$((pass + p)); fail=$((fail + f))
  echo "== $1: $p passed, $f failed"
}

run() { # run DIR MESON-SETUP-ARGS -- MESON-TEST-ARGS
  local dir=$1; shift
  local setup=() tst=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  tst=("$@")
  echo "== $dir: meson setup ${setup[*]}"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${setup[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; fail=$((fail + 1)); return; }
  fi
  if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
    tail -40 "$dir.build.log"; fail=$((fail + 1)); echo "== $dir: build failed"; return
  fi
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs "${tst[@]}" 2>&1 | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):' || true
  count "$dir"
}

run build -Dbuildtype=release --
UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
  run build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false \
  -- --no-suite slow --timeout-multiplier 4
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  run build-tsan -Dbuildtype=debugoptimized -Db_sanitize=thread -Dbench=false \
  -- --suite api --timeout-multiplier 6 test_threads test_crud test_delete test_filter test_kv
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
