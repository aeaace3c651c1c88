"""Vector ids: integers and strings, their equivalence, limits and paths."""
import pytest

from qzclient import error, ok, quote_id


def test_integer_and_string_ids_roundtrip_form(idx):
    ok(idx.insert(7, [1, 0, 0, 0]), 201)
    ok(idx.insert("seven", [0, 1, 0, 0]), 201)
    ok(idx.insert(2 ** 53 - 1, [0, 0, 1, 0]), 201)
    ok(idx.insert(0, [0, 0, 0, 1]), 201)
    assert ok(idx.get(7))["id"] == 7
    assert ok(idx.get("seven"))["id"] == "seven"
    assert ok(idx.get(2 ** 53 - 1))["id"] == 2 ** 53 - 1
    assert ok(idx.get(0))["id"] == 0
    res = ok(idx.search([1, 1, 1, 1], 10))["results"]
    ids = {r["id"] for r in res}
    assert ids == {7, "seven", 2 ** 53 - 1, 0}
    for r in res:
        assert type(r["id"]) is (str if r["id"] == "seven" else int)
    got = ok(idx.get_many([7, "seven"]))["vectors"]
    assert {type(v["id"]) for v in got} == {int, str}


def test_canonical_decimal_string_is_the_integer(idx):
    b = ok(idx.insert("42", [1, 2, 3, 4]), 201)
    assert b["id"] == 42
    assert ok(idx.get(42))["id"] == 42          # path "42"
    assert ok(idx.get_many([42]))["vectors"][0]["id"] == 42
    assert ok(idx.get_many(["42"]))["vectors"][0]["id"] == 42
    error(idx.insert(42, [1, 1, 1, 1]), 409, "already_exists")
    ok(idx.upsert(42, [4, 3, 2, 1]))
    assert idx.describe()["count"] == 1
    ok(idx.delete_many(["42"]))
    error(idx.get(42), 404, "not_found")


@pytest.mark.parametrize("s", ["042", "+42", "4.2", "42 ", " 42", "-1", "1e3", "0x2a", "00"])
def test_non_canonical_numeric_strings_are_strings(idx, s):
    ok(idx.insert(42, [1, 1, 1, 1]), 201)
    ok(idx.insert(0, [2, 2, 2, 2]), 201)
    b = ok(idx.insert(s, [3, 3, 3, 3]), 201)
    assert b["id"] == s
    g = ok(idx.get(s))
    assert g["id"] == s and g["vector"] == [3, 3, 3, 3]
    assert ok(idx.get(42))["vector"] == [1, 1, 1, 1]
    assert idx.describe()["count"] == 3


def test_string_length_limit_in_bytes(idx):
    ok(idx.insert("a" * 256, [1, 1, 1, 1]), 201)
    error(idx.insert("b" * 257, [1, 1, 1, 1]), 400, "invalid_argument")
    ok(idx.insert("é" * 128, [2, 2, 2, 2]), 201)         # 256 bytes
    error(idx.insert("é" * 129, [2, 2, 2, 2]), 400, "invalid_argument")   # 258 bytes
    error(idx.insert("😀" * 64 + "x", [2, 2, 2, 2]), 400, "invalid_argument")  # 257 bytes
    assert ok(idx.get("a" * 256))["id"] == "a" * 256
    assert ok(idx.get("é" * 128))["id"] == "é" * 128
    assert idx.describe()["count"] == 2


@pytest.mark.parametrize("s", ["héllo wörld", "日本語のID", "emoji😀🚀", "a/b/c", "sp ace", "q?x=1&y=2",
                               "hash#frag", "pct%20lit", "plus+sign", "tab\tin", "quote\"s", "back\\slash",
                               "..", ".", "...", "semi;colon"])
def test_unicode_and_special_ids_via_paths(idx, s):
    ok(idx.insert(s, [1, 2, 3, 4], {"s": s}), 201)
    g = ok(idx.get(s))                          # percent-encoded in the path
    assert g["id"] == s and g["metadata"] == {"s": s}
    r = ok(idx.search([1, 2, 3, 4], 1))["results"][0]
    assert r["id"] == s
    b = ok(idx.delete(s))
    assert b["id"] == s
    error(idx.get(s), 404, "not_found")


@pytest.mark.parametrize("s", ["nul\u0000byte", "\u0000", "end\u0000"])
def test_nul_in_id_rejected(idx, s):
    # cJSON strings end at NUL, so the contract forbids U+0000 in JSON
    # strings: 400, and nothing is stored under the id cut short at the NUL.
    before = idx.describe()["count"]
    error(idx.insert(s, [1, 2, 3, 4]), 400, "invalid_argument")
    error(idx.get(s), 400, "invalid_argument")       # %00 in the path
    prefix = s.split("\u0000")[0]
    if prefix:
        error(idx.get(prefix), 404, "not_found")
    assert idx.describe()["count"] == before


def test_escaped_backslash_u0000_is_text(idx):
    # "\\u0000" in JSON is a backslash followed by the text u0000, not a NUL
    s = "\\u0000"
    ok(idx.insert(s, [1, 2, 3, 4]), 201)
    assert ok(idx.get(s))["id"] == s


def test_percent_encoded_integer_path(idx):
    ok(idx.insert(123, [1, 1, 1, 1]), 201)
    assert ok(idx.api.get(idx.path("get/") + "%31%32%33"))["id"] == 123


def test_percent_encoded_unicode_path_matches(idx):
    ok(idx.insert("ü", [1, 1, 1, 1]), 201)
    assert ok(idx.api.get(idx.path("get/") + "%C3%BC"))["id"] == "ü"
    assert ok(idx.api.get(idx.path("get/") + "%c3%bc"))["id"] == "ü"
    assert quote_id("ü") == "%C3%BC"


def test_bad_path_ids(idx):
    ok(idx.insert(1, [1, 1, 1, 1]), 201)
    long = "z" * 257
    r = idx.get(long)
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        error(r, 400, "invalid_argument")
    r = idx.api.get(idx.path("get/") + "%ZZ")
    assert r.status_code in (400, 404), r.text
    assert idx.describe()["count"] == 1


def test_integer_id_limit(idx):
    ok(idx.insert(2 ** 53 - 1, [1, 1, 1, 1]), 201)
    error(idx.insert(2 ** 53, [1, 1, 1, 1]), 400, "invalid_argument")
    error(idx.insert(2 ** 64, [1, 1, 1, 1]), 400, "invalid_argument")
    assert idx.describe()["count"] == 1


def test_many_string_ids_no_false_collisions(idx):
    rows = [{"id": "doc-%05d" % i, "vector": [i % 7, i % 5, i % 3, 1]} for i in range(800)]
    ok(idx.batch(rows), 201)
    assert idx.describe()["count"] == 800
    got = ok(idx.get_many(["doc-%05d" % i for i in range(0, 800, 37)]))
    assert not got["missing"] and len(got["vectors"]) == len(range(0, 800, 37))
