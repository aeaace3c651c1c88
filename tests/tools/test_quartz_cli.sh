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

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
