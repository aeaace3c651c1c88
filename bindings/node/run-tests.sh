#!/usr/bin/env bash
# run-tests.sh BUILDDIR JUNIT_XML - the Node binding's suite, as scripts/test.sh's
# "node" leg calls it: builds the addon against BUILDDIR's libquartz.a with
# npm's own node-gyp (offline: the headers come from /usr/include/node, see
# .npmrc), then runs test/*.test.js under `node --test` with the JUnit
# reporter writing JUNIT_XML (one testcase per test) and the spec reporter
# on stdout. Exit 0 when every test passed; 77 without XML when node, npm
# or node --test's junit reporter is missing here.
set -uo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILDDIR JUNIT_XML" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || { echo "node: build directory $1 not found" >&2; exit 1; }
xml=$2
case $xml in /*) ;; *) xml=$(pwd)/$xml ;; esac

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "node: $tool not found; cannot run the Node binding's tests here" >&2; exit 77; }
done
if ! node --test-reporter=junit -e 0 >/dev/null 2>&1; then
  echo "node: $(node --version) has no junit test reporter (Node >= 20.10 needed)" >&2
  exit 77
fi

root=$(cd "$here/../.." && pwd)
export QZ_DATA_DIR=${QZ_DATA_DIR:-$root/../shared/data}
log=$build/node-binding-build.log
cd "$here" || exit 1
echo "node: building the addon against $build (npm install --offline; log in $log)"
if ! QUARTZ_BUILD_DIR=$build npm install --offline --no-audit --no-fund --no-package-lock --foreground-scripts >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "node: the addon did not build" >&2
  exit 1
fi

rm -f "$xml"
node --test \
  --test-reporter=junit --test-reporter-destination="$xml" \
  --test-reporter=spec --test-reporter-destination=stdout \
  test/*.test.js
