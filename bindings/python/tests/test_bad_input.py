"""The bad-input cases of tests/api/test_bad_input.c (and neighbours) through
the binding: every kind of bad argument raises its own exception class,
carrying the status code and qz_errmsg()'s text, and leaves the stored
data exactly as it was.
"""
import os
import struct

import numpy as np
import pytest

import quartz
from conftest import clustered

DIM = 16
N = 200


class Fixture:
    def __init__(self):
        self.db = quartz.open(dim=DIM, metric="cosine", M=8, ef_construction=32)
        self.data = clustered(N, DIM, 4, 11)
        self.db.add(np.arange(N), self.data, [b"m"] * N)
        self.snapshot()

    def snapshot(self):
        self.before = self.db.search(self.data[0], k=10)

    def assert_unchanged(self):
        db = self.db
        st = db.stats()
        assert st.count == N and len(db) == N
        assert st.deleted == 0
        now = db.search(self.data[0], k=10)
        assert now.counts == self.before.counts
        np.testing.assert_array_equal(now.ids, self.before.ids)
        db.check()


@pytest.fixture
def f():
    fx = Fixture()
    yield fx
    fx.db.close()


def expect(cls, code, fn, *args, match=None, **kw):
    with pytest.raises(cls) as info:
        fn(*args, **kw)
    e = info.value
    assert isinstance(e, quartz.QuartzError)
    assert e.code == code
    assert type(e) is quartz.error_class(code) or isinstance(e, quartz.error_class(code))
    assert e.message and str(e).startswith(e.name + ": ")
    if match is not None:
        assert match in e.message, e.message
    return e


# ---- a closed handle (C: NULL handle is QZ_EINVAL everywhere) ----------------------

def test_closed_database_is_einval_everywhere():
    db = quartz.open(dim=DIM, metric="cosine")
    v = np.ones(DIM, dtype=np.float32)
    db.add(1, v)
    kv = db.kv
    db.close()
    db.close()  # idempotent
    assert db.closed
    calls = [
        (db.add, 2, v), (db.upsert, 1, v), (db.delete, 1), (db.get, 1), (db.search, v),
        (db.add, [3, 4], np.ones((2, DIM))), (db.__contains__, 1), (len, db), (db.stats,), (db.compact,),
        (db.check,), (db.flush,), (db.set_param, "ef_search", 10), (db.transaction,),
        (kv.__getitem__, b"k"), (kv.__setitem__, b"k", b"v"), (kv.__delitem__, b"k"), (kv.__contains__, b"k"),
        (list, kv),
    ]
    for call in calls:
        e = expect(quartz.ClosedError, -1, *call)
        assert isinstance(e, ValueError) and isinstance(e, quartz.InvalidArgumentError)
        assert "closed" in e.message
    e = expect(quartz.ClosedError, -1, db.add, [], np.empty((0, DIM), dtype=np.float32))  # even an empty batch
    with db:  # a closed database is still a context manager; exit closes again (no-op)
        pass


def test_none_and_missing_buffers_are_type_errors_and_change_nothing(f):
    db = f.db
    with pytest.raises(TypeError):
        db.add(9999, None)
    with pytest.raises(TypeError):
        db.add(None, f.data[0])
    with pytest.raises(TypeError):
        db.upsert([None], f.data[:1])
    with pytest.raises(TypeError):
        db.search(None)
    with pytest.raises(TypeError):
        db.get(None)
    with pytest.raises(TypeError):
        db.delete(None)
    with pytest.raises(TypeError):
        db.add(9999, f.data[0], metadata=12)
    with pytest.raises(TypeError):
        db.add([9998, 9999], f.data[:2], metadata=b"one blob for two rows")
    assert None not in db
    f.assert_unchanged()


