"""The binding's API against real databases: results against brute force,
the padding sentinel and counts, filters evaluated in C, metadata, get,
delete, stats, parameters, the kv mapping, transactions and reopening.
"""
import pickle

import numpy as np
import pytest

import quartz
from conftest import clustered

DIM = 12


def brute(x, q, metric):
    if metric == "l2":
        return ((x[None, :, :].astype(np.float64) - q[:, None, :]) ** 2).sum(-1)
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        return 1 - qn.astype(np.float64) @ xn.T.astype(np.float64)
    if metric == "ip":
        return 1 - q.astype(np.float64) @ x.T.astype(np.float64)
    raise ValueError(metric)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_search_with_a_large_ef_is_exact_and_distances_follow_quartz_h(metric):
    x = clustered(300, DIM, 3, 31)
    if metric == "ip":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = clustered(20, DIM, 0, 32)
    with quartz.open(dim=DIM, metric=metric, M=16, ef_construction=200) as db:
        db.add(np.arange(300) * 3, x)
        ids, dist = db.search(q, k=8, ef=400)
        exact = brute(x, q, metric)
        order = np.argsort(exact, axis=1, kind="stable")[:, :8]
        np.testing.assert_array_equal(ids, order * 3)
        np.testing.assert_allclose(dist, np.take_along_axis(exact, order, 1), rtol=1e-4, atol=1e-5)


def test_hamming_counts_differing_bits():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, (200, 64)).astype(np.float32)
    with quartz.open(dim=64, metric="hamming") as db:
        db.add(np.arange(200), bits * 2 - 1)  # > 0 is a one bit
        assert db.metric == "hamming"
        got, _ = db.get(5)
        np.testing.assert_array_equal(got, bits[5])
        ids, dist = db.search(bits[:10], k=3, ef=300)
        want = (bits[:10, None, :] != bits[None, :, :]).sum(-1)
        np.testing.assert_array_equal(dist[:, 0], 0)
        np.testing.assert_array_equal(dist, np.sort(want, axis=1)[:, :3])


def test_result_shapes_unpacking_rows_and_pickling():
    x = clustered(30, DIM, 0, 1)
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add(range(30), x.tolist())  # plain Python lists work too
        r = db.search(x[4].tolist(), k=3)
        assert isinstance(r, tuple) and len(r) == 2
        ids, dist = r
        assert ids.shape == (3,) and dist.shape == (3,) and r.counts == 3 and isinstance(r.counts, int)
        assert ids[0] == 4 and dist[0] == 0
        assert r.ids is ids and r.distances is dist
        r2 = db.search(x[:5], k=40)
        assert r2.ids.shape == (5, 40) and r2.counts.shape == (5,) and r2.counts.dtype == np.uintp
        assert r2.counts.tolist() == [30] * 5
        rows = list(r2.rows())
        assert len(rows) == 5 and all(a.shape == (30,) and b.shape == (30,) for a, b in rows)
        assert np.all(r2.ids[:, 30:] == quartz.PAD_ID) and quartz.PAD_ID == 2 ** 64 - 1
        assert np.all(r2.distances[:, 30:] == quartz.PAD_DISTANCE) and quartz.PAD_DISTANCE == float("inf")
        back = pickle.loads(pickle.dumps(r2))
        np.testing.assert_array_equal(back.ids, r2.ids)
        np.testing.assert_array_equal(back.counts, r2.counts)
        empty = db.search(np.empty((0, DIM), dtype=np.float32), k=4)
        assert empty.ids.shape == (0, 4) and empty.counts.shape == (0,)
        assert "SearchResult" in repr(r)


def test_read_only_and_foreign_buffers_are_accepted():
    x = clustered(20, DIM, 0, 4)
    ro = x.copy()
    ro.setflags(write=False)
    from_bytes = np.frombuffer(x.tobytes(), dtype=np.float32).reshape(20, DIM)  # read-only too
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add(np.arange(20), ro)
        db.upsert(np.arange(20), from_bytes)
        assert db.search(ro[3], k=1).ids[0] == 3
        np.testing.assert_array_equal(db.search(from_bytes, k=1).ids[:, 0], np.arange(20))
        np.testing.assert_array_equal(db.search(memoryview(x), k=1).ids[:, 0], np.arange(20))


