/* dirlock.c - flock()ed LOCK file of a database directory (dirlock.h). */
#include "os/dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

struct qz__dirlock {
    int fd;
};

int qz__dirlock_take(const char *dir, int create, qz__dirlock **out)
{
    *out = NULL;
    if (create && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return qz__err(errno == ENOSPC ? QZ_EFULL : QZ_EIO, "cannot create database directory %s: %s", dir,
                       strerror(errno));
    char *p = qz__strdup2(dir, "/LOCK");
    if (!p) return qz__err(QZ_ENOMEM, "out of memory locking %s", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int e = errno;
    qz__free(p);
    if (fd < 0) return qz__err(e == ENOSPC ? QZ_EFULL : QZ_EIO, "cannot open %s/LOCK: %s", dir, strerror(e));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        close(fd);
        if (e == EWOULDBLOCK || e == EAGAIN)
            return qz__err(QZ_EBUSY, "database directory %s is locked by another process", dir);
        return qz__err(QZ_EIO, "cannot lock %s/LOCK: %s", dir, strerror(e));
    }
    qz__dirlock *l = qz__malloc(sizeof *l);
    if (!l) {
        close(fd);
        return qz__err(QZ_ENOMEM, "out of memory locking %s", dir);
    }
    l->fd = fd;
    *out = l;
    return QZ_OK;
}

void qz__dirlock_release(qz__dirlock *l)
{
    if (!l) return;
    close(l->fd); /* releases the flock */
    qz__free(l);
}
