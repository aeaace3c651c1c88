"""Finding and loading libquartz, and the ctypes prototypes of quartz.h.

Only the public, stable API (include/quartz.h) is declared here. Structs
carry their own size, so this module declares each one exactly as quartz.h
1.1 lays it out and passes ``sizeof``; the library defaults what it knows
beyond that and refuses nothing we send.

Lookup order of the shared library (the first that loads wins):

1. the path in the environment variable ``QUARTZ_LIBRARY`` (if it is set and
   cannot be loaded, that is an error: there is no silent fallback);
2. ``libquartz.so.1`` (or ``libquartz.so``) next to this package, as a wheel
   that bundles the library places it;
3. the installed ``libquartz.so.1``, through the dynamic loader's search path
   (``LD_LIBRARY_PATH``, the ldconfig cache), then ``ctypes.util.find_library``.
"""

import ctypes
import ctypes.util
import os
import sys
import threading

from ctypes import (POINTER, Structure, c_char, c_char_p, c_int, c_int64, c_size_t, c_uint32, c_uint64,
                    c_void_p)

SONAME = "libquartz.so.1"

_lock = threading.Lock()
_lib = None
_path = None


class LibraryNotFoundError(OSError):
    """libquartz could not be found or loaded, or it is too old (no qz_db_search_batch)."""


class OpenOptions(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("dimensions", c_uint32),
        ("metric", c_uint32),
        ("dtype", c_uint32),
        ("M", c_uint32),
        ("ef_construction", c_uint32),
        ("ef_search", c_uint32),
        ("initial_capacity", c_uint64),
        ("durability", c_uint32),
        ("batch_window_ms", c_uint32),
        ("threads", c_uint32),
        ("reserved0", c_uint32),
        ("seed", c_uint64),
    ]


class SearchParams(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("ef", c_uint32),
        ("filter", c_void_p),
        ("filter_user", c_void_p),
        ("oversample", c_uint32),  # libquartz 1.1: re-ranking factor of quantized dtypes
        ("reserved0", c_uint32),
    ]


class Stats(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("dimensions", c_uint32),
        ("metric", c_uint32),
        ("dtype", c_uint32),
        ("M", c_uint32),
        ("ef_construction", c_uint32),
        ("ef_search", c_uint32),
        ("max_level", c_uint32),
        ("count", c_uint64),
        ("deleted", c_uint64),
        ("capacity", c_uint64),
        ("memory_bytes", c_uint64),
        ("simd", c_char * 16),
        ("open_reinserted", c_uint64),
    ]


class IdSet(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("ids", c_void_p),
        ("count", c_size_t),
    ]


KV_SCAN_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p)

