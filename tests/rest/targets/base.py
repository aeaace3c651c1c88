"""Shared helpers for targets: free ports, waiting for /health, and the
life of a server process (ProcessTarget)."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
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


class ProcessTarget:
    """A server run as a child process on a free 127.0.0.1 port, with a
    temporary directory (data_dir inside it), one rw and one ro key, and its
    output in log_path. Subclasses set `kind`, `log_name`, `start_timeout`
    and implement command() (the argv) and may override env()."""

    kind = None
    log_name = "server.log"
    start_timeout = 30.0

    def __init__(self, capabilities):
        self.tmp = tempfile.mkdtemp(prefix="qz-%s-" % self.kind)
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, self.log_name)
        self.key_rw = "rw-" + secrets.token_hex(16)
        self.key_ro = "ro-" + secrets.token_hex(16)
        self.capabilities = dict(capabilities, kind=self.kind, kill=True, restart=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self._log = None

    def command(self):
        raise NotImplementedError

    def env(self):
        return None  # inherit ours

    def start(self, timeout=None):
        """Start the process and wait until /health answers; on failure it
        is killed and the error carries the tail of its log."""
        timeout = max(timeout or 0, self.start_timeout)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, env=self.env())
        try:
            wait_healthy(self.url, lambda: self.proc.poll() is None, timeout)
        except RuntimeError as e:
            self.kill()
            raise RuntimeError("%s\n--- log ---\n%s" % (e, self.log_tail()))
        return self

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30.0):
        """SIGTERM, wait; returns the exit status (None if it was not
        running). RuntimeError (after a SIGKILL) when it does not exit."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                raise RuntimeError("%s did not exit within %.0f s of SIGTERM" % (self.kind, timeout))
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill(self):
        """SIGKILL, no warning; returns when the process is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def restart(self, timeout=None):
        """Start again on the same data, keys and port."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def close(self):
        """Stop (kill if SIGTERM does not work) and remove the temp dir."""
        try:
            if self.alive():
                try:
                    self.stop(15)
                except RuntimeError:
                    pass
        finally:
            self.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)
