"""Contiguous float32 input reaches C without a copy.

A recording wrapper around the real C function (it calls through, so the
call is real) captures the pointers the binding passes, and compares them
with the caller's buffers. The same check on float64 input shows a
conversion, so the test can tell a copy from none.
"""
import numpy as np
import pytest

import quartz
from quartz import _lib
from conftest import clustered

DIM = 32


class Recorder:
    def __init__(self, fn):
        self.fn = fn
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)
        return self.fn(*args)


@pytest.fixture
def rec(monkeypatch):
    lib = _lib.load()
    r = {}
    for name in ("qz_db_insert_batch", "qz_db_search_batch"):
        r[name] = Recorder(getattr(lib, name))
        monkeypatch.setattr(lib, name, r[name])
    return r


def test_add_passes_float32_and_uint64_buffers_without_copy(rec):
    x = clustered(1000, DIM, 4, 1)
    ids = np.arange(1000, dtype=np.uint64)
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add(ids, x)
        (_, n, ids_ptr, vec_ptr, dims, _, _, flags), = rec["qz_db_insert_batch"].calls
        assert (n, dims, flags) == (1000, DIM, 0)
        assert vec_ptr == x.ctypes.data
        assert ids_ptr == ids.ctypes.data
        # int64 ids are viewed as uint64, not copied
        ids64 = np.arange(1000, 2000, dtype=np.int64)
        db.upsert(ids64, x)
        call = rec["qz_db_insert_batch"].calls[-1]
        assert call[2] == ids64.ctypes.data and call[3] == x.ctypes.data and call[7] == 1
        # a C-contiguous slice of rows is contiguous: no copy either
        part = x[100:200]
        db.upsert(np.arange(100, 200), part)
        assert rec["qz_db_insert_batch"].calls[-1][3] == part.ctypes.data
        assert len(db) == 2000


def test_converted_input_is_a_copy_and_still_correct(rec):
    x64 = clustered(50, DIM, 0, 2).astype(np.float64)
    strided = np.asfortranarray(clustered(50, DIM, 0, 3))
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add(np.arange(50), x64)
        assert rec["qz_db_insert_batch"].calls[-1][3] != x64.ctypes.data
        db.add(np.arange(50, 100), strided)
        assert rec["qz_db_insert_batch"].calls[-1][3] != strided.ctypes.data
        np.testing.assert_array_equal(db.get(7)[0], x64[7].astype(np.float32))
        np.testing.assert_array_equal(db.get(57)[0], strided[7])


def test_search_passes_queries_without_copy_and_fills_fresh_outputs(rec):
    x = clustered(500, DIM, 4, 4)
    with quartz.open(dim=DIM, metric="l2") as db:
        db.add(np.arange(500), x)
        q = x[:64]
        res = db.search(q, k=5)
        call = rec["qz_db_search_batch"].calls[-1]
        assert call[1] == q.ctypes.data and call[2] == 64 and call[3] == DIM and call[4] == 5
        assert call[6] == res.ids.ctypes.data and call[7] == res.distances.ctypes.data
        assert call[8] == res.counts.ctypes.data
        assert not np.shares_memory(res.ids, q)
        one = x[3]
        r1 = db.search(one, k=5)
        assert rec["qz_db_search_batch"].calls[-1][1] == one.ctypes.data
        assert r1.ids[0] == 3
        np.testing.assert_array_equal(r1.ids, res.ids[3])
