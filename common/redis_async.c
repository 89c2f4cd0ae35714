/* redis_async.c - hiredis 0.14 async on libevent, with reconnect and a
 * command timeout (see redis_async.h).
 *
 * hiredis facts this file relies on (async.c of 0.14): a failed connect calls
 * onConnect(REDIS_ERR) and then frees the context itself; a broken connection
 * first calls every pending reply callback with a NULL reply, then
 * onDisconnect, then frees; redisAsyncFree() does the same synchronously,
 * unless called from inside a reply callback, where it is deferred until the
 * callback returns. So the context is forgotten (ra->ac = NULL) before it is
 * freed, and every callback checks that it is about the current one.
 *
 * With a redis-sentinel:// URL each connection attempt first asks the
 * sentinels (blocking, a short timeout per sentinel: on loopback or a LAN
 * this is well under a millisecond), ends its handshake with ROLE instead of
 * PING, and the connection is dropped (and the sentinels asked again) on a
 * -READONLY reply or when the ROLE asked every second is no longer master. */
#include "redis_async.h"
#include "alloc.h"
#include "log.h"
#include "redis_sentinel.h"
#include "redis_url.h"
#include "strbuf.h"
#include "timeutil.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#define RECONNECT_MAX_MS 2000
/* Commands queued past this many bytes are written at once, not at the end
 * of the loop turn: Redis works on them while the loop goes on. */
#define EARLY_WRITE_BYTES 65536
/* Sentinel URLs: how often the master is asked for its ROLE. */
#define ROLE_CHECK_MS 1000

typedef enum {
    REQ_USER,      /* a caller's command: its callback gets the result */
    REQ_HANDSHAKE, /* AUTH or SELECT: an error fails the connection */
    REQ_HELLO,     /* the final PING (ROLE) of the handshake: success makes us ready */
    REQ_ROLE,      /* sentinel URLs: the periodic ROLE check of a ready connection */
} req_kind;

/* One command sent and not yet answered; hiredis holds it as privdata until
 * it calls on_reply, which is the only place that frees it. */
typedef struct ra_req {
    struct ra_req *prev, *next; /* pending list, oldest first */
    redis_async *ra;
    req_kind kind;
    ra_callback cb;
    void *arg;
    int64_t deadline_us; /* monotonic */
    unsigned gen;        /* connection it was sent on */
    ra_status fail_as;   /* answer for a NULL reply: IO unless we dropped on purpose */
} ra_req;

struct redis_async {
    struct event_base *base;
    redis_url url;
    char desc[300];
    long timeout_ms;
    redisAsyncContext *ac; /* the current connection; NULL while there is none */
    unsigned gen;          /* bumped for every connection attempt */
    bool ready;            /* handshake done on ac */
    bool closing;          /* redis_async_free() is running */
    unsigned failures;     /* failed attempts since the last ready connection */
    char last_error[160];  /* the last failure logged, to log each new one once */
    struct event *reconnect_ev;
    struct event *watchdog_ev;
    struct event *role_ev; /* sentinel URLs only: ROLE every ROLE_CHECK_MS */
    bool sentinel;         /* a redis-sentinel:// URL */
    char master_at[300];   /* sentinel URLs: "host:port" the sentinels last gave */
    ra_req *head, *tail;
    size_t pending;
    ra_stats stats;
};

static void ra_connect(redis_async *ra);

/* ------------------------------------------------------------- helpers -- */

static void pending_add(redis_async *ra, ra_req *req) {
    req->prev = ra->tail;
    req->next = NULL;
    if (ra->tail)
        ra->tail->next = req;
    else
        ra->head = req;
    ra->tail = req;
    ra->pending++;
}

static void pending_remove(redis_async *ra, ra_req *req) {
    if (req->prev)
        req->prev->next = req->next;
    else
        ra->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        ra->tail = req->prev;
    ra->pending--;
}

static void arm_watchdog(redis_async *ra, int64_t in_us) {
    if (in_us < 1000) in_us = 1000;
    struct timeval tv = {(time_t)(in_us / 1000000), (suseconds_t)(in_us % 1000000)};
    event_add(ra->watchdog_ev, &tv);
}

/* Log a connection problem at warn the first time it is seen, then at debug
 * while it repeats, so a Redis that stays down does not flood the log. */
static void note_failure(redis_async *ra, const char *what) {
    if (strcmp(ra->last_error, what) != 0) {
        log_warn("redis %s: %s (retrying in the background)", ra->desc, what);
        str_copy(ra->last_error, what, sizeof(ra->last_error));
    } else {
        log_debug("redis %s: %s (attempt %u)", ra->desc, what, ra->failures);
    }
}

