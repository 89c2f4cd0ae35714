/* apply.c - one event, one transaction (see apply.h): parse the envelope,
 * record the event id, run the type's handler, finish or roll back. The
 * steps are shared with batch.c (apply_steps.h). */
#include "apply.h"
#include "apply_steps.h"
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

/* ---------------------------------------------------------- transaction -- */

static apply_result db_error(pg_conn *pg, apply_info *info, const char *what) {
    if (pg_is_lost(pg)) return APPLY_DB_LOST;
    snprintf(info->error, sizeof(info->error), "%s: %s", what, pg_errstr(pg));
    pg_exec(pg, "ROLLBACK", 0, NULL, NULL);
    return pg_is_lost(pg) ? APPLY_DB_LOST : APPLY_RETRY;
}

/* The 6 parameters of ps_event_begin; created is 24 bytes. */
static void apply_event_params(const event_ctx *ev, const stream_entry *e, char *created,
                               const char **params) {
    snprintf(created, 24, "%" PRId64, ev->created);
    params[0] = ev->event_id;
    params[1] = ev->type;
    params[2] = ev->livemode ? "true" : "false";
    params[3] = ev->api_version;
    params[4] = created;
    params[5] = e->id;
}

/* The 4 parameters of ps_event_finish. */
static void apply_finish_params(const event_ctx *ev, const char *status, const char **params) {
    params[0] = ev->event_id;
    params[1] = status;
    params[2] = ev->user_id[0] ? ev->user_id : NULL;
    params[3] = ev->note[0] ? ev->note : NULL;
}

/* ps_event_begin: the event's status before this attempt, in `status`. */
static int event_begin(pg_conn *pg, const event_ctx *ev, const stream_entry *e, char *status) {
    char created[24];
    const char *params[6];
    apply_event_params(ev, e, created, params);
    pg_result *r = NULL;
    if (pg_exec_prepared(pg, "event_begin",
                         "SELECT paystream.ps_event_begin($1, $2, $3, $4, $5, $6)", 6, params,
                         &r) != 0)
        return -1;
    str_copy(status, pg_value(r, 0, 0) ? pg_value(r, 0, 0) : "", 16);
    pg_result_free(r);
    return 0;
}

static int event_finish(pg_conn *pg, const event_ctx *ev, const char *status) {
    const char *params[4];
    apply_finish_params(ev, status, params);
    return pg_exec_prepared(pg, "event_finish", "SELECT paystream.ps_event_finish($1, $2, $3, $4)",
                            4, params, NULL);
}

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
    event_ctx ev;
    char status[16];
    memset(info, 0, sizeof(*info));
    memset(&ev, 0, sizeof(ev));
    str_copy(info->event_id, e->event_id ? e->event_id : "", sizeof(info->event_id));
    str_copy(info->outcome, "failed", sizeof(info->outcome));
    json_doc *doc = json_doc_new(); /* one event: its own document */
    if (apply_parse(e, doc, &ev, info) != 0) {
        json_doc_free(doc);
        return APPLY_RETRY;
    }
    ev.pg = pg;
    apply_result res = APPLY_DONE;
    if (pg_exec(pg, "BEGIN", 0, NULL, NULL) != 0 || event_begin(pg, &ev, e, status) != 0) {
        res = db_error(pg, info, "begin");
        goto done;
    }
    if (strcmp(status, "applied") == 0 || strcmp(status, "skipped") == 0) {
        str_copy(info->outcome, "duplicate", sizeof(info->outcome));
    } else {
        const char *final = apply_run_handler(cfg, &ev);
        if (final == NULL) {
            if (pg_is_lost(pg)) {
                res = APPLY_DB_LOST;
                goto done;
            }
            str_copy(info->error, ev.error, sizeof(info->error));
            pg_exec(pg, "ROLLBACK", 0, NULL, NULL);
            res = pg_is_lost(pg) ? APPLY_DB_LOST : APPLY_RETRY;
            goto done;
        }
        if (event_finish(pg, &ev, final) != 0) {
            res = db_error(pg, info, "finish");
            goto done;
        }
        str_copy(info->outcome, final, sizeof(info->outcome));
    }
    if (pg_exec(pg, "COMMIT", 0, NULL, NULL) != 0) res = db_error(pg, info, "commit");
done:
    json_doc_free(doc);
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
    const char *params[9] = {id,
                             info->type[0] ? info->type : (e->type ? e->type : "unknown"),
                             NULL,
                             NULL,
                             NULL,
                             e->id,
                             info->error,
                             att,
                             final ? "true" : "false"};
    return pg_exec_prepared(pg, "event_failed",
                            "SELECT paystream.ps_event_failed($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            9, params, NULL);
}
