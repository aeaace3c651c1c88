#!/usr/bin/env bash
# test_quartz_cli.sh - end-to-end test of the quartz command-line tool.
#
# Usage: test_quartz_cli.sh PATH/TO/quartz
# Works in a temporary directory that is removed at exit. Prints one line per
# check, then "N passed, M failed"; exits 1 if any check failed.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/quartz" >&2
    exit 2
fi
Q=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
W=$(mktemp -d "${TMPDIR:-/tmp}/quartz-cli.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"

pass=0
fail=0
RC=0
OUT=
ERR=

ok() {
    pass=$((pass + 1))
    echo "ok   $1"
}

bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    if [ -n "${2:-}" ]; then printf '     %s\n' "$2"; fi
}

# run CMD...: sets RC, OUT (stdout) and ERR (stderr) without tripping set -e.
run() {
    set +e
    "$@" >"$W/.out" 2>"$W/.err"
    RC=$?
    set -e
    OUT=$(cat "$W/.out")
    ERR=$(cat "$W/.err")
}

# expect_rc NAME STATUS CMD...
expect_rc() {
    local name=$1 want=$2
    shift 2
    run "$@"
    if [ "$RC" -eq "$want" ]; then
        ok "$name"
    else
        bad "$name" "exit status $RC, expected $want; stderr: $ERR"
    fi
}

# expect_match NAME EXTENDED-REGEX TEXT
expect_match() {
    # A here-string, not a pipe: under pipefail, grep -q leaving at the first
    # match can kill the writer with SIGPIPE and fail the check at random.
    if grep -qE -- "$2" <<<"$3"; then
        ok "$1"
    else
        bad "$1" "no match for /$2/ in: $3"
    fi
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        bad "$1" "expected '$2', got '$3'"
    fi
}

count_of() { # count_of DIR -> the "count:" line of quartz stats
    "$Q" stats "$1" | awk '$1 == "count:" { print $2 }'
}

# ---- test data ----------------------------------------------------------
# 200 rows of 8 floats in fvecs (int32 dim + float32 values, little-endian)
# and the text of row 37 with enough digits to read back the same floats.
perl -e '
    srand(7);
    open(my $f, ">", "base.fvecs") or die;
    binmode $f;
    for my $i (0 .. 199) {
        my @v = map { sprintf("%.6f", rand() * 2 - 1) + 0 } 1 .. 8;
        print $f pack("l<", 8), pack("f<8", @v);
        if ($i == 37) {
            open(my $t, ">", "row37.txt") or die;
            print $t join(",", @v);
        }
    }'
cat >meta.jsonl <<'EOF'
{"id": 5001, "vector": [9, 9, 9, 9, 9, 9, 9, 9], "metadata": {"title": "alpha", "tags": ["x", "y"]}}
{"id": 5002, "vector": [-9, 9, -9, 9, -9, 9, -9, 9], "metadata": "just a string"}

{"id":5003,"vector":[9,-9,9,-9,9,-9,9,-9]}
EOF

# ---- global options and help --------------------------------------------
expect_rc "--version exits 0" 0 "$Q" --version
expect_match "--version prints the version" '^quartz [0-9]+\.[0-9]+\.[0-9]+' "$OUT"
expect_rc "--help exits 0" 0 "$Q" --help
for c in create import search get delete kv stats check compact; do
    expect_match "--help lists $c" "^  $c " "$OUT"
done
for c in create import search get delete kv stats check compact; do
    expect_rc "quartz help $c exits 0" 0 "$Q" help "$c"
    expect_match "quartz help $c prints usage" "^Usage: quartz $c" "$OUT"
    expect_rc "quartz $c --help exits 0" 0 "$Q" "$c" --help
    expect_match "quartz $c --help prints usage" "^Usage: quartz $c" "$OUT"
done
for op in get put del scan; do
    expect_rc "quartz kv $op --help exits 0" 0 "$Q" kv "$op" --help
done

# ---- create and import ---------------------------------------------------
expect_rc "create" 0 "$Q" create db --dim 8 --metric l2
expect_match "create reports the settings" 'dim 8, metric l2' "$OUT"
expect_rc "create over an existing database fails" 1 "$Q" create db --dim 8

