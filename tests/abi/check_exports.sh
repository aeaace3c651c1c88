#!/usr/bin/env bash
# check_exports.sh LIB EXPORTS - the shared library exports exactly the
# qz_ names listed in EXPORTS, and its soname carries the major version.
set -euo pipefail
lib=$1 want=$2 major=$3
got=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | grep -v '^QUARTZ_[0-9]*$' | sort)
if [ "$got" != "$(sort "$want")" ]; then
  echo "exported symbols differ from $want:"; diff <(echo "$got") <(sort "$want") || true; exit 1
fi
if echo "$got" | grep -v '^qz_' >/dev/null; then echo "non-qz_ symbol exported"; exit 1; fi
if echo "$got" | grep '^qz__' >/dev/null; then echo "internal qz__ symbol exported"; exit 1; fi
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libquartz.so.$major" ] || { echo "soname is '$soname', expected libquartz.so.$major"; exit 1; }
echo "$(echo "$got" | wc -l) qz_ symbols exported, soname $soname"
