#!/bin/sh
# check_wasm.sh - build the wasm simd128 kernels freestanding (no libc) with
# clang and check them against the scalar reference under node.
#
# Needs: clang with the wasm32 target and wasm-ld (Debian: clang, lld),
# node >= 16.4 (wasm SIMD). This script installs nothing. Exit status:
# 0 agreement, 1 disagreement or build failure, 77 skipped (tools missing).
# Override the tools with WASM_CC and NODE.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${WASM_CC:-clang}
node=${NODE:-node}

skip() {
    echo "check_wasm: SKIP: $1" >&2
    exit 77
}
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found"
command -v "$node" >/dev/null 2>&1 || skip "$node not found"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# Can this clang build and link a freestanding wasm32 module at all?
printf 'int qz_probe(void);\nint qz_probe(void) { return 1; }\n' > "$tmp/probe.c"
"$cc" --target=wasm32 -msimd128 -O2 -nostdlib -Wl,--no-entry -Wl,--export=qz_probe \
    "$tmp/probe.c" -o "$tmp/probe.wasm" >/dev/null 2>&1 ||
    skip "$cc cannot link wasm32 (needs the wasm32 target and wasm-ld from lld)"

d="$root/lib/distance"
if ! "$cc" --target=wasm32 -msimd128 -O2 -std=c11 -Wall -Wextra -Werror -ffreestanding -nostdlib \
    -Wl,--no-entry -Wl,--export=qz_agree_run -Wl,--export=qz_agree_first_failure \
    -Wl,--export=qz_agree_checks \
    -I"$root/lib" -I"$root/include" -DQZ_AGREE_TABLE=qz__kernels_simd128 -DQZ_AGREE_NO_MAIN \
    "$d/wasm_simd128.c" "$d/scalar.c" "$here/agree.c" -o "$tmp/agree.wasm"; then
    echo "check_wasm: FAIL: wasm build failed" >&2
    exit 1
fi

cat > "$tmp/run.js" <<'JS'
const fs = require('fs');
const bytes = fs.readFileSync(process.argv[2]);
let mod;
try {
  mod = new WebAssembly.Module(bytes);
} catch (e) {
  console.error('check_wasm: SKIP: this node cannot compile wasm SIMD: ' + e.message);
  process.exit(77);
}
const x = new WebAssembly.Instance(mod, {}).exports;
const bad = x.qz_agree_run();
const first = x.qz_agree_first_failure();
let line = `simd128 vs scalar: ${x.qz_agree_checks()} checks, ${bad} disagreements`;
if (bad) line += ` (first: metric ${Math.floor(first / 100000)} at n=${first % 100000})`;
console.log(line);
process.exit(bad === 0 ? 0 : 1);
JS

"$node" "$tmp/run.js" "$tmp/agree.wasm"
rc=$?
case $rc in
0) echo "check_wasm: PASS"; exit 0 ;;
77) exit 77 ;;
*) echo "check_wasm: FAIL: simd128 disagrees with scalar" >&2; exit 1 ;;
esac
