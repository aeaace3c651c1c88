#!/usr/bin/env bash
# check_docs.sh SOURCE_DIR - the public headers are fully documented: Doxygen
# runs over them with every warning (undocumented member or parameter,
# broken reference) treated as an error. Exit 77 (skip) without doxygen.
set -euo pipefail
command -v doxygen >/dev/null || { echo "doxygen not installed"; exit 77; }
cd "$1"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
{ cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $out"; echo "WARN_AS_ERROR = FAIL_ON_WARNINGS"; } | doxygen - 2>"$out/warnings.txt" || true
if [ -s "$out/warnings.txt" ]; then cat "$out/warnings.txt"; exit 1; fi
echo "public headers: doxygen reports no warnings"
