/* trigger.h - `paystreamctl trigger`: realistic, signed Stripe events sent to a
 * running ingest, like `stripe trigger`.
 *
 * cmd_trigger.c parses the command line, loads the plans and sends; the
 * scenarios that build the events live in trigger_events.c (from the JSON
 * templates in ctl/trigger_templates/), the HTTP/1.1 client in trigger_http.c.
 * Nothing here talks to Redis or PostgreSQL. */
#ifndef PS_CTL_TRIGGER_H
#define PS_CTL_TRIGGER_H

#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int cmd_trigger(const ps_config *cfg, int argc, char **argv);

/* ------------------------------------------------------------------ events */

#define TRIG_PERIOD ((int64_t)2592000) /* 30 days: one billing cycle */

/* A plan or credit pack of the plans file. */
typedef struct trig_item {
    char id[65];
    char price[256];
    long credits;
    long amount; /* cents: made up from the credits (Stripe knows the real one) */
    char name[128];
} trig_item;

/* One event to send: the body is the exact text that is signed. */
typedef struct trig_event {
    char id[40];
    char type[64];
    char *body; /* owned */
} trig_event;

/* What every scenario of one run shares. Ids of things that outlive one
 * scenario (customer, subscription, item) are derived from the user id, so
 * separate runs for one user refer to the same objects. */
typedef struct trig_ctx {
    char user[37];
    char customer[32];
    char subscription[40];
    char item[32];
    const char *api_version;
    bool basil;         /* api_version >= 2025-03-31 (items carry the period) */
    int64_t now;        /* Unix seconds; no event is dated later */
    int64_t anchor;     /* start of the user's billing period 1 */
    json_t *tmpl[12];   /* templates, by the order of trigger_events.c's list */
    uint64_t rng;       /* state of the fresh-id generator */
    trig_event *events; /* built so far, in sending order */
    size_t n_events, cap_events;
    char err[256];
} trig_ctx;

/* Load the templates from dir and derive the user's ids. 0, or -1 with err. */
int trig_ctx_init(trig_ctx *c, const char *dir, const char *user, const char *api_version,
                  int64_t now);
/* Free the templates and the events; accepts a zeroed or freed ctx. */
void trig_ctx_free(trig_ctx *c);

/* The scenarios: append their events to c->events. `period` is the 1-based
 * billing period the scenario happens in (period 2 is the one holding now).
 * Each returns 0, or -1 with c->err set. */
int trig_subscription(trig_ctx *c, int period, const trig_item *plan);
int trig_credit_pack(trig_ctx *c, int period, const trig_item *pack);
int trig_renewal(trig_ctx *c, int period, const trig_item *plan);
int trig_upgrade(trig_ctx *c, int period, const trig_item *from, const trig_item *to);
int trig_refund(trig_ctx *c, int period, const trig_item *pack);
/* The subscription's invoice of the period (paid by `subscription` or
 * `renewal`) refunded in full. */
int trig_refund_subscription(trig_ctx *c, int period, const trig_item *plan);
/* A chargeback of the period's pack: opened, funds withdrawn, under review,
 * then won (funds reinstated) or lost. */
int trig_dispute(trig_ctx *c, int period, const trig_item *pack, bool won);
int trig_cancel(trig_ctx *c, int period, const trig_item *plan);
/* Billing cases: n seats of a plan; a trial (its $0 invoice); a pause; a
 * second subscription whose first payment fails and which expires. */
int trig_seats(trig_ctx *c, int period, const trig_item *plan, long seats);
int trig_trial(trig_ctx *c, int period, const trig_item *plan);
int trig_pause(trig_ctx *c, int period, const trig_item *plan);
int trig_second_subscription(trig_ctx *c, int period, const trig_item *plan);

/* -------------------------------------------------------------------- http */

typedef struct trig_url {
    char host[256];
    char port[8];
    char path[1024];
    char host_header[300]; /* host[:port] as the URL spelled it */
} trig_url;

/* Parse http://host[:port][/path]. 0, or -1 with a one-line reason in err
 * (https:// is refused: this client speaks plain HTTP only). */
int trig_url_parse(const char *url, trig_url *u, char *err, size_t errlen);

/* POST body with a Stripe-Signature header over a new connection, blocking at
 * most timeout_ms per step. Returns the HTTP status, or 0 on a connection
 * error (refused, timeout, reset, unparseable answer) with err saying why.
 * The first line of the response body goes to detail (may be empty). */
int trig_http_post(const trig_url *u, const char *signature, const char *body, size_t len,
                   int timeout_ms, char *detail, size_t detail_len, char *err, size_t errlen);

#endif