def test_an_empty_database_pads_every_slot():
    with quartz.open(dim=DIM) as db:
        r = db.search(np.ones((3, DIM)), k=5)
        assert r.counts.tolist() == [0, 0, 0]
        assert np.all(r.ids == quartz.PAD_ID) and np.all(np.isinf(r.distances))
        assert len(db) == 0 and 0 not in db


def test_filter_ids_are_evaluated_in_c_allow_and_deny():
    x = clustered(2000, DIM, 8, 5)
    q = x[:10]
    rng = np.random.default_rng(0)
    allowed = rng.choice(2000, 60, replace=False)
    with quartz.open(dim=DIM, metric="l2", M=16, ef_construction=100) as db:
        db.add(np.arange(2000), x)
        r = db.search(q, k=10, ef=200, filter_ids=allowed)  # unsorted, int64: sorted by the binding
        assert np.all(r.counts == 10)
        assert np.isin(r.ids, allowed).all()
        exact = brute(x[allowed], q, "l2")
        want = allowed[np.argsort(exact, axis=1)[:, :10]]
        assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(r.ids.tolist(), want.tolist())]) >= 0.95
        # same answers as the allow list of the complement denied
        deny = np.setdiff1d(np.arange(2000), allowed)
        r2 = db.search(q, k=10, ef=200, filter_ids=deny, exclude=True)
        assert np.isin(r2.ids, allowed).all()
        # a k above the allowed count pads
        r3 = db.search(q[0], k=100, ef=500, filter_ids=allowed[:7])
        assert r3.counts == 7 and set(r3.ids[:7].tolist()) == set(allowed[:7].tolist())
        assert np.all(r3.ids[7:] == quartz.PAD_ID)
        # an empty allow list accepts nothing; an empty deny list everything
        assert db.search(q, k=3, filter_ids=[]).counts.tolist() == [0] * 10
        np.testing.assert_array_equal(db.search(q, k=3, filter_ids=[], exclude=True).ids, db.search(q, k=3).ids)
        # repeats in the set are fine
        r4 = db.search(q[0], k=2, filter_ids=[5, 5, 9, 9, 9])
        assert sorted(r4.ids.tolist()) == [5, 9]
        with pytest.raises(TypeError):
            db.search(q, exclude=True)
        with pytest.raises(TypeError):
            db.search(q, filter_ids=[1.5])


def test_metadata_kinds_and_get():
    x = clustered(4, DIM, 0, 2)
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add([1, 2, 3, 4], x, [b"bytes", "str \u00e9", None, bytearray(b"ba")])
        assert db.get(1)[1] == b"bytes"
        assert db.get(2)[1] == "str \u00e9".encode()
        assert db.get(3)[1] is None
        assert db.get(4)[1] == b"ba"
        v, _ = db.get(np.uint64(1))
        v[:] = 0  # a copy: the stored vector is untouched
        np.testing.assert_array_equal(db.get(1)[0], x[0])
        db.upsert(1, x[1], "replaced")
        got, meta = db.get(1)
        np.testing.assert_array_equal(got, x[1])
        assert meta == b"replaced"
        db.upsert(1, x[1])  # an upsert without metadata clears it
        assert db.get(1)[1] is None
        db.add(9, x[0], b"single row, one blob")
        assert db.get(9)[1] == b"single row, one blob"


def test_delete_forms():
    x = clustered(50, DIM, 0, 3)
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add(np.arange(50), x)
        db.delete(0)
        db.delete(np.uint64(1))
        db.delete([2])
        db.delete(np.array([3, 4, 4, 5]))  # repeats are one delete
        db.delete([])
        assert len(db) == 44
        for i in range(6):
            assert i not in db
        assert not np.isin(db.search(x, k=10, ef=100).ids, np.arange(6)).any()
        assert db.stats().deleted >= 0


