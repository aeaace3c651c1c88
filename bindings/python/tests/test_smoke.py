"""The smoke test every binding repeats (tests/api/test_smoke_sapdocs.c in C),
on the real 384-d sentence embeddings of sapdocs-minilm384-angular:

1. open a new directory (384 dimensions, cosine);
2. batch insert the 678 base rows under ids 1000 + row, each with its chunk
   id (base_ids.txt line) as metadata; len is 678;
3. batch search the 100 queries, k = 10, ef = 100: recall@10 >= 0.95;
4. get id 1005: the base row (unit length already) and its chunk id;
5. delete ids 1000..1009: gone from `in`, get (NotFoundError) and every search;
6. close, reopen the directory without options: len 668, the deleted ids still
   gone, get id 1100, recall@10 against the ground truth without them >= 0.95.
"""
import os

import numpy as np
import pytest

import quartz
from conftest import load_dataset

NAME = "sapdocs-minilm384-angular"
K = 10
BASE_ID = 1000
NDEL = 10


def recall(ids, counts, gt, first_live):
    good = 0
    for q in range(gt.shape[0]):
        want = [BASE_ID + r for r in gt[q] if r >= first_live][:K]
        good += len(set(want) & set(ids[q, :counts[q]].tolist()))
    return good / (gt.shape[0] * K)


def expect_get(db, d, chunk, row):
    v, meta = db.get(BASE_ID + row)
    assert v.dtype == np.float32 and v.shape == (384,)
    assert meta == chunk[row]
    np.testing.assert_allclose(v, d["base"][row], atol=1e-5, rtol=0)


def test_open_insert_search_get_delete_reopen(tmp_path):
    d = load_dataset(NAME)
    with open(os.path.join(d["dir"], "base_ids.txt"), "rb") as f:
        chunk = f.read().split(b"\n")[:d["base"].shape[0]]
    n = d["base"].shape[0]
    path = tmp_path / "sapdocs.qz"

    with quartz.open(path, dim=384, metric="cosine") as db:
        db.add(np.arange(BASE_ID, BASE_ID + n, dtype=np.uint64), d["base"], chunk)
        assert len(db) == n

        res = db.search(d["query"], k=K, ef=100)
        ids, dist = res
        assert ids.shape == (100, K) and ids.dtype == np.uint64
        assert dist.shape == (100, K) and dist.dtype == np.float32
        assert np.all(res.counts == K)
        assert np.all(np.diff(dist, axis=1) >= 0)
        r = recall(ids, res.counts, d["gt"], 0)
        print("recall@10 = %.4f" % r)
        assert r >= 0.95
        expect_get(db, d, chunk, 5)

        db.delete(np.arange(BASE_ID, BASE_ID + NDEL))
        for i in range(NDEL):
            assert BASE_ID + i not in db
            with pytest.raises(quartz.NotFoundError):
                db.get(BASE_ID + i)
        ids, _ = db.search(d["query"], k=K, ef=100)
        assert ids.min() >= BASE_ID + NDEL

    db = quartz.open(path)
    try:
        assert len(db) == n - NDEL
        assert db.dim == 384 and db.metric == "cosine"
        for i in range(NDEL):
            assert BASE_ID + i not in db
        expect_get(db, d, chunk, 100)
        res = db.search(d["query"], k=K, ef=100)
        assert res.ids.min() >= BASE_ID + NDEL
        r = recall(res.ids, res.counts, d["gt"], NDEL)
        print("after reopen: recall@10 = %.4f" % r)
        assert r >= 0.95
    finally:
        db.close()
