/*
 * auth.c - API keys. Sources: the key file (--key-file; one "KEY rw" or
 * "KEY ro" per line, '#' starts a comment) and the environment variable
 * QUARTZ_API_KEYS (the same entries separated by ';' or newlines). Both are
 * merged. SIGHUP re-reads the file; a file that fails to parse keeps the
 * old set. Lookups compare every configured key in constant time (the time
 * depends on the number and lengths of the configured keys only, never on
 * how much of a guess matched). Keys are never logged.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct key {
    char *k;
    size_t n;
    qd_role role;
} key;

typedef struct keyset {
    key *v;
    size_t n, cap;
} keyset;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static keyset current;

static void keyset_free(keyset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        /* Wipe key bytes before freeing them. */
        volatile char *p = s->v[i].k;
        for (size_t j = 0; j < s->v[i].n; j++) p[j] = 0;
        free(s->v[i].k);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Parse one entry "KEY ROLE"; blank and comment lines are skipped. */
static int parse_entry(keyset *s, char *line, const char *src, int lineno, char *err, size_t errcap)
{
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *tok[3] = {0};
    int nt = 0;
    for (char *p = strtok(line, " \t\r\n"); p; p = strtok(NULL, " \t\r\n")) {
        if (nt == 3) break;
        tok[nt++] = p;
    }
    if (nt == 0) return 0;
    if (nt != 2 || (strcmp(tok[1], "rw") != 0 && strcmp(tok[1], "ro") != 0)) {
        snprintf(err, errcap, "%s:%d: expected \"KEY rw\" or \"KEY ro\"", src, lineno);
        return -1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        key *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    key *k = &s->v[s->n];
    k->n = strlen(tok[0]);
    k->k = strdup(tok[0]);
    k->role = tok[1][1] == 'w' ? QD_ROLE_RW : QD_ROLE_RO;
    if (!k->k) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    s->n++;
    return 0;
}

static int parse_text(keyset *s, char *text, const char *seps, const char *src, char *err, size_t errcap)
{
    int lineno = 0;
    char *save = NULL;
    /* strtok_r with the entry separators, then parse_entry's own strtok. */
    for (char *e = strtok_r(text, seps, &save); e; e = strtok_r(NULL, seps, &save)) {
        lineno++;
        if (parse_entry(s, e, src, lineno, err, errcap) < 0) return -1;
    }
    return 0;
}

int qd_auth_load(const char *key_file, char *err, size_t errcap)
{
    keyset s = {0};
    if (key_file) {
        FILE *f = fopen(key_file, "r");
        if (!f) {
            snprintf(err, errcap, "cannot open key file %s: %s", key_file, strerror(errno));
            return -1;
        }
        char line[4096];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            if (parse_entry(&s, line, key_file, lineno, err, errcap) < 0) {
                fclose(f);
                keyset_free(&s);
                return -1;
            }
        }
        fclose(f);
    }
    const char *env = getenv("QUARTZ_API_KEYS");
    if (env && *env) {
        char *copy = strdup(env);
        if (!copy || parse_text(&s, copy, ";\n", "QUARTZ_API_KEYS entry", err, errcap) < 0) {
            free(copy);
            keyset_free(&s);
            return -1;
        }
        free(copy);
    }
    if (key_file && s.n == 0) {
        snprintf(err, errcap, "key file %s holds no key", key_file);
        keyset_free(&s);
        return -1;
    }
    pthread_rwlock_wrlock(&lock);
    keyset old = current;
    current = s;
    pthread_rwlock_unlock(&lock);
    keyset_free(&old);
    return 0;
}

bool qd_auth_enabled(void)
{
    pthread_rwlock_rdlock(&lock);
    bool on = current.n > 0;
    pthread_rwlock_unlock(&lock);
    return on;
}

size_t qd_auth_count(void)
{
    pthread_rwlock_rdlock(&lock);
    size_t n = current.n;
    pthread_rwlock_unlock(&lock);
    return n;
}

/* Constant time in the guess's content: every byte of the stored key is
 * touched whatever the guess is. */
static int ct_equal(const char *stored, size_t sn, const char *guess, size_t gn)
{
    unsigned diff = (unsigned)(sn != gn);
    for (size_t i = 0; i < sn; i++) {
        unsigned char g = gn ? (unsigned char)guess[i < gn ? i : 0] : 0;
        diff |= (unsigned)(g ^ (unsigned char)stored[i]);
    }
    return diff == 0;
}

qd_role qd_auth_check(const char *k, size_t kn)
{
    qd_role role = QD_ROLE_NONE;
    pthread_rwlock_rdlock(&lock);
    for (size_t i = 0; i < current.n; i++) {
        int eq = ct_equal(current.v[i].k, current.v[i].n, k, kn);
        /* No early exit: every key is compared. */
        if (eq && current.v[i].role > role) role = current.v[i].role;
    }
    pthread_rwlock_unlock(&lock);
    return role;
}