def test_stats_and_parameters(tmp_path):
    with quartz.open(dim=DIM, metric="ip", M=6, ef_construction=40, ef_search=33, capacity=5000, threads=2,
                     seed=99) as db:
        st = db.stats()
        assert (st.dimensions, st.metric, st.M, st.ef_construction, st.ef_search) == (DIM, "ip", 6, 40, 33)
        assert st.capacity >= 5000 and st.count == 0 and st.memory_bytes > 0 and st.simd
        assert st.simd == quartz.simd_backend()
        assert set(st.as_dict()) >= {"count", "deleted", "capacity", "max_level", "open_reinserted"}
        assert db.ef_search == 33
        db.ef_search = 120
        assert db.stats().ef_search == 120
        db.set_param("ef_search", 7)
        assert db.ef_search == 7
        with pytest.raises(quartz.OutOfRangeError):
            db.ef_search = 0
        with pytest.raises(quartz.OutOfRangeError):
            db.set_param("ef_search", quartz.MAX_EF + 1)
        with pytest.raises(quartz.InvalidArgumentError):
            db.set_param("ef", 10)
        assert db.ef_search == 7
    with quartz.open(tmp_path / "d", dim=DIM, durability="sync", checkpoint_writes=100, checkpoint_ms=1000) as db:
        db.set_param("checkpoint_writes", 50)
        with pytest.raises(quartz.OutOfRangeError):
            db.set_param("checkpoint_ms", 0)
    for mode in ("batched", "none", "default", 1):
        with quartz.open(tmp_path / ("m%s" % mode), dim=DIM, durability=mode, batch_window_ms=5) as db:
            db.add(1, np.ones(DIM))
        with quartz.open(tmp_path / ("m%s" % mode)) as db:
            assert 1 in db


def test_kv_mapping(tmp_path):
    path = tmp_path / "kv"
    with quartz.open(path, dim=4) as db:
        kv = db.kv
        kv[b"b"] = b"2"
        kv["a"] = "1"  # str keys and values are UTF-8
        kv[b"c/x"] = b""
        kv[b"c/y"] = bytearray(b"y" * 1000)
        assert kv[b"a"] == b"1" and kv["b"] == b"2" and kv[b"c/x"] == b"" and kv[b"c/y"] == b"y" * 1000
        assert list(kv) == [b"a", b"b", b"c/x", b"c/y"] and len(kv) == 4
        assert b"a" in kv and b"c/x" in kv and b"zz" not in kv
        assert kv.scan(b"c/") == [(b"c/x", b""), (b"c/y", b"y" * 1000)]
        assert kv.keys(b"c/") == [b"c/x", b"c/y"] and kv.keys() == list(kv)
        assert dict(kv.items())[b"b"] == b"2"
        del kv[b"b"]
        assert b"b" not in kv and kv.get(b"b") is None
        kv.update({b"d": b"4", b"e": b"5"})
        assert kv.pop(b"e") == b"5" and b"e" not in kv
        kv[b"a"] = b"replaced"
        assert "KV" in repr(kv)
    with quartz.open(path) as db:
        assert dict(db.kv) == {b"a": b"replaced", b"c/x": b"", b"c/y": b"y" * 1000, b"d": b"4"}


def test_transactions_commit_abort_and_fail_whole(tmp_path):
    x = clustered(10, 4, 0, 9)
    path = tmp_path / "txn"
    with quartz.open(path, dim=4, metric="l2") as db:
        db.add([1, 2], x[:2])
        with db.transaction() as t:
            t.upsert([3, 4], x[2:4], [b"three", None])
            t.delete(1)
            t.kv_put(b"k", b"v")
            assert 3 not in db  # nothing is applied before the commit
        assert 3 in db and 4 in db and 1 not in db and db.kv[b"k"] == b"v" and db.get(3)[1] == b"three"
        assert t.finished
        with pytest.raises(quartz.ClosedError):
            t.delete(2)
        with pytest.raises(RuntimeError):
            with db.transaction() as t:
                t.upsert(5, x[5])
                raise RuntimeError("boom")
        assert 5 not in db
        t = db.transaction()
        t.upsert(6, x[6])
        t.delete(999)  # absent at commit: the whole commit fails
        with pytest.raises(quartz.NotFoundError):
            t.commit()
        assert 6 not in db
        with pytest.raises(quartz.DimensionError):
            db.transaction().upsert(7, np.ones(5))
        with db.transaction() as t:
            t.kv_delete(b"k")
            t.kv_delete(b"absent")  # ignored
        assert b"k" not in db.kv
        left_open = db.transaction()
        left_open.upsert(8, x[8])
    assert left_open.finished  # closing the database aborted it
    with quartz.open(path) as db:
        assert sorted(i for i in range(10) if i in db) == [2, 3, 4]


