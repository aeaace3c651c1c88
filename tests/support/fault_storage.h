/*
 * fault_storage.h - a fault-injecting storage backend for tests.
 *
 * fault_storage_wrap() puts a method table (include/quartz/sys/storage.h)
 * in front of any backend (memory, LMDB, another wrapper). Every call is
 * passed through to the wrapped backend and counted, except the calls the
 * test asked to fail: those return the chosen code at once, without
 * reaching the wrapped backend, and leave a message for qz_errmsg() naming
 * the method and the call number ("fault storage: injected failure of
 * commit call 3 (QZ_EIO)").
 *
 * Injected failures keep the promises of storage.h, so the library sees a
 * backend that is unreliable but honest:
 *   - begin: *txn is set to NULL, no transaction is open;
 *   - get, put, del, scan, clear: nothing changes, the transaction stays
 *     open (the caller is expected to abort it, as after a real failure);
 *   - commit: the wrapped transaction is aborted, so nothing of it remains,
 *     and the transaction is ended, as storage.h asks of a failed commit;
 *   - sync: nothing else happens.
 * abort and close cannot fail and are only counted.
 *
 * Rules (per method): fail the n-th call from now once, or every call from
 * the n-th call from now on, with a chosen code; heal removes a method's
 * rule. fault_storage_read_errors() is the switch that makes every get and
 * scan fail with QZ_EIO. All functions are thread-safe (the wrapped backend
 * may be used by several threads, as storage.h allows).
 *
 * The wrapper is used by the durability tests through qz_db_open_storage():
 *     qz_storage *mem = NULL, *s = NULL;
 *     qz__storage_mem_open(&mem);
 *     fault_storage_wrap(mem, FAULT_STORAGE_OWN, &s);
 *     qz_db_open_storage(s, &opts, &db);
 *     fault_storage_fail_nth(s, FAULT_COMMIT, 1, QZ_EIO);   // the next commit fails
 *     ...
 *     qz_db_close(db);
 *     s->close(s);                                          // also closes mem
 */
#ifndef QZ_TEST_FAULT_STORAGE_H
#define QZ_TEST_FAULT_STORAGE_H

#include <stdint.h>

#include "quartz/sys/storage.h"

/* The methods a rule or a counter refers to. */
typedef enum fault_op {
    FAULT_BEGIN = 0,
    FAULT_GET,
    FAULT_PUT,
    FAULT_DEL,
    FAULT_SCAN,
    FAULT_CLEAR,
    FAULT_COMMIT,
    FAULT_ABORT, /* counted only: abort cannot fail */
    FAULT_SYNC,
    FAULT_OP_COUNT,
    FAULT_ALL = -1 /* fault_storage_heal() and fault_storage_reset_counts(): every method */
} fault_op;

/* fault_storage_wrap() flag: close() of the wrapper also closes the wrapped backend. */
#define FAULT_STORAGE_OWN 0x1u

/* Wrap @p inner. *out receives the wrapper's method table; release it with
 * (*out)->close(*out). Returns QZ_OK, QZ_EINVAL (NULL argument, unknown
 * flag, inner without every method) or QZ_ENOMEM. */
int fault_storage_wrap(qz_storage *inner, uint32_t flags, qz_storage **out);

/* 1 if @p s was made by fault_storage_wrap(). */
int fault_storage_is(const qz_storage *s);

/* The wrapped backend. */
qz_storage *fault_storage_inner(qz_storage *s);

/* The @p n-th call of @p op from now (n >= 1; 1 = the next one) fails with
 * @p code (a negative qz_status), once. Replaces the method's rule. */
void fault_storage_fail_nth(qz_storage *s, fault_op op, uint64_t n, int code);

/* The @p n-th call of @p op from now and every later one fail with
 * @p code, until fault_storage_heal(). n = 1: every call from now on. */
void fault_storage_fail_from(qz_storage *s, fault_op op, uint64_t n, int code);

/* Remove the rule of @p op (FAULT_ALL: of every method). Does not change
 * the read-error switch. */
void fault_storage_heal(qz_storage *s, fault_op op);

/* on != 0: every get and scan returns QZ_EIO (before any rule is looked
 * at) until it is switched off again. */
void fault_storage_read_errors(qz_storage *s, int on);

/* Calls of @p op so far, failed ones included (FAULT_ALL: of all methods). */
uint64_t fault_storage_calls(qz_storage *s, fault_op op);

/* Calls of @p op that were made to fail (FAULT_ALL: of all methods). */
uint64_t fault_storage_injected(qz_storage *s, fault_op op);

/* Transactions begun and not yet committed or aborted (a failed commit
 * ends its transaction too). Nonzero after a database was closed means a
 * leaked transaction. */
long fault_storage_open_txns(qz_storage *s);

/* Set the counters of @p op (FAULT_ALL: every method) to 0; rules that are
 * waiting count from the new zero as well. */
void fault_storage_reset_counts(qz_storage *s, fault_op op);

/* Name of a method ("begin", "get", ...), for messages. */
const char *fault_op_name(fault_op op);

#endif
