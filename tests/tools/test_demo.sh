#!/usr/bin/env bash
# test_demo.sh SOURCE_ROOT BUILDDIR - the README's first command ends in
# scripts/demo.sh: run it (--once) on a free port over a temporary data
# directory, twice on the same data (the second run meets the index the
# first left behind), and fail if any of its curl steps did not answer as
# expected. Exit 77 when curl is missing.
set -euo pipefail
root=$1 build=$2
command -v curl >/dev/null || { echo "curl missing; skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=$(/usr/bin/env python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for run in 1 2; do
  if ! "$root/scripts/demo.sh" --once --port "$port" --data "$tmp/data" "$build" >"$tmp/out" 2>&1; then
    cat "$tmp/out"; echo "FAIL: demo.sh run $run"; exit 1
  fi
  grep -q '"results":\[{"id":1,' "$tmp/out" || { cat "$tmp/out"; echo "FAIL: search did not rank id 1 first"; exit 1; }
done
echo "demo.sh ran twice on port $port"
