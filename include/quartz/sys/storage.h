/**
 * @file quartz/sys/storage.h
 * @brief The storage backend interface, for people who
 * implement one (the LMDB backend, the in-memory backend, the wasm host
 * backend over Durable Object storage, test fault injectors).
 *
 * Applications that only use a database need quartz.h alone.
 *
 * A backend is a transactional, ordered byte-key/byte-value store split into
 * a few fixed tables. The write-behind log and the index rely on exactly the
 * guarantees written next to each method below, and on nothing else.
 */
#ifndef QUARTZ_SYS_STORAGE_H
#define QUARTZ_SYS_STORAGE_H

#include "../../quartz.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Tables of a backend. Values are stored on disk and never change. */
typedef enum qz_storage_table {
    QZ_TABLE_META = 0,    /**< Format version, options, counters. */
    QZ_TABLE_VECTORS = 1, /**< id (8 bytes, big-endian) -> vector record. */
    QZ_TABLE_GRAPH = 2,   /**< HNSW graph snapshot. */
    QZ_TABLE_KV = 3,      /**< The user's key-value store. */
    QZ_TABLE_COUNT = 4    /**< Number of tables. */
} qz_storage_table;

/** begin() flag: the transaction only reads. */
#define QZ_TXN_READONLY 0x1u

/** Opaque transaction of a backend. */
typedef struct qz_storage_txn qz_storage_txn;

/** Scan callback: return 0 to go on, nonzero to stop (that value is returned by scan()). */
typedef int (*qz_storage_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *user);

/**
 * A storage backend: a method table. Starts with its size so that methods can
 * be appended. Every method returns ::QZ_OK or a negative ::qz_status and, on
 * failure, may leave a message for qz_errmsg() through the library.
 *
 * Thread safety expected of a backend: at most one read-write transaction is
 * open at a time (the library serialises them); read-only transactions may
 * run on other threads concurrently with it and with each other.
 */
typedef struct qz_storage qz_storage;
/** The method table of a storage backend (see ::qz_storage). */
struct qz_storage {
    uint32_t struct_size; /**< sizeof(qz_storage) as the backend compiled it. */
    uint32_t flags;       /**< Backend's own flags. */
    void *user;           /**< Backend's private state. */

    /** Start a transaction. Readers see the state of the last commit. */
    int (*begin)(qz_storage *s, uint32_t flags, qz_storage_txn **txn);
    /** Look up @p key. *val stays valid until the transaction ends.
     *  ::QZ_ENOTFOUND when absent. */
    int (*get)(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen,
               const void **val, size_t *vlen);
    /** Insert or replace. Keys are 1..511 bytes; values any size. */
    int (*put)(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen,
               const void *val, size_t vlen);
    /** Remove @p key; ::QZ_ENOTFOUND when absent (the transaction stays usable). */
    int (*del)(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen);
    /** Visit keys starting with @p prefix (plen may be 0) in ascending byte order. */
    int (*scan)(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *prefix, size_t plen,
                qz_storage_scan_fn fn, void *user);
    /** Remove every key of @p table. */
    int (*clear)(qz_storage *s, qz_storage_txn *txn, uint32_t table);
    /** Make the transaction's writes visible. When it returns ::QZ_OK the
     *  writes survive a crash of this process; with a durable backend they
     *  also survive power loss. On failure nothing of the transaction
     *  remains. Ends the transaction either way. */
    int (*commit)(qz_storage *s, qz_storage_txn *txn);
    /** Discard the transaction's writes and end it. */
    void (*abort)(qz_storage *s, qz_storage_txn *txn);
    /** Force everything committed so far to stable storage. */
    int (*sync)(qz_storage *s);
    /** Release the backend; @p s is invalid afterwards. */
    void (*close)(qz_storage *s);
};

/**
 * Open or create a database whose durable state lives in the backend @p s
 * (for example a Durable Object's storage under WebAssembly, or a test
 * backend). Durability is the backend's: with ::QZ_DURABILITY_SYNC every
 * write returns once the backend committed it; with BATCHED the pending
 * writes are committed every batch_window_ms; with NONE at qz_db_flush() and
 * qz_db_close(). No log file and no directory are involved.
 *
 * The database does not take ownership of @p s: close the database first,
 * then the backend. The backend must stay valid until qz_db_close() returned
 * and must not be shared by two open databases.
 * @param[in]  s     A backend whose struct_size and methods are set.
 * @param[in]  opts  As for qz_db_open(); NULL only for an existing database.
 * @param[out] out   Receives the handle; NULL on failure.
 * @return as qz_db_open(); ::QZ_EINVAL also for a NULL @p s or a method
 *   table with a missing method; ::QZ_ENOTFOUND for ::QZ_OPEN_EXISTING or
 *   ::QZ_OPEN_READONLY on a backend that holds no database.
 * Thread safety: any thread. @since 1.1
 */
QZ_API int qz_db_open_storage(qz_storage *s, const qz_open_options *opts, qz_db **out);

#ifdef __cplusplus
}
#endif
#endif