static void schedule_reconnect(redis_async *ra) {
    if (ra->closing || event_pending(ra->reconnect_ev, EV_TIMEOUT, NULL)) return;
    long ms = backoff_ms(ra->failures, RECONNECT_MAX_MS);
    ra->failures++;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(ra->reconnect_ev, &tv);
}

/* Forget the current connection, free it (answering what is pending on it
 * with each request's fail_as) and schedule the next attempt. */
static void drop_connection(redis_async *ra, const char *why) {
    redisAsyncContext *ac = ra->ac;
    if (ac == NULL) return;
    ra->ac = NULL;
    if (ra->ready) ra->stats.disconnects++;
    ra->ready = false;
    if (why) note_failure(ra, why);
    redisAsyncFree(ac);
    schedule_reconnect(ra);
}

/* ------------------------------------------------------------- sending -- */

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* A loop turn that reads many requests otherwise hands Redis one big write at
 * its end, and then the two wait on each other in turn. The write error, if
 * any, stays in the context: hiredis's own write event, still armed, reports
 * it (a failure here must not answer callers inside redis_async_command).
 * Not before the connection is up: the socket may still be connecting. */
static void write_early(redis_async *ra) {
    int done = 0;
    redisContext *c = &ra->ac->c;
    if ((c->flags & REDIS_CONNECTED) && sdslen(c->obuf) >= EARLY_WRITE_BYTES)
        (void)redisBufferWrite(c, &done);
}

static ra_status send_req(redis_async *ra, req_kind kind, ra_callback cb, void *arg, int argc,
                          const char **argv, const size_t *lens) {
    ra_req *req = ps_calloc(1, sizeof(*req));
    if (req == NULL) return RA_ERR_OOM;
    req->ra = ra;
    req->kind = kind;
    req->cb = cb;
    req->arg = arg;
    req->gen = ra->gen;
    req->fail_as = RA_ERR_IO;
    req->deadline_us = time_mono_us() + ra->timeout_ms * 1000;
    if (redisAsyncCommandArgv(ra->ac, on_reply, req, argc, argv, lens) != REDIS_OK) {
        ps_free(req);
        return RA_ERR_DOWN;
    }
    pending_add(ra, req);
    if (!event_pending(ra->watchdog_ev, EV_TIMEOUT, NULL)) arm_watchdog(ra, ra->timeout_ms * 1000);
    write_early(ra);
    return RA_OK;
}

ra_status redis_async_command(redis_async *ra, ra_callback cb, void *arg, int argc,
                              const char **argv, const size_t *lens) {
    if (!ra->ready || ra->ac == NULL) return RA_ERR_DOWN;
    return send_req(ra, REQ_USER, cb, arg, argc, argv, lens);
}

/* AUTH and SELECT as the URL says, then PING; all pipelined at once. */
static int send_handshake(redis_async *ra) {
    const redis_url *u = &ra->url;
    if (u->password) {
        const char *argv[3] = {"AUTH", u->user ? u->user : u->password, u->password};
        if (send_req(ra, REQ_HANDSHAKE, NULL, NULL, u->user ? 3 : 2, argv, NULL) != RA_OK)
            return -1;
    }
    if (u->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        if (send_req(ra, REQ_HANDSHAKE, NULL, NULL, 2, argv, NULL) != RA_OK) return -1;
    }
    const char *hello[1] = {ra->sentinel ? "ROLE" : "PING"};
    return send_req(ra, REQ_HELLO, NULL, NULL, 1, hello, NULL) == RA_OK ? 0 : -1;
}

/* ------------------------------------------------------------ replies -- */

static void fill_result(ra_result *res, const redisReply *reply, ra_status fail_as) {
    memset(res, 0, sizeof(*res));
    if (reply == NULL) {
        res->status = fail_as;
        return;
    }
    switch (reply->type) {
    case REDIS_REPLY_ERROR:
        res->status = RA_ERR_REPLY;
        res->str = reply->str;
        res->len = reply->len;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        res->str = reply->str;
        res->len = reply->len;
        break;
    case REDIS_REPLY_INTEGER:
        res->integer = reply->integer;
        break;
    case REDIS_REPLY_ARRAY:
        res->elements = reply->elements;
        break;
    default:
        break;
    }
}

static void count_result(redis_async *ra, const ra_result *res) {
    if (res->status == RA_ERR_TIMEOUT) ra->stats.timeouts++;
    if (res->status == RA_ERR_IO) ra->stats.io_errors++;
    if (res->status == RA_ERR_REPLY) ra->stats.reply_errors++;
}

/* Sentinel URLs: is the node we are connected to (still) the master? If not,
 * why (in why) and false. Always true for other URLs. */
static bool check_role(redis_async *ra, const redisReply *reply, char *why, size_t whylen) {
    char role[32];
    if (!ra->sentinel || sentinel_role_is_master(reply, role, sizeof(role))) return true;
    snprintf(why, whylen, "%s is not the master (ROLE says %s): asking the sentinels again",
             ra->master_at, role);
    return false;
}

