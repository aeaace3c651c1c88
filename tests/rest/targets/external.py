"""An already running server: QZ_REST_URL, QZ_REST_KEY_RW, QZ_REST_KEY_RO.

Tests that need kill or restart skip; the body and batch limits are taken
from QZ_REST_MAX_BODY / QZ_REST_MAX_BATCH (defaults: the contract's 32 MiB
and 10,000).  create() hands back the same server each time: it is not ours
to start or stop.
"""
import os


class Target:
    kind = "external"

    def __init__(self):
        self.url = os.environ["QZ_REST_URL"].rstrip("/")
        self.key_rw = os.environ.get("QZ_REST_KEY_RW", "")
        self.key_ro = os.environ.get("QZ_REST_KEY_RO", "")
        self.capabilities = {
            "kind": "external",
            "max_body": int(os.environ.get("QZ_REST_MAX_BODY", 32 * 1024 * 1024)),
            "max_batch": int(os.environ.get("QZ_REST_MAX_BATCH", 10000)),
            "kill": False,
            "restart": False,
            "durability": os.environ.get("QZ_REST_DURABILITY", "sync"),
        }

    def start(self, timeout=30.0):
        return self

    def stop(self, timeout=30.0):
        return None

    def kill(self):
        raise NotImplementedError("an external server cannot be killed by the suite")

    def restart(self, timeout=60.0):
        raise NotImplementedError("an external server cannot be restarted by the suite")

    def close(self):
        pass


def create(**options):
    if options:
        raise NotImplementedError("an external server takes no options: %r" % (options,))
    return Target()
