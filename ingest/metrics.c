/* metrics.c - counters and the Prometheus text exposition format 0.0.4
 * (see metrics.h). Label values are fixed ASCII words, so nothing here needs
 * escaping. Responses that libevent sends by itself (413 for an oversized
 * body, 400 for a malformed request line or oversized headers) never reach
 * our handlers and so are not in paystream_ingest_requests_total. */
#include "metrics.h"

#include <string.h>

/* Upper bounds of the enqueue latency buckets, in seconds (+Inf is implied). */
static const double lat_bounds[METRICS_LAT_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

void metrics_count_status(metrics *m, int status) {
    if (status >= 0 && status < METRICS_MAX_STATUS) m->requests[status]++;
}

void metrics_count_verify(metrics *m, sig_result r) {
    if ((int)r >= 0 && (int)r < METRICS_SIG_RESULTS) m->verify_failures[r]++;
}

void metrics_count_envelope(metrics *m, envelope_result r) {
    if ((int)r >= 0 && (int)r < METRICS_ENV_RESULTS) m->envelope_failures[r]++;
}

void metrics_count_redis(metrics *m, ra_status s) {
    if ((int)s >= 0 && (int)s < METRICS_RA_STATUSES) m->redis_errors[s]++;
}

void metrics_observe_enqueue(metrics *m, int64_t us) {
    double s = (double)us / 1e6;
    int i = 0;
    while (i < METRICS_LAT_BUCKETS - 1 && s > lat_bounds[i])
        i++;
    m->latency_buckets[i]++;
    m->latency_count++;
    m->latency_sum += s;
    m->enqueued++;
}

void metrics_observe_wait(metrics *m, int64_t us, long long replicas) {
    double s = (double)us / 1e6;
    int i = 0;
    while (i < METRICS_LAT_BUCKETS - 1 && s > lat_bounds[i])
        i++;
    m->wait_buckets[i]++;
    m->wait_count++;
    m->wait_sum += s;
    m->wait_replicas = replicas;
}

static void header(strbuf *out, const char *name, const char *type, const char *help) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(const metrics *m, strbuf *out) {
    header(out, "paystream_ingest_requests_total", "counter",
           "HTTP requests answered by paystream-ingest, by status code (not those of "
           "the PAYSTREAM_ADMIN_LISTEN listener).");
    for (int s = 100; s < METRICS_MAX_STATUS; s++)
        if (m->requests[s] || s == 200)
            strbuf_printf(out, "paystream_ingest_requests_total{code=\"%d\"} %llu\n", s,
                          m->requests[s]);
}

/* Several sig_result values share one machine code: sum them per code. */
static void render_verify(const metrics *m, strbuf *out) {
    header(out, "paystream_ingest_verify_failures_total", "counter",
           "Stripe-Signature verification failures, by reason.");
    for (int r = 1; r < METRICS_SIG_RESULTS; r++) {
        const char *code = sig_result_code((sig_result)r);
        bool seen = false;
        for (int q = 1; q < r; q++)
            seen = seen || strcmp(sig_result_code((sig_result)q), code) == 0;
        if (seen) continue;
        unsigned long long n = 0;
        for (int q = r; q < METRICS_SIG_RESULTS; q++)
            if (strcmp(sig_result_code((sig_result)q), code) == 0) n += m->verify_failures[q];
        strbuf_printf(out, "paystream_ingest_verify_failures_total{reason=\"%s\"} %llu\n", code, n);
    }
    header(out, "paystream_ingest_envelope_failures_total", "counter",
           "Verified bodies that are not a Stripe event, by reason.");
    for (int r = 1; r < METRICS_ENV_RESULTS; r++)
        strbuf_printf(out, "paystream_ingest_envelope_failures_total{reason=\"%s\"} %llu\n",
                      envelope_result_code((envelope_result)r), m->envelope_failures[r]);
}

/* A latency histogram's series over lat_bounds (its header written first). */
static void histogram(strbuf *out, const char *name, const unsigned long long *buckets, double sum,
                      unsigned long long count) {
    unsigned long long cum = 0;
    for (int i = 0; i < METRICS_LAT_BUCKETS - 1; i++) {
        cum += buckets[i];
        strbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, lat_bounds[i], cum);
    }
    cum += buckets[METRICS_LAT_BUCKETS - 1];
    strbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    strbuf_printf(out, "%s_sum %.6f\n", name, sum);
    strbuf_printf(out, "%s_count %llu\n", name, count);
}

