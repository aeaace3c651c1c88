"""The quartzd target: the real server from the build directory, on a free
127.0.0.1 port, with a temporary data directory and a key file holding one
rw and one ro key.

The binary is $QZ_BUILD_DIR/tools/quartzd/quartzd (QZ_BUILD_DIR defaults to
build/ in the source root).  Its stderr (the JSON log) goes to a file in the
target's temporary directory (Target.log_path) so quartzd-only tests can read
it; the shared tests never look there.
"""
import os

from targets.base import ProcessTarget

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

# Small limits so the limit tests send little; the suite reads them from
# Target.capabilities, never from these constants.
MAX_BODY = 4 * 1024 * 1024
MAX_BATCH = 1000


def binary():
    build = os.environ.get("QZ_BUILD_DIR", os.path.join(ROOT, "build"))
    return os.path.join(build, "tools", "quartzd", "quartzd")


class Target(ProcessTarget):
    kind = "quartzd"
    log_name = "quartzd.log"
    start_timeout = 30.0

    def __init__(self, durability="sync", threads=None, max_body=MAX_BODY,
                 max_batch=MAX_BATCH, extra_args=()):
        self.exe = binary()
        if not os.access(self.exe, os.X_OK):
            raise RuntimeError("quartzd binary not found: %s" % self.exe)
        super().__init__({"max_body": max_body, "max_batch": max_batch, "durability": durability})
        self.key_file = os.path.join(self.tmp, "keys")
        with open(self.key_file, "w") as f:
            f.write("%s rw\n%s ro\n" % (self.key_rw, self.key_ro))
        self.durability = durability
        self.threads = threads
        self.extra_args = list(extra_args)

    def command(self):
        a = [self.exe, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data_dir,
             "--key-file", self.key_file, "--durability", self.durability,
             "--max-body", str(self.capabilities["max_body"]),
             "--max-batch", str(self.capabilities["max_batch"])]
        if self.threads:
            a += ["--threads", str(self.threads)]
        return a + self.extra_args



def create(**options):
    """A started quartzd.  options: durability, threads, max_body, max_batch,
    extra_args (a list of more command-line arguments)."""
    return Target(**options).start()
