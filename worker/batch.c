/* batch.c - several events, one transaction, one statement (see batch.h).
 *
 * Each event's handler runs in the worker first: it reads the event and names
 * the ledger rule to apply and its arguments (ev_apply keeps them instead of
 * calling), or finds the event skipped, or refuses it. Then one call of
 * ps_apply_batch (sql/006) applies the rules in the batch's order, each under
 * a savepoint of its own on the server, writes the events' rows and says what
 * became of each event. BEGIN goes out with that call and COMMIT after it:
 * two round trips for up to BATCH_MAX events. */
#include "batch.h"
#include "apply_steps.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_APPLY_BATCH                                                                            \
    "SELECT k, status, user_id, note, err_code, err_message FROM paystream.ps_apply_batch($1) "    \
    "ORDER BY k"
#define ROW_HEADER 11 /* columns before the rule's arguments (sql/006) */
#define ROW_ARGS   11 /* the rule's arguments, NULL-padded */

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

static void put(strbuf *q, const char *v, bool first) {
    if (!first) strbuf_puts(q, ",");
    pg_array_elem(q, v);
}

/* The event's row of ps_apply_batch's argument: the event, then what its
 * handler decided (a rule and its arguments, or a status and a note). */
static void put_row(strbuf *q, const batch_slot *s, const char *final) {
    const event_ctx *ev = &s->ev;
    char created[24];
    const char *head[ROW_HEADER] = {
        ev->rule ? ev->rule : "record",
        ev->event_id,
        ev->type,
        ev->livemode ? "true" : "false",
        ev->api_version,
        created,
        s->e->id,
        final,
        ev->rule || ev->note[0] == '\0' ? NULL : ev->note,
        ev->find_user ? ev->find_customer : NULL,
        ev->find_user ? ev->find_sub : NULL,
    };
    snprintf(created, sizeof(created), "%lld", (long long)ev->created);
    strbuf_puts(q, q->len > 1 ? ",{" : "{");
    for (int i = 0; i < ROW_HEADER; i++)
        put(q, head[i], i == 0);
    int nargs = 0;
    if (ev->rule) {
        strbuf_puts(q, ",");
        strbuf_append(q, ev->rule_args->buf, ev->rule_args->len);
        nargs = ev->rule_nargs;
    } else {
        put(q, ev->user_id[0] ? ev->user_id : NULL, false);
        nargs = 1;
    }
    for (; nargs < ROW_ARGS; nargs++)
        strbuf_puts(q, ",NULL");
    strbuf_puts(q, "}");
}

/* Run the slot's handler; its row goes to q unless the handler refused the
 * event (then the slot has failed and row is -1). */
static void prepare(const ps_config *cfg, batch_slot *s, strbuf *args, strbuf *q, int *rows) {
    s->row = -1;
    str_copy(s->info.outcome, "failed", sizeof(s->info.outcome));
    if (s->ev.doc == NULL) { /* not parsed: info.error says why */
        s->res = APPLY_RETRY;
        return;
    }
    strbuf_reset(args);
    s->ev.batched = true;
    s->ev.rule_args = args;
    const char *final = apply_run_handler(cfg, &s->ev);
    if (final == NULL) {
        set_failed(s, s->ev.error);
        return;
    }
    put_row(q, s, final);
    s->row = (*rows)++;
}

/* --------------------------------------------------------------- result -- */

/* What ps_apply_batch said of one event. */
static void settle(batch_slot *s, const pg_result *r, int row) {
    const char *status = pg_value(r, row, 1);
    if (status && strcmp(status, "failed") == 0) {
        const char *msg = pg_value(r, row, 5);
        set_failed(s, msg ? msg : "failed");
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
    if (pg_exec(pg, "ROLLBACK", 0, NULL, NULL) != 0 && pg_is_lost(pg)) return APPLY_DB_LOST;
    return APPLY_RETRY;
}

apply_result apply_batch(const ps_config *cfg, pg_conn *pg, batch_slot *slots, size_t n, char *why,
                         size_t whylen) {
    strbuf q, args;
    int rows = 0;
    why[0] = '\0';
    strbuf_init(&q);
    strbuf_init(&args);
    parse_all(slots, n);
    strbuf_puts(&q, "{");
    for (size_t i = 0; i < n; i++) {
        slots[i].ev.pg = pg;
        prepare(cfg, &slots[i], &args, &q, &rows);
    }
    strbuf_puts(&q, "}");
    apply_result res = APPLY_DONE;
    if (q.oom || args.oom) {
        snprintf(why, whylen, "out of memory");
        res = APPLY_RETRY;
    } else if (rows > 0) {
        res = run(slots, n, pg, &q, rows, why, whylen);
    }
    strbuf_free(&q);
    strbuf_free(&args);
    return res;
}

void batch_release(batch_slot *slots, size_t n) {
    for (size_t i = 0; i < n; i++) {
        json_doc_free(slots[i].doc);
        slots[i].doc = NULL;
    }
}
