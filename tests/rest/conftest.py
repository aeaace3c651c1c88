"""Fixtures of the REST conformance suite: the target server, API clients
for the rw and ro keys, and throw-away named indexes.

Everything here speaks HTTP to a base URL; nothing reads a server's files.
"""
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import targets  # noqa: E402
from qzclient import Api  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "quartzd_only: checks of quartzd itself, skipped for other targets")
    config.addinivalue_line("markers", "needs_restart: needs a target that can be killed and restarted")


@pytest.fixture(scope="session")
def target_module():
    return targets.load()


@pytest.fixture(scope="session")
def target(target_module):
    try:
        t = target_module.create()
    except RuntimeError as e:
        pytest.exit("cannot start the REST target: %s" % e, returncode=3)
    yield t
    t.close()


@pytest.fixture(autouse=True)
def _markers(request, target):
    if request.node.get_closest_marker("quartzd_only") and target.capabilities.get("kind") != "quartzd":
        pytest.skip("quartzd-only check; target is %s" % target.capabilities.get("kind"))
    if request.node.get_closest_marker("needs_restart") and not (
            target.capabilities.get("kill") and target.capabilities.get("restart")):
        pytest.skip("target cannot be killed and restarted")


@pytest.fixture(scope="session")
def caps(target):
    return target.capabilities


@pytest.fixture(scope="session")
def api(target):
    """Client with the rw key (Authorization: Bearer)."""
    return Api(target.url, target.key_rw)


@pytest.fixture(scope="session")
def api_ro(target):
    return Api(target.url, target.key_ro)


@pytest.fixture(scope="session")
def anon(target):
    return Api(target.url, None)


@pytest.fixture
def uid():
    """A fresh string prefix, so tests on the shared default index never meet."""
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture
def make_index(api):
    """make_index(dimension, metric="cosine", **params) -> Index; dropped afterwards."""
    made = []

    def make(dimension=4, metric="cosine", **params):
        name = "t_" + uuid.uuid4().hex[:16]
        body = {"name": name, "dimension": dimension, "metric": metric}
        body.update(params)
        r = api.post("/api/indexes", body)
        assert r.status_code == 201, r.text
        made.append(name)
        return api.index(name)

    yield make
    for name in made:
        api.delete("/api/indexes/" + name)


@pytest.fixture
def idx(make_index):
    """A 4-d l2 index: plain numbers make exact distances easy to state."""
    return make_index(4, "l2")
