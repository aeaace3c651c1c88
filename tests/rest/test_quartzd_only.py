"""Checks of quartzd itself, outside the shared contract: the /metrics
format, SIGHUP key reload, refusing a non-loopback listen without keys,
SIGTERM drain with exit 0, and JSON log lines that never hold a key.
The worker target skips this file."""
import json
import os
import re
import signal
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