expect_rc "import fvecs" 0 "$Q" import db base.fvecs --start-id 1000 --batch 64
expect_match "import prints a summary" '^imported 200 rows in [0-9.]+ s \([0-9]+ rows/s\)' "$ERR"
expect_eq "stats count after fvecs import" 200 "$(count_of db)"

expect_rc "search --vector-file --row" 0 "$Q" search db --vector-file base.fvecs --row 37 -k 3
expect_match "search finds the exact row first" $'^1\t1037\t0$' "$(printf '%s\n' "$OUT" | head -n 1)"
expect_eq "search prints k lines" 3 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')"
expect_rc "search --vector" 0 "$Q" search db --vector "$(cat row37.txt)" -k 5
expect_match "search --vector finds the exact row first" $'^1\t1037\t0$' "$(printf '%s\n' "$OUT" | head -n 1)"
expect_rc "search --json" 0 "$Q" search db --vector "[$(cat row37.txt)]" -k 2 --json --ef 50
expect_match "search --json output" '^\{"rank":1,"id":1037,"distance":0\}' "$OUT"

expect_rc "import jsonl with metadata" 0 "$Q" import db meta.jsonl
expect_eq "stats count after jsonl import" 203 "$(count_of db)"
expect_rc "search --with-metadata" 0 "$Q" search db --vector 9,9,9,9,9,9,9,9 -k 1 --with-metadata
expect_eq "search returns the jsonl vector with its metadata" \
    $'1\t5001\t0\t{"title":"alpha","tags":["x","y"]}' "$OUT"

expect_rc "get" 0 "$Q" get db 5001
expect_match "get prints the metadata" '^metadata: \{"title":"alpha","tags":\["x","y"\]\}$' "$OUT"
expect_match "get prints the vector" '^vector: 9,9,9,9,9,9,9,9$' "$OUT"
expect_rc "get --json" 0 "$Q" get db 5002 --json
expect_eq "get --json output" '{"id":5002,"vector":[-9,9,-9,9,-9,9,-9,9],"metadata":"just a string"}' "$OUT"
expect_rc "get of an id without metadata" 0 "$Q" get db 5003
expect_match "no metadata line without metadata" '^vector: ' "$OUT"

expect_rc "import --upsert replaces" 0 "$Q" import db meta.jsonl --upsert --quiet
expect_rc "import of existing ids without --upsert fails" 1 "$Q" import db meta.jsonl
expect_match "the duplicate id is named with its line" 'meta\.jsonl:1: id 5001 already exists' "$ERR"

expect_rc "import --create infers the dimension" 0 "$Q" import db2 meta.jsonl --create --metric l2
expect_rc "stats of the new database" 0 "$Q" stats db2 --json
expect_match "stats --json" '"dimensions":8,"metric":"l2".*"count":3' "$OUT"

# ---- delete ----------------------------------------------------------------
expect_rc "delete" 0 "$Q" delete db 5001 1000
expect_rc "get after delete fails" 1 "$Q" get db 5001
expect_match "get after delete says not found" '^quartz: get: .*5001' "$ERR"
expect_eq "stats count after delete" 201 "$(count_of db)"
expect_rc "delete of a missing id fails" 1 "$Q" delete db 5001 1001
expect_eq "a failed delete deletes nothing" 201 "$(count_of db)"
expect_rc "delete --missing-ok" 0 "$Q" delete db 5001 1001 --missing-ok
expect_eq "stats count after delete --missing-ok" 200 "$(count_of db)"

