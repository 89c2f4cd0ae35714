/* event.h - what an event handler sees, and the handler table.
 *
 * The apply path calls the handler chosen by type from the table in
 * handlers.c. A handler reads the parsed event, resolves the user and names
 * the ledger rule to apply with its inputs (ev_apply), which the batch
 * (batch.c) hands to ps_apply_batch (sql/batch.sql); or it finds the event
 * skipped, or refuses it. It sends nothing to PostgreSQL or Redis itself. */
#ifndef PS_WORKER_EVENT_H
#define PS_WORKER_EVENT_H

#include "ledger_row.h"
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
    json_doc *doc; /* the whole event (root value 0); not owned; NULL: not parsed */
    jval object;   /* data.object */
    const char *event_id;
    const char *type;
    const char *api_version; /* may be NULL */
    int64_t created;
    bool livemode;
    log_ctx log;
    char user_id[40]; /* resolved user ("" if none: found at its turn, ledger_row.h) */
    char note[256];   /* what happened: stored in webhook_events.note */
    char error[512];  /* why it failed */
    const char *rule; /* the ledger rule named by ev_apply (e.g. "invoice_paid"), or NULL */
    strbuf *inputs;   /* its inputs, as composite-literal fields (the caller's buffer) */
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
ev_outcome charge_dispute(event_ctx *ev);
ev_outcome invoice_payment_paid(event_ctx *ev);

/* Helpers shared by the handlers (event_util.c). */
ev_outcome ev_fail(event_ctx *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ev_outcome ev_skip(event_ctx *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Name the ledger rule to apply (sql/batch.sql's _batch_rule: "invoice_paid",
 * ...) and its inputs, copied now: ps_apply_batch applies it at the event's
 * turn and decides whether it applied or was skipped. EV_APPLIED. */
ev_outcome ev_apply(event_ctx *ev, const char *rule, const ledger_row *inputs);

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

/* The price lines of a subscription or invoice (price_lines.c): add each
 * (-1 with ev->error when malformed), close, hand prices.buf and
 * quantities.buf to the rule's inputs, free. */
typedef struct price_lines {
    strbuf prices, quantities;
    int n;
} price_lines;
void price_lines_init(price_lines *l);
int price_lines_add(event_ctx *ev, price_lines *l, const char *price, int64_t quantity);
int price_lines_close(event_ctx *ev, price_lines *l);
void price_lines_free(price_lines *l);

/* Find the user for this event (SPEC 4 order): object metadata.user_id,
 * client_reference_id, then `extra_meta` objects' metadata.user_id (the
 * subscription's or the invoice parent's); else the stored customer or
 * subscription mapping at the event's turn in the batch (ev->user_id stays
 * "": the rule's inputs must name them). Fills ev->user_id; -1 with
 * ev->error when there is nothing to find the user by or an id is malformed. */
int resolve_user(event_ctx *ev, const char *customer, const char *subscription,
                 const jval *extra_meta, int n_extra);

#endif
