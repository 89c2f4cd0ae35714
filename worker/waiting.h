/* waiting.h - events that wait for another event (SPEC 3, "Waiting is not
 * failing"): the worker's calls of the waiting table (sql/events.sql).
 *
 * An event whose rule failed with SQLSTATE 55000 is kept in PostgreSQL
 * (waiting_put) before its stream entry is acknowledged; the consumer takes
 * the due ones back (waiting_due) and applies them through the same batch
 * path as stream entries. What to do with the outcomes is consumer.c's. */
#ifndef PS_WORKER_WAITING_H
#define PS_WORKER_WAITING_H

#include "apply.h"
#include "config.h"
#include "pg.h"
#include "stream.h"

/* The SQLSTATE of a rule that needs another event first. */
#define WAIT_SQLSTATE "55000"

typedef enum {
    WAIT_WAITING = 0, /* kept: next attempt in next_ms */
    WAIT_DONE,        /* another worker applied or skipped it meanwhile */
    WAIT_SKIPPED,     /* the wait of a refund or dispute ran out: recorded skipped */
    WAIT_DEAD,        /* the wait ran out: dead-letter it with detail as its error */
} wait_outcome;

typedef struct wait_result {
    wait_outcome outcome;
    char detail[640]; /* what it waits for; the note or the dead letter's error */
    long next_ms;     /* WAIT_WAITING: until its next attempt */
    long waits;       /* attempts that waited before this one */
} wait_result;

/* Keep entry e, whose rule waits (info->error says for what), in its own
 * transaction; PAYSTREAM_WAIT_MAX from cfg. 0, or -1 with pg's error. */
int waiting_put(pg_conn *pg, const ps_config *cfg, const stream_entry *e, const apply_info *info,
                wait_result *out);
/* Claim up to limit due waiting events for lease_s seconds, as stream
 * entries (id: the entry each came in; attempts: its real failures since it
 * started waiting) in *out, which the caller frees with
 * stream_batch_free(). 0, or -1 with pg's error (*out empty). */
int waiting_due(pg_conn *pg, long limit, long lease_s, stream_batch *out);
/* A waiting event that failed for real: tried again in delay_ms. Returns its
 * real failures since it started waiting (0: it waits no more), -1 on error. */
long waiting_failed(pg_conn *pg, const apply_info *info, long delay_ms);

#endif