# ---- key-value store -----------------------------------------------------
expect_rc "kv put" 0 "$Q" kv put db user:1 alice
expect_rc "kv put with spaces" 0 "$Q" kv put db user:2 "bob smith"
printf 'from\tstdin' >stdin.txt
expect_rc "kv put from stdin" 0 sh -c '"$1" kv put db conf < stdin.txt' sh "$Q"
expect_rc "kv get" 0 "$Q" kv get db user:1
expect_eq "kv get prints the raw value" alice "$OUT"
"$Q" kv get db conf >got.txt || true
if cmp -s stdin.txt got.txt; then ok "kv get returns exact bytes"; else bad "kv get returns exact bytes"; fi
expect_rc "kv scan" 0 "$Q" kv scan db
expect_eq "kv scan prints key<TAB>value lines" $'conf\tfrom\\tstdin\nuser:1\talice\nuser:2\tbob smith' "$OUT"
expect_rc "kv scan with a prefix" 0 "$Q" kv scan db user:
expect_eq "kv scan with a prefix output" $'user:1\talice\nuser:2\tbob smith' "$OUT"
expect_rc "kv del" 0 "$Q" kv del db user:1
expect_rc "kv get of a deleted key fails" 1 "$Q" kv get db user:1
expect_rc "kv del of a missing key fails" 1 "$Q" kv del db user:1

# ---- stats, check, compact -------------------------------------------------
expect_rc "stats" 0 "$Q" stats db
expect_match "stats shows the count" '^count: +200$' "$OUT"
expect_match "stats shows the disk size" '^disk_bytes: +[1-9][0-9]*$' "$OUT"
expect_rc "check" 0 "$Q" check db
expect_eq "check prints OK" OK "$OUT"
expect_rc "compact" 0 "$Q" compact db
expect_match "compact prints the sizes" '^size after: +[0-9]+ bytes' "$OUT"
expect_rc "check after compact" 0 "$Q" check db
expect_eq "count after compact" 200 "$(count_of db)"

# ---- bad input -------------------------------------------------------------
expect_rc "no arguments: exit 2" 2 "$Q"
expect_rc "unknown subcommand: exit 2" 2 "$Q" frobnicate
expect_rc "unknown option: exit 2" 2 "$Q" search db --vector 1 --bogus
expect_rc "strict numbers: -k 12x is exit 2" 2 "$Q" search db --vector-file base.fvecs -k 12x
expect_rc "strict numbers: id 12x is exit 2" 2 "$Q" get db 12x
expect_rc "strict numbers: bad float is exit 2" 2 "$Q" search db --vector 1,2,3x
expect_rc "search without a query: exit 2" 2 "$Q" search db
expect_rc "create without --dim: exit 2" 2 "$Q" create db3

{
    echo '{"id": 7001, "vector": [1, 2, 3, 4, 5, 6, 7, 8]}'
    echo '{"id": 7002, "vector": [1, 2, 3, 4, 5, 6, 7, 8]}'
    echo '{"id": 7003, "vector": [1, 2, 3, 4, 5, 6, 7, 8],}'
} >malformed.jsonl
expect_rc "malformed JSON line: exit 1" 1 "$Q" import db malformed.jsonl
expect_match "malformed JSON names the line" '^quartz: import: malformed\.jsonl:3: ' "$ERR"
expect_eq "the bad batch was not imported" 200 "$(count_of db)"
expect_rc "get of an id from the bad batch fails" 1 "$Q" get db 7001

echo '{"id": 8001, "vector": [1, 2, 3]}' >short.jsonl
expect_rc "wrong dimension in jsonl: exit 1" 1 "$Q" import db short.jsonl
expect_match "wrong dimension is reported" 'short\.jsonl:1: vector has 3 dimensions, database expects 8' "$ERR"
expect_rc "wrong dimension in fvecs: exit 1" 1 "$Q" import db2 base.fvecs --format fvecs --dim 4
expect_rc "wrong query dimension: exit 1" 1 "$Q" search db --vector 1,2,3
expect_match "the library's message is passed on" '^quartz: search: .*: .*3 dimensions' "$ERR"

expect_rc "search of a missing directory: exit 1" 1 "$Q" search no-such-dir --vector 1,2,3,4,5,6,7,8
expect_match "missing directory message" '^quartz: search: no-such-dir: no database here' "$ERR"
if [ -e no-such-dir ]; then bad "a read-only command creates nothing"; else ok "a read-only command creates nothing"; fi
mkdir empty-dir
expect_rc "search of an empty directory: exit 1" 1 "$Q" search empty-dir --vector 1,2,3,4,5,6,7,8
expect_rc "kv put into an empty directory: exit 1" 1 "$Q" kv put empty-dir k v
expect_rc "import without --create into an empty directory: exit 1" 1 "$Q" import empty-dir meta.jsonl
expect_eq "failed commands leave an empty directory empty" "" "$(ls -A empty-dir)"

