#!/bin/sh
# check_neon.sh - cross-compile the NEON kernels for aarch64 and check them
# against the scalar reference under qemu user-mode emulation.
#
# Needs (Debian): gcc-aarch64-linux-gnu, qemu-user. This script installs
# nothing. Exit status: 0 agreement, 1 disagreement or build failure,
# 77 skipped (tools missing).
# Override the tools with AARCH64_CC, QEMU_AARCH64, AARCH64_SYSROOT.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
sysroot=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}

skip() {
    echo "check_neon: SKIP: $1" >&2
    exit 77
}
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found (apt-get install gcc-aarch64-linux-gnu)"
command -v "$qemu" >/dev/null 2>&1 || skip "$qemu not found (apt-get install qemu-user)"
[ -d "$sysroot/lib" ] || skip "no aarch64 sysroot at $sysroot"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

d="$root/lib/distance"
# dispatch.c and cpu_arm.c come along so that the driver can also check
# that the dispatcher picks "neon" on aarch64.
if ! "$cc" -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$root/lib" -I"$root/include" \
    -DQZ_AGREE_TABLE=qz__kernels_neon -DQZ_AGREE_DISPATCH \
    "$d/arm_neon.c" "$d/scalar.c" "$d/dispatch.c" "$d/cpu_arm.c" "$here/agree.c" \
    -lpthread -o "$tmp/agree"; then
    echo "check_neon: FAIL: cross-compile failed" >&2
    exit 1
fi
if "$qemu" -L "$sysroot" "$tmp/agree"; then
    echo "check_neon: PASS"
    exit 0
fi
echo "check_neon: FAIL: neon disagrees with scalar" >&2
exit 1
