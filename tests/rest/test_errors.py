"""Every error row of docs/rest-api.md, and that a failed request changes
nothing stored (state compared before and after)."""
import json

import pytest

from qzclient import error, ok

SEED = [{"id": 1, "vector": [1, 2, 3, 4], "metadata": {"a": 1}},
        {"id": "s", "vector": [0, 0, 0, 1]}]
IDS = [1, "s", 2, 3, "new", 99]


@pytest.fixture
def seeded(idx):
    ok(idx.batch(SEED), 201)
    return idx


def unchanged(ix):
    """Context: snapshot before, assert equal after."""
    class C:
        def __enter__(self):
            self.before = ix.snapshot(IDS)

        def __exit__(self, *exc):
            if exc[0] is None:
                assert ix.snapshot(IDS) == self.before
    return C()


# ---- malformed bodies ----

@pytest.mark.parametrize("raw", ["", "{", "not json", "[1,2]", "42", "\"str\"", "null",
                                 "{\"id\": 1, \"vector\": [1,2,3,4]} trailing", "{'id': 1}",
                                 "\xff\xfe{}"])
def test_invalid_json(seeded, raw):
    with unchanged(seeded):
        for op in ("insert", "upsert", "batch-insert", "search", "get", "delete"):
            error(seeded.api.post(seeded.path(op), data=raw.encode("latin-1")), 400, "invalid_json")
    error(seeded.api.post("/api/indexes", data=raw.encode("latin-1")), 400, "invalid_json")
    error(seeded.api.post("/api/put", data=raw.encode("latin-1")), 400, "invalid_json")


@pytest.mark.parametrize("body", [
    {},
    {"vector": [1, 2, 3, 4]},                     # no id
    {"id": 2},                                    # no vector
    {"id": 2, "vector": "1,2,3,4"},
    {"id": 2, "vector": [1, 2, "3", 4]},
    {"id": 2, "vector": [1, 2, None, 4]},
    {"id": 2, "vector": [1, 2, [3], 4]},
    {"id": 2, "vector": [1, 2, True, 4]},
    {"id": 2, "vector": {"0": 1}},
    {"id": 2.5, "vector": [1, 2, 3, 4]},
    {"id": -1, "vector": [1, 2, 3, 4]},
    {"id": 2 ** 53, "vector": [1, 2, 3, 4]},
    {"id": True, "vector": [1, 2, 3, 4]},
    {"id": None, "vector": [1, 2, 3, 4]},
    {"id": "", "vector": [1, 2, 3, 4]},
    {"id": "x" * 257, "vector": [1, 2, 3, 4]},
    {"id": [2], "vector": [1, 2, 3, 4]},
    {"id": {"n": 2}, "vector": [1, 2, 3, 4]},
])
def test_insert_wrong_types(seeded, body):
    with unchanged(seeded):
        for op in ("insert", "upsert"):
            error(seeded.api.post(seeded.path(op), body), 400, "invalid_argument")
        error(seeded.batch([{"id": 3, "vector": [1, 1, 1, 1]}, body]), 400, "invalid_argument")


@pytest.mark.parametrize("body", [
    {}, {"query": "x"}, {"query": [1, 2, "3", 4]}, {"query": [1, 2, 3, 4], "k": "5"},
    {"query": [1, 2, 3, 4], "k": 2.5}, {"query": [1, 2, 3, 4], "ef": "9"},
    {"query": [1, 2, 3, 4], "include_vectors": "yes"}, {"query": [1, 2, 3, 4], "include_metadata": 1},
    {"query": [1, 2, 3, 4], "filter_ids": 1}, {"query": [1, 2, 3, 4], "filter_ids": [1.5]},
])
def test_search_wrong_types(seeded, body):
    error(seeded.api.post(seeded.path("search"), body), 400, "invalid_argument")


@pytest.mark.parametrize("body", [{}, {"vectors": 1}, {"vectors": [1]}, {"vectors": {"id": 1}},
                                  {"vectors": [{"id": 3, "vector": [1, 1, 1, 1]}], "upsert": "true"}])
def test_batch_wrong_shape(seeded, body):
    with unchanged(seeded):
        error(seeded.api.post(seeded.path("batch-insert"), body), 400, "invalid_argument")