# A directory with other files and no database: every command refuses it
# (they open with QZ_OPEN_EXISTING) and leaves it exactly as it was.
mkdir foreign-dir
echo "not a database" >foreign-dir/notes.txt
expect_rc "search of a foreign directory: exit 1" 1 "$Q" search foreign-dir --vector 1,2,3,4,5,6,7,8
expect_match "foreign directory message (read-only)" '^quartz: search: foreign-dir: no database here \(the directory holds no database\)' "$ERR"
expect_rc "kv put into a foreign directory: exit 1" 1 "$Q" kv put foreign-dir k v
expect_match "foreign directory message (write)" '^quartz: kv put: foreign-dir: no database here \(the directory holds no database\)' "$ERR"
expect_rc "delete in a foreign directory: exit 1" 1 "$Q" delete foreign-dir 1
expect_rc "compact of a foreign directory: exit 1" 1 "$Q" compact foreign-dir
expect_rc "import into a foreign directory: exit 1" 1 "$Q" import foreign-dir meta.jsonl
expect_rc "import --create into a foreign directory: exit 1" 1 "$Q" import foreign-dir meta.jsonl --create
expect_match "import --create refuses a foreign directory" 'foreign-dir is not empty and holds no database' "$ERR"
expect_rc "create in a foreign directory: exit 1" 1 "$Q" create foreign-dir --dim 8
expect_match "create refuses a non-empty directory" 'foreign-dir is not empty; refusing' "$ERR"
expect_eq "failed commands leave a foreign directory as it was" "notes.txt" "$(ls -A foreign-dir)"
expect_rc "create over an existing database: exit 1" 1 "$Q" create db --dim 8
expect_match "create names an existing database" '^quartz: create: db already holds a database$' "$ERR"
expect_rc "an unknown metric is a usage error" 2 "$Q" create db4 --dim 8 --metric manhattan
expect_match "the metric names come from the library" "manhattan' must be cosine, l2, ip or hamming" "$ERR"
if [ -e db4 ]; then bad "a usage error creates nothing"; else ok "a usage error creates nothing"; fi
for m in cosine l2 ip hamming; do
    expect_rc "create --metric $m" 0 "$Q" create "db-$m" --dim 8 --metric "$m"
    expect_match "stats names the metric $m" "^metric: +$m\$" "$("$Q" stats "db-$m")"
done
for t in f16 int8 binary; do
    expect_rc "create --dtype $t" 0 "$Q" create "db-$t" --dim 8 --metric l2 --dtype "$t"
    expect_match "stats names the dtype $t" "^dtype: +$t\$" "$("$Q" stats "db-$t")"
done
expect_rc "an unknown dtype is a usage error" 2 "$Q" create db5 --dim 8 --dtype int4
expect_match "the usage error names the dtypes" "int4' must be f32, f16, int8 or binary" "$ERR"
expect_rc "a quantized dtype under hamming is refused" 1 "$Q" create db6 --dim 8 --metric hamming --dtype int8

# ---- JSON on cJSON: float round trip, exact ids, errors that change nothing ----

# Float32 round trip, bit for bit: rows of random finite bit patterns (normal,
# subnormal, signed zeros, the extremes) go in as fvecs, out as `get --json`,
# back in as JSON lines, and out again; the bits are compared with the file.
perl -e '
    srand(11);
    my @special = (0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000,
                   0x7f7fffff, 0xff7fffff, 0x3f800000, 0x3dcccccd, 0x4b800001, 0x3eaaaaab);
    open(my $f, ">", "bits.fvecs") or die;
    binmode $f;
    for my $i (0 .. 99) {
        my @w;
        for my $j (0 .. 15) {
            my $u;
            if ($i == 0 && $j < @special) { $u = $special[$j]; }
            else { do { $u = int(rand(65536)) << 16 | int(rand(65536)); } while (($u >> 23 & 0xff) == 0xff); }
            push @w, $u;
        }
        print $f pack("l<", 16), pack("L<16", @w);
    }'
