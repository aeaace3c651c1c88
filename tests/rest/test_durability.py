"""Crash durability: acknowledged writes survive SIGKILL of the server
(durability sync, the default), and the server opens again at all.

Each test runs its own server from the target module, so the session's
server is never killed."""
import threading
import time

import pytest

from qzclient import Api, ok

pytestmark = pytest.mark.needs_restart

DIM = 16


def vec(i):
    return [((i * 31 + j * 17) % 97) / 97.0 - 0.5 for j in range(DIM)]


@pytest.fixture
def own(target_module, target):
    t = target_module.create()
    yield t
    t.close()


def writer_until_killed(t, ix_name, acked, stop):
    """Insert single vectors (alternating int/string ids, with metadata) and
    kv pairs, recording each one whose response came back 2xx."""
    a = Api(t.url, t.key_rw)
    ix = a.index(ix_name)
    i = 0
    while not stop.is_set():
        id_ = i if i % 2 else "k-%d" % i
        try:
            if i % 5 == 4:
                r = a.post("/api/put", {"key": "kv-%d" % i, "value": {"i": i}})
                if r.status_code == 200:
                    acked.append(("kv", i))
            elif i % 7 == 6:
                rows = [{"id": "b-%d-%d" % (i, j), "vector": vec(i + j), "metadata": {"b": i, "j": j}}
                        for j in range(20)]
                r = ix.batch(rows)
                if r.status_code == 201:
                    acked.append(("batch", i))
            else:
                r = ix.insert(id_, vec(i), {"i": i, "s": "x" * (i % 50)})
                if r.status_code == 201:
                    acked.append(("vec", i))
        except Exception:  # noqa: BLE001 - the server was killed mid-request
            return
        i += 1


def check_acked(t, ix_name, acked):
    a = Api(t.url, t.key_rw)
    ix = a.index(ix_name)
    vec_ids, meta = [], {}
    for kind, i in acked:
        if kind == "vec":
            id_ = i if i % 2 else "k-%d" % i
            vec_ids.append(id_)
            meta[id_] = {"i": i, "s": "x" * (i % 50)}
        elif kind == "batch":
            for j in range(20):
                id_ = "b-%d-%d" % (i, j)
                vec_ids.append(id_)
                meta[id_] = {"b": i, "j": j}
    for start in range(0, len(vec_ids), 200):
        chunk = vec_ids[start:start + 200]
        got = ok(ix.get_many(chunk))
        assert got["missing"] == [], "acknowledged vectors lost: %r" % got["missing"][:10]
        for v in got["vectors"]:
            assert v["metadata"] == meta[v["id"]], v
    for kind, i in acked:
        if kind == "kv":
            assert ok(a.get("/api/get/kv-%d" % i))["value"] == {"i": i}
    d = ix.describe()
    assert d["count"] >= len(vec_ids)
    # the index still works for new writes and searches
    ok(ix.insert("after-restart", vec(123456)), 201)
    res = ok(ix.search(vec(123456), 1))["results"]
    assert res and res[0]["distance"] < 1e-5
    return len(vec_ids)


def test_sigkill_mid_stream_keeps_acknowledged_writes(own):
    if own.capabilities.get("durability", "sync") != "sync":
        pytest.skip("target is not in sync durability")
    a = Api(own.url, own.key_rw)
    ok(a.post("/api/indexes", {"name": "dur", "dimension": DIM, "metric": "l2"}), 201)
    for cycle in range(2):
        acked, stop = [], threading.Event()
        w = threading.Thread(target=writer_until_killed, args=(own, "dur", acked, stop))
        w.start()
        deadline = time.monotonic() + 20
        while len(acked) < 60 and time.monotonic() < deadline and w.is_alive():
            time.sleep(0.02)
        own.kill()
        stop.set()
        w.join(30)
        assert len(acked) >= 10, "writer made little progress before the kill (%d)" % len(acked)
        own.restart()
        n = check_acked(own, "dur", acked)
        assert n > 0
        # the next cycle's writer will reuse names: clear what was checked
        ok(Api(own.url, own.key_rw).delete("/api/indexes/dur"))
        ok(Api(own.url, own.key_rw).post("/api/indexes", {"name": "dur", "dimension": DIM, "metric": "l2"}), 201)


def test_clean_restart_keeps_everything(own):
    a = Api(own.url, own.key_rw)
    ok(a.post("/api/indexes", {"name": "keep", "dimension": 3, "metric": "ip", "M": 8,
                               "ef_search": 41}), 201)
    ix = a.index("keep")
    ok(ix.batch([{"id": i, "vector": [i, 1, 0], "metadata": {"i": i}} for i in range(50)]), 201)
    ok(ix.delete(7))
    ok(a.post("/api/put", {"key": "kk", "value": [1, 2]}))
    before = ix.describe()
    own.restart()
    a = Api(own.url, own.key_rw)
    ix = a.index("keep")
    after = ix.describe()
    assert {k: after[k] for k in ("name", "dimension", "metric", "M", "ef_search", "count")} == \
        {k: before[k] for k in ("name", "dimension", "metric", "M", "ef_search", "count")}
    assert ok(ix.get(3))["metadata"] == {"i": 3}
    assert ix.get(7).status_code == 404
    assert ok(a.get("/api/get/kk"))["value"] == [1, 2]
    # a dropped index stays dropped across a restart
    ok(a.delete("/api/indexes/keep"))
    own.restart()
    assert Api(own.url, own.key_rw).get("/api/indexes/keep").status_code == 404