@pytest.mark.parametrize("body", [{}, {"ids": 1}, {"ids": [1.5]}, {"ids": [None]}, {"ids": "1"}])
def test_bulk_get_delete_wrong_types(seeded, body):
    with unchanged(seeded):
        error(seeded.api.post(seeded.path("get"), body), 400, "invalid_argument")
        error(seeded.api.post(seeded.path("delete"), body), 400, "invalid_argument")


# ---- vector content ----

def test_dimension_mismatch(seeded):
    with unchanged(seeded):
        for v in ([1, 2, 3], [1, 2, 3, 4, 5], []):
            m = error(seeded.insert(2, v), 422, "dimension_mismatch") if v else None
            if v:
                assert str(len(v)) in m and "4" in m, m
                error(seeded.upsert(1, v), 422, "dimension_mismatch")
                error(seeded.search(v, 1), 422, "dimension_mismatch")
        m = error(seeded.batch([{"id": 2, "vector": [1, 1, 1, 1]}, {"id": 3, "vector": [1, 1, 1]}]),
                  422, "dimension_mismatch")
        assert "1" in m, m   # the row's index is named


def test_dimension_mismatch_default_message(api, uid):
    m = error(api.default().insert(uid, [0.1] * 383), 422, "dimension_mismatch")
    assert "383" in m and "384" in m, m
    error(api.default().get(uid), 404, "not_found")


RAW_NONFINITE = ['1e400', '-1e400', '1e309']


@pytest.mark.parametrize("bad", RAW_NONFINITE)
def test_non_finite(seeded, bad):
    with unchanged(seeded):
        raw = '{"id": 2, "vector": [1, 2, %s, 4]}' % bad
        m = error(seeded.api.post(seeded.path("insert"), data=raw), 422, "non_finite")
        assert "2" in m, m   # component index
        error(seeded.api.post(seeded.path("upsert"), data=raw.replace('"id": 2', '"id": 1')), 422, "non_finite")
        error(seeded.api.post(seeded.path("search"), data='{"query": [1, %s, 3, 4]}' % bad), 422, "non_finite")
        raw = ('{"vectors": [{"id": 2, "vector": [1,1,1,1]}, {"id": 3, "vector": [1,1,1,1]},'
               ' {"id": 4, "vector": [%s,1,1,1]}]}' % bad)
        m = error(seeded.api.post(seeded.path("batch-insert"), data=raw), 422, "non_finite")
        assert "2" in m, m   # row 2


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_nan_literal_is_not_json(seeded, bad):
    with unchanged(seeded):
        r = seeded.api.post(seeded.path("insert"), data='{"id": 2, "vector": [1, 2, %s, 4]}' % bad)
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"]["code"] in ("invalid_json", "non_finite")


def test_zero_vector_under_cosine(api, make_index):
    ix = make_index(3, "cosine")
    ok(ix.insert(1, [1, 0, 0]), 201)
    before = ix.snapshot([1, 2])
    error(ix.insert(2, [0, 0, 0]), 422, "zero_vector")
    error(ix.upsert(1, [0, 0, 0]), 422, "zero_vector")
    error(ix.batch([{"id": 2, "vector": [0, 1, 0]}, {"id": 3, "vector": [0.0, -0.0, 0]}]), 422, "zero_vector")
    error(ix.search([0, 0, 0], 1), 422, "zero_vector")
    assert ix.snapshot([1, 2]) == before
    # l2 accepts zero
    l2 = make_index(3, "l2")
    ok(l2.insert(1, [0, 0, 0]), 201)


# ---- not found, routes, methods ----

def test_unknown_things_404(api, seeded, uid):
    error(seeded.get(12345), 404, "not_found")
    error(seeded.get("no-such"), 404, "not_found")
    error(seeded.delete(12345), 404, "not_found")
    error(api.get("/api/get/" + uid), 404, "not_found")
    error(api.delete("/api/delete/" + uid), 404, "not_found")
    unknown = api.index("no_such_" + uid[2:])
    error(unknown.insert(1, [1]), 404, "not_found")
    error(unknown.search([1], 1), 404, "not_found")
    error(unknown.get(1), 404, "not_found")
    error(unknown.stats(), 404, "not_found")
    error(api.get("/api/indexes/no_such_" + uid[2:]), 404, "not_found")
    for path in ("/api/nope", "/api/vector/nope", "/api/vector", "/api/indexes/%s/nope" % seeded.name,
                 "/api/indexes/%s/vector/frob" % seeded.name, "/api/vector/get/1/extra"):
        error(api.get(path), 404, "not_found")
        error(api.post(path, {}), 404, "not_found")


