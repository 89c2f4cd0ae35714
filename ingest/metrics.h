/* metrics.h - ingest's counters and their Prometheus text (GET /metrics).
 *
 * Plain counters updated from the one loop thread, no locks. Gauges that live
 * elsewhere (Redis state, open connections, requests in flight) are read at
 * render time and passed in by the caller. */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include "envelope.h"
#include "redis_async.h"
#include "stripe_sig.h"
#include "strbuf.h"

#include <stdbool.h>
#include <stdint.h>

#define METRICS_MAX_STATUS  600
#define METRICS_SIG_RESULTS (SIG_NO_SECRET + 1)
#define METRICS_ENV_RESULTS (ENV_OOM + 1)
#define METRICS_RA_STATUSES (RA_ERR_CLOSED + 1)
#define METRICS_LAT_BUCKETS 14

typedef struct metrics {
    unsigned long long requests[METRICS_MAX_STATUS]; /* by HTTP status we answered */
    unsigned long long verify_failures[METRICS_SIG_RESULTS];
    unsigned long long envelope_failures[METRICS_ENV_RESULTS];
    unsigned long long redis_errors[METRICS_RA_STATUSES];    /* XADD and PING outcomes != ok */
    unsigned long long enqueued;                             /* XADDs acknowledged */
    unsigned long long latency_buckets[METRICS_LAT_BUCKETS]; /* not cumulative */
    unsigned long long latency_count;
    double latency_sum; /* seconds */
    unsigned long long secret_reloads, secret_reload_failures;
    /* PAYSTREAM_REDIS_MIN_REPLICAS > 0: the WAIT after XADD */
    unsigned long long wait_buckets[METRICS_LAT_BUCKETS]; /* not cumulative */
    unsigned long long wait_count;
    double wait_sum;                    /* seconds */
    unsigned long long wait_shortfalls; /* events answered 503: too few replicas confirmed */
    long long wait_replicas;            /* what the last WAIT counted; -1: no answer */
    long min_replicas;                  /* the setting; 0: no WAIT, no WAIT metrics */
} metrics;

/* Values owned by other parts, sampled when /metrics is asked for. */
typedef struct metrics_gauges {
    bool redis_ready;
    unsigned connections;
    unsigned inflight;
    bool draining;
    double start_time; /* Unix seconds the process started */
    ra_stats redis;
} metrics_gauges;

void metrics_count_status(metrics *m, int status);
void metrics_count_verify(metrics *m, sig_result r);
void metrics_count_envelope(metrics *m, envelope_result r);
void metrics_count_redis(metrics *m, ra_status s);
/* One XADD round trip, from sending to the acknowledgement, in microseconds. */
void metrics_observe_enqueue(metrics *m, int64_t us);
/* One WAIT, from sending to its answer, and the replicas it counted (-1: no
 * answer). webhook.c counts wait_shortfalls, per event. */
void metrics_observe_wait(metrics *m, int64_t us, long long replicas);
void metrics_render(const metrics *m, const metrics_gauges *g, strbuf *out);

#endif
