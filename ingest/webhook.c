/* webhook.c - POST $PAYSTREAM_WEBHOOK_PATH (SPEC section 2) and /readyz.
 *
 * Verify the Stripe-Signature over the raw body, read the envelope, XADD the
 * untouched body and answer 200 only once Redis has acknowledged the entry
 * (and, with PAYSTREAM_REDIS_MIN_REPLICAS, once WAIT counted enough replicas
 * holding it: replicas.c). Every rejection answers a JSON
 * {"error":"<code>"} and adds nothing to the stream. Signature checking
 * itself is common/stripe_sig.c; the envelope is common/envelope.c. */
#include "envelope.h"
#include "ingest.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A request waiting for Redis. Freed once answered, which always happens:
 * when XADD's reply came and, with PAYSTREAM_REDIS_MIN_REPLICAS, WAIT's too. */
typedef struct pending {
    ingest *in;
    http_conn *conn;
    int64_t sent_us;
    char id[ENVELOPE_MAX_FIELD + 1]; /* event id, for the log line */
    char stream_id[64];              /* XADD's answer */
    ra_status xadd;                  /* XADD's outcome */
    char xadd_err[128];              /* Redis's error reply, if any */
    bool xadd_done;
    bool wait_pending; /* a WAIT is to say whether replicas have it */
    bool replicated;   /* what it said */
} pending;

/* NULL when the signature is good; else the machine code, logged with an
 * explanation an operator can act on. */
static const char *check_signature(ingest *in, http_conn *c, const void *body, size_t len) {
    sig_detail d;
    sig_result r = sig_verify(http_signature(c), body, len, &in->secrets, in->cfg.tolerance,
                              (int64_t)time(NULL), &d);
    if (r == SIG_OK) return NULL;
    char why[512], peer[80];
    sig_explain(r, &d, why, sizeof(why));
    http_peer(c, peer, sizeof(peer));
    metrics_count_verify(&in->metrics, r);
    log_warn("webhook from %s rejected (%s): %s", peer, sig_result_code(r), why);
    return sig_result_code(r);
}

/* NULL when the body is a Stripe event (env filled); else the machine code. */
static const char *check_envelope(ingest *in, http_conn *c, const void *body, size_t len,
                                  envelope *env) {
    char detail[256], peer[80];
    envelope_result r = envelope_parse(body, len, env, detail, sizeof(detail));
    if (r == ENV_OK) return NULL;
    http_peer(c, peer, sizeof(peer));
    metrics_count_envelope(&in->metrics, r);
    log_warn("webhook from %s correctly signed but not a Stripe event (%s): %s", peer,
             envelope_result_code(r), detail);
    return envelope_result_code(r);
}

static const char *redis_error_code(ra_status s) {
    switch (s) {
    case RA_ERR_TIMEOUT:
        return "redis_timeout";
    case RA_ERR_REPLY:
        return "redis_error";
    case RA_ERR_OOM:
        return "out_of_memory";
    default:
        return "redis_unavailable";
    }
}

/* Both answers are in (or only XADD's is needed): reply, exactly once. */
static void answer(pending *p) {
    ingest *in = p->in;
    log_ctx ctx = {.event_id = p->id, .stream_id = p->stream_id[0] ? p->stream_id : NULL};
    in->inflight--;
    if (p->xadd == RA_OK && (in->replicas == NULL || p->replicated)) {
        metrics_observe_enqueue(&in->metrics, time_mono_us() - p->sent_us);
        log_ev_debug(&ctx, "enqueued"); /* per event: /metrics counts them at any level */
        http_reply_json(p->conn, 200, "{\"received\":true}");
    } else if (p->xadd == RA_OK) {
        in->metrics.wait_shortfalls++;
        log_ev_warn(&ctx,
                    "not confirmed by %ld Redis replica%s in time, answered 503 (Stripe "
                    "retries)",
                    in->cfg.redis_min_replicas, in->cfg.redis_min_replicas == 1 ? "" : "s");
        http_reply_error(p->conn, 503, "redis_not_replicated");
    } else {
        metrics_count_redis(&in->metrics, p->xadd);
        log_ev_warn(&ctx, "not enqueued, answered 503 (Stripe retries): Redis %s%s%s",
                    ra_status_name(p->xadd), p->xadd_err[0] ? ": " : "", p->xadd_err);
        http_reply_error(p->conn, 503, redis_error_code(p->xadd));
    }
    ps_free(p);
    ingest_request_done(in);
}