def test_unknown_route_outside_api(anon):
    r = anon.get("/no-such-thing")
    assert r.status_code in (401, 404), r.text
    assert "error" in r.json()


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/api/vector/insert", {"POST"}),
    ("DELETE", "/api/vector/upsert", {"POST"}),
    ("GET", "/api/vector/batch-insert", {"POST"}),
    ("GET", "/api/vector/search", {"POST"}),
    ("PUT", "/api/vector/search", {"POST"}),
    ("POST", "/api/vector/stats", {"GET"}),
    ("DELETE", "/api/vector/get", {"POST"}),
    ("POST", "/api/vector/get/1", {"GET"}),
    ("GET", "/api/vector/delete/1", {"DELETE"}),
    ("GET", "/api/put", {"POST"}),
    ("POST", "/api/get/k", {"GET"}),
    ("GET", "/api/delete/k", {"DELETE"}),
    ("DELETE", "/api/indexes", {"GET", "POST"}),
    ("POST", "/api/indexes/default", {"GET", "DELETE"}),
    ("POST", "/health", {"GET"}),
    ("PATCH", "/api/indexes/IDX/vector/search", {"POST"}),
])
def test_wrong_method_405_with_allow(api, seeded, method, path, allowed):
    path = path.replace("IDX", seeded.name)
    with unchanged(seeded):
        r = api.req(method, path, {"query": [1, 2, 3, 4]} if method != "GET" else None)
        error(r, 405, "method_not_allowed")
        allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
        assert allowed <= allow, r.headers.get("Allow")


# ---- conflicts ----

def test_insert_existing_id_409(seeded):
    with unchanged(seeded):
        error(seeded.insert(1, [9, 9, 9, 9], "x"), 409, "already_exists")
        error(seeded.insert("s", [9, 9, 9, 9]), 409, "already_exists")
        error(seeded.insert("1", [9, 9, 9, 9]), 409, "already_exists")   # "1" is 1
        m = error(seeded.batch([{"id": 2, "vector": [1, 1, 1, 1]}, {"id": 1, "vector": [1, 1, 1, 1]}]),
                  409, "already_exists")
        assert "1" in m, m


def test_batch_duplicate_inside_batch(seeded):
    with unchanged(seeded):
        r = seeded.batch([{"id": 2, "vector": [1, 1, 1, 1]}, {"id": 3, "vector": [1, 1, 1, 1]},
                          {"id": 2, "vector": [2, 2, 2, 2]}])
        assert r.status_code in (400, 409), r.text
        assert r.json()["error"]["code"] in ("invalid_argument", "already_exists"), r.text
        assert "2" in r.json()["error"]["message"]
        r = seeded.batch([{"id": 7, "vector": [1, 1, 1, 1]}, {"id": "7", "vector": [1, 1, 1, 1]}], upsert=True)
        assert r.status_code in (400, 409), r.text


def test_batch_bad_row_stores_nothing(seeded):
    rows = [{"id": 100 + i, "vector": [i, 1, 1, 1]} for i in range(20)]
    rows[13] = {"id": 113, "vector": [1, 1, 1]}
    with unchanged(seeded):
        m = error(seeded.batch(rows), 422, "dimension_mismatch")
        assert "13" in m, m
    assert ok(seeded.get_many([100, 101, 112, 119]))["vectors"] == []


# ---- ranges and limits ----

@pytest.mark.parametrize("field,value", [("k", 0), ("k", -1), ("k", 10001), ("ef", 0), ("ef", 100001),
                                         ("ef", -5)])
def test_k_ef_out_of_range(seeded, field, value):
    error(seeded.search([1, 2, 3, 4], **{field: value}), 422, "out_of_range")


def test_k_ef_limits_accepted(seeded):
    b = ok(seeded.search([1, 2, 3, 4], k=10000, ef=100000))
    assert b["count"] == 2 and b["k"] == 10000 and b["ef"] >= 1
    b = ok(seeded.search([1, 2, 3, 4], k=1, ef=1))
    assert b["count"] == 1