# name: (restype, argtypes). Pointers to arrays are c_void_p so that the
# binding passes numpy's data address as a plain integer (no copy, no
# per-call ctypes array objects).
_PROTOTYPES = {
    "qz_version_number": (c_uint32, []),
    "qz_version_string": (c_char_p, []),
    "qz_strerror": (c_char_p, [c_int]),
    "qz_errmsg": (c_char_p, []),
    "qz_simd_backend": (c_char_p, []),
    "qz_metric_name": (c_char_p, [c_uint32]),
    "qz_open_options_init": (c_int, [POINTER(OpenOptions), c_size_t]),
    "qz_search_params_init": (c_int, [POINTER(SearchParams), c_size_t]),
    "qz_db_open": (c_int, [c_char_p, POINTER(OpenOptions), POINTER(c_void_p)]),
    "qz_db_close": (c_int, [c_void_p]),
    "qz_db_insert": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t, c_void_p, c_size_t]),
    "qz_db_upsert": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t, c_void_p, c_size_t]),
    "qz_db_insert_batch": (c_int, [c_void_p, c_size_t, c_void_p, c_void_p, c_size_t, c_void_p, c_void_p,
                                   c_uint32]),
    "qz_db_delete": (c_int, [c_void_p, c_uint64]),
    "qz_db_get": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t, c_void_p, c_size_t, POINTER(c_size_t)]),
    "qz_db_contains": (c_int, [c_void_p, c_uint64]),
    "qz_db_search": (c_int, [c_void_p, c_void_p, c_size_t, c_size_t, c_void_p, c_void_p, c_void_p,
                             POINTER(c_size_t)]),
    "qz_db_search_batch": (c_int, [c_void_p, c_void_p, c_size_t, c_size_t, c_size_t, c_void_p, c_void_p,
                                   c_void_p, c_void_p]),
    "qz_id_set_init": (c_int, [POINTER(IdSet), c_size_t, c_void_p, c_size_t, c_uint32]),
    "qz_db_stats": (c_int, [c_void_p, POINTER(Stats)]),
    "qz_db_compact": (c_int, [c_void_p]),
    "qz_db_flush": (c_int, [c_void_p]),
    "qz_db_set_param": (c_int, [c_void_p, c_int, c_int64]),
    "qz_db_check": (c_int, [c_void_p]),
    "qz_kv_put": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]),
    "qz_kv_get": (c_int, [c_void_p, c_char_p, c_size_t, c_void_p, c_size_t, POINTER(c_size_t)]),
    "qz_kv_delete": (c_int, [c_void_p, c_char_p, c_size_t]),
    "qz_kv_scan": (c_int, [c_void_p, c_char_p, c_size_t, KV_SCAN_FN, c_void_p]),
    "qz_txn_begin": (c_int, [c_void_p, POINTER(c_void_p)]),
    "qz_txn_upsert": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t, c_void_p, c_size_t]),
    "qz_txn_delete": (c_int, [c_void_p, c_uint64]),
    "qz_txn_kv_put": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]),
    "qz_txn_kv_delete": (c_int, [c_void_p, c_char_p, c_size_t]),
    "qz_txn_commit": (c_int, [c_void_p]),
    "qz_txn_abort": (None, [c_void_p]),
}

# The filter functions are not called through ctypes: only their address
# goes into qz_search_params::filter.
_ADDRESS_ONLY = ("qz_filter_ids",)


def _names():
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.platform == "darwin":
        local = ["libquartz.1.dylib", "libquartz.dylib"]
    elif sys.platform == "win32":
        local = ["quartz.dll", "libquartz.dll"]
    else:
        local = [SONAME, "libquartz.so"]
    for name in local:
        yield os.path.join(here, name), False
    yield (local[0] if sys.platform != "linux" else SONAME), True
    found = ctypes.util.find_library("quartz")
    if found:
        yield found, True


def _declare(lib, origin):
    missing = [n for n in list(_PROTOTYPES) + list(_ADDRESS_ONLY) if not hasattr(lib, n)]
    if missing:
        raise LibraryNotFoundError(
            "%s is too old for this binding: it lacks %s (libquartz >= 1.1 is needed)" % (origin, ", ".join(missing)))
    for name, (res, args) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    major = lib.qz_version_number() // 10000
    if major != 1:
        raise LibraryNotFoundError("%s is libquartz %s; this binding speaks ABI major 1" %
                                   (origin, lib.qz_version_string().decode()))
    return lib


def load():
    """The loaded library (a ctypes.CDLL), loading it on first use."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        env = os.environ.get("QUARTZ_LIBRARY")
        if env:
            try:
                lib = ctypes.CDLL(env)
            except OSError as e:
                raise LibraryNotFoundError("QUARTZ_LIBRARY=%s cannot be loaded: %s" % (env, e)) from None
            _lib, _path = _declare(lib, "QUARTZ_LIBRARY=" + env), env
            return _lib
        tried = []
        for cand, by_loader in _names():
            if not by_loader and not os.path.exists(cand):
                continue
            try:
                lib = ctypes.CDLL(cand)
            except OSError as e:
                tried.append("%s (%s)" % (cand, e))
                continue
            _lib, _path = _declare(lib, cand), cand
            return _lib
        raise LibraryNotFoundError(
            "libquartz not found: set QUARTZ_LIBRARY to the path of libquartz.so.1, put it next to the "
            "quartz package, or install it where the dynamic loader finds it. Tried: " + "; ".join(tried))


def path():
    """Where the loaded library came from (loading it if needed)."""
    load()
    return _path


def address_of(name):
    return ctypes.cast(getattr(load(), name), c_void_p).value
