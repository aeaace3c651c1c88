/*
 * storage.h - constructors of the built-in storage backends (internal).
 *
 * Both backends implement the method table of quartz/sys/storage.h with the
 * guarantees written there, plus these, which callers may rely on:
 *
 * - begin() of a read-write transaction blocks while another read-write
 *   transaction of the same backend is open (one writer at a time).
 * - A read-only transaction sees the state of the last commit before its
 *   begin(), for its whole life, whatever commits happen meanwhile.
 * - Value pointers returned by get() (and passed to scan callbacks) stay
 *   valid until the transaction ends or, inside a read-write transaction,
 *   until its next put/del/clear (LMDB's rule).
 * - Read-only transactions may be used and ended on any thread.
 *
 * LMDB backend, map growth: the map (the address range LMDB may use) grows
 * by itself, and MDB_MAP_FULL never reaches the caller. Two mechanisms:
 *   1. begin() of a write transaction doubles the map ahead of time when the
 *      used pages exceed 3/4 of it;
 *   2. every write transaction records its put/del/clear operations; if one
 *      of them or the commit hits MDB_MAP_FULL, the transaction is aborted,
 *      the map is doubled and the recorded operations are replayed in a new
 *      transaction, transparently to the caller.
 * mdb_env_set_mapsize() needs every transaction of the process to be
 * finished, so a resize waits until open read transactions end and holds
 * new ones back meanwhile (the ahead-of-time growth gives up after 20 ms;
 * the MAP_FULL one waits as long as it takes). Consequence: a thread must
 * not write while it still holds a read transaction of the same backend.
 */
#ifndef QZ_STORAGE_STORAGE_H
#define QZ_STORAGE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "quartz/sys/storage.h"

/* Flags of qz__storage_lmdb_open(). */
#define QZ__LMDB_READONLY 0x1u /* MDB_RDONLY: no write transactions, no directory creation */
#define QZ__LMDB_NOSYNC 0x2u   /* MDB_NOSYNC: commits are not fsynced (tests, bulk loads) */

/* Default initial LMDB map size: the file only grows as pages are used. */
#define QZ__LMDB_DEFAULT_MAP ((uint64_t)256 << 20)

/* In-memory backend: an ordered, copy-on-write (persistent) treap per table.
 * Readers hold a reference to the version that was current at their begin();
 * a write transaction works on a private copy of the touched paths, and
 * commit publishes it atomically. Thread-safe as quartz/sys/storage.h asks. */
int qz__storage_mem_open(qz_storage **out);

/* LMDB backend over the environment directory @p dir (created when missing
 * unless read-only): one named database per qz_storage_table.
 * Read-only: QZ_ENOTFOUND ("<dir> holds no database") when @p dir holds no
 * environment (see qz__storage_lmdb_exists()); nothing is created then.
 * QZ_ECORRUPT when the file is damaged in a way the open can see (meta
 * pages, table records, a truncated file, in read-write mode also malformed
 * free-page lists), QZ_EVERSION for another LMDB data format.
 *
 * Damage found later: a key or value lookup, scan, write or commit that
 * meets a damaged page returns QZ_ECORRUPT with a message naming the table,
 * never an abort() or a SIGSEGV/SIGBUS out of liblmdb (see "Fault guard" in
 * storage_lmdb.c for how, and its limits). When liblmdb had to be
 * interrupted (an assertion of liblmdb, or a fault in the file's mapping),
 * the backend is poisoned: every later call returns QZ_ECORRUPT at once;
 * close() still releases it, leaking the LMDB environment (and keeping its
 * writer lock) until the process exits if the interruption happened in a
 * write, in which case opening the same directory again in this process
 * gives QZ_EBUSY. Keys and values handed out are checked to lie inside
 * their page (an overflow value: inside the file), keys of a scan to come
 * in strict order, and a lookup that misses to be bracketed by its
 * neighbours, so that damage LMDB does not notice reads as QZ_ECORRUPT
 * rather than as a missing or extra key where that is visible. The
 * SIGBUS/SIGSEGV handlers this needs are process-wide and chain to the ones
 * installed before them. */
int qz__storage_lmdb_open(const char *dir, uint32_t flags, qz_storage **out);

/* Same, with an explicit initial map size in bytes (0 = default). An existing
 * environment keeps at least the size it already has. */
int qz__storage_lmdb_open_ex(const char *dir, uint32_t flags, uint64_t map_size, qz_storage **out);

/* 1 if @p dir holds an LMDB environment (a non-empty data file), else 0.
 * Callers use it instead of looking for LMDB's files themselves. */
int qz__storage_lmdb_exists(const char *dir);

/* Current map size of an LMDB backend in bytes (0 if @p s is not one). */
uint64_t qz__storage_lmdb_map_size(qz_storage *s);

/* WebAssembly builds only (storage_host.c): a backend whose methods call the
 * JS host's store registered under @p handle (bindings/wasm/host_storage.mjs). */
int qz__storage_host_open(int handle, qz_storage **out);

#endif
