"""Operations routes, request ids and authentication."""
import pytest

from qzclient import error, ok


def test_health_needs_no_key(anon):
    b = ok(anon.get("/health"))
    assert b["status"] == "ok"
    assert isinstance(b["version"], str) and b["version"]
    assert isinstance(b["indexes"], int) and b["indexes"] >= 1


def test_health_counts_indexes(api, anon, make_index):
    n = anon.get("/health").json()["indexes"]
    make_index(3, "l2")
    assert anon.get("/health").json()["indexes"] == n + 1


def test_metrics_needs_a_key(api, api_ro, anon):
    error(anon.get("/metrics"), 401, "unauthorized")
    for a in (api, api_ro):
        r = a.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers


def test_request_id_echoed(api, anon):
    r = anon.get("/health", headers={"X-Request-Id": "abc-123_XYZ"})
    assert r.headers.get("X-Request-Id") == "abc-123_XYZ"
    # errors carry it too
    r = api.get("/api/nope", headers={"X-Request-Id": "err-1"})
    assert r.status_code == 404 and r.headers.get("X-Request-Id") == "err-1"


def test_request_id_generated_when_absent_or_too_long(anon):
    a = anon.get("/health").headers.get("X-Request-Id")
    b = anon.get("/health").headers.get("X-Request-Id")
    assert a and b and a != b
    long = "x" * 65
    got = anon.get("/health", headers={"X-Request-Id": long}).headers.get("X-Request-Id")
    assert got and got != long
    exact = "y" * 64
    assert anon.get("/health", headers={"X-Request-Id": exact}).headers.get("X-Request-Id") == exact


@pytest.mark.parametrize("key", [None, "", "not-a-key"])
def test_missing_or_unknown_key_is_401(api, key, uid):
    d = api.default()
    for method, path, body in [
        ("GET", "/api/indexes", None),
        ("GET", "/api/vector/stats", None),
        ("POST", "/api/vector/search", {"query": [0.1] * 384}),
        ("POST", "/api/vector/insert", {"id": uid, "vector": [0.1] * 384}),
        ("POST", "/api/put", {"key": uid, "value": 1}),
        ("DELETE", "/api/indexes/default", None),
    ]:
        r = api.req(method, path, body, key=key)
        error(r, 401, "unauthorized")
    assert d.get(uid).status_code == 404
    assert api.get("/api/get/" + uid).status_code == 404


def test_both_header_forms(target, api, uid):
    from qzclient import Api
    for header in ("bearer", "x-api-key"):
        for key in (target.key_rw, target.key_ro):
            a = Api(target.url, key, header)
            ok(a.get("/api/indexes"))
    xk = Api(target.url, target.key_rw, "x-api-key")
    ok(xk.default().insert(uid, [0.5] * 384), 201)
    ok(api.default().get(uid))
    ok(xk.default().delete(uid))
    # a wrong scheme is not a key
    r = api.get("/api/indexes", key=None, headers={"Authorization": "Basic " + target.key_rw})
    error(r, 401, "unauthorized")


def test_read_only_key(api, api_ro, make_index, uid):
    ix = make_index(2, "l2")
    ok(ix.insert(1, [1.0, 2.0], {"a": 1}), 201)
    ro = api_ro.index(ix.name)
    before = ix.snapshot([1, 2])
    # reads work
    ok(api_ro.get("/api/indexes"))
    ok(api_ro.get("/api/indexes/" + ix.name))
    ok(ro.search([1.0, 2.0], 1))
    ok(ro.get(1))
    ok(ro.get_many([1, 2]))
    ok(ro.stats())
    # writes are 403
    for r in [ro.insert(2, [0.0, 1.0]), ro.upsert(1, [0.0, 1.0]), ro.batch([{"id": 2, "vector": [0.0, 1.0]}]),
              ro.delete(1), ro.delete_many([1]),
              api_ro.post("/api/indexes", {"name": "ro_" + uid[2:], "dimension": 2}),
              api_ro.delete("/api/indexes/" + ix.name),
              api_ro.post("/api/put", {"key": uid, "value": 1}),
              api_ro.delete("/api/delete/" + uid)]:
        error(r, 403, "forbidden")
    assert ix.snapshot([1, 2]) == before
    assert api.get("/api/indexes/ro_" + uid[2:]).status_code == 404
    # ro reads kv
    ok(api.post("/api/put", {"key": uid, "value": [1, 2]}))
    assert ok(api_ro.get("/api/get/" + uid))["value"] == [1, 2]


def test_auth_before_body_parse(api, api_ro):
    r = api.post("/api/vector/insert", data="{not json", key=None)
    error(r, 401, "unauthorized")
    r = api_ro.post("/api/vector/insert", data="{not json")
    error(r, 403, "forbidden")


def test_auth_before_unknown_route(api):
    error(api.get("/api/no/such/route", key=None), 401, "unauthorized")
    error(api.delete("/api/vector/search", key=None), 401, "unauthorized")
    error(api.get("/api/no/such/route"), 404, "not_found")
