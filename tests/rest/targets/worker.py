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

from targets.base import ProcessTarget

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "worker-dev.sh")

MAX_BODY = 4 * 1024 * 1024
MAX_BATCH = 1000
SHARDS = 4


class Target(ProcessTarget):
    kind = "worker"
    log_name = "workerd.log"
    start_timeout = 120.0  # the first start may build the module and install workerd

    def __init__(self, durability="sync", max_body=MAX_BODY, max_batch=MAX_BATCH, shards=SHARDS, threads=None,
                 extra_args=()):
        if durability != "sync":
            raise NotImplementedError("the worker's durability is the platform's (sync)")
        if extra_args:
            raise NotImplementedError("the worker target takes no extra arguments")
        super().__init__({"max_body": max_body, "max_batch": max_batch, "durability": "sync"})
        self.shards = shards

    def command(self):
        return ["bash", SCRIPT, str(self.port), self.data_dir]

    def env(self):
        e = dict(os.environ)
        for k in ("QUARTZ_API_KEY", "QUARTZ_API_KEY_RO"):
            e.pop(k, None)
        e["QUARTZ_API_KEYS"] = "%s rw\n%s ro\n" % (self.key_rw, self.key_ro)
        e["QUARTZ_MAX_BODY"] = str(self.capabilities["max_body"])
        e["QUARTZ_MAX_BATCH"] = str(self.capabilities["max_batch"])
        e["QUARTZ_SHARDS"] = str(self.shards)
        return e


def create(**options):
    """A started Worker on workerd.  options: durability ("sync" only),
    max_body, max_batch, shards."""
    return Target(**options).start()
