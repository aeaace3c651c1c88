/*
 * dirlock.h - the one-writer lock of a database directory (internal).
 *
 * A file LOCK in the directory, held with flock(LOCK_EX | LOCK_NB) by the
 * one process that writes; read-only opens take no lock. The lock goes
 * away with the process, so a crash never leaves it held.
 */
#ifndef QZ_OS_DIRLOCK_H
#define QZ_OS_DIRLOCK_H

typedef struct qz__dirlock qz__dirlock;

/* Create the directory when missing (create != 0) and take its lock:
 * QZ_EBUSY if another process holds it, QZ_EIO / QZ_EFULL otherwise. */
int qz__dirlock_take(const char *dir, int create, qz__dirlock **out);
void qz__dirlock_release(qz__dirlock *l);

#endif
