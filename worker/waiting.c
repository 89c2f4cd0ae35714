/* waiting.c - the waiting table's calls (see waiting.h): parameters in,
 * one row out. The schedule, the end of a wait and the lease of a claimed
 * event are decided in PostgreSQL (sql/events.sql), in one place. */
#include "waiting.h"
#include "alloc.h"
#include "strbuf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_EVENT_WAIT                                                                             \
    "SELECT outcome, detail, next_ms, n_waits FROM paystream.ps_event_wait($1, $2, $3, $4, $5, "   \
    "$6, $7, $8, $9, $10)"
#define SQL_WAITING_DUE                                                                            \
    "SELECT event_id, stream_id, type, body, received_ms, failures FROM "                          \
    "paystream.ps_waiting_due($1, $2)"

static wait_outcome outcome_of(const char *s) {
    if (s == NULL) return WAIT_WAITING;
    if (strcmp(s, "done") == 0) return WAIT_DONE;
    if (strcmp(s, "skipped") == 0) return WAIT_SKIPPED;
    if (strcmp(s, "dead") == 0) return WAIT_DEAD;
    return WAIT_WAITING;
}

int waiting_put(pg_conn *pg, const ps_config *cfg, const stream_entry *e, const apply_info *info,
                wait_result *out) {
    char received[24], wait_max[24];
    pg_result *r = NULL;
    snprintf(received, sizeof(received), "%lld", (long long)e->received_ms);
    snprintf(wait_max, sizeof(wait_max), "%ld", cfg->wait_max < INT_MAX ? cfg->wait_max : INT_MAX);
    const char *params[10] = {
        info->event_id[0] ? info->event_id : e->event_id,
        info->type[0] ? info->type : (e->type ? e->type : "unknown"),
        NULL,
        NULL,
        NULL,
        e->id,
        e->body,
        received,
        info->error,
        wait_max,
    };
    memset(out, 0, sizeof(*out));
    if (pg_exec_prepared(pg, "event_wait", SQL_EVENT_WAIT, 10, params, &r) != 0) return -1;
    if (pg_nrows(r) == 1) {
        out->outcome = outcome_of(pg_value(r, 0, 0));
        str_copy(out->detail, pg_value(r, 0, 1) ? pg_value(r, 0, 1) : "", sizeof(out->detail));
        out->next_ms = pg_value(r, 0, 2) ? atol(pg_value(r, 0, 2)) : 0;
        out->waits = pg_value(r, 0, 3) ? atol(pg_value(r, 0, 3)) : 0;
    }
    pg_result_free(r);
    return 0;
}

/* One row of ps_waiting_due as a stream entry. */
static int entry_from_row(const pg_result *r, int row, stream_entry *e) {
    const char *body = pg_value(r, row, 3), *received = pg_value(r, row, 4);
    e->event_id = ps_strdup(pg_value(r, row, 0) ? pg_value(r, row, 0) : "");
    e->id = ps_strdup(pg_value(r, row, 1) ? pg_value(r, row, 1) : "0-0");
    e->type = ps_strdup(pg_value(r, row, 2) ? pg_value(r, row, 2) : "");
    e->body = ps_strdup(body ? body : "");
    e->body_len = body ? strlen(body) : 0;
    e->received_ms = received ? atoll(received) : 0;
    e->attempts = pg_value(r, row, 5) ? atol(pg_value(r, row, 5)) : 0;
    return e->event_id && e->id && e->type && e->body ? 0 : -1;
}

int waiting_due(pg_conn *pg, long limit, long lease_s, stream_batch *out) {
    char lim[24], lease[24];
    pg_result *r = NULL;
    out->entries = NULL;
    out->n = 0;
    snprintf(lim, sizeof(lim), "%ld", limit);
    snprintf(lease, sizeof(lease), "%ld", lease_s);
    const char *params[2] = {lim, lease};
    if (pg_exec_prepared(pg, "waiting_due", SQL_WAITING_DUE, 2, params, &r) != 0) return -1;
    int n = pg_nrows(r);
    if (n > 0) out->entries = ps_calloc((size_t)n, sizeof(stream_entry));
    /* out of memory: the rows come due again when their lease ends */
    for (int i = 0; out->entries && i < n; i++) {
        out->n++;
        if (entry_from_row(r, i, &out->entries[i]) != 0) {
            stream_entry *e = &out->entries[i];
            ps_free(e->event_id);
            ps_free(e->id);
            ps_free(e->type);
            ps_free(e->body);
            memset(e, 0, sizeof(*e));
            out->n--;
            break;
        }
    }
    pg_result_free(r);
    return 0;
}

long waiting_failed(pg_conn *pg, const apply_info *info, long delay_ms) {
    char delay[24];
    pg_result *r = NULL;
    snprintf(delay, sizeof(delay), "%ld", delay_ms);
    const char *params[3] = {info->event_id, info->error, delay};
    if (pg_exec_prepared(pg, "waiting_failed", "SELECT paystream.ps_waiting_failed($1, $2, $3)", 3,
                         params, &r) != 0)
        return -1;
    long n = pg_nrows(r) == 1 && pg_value(r, 0, 0) ? atol(pg_value(r, 0, 0)) : 0;
    pg_result_free(r);
    return n;
}
