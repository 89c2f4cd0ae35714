/* batch.c - several events, one transaction, one statement (see batch.h).
 *
 * Each event's handler runs in the worker first: it reads the event and names
 * the ledger rule to apply and its inputs (ev_apply), or finds the event
 * skipped, or refuses it. Then one call of ps_apply_batch (sql/batch.sql)
 * applies the rules in the batch's order, each under a savepoint of its own
 * on the server, writes the events' rows and says what became of each event.
 * BEGIN goes out with that call and COMMIT after it: two round trips for up
 * to BATCH_MAX events. A single event is a batch of one (apply.c). */
#include "batch.h"
#include "apply_steps.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_APPLY_BATCH                                                                            \
    "SELECT k, status, user_id, note, err_code, err_message FROM paystream.ps_apply_batch($1) "    \
    "ORDER BY k"

/* The buffers one apply_batch() call writes its argument with. */
typedef struct batch_bufs {
    strbuf q;      /* the array of rows */
    strbuf rec;    /* one row */
    strbuf inputs; /* one handler's rule inputs (ev_apply) */
} batch_bufs;

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
        if (s->doc == NULL) s->doc = json_doc_new(); /* kept for the slot's next events */
        if (apply_parse(s->e, s->doc, &s->ev, &s->info) == 0) s->key = lock_key(&s->ev);
    }
    qsort(slots, n, sizeof(*slots), slot_cmp);
}

/* ----------------------------------------------------------------- rows -- */

static void set_failed(batch_slot *s, const char *msg) {
    s->res = APPLY_RETRY;
    str_copy(s->info.outcome, "failed", sizeof(s->info.outcome));
    str_copy(s->info.error, msg, sizeof(s->info.error));
}

/* The event's row of ps_apply_batch's argument, one element of an array of
 * paystream.batch_event: the event, then what its handler decided (a rule
 * and its inputs, or an outcome and a note). */
static void put_row(strbuf *q, strbuf *rec, const batch_slot *s, const char *final) {
    const event_ctx *ev = &s->ev;
    char created[24];
    snprintf(created, sizeof(created), "%lld", (long long)ev->created);
    const char *head[ROW_HEAD] = {
        ev->event_id,
        ev->type,
        ev->livemode ? "t" : "f",
        ev->api_version,
        created,
        s->e->id,
        ev->rule ? ev->rule : "record",
        ev->rule ? NULL : final,
        ev->rule || ev->note[0] == '\0' ? NULL : ev->note,
        ev->user_id[0] ? ev->user_id : NULL,
    };
    strbuf_reset(rec);
    strbuf_puts(rec, "(");
    ledger_row_head(rec, head);
    if (ev->rule) /* ev_apply wrote them: each field with its leading comma */
        strbuf_append(rec, ev->inputs->buf, ev->inputs->len);
    else
        ledger_row_inputs(rec, NULL);
    strbuf_puts(rec, ")");
    if (q->len > 1) strbuf_puts(q, ",");
    if (!rec->oom) pg_array_elem(q, rec->buf);
}

/* Run the slot's handler; its row goes to b->q unless the handler refused
 * the event (then the slot has failed and row is -1). */
static void prepare(const ps_config *cfg, batch_slot *s, batch_bufs *b, int *rows) {
    s->row = -1;
    str_copy(s->info.outcome, "failed", sizeof(s->info.outcome));
    if (s->ev.doc == NULL) { /* not parsed: info.error says why */
        s->res = APPLY_RETRY;
        return;
    }
    s->ev.inputs = &b->inputs;
    const char *final = apply_run_handler(cfg, &s->ev);
    if (final == NULL) {
        set_failed(s, s->ev.error);
        str_copy(s->info.user_id, s->ev.user_id, sizeof(s->info.user_id));
        return;
    }
    put_row(&b->q, &b->rec, s, final);
    s->row = (*rows)++;
}

/* --------------------------------------------------------------- result -- */

