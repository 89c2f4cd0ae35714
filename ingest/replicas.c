/* replicas.c - PAYSTREAM_REDIS_MIN_REPLICAS: WAIT after XADD (SPEC 9).
 *
 * Redis replicates asynchronously: an entry the master acknowledged is lost
 * with the master unless a replica had it. So, with n > 0, an event is
 * answered 200 only once `WAIT n ms` has counted n replicas holding it. The
 * XADDs of one loop turn share one WAIT (sent when the turn ends), and only
 * one WAIT is out at a time: those XADDs that come meanwhile wait for the
 * next, sent when it returns. WAIT answers for every earlier write of its
 * own connection only, so an XADD sent on an earlier connection is never
 * confirmed. webhook.c decides what to answer; this file only says yes or no. */
#include "ingest.h"
#include "alloc.h"
#include "log.h"
#include "timeutil.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

typedef struct waiter {
    replicas_cb cb;
    void *arg;
    unsigned conn; /* the connection its XADD went out on */
} waiter;

/* Waiters of one WAIT: the open batch, or the one that is out. */
typedef struct wait_batch {
    replica_wait *rw;
    waiter *w;
    size_t n, cap;
    unsigned conn;   /* the connection the WAIT went out on */
    int64_t sent_us; /* monotonic */
} wait_batch;

struct replica_wait {
    ingest *in;
    struct event *flush_ev;
    wait_batch *open; /* gathering; NULL when empty */
    bool out;         /* a WAIT is out */
    long wait_ms;     /* WAIT's own timeout */
};

/* Tell every waiter and free the batch. `confirmed` holds only for the
 * XADDs sent on the connection the WAIT went out on. */
static void batch_answer(wait_batch *b, bool confirmed) {
    for (size_t i = 0; i < b->n; i++)
        b->w[i].cb(b->w[i].arg, confirmed && b->w[i].conn == b->conn);
    ps_free(b->w);
    ps_free(b);
}

static void send_wait(replica_wait *rw);

/* WAIT's reply: how many replicas have every write made before it. */
static void on_wait(void *arg, const ra_result *res) {
    wait_batch *b = arg;
    replica_wait *rw = b->rw;
    ingest *in = rw->in;
    long n = in->cfg.redis_min_replicas;
    bool ok = res->status == RA_OK && res->str == NULL && res->integer >= n;
    rw->out = false;
    metrics_observe_wait(&in->metrics, time_mono_us() - b->sent_us,
                         res->status == RA_OK ? res->integer : -1);
    if (!ok && res->status == RA_OK)
        log_warn("WAIT %ld: only %lld replica%s confirmed within %ld ms: %zu event%s answered 503",
                 n, res->integer, res->integer == 1 ? "" : "s", rw->wait_ms, b->n,
                 b->n == 1 ? "" : "s");
    batch_answer(b, ok);
    if (rw->open) send_wait(rw);
}

/* WAIT n ms for the open batch, now. */
static void send_wait(replica_wait *rw) {
    wait_batch *b = rw->open;
    char n[24], ms[24];
    rw->open = NULL;
    if (b == NULL) return;
    snprintf(n, sizeof(n), "%ld", rw->in->cfg.redis_min_replicas);
    snprintf(ms, sizeof(ms), "%ld", rw->wait_ms);
    const char *argv[3] = {"WAIT", n, ms};
    b->conn = redis_async_connection(rw->in->redis);
    b->sent_us = time_mono_us();
    ra_status s = redis_async_command(rw->in->redis, on_wait, b, 3, argv, NULL);
    if (s == RA_OK) {
        rw->out = true;
        return;
    }
    metrics_count_redis(&rw->in->metrics, s);
    metrics_observe_wait(&rw->in->metrics, 0, -1);
    batch_answer(b, false);
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    replica_wait *rw = arg;
    if (!rw->out) send_wait(rw);
}

replica_wait *replicas_new(ingest *in) {
    replica_wait *rw = ps_calloc(1, sizeof(*rw));
    if (rw == NULL) return NULL;
    rw->in = in;
    /* two turns of WAIT fit in the timeout (one out, then ours), with room left */
    rw->wait_ms = in->cfg.redis_timeout_ms / 3 > 0 ? in->cfg.redis_timeout_ms / 3 : 1;
    rw->flush_ev = event_new(in->base, -1, 0, on_flush, rw);
    if (rw->flush_ev == NULL) {
        ps_free(rw);
        return NULL;
    }
    return rw;
}

int replicas_add(replica_wait *rw, unsigned conn, replicas_cb cb, void *arg) {
    wait_batch *b = rw->open;
    if (b == NULL && (b = rw->open = ps_calloc(1, sizeof(*b))) == NULL) return -1;
    b->rw = rw;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        waiter *w = ps_realloc(b->w, cap * sizeof(*w));
        if (w == NULL) return -1;
        b->w = w;
        b->cap = cap;
    }
    b->w[b->n++] = (waiter){cb, arg, conn};
    if (!rw->out && !event_pending(rw->flush_ev, EV_TIMEOUT, NULL))
        event_active(rw->flush_ev, EV_TIMEOUT, 1);
    return 0;
}

void replicas_free(replica_wait *rw) {
    if (rw == NULL) return;
    if (rw->open) batch_answer(rw->open, false);
    rw->open = NULL;
    if (rw->flush_ev) event_free(rw->flush_ev);
    ps_free(rw);
}