def test_wrong_dimension_is_edim_with_both_numbers_in_message(f):
    db = f.db
    v = np.ones(DIM + 1, dtype=np.float32)
    e = expect(quartz.DimensionError, -10, db.add, 9999, v[:DIM - 1])
    assert isinstance(e, ValueError)
    assert "15 dimensions" in e.message and "expects 16" in e.message
    expect(quartz.DimensionError, -10, db.upsert, 1, v, match="17 dimensions")
    expect(quartz.DimensionError, -10, db.search, v, match="17 dimensions")
    expect(quartz.DimensionError, -10, db.search, np.ones((3, DIM + 1)), match="17 dimensions")
    expect(quartz.DimensionError, -10, db.add, [5000, 5001], np.ones((2, DIM - 1)), match="15 dimensions")
    expect(quartz.DimensionError, -10, db.add, 5002, np.ones(0, dtype=np.float32))
    assert 5000 not in db and 9999 not in db
    f.assert_unchanged()


def test_nan_and_infinity_are_enonfinite_and_name_the_component(f):
    db = f.db
    v = np.ones(DIM, dtype=np.float32)
    v[7] = np.nan
    e = expect(quartz.NonFiniteError, -12, db.add, 9999, v, match="component 7 is NaN")
    assert isinstance(e, ValueError)
    v[7] = np.inf
    expect(quartz.NonFiniteError, -12, db.upsert, 3, v, match="infinite")
    v[7] = -np.inf
    expect(quartz.NonFiniteError, -12, db.search, v)
    q = f.data[:20].copy()
    q[17, 3] = np.nan
    expect(quartz.NonFiniteError, -12, db.search, q, match="row 17 component 3 is NaN")
    # float64 values beyond float32's range become inf on conversion: refused too
    with np.errstate(over="ignore"):
        expect(quartz.NonFiniteError, -12, db.add, 9999, np.full(DIM, 1e300))
    assert 9999 not in db
    f.assert_unchanged()


def test_zero_vector_under_cosine_is_ezerovec(f):
    db = f.db
    z = np.zeros(DIM, dtype=np.float32)
    e = expect(quartz.ZeroVectorError, -13, db.add, 9999, z)
    assert isinstance(e, ValueError)
    expect(quartz.ZeroVectorError, -13, db.upsert, 4, z)
    expect(quartz.ZeroVectorError, -13, db.search, z)
    f.assert_unchanged()


def test_zero_vector_is_fine_under_l2():
    with quartz.open(dim=4, metric="l2") as db:
        db.add(1, np.zeros(4))
        ids, dist = db.search(np.zeros(4), k=1)
        assert ids[0] == 1 and dist[0] == 0


def test_k_zero_or_above_max_and_ef_above_max_are_erange(f):
    db = f.db
    e = expect(quartz.OutOfRangeError, -14, db.search, f.data[0], k=0)
    assert isinstance(e, ValueError)
    expect(quartz.OutOfRangeError, -14, db.search, f.data[0], k=-3)
    expect(quartz.OutOfRangeError, -14, db.search, f.data[0], k=quartz.MAX_K + 1)
    expect(quartz.OutOfRangeError, -14, db.search, f.data[:4], k=1, ef=quartz.MAX_EF + 1)
    expect(quartz.OutOfRangeError, -14, db.search, f.data[0], ef=-1)
    with pytest.raises(TypeError):
        db.search(f.data[0], k=2.5)
    with pytest.raises(TypeError):
        db.search(f.data[0], k="10")
    with pytest.raises(TypeError):
        db.search(f.data[0], ef=True)
    f.assert_unchanged()


def test_k_above_live_count_returns_all_of_them_padded(f):
    db = f.db
    res = db.search(f.data[0], k=1000)
    assert res.counts == N
    ids, dist = res
    assert ids.shape == (1000,)
    assert sorted(ids[:N].tolist()) == list(range(N))
    assert np.all(np.diff(dist[:N]) >= 0)
    assert np.all(ids[N:] == quartz.PAD_ID) and np.all(np.isinf(dist[N:]))
    got_ids, got_d = res.row()
    assert got_ids.shape == (N,) and got_d.shape == (N,)
    res = db.search(f.data[:3], k=N + 5)
    assert res.counts.tolist() == [N, N, N]
    assert np.all(res.ids[:, N:] == quartz.PAD_ID)


