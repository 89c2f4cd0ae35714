/* ingest.h - what the parts of paystream-ingest share.
 *
 * main.c owns the process (settings, signals, the loop), http.c the HTTP
 * server (listeners, limits, TLS, routing), http_conn.c a client connection
 * (framing, replies, timeouts), http_parse.c the request parser, webhook.c the POST
 * handler (verify, envelope, XADD), replicas.c the WAIT that follows XADD
 * with PAYSTREAM_REDIS_MIN_REPLICAS, metrics.c the counters and /metrics.
 * Everything runs on one libevent loop in one thread. */
#ifndef PS_INGEST_H
#define PS_INGEST_H

#include "config.h"
#include "metrics.h"
#include "redis_async.h"
#include "stripe_sig.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct http_server http_server;
typedef struct http_conn http_conn; /* a client connection, with a request in our hands */
typedef struct replica_wait replica_wait;

typedef struct ingest {
    ps_config cfg;
    struct event_base *base;
    redis_async *redis;
    replica_wait *replicas; /* NULL unless PAYSTREAM_REDIS_MIN_REPLICAS > 0 */
    http_server *http;
    sig_secrets secrets; /* replaced whole on SIGHUP */
    metrics metrics;
    unsigned inflight;  /* requests waiting for Redis */
    int64_t started_ms; /* Unix time the process started */
    bool draining;      /* SIGTERM seen: no new connections, exit when inflight is 0 */
} ingest;

/* ---- main.c */
/* Called by webhook.c whenever a request has been answered. */
void ingest_request_done(ingest *in);
/* Build the secret list from STRIPE_WEBHOOK_SECRET and PAYSTREAM_SECRET_FILE.
 * 0, or -1 with a one-line reason naming the setting (never a secret). */
int ingest_load_secrets(const ps_config *cfg, sig_secrets *out, char *err, size_t errlen);

/* ---- http.c */
/* Listen on every address of PAYSTREAM_LISTEN (SO_REUSEPORT), with TLS when
 * both PAYSTREAM_TLS_CERT and _KEY are set. NULL and a one-line reason naming
 * the setting in err. */
http_server *http_server_new(ingest *in, char *err, size_t errlen);
/* Close the listening sockets: with SO_REUSEPORT, sibling processes take the
 * new connections. Connections already open are kept. */
void http_server_stop_accepting(http_server *srv);
/* Close every connection and free the server. Accepts NULL. Call after the
 * loop has stopped and every request has been answered. */
void http_server_free(http_server *srv);
unsigned http_server_connections(const http_server *srv);
/* Reply bytes not yet handed to the kernel, over all connections. */
size_t http_server_unflushed(const http_server *srv);

/* Answer c's request (exactly once): `status` with body {"error":"<code>"}
 * (code is a fixed ASCII word), or with a JSON body. c may be gone after. */
void http_reply_error(http_conn *c, int status, const char *code);
void http_reply_json(http_conn *c, int status, const char *json);
/* The request's raw body; valid until the handler returns. */
const unsigned char *http_body(const http_conn *c, size_t *len);
/* Its Stripe-Signature header (the first one), NUL-terminated, or NULL. */
const char *http_signature(const http_conn *c);
/* "1.2.3.4:5678" or "[::1]:5678" of the client, for log lines. */
void http_peer(const http_conn *c, char *buf, size_t len);

/* ---- replicas.c */
/* Called exactly once per replicas_add(), from the loop: confirmed is true
 * only when a WAIT sent on the same connection as the XADD counted
 * PAYSTREAM_REDIS_MIN_REPLICAS replicas within its timeout. */
typedef void (*replicas_cb)(void *arg, bool confirmed);
replica_wait *replicas_new(ingest *in); /* NULL: out of memory */
/* After an XADD went out on connection `conn` (redis_async_connection()):
 * cb will say whether the replicas have it. -1 (out of memory): it never will. */
int replicas_add(replica_wait *rw, unsigned conn, replicas_cb cb, void *arg);
/* Answers every waiter not yet sent (not confirmed). After redis_async_free(). */
void replicas_free(replica_wait *rw);

/* ---- webhook.c */
/* POST on PAYSTREAM_WEBHOOK_PATH. Answers exactly once, maybe later. */
void webhook_handle(ingest *in, http_conn *c);
/* GET /readyz: 200 only when Redis answers a PING now. */
void readyz_handle(ingest *in, http_conn *c);

#endif