def test_reopen_compact_flush_check_and_repr(tmp_path):
    x = clustered(500, DIM, 4, 10)
    path = tmp_path / "r"
    db = quartz.open(str(path), dim=DIM, metric="l2")
    assert "count=0" in repr(db) and db.path == str(path)
    db.add(np.arange(500), x, [str(i) for i in range(500)])
    db.delete(np.arange(0, 500, 5))
    db.flush()
    db.compact()
    db.check()
    assert db.stats().deleted == 0
    db.close()
    assert repr(db) == "<quartz.Database closed>"
    with quartz.open(path, existing=True) as db:
        assert len(db) == 400 and db.stats().open_reinserted == 0
        assert db.get(7)[1] == b"7"
        np.testing.assert_array_equal(db.get(499)[0], x[499])
        assert db.search(x[1], k=1).ids[0] == 1


def test_library_information():
    assert quartz.library_version().startswith("1.")
    assert quartz.library_path()
    assert quartz.strerror(-10)
    assert quartz.__version__


def test_quantized_dtypes_rerank_exactly(tmp_path):
    # f16/int8/binary walk the graph on codes and re-rank on the f32
    # originals: the distances returned are exact, get() gives the original
    rng = np.random.default_rng(7)
    x = rng.standard_normal((400, 24)).astype(np.float32)
    for name, code in (("f16", 2), ("int8", 3), ("binary", 4)):
        with quartz.open(str(tmp_path / name), dim=24, metric="l2", dtype=name) as db:
            db.add(np.arange(400), x)
            assert db.stats().dtype == code
            ids, dist = db.search(x[:20], k=5, ef=200, oversample=8)
            exact = ((x[ids.astype(np.int64)] - x[:20, None, :]) ** 2).sum(-1)
            np.testing.assert_allclose(dist, exact, rtol=1e-5, atol=1e-5)
            assert (ids[:, 0] == np.arange(20)).mean() >= 0.9
            np.testing.assert_array_equal(db.get(3)[0], x[3])
        with pytest.raises(ValueError):
            quartz.open(str(tmp_path / name), dtype="f32")
    with quartz.open(dim=4, dtype="int8") as db:
        db.add([1], np.ones((1, 4), np.float32))
        with pytest.raises(quartz.QuartzError) as e:
            db.search(np.ones(4, np.float32), k=1, oversample=10 ** 9)
        assert e.value.code == quartz.errors.QZ_ERANGE


def test_originals_in_storage(tmp_path):
    # originals="storage": the f32 originals stay in LMDB; search re-ranks
    # on them there (exact distances), get() reads them back, memory shrinks
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2000, 64)).astype(np.float32)
    mem = {}
    for originals in ("memory", "storage"):
        path = str(tmp_path / originals)
        with quartz.open(path, dim=64, metric="l2", dtype="int8", originals=originals) as db:
            db.add(np.arange(2000), x)
            db.flush()
            ids, dist = db.search(x[:20], k=5)
            exact = ((x[ids.astype(np.int64)] - x[:20, None, :]) ** 2).sum(-1)
            np.testing.assert_allclose(dist, exact, rtol=1e-5, atol=1e-5)
            assert (ids[:, 0] == np.arange(20)).all()
            np.testing.assert_array_equal(db.get(1234)[0], x[1234])
            mem[originals] = db.stats().memory_bytes
    assert mem["storage"] + 2000 * 64 * 4 <= mem["memory"] + 2000 * 16
    with pytest.raises(quartz.InvalidArgumentError):
        quartz.open(str(tmp_path / "f32"), dim=4, originals="storage")
    with pytest.raises(quartz.InvalidArgumentError):
        quartz.open(dim=4, dtype="int8", originals="storage")
    with pytest.raises(quartz.InvalidArgumentError):
        quartz.open(str(tmp_path / "x"), dim=4, dtype="int8", originals="disk")