/* What ps_apply_batch said of one event. */
static void settle(batch_slot *s, const pg_result *r, int row) {
    const char *status = pg_value(r, row, 1);
    if (status && strcmp(status, "failed") == 0) {
        const char *msg = pg_value(r, row, 5), *code = pg_value(r, row, 4);
        const char *user = pg_value(r, row, 2);
        set_failed(s, msg ? msg : "failed");
        str_copy(s->info.sqlstate, code ? code : "", sizeof(s->info.sqlstate));
        str_copy(s->info.user_id, user ? user : s->ev.user_id, sizeof(s->info.user_id));
        return;
    }
    s->res = APPLY_DONE;
    str_copy(s->info.outcome, status ? status : "applied", sizeof(s->info.outcome));
}

static apply_result run(batch_slot *slots, size_t n, pg_conn *pg, const strbuf *q, int rows,
                        char *why, size_t whylen) {
    pg_result *r = NULL;
    const char *param[1] = {q->buf};
    if (pg_defer(pg, "begin", "BEGIN", 0, NULL) != 0 ||
        pg_exec_prepared(pg, "apply_batch", SQL_APPLY_BATCH, 1, param, &r) != 0)
        goto failed;
    if (pg_nrows(r) != rows) {
        snprintf(why, whylen, "ps_apply_batch answered %d rows for %d events", pg_nrows(r), rows);
        pg_result_free(r);
        pg_exec(pg, "ROLLBACK", 0, NULL, NULL);
        return pg_is_lost(pg) ? APPLY_DB_LOST : APPLY_RETRY;
    }
    for (size_t i = 0; i < n; i++)
        if (slots[i].row >= 0) settle(&slots[i], r, slots[i].row);
    pg_result_free(r);
    if (pg_exec_prepared(pg, "commit", "COMMIT", 0, NULL, NULL) == 0) return APPLY_DONE;
failed:
    if (pg_is_lost(pg)) return APPLY_DB_LOST;
    snprintf(why, whylen, "%s", pg_errstr(pg));
    /* PS001: another worker committed one of the events meanwhile; alone,
       the event is that one: a duplicate, done */
    bool dup = rows == 1 && strcmp(pg_sqlstate(pg), "PS001") == 0;
    if (pg_exec(pg, "ROLLBACK", 0, NULL, NULL) != 0 && pg_is_lost(pg)) return APPLY_DB_LOST;
    for (size_t i = 0; dup && i < n; i++)
        if (slots[i].row >= 0) {
            slots[i].res = APPLY_DONE;
            str_copy(slots[i].info.outcome, "duplicate", sizeof(slots[i].info.outcome));
        }
    return dup ? APPLY_DONE : APPLY_RETRY;
}

apply_result apply_batch(const ps_config *cfg, pg_conn *pg, batch_slot *slots, size_t n, char *why,
                         size_t whylen) {
    batch_bufs b;
    int rows = 0;
    why[0] = '\0';
    strbuf_init(&b.q);
    strbuf_init(&b.rec);
    strbuf_init(&b.inputs);
    parse_all(slots, n);
    strbuf_puts(&b.q, "{");
    for (size_t i = 0; i < n; i++)
        prepare(cfg, &slots[i], &b, &rows);
    strbuf_puts(&b.q, "}");
    apply_result res = APPLY_DONE;
    if (b.q.oom || b.rec.oom || b.inputs.oom) {
        snprintf(why, whylen, "out of memory");
        res = APPLY_RETRY;
    } else if (rows > 0) {
        res = run(slots, n, pg, &b.q, rows, why, whylen);
    }
    strbuf_free(&b.q);
    strbuf_free(&b.rec);
    strbuf_free(&b.inputs);
    return res;
}

void batch_release(batch_slot *slots, size_t n) {
    for (size_t i = 0; i < n; i++) {
        json_doc_free(slots[i].doc);
        slots[i].doc = NULL;
    }
}
