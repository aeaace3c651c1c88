"""Parallel clients: distinct writers and searchers at once, then every
write present; read-your-writes on each connection."""
import random
import threading

from qzclient import Api, ok

THREADS = 8
PER_THREAD = 40
DIM = 8


def vec(t, i):
    r = random.Random(t * 100003 + i)
    return [round(r.uniform(-1, 1), 4) for _ in range(DIM)]


def test_parallel_writers_and_searchers(target, make_index):
    ix = make_index(DIM, "l2")
    errors = []
    stop = threading.Event()

    def writer(t):
        a = Api(target.url, target.key_rw)
        w = a.index(ix.name)
        try:
            for i in range(PER_THREAD):
                id_ = "w%d-%d" % (t, i) if t % 2 else t * 1000 + i
                v = vec(t, i)
                r = w.insert(id_, v, {"t": t, "i": i})
                assert r.status_code == 201, r.text
                # read-your-writes: the acknowledged vector is found at once
                res = w.search(v, 3, ef=64).json()["results"]
                hit = [x for x in res if x["id"] == id_]
                assert hit and hit[0]["distance"] < 1e-6, (id_, res)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(("writer", t, repr(e)))

    def searcher(s):
        a = Api(target.url, target.key_ro)
        w = a.index(ix.name)
        rnd = random.Random(s)
        try:
            while not stop.is_set():
                q = [rnd.uniform(-1, 1) for _ in range(DIM)]
                r = w.search(q, 5)
                assert r.status_code == 200, r.text
                d = [x["distance"] for x in r.json()["results"]]
                assert d == sorted(d)
        except Exception as e:  # noqa: BLE001
            errors.append(("searcher", s, repr(e)))

    ws = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    ss = [threading.Thread(target=searcher, args=(s,)) for s in range(2)]
    for th in ws + ss:
        th.start()
    for th in ws:
        th.join(240)
    stop.set()
    for th in ss:
        th.join(60)
    assert not errors, errors[:5]
    assert ix.describe()["count"] == THREADS * PER_THREAD
    ids = [("w%d-%d" % (t, i) if t % 2 else t * 1000 + i) for t in range(THREADS) for i in range(PER_THREAD)]
    got = ok(ix.get_many(ids))
    assert got["missing"] == []
    by = {v["id"]: v for v in got["vectors"]}
    for t in range(THREADS):
        for i in range(PER_THREAD):
            v = by["w%d-%d" % (t, i) if t % 2 else t * 1000 + i]
            assert v["metadata"] == {"t": t, "i": i}
            assert all(abs(a - b) < 1e-6 for a, b in zip(v["vector"], vec(t, i)))


def test_parallel_upserts_same_ids_last_write_visible(target, make_index):
    ix = make_index(2, "l2")
    errors = []

    def worker(t):
        a = Api(target.url, target.key_rw)
        w = a.index(ix.name)
        try:
            for rnd in range(15):
                for i in range(5):
                    r = w.upsert(i, [t, rnd], {"t": t, "rnd": rnd})
                    assert r.status_code == 200, r.text
                    g = w.get(i).json()
                    assert g["id"] == i and len(g["vector"]) == 2
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    th = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for x in th:
        x.start()
    for x in th:
        x.join(240)
    assert not errors, errors[:3]
    assert ix.describe()["count"] == 5
    for i in range(5):
        g = ok(ix.get(i))
        assert g["vector"] == [g["metadata"]["t"], g["metadata"]["rnd"]]
        assert g["metadata"]["rnd"] == 14