expect_rc "import random float32 bit patterns (fvecs)" 0 "$Q" import rt1 bits.fvecs --create --metric l2 -q
: >rt.jsonl
for i in $(seq 0 99); do "$Q" get rt1 "$i" --json >>rt.jsonl; done
expect_eq "get --json exports every row" 100 "$(wc -l <rt.jsonl | tr -d ' ')"
expect_rc "the exported JSON imports back" 0 "$Q" import rt2 rt.jsonl --create --metric l2 -q
: >rt2.jsonl
for i in $(seq 0 99); do "$Q" get rt2 "$i" --json >>rt2.jsonl; done
if cmp -s rt.jsonl rt2.jsonl; then
    ok "export, import, export gives the same text"
else
    bad "export, import, export gives the same text" "$(diff rt.jsonl rt2.jsonl | head -n 4)"
fi
if command -v python3 >/dev/null 2>&1; then
    # python's float() is correctly rounded; struct packs the float32.
    run python3 -c '
import json, struct, sys
raw = open("bits.fvecs", "rb").read()
rows = [json.loads(l, parse_int=float) for l in open("rt2.jsonl")]  # "-0" is a float here
bad = 0
for r in rows:
    off = int(r["id"]) * 68
    want = struct.unpack("<16I", raw[off + 4:off + 68])
    got = tuple(struct.unpack("<I", struct.pack("<f", x))[0] for x in r["vector"])
    if want != got:
        bad += 1
        print("row", r["id"], [hex(w) for w in want], [hex(g) for g in got])
print("rows", len(rows), "mismatches", bad)
sys.exit(1 if bad or len(rows) != 100 else 0)'
    if [ "$RC" -eq 0 ]; then ok "float32 round trip is bit-exact ($OUT)"; else bad "float32 round trip is bit-exact" "$OUT $ERR"; fi
else
    echo "skip float32 bit check: no python3"
fi
expect_match "floats print with the fewest digits" \
    '"vector":\[0,-0,1\.4013e-45,-1\.4013e-45,1\.1754942e-38,1\.1754944e-38,3\.4028235e\+38,-3\.4028235e\+38,1,0\.1,16777218,0\.33333334,' \
    "$(head -n 1 rt.jsonl)"

# Ids above 2^53 are exact (read from their own text, not through a double).
printf '%s\n' '{"id": 9007199254740993, "vector": [1, 0, 0, 0, 0, 0, 0, 0], "metadata": {"n": 9007199254740993}}' \
    '{"id": 18446744073709551615, "vector": [0, 1, 0, 0, 0, 0, 0, 0]}' >bigid.jsonl
expect_rc "import ids above 2^53" 0 "$Q" import bigdb bigid.jsonl --create --metric l2 -q
expect_rc "get 2^53+1" 0 "$Q" get bigdb 9007199254740993 --json
expect_eq "id and integer metadata above 2^53 are kept exactly" \
    '{"id":9007199254740993,"vector":[1,0,0,0,0,0,0,0],"metadata":{"n":9007199254740993}}' "$OUT"
expect_rc "2^53 itself is not there (no rounding)" 1 "$Q" get bigdb 9007199254740992
expect_rc "get 2^64-1" 0 "$Q" get bigdb 18446744073709551615
expect_rc "search --json names the id exactly" 0 "$Q" search bigdb --vector 0,1,0,0,0,0,0,0 -k 1 --json
expect_match "search --json id 2^64-1" '^\{"rank":1,"id":18446744073709551615,"distance":0\}$' "$OUT"
echo '{"id": 18446744073709551616, "vector": [1, 1, 0, 0, 0, 0, 0, 0]}' >toobig.jsonl
expect_rc "id 2^64: exit 1" 1 "$Q" import bigdb toobig.jsonl
expect_match "id 2^64 is named" \
    '^quartz: import: toobig\.jsonl:1: invalid JSON: column 8: "id" is larger than 18446744073709551615$' "$ERR"
expect_eq "id 2^64 stored nothing" 2 "$(count_of bigdb)"

