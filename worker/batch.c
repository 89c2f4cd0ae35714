/* batch.c - several events, one transaction, one savepoint each (see batch.h).
 *
 * Round trips: statements whose result the worker need not look at (BEGIN,
 * SAVEPOINT, ps_event_open, ps_event_done, RELEASE) are deferred with
 * pg_defer() and go out with the next statement the worker must wait for: a
 * handler's call, or the COMMIT. ps_event_open raises PS001 for an event
 * already done, so nothing waits for its answer; the event's finish
 * (ps_event_done, or inside the ledger call) raises it too when another
 * worker applied the event meanwhile (sql/005): a duplicate either way. When a flight fails, the
 * statement number (pg_error_seq) says whose statement it was: that event is
 * rolled back to its savepoint and recorded as failed (or as a duplicate),
 * and the events after it, whose statements the server skipped, run again. */
#include "batch.h"
#include "apply_steps.h"
#include "json_arena.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQLSTATE_DONE "PS001" /* ps_event_open: already applied or skipped */

typedef enum {
    STEP_OK = 0,  /* go on with the next event */
    STEP_REWOUND, /* an earlier event failed late: go on after it */
    STEP_FAILED,  /* the batch as a whole failed: roll it back */
    STEP_LOST,    /* the connection went away */
} step;

typedef struct batch {
    const ps_config *cfg;
    pg_conn *pg;
    batch_slot *slots;
    size_t n, next; /* slots[next] runs next */
} batch;

/* ------------------------------------------------------------ lock order -- */

/* Who an event locks, as far as its JSON tells: the Stripe customer (one
 * customer, one user), else the user named in its metadata, else nobody but
 * itself. Events of one key keep their stream order. */
static const char *lock_key(const event_ctx *ev) {
    const char *k = jstr(ev->object, "customer");
    const char *kind = jstr(ev->object, "object");
    if (k == NULL && kind && strcmp(kind, "customer") == 0) k = jstr(ev->object, "id");
    if (k == NULL) k = jstr(ev->object, "metadata.user_id");
    return k ? k : ev->event_id;
}

static int slot_cmp(const void *pa, const void *pb) {
    const batch_slot *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* Parse every entry; unparseable ones fail now, alone. */
static void parse_all(batch_slot *slots, size_t n) {
    for (size_t i = 0; i < n; i++) {
        batch_slot *s = &slots[i];
        memset(&s->info, 0, sizeof(s->info));
        memset(&s->ev, 0, sizeof(s->ev));
        s->pos = i;
        s->key = "";
        str_copy(s->info.event_id, s->e->event_id ? s->e->event_id : "", sizeof(s->info.event_id));
        if (apply_parse(s->e, &s->ev, &s->info) != NULL) s->key = lock_key(&s->ev);
    }
    qsort(slots, n, sizeof(*slots), slot_cmp);
}

/* ------------------------------------------------------------ statements -- */

static int defer(batch *b, const char *name, const char *sql, int n, const char *const *params) {
    return pg_defer(b->pg, name, sql, n, params);
}

/* Undo slot's work (its savepoint is the innermost one left). */
static int defer_rollback(batch *b) {
    return defer(b, "rollback_event", "ROLLBACK TO SAVEPOINT ev", 0, NULL) == 0 &&
                   defer(b, "release_event", "RELEASE SAVEPOINT ev", 0, NULL) == 0
               ? 0
               : -1;
}

static void set_failed(batch_slot *s, const char *what, const char *msg) {
    s->res = APPLY_RETRY;
    str_copy(s->info.outcome, "failed", sizeof(s->info.outcome));
    snprintf(s->info.error, sizeof(s->info.error), "%s%s", what, msg);
}

static bool is_conflict(const char *sqlstate) {
    return strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "40001") == 0;
}

/* A flight failed: find the event whose open, handler or finish statement
 * it was, record what became of it, roll it back and go on after it. Any
 * other statement failing (BEGIN, a savepoint, COMMIT), a
 * deadlock or a serialization failure fails the batch as a whole. */
static step trace_failure(batch *b) {
    pg_conn *pg = b->pg;
    if (pg_is_lost(pg)) return STEP_LOST;
    long seq = pg_error_seq(pg);
    if (seq < 0 || is_conflict(pg_sqlstate(pg))) return STEP_FAILED;
    for (size_t k = 0; k < b->next; k++) {
        batch_slot *s = &b->slots[k];
        long open = s->ev.seq_open;
        if (open < 0 || seq < open || seq >= s->seq_end) continue;
        if (strcmp(pg_sqlstate(pg), SQLSTATE_DONE) == 0) {
            s->res = APPLY_DONE;
            str_copy(s->info.outcome, "duplicate", sizeof(s->info.outcome));
        } else {
            set_failed(s, seq == open && !s->ev.open_folded ? "begin: " : "", pg_errstr(pg));
        }
        if (defer_rollback(b) != 0) return STEP_LOST;
        b->next = k + 1;
        return STEP_REWOUND;
    }
    return STEP_FAILED;
}

