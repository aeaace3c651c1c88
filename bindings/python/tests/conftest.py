"""Shared fixtures of the quartz binding's tests.

The tests import the package from this source tree (bindings/python) and
load the library named by QUARTZ_LIBRARY (run-tests.sh sets it to the
build's libquartz.so.1). Datasets come from QZ_DATA_DIR (default
../shared/data beside the source root); tests that need one skip with a
message when it is absent.
"""
import os
import struct
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                      # bindings/python
SRC_ROOT = os.path.dirname(os.path.dirname(PKG_ROOT))  # repository root
sys.path.insert(0, PKG_ROOT)

import quartz  # noqa: E402


def data_dir():
    return os.environ.get("QZ_DATA_DIR") or os.path.join(os.path.dirname(SRC_ROOT), "shared", "data")


def read_vecs(path, dtype):
    """A texmex .fvecs / .ivecs file as a (n, d) array."""
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise ValueError("%s is empty" % path)
    d = int(raw[0])
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        raise ValueError("%s: rows of different dimensions" % path)
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def load_dataset(name):
    d = os.path.join(data_dir(), name)
    if not os.path.exists(os.path.join(d, "base.fvecs")):
        pytest.skip("dataset %s not found under %s (set QZ_DATA_DIR)" % (name, data_dir()))
    return {
        "dir": d,
        "base": read_vecs(os.path.join(d, "base.fvecs"), np.float32),
        "query": read_vecs(os.path.join(d, "query.fvecs"), np.float32),
        "gt": read_vecs(os.path.join(d, "gt.ivecs"), np.int32),
    }


def clustered(n, dim, clusters, seed):
    """n rows of dim float32 around `clusters` random centres (0: plain normal)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    if clusters:
        centres = 4 * rng.standard_normal((clusters, dim)).astype(np.float32)
        x += centres[rng.integers(0, clusters, n)]
    return x


@pytest.fixture
def library():
    path = os.environ.get("QUARTZ_LIBRARY")
    if not path:
        pytest.skip("QUARTZ_LIBRARY is not set (run bindings/python/run-tests.sh BUILDDIR XML)")
    return path
