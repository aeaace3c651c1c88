"""Database, its key-value mapping, transactions and search results."""

import ctypes
import operator
import os
import threading
import weakref
from collections.abc import MutableMapping
from ctypes import byref, c_size_t, c_void_p, sizeof

import numpy as np

from . import _lib
from . import errors as E

#: Id written into the padding slots of a search row that has fewer than k
#: results (2**64 - 1). It is also a valid id, so ``counts`` is authoritative.
PAD_ID = 0xFFFFFFFFFFFFFFFF
#: Distance written into the padding slots (+inf).
PAD_DISTANCE = float("inf")

MAX_DIMENSIONS = 65536
MAX_K = 10000
MAX_EF = 100000
MAX_M = 256
MAX_METADATA = 16 * 1024 * 1024
MAX_KEY = 511

_OPEN_READONLY = 0x1
_OPEN_EXISTING = 0x2
_OPEN_ORIGINALS_IN_STORAGE = 0x4
_BATCH_UPSERT = 0x1
_ID_SET_EXCLUDE = 0x1

_PARAM_KEYS = {"ef_search": 1, "checkpoint_writes": 2, "checkpoint_ms": 3}

METRICS = {"cosine": 1, "angular": 1, "l2": 2, "euclidean": 2, "ip": 3, "dot": 3, "inner_product": 3,
           "hamming": 4}
DURABILITY = {"default": 0, "sync": 1, "batched": 2, "none": 3}
DTYPES = {"default": 0, "f32": 1, "float32": 1, "f16": 2, "float16": 2, "int8": 3, "binary": 4}

_U32_OPTIONS = ("M", "ef_construction", "ef_search", "batch_window_ms", "threads")
_U64_OPTIONS = ("initial_capacity", "seed")
_ALL_OPTIONS = set(_U32_OPTIONS + _U64_OPTIONS) | {
    "durability", "dtype", "readonly", "existing", "originals", "capacity", "checkpoint_writes", "checkpoint_ms"}

_U64_MAX = 0xFFFFFFFFFFFFFFFF


def _errmsg(lib):
    return lib.qz_errmsg().decode("utf-8", "replace")


def _raise(lib, rc):
    """Raise the exception of status rc with the calling thread's qz_errmsg()."""
    msg = _errmsg(lib) or lib.qz_strerror(rc).decode("utf-8", "replace")
    raise E.from_code(rc, msg)


def _index(value, what):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("%s must be an integer, not bool" % what)
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError("%s must be an integer, not %s" % (what, type(value).__name__)) from None


def _uint(value, what, bits):
    v = _index(value, what)
    if v < 0 or v >= 1 << bits:
        raise E.OutOfRangeError(E.QZ_ERANGE, "%s is %d; it must be 0..2**%d-1" % (what, v, bits))
    return v


def _as_id(value, what="id"):
    return _uint(value, what, 64)


def _as_ids(ids):
    """A 1-D, C-contiguous uint64 array of ids (no copy when it is one already)."""
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, (bool, np.bool_)):
        return np.array([_as_id(ids)], dtype=np.uint64)
    if isinstance(ids, np.ndarray):
        a = ids
    else:
        try:
            a = np.asarray(ids)
        except (TypeError, ValueError) as e:
            raise TypeError("ids must be integers: %s" % e) from None
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise E.InvalidArgumentError(E.QZ_EINVAL, "ids must be 1-D, got shape %s" % (a.shape,))
    if a.dtype == np.uint64:
        pass
    elif a.dtype.kind in "iu":
        if a.size and int(a.min()) < 0:
            raise E.OutOfRangeError(E.QZ_ERANGE, "id %d is negative; ids are 0..2**64-1" % int(a.min()))
        a = a.view(np.uint64) if a.dtype.itemsize == 8 else a.astype(np.uint64)
    elif a.dtype.kind == "O":
        out = np.empty(a.shape[0], dtype=np.uint64)
        for i, v in enumerate(a):
            out[i] = _as_id(v, "ids[%d]" % i)
        a = out
    elif a.size == 0 and a.dtype.kind == "f":
        a = np.empty(0, dtype=np.uint64)  # an empty list
    else:
        raise TypeError("ids must be integers (uint64), got an array of %s" % a.dtype)
    return np.ascontiguousarray(a)


