/* apply_steps.h - the steps of applying one event, defined in apply.c and
 * used by the batch (batch.c): parse the entry, and run its type's handler.
 * Internal to the apply library. */
#ifndef PS_WORKER_APPLY_STEPS_H
#define PS_WORKER_APPLY_STEPS_H

#include "apply.h"
#include "event.h"

/* Parse e's body into doc (the caller's, reused; NULL reads as out of
 * memory) and ev's fields from it, ev->doc = doc: ev's strings live in doc
 * until its next parse. -1 with info->error when it is not a Stripe event.
 * Fills info's id and type. */
int apply_parse(const stream_entry *e, json_doc *doc, event_ctx *ev, apply_info *info);
/* Run the type's handler: the status to finish with
 * ("applied", "skipped"), or NULL when the event failed (ev->error says why). */
const char *apply_run_handler(const ps_config *cfg, event_ctx *ev);

#endif
