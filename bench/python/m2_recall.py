#!/usr/bin/python3
"""m2_recall.py - own-vector recall@1 of very sparse graphs (M = 2, 3, 4):
quartz (Python binding) against hnswlib (Debian python3-hnswlib) over many
random data sets, because one data set says little at M = 2.

Each trial: 500 points in 16 dimensions around 10 Gaussian centres (spread
3, unit noise), L2, ef_construction 200, one build thread, a seed per trial
for both engines; every point is searched for itself at ef 64 (k = 1).
Prints the mean and the minimum of recall@1 over the trials per engine.

    QUARTZ_LIBRARY=build/lib/libquartz.so.1 PYTHONPATH=bindings/python \
        /usr/bin/python3 bench/python/m2_recall.py [--trials 20] [--M 2]
"""
import argparse

import numpy as np

import hnswlib
import quartz


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--M", type=int, default=2)
    ap.add_argument("--ef", type=int, default=64)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    q, h = [], []
    for trial in range(a.trials):
        c = rng.standard_normal((10, 16)).astype(np.float32) * 3
        x = (c[rng.integers(0, 10, 500)] + rng.standard_normal((500, 16))).astype(np.float32)
        with quartz.open(dim=16, metric="l2", M=a.M, ef_construction=200, threads=1, seed=trial + 1) as db:
            db.add(np.arange(500), x)
            ids, _ = db.search(x, k=1, ef=a.ef)
            q.append((ids[:, 0] == np.arange(500)).mean())
        p = hnswlib.Index(space="l2", dim=16)
        p.init_index(max_elements=500, M=a.M, ef_construction=200, random_seed=trial)
        p.add_items(x, np.arange(500), num_threads=1)
        p.set_ef(a.ef)
        labels, _ = p.knn_query(x, k=1)
        h.append((labels[:, 0] == np.arange(500)).mean())
    print(f"M={a.M} ef={a.ef} trials={a.trials}: quartz recall@1 mean {np.mean(q):.3f} min {np.min(q):.3f}; "
          f"hnswlib mean {np.mean(h):.3f} min {np.min(h):.3f}")


if __name__ == "__main__":
    main()