def test_duplicate_id_on_add_is_eexists_and_keeps_old_vector(f):
    db = f.db
    e = expect(quartz.AlreadyExistsError, -4, db.add, 5, -np.ones(DIM), [b"new"])
    assert isinstance(e, KeyError)
    got, meta = db.get(5)
    assert meta == b"m"
    assert got[0] * f.data[5, 0] > 0  # same sign: the old vector, normalised
    f.assert_unchanged()


def test_unknown_id_on_get_or_delete_is_enotfound(f):
    db = f.db
    e = expect(quartz.NotFoundError, -3, db.get, 123456)
    assert isinstance(e, KeyError)
    expect(quartz.NotFoundError, -3, db.delete, 123456, match="123456")
    assert 123456 not in db
    # several ids: all or nothing
    expect(quartz.NotFoundError, -3, db.delete, [1, 2, 123456], match="123456")
    assert 1 in db and 2 in db
    f.assert_unchanged()


def test_batch_with_one_bad_row_inserts_nothing(f):
    db = f.db
    B = 50
    rows = clustered(B, DIM, 0, 99)
    ids = np.arange(10000, 10000 + B, dtype=np.uint64)
    rows[37, 3] = np.nan
    expect(quartz.NonFiniteError, -12, db.add, ids, rows, match="row 37")
    rows[37, 3] = 0.5
    ids[40] = ids[12]
    expect(quartz.AlreadyExistsError, -4, db.add, ids, rows, match="rows 12 and 40")
    expect(quartz.AlreadyExistsError, -4, db.upsert, ids, rows, match="rows 12 and 40")
    ids[40] = 7  # exists in the database
    expect(quartz.AlreadyExistsError, -4, db.add, ids, rows)
    ids[40] = 10040
    metas = [None] * B
    metas[3] = 9
    with pytest.raises(TypeError):
        db.add(ids, rows, metas)
    expect(quartz.InvalidArgumentError, -1, db.add, ids, rows, [b"x"] * (B - 1), match="49 metadata items")
    expect(quartz.InvalidArgumentError, -1, db.add, ids[:-1], rows, match="49 ids for 50 vectors")
    for i in ids.tolist():
        assert i not in db
    f.assert_unchanged()


def test_wrong_dtype_ids_are_refused_before_c(f):
    db = f.db
    v = f.data[:2]
    with pytest.raises(TypeError, match="float64"):
        db.add(np.array([10001.0, 10002.0]), v)
    with pytest.raises(TypeError):
        db.add([10001.5, 10002], v)
    with pytest.raises(TypeError):
        db.add(["a", "b"], v)
    with pytest.raises(TypeError):
        db.add(np.array([True, False]), v)
    with pytest.raises(TypeError):
        db.add(True, v[0])
    expect(quartz.OutOfRangeError, -14, db.add, [-1, 10002], v, match="negative")
    expect(quartz.OutOfRangeError, -14, db.add, np.array([10001, -5], dtype=np.int32), v)
    expect(quartz.OutOfRangeError, -14, db.add, [2 ** 64, 10002], v)
    expect(quartz.OutOfRangeError, -14, db.get, -1)
    expect(quartz.InvalidArgumentError, -1, db.add, np.array([[10001, 10002]]), v, match="1-D")
    with pytest.raises(TypeError):
        db.add([10001, 10002], [["a"] * DIM, ["b"] * DIM])
    with pytest.raises(TypeError):
        db.add([10001, 10002], v.astype(np.complex64))
    expect(quartz.InvalidArgumentError, -1, db.add, [10001, 10002], np.ones((2, 2, DIM)), match="2-D")
    assert -1 not in db and 2 ** 64 not in db and 1.5 not in db and "x" not in db and True not in db
    f.assert_unchanged()


def test_integer_ids_of_every_width_are_accepted(f):
    db = f.db
    x = clustered(4, DIM, 0, 5)
    db.add(np.array([20001], dtype=np.int8 if False else np.int16), x[:1])
    db.add(np.array([20002], dtype=np.uint32), x[1:2])
    db.add([20003], x[2:3])
    db.add(np.uint64(2 ** 64 - 1), x[3])  # the largest id is a valid id
    for i in (20001, 20002, 20003, 2 ** 64 - 1):
        assert i in db
    np.testing.assert_allclose(db.get(2 ** 64 - 1)[0], x[3] / np.linalg.norm(x[3]), atol=1e-6)


