#!/usr/bin/env bash
# install-deps.sh - install what building, testing and benchmarking libquartz
# needs on Debian 12 (run as root, or it uses sudo). Safe to run again.
set -euo pipefail
pkgs=(
  build-essential clang meson ninja-build pkg-config python3   # toolchain, build, test counting
  liblmdb-dev libxxhash-dev                                    # storage and checksums
  libcmocka-dev                                                # tests
  doxygen                                                      # API reference
  libhnswlib-dev                                               # benchmark peer (header-only)
  gcc-aarch64-linux-gnu qemu-user lld nodejs                   # NEON and wasm kernels, tested under emulation
  libevent-dev libcjson-dev curl                               # quartzd (evhttp), the one JSON stack, the demo
  python3-requests python3-pytest python3-numpy python3-setuptools  # REST suite, Python binding
  emscripten                                                   # the wasm build (Worker)
  wrk python3-hnswlib python3-matplotlib libfaiss-dev          # benchmarks: load tests, peers, charts
)
# npm builds the Node addon and installs workerd (the Worker tests): Debian's
# nodejs comes without it, NodeSource's nodejs carries its own.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "dependencies installed: ${pkgs[*]}"
