/* metrics.h - the worker process's counters and their Prometheus text.
 *
 * One process-wide set, updated by every consumer thread with relaxed C11
 * atomics: one add per event, a few per batch, no lock, no allocation. The
 * admin thread (admin.c) renders them with the group-wide gauges it gathers
 * itself (group_stats.h) on GET /metrics. */
#ifndef PS_WORKER_METRICS_H
#define PS_WORKER_METRICS_H

#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct event types counted by name; the ones past that are type="other". */
#define WMETRICS_MAX_TYPES 64

typedef enum wm_outcome {
    WM_APPLIED = 0, /* committed and changed the ledger */
    WM_SKIPPED,     /* recorded, nothing to do (other livemode, unhandled type...) */
    WM_DUPLICATE,   /* already applied or skipped before */
    WM_WAITING,     /* started waiting for another event (SPEC 3) */
    WM_FAILED,      /* an attempt failed and was rolled back */
    WM_DEAD,        /* moved to <stream>:dead */
    WM_OUTCOMES
} wm_outcome;

/* Group-wide values gathered by the admin thread; `known` false: not
 * rendered (that source did not answer). */
typedef struct wm_group {
    bool redis_known;
    long long lag; /* -1: Redis could not tell (XINFO GROUPS lag is nil) */
    long long pending;
    double oldest_pending_age; /* seconds; 0 when nothing is pending */
    long long dead_letters;
    bool waiting_known; /* from PostgreSQL's waiting table */
    long long waiting;
    double oldest_waiting_age;
    bool redis_up, postgres_up;
} wm_group;

/* Set the start time (Unix ms); call once, before the threads start. */
void wmetrics_init(int64_t start_ms);

/* ---- hot path, any thread */
/* One event of Stripe type `type` (NULL or "": "other") ended as `o`. */
void wmetrics_event(const char *type, wm_outcome o);
void wmetrics_retry(void);
/* One transaction of `events` events took `us` microseconds (apply + commit). */
void wmetrics_batch(size_t events, int64_t us);
/* An event started (+1) or stopped (-1) waiting in this process. */
void wmetrics_waiting_add(int delta);
/* What a consumer last saw of its connections. */
void wmetrics_seen_redis(bool up);
void wmetrics_seen_postgres(bool up);
void wmetrics_consumers_add(int delta);

/* ---- admin thread */
bool wmetrics_consumers_see_redis(void);
bool wmetrics_consumers_see_postgres(void);
int wmetrics_consumers(void);
/* The whole exposition (text format 0.0.4). */
void wmetrics_render(const wm_group *g, strbuf *out);
/* Zero every counter (tests). */
void wmetrics_reset(void);

#endif