def _as_matrix(x, what):
    """(matrix, was_1d): a 2-D, C-contiguous float32 matrix, not a copy when x is
    one already (a 1-D x becomes a one-row view)."""
    if x is None:
        raise TypeError("%s must be an array of numbers, not None" % what)
    try:
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype.kind in "cOSUVMm":
            raise TypeError("%s must be real numbers, got an array of %s" % (what, x.dtype))
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError("%s must be numbers convertible to float32: %s" % (what, e)) from None
    one = a.ndim == 1
    if one:
        a = a.reshape(1, a.shape[0])
    elif a.ndim != 2:
        raise E.InvalidArgumentError(E.QZ_EINVAL, "%s must be 1-D or 2-D, got shape %s" % (what, a.shape))
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a, one


def _as_bytes(value, what):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))


def _as_meta(value, what):
    if value is None:
        return b""
    return _as_bytes(value, what)


_F32 = np.dtype(np.float32)


def _data_address(a):
    """Address of a C-contiguous array's data (c_char.from_buffer is faster than
    a.ctypes.data; read-only and empty arrays take the slower way)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


def _address(b):
    """Address of a bytes object's buffer (no copy)."""
    return ctypes.cast(ctypes.c_char_p(b), c_void_p).value


class _Metas:
    """Metadata of a batch as the two arrays qz_db_insert_batch() takes.

    All blobs go into one bytes object; the pointer array points into it.
    """

    __slots__ = ("buf", "ptrs", "lens")

    def __init__(self, metadata, n):
        if isinstance(metadata, (bytes, str, bytearray, memoryview)):
            if n != 1:
                raise TypeError("metadata for %d rows must be a sequence of %d items, not one %s"
                                % (n, n, type(metadata).__name__))
            metadata = [metadata]
        try:
            items = list(metadata)
        except TypeError:
            raise TypeError("metadata must be a sequence of bytes, str or None, not %s"
                            % type(metadata).__name__) from None
        if len(items) != n:
            raise E.InvalidArgumentError(E.QZ_EINVAL, "%d metadata items for %d rows" % (len(items), n))
        blobs = [_as_meta(m, "metadata[%d]" % i) for i, m in enumerate(items)]
        self.lens = np.fromiter(map(len, blobs), dtype=np.uintp, count=n)
        self.buf = b"".join(blobs)
        offsets = np.zeros(n, dtype=np.uintp)
        if n > 1:
            np.cumsum(self.lens[:-1], out=offsets[1:])
        self.ptrs = offsets + np.uintp(_address(self.buf))


class SearchResult(tuple):
    """What Database.search() returns: the pair ``(ids, distances)``, plus ``counts``.

    ``ids`` (uint64) and ``distances`` (float32) have shape ``(nq, k)`` for a
    2-D query matrix and ``(k,)`` for one 1-D query. Row i holds its
    ``counts[i]`` results nearest first; the slots after them are padding:
    id ``PAD_ID`` (2**64 - 1) and distance ``+inf``. ``counts`` is a
    uint64 array of shape ``(nq,)``, or an int for a 1-D query. Use the
    counts, not the sentinel, to tell padding from results: 2**64 - 1 is a
    valid id.
    """

    def __new__(cls, ids, distances, counts):
        self = tuple.__new__(cls, (ids, distances))
        self.counts = counts
        return self

    @property
    def ids(self):
        return self[0]

    @property
    def distances(self):
        return self[1]

    def row(self, i=0):
        """``(ids, distances)`` of query i without the padding."""
        if self[0].ndim == 1:
            if i not in (0, -1):
                raise IndexError("a 1-D query has one row")
            c = self.counts
            return self[0][:c], self[1][:c]
        c = int(self.counts[i])
        return self[0][i, :c], self[1][i, :c]

    def rows(self):
        """Iterate over ``(ids, distances)`` of each query without the padding."""
        n = 1 if self[0].ndim == 1 else self[0].shape[0]
        for i in range(n):
            yield self.row(i)

    def __repr__(self):
        return "SearchResult(ids=%r, distances=%r, counts=%r)" % (self[0], self[1], self.counts)

    def __reduce__(self):
        return (SearchResult, (self[0], self[1], self.counts))


