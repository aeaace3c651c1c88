#!/usr/bin/env bash
# build.sh [BUILDDIR] - configure (once) and build libquartz, its tools,
# examples and benchmarks in release mode. Default BUILDDIR: build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=release >/dev/null
ninja -C "$dir" >/dev/null
echo "built into $dir/: lib/libquartz.so, lib/libquartz.a, examples/quickstart, tools/quartz"
