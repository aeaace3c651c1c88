#!/usr/bin/env bash
# run-tests.sh BUILDDIR JUNIT_XML - the Python binding's pytest suite against
# the shared library of a build directory (called by scripts/test.sh as
# `bash bindings/python/run-tests.sh /abs/build /abs/out.xml`).
#
# Sets QUARTZ_LIBRARY=BUILDDIR/lib/libquartz.so.1 and runs
# /usr/bin/python3 -m pytest --junitxml (one testcase per test). Exit 77
# without writing XML when numpy or pytest is missing for /usr/bin/python3;
# exit 1 when the build has no libquartz.so.1. Datasets: QZ_DATA_DIR
# (default ../shared/data beside the source root); tests that need one skip.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run-tests.sh BUILDDIR JUNIT_XML}" && pwd) || exit 1
xml=${2:?usage: run-tests.sh BUILDDIR JUNIT_XML}
py=${QZ_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import numpy, pytest' 2>/dev/null; then
  echo "bindings/python: numpy or pytest missing for $py (apt-get install python3-numpy python3-pytest); skipped" >&2
  exit 77
fi
lib=$build/lib/libquartz.so.1
if [ ! -e "$lib" ]; then
  echo "bindings/python: $lib not found (a build with the shared library is needed)" >&2
  exit 1
fi
export QUARTZ_LIBRARY=$lib
export PYTHONDONTWRITEBYTECODE=1
cd "$here" || exit 1
exec "$py" -m pytest -q -p no:cacheprovider -o junit_family=xunit2 --junitxml="$xml" "$here/tests"
