"""Shared helpers for targets: free ports, waiting for /health."""
import socket
import time

import requests


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, alive, timeout=30.0):
    """Poll GET url/health until it answers 200; alive() returning False
    (the process died) or the timeout raises RuntimeError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("server exited before answering /health (last: %r)" % (last,))
        try:
            r = requests.get(url + "/health", timeout=2)
            if r.status_code == 200:
                return
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError("server did not answer /health within %.0f s (last: %r)" % (timeout, last))