def test_body_over_limit_413_readable(api, seeded, caps):
    limit = caps["max_body"]
    pad = limit + 1 - len('{"id": 2, "vector": [1,2,3,4], "metadata": ""}')
    raw = '{"id": 2, "vector": [1,2,3,4], "metadata": "%s"}' % ("a" * pad)
    assert len(raw) == limit + 1
    with unchanged(seeded):
        r = api.post(seeded.path("insert"), data=raw)   # fails with a reset if the server does not read it
        error(r, 413, "payload_too_large")
    # the server still serves, on a fresh connection
    ok(api.get("/api/indexes/" + seeded.name))


def test_body_over_limit_chunked(api, seeded, caps):
    import requests
    limit = caps["max_body"]
    chunk = b"a" * 65536

    def gen():
        yield b'{"id": 2, "vector": [1,2,3,4], "metadata": "'
        sent = 0
        while sent <= limit:
            yield chunk
            sent += len(chunk)
        yield b'"}'
    with unchanged(seeded):
        r = requests.post(api.url + seeded.path("insert"), data=gen(),
                          headers=dict(api.headers(), **{"Content-Type": "application/json"}), timeout=60)
        error(r, 413, "payload_too_large")


def test_body_far_over_limit_still_413(api, seeded, caps):
    # Far past the limit a server may stop reading early, but the client must
    # still read a 413 (not a reset connection); the JSON body is only
    # required up to twice the limit (quartzd over libevent 2.1).
    limit = caps["max_body"]
    raw = b'{"id": 3, "vector": [1,2,3,4], "metadata": "' + b"c" * (3 * limit) + b'"}'
    with unchanged(seeded):
        r = api.post(seeded.path("insert"), data=raw)
        assert r.status_code == 413, r.text[:300]
    ok(api.get("/api/indexes/" + seeded.name))


def test_body_at_limit_accepted(api, seeded, caps):
    limit = caps["max_body"]
    pad = limit - len('{"id": 2, "vector": [1,2,3,4], "metadata": ""}')
    meta_limit = 16 * 1024 * 1024
    if pad > meta_limit - 2:
        pytest.skip("body limit above the metadata limit")
    raw = '{"id": 2, "vector": [1,2,3,4], "metadata": "%s"}' % ("b" * pad)
    ok(api.post(seeded.path("insert"), data=raw), 201)
    assert len(ok(seeded.get(2))["metadata"]) == pad


def test_metadata_over_16mib(api, make_index, caps):
    if caps["max_body"] < 16 * 1024 * 1024 + 200:
        pytest.skip("body limit %d is below the metadata limit" % caps["max_body"])
    ix = make_index(2, "l2")
    raw = '{"id": 1, "vector": [1, 2], "metadata": "%s"}' % ("m" * (16 * 1024 * 1024 + 1))
    error(api.post(ix.path("insert"), data=raw), 422, "out_of_range")
    error(ix.get(1), 404, "not_found")


def test_too_many_vectors_in_batch(seeded, caps):
    n = caps["max_batch"] + 1
    rows = [{"id": 1000 + i, "vector": [1, 1, 1, 1]} for i in range(n)]
    if len(json.dumps({"vectors": rows})) > caps["max_body"]:
        pytest.skip("max_batch + 1 rows do not fit in the body limit")
    with unchanged(seeded):
        error(seeded.batch(rows), 413, "payload_too_large")
    assert ok(seeded.get_many([1000, 1000 + n - 1]))["vectors"] == []
    ok(seeded.batch(rows[:-1]), 201)
    assert seeded.describe()["count"] == 2 + n - 1


def test_kv_errors(api, uid):
    error(api.post("/api/put", {"value": 1}), 400, "invalid_argument")
    error(api.post("/api/put", {"key": "", "value": 1}), 400, "invalid_argument")
    error(api.post("/api/put", {"key": 5, "value": 1}), 400, "invalid_argument")
    error(api.post("/api/put", {"key": "k" * 1025, "value": 1}), 400, "invalid_argument")
    error(api.post("/api/put", {"key": uid}), 400, "invalid_argument")
    error(api.get("/api/get/" + uid), 404, "not_found")