/* A handshake step or role check answered. Stale answers (an older
 * connection) are ignored. */
static void handshake_step(redis_async *ra, const ra_req *req, const ra_result *res,
                           const redisReply *reply) {
    char why[400];
    if (req->gen != ra->gen || ra->ac == NULL) return;
    if (res->status != RA_OK) {
        if (res->status == RA_ERR_REPLY)
            snprintf(why, sizeof(why), "handshake refused: %.*s", (int)res->len, res->str);
        else
            snprintf(why, sizeof(why), "handshake failed: %s", ra_status_name(res->status));
        if (req->kind != REQ_ROLE || res->status == RA_ERR_REPLY) drop_connection(ra, why);
        return;
    }
    if ((req->kind == REQ_HELLO || req->kind == REQ_ROLE) &&
        !check_role(ra, reply, why, sizeof(why))) {
        drop_connection(ra, why);
        return;
    }
    if (req->kind != REQ_HELLO) return;
    ra->ready = true;
    ra->stats.connects++;
    if (ra->failures > 0 || ra->stats.connects > 1)
        log_info("redis %s: connected again%s%s after %u failed attempts", ra->desc,
                 ra->sentinel ? " to " : "", ra->sentinel ? ra->master_at : "", ra->failures);
    else
        log_info("redis %s: connected%s%s", ra->desc, ra->sentinel ? " to " : "",
                 ra->sentinel ? ra->master_at : "");
    ra->failures = 0;
    ra->last_error[0] = '\0';
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac;
    ra_req *req = privdata;
    redis_async *ra = req->ra;
    ra_result res;
    pending_remove(ra, req);
    fill_result(&res, r, req->fail_as);
    count_result(ra, &res);
    if (r == NULL && req->gen == ra->gen) ra->ready = false; /* the connection is going */
    if (req->kind == REQ_USER) {
        req->cb(req->arg, &res);
        if (res.status == RA_ERR_REPLY && ra->sentinel && req->gen == ra->gen && ra->ac &&
            sentinel_error_means_moved(res.str, res.len)) {
            char why[400];
            snprintf(why, sizeof(why), "%s answered %.40s: asking the sentinels again",
                     ra->master_at, res.str);
            drop_connection(ra, why);
        }
    } else {
        handshake_step(ra, req, &res, r);
    }
    ps_free(req);
}

/* ---------------------------------------------------- connection events -- */

static void on_connect(const redisAsyncContext *ac, int status) {
    redis_async *ra = ac->data;
    if (status == REDIS_OK || ra->ac != ac) return;
    /* hiredis frees ac when we return; pending handshake steps see ra->ac == NULL */
    char why[160];
    snprintf(why, sizeof(why), "cannot connect: %s", ac->errstr);
    ra->ac = NULL;
    ra->ready = false;
    note_failure(ra, why);
    schedule_reconnect(ra);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    redis_async *ra = ac->data;
    (void)status;
    if (ra->ac != ac) return; /* we dropped it ourselves */
    char why[160];
    snprintf(why, sizeof(why), "connection lost: %s", ac->err ? ac->errstr : "closed by server");
    ra->ac = NULL;
    if (ra->ready) ra->stats.disconnects++;
    ra->ready = false;
    note_failure(ra, why);
    schedule_reconnect(ra);
}

/* Sentinel URLs: ask the sentinels where the master is now (blocking, at
 * most half the command timeout over all of them). 0, or -1 with why. */
static int find_master(redis_async *ra, char *why, size_t whylen) {
    long each = ra->timeout_ms / (2 * (long)ra->url.nsentinels);
    char err[400];
    if (each > 500) each = 500;
    if (each < 20) each = 20;
    if (sentinel_find_master(&ra->url, each, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "%s", err);
        return -1;
    }
    bool v6 = strchr(ra->url.host, ':') != NULL;
    snprintf(ra->master_at, sizeof(ra->master_at), "%s%s%s:%d", v6 ? "[" : "", ra->url.host,
             v6 ? "]" : "", ra->url.port);
    return 0;
}