def test_oversized_metadata_is_erange(f):
    db = f.db
    big = b"\0" * (quartz.MAX_METADATA + 1)
    expect(quartz.OutOfRangeError, -14, db.add, 9999, f.data[0], [big])
    assert 9999 not in db
    f.assert_unchanged()


def test_large_metadata_and_values_come_back_whole(f):
    db = f.db
    meta = os.urandom(100000)
    db.upsert(77, f.data[77], [meta])
    assert db.get(77)[1] == meta
    db.upsert(77, f.data[77], [b"m"])  # as the fixture had it
    db.kv[b"big"] = meta
    assert db.kv[b"big"] == meta
    del db.kv[b"big"]
    db.compact()
    f.snapshot()
    f.assert_unchanged()


def test_bad_options_at_open():
    expect(quartz.OutOfRangeError, -14, quartz.open, dim=8, M=1)
    expect(quartz.OutOfRangeError, -14, quartz.open, dim=8, M=quartz.MAX_M + 1)
    expect(quartz.OutOfRangeError, -14, quartz.open, dim=8, ef_construction=quartz.MAX_EF + 1)
    expect(quartz.OutOfRangeError, -14, quartz.open, dim=quartz.MAX_DIMENSIONS + 1)
    expect(quartz.InvalidArgumentError, -1, quartz.open, dim=0, match="dimensions is required")
    expect(quartz.InvalidArgumentError, -1, quartz.open)  # a new database needs its dimensions
    expect(quartz.OutOfRangeError, -14, quartz.open, dim=-4)
    expect(quartz.OutOfRangeError, -14, quartz.open, dim=2 ** 32)
    expect(quartz.InvalidArgumentError, -1, quartz.open, dim=8, metric="manhattan", match="manhattan")
    expect(quartz.InvalidArgumentError, -1, quartz.open, dim=8, durability="sometimes")
    expect(quartz.InvalidArgumentError, -1, quartz.open, dim=8, metric=99)
    with pytest.raises(TypeError, match="efsearch"):
        quartz.open(dim=8, efsearch=10)
    with pytest.raises(TypeError):
        quartz.open(dim="8")
    with quartz.open(dim=quartz.MAX_DIMENSIONS) as db:  # the largest dimension is accepted
        v = np.zeros(quartz.MAX_DIMENSIONS, dtype=np.float32)
        v[-1] = 1
        db.add(1, v)
        assert db.search(v, k=1).ids[0] == 1


def test_directory_errors_have_their_classes(tmp_path):
    d = tmp_path / "db"
    with quartz.open(d, dim=8, metric="l2") as db:
        db.add(1, np.ones(8))
    e = expect(quartz.DimensionError, -10, quartz.open, d, dim=9)
    e = expect(quartz.NotFoundError, -3, quartz.open, tmp_path / "nothing", existing=True)
    assert not (tmp_path / "nothing").exists() or not os.listdir(tmp_path / "nothing")
    with quartz.open(d, readonly=True) as ro:
        assert len(ro) == 1 and ro.readonly
        e = expect(quartz.ReadOnlyError, -16, ro.add, 2, np.ones(8))
        assert isinstance(e, PermissionError) and isinstance(e, OSError)
        expect(quartz.ReadOnlyError, -16, ro.kv.__setitem__, b"k", b"v")
        expect(quartz.ReadOnlyError, -16, ro.delete, 1)
        expect(quartz.ReadOnlyError, -16, ro.transaction)
    with quartz.open(d) as db:
        assert len(db) == 1 and db.metric == "l2"
    (tmp_path / "file").write_bytes(b"not a directory")
    with pytest.raises(quartz.QuartzError) as info:
        quartz.open(tmp_path / "file", dim=8)
    assert isinstance(info.value, OSError)


def make_dir_db(path):
    with quartz.open(path, dim=DIM, metric="l2", M=8, ef_construction=64) as db:
        db.add(np.arange(300), clustered(300, DIM, 0, 3), [b"meta-%d" % i for i in range(300)])
        db.kv[b"k"] = b"v"
    names = set(os.listdir(path))
    assert {"data.mdb", "quartz.log"} <= names, names


