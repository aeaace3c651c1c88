#!/usr/bin/env bash
# test.sh - build and run the whole test suite, three ways:
#   build/        release build, every suite (unit, api, abi, tools, and the
#                 real-data recall tests when ../shared/data is present)
#   build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer, every suite
#                 but the slow real-data one
#   build-tsan/   ThreadSanitizer: the concurrency test and the tests whose
#                 calls start threads (batch inserts, repair, kv, filters)
#   build-nolmdb/ a build without LMDB (the folders the WebAssembly build
#                 takes: no directories, no os/): it must link, and the unit
#                 and api tests that need no directory must pass
# The output of meson setup and ninja goes into each build directory
# (BUILDDIR/test-sh.setup.log, BUILDDIR/test-sh.build.log), never into the
# repository root.
#
# The last line is "N passed, M failed, K skipped", counted from meson's
# BUILDDIR/meson-logs/testlog.json, one count per test program:
#   passed  = result OK or EXPECTEDFAIL
#   skipped = result SKIP (exit status 77: a tool or data set is missing)
#   failed  = anything else (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...), plus
#             one per build directory whose setup or build failed or that
#             left no test log.
# Exit status is 0 only if nothing failed.
#
# Usage: scripts/test.sh [release] [asan] [tsan] [nolmdb]   (default: all four)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export QZ_DATA_DIR=${QZ_DATA_DIR:-$root/../shared/data}
[ -d "$QZ_DATA_DIR" ] || echo "note: $QZ_DATA_DIR not found; real-data recall tests will be skipped"

pass=0 fail=0 skip=0
count() { # count results of the last meson test run in build dir $1
  local log="$1/meson-logs/testlog.json" p f s
  if [ ! -s "$log" ]; then fail=$((fail + 1)); echo "== $1: no test log"; return; fi
  if ! read -r p f s < <(python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
  ); then
    fail=$((fail + 1)); echo "== $1: unreadable test log $log"; return
  fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  echo "== $1: $p passed, $f failed, $s skipped"
}

run() { # run DIR MESON-SETUP-ARGS -- MESON-TEST-ARGS
  local dir=$1; shift
  local setup=() tst=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  tst=("$@")
  echo "== $dir: meson setup ${setup[*]}"
  if [ ! -f "$dir/build.ninja" ]; then
    local wipe=()
    [ -d "$dir/meson-private" ] && wipe=(--wipe) # an earlier setup failed half-way
    mkdir -p "$dir"
    if ! meson setup "${wipe[@]}" "$dir" "${setup[@]}" >"$dir/test-sh.setup.log" 2>&1; then
      cat "$dir/test-sh.setup.log"; fail=$((fail + 1)); echo "== $dir: setup failed"; return
    fi
  fi
  if ! ninja -C "$dir" >"$dir/test-sh.build.log" 2>&1; then
    tail -40 "$dir/test-sh.build.log"; fail=$((fail + 1)); echo "== $dir: build failed"; return
  fi
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs "${tst[@]}" 2>&1 | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):' || true
  count "$dir"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(release asan tsan nolmdb)
for w in "${want[@]}"; do
  case "$w" in
    release|asan|tsan|nolmdb) ;;
    *) echo "usage: scripts/test.sh [release] [asan] [tsan] [nolmdb]" >&2; exit 2 ;;
  esac
done
wanted() { local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

if wanted release; then
  run build -Dbuildtype=release --
fi
if wanted asan; then
  UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
    run build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false \
    -- --no-suite slow --timeout-multiplier 4
fi
if wanted tsan; then
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    run build-tsan -Dbuildtype=debugoptimized -Db_sanitize=thread -Dbench=false \
    -- --suite api --timeout-multiplier 6 test_threads test_crud test_delete test_filter test_kv test_batch
fi
if wanted nolmdb; then
  run build-nolmdb -Dbuildtype=debugoptimized -Dlmdb=disabled -Dbench=false -- --suite unit --suite api --no-suite slow
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
