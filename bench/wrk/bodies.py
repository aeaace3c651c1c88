"""bodies.py DATASET_DIR OUT_DIR EF [--queries N] [--vectors N] [--batch N]

Request bodies for the wrk load tests (bench/bench_rest.sh,
bench/worker/bench_worker.sh) from a texmex folder:
  OUT_DIR/search.jsonl     one search body per query (k 10, the given ef)
  OUT_DIR/vectors.jsonl    one vector (a JSON array) per line, for insert.lua
  OUT_DIR/batch-NNNNNNN.json  batch-insert bodies of --batch vectors each
                           (0: all of them in batch-0000000.json), ids = rows
  OUT_DIR/shape            "N_BASE DIM N_QUERIES"
--queries / --vectors cut the query set / vectors.jsonl (0 = all).
"""
import argparse
import struct
import sys


def fvecs(path):
    b = open(path, "rb").read()
    d = struct.unpack_from("<i", b, 0)[0]
    step = 4 + 4 * d
    return [list(struct.unpack_from("<%df" % d, b, o + 4)) for o in range(0, len(b), step)]


def arr(v):
    return "[" + ",".join("%.9g" % x for x in v) + "]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("ef", type=int)
    ap.add_argument("--queries", type=int, default=0)
    ap.add_argument("--vectors", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    a = ap.parse_args()
    base, query = fvecs(a.data + "/base.fvecs"), fvecs(a.data + "/query.fvecs")
    if a.queries:
        query = query[:a.queries]
    with open(a.out + "/search.jsonl", "w") as f:
        for q in query:
            f.write('{"query": %s, "k": 10, "ef": %d, "include_metadata": false}\n' % (arr(q), a.ef))
    with open(a.out + "/vectors.jsonl", "w") as f:
        for v in base[:a.vectors or len(base)]:
            f.write(arr(v) + "\n")
    step = a.batch or len(base)
    for start in range(0, len(base), step):
        with open(a.out + "/batch-%07d.json" % start, "w") as f:
            f.write('{"vectors": [%s]}' % ",".join('{"id": %d, "vector": %s}' % (i, arr(base[i]))
                                                   for i in range(start, min(start + step, len(base)))))
    with open(a.out + "/shape", "w") as f:
        f.write("%d %d %d\n" % (len(base), len(base[0]), len(query)))
    print("bodies: %d queries, %d base vectors of %d dimensions" % (len(query), len(base), len(base[0])),
          file=sys.stderr)


if __name__ == "__main__":
    main()
