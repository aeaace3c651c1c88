/**
 * @file quartz.h
 * @brief The public, stable API of libquartz, an embeddable vector database.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 *
 * ABI promise: every release with the same QZ_VERSION_MAJOR is ABI compatible
 * with every earlier release of that major. The shared library's soname is
 * libquartz.so.MAJOR. Functions are only ever added; option structs only
 * grow at their end (see qz_open_options).
 */
#ifndef QUARTZ_H
#define QUARTZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @mainpage libquartz
 *
 * libquartz stores vectors under 64-bit ids, each with optional metadata
 * bytes, and answers top-k nearest-neighbour queries with an HNSW graph.
 * A database lives in memory or in a directory on disk.
 *
 * @section quick_sec Quick start
 * @code
 * qz_open_options o = QZ_OPEN_OPTIONS_INIT;
 * o.dimensions = 384;
 * o.metric = QZ_METRIC_COSINE;
 * qz_db *db = NULL;
 * if (qz_db_open(NULL, &o, &db) < 0) { fprintf(stderr, "%s\n", qz_errmsg()); return 1; }
 * qz_db_insert(db, 42, vec, 384, "{\"title\":\"x\"}", 13);
 * uint64_t ids[10]; float dist[10]; size_t found = 0;
 * qz_db_search(db, query, 384, 10, NULL, ids, dist, &found);
 * qz_db_close(db);
 * @endcode
 *
 * @section dist_sec Distances
 * Every search returns distances where smaller means closer:
 * - ::QZ_METRIC_L2: the squared Euclidean distance, sum((a[i]-b[i])^2).
 * - ::QZ_METRIC_COSINE: 1 - cos(a, b), in [0, 2]. Vectors are normalised to
 *   unit length when stored, so qz_db_get() returns the normalised vector.
 * - ::QZ_METRIC_IP: 1 - dot(a, b) (inner product; vectors are kept as given).
 * - ::QZ_METRIC_HAMMING: the number of differing bits. Each float component
 *   is one bit: 1 when it is > 0, else 0 (binary quantisation of the input).
 *   Stored as packed bits; qz_db_get() returns 0.0f / 1.0f components.
 *
 * @section errors_sec Errors
 * Every fallible function returns ::QZ_OK (0) or a negative ::qz_status code.
 * Codes never change value; new ones are appended. Treat an unknown negative
 * code as a generic failure. qz_strerror() gives the static text of a code,
 * qz_errmsg() the detailed message of the last failure on the calling thread.
 * A call that fails changes nothing that is stored, with one exception: a
 * write that was already applied when making it durable failed (the storage
 * failed a log write or commit, or memory ran out while committing). Such a
 * failure sticks: the handle then refuses every write, flush and close with
 * the same code and message, reads go on, and a reopen shows that write
 * whole or not at all (a transaction too), with every write acknowledged
 * before it.
 *
 * @section threads_sec Thread safety
 * Unless a function says otherwise:
 * - A ::qz_db handle may be shared by any number of threads. Searches and
 *   gets run concurrently with each other AND with inserts, upserts and
 *   deletes. Inserts into one handle also run in parallel with each other.
 *   A search that runs concurrently with writes sees each write either fully
 *   or not at all: a vector being inserted is not returned until its links
 *   are in place, a deleted id is never returned after qz_db_delete()
 *   returned, and an upserted id is returned at most once.
 * - qz_db_close() must not race with any other call on the same handle.
 * - Callbacks (search filters) run on the calling thread, except under
 *   qz_db_search_batch() which calls them from its worker threads too, and
 *   must not call back into the same database.
 *
 * Threads the library starts (libuv's threadpool paragraph is the model):
 * - a durable database (a directory, or qz_db_open_storage() in BATCHED or
 *   NONE mode) has one background thread for its lifetime: it writes and
 *   fsyncs the log (directories), commits pending writes to the storage
 *   backend, and brings the graph snapshot up to date (checkpoints). It is
 *   started by the open and joined by qz_db_close(). In-memory databases
 *   and SYNC databases over a backend without a log start none.
 * - qz_db_insert_batch(), qz_db_search_batch() and the load at open run on up to
 *   qz_open_options::threads threads (the calling thread included), started
 *   and joined within the call.
 *
 * @section caveats_sec Caveats
 * - Search is approximate: raise ef (qz_search_params::ef) for more recall.
 * - Deleted vectors are unlinked from the graph lazily, in batches, when
 *   enough deletions have accumulated (or at qz_db_compact()); until then they
 *   still guide the search but are never returned. The batch repair briefly
 *   pauses other calls on the handle.
 * - Vectors must be finite; under ::QZ_METRIC_COSINE they must not be zero.
 *   Any finite non-zero vector is accepted: tiny (denormal) and huge
 *   components are normalised without underflow or overflow.
 * - A durable database keeps its graph on disk as a snapshot that is brought
 *   up to date in the background (::QZ_PARAM_CHECKPOINT_WRITES,
 *   ::QZ_PARAM_CHECKPOINT_MS) and at close, so an open after a crash
 *   re-inserts only the writes since the last checkpoint.
 */

/** @name Version
 * @{ */
#define QZ_VERSION_MAJOR 1 /**< Incompatible ABI changes bump this. */
#define QZ_VERSION_MINOR 1 /**< Compatible additions bump this. */
#define QZ_VERSION_PATCH 0 /**< Fixes bump this. */
/** Single number: major*10000 + minor*100 + patch. */
#define QZ_VERSION_NUMBER (QZ_VERSION_MAJOR * 10000 + QZ_VERSION_MINOR * 100 + QZ_VERSION_PATCH)
/** @cond INTERNAL */
#define QZ__STR2(x) #x
#define QZ__STR(x) QZ__STR2(x)
/** @endcond */
/** Version as "major.minor.patch". */
#define QZ_VERSION_STRING QZ__STR(QZ_VERSION_MAJOR) "." QZ__STR(QZ_VERSION_MINOR) "." QZ__STR(QZ_VERSION_PATCH)
/** @} */

/** Marks an exported function (default visibility; dllexport/dllimport on Windows). */
#if defined(_WIN32) && defined(QZ_BUILDING_DLL)
#define QZ_API __declspec(dllexport)
#elif defined(_WIN32) && defined(QZ_DLL)
#define QZ_API __declspec(dllimport)
#elif defined(__GNUC__) || defined(__clang__)
#define QZ_API __attribute__((visibility("default")))
#else
#define QZ_API
#endif

/** Status codes. ::QZ_OK is 0; every error is negative and never changes. */
typedef enum qz_status {
    QZ_OK = 0,            /**< Success. */
    QZ_EINVAL = -1,       /**< Invalid argument (NULL pointer, bad flag, bad option). */
    QZ_ENOMEM = -2,       /**< Out of memory. */
    QZ_ENOTFOUND = -3,    /**< No vector or key with that id. */
    QZ_EEXISTS = -4,      /**< The id already exists (insert, not upsert). */
    QZ_EIO = -5,          /**< The storage layer failed (disk, LMDB, host). */
    QZ_ECORRUPT = -6,     /**< Stored data failed a checksum or invariant. */
    QZ_EFULL = -7,        /**< A hard limit was reached (ids, capacity, disk). */
    QZ_EBUSY = -8,        /**< Resource is held by someone else (another writer). */
    QZ_EVERSION = -9,     /**< Struct size or on-disk format not supported. */
    QZ_EDIM = -10,        /**< Vector dimension does not match the database. */
    QZ_EUSER = -11,       /**< Reserved for callbacks that stop an operation. */
    QZ_ENONFINITE = -12,  /**< A vector component is NaN or infinite. */
    QZ_EZEROVEC = -13,    /**< All-zero vector where the metric needs a norm (cosine). */
    QZ_ERANGE = -14,      /**< A number is outside its documented range (k, ef, M...). */
    QZ_ETOOSMALL = -15,   /**< Caller's output buffer is too small; the needed size is reported. */
    QZ_EREADONLY = -16,   /**< Write on a database opened read-only. */
    QZ_EUNSUPPORTED = -17 /**< Feature not available in this build or on this CPU. */
} qz_status;

/** Distance metrics. Values are stored on disk and never change. */
typedef enum qz_metric {
    QZ_METRIC_DEFAULT = 0, /**< Same as ::QZ_METRIC_COSINE. */
    QZ_METRIC_COSINE = 1,  /**< 1 - cosine similarity. */
    QZ_METRIC_L2 = 2,      /**< Squared Euclidean distance. */
    QZ_METRIC_IP = 3,      /**< 1 - inner product. */
    QZ_METRIC_HAMMING = 4  /**< Differing bits of the binarised vectors (x > 0 is 1). */
} qz_metric;

/**
 * Element type of the codes the graph is searched on (qz_open_options::dtype).
 * Values are stored on disk and never change.
 *
 * Every database keeps each vector's f32 original (normalised under
 * ::QZ_METRIC_COSINE) in memory and, for directories, in storage:
 * qz_db_get() returns it (with ::QZ_OPEN_ORIGINALS_IN_STORAGE f16 and int8
 * databases keep it in storage only). With ::QZ_DTYPE_F16, ::QZ_DTYPE_INT8 or
 * ::QZ_DTYPE_BINARY the index also holds a compact code per vector beside
 * its links; a search walks the graph on the codes, then re-ranks the
 * nearest k * qz_search_params::oversample candidates exactly against the
 * originals, so the distances it returns are exact. The graph itself is
 * built with exact distances (on the codes when the originals stay in
 * storage). The dtype is fixed when a database is
 * created and recorded in it: opening it with another non-zero dtype fails
 * with ::QZ_EINVAL (the message names both). ::QZ_METRIC_HAMMING always
 * stores bits and takes only ::QZ_DTYPE_DEFAULT.
 */
typedef enum qz_dtype {
    QZ_DTYPE_DEFAULT = 0, /**< f32, or bits under Hamming. */
    QZ_DTYPE_F32 = 1,     /**< 32-bit IEEE floats; no codes, no re-ranking. */
    /** IEEE half precision per component (2 bytes); components beyond
     *  +-65504 saturate in the code (re-ranking uses the originals).
     *  Default oversample 2. @since 1.1 */
    QZ_DTYPE_F16 = 2,
    /** 8 bits per component with a per-vector offset and scale (dimensions
     *  + 16 bytes): the code's distance is the exact distance of the decoded
     *  vector under cosine, L2 and inner product. Default oversample 3.
     *  @since 1.1 */
    QZ_DTYPE_INT8 = 3,
    /** 1 bit per component (component > 0 under cosine and inner product,
     *  > the vector's mean under L2), traversed by Hamming distance; useful
     *  with many dimensions and a large oversample. Default oversample 16.
     *  @since 1.1 */
    QZ_DTYPE_BINARY = 4
} qz_dtype;

/** @name Limits
 * @{ */
#define QZ_MAX_DIMENSIONS 65536u           /**< Largest vector dimension. */
#define QZ_MAX_K 10000u                    /**< Largest k for one search. */
#define QZ_MAX_EF 100000u                  /**< Largest ef (search or construction). */
#define QZ_MAX_M 256u                      /**< Largest M (links per node, upper layers). */
#define QZ_MAX_METADATA (16u * 1024 * 1024) /**< Largest metadata blob in bytes. */
#define QZ_MAX_OVERSAMPLE 1000u            /**< Largest qz_search_params::oversample. @since 1.1 */
/** @} */

/** @name Open flags (qz_open_options::flags)
 * @{ */
#define QZ_OPEN_READONLY 0x1u /**< Open an existing directory read-only. */
/** Open an existing database only: a directory (or backend) that holds no
 *  database gives ::QZ_ENOTFOUND and nothing is created. @since 1.1 */
#define QZ_OPEN_EXISTING 0x2u
/** Keep the f32 originals of a ::QZ_DTYPE_F16 or ::QZ_DTYPE_INT8 database
 *  in storage only, not in memory: the index then holds the codes beside
 *  the links (int8: dimensions + 16 bytes a vector instead of + 4 *
 *  dimensions more), so a database larger than RAM still searches on
 *  codes in memory. The graph is built and repaired on the codes; a search
 *  reads the originals of the k * oversample candidates it re-ranks from
 *  storage (pages the operating system caches and may evict), and
 *  qz_db_get() reads the one it returns. A write's original stays in memory
 *  from the write until the storage holds it (the next group commit).
 *  A per-open choice, not recorded: the same directory opens either way.
 *  A search that meets a record damaged in storage fails with
 *  ::QZ_ECORRUPT naming the id. Refused (::QZ_EINVAL) for in-memory
 *  databases, f32, binary and Hamming databases. @since 1.1 */
#define QZ_OPEN_ORIGINALS_IN_STORAGE 0x4u
/** @} */

/** Durability of writes to a database directory (qz_open_options::durability).
 *  In-memory databases ignore it. */
typedef enum qz_durability {
    QZ_DURABILITY_DEFAULT = 0, /**< ::QZ_DURABILITY_BATCHED with the default window. */
    QZ_DURABILITY_SYNC = 1,    /**< A write returns once it survives a crash. */
    QZ_DURABILITY_BATCHED = 2, /**< Written within batch_window_ms; a crash loses at most that window. */
    QZ_DURABILITY_NONE = 3     /**< Written at flush/close or when the log fills. */
} qz_durability;

/**
 * Options for qz_db_open(). Initialise with ::QZ_OPEN_OPTIONS_INIT or
 * qz_open_options_init(); every field left 0 takes its default.
 *
 * The struct starts with its own size so that it can grow without breaking
 * the ABI: the library reads the first struct_size bytes, defaults fields it
 * knows that lie beyond them, and refuses a larger struct whose unknown tail
 * is not all zero (::QZ_EVERSION).
 *
 * For an existing directory, dimensions, metric and dtype must be 0 or match
 * what is stored; M and ef_construction are taken from the store.
 */
typedef struct qz_open_options {
    uint32_t struct_size;      /**< sizeof(qz_open_options) as the caller compiled it. */
    uint32_t flags;            /**< QZ_OPEN_* bits; unknown bits are refused. */
    uint32_t dimensions;       /**< 1..65536; required for a new database. */
    uint32_t metric;           /**< ::qz_metric; 0 = cosine. */
    uint32_t dtype;            /**< ::qz_dtype; 0 = default. */
    uint32_t M;                /**< Links per node on upper layers (2..256); 0 = 16. Layer 0 has 2*M. */
    uint32_t ef_construction;  /**< Candidate list size while inserting (1..100000); 0 = 200. */
    uint32_t ef_search;        /**< Default search ef (1..100000); 0 = 64. */
    uint64_t initial_capacity; /**< Vectors to reserve room for; the index grows past it. 0 = 1024. */
    uint32_t durability;       /**< ::qz_durability (directories only). */
    uint32_t batch_window_ms;  /**< BATCHED window in ms; 0 = 100. */
    uint32_t threads;          /**< Threads for batch inserts and batch searches; 0 = all online cores. */
    uint32_t reserved0;        /**< Must be 0. */
    uint64_t seed;             /**< Seed of the level generator; 0 = fixed default. */
} qz_open_options;

/** Initialiser for a ::qz_open_options with every field at its default. */
#define QZ_OPEN_OPTIONS_INIT {(uint32_t)sizeof(qz_open_options), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/** A search filter: return nonzero to accept @p id as a result, 0 to skip it.
 *  It is called during graph traversal, so k accepted results are returned
 *  whenever k vectors pass the filter. It must not call into the database. */
typedef int (*qz_filter_fn)(uint64_t id, void *user);

/** Per-call search parameters; NULL or zero fields take the database defaults. */
typedef struct qz_search_params {
    uint32_t struct_size;  /**< sizeof(qz_search_params) as compiled by the caller. */
    uint32_t ef;           /**< Candidate list size; 0 = the database's ef_search. Raised to k if smaller. */
    qz_filter_fn filter;   /**< Optional filter on ids; NULL = accept all. */
    void *filter_user;     /**< Passed to @c filter. */
    /** Re-ranking factor of quantized databases (::QZ_DTYPE_F16, ::QZ_DTYPE_INT8,
     *  ::QZ_DTYPE_BINARY): the walk keeps at least k * oversample candidates
     *  (the candidate list is raised to that if ef is smaller) and the
     *  nearest k * oversample by code distance are measured again on the
     *  f32 originals (binary: every candidate of the list is, since bit
     *  distances rank too coarsely to cut). 0 = the dtype's default (f16 2,
     *  int8 3, binary 16);
     *  1..::QZ_MAX_OVERSAMPLE. Ignored by f32 and Hamming databases.
     *  Callers compiled against an older quartz.h (a smaller struct_size)
     *  get the default. @since 1.1 */
    uint32_t oversample;
    uint32_t reserved0; /**< Must be 0 (keeps the struct free of padding). @since 1.1 */
} qz_search_params;

/** Initialiser for ::qz_search_params. */
#define QZ_SEARCH_PARAMS_INIT {(uint32_t)sizeof(qz_search_params), 0, 0, 0, 0, 0}

/** Statistics filled by qz_db_stats(). Set struct_size before the call. */
typedef struct qz_stats {
    uint32_t struct_size;      /**< sizeof(qz_stats) as compiled by the caller. */
    uint32_t dimensions;       /**< Vector dimension. */
    uint32_t metric;           /**< ::qz_metric. */
    uint32_t dtype;            /**< ::qz_dtype actually stored. */
    uint32_t M;                /**< Graph degree parameter. */
    uint32_t ef_construction;  /**< Construction ef. */
    uint32_t ef_search;        /**< Default search ef. */
    uint32_t max_level;        /**< Highest graph layer in use. */
    uint64_t count;            /**< Live (searchable) vectors. */
    uint64_t deleted;          /**< Deleted vectors not yet unlinked from the graph. */
    uint64_t capacity;         /**< Vector slots currently allocated. */
    uint64_t memory_bytes;     /**< Heap memory held by the index, metadata and id map. */
    char simd[16];             /**< Active distance kernels, as qz_simd_backend(). */
    uint64_t open_reinserted;  /**< Vectors the open had to insert anew because the stored graph
                                    snapshot did not cover them (writes after the last checkpoint
                                    before a crash); 0 after a clean close. @since 1.1 */
} qz_stats;

/** Opaque database handle. See @ref threads_sec. */
typedef struct qz_db qz_db;

/** @name Version and errors
 * @{ */

/** Run-time version: major*10000 + minor*100 + patch.
 *  Thread safety: any thread. @since 1.0 */
QZ_API uint32_t qz_version_number(void);

/** Run-time version string, static storage. Thread safety: any thread. @since 1.0 */
QZ_API const char *qz_version_string(void);

/** Static English text for a status code; never NULL ("unknown error" for
 *  unknown codes). Thread safety: any thread. @since 1.0 */
QZ_API const char *qz_strerror(int status);

/** Detailed message of the last failure on the calling thread, such as
 *  "vector has 383 dimensions, database expects 384". Never NULL; "" when the
 *  last call on this thread succeeded. Valid until the next qz_ call on this
 *  thread. Use the return code, not this, to decide whether a call failed.
 *  Thread safety: thread-local. @since 1.0 */
QZ_API const char *qz_errmsg(void);

/** Name of the distance kernels in use: "avx512", "avx2", "neon", "simd128"
 *  or "scalar". Chosen once from the CPU; the environment variable QZ_SIMD
 *  (same names) may force a lower one. Thread safety: any thread. @since 1.0 */
QZ_API const char *qz_simd_backend(void);
/** Name of a metric: "cosine", "l2", "ip" or "hamming"; NULL for a value
 *  that is not a ::qz_metric (::QZ_METRIC_DEFAULT gives "cosine").
 *  Static storage. Thread safety: any thread. @since 1.1 */
QZ_API const char *qz_metric_name(uint32_t metric);
/** @} */

/** @name Options
 * @{ */

/** Set @p opts to all defaults with struct_size = @p size, for callers that
 *  cannot use ::QZ_OPEN_OPTIONS_INIT (ctypes, wasm).
 *  @return ::QZ_OK; ::QZ_EINVAL if @p opts is NULL; ::QZ_EVERSION if @p size
 *  is smaller than the first two fields. @since 1.0 */
QZ_API int qz_open_options_init(qz_open_options *opts, size_t size);

/** Same as qz_open_options_init() for ::qz_search_params. @since 1.0 */
QZ_API int qz_search_params_init(qz_search_params *params, size_t size);
/** @} */

/** @name Database
 * @{ */

/**
 * Open or create a database.
 * @param[in] path  Directory of a durable database (created if missing), or
 *                  NULL for an in-memory database.
 * @param[in] opts  Options; NULL only for an existing directory.
 * @param[out] out  Receives the handle; set to NULL on failure.
 * @return ::QZ_OK; ::QZ_EINVAL (NULL @p out, unknown flags, reserved fields);
 *   ::QZ_ERANGE (dimensions, M, ef out of range); ::QZ_EVERSION (struct_size
 *   0 or a larger struct with a non-zero unknown tail; newer on-disk format);
 *   ::QZ_EDIM (dimensions differ from the stored ones); ::QZ_EBUSY (another
 *   process has the directory open for writing); ::QZ_EIO; ::QZ_ECORRUPT;
 *   ::QZ_ENOMEM; ::QZ_ENOTFOUND (::QZ_OPEN_READONLY or ::QZ_OPEN_EXISTING and
 *   the directory holds no database; nothing is created); ::QZ_EUNSUPPORTED
 *   (directory given to a build without durable directories).
 * Thread safety: any thread. @since 1.0
 */
QZ_API int qz_db_open(const char *path, const qz_open_options *opts, qz_db **out);

/**
 * Close a database, flushing pending writes, and free the handle. The handle
 * is freed even when an error is returned. @p db may be NULL.
 * @return ::QZ_OK, or ::QZ_EIO when the final flush failed (the handle is freed anyway).
 * Thread safety: no other call on @p db may run concurrently or follow. @since 1.0
 */
QZ_API int qz_db_close(qz_db *db);

/**
 * Insert a vector under a new id.
 * @param[in] db        Handle.
 * @param[in] id        Any 64-bit id not already present.
 * @param[in] vector    @p dims floats.
 * @param[in] dims      Must equal the database's dimensions (else ::QZ_EDIM).
 * @param[in] meta      Optional metadata bytes (JSON by convention); NULL if @p meta_len is 0.
 * @param[in] meta_len  Bytes of metadata, at most ::QZ_MAX_METADATA.
 * @return ::QZ_OK; ::QZ_EINVAL (NULL db/vector, NULL meta with meta_len > 0);
 *   ::QZ_EDIM; ::QZ_EEXISTS; ::QZ_ENONFINITE; ::QZ_EZEROVEC (cosine); ::QZ_ERANGE
 *   (metadata too long); ::QZ_EREADONLY; ::QZ_ENOMEM; ::QZ_EFULL; ::QZ_EIO.
 * The vector is searchable when the call returns.
 * Thread safety: concurrent with every call but qz_db_close(). @since 1.0
 */
QZ_API int qz_db_insert(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta,
                        size_t meta_len);

/**
 * Insert, or replace the vector and metadata of an existing id.
 * Errors as qz_db_insert() except ::QZ_EEXISTS. A concurrent search returns
 * the id with the old or the new vector, never both.
 * Thread safety: as qz_db_insert(). @since 1.0
 */
QZ_API int qz_db_upsert(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta,
                        size_t meta_len);

/** @name Batch flags
 * @{ */
#define QZ_BATCH_UPSERT 0x1u /**< Replace existing ids instead of failing with ::QZ_EEXISTS. */
/** @} */

/**
 * Insert @p n vectors using all configured threads (qz_open_options::threads).
 * The arguments of every row, the ids (distinct, and absent unless
 * ::QZ_BATCH_UPSERT) and the room for all rows are checked before anything
 * changes: on such an error nothing is inserted, and qz_errmsg() names the
 * offending row. The batch holds the write locks of all its ids (for a
 * batch over more than a few ids, the database's writer lock) from that
 * check to its end, so no other writer can invalidate it meanwhile. A
 * failure while the rows are applied (::QZ_EIO from storage, ::QZ_ENOMEM
 * inside the index) stops the batch with the rows applied so far kept;
 * qz_errmsg() names the row.
 * @param[in] db         Handle.
 * @param[in] n          Number of rows (0 is a no-op).
 * @param[in] ids        @p n ids, distinct.
 * @param[in] vectors    @p n rows of @p dims floats, row-major, contiguous.
 * @param[in] dims       Row length; must equal the database's dimensions.
 * @param[in] metas      Optional array of @p n metadata pointers (NULL = none).
 * @param[in] meta_lens  Optional array of @p n lengths (required with @p metas).
 * @param[in] flags      0 or ::QZ_BATCH_UPSERT.
 * @return as qz_db_insert(); ::QZ_EEXISTS also for an id repeated inside the batch.
 * Durability: rows are logged one by one, so after a crash any subset of
 * the rows of a batch that was still being written may be present; use a
 * transaction (qz_txn_begin()) for all-or-nothing. Once the call returned,
 * the whole batch is as durable as the durability mode promises.
 * Thread safety: as qz_db_insert(); searches and gets run meanwhile; other writers
 * wait for the batch (small batches: only writers of the batch's ids). @since 1.0
 */
QZ_API int qz_db_insert_batch(qz_db *db, size_t n, const uint64_t *ids, const float *vectors, size_t dims,
                              const void *const *metas, const size_t *meta_lens, uint32_t flags);

/**
 * Delete a vector. It is never returned by a search that starts after this
 * call returns; its slot is reused once it has been unlinked.
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_ENOTFOUND; ::QZ_EREADONLY; ::QZ_EIO.
 * Thread safety: as qz_db_insert(). @since 1.0
 */
QZ_API int qz_db_delete(qz_db *db, uint64_t id);

/**
 * Read the vector and metadata stored under @p id.
 * @param[in]  db        Handle.
 * @param[in]  id        The id to read.
 * @param[out] vector    NULL, or room for @p vector_cap floats.
 * @param[in]  vector_cap Floats that fit in @p vector (>= dimensions when @p vector is not NULL).
 * @param[out] meta      NULL, or a buffer of @p meta_cap bytes.
 * @param[in]  meta_cap  Size of @p meta.
 * @param[out] meta_len  NULL, or receives the metadata length (also on ::QZ_ETOOSMALL).
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_ENOTFOUND; ::QZ_ETOOSMALL (@p vector_cap
 *   below the dimensions, or @p meta too small: nothing is written to the
 *   buffers, *meta_len tells the size needed).
 * Thread safety: concurrent with every call but qz_db_close(). @since 1.0
 */
QZ_API int qz_db_get(qz_db *db, uint64_t id, float *vector, size_t vector_cap, void *meta, size_t meta_cap,
                     size_t *meta_len);

/** 1 if @p id is present, 0 if not, negative on error (::QZ_EINVAL). @since 1.0 */
QZ_API int qz_db_contains(qz_db *db, uint64_t id);

/**
 * Top-k nearest neighbours of @p query, nearest first.
 * @param[in]  db         Handle.
 * @param[in]  query      @p dims floats.
 * @param[in]  dims       Must equal the database's dimensions (else ::QZ_EDIM).
 * @param[in]  k          1..::QZ_MAX_K. A k above the live count returns them all.
 * @param[in]  params     NULL for defaults.
 * @param[out] ids        Room for @p k ids.
 * @param[out] distances  NULL, or room for @p k distances (see @ref dist_sec).
 * @param[out] found      Receives how many results were written (<= k).
 * @return ::QZ_OK; ::QZ_EINVAL (NULL pointers); ::QZ_EVERSION
 *   (params->struct_size 0, too small, or a larger struct with a non-zero
 *   unknown tail); ::QZ_EDIM; ::QZ_ERANGE (k = 0 or > ::QZ_MAX_K, ef > ::QZ_MAX_EF);
 *   ::QZ_ENONFINITE; ::QZ_EZEROVEC (cosine); ::QZ_ENOMEM.
 * Thread safety: concurrent with every call but qz_db_close(). @since 1.0
 */
QZ_API int qz_db_search(qz_db *db, const float *query, size_t dims, size_t k,
                        const qz_search_params *params, uint64_t *ids, float *distances, size_t *found);

/**
 * Top-k nearest neighbours of each of @p nq queries, in one call. Row i of
 * the results is exactly what qz_db_search() returns for row i of
 * @p queries with the same @p k and @p params (same ef, same filter) on a
 * database that does not change meanwhile.
 *
 * Every query is checked (dimensions, finite components, not all zero
 * under ::QZ_METRIC_COSINE) before any search runs; on such an error
 * nothing is searched and qz_errmsg() names the failing row ("query row
 * 17 component 3 is NaN").
 *
 * @param[in]  db         Handle.
 * @param[in]  queries    @p nq rows of @p dims floats, row-major, contiguous
 *                        (may be NULL only when @p nq is 0).
 * @param[in]  nq         Number of queries; 0 is a no-op that returns ::QZ_OK.
 * @param[in]  dims       Row length; must equal the database's dimensions (else ::QZ_EDIM).
 * @param[in]  k          1..::QZ_MAX_K results per query.
 * @param[in]  params     NULL for defaults; the same for every query.
 * @param[out] ids        Room for @p nq * @p k ids, row-major: row i starts at ids[i * k].
 * @param[out] distances  NULL, or room for @p nq * @p k distances laid out like @p ids.
 * @param[out] counts     Room for @p nq counts: counts[i] is the number of
 *                        results of row i (<= k). The slots of row i past
 *                        counts[i] are set to UINT64_MAX in @p ids and
 *                        +INFINITY in @p distances. The counts are
 *                        authoritative: UINT64_MAX is a valid id, so a
 *                        caller tells padding from a result by the count only.
 * @return ::QZ_OK; ::QZ_EINVAL (NULL db, ids, counts, or queries with
 *   @p nq > 0); ::QZ_EVERSION (params); ::QZ_EDIM; ::QZ_ERANGE (k, ef, or
 *   @p nq * @p k overflowing size_t); ::QZ_ENONFINITE; ::QZ_EZEROVEC;
 *   ::QZ_ENOMEM (qz_errmsg() names the row; rows not searched then have
 *   count 0 and padded slots).
 *
 * Threads: the queries are spread over up to qz_open_options::threads
 * threads, the calling thread included, started and joined within the
 * call; a small batch (under 8 queries) runs on the calling thread only.
 * A filter (qz_search_params::filter) is therefore called from several
 * threads at once and must be safe for that; qz_filter_ids() is.
 * Thread safety: as qz_db_search(). @since 1.1
 */
QZ_API int qz_db_search_batch(qz_db *db, const float *queries, size_t nq, size_t dims, size_t k,
                              const qz_search_params *params, uint64_t *ids, float *distances, size_t *counts);

/** @name Id-set filter
 * A ready-made search filter that accepts the ids of a sorted array, for
 * callers (language bindings) that must not run a callback of their own
 * per candidate:
 * @code
 * qz_id_set set;
 * qz_id_set_init(&set, sizeof set, allowed, n_allowed, 0);   // allowed[] sorted ascending
 * qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
 * sp.filter = qz_filter_ids;
 * sp.filter_user = &set;
 * @endcode
 * @{ */

/** Accept the ids that are NOT in the set (a deny list). */
#define QZ_ID_SET_EXCLUDE 0x1u

/** A sorted array of ids, read by qz_filter_ids(). Fill it with
 *  qz_id_set_init(). The array is the caller's: it is not copied and must
 *  stay unchanged while a search uses the set. @since 1.1 */
typedef struct qz_id_set {
    uint32_t struct_size; /**< sizeof(qz_id_set) as compiled by the caller. */
    uint32_t flags;       /**< 0 (accept the ids in the set) or ::QZ_ID_SET_EXCLUDE. */
    const uint64_t *ids;  /**< @c count ids in ascending order (repeats allowed). */
    size_t count;         /**< Number of ids. */
} qz_id_set;

/**
 * Check @p ids and fill @p set to refer to them.
 * @param[out] set          The set to fill.
 * @param[in]  struct_size  sizeof(qz_id_set) as the caller compiled it.
 * @param[in]  ids          @p count ids sorted ascending; NULL only when @p count is 0.
 * @param[in]  count        Number of ids (0: the set is empty and accepts
 *                          nothing, or everything with ::QZ_ID_SET_EXCLUDE).
 * @param[in]  flags        0 or ::QZ_ID_SET_EXCLUDE; other bits are refused.
 * @return ::QZ_OK; ::QZ_EINVAL (NULL @p set, NULL @p ids with @p count > 0,
 *   unknown flags, @p ids not ascending: qz_errmsg() names the position);
 *   ::QZ_EVERSION (@p struct_size smaller than the struct).
 * Thread safety: any thread. @since 1.1
 */
QZ_API int qz_id_set_init(qz_id_set *set, size_t struct_size, const uint64_t *ids, size_t count, uint32_t flags);

/**
 * A ::qz_filter_fn over a ::qz_id_set: @p user is a `const qz_id_set *`
 * filled by qz_id_set_init(). Returns nonzero when @p id is in the set
 * (not in it with ::QZ_ID_SET_EXCLUDE). Binary search, O(log count); it
 * runs in C, so a binding passes this function's address and the set, and
 * no code of its own runs per candidate.
 * Thread safety: any number of threads may use one set at once (it is only
 * read). @since 1.1
 */
QZ_API int qz_filter_ids(uint64_t id, void *user);
/** @} */

/**
 * Fill @p out with statistics. Set out->struct_size first; fields beyond it
 * are not written.
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_EVERSION (struct_size too small).
 * Thread safety: concurrent with every call but qz_db_close(). @since 1.0
 */
QZ_API int qz_db_stats(qz_db *db, qz_stats *out);

/**
 * Unlink every deleted vector from the graph now and make its slot reusable,
 * instead of waiting for the automatic batch repair.
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_ENOMEM; ::QZ_EREADONLY.
 * Thread safety: as qz_db_insert(); other calls wait while it runs. @since 1.0
 */
QZ_API int qz_db_compact(qz_db *db);

/**
 * Make every write acknowledged so far durable and compact on disk: the log
 * is fsynced and applied to the storage backend (LMDB for directories),
 * deleted vectors are unlinked, and the chunks of the graph snapshot that
 * changed are rewritten (so the next open loads the graph instead of
 * inserting). In-memory databases: only the key-value store is involved.
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_EIO. Once the storage failed, every
 *   later write, flush and close of the handle returns the same ::QZ_EIO
 *   (what reached storage before the failure stays durable).
 * Thread safety: any thread; writes wait while it runs, searches do not. @since 1.0
 */
QZ_API int qz_db_flush(qz_db *db);

/** Keys of qz_db_set_param(). */
typedef enum qz_param {
    QZ_PARAM_EF_SEARCH = 1,         /**< Default search ef, 1..::QZ_MAX_EF. */
    QZ_PARAM_CHECKPOINT_WRITES = 2, /**< Durable databases: bring the graph snapshot up to date after this
                                         many writes (1..2^31-1; default 10,000). @since 1.1 */
    QZ_PARAM_CHECKPOINT_MS = 3      /**< ... or once the oldest write not in it is this old, in ms
                                         (1..86,400,000; default 30,000). @since 1.1 */
} qz_param;

/**
 * Change a run-time tunable.
 * @return ::QZ_OK; ::QZ_EINVAL (unknown key); ::QZ_ERANGE.
 * Thread safety: any thread; searches already running keep the old value. @since 1.0
 */
QZ_API int qz_db_set_param(qz_db *db, int key, int64_t value);

/**
 * Check the index's invariants: every link points at an allocated node,
 * degrees are within bounds, the id map and the nodes agree, and stored
 * vectors are finite. For a directory database also what is stored: every
 * vector and key-value record verifies against its checksum, and the vector
 * records are exactly the live ids, one each (writes not yet applied to the
 * storage are applied first). Writers wait while it runs.
 * @return ::QZ_OK; ::QZ_ECORRUPT with a message naming the first violation;
 *   ::QZ_EIO when the storage cannot be read.
 * Thread safety: as qz_db_compact(). @since 1.0
 */
QZ_API int qz_db_check(qz_db *db);
/** @} */

/** @name Key-value store
 * Byte keys (1..511 bytes) to byte values (up to ::QZ_MAX_METADATA bytes),
 * beside the vectors, under the same durability mode. Keys sort bytewise.
 * @{ */

/** Largest key of the key-value store, in bytes. */
#define QZ_MAX_KEY 511u

/**
 * Store @p val under @p key, replacing any previous value.
 * @return ::QZ_OK; ::QZ_EINVAL (NULL db/key, NULL val with vlen > 0);
 *   ::QZ_ERANGE (klen 0 or > ::QZ_MAX_KEY, vlen > ::QZ_MAX_METADATA);
 *   ::QZ_EREADONLY; ::QZ_ENOMEM; ::QZ_EIO.
 * Thread safety: any thread. @since 1.0
 */
QZ_API int qz_kv_put(qz_db *db, const void *key, size_t klen, const void *val, size_t vlen);

/**
 * Read the value of @p key into @p buf.
 * @param[in]  db    Handle.
 * @param[in]  key   Key bytes.
 * @param[in]  klen  Key length, 1..::QZ_MAX_KEY.
 * @param[out] buf   Receives the value; may be NULL when @p cap is 0 (to ask the length).
 * @param[in]  cap   Size of @p buf.
 * @param[out] vlen  Receives the value's length (also on ::QZ_ETOOSMALL).
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_ERANGE; ::QZ_ENOTFOUND;
 *   ::QZ_ETOOSMALL (nothing written to @p buf); ::QZ_ECORRUPT; ::QZ_EIO.
 * Thread safety: any thread. @since 1.0
 */
QZ_API int qz_kv_get(qz_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);

/** Remove @p key. @return ::QZ_OK; ::QZ_EINVAL; ::QZ_ERANGE; ::QZ_ENOTFOUND;
 *  ::QZ_EREADONLY; ::QZ_EIO. Thread safety: any thread. @since 1.0 */
QZ_API int qz_kv_delete(qz_db *db, const void *key, size_t klen);

/** Callback of qz_kv_scan(): return 0 to go on, nonzero to stop (the value is
 *  returned by qz_kv_scan()). The pointers are valid during the call only. */
typedef int (*qz_kv_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *user);

/**
 * Visit every key starting with @p prefix (plen may be 0: all keys) in
 * ascending byte order.
 * @return ::QZ_OK; the callback's nonzero value; ::QZ_EINVAL; ::QZ_ECORRUPT; ::QZ_EIO.
 * Thread safety: any thread; the callback must not write to @p db. @since 1.0
 */
QZ_API int qz_kv_scan(qz_db *db, const void *prefix, size_t plen, qz_kv_scan_fn fn, void *user);
/** @} */

/** @name Atomic batches
 * A transaction groups vector and key-value writes that reach the disk
 * together or not at all: after a crash either every write of a committed
 * transaction is present or none is. Nothing is applied before
 * qz_txn_commit(), which checks every operation first, so a failed commit
 * changes nothing. Concurrent readers may observe a committing
 * transaction's writes one by one (there is no read isolation).
 * @{ */

/** Opaque transaction. Belongs to one thread at a time. */
typedef struct qz_txn qz_txn;

/** Start a transaction. @return ::QZ_OK; ::QZ_EINVAL; ::QZ_EREADONLY; ::QZ_ENOMEM.
 *  Thread safety: any thread; many transactions may be open at once. @since 1.0 */
QZ_API int qz_txn_begin(qz_db *db, qz_txn **out);

/** Add an upsert (errors as qz_db_upsert(), checked now). @since 1.0 */
QZ_API int qz_txn_upsert(qz_txn *txn, uint64_t id, const float *vector, size_t dims, const void *meta,
                         size_t meta_len);

/** Add a delete; the id must exist at commit (else the commit fails with ::QZ_ENOTFOUND). @since 1.0 */
QZ_API int qz_txn_delete(qz_txn *txn, uint64_t id);

/** Add a key-value put (errors as qz_kv_put()). @since 1.0 */
QZ_API int qz_txn_kv_put(qz_txn *txn, const void *key, size_t klen, const void *val, size_t vlen);

/** Add a key-value delete; absent keys are ignored. @since 1.0 */
QZ_API int qz_txn_kv_delete(qz_txn *txn, const void *key, size_t klen);

/**
 * Apply and commit every operation, then free @p txn (also on failure).
 * Waits for durability as a single write would.
 * @return ::QZ_OK; ::QZ_EINVAL; ::QZ_ENOTFOUND (a delete of a missing id);
 *   ::QZ_ENOMEM; ::QZ_EIO. On failure nothing was applied.
 * @since 1.0
 */
QZ_API int qz_txn_commit(qz_txn *txn);

/** Discard and free @p txn; NULL is allowed. @since 1.0 */
QZ_API void qz_txn_abort(qz_txn *txn);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* QUARTZ_H */
