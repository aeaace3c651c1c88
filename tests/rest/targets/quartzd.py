"""The quartzd target: the real server from the build directory, on a free
127.0.0.1 port, with a temporary data directory and a key file holding one
rw and one ro key.

The binary is $QZ_BUILD_DIR/tools/quartzd/quartzd (QZ_BUILD_DIR defaults to
build/ in the source root).  Its stderr (the JSON log) goes to a file in the
target's temporary directory (Target.log_path) so quartzd-only tests can read
it; the shared tests never look there.
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

# Small limits so the limit tests send little; the suite reads them from
# Target.capabilities, never from these constants.
MAX_BODY = 4 * 1024 * 1024
MAX_BATCH = 1000


def binary():
    build = os.environ.get("QZ_BUILD_DIR", os.path.join(ROOT, "build"))
    return os.path.join(build, "tools", "quartzd", "quartzd")


class Target:
    kind = "quartzd"

    def __init__(self, durability="sync", threads=None, max_body=MAX_BODY,
                 max_batch=MAX_BATCH, extra_args=()):
        self.exe = binary()
        if not os.access(self.exe, os.X_OK):
            raise RuntimeError("quartzd binary not found: %s" % self.exe)
        self.tmp = tempfile.mkdtemp(prefix="qz-rest-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.key_file = os.path.join(self.tmp, "keys")
        self.log_path = os.path.join(self.tmp, "quartzd.log")
        self.key_rw = "rw-" + secrets.token_hex(16)
        self.key_ro = "ro-" + secrets.token_hex(16)
        with open(self.key_file, "w") as f:
            f.write("%s rw\n%s ro\n" % (self.key_rw, self.key_ro))
        self.durability = durability
        self.threads = threads
        self.extra_args = list(extra_args)
        self.capabilities = {
            "kind": "quartzd",
            "max_body": max_body,
            "max_batch": max_batch,
            "kill": True,
            "restart": True,
            "durability": durability,
        }
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self._log = None

    def argv(self):
        a = [self.exe, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data_dir,
             "--key-file", self.key_file, "--durability", self.durability,
             "--max-body", str(self.capabilities["max_body"]),
             "--max-batch", str(self.capabilities["max_batch"])]
        if self.threads:
            a += ["--threads", str(self.threads)]
        return a + self.extra_args

    def start(self, timeout=30.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        try:
            wait_healthy(self.url, lambda: self.proc.poll() is None, timeout)
        except RuntimeError as e:
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
                raise RuntimeError("quartzd did not exit within %.0f s of SIGTERM" % timeout)
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill(self):
        """SIGKILL, no warning; returns when the process is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def restart(self, timeout=60.0):
        """Start again on the same data, key file and port."""
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


def create(**options):
    """A started quartzd.  options: durability, threads, max_body, max_batch,
    extra_args (a list of more command-line arguments)."""
    return Target(**options).start()
