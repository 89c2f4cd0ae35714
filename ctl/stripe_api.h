/* stripe_api.h - one page of Stripe's `GET /v1/events`, over libcurl.
 *
 * The only call paystreamctl makes to Stripe's API (for `backfill`). It owns
 * the HTTP side: TLS verification stays on, timeouts and a response size cap
 * are set, 429 and 5xx are retried with backoff honouring Retry-After and
 * Stripe-Should-Retry. The API key goes into the Authorization header only:
 * it is never logged and never copied into errstr. What to do with the events
 * is cmd_backfill.c's job. */
#ifndef PS_CTL_STRIPE_API_H
#define PS_CTL_STRIPE_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define STRIPE_PAGE_LIMIT   100
#define STRIPE_MAX_RESPONSE (16L * 1024 * 1024) /* a page of 100 events is about 0.5 MB */
#define STRIPE_MAX_ATTEMPTS 6                   /* per page: the first try and 5 retries */

typedef enum {
    STRIPE_OK = 0,
    STRIPE_ERR_AUTH,     /* 401 or 403: wrong key, or no read access to events */
    STRIPE_ERR_NO_RETRY, /* Stripe-Should-Retry: false on an error answer */
    STRIPE_ERR_GAVE_UP,  /* 429, 5xx or the network, STRIPE_MAX_ATTEMPTS times */
    STRIPE_ERR_OTHER,    /* another status, an unreadable page, out of memory */
} stripe_status;

typedef struct stripe_api stripe_api;

/* The query of one page: created[gte] (and created[lte] when lte >= 0),
 * starting_after when not NULL. */
typedef struct stripe_query {
    long gte, lte;
    const char *starting_after;
} stripe_query;

/* One page: `data` (borrowed from root) and `has_more`. Free with
 * stripe_page_free(); NULL and zeroed pages are fine. */
typedef struct stripe_page {
    json_t *root;
    json_t *data;
    bool has_more;
} stripe_page;

/* base: STRIPE_API_BASE (no trailing slash needed); key: the secret, copied.
 * NULL on out of memory or when libcurl cannot start. */
stripe_api *stripe_api_new(const char *base, const char *key);
void stripe_api_free(stripe_api *a);

/* GET one page of events into *out, retrying as described above. On failure
 * stripe_api_errstr() says why in one line (no key in it). */
stripe_status stripe_events_page(stripe_api *a, const stripe_query *q, stripe_page *out);
const char *stripe_api_errstr(const stripe_api *a);
/* Requests sent and retries made so far (for the summary and the bench). */
long stripe_api_requests(const stripe_api *a);

void stripe_page_free(stripe_page *p);

#endif
