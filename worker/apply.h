/* apply.h - apply one stream entry to the ledger in one transaction.
 *
 * The event goes through ps_apply_batch alone (batch.h), whose first step is
 * to find the event id recorded: an event already applied or skipped changes
 * nothing. The caller acknowledges the entry only after APPLY_DONE, i.e.
 * after COMMIT. */
#ifndef PS_WORKER_APPLY_H
#define PS_WORKER_APPLY_H

#include "config.h"
#include "pg.h"
#include "stream.h"

typedef enum {
    APPLY_DONE = 0, /* committed (applied, skipped or duplicate): acknowledge it */
    APPLY_RETRY,    /* the event failed and was rolled back: retry later */
    APPLY_DB_LOST,  /* the database connection went away: reconnect and redo */
} apply_result;

typedef struct apply_info {
    char event_id[128];
    char type[128];
    char outcome[16]; /* applied, skipped, duplicate, failed */
    char error[512];  /* for APPLY_RETRY */
    char sqlstate[6]; /* for APPLY_RETRY of a rule that failed: its SQLSTATE, or "" */
    char user_id[40]; /* for APPLY_RETRY: the event's user when known, or "" */
} apply_info;

apply_result apply_entry(const ps_config *cfg, pg_conn *pg, const stream_entry *e,
                         apply_info *info);
/* Record a failed attempt (own transaction); final marks it dead-lettered. */
int apply_record_failure(pg_conn *pg, const stream_entry *e, const apply_info *info, long attempts,
                         bool final);

#endif