# Malformed lines: each names its line and column; with --batch 1 the rows
# before it would be batches of their own, and still nothing is stored.
snapshot() { "$Q" get db 1037 --json; "$Q" get db 5002 --json; count_of db; }
before_snap=$(snapshot)
good='{"id": 9101, "vector": [1, 1, 1, 1, 1, 1, 1, 1]}'
check_bad_line() { # NAME LINE3 REGEX
    printf '%s\n%s\n%s\n' "$good" '{"id": 9102, "vector": [2, 2, 2, 2, 2, 2, 2, 2]}' "$2" >bad.jsonl
    expect_rc "$1: exit 1" 1 "$Q" import db bad.jsonl --batch 1
    expect_match "$1: the line and the fault are named" \
        "^quartz: import: bad\\.jsonl:3: invalid JSON: column [0-9]+: $3" "$ERR"
}
check_bad_line "trailing comma" '{"id": 9103, "vector": [3, 3, 3, 3, 3, 3, 3, 3],}' "trailing comma before '\\}'"
check_bad_line "missing comma" '{"id": 9103 "vector": [3, 3, 3, 3, 3, 3, 3, 3]}' 'invalid JSON near'
check_bad_line "unterminated line" '{"id": 9103, "vector": [3, 3, 3' 'the line ends inside the JSON value'
check_bad_line "leading zero" '{"id": 09103, "vector": [3, 3, 3, 3, 3, 3, 3, 3]}' 'numbers must not have leading zeros'
check_bad_line "bad escape" '{"id": 9103, "vector": [3, 3, 3, 3, 3, 3, 3, 3], "metadata": "\q"}' "invalid escape '.q'"
check_bad_line "lone surrogate" '{"id": 9103, "vector": [3, 3, 3, 3, 3, 3, 3, 3], "metadata": "\ud800"}' 'invalid JSON near'
check_bad_line "unknown key" '{"id": 9103, "vec": [3, 3, 3, 3, 3, 3, 3, 3]}' 'unknown key "vec"'
check_bad_line "duplicate key" '{"id": 9103, "id": 9104, "vector": [3, 3, 3, 3, 3, 3, 3, 3]}' 'key "id" appears twice'
check_bad_line "string id" '{"id": "9103", "vector": [3, 3, 3, 3, 3, 3, 3, 3]}' \
    '"id" must be a non-negative integer, found a string'
check_bad_line "negative id" '{"id": -1, "vector": [3, 3, 3, 3, 3, 3, 3, 3]}' '"id" must be a non-negative integer$'
check_bad_line "fractional id" '{"id": 1.5, "vector": [3, 3, 3, 3, 3, 3, 3, 3]}' \
    '"id" must be a non-negative integer without fraction'
check_bad_line "non-number component" '{"id": 9103, "vector": [3, 3, true, 3, 3, 3, 3, 3]}' \
    '"vector" component 3 must be a number, found a boolean'
check_bad_line "float overflow" '{"id": 9103, "vector": [3, 3, 3, 1e39, 3, 3, 3, 3]}' \
    '"vector" component 4 is outside the float range'
check_bad_line "NaN" '{"id": 9103, "vector": [3, NaN, 3, 3, 3, 3, 3, 3]}' "'NaN': JSON has no NaN or infinity"
check_bad_line "-Infinity" '{"id": 9103, "vector": [3, -Infinity, 3, 3, 3, 3, 3, 3]}' \
    "'-Infinity': JSON has no NaN or infinity"
check_bad_line "control byte in a string" $'{"id": 9103, "vector": [3, 3, 3, 3, 3, 3, 3, 3], "metadata": "a\tb"}' \
    'control byte 0x09 inside a string'
check_bad_line "invalid UTF-8" $'{"id": 9103, "vector": [3, 3, 3, 3, 3, 3, 3, 3], "metadata": "\xc3("}' \
    'invalid UTF-8 inside a string'
check_bad_line "not an object" '[9103, [3, 3, 3, 3, 3, 3, 3, 3]]' "expected a JSON object '\\{', found '\\['"
check_bad_line "no vector" '{"id": 9103}' 'the object has no "vector"'
check_bad_line "junk after the object" '{"id": 9103, "vector": [3, 3, 3, 3, 3, 3, 3, 3]} {}' \
    "unexpected '\\{' after the JSON value"
expect_eq "malformed lines stored nothing" "$before_snap" "$(snapshot)"
expect_rc "get of the good first line of a failed import fails" 1 "$Q" get db 9101

