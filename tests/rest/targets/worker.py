"""The worker target: the QuartzDB Worker (examples/worker/) on workerd, the
real Workers runtime from npm, on a free 127.0.0.1 port, with its
SQLite-backed Durable Objects in a temporary directory.

It runs scripts/worker-dev.sh PORT DATA_DIR, which builds the wasm module
(in $QZ_WASM_BUILD, default build-wasm in the source root; a no-op once
built), installs workerd if missing and then execs workerd, so the process
this target holds is workerd itself: kill() is a SIGKILL of the runtime
that holds the Durable Objects' data.

Keys: one rw and one ro key through QUARTZ_API_KEYS. Durability is the
platform's: a Durable Object's output gate holds each response until its
storage commit is on disk ("sync").
"""
import os
import secrets
import shutil
import signal
import subprocess
import tempfile

from targets.base import free_port, wait_healthy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "worker-dev.sh")

MAX_BODY = 4 * 1024 * 1024
MAX_BATCH = 1000
SHARDS = 4


class Target:
    kind = "worker"

    def __init__(self, durability="sync", max_body=MAX_BODY, max_batch=MAX_BATCH, shards=SHARDS, threads=None,
                 extra_args=()):
        if durability != "sync":
            raise NotImplementedError("the worker's durability is the platform's (sync)")
        if extra_args:
            raise NotImplementedError("the worker target takes no extra arguments")
        self.tmp = tempfile.mkdtemp(prefix="qz-worker-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "workerd.log")
        self.key_rw = "rw-" + secrets.token_hex(16)
        self.key_ro = "ro-" + secrets.token_hex(16)
        self.shards = shards
        self.capabilities = {
            "kind": "worker",
            "max_body": max_body,
            "max_batch": max_batch,
            "kill": True,
            "restart": True,
            "durability": "sync",
        }
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self._log = None

    def env(self):
        e = dict(os.environ)
        for k in ("QUARTZ_API_KEY", "QUARTZ_API_KEY_RO"):
            e.pop(k, None)
        e["QUARTZ_API_KEYS"] = "%s rw\n%s ro\n" % (self.key_rw, self.key_ro)
        e["QUARTZ_MAX_BODY"] = str(self.capabilities["max_body"])
        e["QUARTZ_MAX_BATCH"] = str(self.capabilities["max_batch"])
        e["QUARTZ_SHARDS"] = str(self.shards)
        return e

    def start(self, timeout=120.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["bash", SCRIPT, str(self.port), self.data_dir], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, env=self.env())
        try:
            wait_healthy(self.url, lambda: self.proc.poll() is None, max(timeout, 120.0))
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

    def stop(self, timeout=30.0):
        """SIGTERM, wait; returns the exit status (None if it was not running)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill(self):
        """SIGKILL of workerd, no warning; returns when it is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def restart(self, timeout=120.0):
        if self.alive():
            self.stop()
        return self.start(timeout)

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def close(self):
        try:
            if self.alive():
                self.stop(15)
        finally:
            self.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)


def create(**options):
    """A started Worker on workerd.  options: durability ("sync" only),
    max_body, max_batch, shards."""
    return Target(**options).start()