static void ra_connect(redis_async *ra) {
    char why[400];
    redisAsyncContext *ac = NULL;
    if (ra->sentinel && find_master(ra, why, sizeof(why)) != 0) goto err;
    ac = ra->url.path ? redisAsyncConnectUnix(ra->url.path)
                      : redisAsyncConnect(ra->url.host, ra->url.port);
    if (ac == NULL || ac->err) {
        snprintf(why, sizeof(why), "cannot connect: %s", ac ? ac->errstr : "out of memory");
        goto err;
    }
    ac->data = ra;
    if (redisLibeventAttach(ac, ra->base) != REDIS_OK) {
        snprintf(why, sizeof(why), "cannot attach to the event loop");
        goto err;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    ra->ac = ac;
    ra->gen++;
    if (send_handshake(ra) != 0) drop_connection(ra, "cannot queue the handshake");
    return;
err:
    if (ac) redisAsyncFree(ac);
    note_failure(ra, why);
    schedule_reconnect(ra);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    redis_async *ra = arg;
    if (ra->ac == NULL && !ra->closing) ra_connect(ra);
}

/* Sentinel URLs: ask a ready connection's node for its ROLE (a failover
 * may have turned it into a replica without closing our connection). */
static void on_role_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    redis_async *ra = arg;
    if (ra->ready && ra->ac && !ra->closing) {
        const char *role[1] = {"ROLE"};
        (void)send_req(ra, REQ_ROLE, NULL, NULL, 1, role, NULL);
    }
}

/* The oldest pending command decides: past its deadline, the connection is
 * stalled; everything on it is answered RA_ERR_TIMEOUT and it is re-made. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    redis_async *ra = arg;
    if (ra->head == NULL) return;
    int64_t now = time_mono_us();
    if (ra->head->deadline_us > now || ra->ac == NULL) {
        arm_watchdog(ra, ra->head->deadline_us > now ? ra->head->deadline_us - now : 1000);
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "no reply within %ld ms; dropping the connection (%zu pending)",
             ra->timeout_ms, ra->pending);
    for (ra_req *req = ra->head; req; req = req->next)
        req->fail_as = RA_ERR_TIMEOUT;
    ra->last_error[0] = '\0'; /* always log a stall */
    drop_connection(ra, why);
}

/* -------------------------------------------------------------- public -- */

redis_async *redis_async_new(struct event_base *base, const char *url, long timeout_ms, char *err,
                             size_t errlen) {
    char uerr[128] = "";
    redis_async *ra = ps_calloc(1, sizeof(*ra));
    if (ra == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (redis_url_parse(url, &ra->url, uerr, sizeof(uerr)) != 0) {
        snprintf(err, errlen, "PAYSTREAM_REDIS_URL: %s", uerr);
        goto err;
    }
    redis_url_describe(&ra->url, ra->desc, sizeof(ra->desc));
    ra->base = base;
    ra->timeout_ms = timeout_ms;
    ra->reconnect_ev = evtimer_new(base, on_reconnect_timer, ra);
    ra->watchdog_ev = evtimer_new(base, on_watchdog, ra);
    if (ra->reconnect_ev == NULL || ra->watchdog_ev == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    ra->sentinel = redis_url_is_sentinel(&ra->url);
    if (ra->sentinel) {
        struct timeval every = {ROLE_CHECK_MS / 1000, (ROLE_CHECK_MS % 1000) * 1000};
        ra->role_ev = event_new(base, -1, EV_PERSIST, on_role_timer, ra);
        if (ra->role_ev == NULL || event_add(ra->role_ev, &every) != 0) {
            snprintf(err, errlen, "out of memory");
            goto err;
        }
    }
    struct timeval now = {0, 0};
    event_add(ra->reconnect_ev, &now); /* first attempt from the loop */
    return ra;
err:
    redis_async_free(ra);
    return NULL;
}

void redis_async_free(redis_async *ra) {
    if (ra == NULL) return;
    ra->closing = true;
    if (ra->ac) {
        for (ra_req *req = ra->head; req; req = req->next)
            req->fail_as = RA_ERR_CLOSED;
        redisAsyncContext *ac = ra->ac;
        ra->ac = NULL;
        ra->ready = false;
        redisAsyncFree(ac); /* answers every pending command */
    }
    if (ra->reconnect_ev) event_free(ra->reconnect_ev);
    if (ra->watchdog_ev) event_free(ra->watchdog_ev);
    if (ra->role_ev) event_free(ra->role_ev);
    redis_url_free(&ra->url);
    ps_free(ra);
}

bool redis_async_ready(const redis_async *ra) {
    return ra->ready;
}

size_t redis_async_pending(const redis_async *ra) {
    return ra->pending;
}

void redis_async_stats(const redis_async *ra, ra_stats *out) {
    *out = ra->stats;
}

const char *redis_async_describe(const redis_async *ra) {
    return ra->desc;
}

unsigned redis_async_connection(const redis_async *ra) {
    return ra->gen;
}

const char *ra_status_name(ra_status s) {
    switch (s) {
    case RA_OK:
        return "ok";
    case RA_ERR_DOWN:
        return "down";
    case RA_ERR_TIMEOUT:
        return "timeout";
    case RA_ERR_IO:
        return "connection_lost";
    case RA_ERR_REPLY:
        return "error_reply";
    case RA_ERR_OOM:
        return "out_of_memory";
    case RA_ERR_CLOSED:
        return "closed";
    }
    return "unknown";
}
