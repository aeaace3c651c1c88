"""Checks of quartzd itself, outside the shared contract: the /metrics
format, SIGHUP key reload, refusing a non-loopback listen without keys,
SIGTERM drain with exit 0, and JSON log lines that never hold a key.
The worker target skips this file."""
import json
import os
import re
import signal
import struct
import subprocess
import threading
import time

import pytest

from qzclient import Api, error, ok

pytestmark = pytest.mark.quartzd_only

# Label values are quoted strings that may hold any character, braces included
# (route="/api/get/{key}"), with \\, \" and \n escaped.
METRIC_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
                         r'(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?'
                         r' [-+]?([0-9.eE+-]+|NaN|[+-]Inf)( [0-9]+)?$')


@pytest.fixture
def own(target_module, target):
    t = target_module.create()
    yield t
    t.close()


def test_metrics_prometheus_text(api, idx):
    ok(idx.insert(1, [1, 1, 1, 1]), 201)
    ok(idx.search([1, 1, 1, 1], 1))
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    types = {}
    samples = 0
    for line in r.text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
        elif line.startswith("#"):
            assert line.startswith("# HELP "), line
        else:
            assert METRIC_LINE.match(line), line
            samples += 1
    assert types and samples >= len(types)
    assert r.text.endswith("\n")


def test_sighup_reloads_keys(own):
    old_rw = own.key_rw
    ok(Api(own.url, old_rw).get("/api/indexes"))
    with open(own.key_file, "w") as f:
        f.write("# comment line\nnew-rw-key-0123456789 rw\nnew-ro-key-0123456789 ro\n")
    own.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Api(own.url, old_rw).get("/api/indexes").status_code == 401:
            break
        time.sleep(0.05)
    error(Api(own.url, old_rw).get("/api/indexes"), 401, "unauthorized")
    ok(Api(own.url, "new-rw-key-0123456789").post("/api/put", {"key": "a", "value": 1}))
    error(Api(own.url, "new-ro-key-0123456789").post("/api/put", {"key": "a", "value": 1}), 403, "forbidden")
    assert own.alive()


