"""The key-value routes."""
import pytest

from qzclient import error, ok, quote_id


@pytest.mark.parametrize("value", [1, -2.5, "s", True, False, None, [], {}, [1, [2, [3]]],
                                   {"a": {"b": ["é", "😀", None]}}])
def test_put_get_delete_roundtrip(api, api_ro, uid, value):
    b = ok(api.post("/api/put", {"key": uid, "value": value}))
    assert b == {"key": uid, "stored": True}
    assert ok(api.get("/api/get/" + uid)) == {"key": uid, "value": value}
    assert ok(api_ro.get("/api/get/" + uid))["value"] == value
    assert ok(api.delete("/api/delete/" + uid)) == {"key": uid, "deleted": True}
    error(api.get("/api/get/" + uid), 404, "not_found")


def test_put_overwrites(api, uid):
    ok(api.post("/api/put", {"key": uid, "value": 1}))
    ok(api.post("/api/put", {"key": uid, "value": {"two": 2}}))
    assert ok(api.get("/api/get/" + uid))["value"] == {"two": 2}


@pytest.mark.parametrize("suffix", ["/slash", " space", "ü", "?q=1", "#h", "%41", "日本"])
def test_special_keys_via_percent_encoding(api, uid, suffix):
    key = uid + suffix
    ok(api.post("/api/put", {"key": key, "value": key}))
    assert ok(api.get("/api/get/" + quote_id(key))) == {"key": key, "value": key}
    ok(api.delete("/api/delete/" + quote_id(key)))
    error(api.get("/api/get/" + quote_id(key)), 404, "not_found")


def test_key_length_limit(api, uid):
    key = (uid * 100)[:1024]
    ok(api.post("/api/put", {"key": key, "value": 1}))
    assert ok(api.get("/api/get/" + quote_id(key)))["value"] == 1
    ok(api.delete("/api/delete/" + quote_id(key)))


def test_kv_and_vectors_do_not_mix(api, uid):
    ok(api.post("/api/put", {"key": uid, "value": 1}))
    error(api.default().get(uid), 404, "not_found")
    ok(api.delete("/api/delete/" + uid))
