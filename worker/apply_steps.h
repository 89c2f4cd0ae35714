/* apply_steps.h - the steps of applying one event, shared by the one-event
 * transaction (apply.c) and the batch transaction (batch.c): parse the entry,
 * the parameters of ps_event_begin and ps_event_finish, and the
 * handler run inside the open transaction. Internal to the apply library. */
#ifndef PS_WORKER_APPLY_STEPS_H
#define PS_WORKER_APPLY_STEPS_H

#include "apply.h"
#include "event.h"

#define SQL_EVENT_FINISH "SELECT paystream.ps_event_finish($1, $2, $3, $4)"

/* Parse e's body into doc (the caller's, reused; NULL reads as out of
 * memory) and ev's fields from it, ev->doc = doc: ev's strings live in doc
 * until its next parse. -1 with info->error when it is not a Stripe event.
 * Fills info's id and type. */
int apply_parse(const stream_entry *e, json_doc *doc, event_ctx *ev, apply_info *info);
/* The 6 parameters of ps_event_begin; created is 24 bytes. */
void apply_event_params(const event_ctx *ev, const stream_entry *e, char *created,
                        const char **params);
/* The 4 parameters of ps_event_finish. */
void apply_finish_params(const event_ctx *ev, const char *status, const char **params);
/* Run the type's handler in the open transaction: the status to finish with
 * ("applied", "skipped"), or NULL when the event failed (ev->error says why). */
const char *apply_run_handler(const ps_config *cfg, event_ctx *ev);

#endif
