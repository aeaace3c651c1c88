#!/usr/bin/env bash
# run.sh BUILDDIR JUNIT_XML - the REST conformance suite against quartzd
# (or the target named by QZ_REST_TARGET / QZ_REST_URL, see README.md).
# Exit 77 without writing XML when pytest or python3-requests is missing;
# fail when the quartzd binary is missing and the target is quartzd.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run.sh BUILDDIR JUNIT_XML}" && pwd) || exit 1
xml=${2:?usage: run.sh BUILDDIR JUNIT_XML}
py=/usr/bin/python3
if ! "$py" -c 'import pytest, requests' 2>/dev/null; then
  echo "tests/rest: pytest or python3-requests missing for $py; skipped" >&2
  exit 77
fi
if [ -z "${QZ_REST_URL:-}" ] && [ "${QZ_REST_TARGET:-quartzd}" = quartzd ] &&
   [ ! -x "$build/tools/quartzd/quartzd" ]; then
  echo "tests/rest: $build/tools/quartzd/quartzd not found (build with -Dtools=true)" >&2
  exit 1
fi
export QZ_BUILD_DIR=$build
cd "$here" || exit 1
exec "$py" -m pytest -q -p no:cacheprovider -o junit_family=xunit2 --junitxml="$xml" "$here"