def reopen(d):
    # with the options it was made with, as tests/api/test_corrupt.c opens
    return quartz.open(d, dim=DIM, metric="l2", M=8, ef_construction=64, durability="sync")


def test_corrupt_files_are_corrupterror(tmp_path):
    # data.mdb truncated to 0 bytes: not a new empty database, a CorruptError
    d = tmp_path / "trunc"
    make_dir_db(d)
    os.truncate(d / "data.mdb", 0)
    e = expect(quartz.CorruptError, -6, reopen, d, match="missing")
    assert isinstance(e, OSError)
    # data.mdb deleted
    d = tmp_path / "missing"
    make_dir_db(d)
    os.unlink(d / "data.mdb")
    expect(quartz.CorruptError, -6, reopen, d)
    # a random log header, opened with and without options
    d = tmp_path / "loghdr"
    make_dir_db(d)
    with open(d / "quartz.log", "r+b") as fh:
        fh.write(np.random.default_rng(5).integers(0, 256, 32, dtype=np.uint8).tobytes())
    e = expect(quartz.CorruptError, -6, reopen, d)
    assert "quartz.log" in e.message
    expect(quartz.CorruptError, -6, quartz.open, d)


def test_M_2_is_the_smallest_degree_and_builds_a_valid_graph():
    # As tests/api/test_k_all.c: M = 2 is accepted, the graph passes
    # qz_db_check, and k at or above the live count returns every vector.
    x = clustered(500, DIM, 8, 21)
    with quartz.open(dim=DIM, metric="l2", M=2, ef_construction=32) as db:
        assert db.stats().M == 2
        db.add(np.arange(500), x)
        db.check()
        res = db.search(x[:5], k=500, ef=600)
        assert res.counts.tolist() == [500] * 5
        for row in res.ids:
            assert sorted(row.tolist()) == list(range(500))
        own = np.mean(db.search(x, k=1, ef=200).ids[:, 0] == np.arange(500))
        print("M=2 own-vector recall@1 at ef 200: %.3f" % own)
        db.delete(np.arange(0, 500, 2))
        db.compact()
        db.check()
        res = db.search(x[:3], k=300)
        assert res.counts.tolist() == [250] * 3
        assert np.all(res.ids[:, :250] % 2 == 1)


EDGE = np.array([
    [3e-41, 0, 0, 0], [0, 1e-45, 0, 0], [1e-40, -2e-41, 0, 5e-39], [-1e-44, 1e-44, -1e-44, 1e-44],
    [1e-38, 1e-38, 1e-38, 1e-38], [1e38, 0, 0, 0], [1e38, 1e38, 1e38, 1e38],
    [3.4028235e38, 3.4028235e38, -3.4028235e38, 3.4028235e38], [-3e38, 2e38, 0, 1], [0, 0, 0, -3.4028235e38],
    [1e38, 1e-38, 0, 1], [1e-30, 1e30, -1, 0], [3e-41, 1e38, -2e-45, 7], [1e20, 1, -1e20, 1e-20],
], dtype=np.float32)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip", "hamming"])
def test_tiny_and_huge_components_are_stored_finite_and_searchable(metric):
    assert np.all(np.isfinite(EDGE))
    normal = clustered(60, 4, 0, 8)
    with quartz.open(dim=4, metric=metric, M=8, ef_construction=64) as db:
        db.add(np.arange(60), normal)
        db.add(np.arange(1000, 1000 + len(EDGE)), EDGE)
        db.check()
        for i, v in enumerate(EDGE):
            got, _ = db.get(1000 + i)
            assert np.all(np.isfinite(got))
            if metric == "cosine":
                assert abs(float(np.linalg.norm(got.astype(np.float64))) - 1) < 1e-5
        res = db.search(np.vstack([EDGE, normal[:5]]), k=10, ef=100)
        assert np.all(res.counts == 10)
        assert np.all(np.isfinite(res.distances))
        assert np.all(np.diff(res.distances, axis=1) >= 0)