/* ----------------------------------------------------------------- event -- */

static void reset_event(batch_slot *s) {
    event_ctx *ev = &s->ev;
    ev->user_id[0] = ev->note[0] = ev->error[0] = '\0';
    ev->note_null = ev->db_failed = ev->open_folded = ev->finished = false;
    ev->batched = true;
    ev->open_params = ev->event_params = NULL;
    ev->seq_open = -1;
    s->info.error[0] = '\0';
    str_copy(s->info.outcome, "failed", sizeof(s->info.outcome));
    s->seq_end = -1;
}

/* One event under its own savepoint; its results stand once a later flight
 * (at the latest the COMMIT's) has gone through. Its ps_event_open goes out
 * with its first statement, inside the ledger call when that comes first
 * (ev_apply), in which case that call also finishes it. */
static step run_event(batch *b, batch_slot *s) {
    char created[24];
    const char *params[6], *done[APPLY_DONE_PARAMS];
    if (s->ev.root == NULL) { /* not parsed: info.error says why */
        s->res = APPLY_RETRY;
        s->ev.seq_open = s->seq_end = -1;
        return STEP_OK;
    }
    reset_event(s);
    s->ev.pg = b->pg;
    apply_event_params(&s->ev, s->e, created, params);
    if (defer(b, "savepoint_event", "SAVEPOINT ev", 0, NULL) != 0) return STEP_LOST;
    s->ev.open_params = s->ev.event_params = params;
    const char *final = apply_run_handler(b->cfg, &s->ev);
    if (final == NULL && s->ev.db_failed) {
        s->ev.open_params = NULL;
        s->seq_end = pg_next_seq(b->pg);
        return trace_failure(b);
    }
    if (ev_send_open(&s->ev) != 0) return STEP_LOST; /* the handler sent nothing */
    if (final == NULL) {                             /* the handler refused it */
        s->seq_end = pg_next_seq(b->pg);
        set_failed(s, "", s->ev.error);
        return defer_rollback(b) == 0 ? STEP_OK : STEP_LOST;
    }
    apply_done_params(&s->ev, final, done);
    if (!s->ev.finished && defer(b, "event_done", SQL_EVENT_DONE, APPLY_DONE_PARAMS, done) != 0)
        return STEP_LOST;
    s->seq_end = pg_next_seq(b->pg);
    if (defer(b, "release_event", "RELEASE SAVEPOINT ev", 0, NULL) != 0) return STEP_LOST;
    s->res = APPLY_DONE;
    str_copy(s->info.outcome, final, sizeof(s->info.outcome));
    return STEP_OK;
}

/* Run the events from b->next on, then COMMIT; until done or failed. */
static step run_all(batch *b) {
    for (;;) {
        step st = STEP_OK;
        while (b->next < b->n && (st == STEP_OK || st == STEP_REWOUND))
            st = run_event(b, &b->slots[b->next++]);
        if (st == STEP_FAILED || st == STEP_LOST) return st;
        long seq = pg_next_seq(b->pg);
        if (pg_exec_prepared(b->pg, "commit", "COMMIT", 0, NULL, NULL) == 0) return STEP_OK;
        if (pg_is_lost(b->pg) || pg_error_seq(b->pg) == seq)
            return pg_is_lost(b->pg) ? STEP_LOST : STEP_FAILED;
        st = trace_failure(b);
        if (st != STEP_REWOUND) return st;
    }
}

apply_result apply_batch(const ps_config *cfg, pg_conn *pg, batch_slot *slots, size_t n, char *why,
                         size_t whylen) {
    batch b = {cfg, pg, slots, n, 0};
    why[0] = '\0';
    json_arena_begin(); /* the batch's trees: all freed below */
    parse_all(slots, n);
    step st = defer(&b, "begin", "BEGIN", 0, NULL) == 0 ? run_all(&b) : STEP_LOST;
    if (st == STEP_FAILED) {
        snprintf(why, whylen, "%s", pg_errstr(pg));
        if (pg_exec(pg, "ROLLBACK", 0, NULL, NULL) != 0 && pg_is_lost(pg)) st = STEP_LOST;
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(slots[i].ev.root);
        slots[i].ev.root = NULL;
    }
    json_arena_end();
    return st == STEP_OK ? APPLY_DONE : st == STEP_LOST ? APPLY_DB_LOST : APPLY_RETRY;
}
