"""Search: the metrics' distance and score formulas, exact top-k against
brute force, k above the live count, include_*, filter_ids, churn."""
import math
import random

import pytest

from qzclient import brute_topk, distance, error, ok, score

RESULT_KEYS = {"id", "distance", "score", "metadata"}


def rand_vecs(n, dim, seed, metric):
    r = random.Random(seed)
    out = {}
    for i in range(n):
        if metric == "hamming":
            v = [float(r.random() < 0.5) for _ in range(dim)]
        else:
            v = [round(r.uniform(-1, 1), 4) for _ in range(dim)]
        out[i] = v
    return out


def norm(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine", "hamming"])
def test_distance_and_score_formulas(make_index, metric):
    dim = 16
    ix = make_index(dim, metric)
    vecs = rand_vecs(40, dim, 11, metric)
    if metric == "ip":
        vecs = {i: [x / 4 for x in v] for i, v in vecs.items()}
    ok(ix.batch([{"id": i, "vector": v} for i, v in vecs.items()]), 201)
    q = rand_vecs(1, dim, 99, metric)[0]
    b = ok(ix.search(q, 40, ef=200))
    assert b["count"] == len(b["results"]) == 40 and b["k"] == 40 and b["ef"] >= 40
    prev = -math.inf
    tol = 1e-4
    for res in b["results"]:
        assert RESULT_KEYS <= set(res) and "vector" not in res, res
        want = distance(metric, vecs[res["id"]], q)
        assert abs(res["distance"] - want) <= tol * max(1.0, abs(want)), (metric, res, want)
        assert abs(res["score"] - score(metric, res["distance"], dim)) <= 1e-5, (metric, res)
        assert res["distance"] >= prev - 1e-6
        prev = res["distance"]
    if metric == "hamming":
        assert all(float(r["distance"]).is_integer() for r in b["results"])
    if metric == "cosine":   # the score is the cosine similarity
        r0 = b["results"][0]
        cs = sum(a * c for a, c in zip(norm(vecs[r0["id"]]), norm(q)))
        assert abs(r0["score"] - cs) < 1e-4
    if metric == "ip":       # the score is the dot product
        r0 = b["results"][0]
        assert abs(r0["score"] - sum(a * c for a, c in zip(vecs[r0["id"]], q))) < 1e-4


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_exact_topk_matches_brute_force(make_index, metric):
    dim, n, k = 12, 300, 10
    ix = make_index(dim, metric, M=16, ef_construction=200)
    vecs = rand_vecs(n, dim, 5, metric)
    ok(ix.batch([{"id": i, "vector": v} for i, v in vecs.items()]), 201)
    qs = rand_vecs(8, dim, 6, metric)
    for q in qs.values():
        want, wd = brute_topk(metric, vecs, q, k)
        got = ok(ix.search(q, k, ef=n))["results"]
        gids = [r["id"] for r in got]
        assert len(gids) == k
        if gids != want:
            # only near-ties (float32 against float64) may swap places
            assert all(abs(r["distance"] - d) < 1e-4 for r, (d, _, _) in zip(got, wd)), (gids, want)


def test_hamming_topk_by_distance(make_index):
    dim, n = 64, 200
    ix = make_index(dim, "hamming")
    vecs = rand_vecs(n, dim, 8, "hamming")
    ok(ix.batch([{"id": i, "vector": v} for i, v in vecs.items()]), 201)
    q = rand_vecs(1, dim, 9, "hamming")[0]
    _, wd = brute_topk("hamming", vecs, q, 10)
    got = ok(ix.search(q, 10, ef=n))["results"]
    assert [r["distance"] for r in got] == [d for d, _, _ in wd]
    for r in got:
        assert r["distance"] == distance("hamming", vecs[r["id"]], q)


def test_k_above_live_count(idx):
    ok(idx.batch([{"id": i, "vector": [i, 0, 0, 0]} for i in range(5)]), 201)
    ok(idx.delete(2))
    b = ok(idx.search([0, 0, 0, 0], 50))
    assert b["count"] == 4 and b["k"] == 50 and len(b["results"]) == 4
    assert [r["id"] for r in b["results"]] == [0, 1, 3, 4]


def test_search_empty_index(idx):
    b = ok(idx.search([1, 2, 3, 4]))
    assert b["results"] == [] and b["count"] == 0 and b["k"] == 10


def test_default_k_is_10(idx):
    ok(idx.batch([{"id": i, "vector": [i, 1, 1, 1]} for i in range(30)]), 201)
    b = ok(idx.search([0, 1, 1, 1]))
    assert b["k"] == 10 and b["count"] == 10 and [r["id"] for r in b["results"]] == list(range(10))


def test_include_flags(idx):
    ok(idx.insert(1, [1, 2, 3, 4], {"m": 1}), 201)
    ok(idx.insert(2, [2, 2, 3, 4]), 201)
    r = ok(idx.search([1, 2, 3, 4], 2))["results"]
    assert r[0]["metadata"] == {"m": 1} and r[1]["metadata"] is None and "vector" not in r[0]
    r = ok(idx.search([1, 2, 3, 4], 2, include_metadata=False, include_vectors=True))["results"]
    assert "metadata" not in r[0] and "metadata" not in r[1]
    assert r[0]["vector"] == [1, 2, 3, 4] and r[1]["vector"] == [2, 2, 3, 4]
    r = ok(idx.search([1, 2, 3, 4], 2, include_metadata=True, include_vectors=True))["results"]
    assert r[0]["metadata"] == {"m": 1} and r[0]["vector"] == [1, 2, 3, 4]


def test_filter_ids(idx):
    ok(idx.batch([{"id": i, "vector": [i, 0, 0, 0]} for i in range(100)] +
                 [{"id": "s%d" % i, "vector": [i + 0.5, 0, 0, 0]} for i in range(10)]), 201)
    b = ok(idx.search([0, 0, 0, 0], 5, filter_ids=[90, 50, "s3", 70, 9999, "nope"]))
    assert [r["id"] for r in b["results"]] == ["s3", 50, 70, 90]
    assert b["count"] == 4
    b = ok(idx.search([0, 0, 0, 0], 2, filter_ids=[99, 98, 97]))
    assert [r["id"] for r in b["results"]] == [97, 98]
    b = ok(idx.search([0, 0, 0, 0], 5, filter_ids=[]))
    assert b["results"] == []
    ok(idx.delete(50))
    b = ok(idx.search([0, 0, 0, 0], 5, filter_ids=[50, 51]))
    assert [r["id"] for r in b["results"]] == [51]
    b = ok(idx.search([0, 0, 0, 0], 3, filter_ids=["3"]))
    assert [r["id"] for r in b["results"]] == [3]


def test_ef_echo_and_default(make_index):
    ix = make_index(4, "l2", ef_search=77)
    ok(ix.insert(1, [1, 1, 1, 1]), 201)
    assert ok(ix.search([1, 1, 1, 1], 5))["ef"] == 77
    assert ok(ix.search([1, 1, 1, 1], 5, ef=123))["ef"] == 123
    assert ok(ix.search([1, 1, 1, 1], 200, ef=10))["ef"] >= 10


def test_upsert_churn_then_search(make_index):
    dim, n = 8, 120
    ix = make_index(dim, "l2")
    r = random.Random(3)
    current = {}
    for rnd in range(6):
        rows = []
        for i in range(n):
            v = [round(r.uniform(-1, 1), 3) for _ in range(dim)]
            current[i] = v
            rows.append({"id": i, "vector": v, "metadata": {"round": rnd}})
        ok(ix.batch(rows, upsert=True), 201)
        for i in r.sample(range(n), 10):
            v = [round(r.uniform(-1, 1), 3) for _ in range(dim)]
            current[i] = v
            ok(ix.upsert(i, v, {"round": rnd, "single": True}))
    dels = r.sample(range(n), 20)
    ok(ix.delete_many(dels))
    for i in dels:
        del current[i]
    assert ix.describe()["count"] == len(current)
    for _ in range(10):
        q = [round(r.uniform(-1, 1), 3) for _ in range(dim)]
        want, wd = brute_topk("l2", current, q, 10)
        got = ok(ix.search(q, 10, ef=200))["results"]
        assert [g["id"] for g in got] == want, (got, wd)
        for g in got:
            assert abs(g["distance"] - distance("l2", current[g["id"]], q)) < 1e-4
    for i in list(current)[:10]:
        g = ok(ix.get(i))
        assert all(abs(a - b) < 1e-6 for a, b in zip(g["vector"], current[i]))
    # each stored vector is found at distance 0 by its own query
    for i in list(current)[:20]:
        res = ok(ix.search(current[i], 1, ef=100))["results"][0]
        assert res["distance"] < 1e-6


def test_search_on_default_index_path(api, uid):
    d = api.default()
    v = norm([((i * 7919) % 13) - 6.0 + 0.5 for i in range(384)])
    ok(d.insert(uid, v, {"k": uid}), 201)
    res = ok(d.search(v, 3, ef=64))["results"]
    assert res[0]["id"] == uid and res[0]["distance"] < 1e-4 and abs(res[0]["score"] - 1) < 1e-4
    ok(d.delete(uid))
