#!/usr/bin/env bash
# run-tests.sh BUILDDIR JUNIT_XML - the worker leg of scripts/test.sh.
#
# 1. builds the wasm module in its own build dir ($QZ_WASM_BUILD, default
#    build-wasm beside BUILDDIR) through scripts/worker-dev.sh --build-only
#    (which also installs workerd from npm when it is missing);
# 2. runs the node --test suite of QuartzIndex and the JS map backend on it;
# 3. runs the REST conformance suite (tests/rest/) against the Worker on
#    workerd (QZ_REST_TARGET=worker), the SIGKILL durability test included;
# and writes both as one JUnit file (two testsuite elements in one
# testsuites). Exit 77 without XML when emcc, node, npm or pytest is missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run-tests.sh BUILDDIR JUNIT_XML}" && pwd) || exit 1
xml=${2:?usage: run-tests.sh BUILDDIR JUNIT_XML}
py=/usr/bin/python3
for tool in emcc node npm meson ninja; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bindings/wasm: $tool not found; worker leg skipped" >&2
    exit 77
  fi
done
if ! "$py" -c 'import pytest, requests' 2>/dev/null; then
  echo "bindings/wasm: pytest or requests missing for $py; worker leg skipped" >&2
  exit 77
fi
export QZ_WASM_BUILD=${QZ_WASM_BUILD:-$(dirname "$build")/build-wasm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash "$root/scripts/worker-dev.sh" --build-only
rc=$?
if [ "$rc" = 77 ]; then exit 77; fi
if [ "$rc" != 0 ]; then
  echo "bindings/wasm: building the wasm module / installing workerd failed ($rc)" >&2
  exit 1
fi
echo "bindings/wasm: quartz_wasm.wasm is $(wc -c < "$QZ_WASM_BUILD/bindings/wasm/quartz_wasm.wasm") bytes" >&2

# 2. node --test (junit reporter to a file, the usual one on the terminal)
QZ_WASM_DIR=$QZ_WASM_BUILD/bindings/wasm node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=junit --test-reporter-destination="$tmp/node.xml" \
  "$here"/test/*.test.mjs
node_rc=$?

# 3. the REST conformance suite against workerd
QZ_REST_TARGET=worker bash "$root/tests/rest/run.sh" "$build" "$tmp/rest.xml"
rest_rc=$?

# merge: every testsuite of both files under one testsuites element
"$py" - "$tmp/node.xml" "$tmp/rest.xml" "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
out = ET.Element("testsuites")
for name, path in (("wasm-node", sys.argv[1]), ("worker-rest", sys.argv[2])):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        s = ET.SubElement(out, "testsuite", name=name, tests="1", failures="1")
        tc = ET.SubElement(s, "testcase", classname=name, name="runner")
        ET.SubElement(tc, "failure", message="no JUnit XML: %s" % e)
        continue
    if root.tag == "testsuite":
        root.set("name", name)
        out.append(root)
        continue
    # node's junit reporter: <testsuites> holding top-level <testcase>s
    suites = [c for c in root if c.tag == "testsuite"]
    cases = [c for c in root if c.tag == "testcase"]
    for s in suites:
        out.append(s)
    if cases:
        s = ET.SubElement(out, "testsuite", name=name, tests=str(len(cases)),
                          failures=str(sum(1 for c in cases if c.find("failure") is not None)))
        for c in cases:
            c.set("classname", name)
            s.append(c)
ET.ElementTree(out).write(sys.argv[3], encoding="utf-8", xml_declaration=True)
PY
merge_rc=$?
echo "bindings/wasm: node tests rc=$node_rc, REST suite on workerd rc=$rest_rc" >&2
[ "$node_rc" = 0 ] && [ "$rest_rc" = 0 ] && [ "$merge_rc" = 0 ]