static void render_latency(const metrics *m, strbuf *out) {
    header(out, "paystream_ingest_enqueue_seconds", "histogram",
           "Time from sending XADD to Redis acknowledging it (and, with "
           "PAYSTREAM_REDIS_MIN_REPLICAS, to WAIT confirming it).");
    histogram(out, "paystream_ingest_enqueue_seconds", m->latency_buckets, m->latency_sum,
              m->latency_count);
    header(out, "paystream_ingest_events_enqueued_total", "counter",
           "Events acknowledged by Redis (answered 200).");
    strbuf_printf(out, "paystream_ingest_events_enqueued_total %llu\n", m->enqueued);
}

static void render_redis(const metrics *m, const metrics_gauges *g, strbuf *out) {
    header(out, "paystream_ingest_redis_errors_total", "counter",
           "Redis commands that did not succeed, by outcome.");
    for (int s = 1; s < METRICS_RA_STATUSES; s++)
        strbuf_printf(out, "paystream_ingest_redis_errors_total{kind=\"%s\"} %llu\n",
                      ra_status_name((ra_status)s), m->redis_errors[s]);
    header(out, "paystream_ingest_redis_connected", "gauge",
           "1 while the Redis connection is up and handshaken.");
    strbuf_printf(out, "paystream_ingest_redis_connected %d\n", g->redis_ready ? 1 : 0);
    header(out, "paystream_ingest_redis_connects_total", "counter",
           "Redis connections established (the first one included).");
    strbuf_printf(out, "paystream_ingest_redis_connects_total %llu\n", g->redis.connects);
    header(out, "paystream_ingest_redis_disconnects_total", "counter",
           "Established Redis connections lost or dropped after a timeout.");
    strbuf_printf(out, "paystream_ingest_redis_disconnects_total %llu\n", g->redis.disconnects);
}

static void render_gauges(const metrics *m, const metrics_gauges *g, strbuf *out) {
    header(out, "paystream_ingest_connections", "gauge", "Open client connections.");
    strbuf_printf(out, "paystream_ingest_connections %u\n", g->connections);
    header(out, "paystream_ingest_inflight_requests", "gauge",
           "Webhook requests waiting for Redis to acknowledge.");
    strbuf_printf(out, "paystream_ingest_inflight_requests %u\n", g->inflight);
    header(out, "paystream_ingest_draining", "gauge", "1 after SIGTERM, while finishing requests.");
    strbuf_printf(out, "paystream_ingest_draining %d\n", g->draining ? 1 : 0);
    header(out, "paystream_ingest_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch, in seconds.");
    strbuf_printf(out, "paystream_ingest_start_time_seconds %.3f\n", g->start_time);
    header(out, "paystream_ingest_secret_reloads_total", "counter",
           "SIGHUP secret reloads, by result.");
    strbuf_printf(out, "paystream_ingest_secret_reloads_total{result=\"ok\"} %llu\n",
                  m->secret_reloads);
    strbuf_printf(out, "paystream_ingest_secret_reloads_total{result=\"failed\"} %llu\n",
                  m->secret_reload_failures);
}

/* Only with PAYSTREAM_REDIS_MIN_REPLICAS > 0. */
static void render_wait(const metrics *m, strbuf *out) {
    header(out, "paystream_ingest_redis_wait_seconds", "histogram",
           "Time from sending WAIT (PAYSTREAM_REDIS_MIN_REPLICAS) to its answer.");
    histogram(out, "paystream_ingest_redis_wait_seconds", m->wait_buckets, m->wait_sum,
              m->wait_count);
    header(out, "paystream_ingest_redis_wait_shortfalls_total", "counter",
           "Events answered 503 because fewer than PAYSTREAM_REDIS_MIN_REPLICAS replicas "
           "confirmed them in time.");
    strbuf_printf(out, "paystream_ingest_redis_wait_shortfalls_total %llu\n", m->wait_shortfalls);
    header(out, "paystream_ingest_redis_min_replicas", "gauge",
           "PAYSTREAM_REDIS_MIN_REPLICAS: replicas WAIT must count before a 200.");
    strbuf_printf(out, "paystream_ingest_redis_min_replicas %ld\n", m->min_replicas);
    header(out, "paystream_ingest_redis_replicas_confirmed", "gauge",
           "Replicas the last WAIT counted (-1: it got no answer).");
    strbuf_printf(out, "paystream_ingest_redis_replicas_confirmed %lld\n", m->wait_replicas);
}

void metrics_render(const metrics *m, const metrics_gauges *g, strbuf *out) {
    render_requests(m, out);
    render_verify(m, out);
    render_latency(m, out);
    render_redis(m, g, out);
    if (m->min_replicas > 0) render_wait(m, out);
    render_gauges(m, g, out);
}