def test_refuses_non_loopback_without_keys(tmp_path):
    from targets.quartzd import binary
    from targets.base import free_port
    port = free_port()
    p = subprocess.run([binary(), "--listen", "0.0.0.0:%d" % port, "--data", str(tmp_path / "d")],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode != 0
    assert p.stderr.strip(), "no reason given on stderr"


def test_sigterm_drains_and_exits_0(own):
    a = Api(own.url, own.key_rw)
    ok(a.post("/api/indexes", {"name": "drain", "dimension": 4, "metric": "l2"}), 201)
    acked, bad = [], []
    stop = threading.Event()

    def writer():
        w = Api(own.url, own.key_rw).index("drain")
        i = 0
        while not stop.is_set():
            try:
                r = w.insert(i, [i, 0, 0, 0])
            except Exception:  # noqa: BLE001 - refused once the listener closed
                return
            if r.status_code == 201:
                acked.append(i)
            elif r.status_code != 503:
                bad.append(r.text)
            i += 1

    th = threading.Thread(target=writer)
    th.start()
    while len(acked) < 30 and th.is_alive():
        time.sleep(0.01)
    rc = own.stop(30)
    stop.set()
    th.join(30)
    assert rc == 0, "quartzd exit status %r after SIGTERM\n%s" % (rc, own.log_tail())
    assert not bad, bad[:3]
    own.start()
    got = ok(Api(own.url, own.key_rw).index("drain").get_many(acked))
    assert got["missing"] == []


def test_json_log_lines_without_keys(own):
    a = Api(own.url, own.key_rw)
    ok(a.get("/api/indexes", headers={"X-Request-Id": "log-check-1"}))
    Api(own.url, own.key_ro).post("/api/put", {"key": "x", "value": 1})
    a.get("/api/indexes", key="wrong-key-abcdef")
    Api(own.url, own.key_rw, "x-api-key").get("/api/nope")
    assert own.stop() == 0
    with open(own.log_path, encoding="utf-8") as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines, "empty log"
    for ln in lines:
        obj = json.loads(ln)
        assert isinstance(obj, dict), ln
    for secret in (own.key_rw, own.key_ro, "wrong-key-abcdef"):
        assert secret not in text, "a key appears in the log"
    assert "log-check-1" in text, "request id not logged"
    own.start()


def test_data_survives_in_other_durability_modes(target_module):
    for mode in ("batched", "none"):
        t = target_module.create(durability=mode)
        try:
            a = Api(t.url, t.key_rw)
            ok(a.default().insert(1, [0.1] * 384, {"m": mode}), 201)
            assert t.stop() == 0      # a clean stop flushes whatever the mode
            t.start()
            assert ok(Api(t.url, t.key_rw).default().get(1))["metadata"] == {"m": mode}
        finally:
            t.close()


def test_bad_option_exits_nonzero(tmp_path):
    from targets.quartzd import binary
    p = subprocess.run([binary(), "--durability", "sometimes", "--data", str(tmp_path)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode != 0 and p.stderr.strip()




# ---- quantized indexes ("dtype"; the worker target creates f32 only) ----

def _rand_vectors(n, dim, seed):
    import random
    rnd = random.Random(seed)
    # float32-exact values (multiples of 1/1024): the stored originals and
    # the JSON round trip then hold exactly what Python computes with
    return [[rnd.randint(-2048, 2048) / 1024.0 for _ in range(dim)] for _ in range(n)]


@pytest.mark.parametrize("dtype,metric", [("int8", "l2"), ("f16", "cosine"), ("binary", "ip"), ("f32", "l2")])
def test_quantized_index_returns_exact_distances_of_the_originals(make_index, dtype, metric):
    from qzclient import distance
    dim = 24
    ix = make_index(dim, metric, dtype=dtype)
    assert ix.describe()["dtype"] == dtype
    vecs = _rand_vectors(300, dim, 11)
    ok(ix.batch([{"id": i, "vector": v} for i, v in enumerate(vecs)]), 201)
    for qi, q in enumerate(_rand_vectors(12, dim, 12)):
        exact = sorted(range(len(vecs)), key=lambda i: distance(metric, vecs[i], q))
        b = ok(ix.search(q, 5, ef=300, oversample=60, include_metadata=False))
        got = [res["id"] for res in b["results"]]
        assert len(got) == 5
        # re-ranked on the f32 originals: the distances are exact, not the codes'
        for res in b["results"]:
            want = distance(metric, vecs[res["id"]], q)
            assert abs(res["distance"] - want) <= 1e-4 * max(1.0, abs(want)), (dtype, qi, res, want)
        # a beam over all 300 with 300 re-ranked finds the exact nearest
        dnear = distance(metric, vecs[exact[0]], q)
        assert abs(b["results"][0]["distance"] - dnear) <= 1e-4 * max(1.0, abs(dnear)), (dtype, qi, b)
    # get returns the original vector, not its code (cosine stores it at unit length)
    g = ok(ix.get(5))["vector"]
    if metric == "cosine":
        n = sum(x * x for x in vecs[5]) ** 0.5
        assert all(abs(a - b / n) <= 1e-6 for a, b in zip(g, vecs[5])), g
    else:
        # the server prints 9 significant digits, enough to give back the same float32
        f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
        assert [f32(a) for a in g] == vecs[5], g


@pytest.mark.parametrize("body,status,code", [
    ({"dtype": "int4"}, 400, "invalid_argument"),
    ({"dtype": 3}, 400, "invalid_argument"),
    ({"dtype": "int8", "metric": "hamming"}, 400, "invalid_argument"),
])
def test_create_rejects_bad_dtype(api, body, status, code):
    name = "t_" + os.urandom(6).hex()
    b = {"name": name, "dimension": 8, "metric": "l2"}
    b.update(body)
    error(api.post("/api/indexes", b), status, code)
    assert api.get("/api/indexes/" + name).status_code == 404  # nothing was created


@pytest.mark.parametrize("value,status,code", [(0, 422, "out_of_range"), (1001, 422, "out_of_range"),
                                               ("2", 400, "invalid_argument"), (1.5, 400, "invalid_argument")])
def test_search_rejects_bad_oversample(make_index, value, status, code):
    ix = make_index(4, "l2", dtype="int8")
    ok(ix.insert(1, [1, 2, 3, 4]), 201)
    error(ix.search([1, 2, 3, 4], 1, oversample=value), status, code)


@pytest.mark.needs_restart
def test_dtype_survives_a_restart(own):
    a = Api(own.url, own.key_rw)
    ok(a.post("/api/indexes", {"name": "q8", "dimension": 6, "metric": "l2", "dtype": "int8"}), 201)
    vecs = _rand_vectors(40, 6, 3)
    ok(a.index("q8").batch([{"id": i, "vector": v} for i, v in enumerate(vecs)]), 201)
    own.restart()
    a = Api(own.url, own.key_rw)
    d = a.index("q8").describe()
    assert d["dtype"] == "int8" and d["count"] == 40
    b = ok(a.index("q8").search(vecs[7], 1, include_metadata=False))
    assert b["results"][0]["id"] == 7 and b["results"][0]["distance"] == 0
