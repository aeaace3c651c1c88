"""The vector routes on the default index and on named indexes."""
import random

import pytest

from qzclient import error, ok


def unit(dim, seed):
    r = random.Random(seed)
    v = [r.uniform(-1, 1) for _ in range(dim)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def test_default_index_crud(api, uid):
    d = api.default()
    v = unit(384, 1)
    b = ok(d.insert(uid, v, {"title": "x", "n": [1, 2]}), 201)
    assert b == {"id": uid, "inserted": True}
    g = ok(d.get(uid))
    assert g["id"] == uid and g["metadata"] == {"title": "x", "n": [1, 2]}
    assert close(g["vector"], v)   # already unit length, so cosine keeps it
    s = ok(d.search(v, 1))
    assert s["results"][0]["id"] == uid and abs(s["results"][0]["distance"]) < 1e-4
    b = ok(d.upsert(uid, unit(384, 2), {"title": "y"}))
    assert b == {"id": uid, "upserted": True}
    g = ok(d.get(uid))
    assert g["metadata"] == {"title": "y"} and close(g["vector"], unit(384, 2))
    b = ok(d.delete(uid))
    assert b == {"id": uid, "deleted": True}
    error(d.get(uid), 404, "not_found")
    error(d.delete(uid), 404, "not_found")


def test_named_index_routes_are_separate(api, make_index, uid):
    a = make_index(3, "l2")
    b = make_index(3, "l2")
    ok(a.insert(1, [1.0, 0.0, 0.0]), 201)
    error(b.get(1), 404, "not_found")
    assert b.search([1.0, 0.0, 0.0], 5).json()["results"] == []
    error(b.delete(1), 404, "not_found")
    assert a.describe()["count"] == 1 and b.describe()["count"] == 0


def test_insert_without_metadata_is_null(idx):
    ok(idx.insert(5, [1, 2, 3, 4]), 201)
    assert ok(idx.get(5))["metadata"] is None
    r = ok(idx.search([1, 2, 3, 4], 1))["results"][0]
    assert r["id"] == 5 and r["metadata"] is None


@pytest.mark.parametrize("meta", [0, -1.5, "text", True, None, [], {}, [1, "a", None, {"b": [True]}],
                                  {"nested": {"deep": {"deeper": [1, 2, {"x": "é😀"}]}}}])
def test_metadata_any_json_roundtrips(idx, meta):
    ok(idx.insert(1, [1, 0, 0, 0], meta), 201)
    assert ok(idx.get(1))["metadata"] == meta
    assert ok(idx.get_many([1]))["vectors"][0]["metadata"] == meta
    assert ok(idx.search([1, 0, 0, 0], 1))["results"][0]["metadata"] == meta


def test_upsert_creates_and_replaces(idx):
    ok(idx.upsert(9, [1, 1, 1, 1], {"v": 1}))
    assert ok(idx.get(9))["vector"] == [1, 1, 1, 1]
    ok(idx.upsert(9, [2, 2, 2, 2]))
    g = ok(idx.get(9))
    assert g["vector"] == [2, 2, 2, 2]
    # metadata of an upsert without metadata: the new row has none
    assert g["metadata"] is None
    d = idx.describe()
    assert d["count"] == 1


def test_batch_insert_and_bulk_get_delete(idx):
    rows = [{"id": i, "vector": [i, i + 1, i + 2, i + 3], "metadata": {"i": i}} for i in range(50)]
    rows.append({"id": "str-id", "vector": [9, 9, 9, 9]})
    b = ok(idx.batch(rows), 201)
    assert b["inserted"] == 51 and b["ids"] == [r["id"] for r in rows]
    assert idx.describe()["count"] == 51
    g = ok(idx.get_many([3, "str-id", 777, "nope"]))
    assert sorted(map(str, g["missing"])) == ["777", "nope"]
    by = {v["id"]: v for v in g["vectors"]}
    assert set(by) == {3, "str-id"}
    assert by[3]["vector"] == [3, 4, 5, 6] and by[3]["metadata"] == {"i": 3}
    assert by["str-id"]["metadata"] is None
    d = ok(idx.delete_many([1, 2, 3, 1000]))
    assert d["deleted"] == 3 and d["missing"] == [1000]
    assert idx.describe()["count"] == 48
    assert sorted(ok(idx.get_many([1, 2, 3]))["missing"]) == [1, 2, 3]


def test_batch_upsert_true_replaces(idx):
    ok(idx.insert(1, [1, 1, 1, 1], "old"), 201)
    b = ok(idx.batch([{"id": 1, "vector": [5, 5, 5, 5], "metadata": "new"},
                      {"id": 2, "vector": [6, 6, 6, 6]}], upsert=True), 201)
    assert b["inserted"] == 2
    assert ok(idx.get(1)) == {"id": 1, "vector": [5, 5, 5, 5], "metadata": "new"}
    assert idx.describe()["count"] == 2


def test_stats(api, make_index):
    ix = make_index(6, "ip")
    ok(ix.batch([{"id": i, "vector": [0.1 * i] * 6} for i in range(1, 11)]), 201)
    ok(ix.delete(3))
    s = ok(ix.stats())
    assert {"index", "dimension", "metric", "count", "deleted", "memory_bytes", "simd"} <= set(s)
    assert s["dimension"] == 6 and s["metric"] == "ip" and s["count"] == 9
    assert s["index"]["name"] == ix.name and s["index"]["count"] == 9
    assert isinstance(s["deleted"], int) and s["deleted"] >= 0
    assert isinstance(s["memory_bytes"], int) and s["memory_bytes"] > 0
    assert isinstance(s["simd"], str) and s["simd"]
    ds = ok(api.default().stats())
    assert ds["dimension"] == 384 and ds["metric"] == "cosine" and ds["index"]["name"] == "default"


def test_cosine_stores_normalised(make_index):
    ix = make_index(2, "cosine")
    ok(ix.insert(1, [3.0, 4.0]), 201)
    assert close(ok(ix.get(1))["vector"], [0.6, 0.8])


def test_hamming_get_returns_bits(make_index):
    ix = make_index(8, "hamming")
    ok(ix.insert(1, [0.5, -1, 0, 2, -0.1, 3, 0, 1e-3]), 201)
    assert ok(ix.get(1))["vector"] == [1, 0, 0, 1, 0, 1, 0, 1]
