"""quartz: Python binding of libquartz, an embeddable vector database (HNSW).

    import numpy as np, quartz
    with quartz.open(dim=4) as db:                       # in memory; open("dir", dim=4) on disk
        db.add([1, 2], np.eye(2, 4, dtype=np.float32))   # ids, vectors (no copy for float32)
        ids, dist = db.search([1, 0.1, 0, 0], k=2)       # nearest first
        db.kv[b"model"] = b"minilm"

ctypes over the shared library's public API (include/quartz.h); no compiler
needed. See README.md beside this package for the API, the errors and the
library lookup.
"""

from ._db import (DTYPES, DURABILITY, MAX_DIMENSIONS, MAX_EF, MAX_K, MAX_KEY, MAX_M, MAX_METADATA, METRICS,
                  PAD_DISTANCE, PAD_ID, KV, Database, SearchResult, Stats, Transaction, open)
from ._lib import LibraryNotFoundError
from . import _lib
from .errors import (AlreadyExistsError, BufferTooSmallError, BusyError, CallbackError, ClosedError,
                     CorruptError, DimensionError, FullError, InvalidArgumentError, NonFiniteError,
                     NotFoundError, OutOfMemoryError, OutOfRangeError, QuartzError, ReadOnlyError,
                     StorageError, UnsupportedError, VersionError, ZeroVectorError, error_class)

__version__ = "1.1.0"

__all__ = [
    "open", "Database", "KV", "Transaction", "SearchResult", "Stats", "PAD_ID", "PAD_DISTANCE",
    "MAX_DIMENSIONS", "MAX_EF", "MAX_K", "MAX_KEY", "MAX_M", "MAX_METADATA", "METRICS", "DURABILITY", "DTYPES",
    "QuartzError", "InvalidArgumentError", "ClosedError", "OutOfMemoryError", "NotFoundError",
    "AlreadyExistsError", "StorageError", "CorruptError", "FullError", "BusyError", "VersionError",
    "DimensionError", "CallbackError", "NonFiniteError", "ZeroVectorError", "OutOfRangeError",
    "BufferTooSmallError", "ReadOnlyError", "UnsupportedError", "LibraryNotFoundError", "error_class",
    "library_path", "library_version", "simd_backend", "strerror",
]


def library_path():
    """Path (or loader name) of the libquartz that was loaded."""
    return _lib.path()


def library_version():
    """Run-time version of the loaded libquartz, "major.minor.patch"."""
    return _lib.load().qz_version_string().decode()


def simd_backend():
    """The distance kernels in use: "avx512", "avx2", "neon", "simd128" or "scalar"."""
    return _lib.load().qz_simd_backend().decode()


def strerror(code):
    """Static English text of a qz_status code."""
    return _lib.load().qz_strerror(int(code)).decode()
