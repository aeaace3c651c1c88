"""The 384-d smoke test on real sentence embeddings: batch-insert the
sapdocs base vectors into the default index, search every query, and
recall@10 against gt.ivecs must reach 0.9."""
import json
import os
import struct

import pytest

from qzclient import ok

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("QZ_DATA_DIR", os.path.join(HERE, "..", "..", "..", "shared", "data"))
SET = os.path.join(DATA, "sapdocs-minilm384-angular")
BASE_ID = 900_000_000   # integer ids far from the other tests' ids


def read_vecs(path, fmt):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        (d,) = struct.unpack_from("<i", data, off)
        off += 4
        out.append(list(struct.unpack_from("<%d%s" % (d, fmt), data, off)))
        off += 4 * d
    return out


def test_sapdocs_recall_default_index(api, caps):
    if not os.path.isfile(os.path.join(SET, "gt.ivecs")):
        pytest.skip("sapdocs-minilm384-angular not found under %s" % DATA)
    base = read_vecs(os.path.join(SET, "base.fvecs"), "f")
    queries = read_vecs(os.path.join(SET, "query.fvecs"), "f")
    gt = read_vecs(os.path.join(SET, "gt.ivecs"), "i")
    assert len(base[0]) == 384
    d = api.default()
    ids = [BASE_ID + i for i in range(len(base))]
    try:
        rows = [{"id": ids[i], "vector": v, "metadata": {"row": i}} for i, v in enumerate(base)]
        step = max(1, min(caps["max_batch"], 200))
        while step > 1 and len(json.dumps({"vectors": rows[:step]})) > caps["max_body"] // 2:
            step //= 2
        for s in range(0, len(rows), step):
            b = ok(d.batch(rows[s:s + step], upsert=True), 201)
            assert b["inserted"] == len(rows[s:s + step])
        hits = 0
        for qi, q in enumerate(queries):
            res = ok(d.search(q, 10, ef=128))["results"]
            got = {r["id"] - BASE_ID for r in res if isinstance(r["id"], int) and r["id"] >= BASE_ID}
            hits += len(got & set(gt[qi][:10]))
            for r in res:
                if isinstance(r["id"], int) and r["id"] >= BASE_ID:
                    assert r["metadata"] == {"row": r["id"] - BASE_ID}
        recall = hits / (10.0 * len(queries))
        assert recall >= 0.9, "recall@10 = %.3f" % recall
    finally:
        for s in range(0, len(ids), 500):
            d.delete_many(ids[s:s + 500])
