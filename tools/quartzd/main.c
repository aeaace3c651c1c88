/*
 * main.c - quartzd: command line, the listening socket, the worker
 * threads, signals and the drain at SIGTERM.
 *
 * Threads: the socket is bound and listened on once, here. Each worker
 * thread then owns one event base and one evhttp (evhttp is not
 * thread-safe) and wraps the SAME listening fd in its own evconnlistener
 * (evhttp_bind_listener; LEV_OPT_REUSEABLE, and no LEV_OPT_CLOSE_ON_FREE,
 * because the fd is shared and main closes it last). Every worker's epoll
 * waits on the one accept queue; the kernel wakes a worker and the others
 * see EAGAIN on their non-blocking accept, which libevent ignores. This
 * keeps one socket, one port and one accept queue (no SO_REUSEPORT, whose
 * per-socket queues would strand connections queued on a worker that stops
 * first at shutdown), and a connection then stays on the worker that
 * accepted it. All workers share one qz_db per index.
 *
 * Signals are blocked in every thread and taken synchronously by main with
 * sigwait(): SIGHUP reloads the keys, SIGTERM/SIGINT start the drain: every
 * worker stops accepting, finishes the requests it has (their responses
 * carry Connection: close), and exits its loop once nothing is pending;
 * then every index is flushed and closed and the process exits 0.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define DRAIN_MAX_NS (10ull * 1000000000ull)

qd_config qd_cfg = {
    .listen = "127.0.0.1:8787",
    .data_dir = "./quartz-data",
    .key_file = NULL,
    .durability = QZ_DURABILITY_SYNC,
    .threads = 0,
    .max_body = 32u * 1024 * 1024,
    .max_batch = 10000,
};
atomic_int qd_draining;

typedef struct worker {
    pthread_t tid;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *stop, *tick;
    qd_thread *t;
    uint64_t drain_start;
} worker;

static void usage(FILE *f)
{
    fputs("Usage: quartzd [OPTIONS]\n"
          "\n"
          "The QuartzDB REST server (docs/rest-api.md, docs/quartzd.md). Runs in the\n"
          "foreground and logs one JSON line per request to standard error.\n"
          "\n"
          "Options:\n"
          "  --listen HOST:PORT       address to listen on (default 127.0.0.1:8787)\n"
          "  --data DIR               data directory; indexes live in DIR/indexes/NAME\n"
          "                           (default ./quartz-data)\n"
          "  --key-file FILE          API keys, one \"KEY rw\" or \"KEY ro\" per line, '#' comments;\n"
          "                           re-read on SIGHUP. QUARTZ_API_KEYS adds keys in the same\n"
          "                           format, separated by ';' or newlines. Without any key the\n"
          "                           server is open and listens on loopback only.\n"
          "  --durability MODE        sync (default: every acknowledged write survives a crash),\n"
          "                           batched (fsync every 100 ms) or none (fsync at exit)\n"
          "  --threads N              worker threads (default: the number of online cores)\n"
          "  --max-body BYTES         largest request body, K/M/G suffixes allowed (default 32M)\n"
          "  --max-batch N            most vectors in one batch-insert, or ids in one bulk\n"
          "                           get/delete (default 10000)\n"
          "  -h, --help               show this help\n"
          "  -V, --version            show the version\n"
          "\n"
          "Signals: SIGTERM/SIGINT drain in-flight requests, flush every index and exit 0;\n"
          "SIGHUP reloads the key file. Exit status: 0 clean shutdown, 1 runtime error,\n"
          "2 usage or configuration error.\n",
          f);
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return -1;
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024ull, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024ull * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024ull * 1024 * 1024, end++;
    if (*end) return -1;
    if (v > (unsigned long long)SIZE_MAX / mul) return -1;
    *out = (size_t)(v * mul);
    return 0;
}

static void log_msg(const char *level, const char *msg)
{
    jbuf b = {0};
    jb_lit(&b, "{\"level\":");
    jb_cstr(&b, level);
    jb_lit(&b, ",\"msg\":");
    jb_cstr(&b, msg);
    jb_lit(&b, "}\n");
    if (!b.oom && write(2, b.p, b.len) < 0) {
    }
    free(b.p);
}

static int die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "quartzd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'quartzd --help'.\n");
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("quartzd %s (libquartz %s)\n", QZ_VERSION_STRING, qz_version_string());
            exit(0);
        }
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        char name[32];
        if (strncmp(a, "--", 2) != 0) return die_usage("unexpected argument '%s'", a);
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
            if (i + 1 >= argc) return die_usage("option '%s' needs a value", a);
            val = argv[++i];
        }
        size_t sz;
        if (strcmp(name, "--listen") == 0) qd_cfg.listen = val;
        else if (strcmp(name, "--data") == 0) qd_cfg.data_dir = val;
        else if (strcmp(name, "--key-file") == 0) qd_cfg.key_file = val;
        else if (strcmp(name, "--durability") == 0) {
            if (strcmp(val, "sync") == 0) qd_cfg.durability = QZ_DURABILITY_SYNC;
            else if (strcmp(val, "batched") == 0) qd_cfg.durability = QZ_DURABILITY_BATCHED;
            else if (strcmp(val, "none") == 0) qd_cfg.durability = QZ_DURABILITY_NONE;
            else return die_usage("--durability must be sync, batched or none, not '%s'", val);
        } else if (strcmp(name, "--threads") == 0) {
            if (parse_size(val, &sz) < 0 || sz < 1 || sz > 256) return die_usage("--threads must be 1..256, not '%s'", val);
            qd_cfg.threads = (unsigned)sz;
        } else if (strcmp(name, "--max-body") == 0) {
            if (parse_size(val, &sz) < 0 || sz < 1024) return die_usage("--max-body must be a size of at least 1024 bytes, not '%s'", val);
            qd_cfg.max_body = sz;
        } else if (strcmp(name, "--max-batch") == 0) {
            if (parse_size(val, &sz) < 0 || sz < 1) return die_usage("--max-batch must be a positive integer, not '%s'", val);
            qd_cfg.max_batch = sz;
        } else {
            return die_usage("unknown option '%s'", name);
        }
    }
    return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
    }
    return false;
}

/* Resolve, check loopback when open, bind and listen. Returns the fd or -1. */
static int open_listener(bool need_loopback, char *bound, size_t bcap)
{
    char host[256];
    const char *colon = strrchr(qd_cfg.listen, ':');
    if (!colon || !colon[1]) {
        fprintf(stderr, "quartzd: --listen must be HOST:PORT, not '%s'\n", qd_cfg.listen);
        return -2;
    }
    size_t hn = (size_t)(colon - qd_cfg.listen);
    if (hn >= sizeof host) hn = sizeof host - 1;
    memcpy(host, qd_cfg.listen, hn);
    host[hn] = 0;
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
        memmove(host, host + 1, hn - 2);
        host[hn - 2] = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (g != 0) {
        fprintf(stderr, "quartzd: cannot resolve --listen %s: %s\n", qd_cfg.listen, gai_strerror(g));
        return -2;
    }
    if (need_loopback && !is_loopback(res->ai_addr)) {
        fprintf(stderr,
                "quartzd: refusing to listen on %s without API keys: only loopback addresses are allowed "
                "when no key is configured (give --key-file or QUARTZ_API_KEYS)\n",
                qd_cfg.listen);
        freeaddrinfo(res);
        return -2;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        fprintf(stderr, "quartzd: cannot listen on %s: %s\n", qd_cfg.listen, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
            port = ntohs(s->sin_port);
        } else {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
            port = ntohs(s->sin6_port);
        }
    }
    snprintf(bound, bcap, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
    return fd;
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    uint64_t now = qd_now_ns();
    bool idle = qd_thread_pending(w->t) <= 0 && now - qd_thread_last_start(w->t) > 100000000ull;
    if (idle || now - w->drain_start > DRAIN_MAX_NS) event_base_loopbreak(w->base);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    if (w->bound) evhttp_del_accept_socket(w->http, w->bound); /* the fd stays open */
    w->bound = NULL;
    w->drain_start = qd_now_ns();
    struct timeval tv = {0, 50000};
    w->tick = event_new(w->base, -1, EV_PERSIST, drain_tick, w);
    if (!w->tick || event_add(w->tick, &tv) < 0) event_base_loopbreak(w->base);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(worker *w, unsigned idx, int fd)
{
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    w->t = qd_thread_new(idx);
    if (!w->http || !w->t) return -1;
    /* libevent 2.1 answers a body over its own limit with an HTML page and
     * no hook to change it (evhttp_set_errorcb is 2.2), so it gets twice
     * --max-body and qd_handle() answers bodies between the two with the
     * JSON 413. Past twice the limit the client still reads a 413 (the
     * lingering close drains the body first), with libevent's HTML body. */
    size_t hard = qd_cfg.max_body > SIZE_MAX / 2 ? SIZE_MAX : qd_cfg.max_body * 2;
    evhttp_set_max_body_size(w->http, hard > (size_t)EV_SSIZE_MAX ? EV_SSIZE_MAX : (ev_ssize_t)hard);
    evhttp_set_timeout(w->http, 60);
    evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(w->http, qd_handle, w->t);
    struct evconnlistener *l = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_REUSEABLE, -1, fd);
    w->bound = l ? evhttp_bind_listener(w->http, l) : NULL;
    w->stop = event_new(w->base, -1, 0, stop_cb, w);
    return w->bound && w->stop ? 0 : -1;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc) return rc;
    if (qd_cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        qd_cfg.threads = n > 0 ? (unsigned)n : 1;
    }
    char err[1024], msg[1400], bound[128];
    if (qd_auth_load(qd_cfg.key_file, err, sizeof err) < 0) {
        fprintf(stderr, "quartzd: %s\n", err);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int fd = open_listener(!qd_auth_enabled(), bound, sizeof bound);
    if (fd == -2) return EXIT_USAGE;
    if (fd < 0) return 1;
    if (evthread_use_pthreads() < 0) {
        fprintf(stderr, "quartzd: libevent has no pthreads support\n");
        return 1;
    }
    if (qd_registry_open(qd_cfg.data_dir, qd_cfg.durability, err, sizeof err) < 0) {
        fprintf(stderr, "quartzd: %s\n", err);
        qd_registry_close_all();
        return 1;
    }
    worker *ws = calloc(qd_cfg.threads, sizeof *ws);
    if (!ws) return 1;
    for (unsigned i = 0; i < qd_cfg.threads; i++)
        if (worker_init(&ws[i], i, fd) < 0 || pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "quartzd: cannot start worker %u\n", i);
            return 1;
        }
    snprintf(msg, sizeof msg, "quartzd %s listening on %s (data %s, %u threads, durability %s, %s, %zu indexes)",
             QZ_VERSION_STRING, bound, qd_cfg.data_dir, qd_cfg.threads,
             qd_cfg.durability == QZ_DURABILITY_SYNC ? "sync" : qd_cfg.durability == QZ_DURABILITY_BATCHED ? "batched" : "none",
             qd_auth_enabled() ? "API keys required" : "no API keys: open, loopback only", qd_index_count());
    log_msg("info", msg);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) {
            if (!qd_cfg.key_file) {
                log_msg("info", "SIGHUP: no key file to reload");
            } else if (qd_auth_load(qd_cfg.key_file, err, sizeof err) < 0) {
                snprintf(msg, sizeof msg, "SIGHUP: key file not reloaded, old keys kept: %s", err);
                log_msg("error", msg);
            } else {
                snprintf(msg, sizeof msg, "SIGHUP: key file reloaded, %zu keys", qd_auth_count());
                log_msg("info", msg);
            }
            continue;
        }
        break;
    }
    log_msg("info", "shutting down: draining requests");
    atomic_store(&qd_draining, 1);
    for (unsigned i = 0; i < qd_cfg.threads; i++) event_active(ws[i].stop, EV_TIMEOUT, 0);
    for (unsigned i = 0; i < qd_cfg.threads; i++) pthread_join(ws[i].tid, NULL);
    for (unsigned i = 0; i < qd_cfg.threads; i++) {
        if (ws[i].tick) event_free(ws[i].tick);
        event_free(ws[i].stop);
        evhttp_free(ws[i].http);
        event_base_free(ws[i].base);
        qd_thread_free(ws[i].t);
    }
    close(fd);
    rc = qd_registry_close_all();
    log_msg(rc ? "error" : "info", rc ? "stopped; an index failed to flush" : "stopped; every index flushed");
    free(ws);
    return rc ? 1 : 0;
}
