"""Exceptions: one class per qz_status code, all under QuartzError.

Each class also inherits the builtin exception a Python user would catch
for that kind of failure, so ``except KeyError`` catches an unknown id and
``except ValueError`` a wrong dimension or a NaN:

===============  ====  ======================  ==========================
code             value class                   also a
===============  ====  ======================  ==========================
QZ_EINVAL          -1  InvalidArgumentError    ValueError
QZ_ENOMEM          -2  OutOfMemoryError        MemoryError
QZ_ENOTFOUND       -3  NotFoundError           KeyError
QZ_EEXISTS         -4  AlreadyExistsError      KeyError
QZ_EIO             -5  StorageError            OSError
QZ_ECORRUPT        -6  CorruptError            OSError
QZ_EFULL           -7  FullError               OSError
QZ_EBUSY           -8  BusyError               OSError
QZ_EVERSION        -9  VersionError            OSError
QZ_EDIM           -10  DimensionError          ValueError
QZ_EUSER          -11  CallbackError           RuntimeError
QZ_ENONFINITE     -12  NonFiniteError          ValueError
QZ_EZEROVEC       -13  ZeroVectorError         ValueError
QZ_ERANGE         -14  OutOfRangeError         ValueError
QZ_ETOOSMALL      -15  BufferTooSmallError     ValueError
QZ_EREADONLY      -16  ReadOnlyError           PermissionError
QZ_EUNSUPPORTED   -17  UnsupportedError        NotImplementedError
===============  ====  ======================  ==========================

An unknown negative code (a newer library) raises QuartzError itself.
ClosedError (a use of a closed Database) is an InvalidArgumentError with
code QZ_EINVAL: the C library answers a NULL handle the same way, and
Python's own closed files raise ValueError.
"""

QZ_OK = 0
QZ_EINVAL = -1
QZ_ENOMEM = -2
QZ_ENOTFOUND = -3
QZ_EEXISTS = -4
QZ_EIO = -5
QZ_ECORRUPT = -6
QZ_EFULL = -7
QZ_EBUSY = -8
QZ_EVERSION = -9
QZ_EDIM = -10
QZ_EUSER = -11
QZ_ENONFINITE = -12
QZ_EZEROVEC = -13
QZ_ERANGE = -14
QZ_ETOOSMALL = -15
QZ_EREADONLY = -16
QZ_EUNSUPPORTED = -17


class QuartzError(Exception):
    """A libquartz call failed.

    Attributes:
        code: the negative qz_status value (e.g. -10 for QZ_EDIM).
        name: the code's C name ("QZ_EDIM").
        message: the detailed text of qz_errmsg() ("vector has 15 dimensions,
            database expects 16"), or the binding's own text for checks made
            before calling C.
    """

    code = None
    name = "QZ_E?"

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.name = _NAMES.get(code, "QZ_E%d" % code)

    def __str__(self):
        return "%s: %s" % (self.name, self.message)

    def __repr__(self):
        return "%s(%d, %r)" % (type(self).__name__, self.code, self.message)

    def __reduce__(self):
        return (type(self), (self.code, self.message))


class InvalidArgumentError(QuartzError, ValueError):
    """QZ_EINVAL: an invalid argument (missing buffer, bad flag, bad option)."""


class ClosedError(InvalidArgumentError):
    """The Database (or transaction) was closed; code QZ_EINVAL."""


class OutOfMemoryError(QuartzError, MemoryError):
    """QZ_ENOMEM: out of memory."""


class NotFoundError(QuartzError, KeyError):
    """QZ_ENOTFOUND: no vector or key with that id."""


class AlreadyExistsError(QuartzError, KeyError):
    """QZ_EEXISTS: the id already exists (add, not upsert), or repeats inside one batch."""


class StorageError(QuartzError, OSError):
    """QZ_EIO: the storage layer failed (disk, LMDB)."""


class CorruptError(QuartzError, OSError):
    """QZ_ECORRUPT: stored data failed a checksum or invariant."""


class FullError(QuartzError, OSError):
    """QZ_EFULL: a hard limit was reached (ids, capacity, disk)."""


class BusyError(QuartzError, OSError):
    """QZ_EBUSY: held by someone else (another process has the directory open for writing)."""


class VersionError(QuartzError, OSError):
    """QZ_EVERSION: struct size or on-disk format not supported (a newer format)."""


class DimensionError(QuartzError, ValueError):
    """QZ_EDIM: the vector's dimension does not match the database."""


class CallbackError(QuartzError, RuntimeError):
    """QZ_EUSER: a callback stopped the operation."""


class NonFiniteError(QuartzError, ValueError):
    """QZ_ENONFINITE: a vector component is NaN or infinite."""


class ZeroVectorError(QuartzError, ValueError):
    """QZ_EZEROVEC: an all-zero vector where the metric needs a norm (cosine)."""


class OutOfRangeError(QuartzError, ValueError):
    """QZ_ERANGE: a number outside its documented range (k, ef, M, key length...)."""


class BufferTooSmallError(QuartzError, ValueError):
    """QZ_ETOOSMALL: an output buffer was too small (the binding retries; rarely seen)."""


class ReadOnlyError(QuartzError, PermissionError):
    """QZ_EREADONLY: a write on a database opened read-only."""


class UnsupportedError(QuartzError, NotImplementedError):
    """QZ_EUNSUPPORTED: feature not available in this build or on this CPU."""


_BY_CODE = {
    QZ_EINVAL: InvalidArgumentError,
    QZ_ENOMEM: OutOfMemoryError,
    QZ_ENOTFOUND: NotFoundError,
    QZ_EEXISTS: AlreadyExistsError,
    QZ_EIO: StorageError,
    QZ_ECORRUPT: CorruptError,
    QZ_EFULL: FullError,
    QZ_EBUSY: BusyError,
    QZ_EVERSION: VersionError,
    QZ_EDIM: DimensionError,
    QZ_EUSER: CallbackError,
    QZ_ENONFINITE: NonFiniteError,
    QZ_EZEROVEC: ZeroVectorError,
    QZ_ERANGE: OutOfRangeError,
    QZ_ETOOSMALL: BufferTooSmallError,
    QZ_EREADONLY: ReadOnlyError,
    QZ_EUNSUPPORTED: UnsupportedError,
}

_NAMES = {
    QZ_EINVAL: "QZ_EINVAL", QZ_ENOMEM: "QZ_ENOMEM", QZ_ENOTFOUND: "QZ_ENOTFOUND",
    QZ_EEXISTS: "QZ_EEXISTS", QZ_EIO: "QZ_EIO", QZ_ECORRUPT: "QZ_ECORRUPT", QZ_EFULL: "QZ_EFULL",
    QZ_EBUSY: "QZ_EBUSY", QZ_EVERSION: "QZ_EVERSION", QZ_EDIM: "QZ_EDIM", QZ_EUSER: "QZ_EUSER",
    QZ_ENONFINITE: "QZ_ENONFINITE", QZ_EZEROVEC: "QZ_EZEROVEC", QZ_ERANGE: "QZ_ERANGE",
    QZ_ETOOSMALL: "QZ_ETOOSMALL", QZ_EREADONLY: "QZ_EREADONLY", QZ_EUNSUPPORTED: "QZ_EUNSUPPORTED",
}


def error_class(code):
    """The exception class of a qz_status code (QuartzError for an unknown one)."""
    return _BY_CODE.get(code, QuartzError)


def from_code(code, message):
    return error_class(code)(code, message)
