/* apply.c - one event, one transaction (see apply.h): a batch of one
 * (batch.c), and the steps every event goes through there: parse the
 * envelope, run the type's handler (apply_steps.h). */
#include "apply.h"
#include "apply_steps.h"
#include "batch.h"
#include "event.h"
#include "strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------- envelope -- */

int apply_parse(const stream_entry *e, json_doc *doc, event_ctx *ev, apply_info *info) {
    size_t at;
    if (e->body == NULL) {
        snprintf(info->error, sizeof(info->error), "stream entry has no body");
        return -1;
    }
    if (doc == NULL) {
        snprintf(info->error, sizeof(info->error), "out of memory for the event's JSON");
        return -1;
    }
    if (json_doc_parse(doc, e->body, e->body_len) != 0) {
        const char *why = json_doc_error(doc, &at);
        snprintf(info->error, sizeof(info->error), "malformed JSON at byte %zu: %s", at, why);
        return -1;
    }
    json_doc_type top = json_doc_type_of(doc, 0); /* as jansson without JSON_DECODE_ANY */
    if (top != JSON_DOC_OBJECT && top != JSON_DOC_ARRAY) {
        snprintf(info->error, sizeof(info->error), "malformed JSON at byte 0: '[' or '{' expected");
        return -1;
    }
    jval root = {doc, 0};
    ev->event_id = jstr(root, "id");
    ev->type = jstr(root, "type");
    ev->object = jget(root, "data.object");
    ev->api_version = jstr(root, "api_version");
    if (!jint(root, "created", &ev->created)) ev->created = 0;
    jbool(root, "livemode", &ev->livemode);
    if (ev->event_id == NULL || ev->type == NULL || !jis_object(ev->object)) {
        snprintf(info->error, sizeof(info->error),
                 "not a Stripe event: no id, type or data.object");
        return -1;
    }
    ev->doc = doc;
    str_copy(info->event_id, ev->event_id, sizeof(info->event_id));
    str_copy(info->type, ev->type, sizeof(info->type));
    return 0;
}

static bool livemode_filtered(const ps_config *cfg, const event_ctx *ev) {
    return (cfg->livemode == LIVEMODE_TEST && ev->livemode) ||
           (cfg->livemode == LIVEMODE_LIVE && !ev->livemode);
}

/* ---------------------------------------------------------------- apply -- */

const char *apply_run_handler(const ps_config *cfg, event_ctx *ev) {
    if (livemode_filtered(cfg, ev)) {
        snprintf(ev->note, sizeof(ev->note), "%s event: PAYSTREAM_LIVEMODE filters it",
                 ev->livemode ? "live" : "test");
        return "skipped";
    }
    event_handler h = handler_for(ev->type);
    if (h == NULL) {
        snprintf(ev->note, sizeof(ev->note), "unhandled type");
        return "skipped";
    }
    switch (h(ev)) {
    case EV_APPLIED:
        return "applied";
    case EV_SKIPPED:
        return "skipped";
    default:
        return NULL;
    }
}

apply_result apply_entry(const ps_config *cfg, pg_conn *pg, const stream_entry *e,
                         apply_info *info) {
    batch_slot s;
    char why[sizeof(info->error)];
    memset(&s, 0, sizeof(s));
    s.e = e;
    apply_result res = apply_batch(cfg, pg, &s, 1, why, sizeof(why));
    *info = s.info;
    if (res == APPLY_DONE) {
        res = s.res;
    } else if (res == APPLY_RETRY) {
        str_copy(info->outcome, "failed", sizeof(info->outcome));
        str_copy(info->error, why, sizeof(info->error));
    }
    batch_release(&s, 1);
    return res;
}

int apply_record_failure(pg_conn *pg, const stream_entry *e, const apply_info *info, long attempts,
                         bool final) {
    char att[24], id[160];
    snprintf(att, sizeof(att), "%ld", attempts);
    /* an entry whose body has no event id is recorded under its stream id */
    if (info->event_id[0])
        str_copy(id, info->event_id, sizeof(id));
    else
        snprintf(id, sizeof(id), "stream:%s", e->id);
    const char *params[10] = {id,
                              info->type[0] ? info->type : (e->type ? e->type : "unknown"),
                              NULL,
                              NULL,
                              NULL,
                              e->id,
                              info->error,
                              att,
                              final ? "true" : "false",
                              info->user_id[0] ? info->user_id : NULL};
    return pg_exec_prepared(pg, "event_failed",
                            "SELECT paystream.ps_event_failed($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                            "$10)",
                            10, params, NULL);
}