# NaN in fvecs input (row 5 of 8, batches of 2): named, nothing stored.
perl -e 'open(my $f, ">", "nan.fvecs") or die; binmode $f;
    for my $r (0 .. 7) {
        my @v = map { $r + $_ / 10 } 1 .. 8;
        print $f pack("l<", 8), pack("f<3", @v[0 .. 2]),
            ($r == 5 ? pack("L<", 0x7fc00000) : pack("f<", $v[3])), pack("f<4", @v[4 .. 7]);
    }'
expect_rc "NaN in fvecs: exit 1" 1 "$Q" import db nan.fvecs --start-id 9200 --batch 2
expect_match "NaN in fvecs names the row and component" \
    '^quartz: import: vector has a NaN or infinite component: nan\.fvecs: row 5: vector component 3 is NaN$' "$ERR"
expect_match "NaN in fvecs: nothing imported" 'nothing was imported' "$ERR"
expect_rc "NaN in fvecs: the first row is not there" 1 "$Q" get db 9200

# An --upsert that fails on its last line leaves the earlier lines' ids as they were.
{
    echo '{"id": 5002, "vector": [7, 7, 7, 7, 7, 7, 7, 7], "metadata": "replaced"}'
    echo '{"id": 9301, "vector": [7, 7, 7, 7, 7, 7, 7, 7]}'
    echo '{"id": 9302, "vector": [7, 7, 7]}'
} >upsert-bad.jsonl
expect_rc "failed --upsert: exit 1" 1 "$Q" import db upsert-bad.jsonl --upsert --batch 1
expect_match "failed --upsert names the line" 'upsert-bad\.jsonl:3: vector has 3 dimensions, database expects 8' "$ERR"
expect_eq "failed --upsert replaced nothing" "$before_snap" "$(snapshot)"

# An id twice in the input, and an existing id on a late line.
printf '%s\n%s\n%s\n' "$good" '{"id": 9102, "vector": [2, 2, 2, 2, 2, 2, 2, 2]}' "$good" >twice.jsonl
expect_rc "an id twice in the input: exit 1" 1 "$Q" import db twice.jsonl --upsert --batch 1
expect_match "both lines are named" \
    'twice\.jsonl:3: id 9101 appears twice in the input; the first is at twice\.jsonl:1' "$ERR"
printf '%s\n%s\n' "$good" '{"id": 1037, "vector": [2, 2, 2, 2, 2, 2, 2, 2]}' >late-existing.jsonl
expect_rc "an existing id on line 2: exit 1" 1 "$Q" import db late-existing.jsonl --batch 1
expect_match "the existing id is named with its line" 'late-existing\.jsonl:2: id 1037 already exists' "$ERR"
expect_eq "duplicate ids stored nothing" "$before_snap" "$(snapshot)"

# --create with bad input creates nothing; standard input is checked the same way.
expect_rc "import --create of a bad file: exit 1" 1 "$Q" import never-db bad.jsonl --create
if [ -e never-db ]; then bad "a failed import --create creates nothing"; else ok "a failed import --create creates nothing"; fi
expect_rc "import from standard input" 0 sh -c '"$1" import stdin-db - --format jsonl --create -q < bigid.jsonl' sh "$Q"
expect_eq "standard input imported" 2 "$(count_of stdin-db)"
expect_rc "a bad line on standard input: exit 1" 1 sh -c '"$1" import stdin-db - --format jsonl < bad.jsonl' sh "$Q"
expect_match "standard input lines are named" '^quartz: import: <stdin>:3: invalid JSON' "$ERR"
expect_eq "a bad standard input stored nothing" 2 "$(count_of stdin-db)"

# Bytes that are not text come out as JSON string escapes.
printf 'a\000b\377c"' >raw.bin
expect_rc "kv put of binary bytes" 0 sh -c '"$1" kv put db bin < raw.bin' sh "$Q"
expect_rc "kv scan --json of binary bytes" 0 "$Q" kv scan db bin --json
expect_eq "binary bytes become \\u escapes" $'[\n{"key":"bin","value":"a\\u0000b\\u00ffc\\""}\n]' "$OUT"

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
