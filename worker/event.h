/* event.h - what an event handler sees, and the handler table.
 *
 * The apply path calls the handler chosen by type from the table in
 * handlers.c. A handler reads the parsed event, resolves the user and names
 * the ledger's worker function to apply with its arguments: apply.c's
 * one-event transaction calls it on ev->pg at once, a batch (batch.c) hands
 * it to ps_apply_batch (sql/006). It returns an outcome, and never commits,
 * rolls back or touches Redis. */
#ifndef PS_WORKER_EVENT_H
#define PS_WORKER_EVENT_H

#include "log.h"
#include "pg.h"
#include "strbuf.h"

#include "json_doc.h"
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    EV_APPLIED = 0, /* the ledger changed (or was checked) as SPEC 4 says */
    EV_SKIPPED,     /* nothing to do for this event (recorded with ev->note) */
    EV_FAILED,      /* roll back and retry later; ev->error says why */
} ev_outcome;

/* A JSON value of an event: its document (json_doc.h) and the value's index
 * there, JSON_DOC_NONE when absent. Plain data: copy it freely. */
typedef struct jval {
    json_doc *doc;
    int tok;
} jval;

typedef struct event_ctx {
    pg_conn *pg;
    json_doc *doc; /* the whole event (root value 0); not owned; NULL: not parsed */
    jval object;   /* data.object */
    const char *event_id;
    const char *type;
    const char *api_version; /* may be NULL */
    int64_t created;
    bool livemode;
    log_ctx log;
    char user_id[40]; /* resolved user ("" if none) */
    char note[256];   /* what happened: stored in webhook_events.note */
    bool note_null;   /* the last ev_call returned SQL NULL */
    char error[512];  /* why it failed */
    /* in a batch (batch.c): the handler names the ledger rule instead of
       calling it, and ps_apply_batch (sql/006) applies it with the others */
    bool batched;
    const char *rule;  /* the entry point named (e.g. "ps_invoice_paid"), or NULL */
    strbuf *rule_args; /* its arguments, as PostgreSQL array elements */
    int rule_nargs;
    const char *find_customer; /* the user to find from the stored mapping, */
    const char *find_sub;      /* at the event's turn (resolve_user) */
    bool find_user;
} event_ctx;

typedef ev_outcome (*event_handler)(event_ctx *ev);

/* The handler for an event type, or NULL when the type is not handled. */
event_handler handler_for(const char *type);

/* Handlers, one file per Stripe object family. */
ev_outcome checkout_completed(event_ctx *ev);
ev_outcome checkout_async_succeeded(event_ctx *ev);
ev_outcome checkout_async_failed(event_ctx *ev);
ev_outcome subscription_changed(event_ctx *ev);
ev_outcome invoice_paid(event_ctx *ev);
ev_outcome invoice_payment_failed(event_ctx *ev);
ev_outcome charge_refunded(event_ctx *ev);

/* Helpers shared by the handlers (event_util.c). */
ev_outcome ev_fail(event_ctx *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ev_outcome ev_skip(event_ctx *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Call a worker SQL function; its text result (may be NULL) goes to ev->note.
 * Returns 0, or -1 with ev->error set (the SQL error, naming what is missing). */
int ev_call(event_ctx *ev, const char *name, const char *sql, int n, const char *const *params);
/* Call the ledger function fn (e.g. "ps_invoice_paid") with its n parameters,
 * as ev_call does. In a batch it only keeps fn and a copy of its parameters
 * for the batch's ps_apply_batch (sql/006): nothing is sent. */
int ev_apply(event_ctx *ev, const char *fn, int n, const char *const *params);
#define EV_APPLY(ev, fn, n, params) ev_apply(ev, fn, n, params)
/* After a successful EV_APPLY: EV_SKIPPED when the ledger function's note
 * starts with "skipped: " (an event of a replaced subscription, sql/005,
 * which the server also records as skipped), else EV_APPLIED. In a batch the
 * server decides: EV_APPLIED. */
ev_outcome ev_applied(const event_ctx *ev);
/* The returned text of the last ev_call, or NULL. */
bool ev_note_is_null(const event_ctx *ev);

/* JSON by dotted path ("parent.subscription_details.subscription"); a value
 * that is an expanded object yields its "id"; an empty string is NULL; jint
 * takes integers only (not reals), jbool true and false only. NULL/false
 * when absent. Strings live as long as the event's document. */
const char *jstr(jval obj, const char *path);
bool jint(jval obj, const char *path, int64_t *out);
bool jbool(jval obj, const char *path, bool *out);
jval jget(jval obj, const char *path);
bool jis_object(jval v);
/* An array's elements in order: jfirst(), then jnext() until !jok(); none
 * when it is not an array. */
jval jfirst(jval array);
jval jnext(jval array, jval element);
bool jok(jval v); /* present */

/* Find the user for this event (SPEC 4 order): object metadata.user_id,
 * client_reference_id, then `extra_meta` objects' metadata.user_id (the
 * subscription's or the invoice parent's), then the stored customer or
 * subscription mapping. Fills ev->user_id; -1 with ev->error when not found
 * or malformed. */
int resolve_user(event_ctx *ev, const char *customer, const char *subscription,
                 const jval *extra_meta, int n_extra);

#endif