/* XADD's reply: the answer may be 200 from now on (with WAIT's, if asked). */
static void on_enqueued(void *arg, const ra_result *res) {
    pending *p = arg;
    p->xadd = res->status;
    if (res->status == RA_OK && res->str)
        snprintf(p->stream_id, sizeof(p->stream_id), "%.*s", (int)res->len, res->str);
    else if (res->status == RA_OK)
        p->xadd = RA_ERR_REPLY; /* not an entry id */
    if (res->status == RA_ERR_REPLY && res->str)
        snprintf(p->xadd_err, sizeof(p->xadd_err), "%.*s", (int)res->len, res->str);
    p->xadd_done = true;
    if (!p->wait_pending) answer(p);
}

/* WAIT's verdict for this event (replicas.c). */
static void on_replicated(void *arg, bool confirmed) {
    pending *p = arg;
    p->wait_pending = false;
    p->replicated = confirmed;
    if (p->xadd_done) answer(p);
}

/* XADD <stream> * id <evt> type <type> body <raw body> received <ms>.
 * RA_OK: on_enqueued will answer. Otherwise nothing was sent. */
static ra_status enqueue(ingest *in, http_conn *c, const void *body, size_t len,
                         const envelope *env) {
    pending *p = ps_calloc(1, sizeof(*p));
    if (p == NULL) return RA_ERR_OOM;
    p->in = in;
    p->conn = c;
    str_copy(p->id, env->id, sizeof(p->id));
    char received[24];
    snprintf(received, sizeof(received), "%" PRId64, time_now_ms());
    const char *argv[11] = {"XADD",    in->cfg.stream, "*",  "id",       env->id, "type",
                            env->type, "body",         body, "received", received};
    size_t lens[11];
    for (int i = 0; i < 11; i++)
        lens[i] = i == 8 ? len : strlen(argv[i]);
    p->sent_us = time_mono_us();
    ra_status s = redis_async_command(in->redis, on_enqueued, p, 11, argv, lens);
    if (s != RA_OK) {
        ps_free(p);
        return s;
    }
    in->inflight++;
    p->wait_pending = in->replicas != NULL;
    if (p->wait_pending &&
        replicas_add(in->replicas, redis_async_connection(in->redis), on_replicated, p) != 0)
        p->wait_pending = false; /* out of memory: never confirmed, so 503 */
    return RA_OK;
}

void webhook_handle(ingest *in, http_conn *c) {
    envelope env;
    const char *code = NULL;
    int status = 400;
    size_t len;
    const unsigned char *body = http_body(c, &len);
    if (len > (size_t)in->cfg.max_body) { /* http_conn.c enforces it too; keep the promise here */
        status = 413;
        code = "body_too_large";
        goto err;
    }
    if ((code = check_signature(in, c, body, len)) != NULL) goto err;
    if ((code = check_envelope(in, c, body, len, &env)) != NULL) goto err;
    ra_status s = enqueue(in, c, body, len, &env);
    if (s != RA_OK) {
        metrics_count_redis(&in->metrics, s);
        log_ev_warn(&(log_ctx){.event_id = env.id}, "not enqueued, answered 503: Redis %s",
                    ra_status_name(s));
        status = 503;
        code = redis_error_code(s);
        goto err;
    }
    return;
err:
    http_reply_error(c, status, code);
}

/* -------------------------------------------------------------- readyz -- */

static void on_ping(void *arg, const ra_result *res) {
    pending *p = arg;
    ingest *in = p->in;
    in->inflight--;
    if (res->status == RA_OK && !in->draining)
        http_reply_json(p->conn, 200, "{\"status\":\"ready\"}");
    else
        http_reply_json(p->conn, 503, "{\"status\":\"not_ready\",\"redis\":\"not answering\"}");
    ps_free(p);
    ingest_request_done(in);
}

void readyz_handle(ingest *in, http_conn *c) {
    const char *ping[1] = {"PING"};
    pending *p = NULL;
    if (in->draining) {
        http_reply_json(c, 503, "{\"status\":\"draining\"}");
        return;
    }
    if (!redis_async_ready(in->redis) || (p = ps_calloc(1, sizeof(*p))) == NULL) goto err;
    p->in = in;
    p->conn = c;
    if (redis_async_command(in->redis, on_ping, p, 1, ping, NULL) != RA_OK) goto err;
    in->inflight++;
    return;
err:
    ps_free(p);
    http_reply_json(c, 503, "{\"status\":\"not_ready\",\"redis\":\"down\"}");
}