class Stats:
    """A snapshot of qz_db_stats() (see quartz.h: qz_stats)."""

    __slots__ = ("dimensions", "metric", "dtype", "M", "ef_construction", "ef_search", "max_level", "count",
                 "deleted", "capacity", "memory_bytes", "simd", "open_reinserted")

    def __init__(self, st):
        for name in self.__slots__:
            v = getattr(st, name)
            setattr(self, name, v.decode("ascii", "replace") if isinstance(v, bytes) else v)
        self.metric = (_lib.load().qz_metric_name(st.metric) or b"?").decode()

    def as_dict(self):
        return {n: getattr(self, n) for n in self.__slots__}

    def __repr__(self):
        return "Stats(%s)" % ", ".join("%s=%r" % kv for kv in self.as_dict().items())

    def __eq__(self, other):
        return isinstance(other, Stats) and self.as_dict() == other.as_dict()


class Database:
    """A libquartz database, in memory (path None) or in a directory.

    Open it with ``quartz.open(...)`` (same arguments). A Database may be
    shared by threads; every C call releases the GIL. close() waits for the
    calls in flight on other threads, then frees the handle; later calls
    raise ClosedError.
    """

    def __init__(self, path=None, dim=None, metric=None, **options):
        self._lib = lib = _lib.load()
        self._ptr = None
        self._busy = 0
        self._closing = False
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._ef_params = {}
        self._txns = weakref.WeakSet()
        unknown = sorted(set(options) - _ALL_OPTIONS)
        if unknown:
            raise TypeError("open() got an unexpected keyword argument %r (known: %s)"
                            % (unknown[0], ", ".join(sorted(_ALL_OPTIONS))))
        o = _lib.OpenOptions()
        rc = lib.qz_open_options_init(byref(o), sizeof(o))
        if rc < 0:
            _raise(lib, rc)
        if dim is not None:
            o.dimensions = _uint(dim, "dim", 32)
        if metric is not None:
            o.metric = _enum(metric, METRICS, "metric")
        if "dtype" in options:
            o.dtype = _enum(options.pop("dtype"), DTYPES, "dtype")
        if "durability" in options:
            o.durability = _enum(options.pop("durability"), DURABILITY, "durability")
        if "capacity" in options:
            if "initial_capacity" in options:
                raise TypeError("give capacity or initial_capacity, not both")
            options["initial_capacity"] = options.pop("capacity")
        for name in _U32_OPTIONS:
            if name in options:
                setattr(o, name, _uint(options.pop(name), name, 32))
        for name in _U64_OPTIONS:
            if name in options:
                setattr(o, name, _uint(options.pop(name), name, 64))
        if options.pop("readonly", False):
            o.flags |= _OPEN_READONLY
        if options.pop("existing", False):
            o.flags |= _OPEN_EXISTING
        originals = options.pop("originals", "memory")
        if originals not in ("memory", "storage"):
            raise E.InvalidArgumentError(E.QZ_EINVAL, "originals must be \"memory\" or \"storage\", not %r" % (originals,))
        if originals == "storage":
            o.flags |= _OPEN_ORIGINALS_IN_STORAGE
        params = {k: options.pop(k) for k in ("checkpoint_writes", "checkpoint_ms") if k in options}
        if path is None:
            cpath = None
            self.path = None
        else:
            self.path = os.fspath(path)
            cpath = os.fsencode(self.path)
            if not cpath or b"\0" in cpath:
                raise E.InvalidArgumentError(E.QZ_EINVAL, "path must be a non-empty string without NUL")
        out = c_void_p()
        rc = lib.qz_db_open(cpath, byref(o), byref(out))
        if rc < 0:
            _raise(lib, rc)
        self._ptr = out.value
        st = self._stats_raw()
        self.dim = st.dimensions
        self.metric = lib.qz_metric_name(st.metric).decode()
        self.readonly = bool(o.flags & _OPEN_READONLY)
        self.kv = KV(self)
        for k, v in params.items():
            self.set_param(k, v)

    # ---- handle guard -------------------------------------------------------

    def _enter(self):
        with self._lock:
            if self._ptr is None or self._closing:
                raise E.ClosedError(E.QZ_EINVAL, "the database is closed")
            self._busy += 1
            return self._ptr

    def _leave(self):
        with self._lock:
            self._busy -= 1
            if self._busy == 0 and self._closing:
                self._cv.notify_all()

    def _call(self, name, *args):
        ptr = self._enter()
        try:
            rc = getattr(self._lib, name)(ptr, *args)
            if rc < 0:
                _raise(self._lib, rc)
            return rc
        finally:
            self._leave()

    # ---- life cycle ---------------------------------------------------------

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Flush pending writes and free the handle. Idempotent.

        Waits for calls running on other threads. Raises StorageError if the
        final flush failed (the handle is freed anyway).
        """
        with self._cv:
            if self._ptr is None or self._closing:
                return
            self._closing = True
            while self._busy:
                self._cv.wait()
            for t in list(self._txns):
                t._abort_locked()
            ptr, self._ptr = self._ptr, None
        rc = self._lib.qz_db_close(ptr)
        if rc < 0:
            _raise(self._lib, rc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_ptr", None) is not None and not self._closing:
                self.close()
        except Exception:
            pass

    def __repr__(self):
        if self._ptr is None:
            return "<quartz.Database closed>"
        return "<quartz.Database %s dim=%d metric=%s count=%d>" % (
            repr(self.path) if self.path is not None else "in-memory", self.dim, self.metric, len(self))

    # ---- writes -------------------------------------------------------------

    def _write_batch(self, ids, vectors, metadata, flags):
        ids = _as_ids(ids)
        x, _ = _as_matrix(vectors, "vectors")
        n = ids.shape[0]
        if x.shape[0] != n:
            raise E.InvalidArgumentError(E.QZ_EINVAL, "%d ids for %d vectors" % (n, x.shape[0]))
        if metadata is None:
            metas = None
            mp = ml = None
        else:
            metas = _Metas(metadata, n)
            mp, ml = metas.ptrs.ctypes.data, metas.lens.ctypes.data
        ptr = self._enter()
        if n == 0:
            self._leave()
            return
        try:
            rc = self._lib.qz_db_insert_batch(ptr, n, ids.ctypes.data, x.ctypes.data, x.shape[1], mp, ml, flags)
            if rc < 0:
                _raise(self._lib, rc)
        finally:
            self._leave()
        del metas

    def add(self, ids, vectors, metadata=None):
        """Insert new vectors: ``ids`` (n uint64, or one int) and ``vectors`` (n x dim float32).

        ``metadata``: None, or n items of bytes / str (UTF-8) / None. All rows
        are checked before any is inserted; an id that exists or repeats
        raises AlreadyExistsError and nothing is inserted.
        A C-contiguous float32 matrix is passed to C without a copy.
        """
        self._write_batch(ids, vectors, metadata, 0)

    insert = add

    def upsert(self, ids, vectors, metadata=None):
        """As add(), but replace the vector and metadata of ids that exist."""
        self._write_batch(ids, vectors, metadata, _BATCH_UPSERT)

    def delete(self, ids):
        """Delete one id or several. Several are deleted all or none (one transaction):
        if any is absent, NotFoundError is raised and nothing is deleted."""
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, (bool, np.bool_)):
            self._call("qz_db_delete", _as_id(ids))
            return
        a = _as_ids(ids)
        if a.shape[0] == 0:
            return
        if a.shape[0] == 1:
            self._call("qz_db_delete", int(a[0]))
            return
        a = np.unique(a)
        lib = self._lib
        ptr = self._enter()
        try:
            txn = c_void_p()
            rc = lib.qz_txn_begin(ptr, byref(txn))
            if rc < 0:
                _raise(lib, rc)
            try:
                for v in a.tolist():
                    rc = lib.qz_txn_delete(txn, v)
                    if rc < 0:
                        _raise(lib, rc)
            except BaseException:
                lib.qz_txn_abort(txn)
                raise
            rc = lib.qz_txn_commit(txn)
            if rc < 0:
                _raise(lib, rc)
        finally:
            self._leave()

    # ---- reads --------------------------------------------------------------

    def get(self, id):
        """``(vector, metadata)`` of an id: a float32 array (normalised under
        cosine) and bytes, or None when the row has no metadata. Raises
        NotFoundError (a KeyError) for an unknown id."""
        idv = _as_id(id)
        lib = self._lib
        vec = np.empty(self.dim, dtype=np.float32)
        cap = 256
        mlen = c_size_t(0)
        ptr = self._enter()
        try:
            while True:
                buf = ctypes.create_string_buffer(cap)
                rc = lib.qz_db_get(ptr, idv, vec.ctypes.data, self.dim, buf, cap, byref(mlen))
                if rc == E.QZ_ETOOSMALL and mlen.value > cap:
                    cap = mlen.value  # metadata grew meanwhile: ask again
                    continue
                if rc < 0:
                    _raise(lib, rc)
                break
        finally:
            self._leave()
        return vec, (buf.raw[:mlen.value] if mlen.value else None)

    def __contains__(self, id):
        if isinstance(id, (bool, np.bool_)):
            return False
        try:
            idv = operator.index(id)
        except TypeError:
            return False
        if idv < 0 or idv > _U64_MAX:
            return False
        return self._call("qz_db_contains", idv) == 1

    def __len__(self):
        return self._stats_raw().count

    def _stats_raw(self):
        st = _lib.Stats()
        st.struct_size = sizeof(st)
        ptr = self._enter()
        try:
            rc = self._lib.qz_db_stats(ptr, byref(st))
            if rc < 0:
                _raise(self._lib, rc)
        finally:
            self._leave()
        return st

    def stats(self):
        """A Stats snapshot: count, deleted, capacity, memory_bytes, M, ef_search, simd, ..."""
        return Stats(self._stats_raw())

    def search(self, queries, k=10, ef=None, filter_ids=None, exclude=False, oversample=None):
        """Top-k nearest neighbours of each query row, nearest first.

        queries: nq x dim (or one 1-D query of dim); a C-contiguous float32
            array is not copied.
        k: results per query, 1..10000; a k above the live count returns all.
        ef: candidate list size (None: the database's ef_search); raised to k.
        filter_ids: None, or ids a result must be in (with exclude=True:
            must not be in). The set is evaluated in C (qz_filter_ids).
        oversample: re-ranking factor of f16/int8/binary databases (None:
            the dtype's default); k * oversample candidates are measured
            again on the f32 originals.
        Returns a SearchResult: ``ids, distances = db.search(q)``, plus
        ``.counts``; short rows are padded with PAD_ID and +inf.
        """
        # The common case (a C-contiguous float32 array, int k, int or no ef, no
        # filter) takes a short path: a single call costs a few microseconds more
        # than the C call itself (bench/results/python.md).
        q = queries
        if type(q) is np.ndarray and q.dtype == _F32 and q.flags.c_contiguous and 1 <= q.ndim <= 2:
            one = q.ndim == 1
        else:
            q, one = _as_matrix(queries, "queries")
        if q.ndim == 1:
            nq, dims = 1, q.shape[0]
        else:
            nq, dims = q.shape
        if type(k) is not int:
            k = _index(k, "k")
        if k < 1 or k > MAX_K:
            raise E.OutOfRangeError(E.QZ_ERANGE, "k is %d; it must be 1..%d" % (k, MAX_K))
        lib = self._lib
        idset = fids = None
        if filter_ids is None:
            if exclude:
                raise TypeError("exclude=True needs filter_ids")
            if oversample is not None:
                sp = _lib.SearchParams(sizeof(_lib.SearchParams), 0 if ef is None else _uint(ef, "ef", 32),
                                       None, None, _uint(oversample, "oversample", 32))
                params = byref(sp)
            elif ef is None:
                params = None
            else:
                params = self._ef_params.get(ef) if type(ef) is int else None
                if params is None:
                    sp = _lib.SearchParams(sizeof(_lib.SearchParams), _uint(ef, "ef", 32), None, None)
                    params = byref(sp)
                    if type(ef) is int and len(self._ef_params) < 64:
                        self._ef_params[ef] = params  # read-only once stored: safe to share
        else:
            sp = _lib.SearchParams(sizeof(_lib.SearchParams), 0 if ef is None else _uint(ef, "ef", 32), None, None,
                                   0 if oversample is None else _uint(oversample, "oversample", 32))
            fids = _as_ids(filter_ids)
            if fids.shape[0] > 1 and not np.all(fids[1:] >= fids[:-1]):
                fids = np.sort(fids)
            idset = _lib.IdSet()
            rc = lib.qz_id_set_init(byref(idset), sizeof(idset), fids.ctypes.data if fids.size else None,
                                    fids.shape[0], _ID_SET_EXCLUDE if exclude else 0)
            if rc < 0:
                _raise(lib, rc)
            sp.filter = _filter_ids_address()
            sp.filter_user = ctypes.addressof(idset)
            params = byref(sp)
        # One buffer for the three outputs: ids (8-byte aligned at 0), counts, distances.
        n = nq * k
        out = (ctypes.c_char * (n * 12 + nq * 8 + 8))()
        base = ctypes.addressof(out)
        qaddr = _data_address(q)
        with self._lock:
            if self._ptr is None or self._closing:
                raise E.ClosedError(E.QZ_EINVAL, "the database is closed")
            self._busy += 1
            ptr = self._ptr
        try:
            rc = lib.qz_db_search_batch(ptr, qaddr, nq, dims, k, params, base, base + n * 8 + nq * 8, base + n * 8)
            if rc < 0:
                _raise(lib, rc)
        finally:
            with self._lock:
                self._busy -= 1
                if self._closing and self._busy == 0:
                    self._cv.notify_all()
        del fids, idset
        ids = np.frombuffer(out, np.uint64, n, 0)
        counts = np.frombuffer(out, np.uintp, nq, n * 8)
        dist = np.frombuffer(out, np.float32, n, n * 8 + nq * 8)
        if one:
            return SearchResult(ids, dist, int(counts[0]))
        return SearchResult(ids.reshape(nq, k), dist.reshape(nq, k), counts)

    # ---- maintenance --------------------------------------------------------

    def flush(self):
        """Make every acknowledged write durable now (directories)."""
        self._call("qz_db_flush")

    def compact(self):
        """Unlink deleted vectors from the graph now and reuse their slots."""
        self._call("qz_db_compact")

    def check(self):
        """Check the index's invariants; raises CorruptError naming the first violation."""
        self._call("qz_db_check")

    def set_param(self, name, value):
        """Change a run-time tunable: "ef_search", "checkpoint_writes" or "checkpoint_ms"."""
        if name not in _PARAM_KEYS:
            raise E.InvalidArgumentError(E.QZ_EINVAL, "unknown parameter %r (known: %s)"
                                         % (name, ", ".join(sorted(_PARAM_KEYS))))
        v = _index(value, name)
        if not -(1 << 63) <= v < (1 << 63):
            raise E.OutOfRangeError(E.QZ_ERANGE, "%s is %d; it does not fit in 64 bits" % (name, v))
        self._call("qz_db_set_param", _PARAM_KEYS[name], v)

    @property
    def ef_search(self):
        return self._stats_raw().ef_search

    @ef_search.setter
    def ef_search(self, value):
        self.set_param("ef_search", value)

    def transaction(self):
        """A Transaction; as a context manager it commits on success and aborts on an exception."""
        return Transaction(self)


def _enum(value, table, what):
    if isinstance(value, str):
        v = table.get(value.lower())
        if v is None:
            raise E.InvalidArgumentError(E.QZ_EINVAL, "unknown %s %r (known: %s)" % (what, value, ", ".join(table)))
        return v
    return _uint(value, what, 32)


_FILTER_IDS = None


def _filter_ids_address():
    global _FILTER_IDS
    if _FILTER_IDS is None:
        _FILTER_IDS = _lib.address_of("qz_filter_ids")
    return _FILTER_IDS


class KV(MutableMapping):
    """The database's key-value store as a mapping of bytes to bytes.

    Keys are 1..511 bytes (str keys are UTF-8 encoded); values up to 16 MiB
    (str values are UTF-8 encoded; reads give bytes). Iteration is in
    ascending byte order; len() counts by scanning.
    """

    def __init__(self, db):
        self._db = db

    def _key(self, key):
        return _as_bytes(key, "key")

    def __getitem__(self, key):
        k = self._key(key)
        db = self._db
        lib = db._lib
        vlen = c_size_t(0)
        cap = 256
        ptr = db._enter()
        try:
            while True:
                buf = ctypes.create_string_buffer(cap)
                rc = lib.qz_kv_get(ptr, k, len(k), buf, cap, byref(vlen))
                if rc == E.QZ_ETOOSMALL and vlen.value > cap:
                    cap = vlen.value
                    continue
                if rc < 0:
                    _raise(lib, rc)
                return buf.raw[:vlen.value]
        finally:
            db._leave()

    def __setitem__(self, key, value):
        k = self._key(key)
        v = _as_bytes(value, "value")
        self._db._call("qz_kv_put", k, len(k), v, len(v))

    def __delitem__(self, key):
        k = self._key(key)
        self._db._call("qz_kv_delete", k, len(k))

    def __contains__(self, key):
        try:
            k = self._key(key)
        except TypeError:
            return False
        db = self._db
        vlen = c_size_t(0)
        ptr = db._enter()
        try:
            rc = db._lib.qz_kv_get(ptr, k, len(k), None, 0, byref(vlen))
            if rc == E.QZ_ENOTFOUND:
                return False
            if rc < 0 and rc != E.QZ_ETOOSMALL:
                _raise(db._lib, rc)
            return True
        finally:
            db._leave()

    def _scan(self, prefix, values):
        p = self._key(prefix) if prefix else b""
        out = []
        if values:
            def visit(kp, kl, vp, vl, user):
                out.append((ctypes.string_at(kp, kl), ctypes.string_at(vp, vl) if vl else b""))
                return 0
        else:
            def visit(kp, kl, vp, vl, user):
                out.append(ctypes.string_at(kp, kl))
                return 0
        cb = _lib.KV_SCAN_FN(visit)
        self._db._call("qz_kv_scan", p, len(p), cb, None)
        return out

    def scan(self, prefix=b""):
        """A list of ``(key, value)`` for every key starting with prefix, ascending."""
        return self._scan(prefix, True)

    def keys(self, prefix=b""):
        """A list of the keys starting with prefix, ascending."""
        return self._scan(prefix, False)

    def __iter__(self):
        return iter(self._scan(b"", False))

    def __len__(self):
        return len(self._scan(b"", False))

    def __repr__(self):
        return "<quartz.KV of %r>" % self._db


class Transaction:
    """Writes that reach the disk together or not at all (qz_txn_*).

    Nothing is applied before commit(), which checks every operation first.
    ``with db.transaction() as t: t.upsert(...); t.delete(...)`` commits at
    the end of the block, or aborts if the block raised. A transaction
    belongs to one thread at a time; closing the database aborts it.
    """

    def __init__(self, db):
        self._db = db
        self._lib = db._lib
        self._txn = None
        ptr = db._enter()
        try:
            txn = c_void_p()
            rc = self._lib.qz_txn_begin(ptr, byref(txn))
            if rc < 0:
                _raise(self._lib, rc)
            self._txn = txn.value
            db._txns.add(self)
        finally:
            db._leave()

    def _run(self, name, *args):
        db = self._db
        db._enter()
        try:
            if self._txn is None:
                raise E.ClosedError(E.QZ_EINVAL, "the transaction is finished")
            rc = getattr(self._lib, name)(self._txn, *args)
            if rc < 0:
                _raise(self._lib, rc)
        finally:
            db._leave()

    def upsert(self, ids, vectors, metadata=None):
        """Add upserts of rows (checked now, applied at commit)."""
        ids = _as_ids(ids)
        x, _ = _as_matrix(vectors, "vectors")
        if x.shape[0] != ids.shape[0]:
            raise E.InvalidArgumentError(E.QZ_EINVAL, "%d ids for %d vectors" % (ids.shape[0], x.shape[0]))
        metas = _Metas(metadata, ids.shape[0]) if metadata is not None else None
        row = x.shape[1] * 4
        base = x.ctypes.data
        for i, v in enumerate(ids.tolist()):
            mp, ml = (int(metas.ptrs[i]), int(metas.lens[i])) if metas is not None else (None, 0)
            self._run("qz_txn_upsert", v, base + i * row, x.shape[1], mp, ml)

    def delete(self, ids):
        """Add deletes; every id must exist at commit (else NotFoundError and nothing applied)."""
        for v in _as_ids(ids).tolist():
            self._run("qz_txn_delete", v)

    def kv_put(self, key, value):
        k, v = _as_bytes(key, "key"), _as_bytes(value, "value")
        self._run("qz_txn_kv_put", k, len(k), v, len(v))

    def kv_delete(self, key):
        k = _as_bytes(key, "key")
        self._run("qz_txn_kv_delete", k, len(k))

    def commit(self):
        """Apply everything or nothing; the transaction is finished either way."""
        db = self._db
        db._enter()
        try:
            with db._cv:
                t, self._txn = self._txn, None
                db._txns.discard(self)
            if t is None:
                raise E.ClosedError(E.QZ_EINVAL, "the transaction is finished")
            rc = self._lib.qz_txn_commit(t)
            if rc < 0:
                _raise(self._lib, rc)
        finally:
            db._leave()

    def abort(self):
        """Discard the transaction (no-op once finished)."""
        with self._db._cv:
            self._abort_locked()

    def _abort_locked(self):
        t, self._txn = self._txn, None
        self._db._txns.discard(self)
        if t is not None:
            self._lib.qz_txn_abort(t)

    @property
    def finished(self):
        return self._txn is None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.commit()
        else:
            self.abort()

    def __del__(self):
        try:
            self.abort()
        except Exception:
            pass


def open(path=None, dim=None, metric=None, **options):
    """Open or create a database; see Database and the package README."""
    return Database(path, dim=dim, metric=metric, **options)
