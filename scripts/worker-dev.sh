#!/usr/bin/env bash
# worker-dev.sh [--build-only] [PORT] [DATA_DIR]
#
# Runs the QuartzDB Worker locally on the real Workers runtime (workerd from
# npm), in the foreground, on 127.0.0.1:PORT (default 8787), with its
# SQLite-backed Durable Objects stored in DATA_DIR (default worker-data in
# the wasm build dir). Builds what is needed first:
#   - the wasm module (emscripten from Debian: apt-get install emscripten)
#     in $QZ_WASM_BUILD (default BUILD dir build-wasm in the source root);
#   - workerd from npm into examples/worker/node_modules (npm ci) if missing;
#   - the Worker's module folder $QZ_WASM_BUILD/worker/ (sources, quartz.mjs,
#     the wasm, workerd.capnp).
# API keys: QUARTZ_API_KEY (read-write), QUARTZ_API_KEY_RO, QUARTZ_API_KEYS
# ("KEY rw"/"KEY ro" lines); with none set, a test key is made and printed.
# Other settings: QUARTZ_SHARDS, QUARTZ_MAX_BODY, QUARTZ_MAX_BATCH.
# --build-only: build and assemble (also into examples/worker/dist/ for
# wrangler), do not run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
port=${1:-8787}
data=${2:-}
wbuild=${QZ_WASM_BUILD:-$root/build-wasm}
[ -n "$data" ] || data=$wbuild/worker-data
wdir=$root/examples/worker

log() { echo "worker-dev: $*" >&2; }

for tool in emcc node npm meson ninja; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "$tool not found (Debian: apt-get install emscripten nodejs npm meson ninja-build)"
    exit 77
  fi
done

# 1. the wasm module
if [ ! -f "$wbuild/build.ninja" ]; then
  log "configuring the wasm build in $wbuild"
  meson setup "$wbuild" "$root" --cross-file "$root/cross/wasm32-emscripten.ini" -Dbuildtype=release \
    -Dlmdb=disabled -Dtools=false -Dtests=disabled -Dbench=false >&2
fi
ninja -C "$wbuild" -j2 bindings/wasm/quartz_wasm.mjs >&2

# 2. workerd from npm (the version pinned in examples/worker/package-lock.json)
workerd_bin=$wdir/node_modules/@cloudflare/workerd-linux-64/bin/workerd
if [ ! -x "$workerd_bin" ]; then
  log "installing workerd from npm into $wdir/node_modules"
  (cd "$wdir" && npm ci --no-audit --no-fund >&2)
fi
if [ ! -x "$workerd_bin" ]; then
  log "workerd binary missing after npm ci: $workerd_bin"
  exit 1
fi

# 3. the module folder
dist=$wbuild/worker
mkdir -p "$dist"
cp "$wdir"/src/*.js "$wdir/workerd.capnp" "$root/bindings/wasm/quartz.mjs" "$root/bindings/wasm/host_storage.mjs" \
   "$wbuild/bindings/wasm/quartz_wasm.mjs" "$wbuild/bindings/wasm/quartz_wasm.wasm" "$dist/"
if [ "$build_only" = 1 ]; then
  mkdir -p "$wdir/dist"
  cp "$dist"/*.js "$dist"/*.mjs "$dist"/*.wasm "$wdir/dist/"
  log "assembled $dist and $wdir/dist ($(wc -c < "$dist/quartz_wasm.wasm") bytes of wasm)"
  exit 0
fi

# 4. keys
if [ -z "${QUARTZ_API_KEY:-}" ] && [ -z "${QUARTZ_API_KEYS:-}" ]; then
  QUARTZ_API_KEY=test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  export QUARTZ_API_KEY
  echo "worker-dev: no QUARTZ_API_KEY set; test key (read-write): $QUARTZ_API_KEY" >&2
fi
export QUARTZ_API_KEY=${QUARTZ_API_KEY:-} QUARTZ_API_KEY_RO=${QUARTZ_API_KEY_RO:-} QUARTZ_API_KEYS=${QUARTZ_API_KEYS:-}

mkdir -p "$data"
log "serving on http://127.0.0.1:$port (data in $data)"
exec "$workerd_bin" serve "$dist/workerd.capnp" --experimental \
  --socket-addr "http=127.0.0.1:$port" --directory-path "do-storage=$data"
