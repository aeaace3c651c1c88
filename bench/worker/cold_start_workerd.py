"""cold_start_workerd.py [N] [DIM] [SHARDS] - cold start of the Worker on workerd.

Starts the Worker on workerd (tests/rest/targets/worker.py, so the same
scripts/worker-dev.sh path as the suite), creates an index of N random
DIM-d vectors (cosine, ef_construction 100, capacity N) across SHARDS
shards, waits for the shards' flush alarm (graph snapshot), then SIGKILLs
workerd (the isolate and every object die), starts it again on the same
data and times the first request that needs the index (GET stats: every
shard opens its index from its SQLite storage). Prints build rate, the
per-shard open_ms and open_reinserted (0 = no rebuild), and a self-search.

    /usr/bin/python3 bench/worker/cold_start_workerd.py 50000 384 1
"""
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "rest"))

import requests  # noqa: E402

from targets import worker  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 384
    shards = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    t = worker.create(max_body=64 * 1024 * 1024, max_batch=2000)
    try:
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + t.key_rw
        u = t.url
        r = s.post(u + "/api/indexes", json={"name": "cold", "dimension": dim, "metric": "cosine",
                                              "ef_construction": 100, "shards": shards, "capacity": n})
        assert r.status_code == 201, r.text
        rnd = random.Random(7)
        probe = None
        t0 = time.monotonic()
        B = 500
        for at in range(0, n, B):
            rows = []
            for i in range(at, min(n, at + B)):
                v = [rnd.random() - 0.5 for _ in range(dim)]
                if probe is None:
                    probe = v
                rows.append({"id": i, "vector": v})
            r = s.post(u + "/api/indexes/cold/vector/batch-insert", json={"vectors": rows}, timeout=600)
            assert r.status_code == 201, r.text[:300]
        build = time.monotonic() - t0
        time.sleep(8)  # the shards' flush alarm (5 s after the last write)
        st = s.get(u + "/api/indexes/cold/vector/stats").json()
        print("built %d x %d over %d shard(s) in %.1f s (%.0f vectors/s), count %d, wasm memory %.0f MiB" %
              (n, dim, shards, build, n / build, st["count"], st["wasm_memory_bytes"] / 1048576))
        t.kill()
        t0 = time.monotonic()
        t.start()
        up = time.monotonic() - t0
        t0 = time.monotonic()
        r = s.get(u + "/api/indexes/cold/vector/stats", timeout=600)
        first = time.monotonic() - t0
        st = r.json()
        assert r.status_code == 200, r.text
        print("after SIGKILL + restart: workerd up in %.2f s; first stats request %.0f ms; count %d" %
              (up, first * 1000, st["count"]))
        for i, sh in enumerate(st["shards"]):
            print("  shard %d: count %d, open_ms %s, open_reinserted %d" %
                  (i, sh["count"], sh["open_ms"], sh["open_reinserted"]))
        t0 = time.monotonic()
        res = s.post(u + "/api/indexes/cold/vector/search", json={"query": probe, "k": 1}).json()
        print("first search after restart: %.0f ms, top id %s (expect 0)" %
              ((time.monotonic() - t0) * 1000, res["results"][0]["id"]))
    finally:
        t.close()


if __name__ == "__main__":
    main()
