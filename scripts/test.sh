#!/usr/bin/env bash
# test.sh - build and run the whole test suite, three ways:
#   build/        release build, every suite (unit, api, abi, tools, and the
#                 real-data recall tests when ../shared/data is present)
#   build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer, every suite
#                 but the slow real-data one, then the REST suite against its
#                 quartzd (leaks and UB reports fail the server's tests)
#   build-tsan/   ThreadSanitizer: the concurrency test and the tests whose
#                 calls start threads (batch inserts, repair, kv, filters)
#   build-nolmdb/ a build without LMDB (the folders the WebAssembly build
#                 takes: no directories, no os/): it must link, and the unit
#                 and api tests that need no directory must pass
#   surfaces      the suites of what is built over the library, each run
#                 by its own runner script against the release build:
#                   rest    tests/rest/run.sh      (quartzd on 127.0.0.1)
#                   python  bindings/python/run-tests.sh
#                   node    bindings/node/run-tests.sh
#                   worker  bindings/wasm/run-tests.sh (wasm module, workerd)
#                 A runner is called as RUNNER BUILDDIR JUNIT_XML and writes
#                 JUnit XML there (pytest --junitxml, node --test's junit
#                 reporter); exit 77 without XML means "cannot run here".
# The output of meson setup and ninja goes into each build directory
# (BUILDDIR/test-sh.setup.log, BUILDDIR/test-sh.build.log), never into the
# repository root.
#
# The last line is "N passed, M failed, K skipped", counted from meson's
# BUILDDIR/meson-logs/testlog.json, one count per test program, and from
# each surface runner's JUnit XML, one count per test case:
#   passed  = result OK or EXPECTEDFAIL
#   skipped = result SKIP (exit status 77: a tool or data set is missing)
#   failed  = anything else (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...), plus
#             one per build directory whose setup or build failed or that
#             left no test log, plus one per surface runner that failed
#             (nonzero exit) without a failing case in its XML.
# Exit status is 0 only if nothing failed.
#
# Usage: scripts/test.sh [release] [asan] [tsan] [nolmdb] [rest] [python] [node] [worker]
#        (default: every leg in default_legs; a surface leg builds build/ first if needed)
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

junit_count() { # junit_count NAME XML RUNNER-STATUS: add a surface's test cases
  local name=$1 xml=$2 rc=$3 p f s
  if [ ! -s "$xml" ]; then
    if [ "$rc" -eq 77 ]; then skip=$((skip + 1)); echo "== $name: cannot run here (skipped)"
    else fail=$((fail + 1)); echo "== $name: runner exited $rc and wrote no results"; fi
    return
  fi
  if ! read -r p f s < <(python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
p = f = s = 0
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    tags = {child.tag for child in case}
    if "failure" in tags or "error" in tags:
        f += 1
    elif "skipped" in tags:
        s += 1
    else:
        p += 1
print(p, f, s)
PY
  ); then
    fail=$((fail + 1)); echo "== $name: unreadable results $xml"; return
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "== $name: runner exited $rc"; fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  echo "== $name: $p passed, $f failed, $s skipped"
}

surface() { # surface NAME RUNNER [BUILDDIR]: run a surface suite against BUILDDIR (default build/)
  local name=$1 runner=$2 dir=${3:-build} xml rc
  if [ "$dir" = build ]; then
    if [ ! -f build/build.ninja ] || ! ninja -C build >build/test-sh.build.log 2>&1; then
      [ -f build/build.ninja ] || { mkdir -p build; meson setup build -Dbuildtype=release >build/test-sh.setup.log 2>&1; }
      if ! ninja -C build >build/test-sh.build.log 2>&1; then
        tail -40 build/test-sh.build.log; fail=$((fail + 1)); echo "== $name: build failed"; return
      fi
    fi
  elif [ ! -f "$dir/build.ninja" ]; then
    fail=$((fail + 1)); echo "== $name: $dir was not built"; return
  fi
  if [ ! -f "$runner" ]; then fail=$((fail + 1)); echo "== $name: $runner is missing"; return; fi
  xml="$root/$dir/junit-$name.xml"
  rm -f "$xml"
  echo "== $name: $runner against $dir/"
  bash "$runner" "$root/$dir" "$xml"
  rc=$?
  junit_count "$name" "$xml" "$rc"
}

all_legs=(release asan tsan nolmdb rest python node worker)
default_legs=(release asan tsan nolmdb rest python node worker) # a surface joins when its runner lands
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${default_legs[@]}")
for w in "${want[@]}"; do
  case " ${all_legs[*]} " in
    *" $w "*) ;;
    *) echo "usage: scripts/test.sh [${all_legs[*]// /] [}]" >&2; exit 2 ;;
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
  # quartzd built with the sanitizers, under the whole REST conformance suite
  ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
    surface rest-asan tests/rest/run.sh build-asan
fi
if wanted tsan; then
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    run build-tsan -Dbuildtype=debugoptimized -Db_sanitize=thread -Dbench=false \
    -- --suite api --timeout-multiplier 6 test_threads test_crud test_delete test_filter test_kv test_batch test_orig_storage
fi
if wanted nolmdb; then
  run build-nolmdb -Dbuildtype=debugoptimized -Dlmdb=disabled -Dbench=false -- --suite unit --suite api --no-suite slow
fi
wanted rest && surface rest tests/rest/run.sh
wanted python && surface python bindings/python/run-tests.sh
wanted node && surface node bindings/node/run-tests.sh
wanted worker && surface worker bindings/wasm/run-tests.sh
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