def test_heavy_upsert_churn_keeps_counts_and_slots_bounded():
    ids = 10
    x = clustered(64, DIM, 4, 1)
    with quartz.open(dim=DIM, metric="l2", M=16, ef_construction=64) as db:
        max_deleted = 0
        for i in range(20000):
            db.upsert(i % ids, x[i % 64])
            if i % 97 == 0:
                max_deleted = max(max_deleted, db.stats().deleted)
        st = db.stats()
        assert st.count == ids and len(db) == ids
        bound = max(ids // 8, 256) + 64
        assert max_deleted <= bound, (max_deleted, bound)
        assert st.capacity <= 2 * (ids + bound) + 1024
        # batch upserts of all ids at once, over and over
        for r in range(200):
            db.upsert(np.arange(ids), x[r % 50:r % 50 + ids])
        assert len(db) == ids
        y = clustered(ids, DIM, 0, 101)
        db.upsert(np.arange(ids), y)
        res = db.search(y, k=4, ef=64)
        hits = sum(int(i in row.tolist()) for i, row in enumerate(res.ids))
        assert hits >= ids * 0.98
        db.check()


def test_kv_bad_input():
    with quartz.open(dim=4) as db:
        kv = db.kv
        expect(quartz.OutOfRangeError, -14, kv.__setitem__, b"", b"v")
        expect(quartz.OutOfRangeError, -14, kv.__setitem__, b"k" * (quartz.MAX_KEY + 1), b"v")
        expect(quartz.OutOfRangeError, -14, kv.__getitem__, b"")
        kv[b"k" * quartz.MAX_KEY] = b"longest key"
        e = expect(quartz.NotFoundError, -3, kv.__getitem__, b"absent")
        assert isinstance(e, KeyError)
        expect(quartz.NotFoundError, -3, kv.__delitem__, b"absent")
        assert kv.get(b"absent") is None and kv.get(b"absent", b"d") == b"d"
        assert b"absent" not in kv and 12 not in kv
        with pytest.raises(TypeError):
            kv[12] = b"v"
        with pytest.raises(TypeError):
            kv[b"k"] = 12
        with pytest.raises(TypeError):
            kv[b"k"] = None
        expect(quartz.OutOfRangeError, -14, kv.__setitem__, b"k", b"\0" * (quartz.MAX_METADATA + 1))
        assert list(kv) == [b"k" * quartz.MAX_KEY]


def test_every_status_code_has_its_class_and_builtin():
    expected = {
        -1: ValueError, -2: MemoryError, -3: KeyError, -4: KeyError, -5: OSError, -6: OSError, -7: OSError,
        -8: OSError, -9: OSError, -10: ValueError, -11: RuntimeError, -12: ValueError, -13: ValueError,
        -14: ValueError, -15: ValueError, -16: PermissionError, -17: NotImplementedError,
    }
    classes = set()
    for code, builtin in expected.items():
        cls = quartz.error_class(code)
        assert issubclass(cls, quartz.QuartzError) and issubclass(cls, builtin), (code, cls)
        classes.add(cls)
        e = cls(code, "text")
        assert e.code == code and e.message == "text"
        assert quartz.strerror(code) and quartz.strerror(code) != quartz.strerror(-999)
    assert len(classes) == len(expected)
    assert quartz.error_class(-999) is quartz.QuartzError


def test_a_directory_held_by_another_writer_is_busyerror(tmp_path):
    import subprocess
    import sys
    from conftest import PKG_ROOT
    d = tmp_path / "held"
    with quartz.open(d, dim=4) as db:
        db.add(1, np.ones(4))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, quartz\ndb = quartz.open(sys.argv[1])\nprint('open', flush=True)\n"
         "sys.stdin.read()\ndb.close()\n", str(d)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=PKG_ROOT))
    try:
        assert holder.stdout.readline().strip() == "open"
        e = expect(quartz.BusyError, -8, quartz.open, d)
        assert isinstance(e, OSError)
        with quartz.open(d, readonly=True) as ro:  # readers are welcome
            assert 1 in ro
    finally:
        holder.stdin.close()
        assert holder.wait(60) == 0
    with quartz.open(d) as db:  # free again once the other process closed it
        assert len(db) == 1
