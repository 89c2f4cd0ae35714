/* stripe_api.c - `GET /v1/events` pages from Stripe's API over libcurl (see
 * stripe_api.h): the URL, the request with its limits, the retry policy, and
 * the page's JSON. Nothing here knows about the stream or the database. */
#include "stripe_api.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONNECT_TIMEOUT_S 10
#define REQUEST_TIMEOUT_S 60
#define RETRY_AFTER_MAX_S 60
#define BACKOFF_MAX_MS    30000

struct stripe_api {
    CURL *curl;
    struct curl_slist *headers; /* holds the Authorization header: never printed */
    char *base;
    const char *key; /* for scrubbing Stripe's error messages only */
    char *key_copy;
    strbuf body;
    long retry_after_s; /* -1: no Retry-After */
    int should_retry;   /* -1: no Stripe-Should-Retry; 0 false; 1 true */
    long requests;
    char curl_err[CURL_ERROR_SIZE];
    char errstr[512];
};

/* ---------------------------------------------------------------- setup -- */

stripe_api *stripe_api_new(const char *base, const char *key) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
    stripe_api *a = ps_calloc(1, sizeof(*a));
    if (a == NULL) {
        curl_global_cleanup();
        return NULL;
    }
    strbuf_init(&a->body);
    a->base = ps_strdup(base);
    a->key_copy = ps_strdup(key);
    a->key = a->key_copy;
    a->curl = curl_easy_init();
    strbuf auth;
    strbuf_init(&auth);
    strbuf_printf(&auth, "Authorization: Bearer %s", key);
    if (!auth.oom) a->headers = curl_slist_append(NULL, auth.buf);
    if (auth.buf) memset(auth.buf, 0, auth.len); /* the key's only other copy */
    strbuf_free(&auth);
    if (a->base == NULL || a->key_copy == NULL || a->curl == NULL || a->headers == NULL) {
        stripe_api_free(a);
        return NULL;
    }
    size_t n = strlen(a->base);
    while (n > 0 && a->base[n - 1] == '/')
        a->base[--n] = '\0';
    return a;
}

void stripe_api_free(stripe_api *a) {
    if (a == NULL) return;
    if (a->curl) curl_easy_cleanup(a->curl);
    curl_slist_free_all(a->headers);
    if (a->key_copy) memset(a->key_copy, 0, strlen(a->key_copy));
    ps_free(a->key_copy);
    ps_free(a->base);
    strbuf_free(&a->body);
    ps_free(a);
    curl_global_cleanup();
}

const char *stripe_api_errstr(const stripe_api *a) {
    return a->errstr;
}

long stripe_api_requests(const stripe_api *a) {
    return a->requests;
}

void stripe_page_free(stripe_page *p) {
    if (p == NULL) return;
    json_decref(p->root);
    p->root = p->data = NULL;
    p->has_more = false;
}

/* ------------------------------------------------------------- callbacks -- */

/* The body, up to STRIPE_MAX_RESPONSE bytes: past that the transfer fails. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
    stripe_api *a = arg;
    size_t n = size * nmemb;
    if (a->body.len + n > (size_t)STRIPE_MAX_RESPONSE) return 0;
    strbuf_append(&a->body, data, n);
    return a->body.oom ? 0 : n;
}

/* Retry-After (seconds) and Stripe-Should-Retry, from the answer's head. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
    stripe_api *a = arg;
    size_t n = size * nmemb;
    char line[128];
    if (n >= sizeof(line)) return n;
    memcpy(line, data, n);
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "Retry-After:", 12) == 0) {
        long v;
        const char *s = line + 12 + strspn(line + 12, " \t");
        if (str_to_long(s, &v) && v >= 0) a->retry_after_s = v;
    } else if (strncasecmp(line, "Stripe-Should-Retry:", 20) == 0) {
        const char *s = line + 20 + strspn(line + 20, " \t");
        a->should_retry = strcasecmp(s, "false") == 0 ? 0 : strcasecmp(s, "true") == 0 ? 1 : -1;
    }
    return n;
}

/* --------------------------------------------------------------- request -- */

/* {base}/v1/events?limit=100&created[gte]=..[&created[lte]=..][&starting_after=..] */
static char *events_url(stripe_api *a, const stripe_query *q) {
    strbuf u;
    strbuf_init(&u);
    strbuf_printf(&u, "%s/v1/events?limit=%d&created[gte]=%ld", a->base, STRIPE_PAGE_LIMIT, q->gte);
    if (q->lte >= 0) strbuf_printf(&u, "&created[lte]=%ld", q->lte);
    if (q->starting_after) {
        char *esc = curl_easy_escape(a->curl, q->starting_after, 0);
        if (esc == NULL) u.oom = true;
        strbuf_printf(&u, "&starting_after=%s", esc ? esc : "");
        curl_free(esc);
    }
    if (u.oom) {
        strbuf_free(&u);
        return NULL;
    }
    return strbuf_detach(&u);
}

/* One GET; the HTTP status in *status (0 when no answer came). */
static CURLcode get_once(stripe_api *a, const char *url, long *status) {
    CURL *c = a->curl;
    curl_easy_reset(c);
    strbuf_reset(&a->body);
    a->retry_after_s = -1;
    a->should_retry = -1;
    a->curl_err[0] = '\0';
    *status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STRIPE_MAX_RESPONSE);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* gzip: a page shrinks about 10x */
    curl_easy_setopt(c, CURLOPT_USERAGENT, "paystreamctl/" PAYSTREAM_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, a->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    a->requests++;
    log_debug("GET %s", url); /* the URL carries no secret */
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* Stripe's error message for errstr, unless it could show any of the key. */
static const char *error_message(stripe_api *a, json_t **root) {
    json_error_t jerr;
    *root = json_loadb(a->body.buf ? a->body.buf : "", a->body.len, 0, &jerr);
    const char *m = json_string_value(json_object_get(json_object_get(*root, "error"), "message"));
    if (m == NULL || strstr(m, "_live_") || strstr(m, "_test_") || strstr(m, a->key)) return "";
    return m;
}

/* ------------------------------------------------------------ the policy -- */

/* A transfer error worth another try (the network), not one that would
 * fail again the same way (a certificate that does not verify, a bad URL). */
static bool transient(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return true;
    default:
        return false;
    }
}

/* What a failed attempt means: 0 retry, else the status to return. */
static stripe_status judge(stripe_api *a, CURLcode rc, long status, const char *url) {
    json_t *root = NULL;
    stripe_status out = STRIPE_OK;
    if (rc != CURLE_OK) {
        snprintf(a->errstr, sizeof(a->errstr), "GET %s: %s", url,
                 a->curl_err[0] ? a->curl_err : curl_easy_strerror(rc));
        bool too_big = rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED;
        if (too_big)
            snprintf(a->errstr, sizeof(a->errstr), "GET %s: answer larger than %ld bytes", url,
                     STRIPE_MAX_RESPONSE);
        return too_big || !transient(rc) ? STRIPE_ERR_OTHER : STRIPE_OK;
    }
    if (status == 401 || status == 403) {
        snprintf(a->errstr, sizeof(a->errstr),
                 "Stripe answered %ld: STRIPE_API_KEY is wrong, or the key lacks read access to "
                 "events (a restricted key rk_... with Events: Read)",
                 status);
        return STRIPE_ERR_AUTH;
    }
    const char *msg = error_message(a, &root);
    snprintf(a->errstr, sizeof(a->errstr), "GET %s: Stripe answered %ld%s%s", url, status,
             msg[0] ? ": " : "", msg);
    if (a->should_retry == 0) {
        size_t n = strlen(a->errstr);
        snprintf(a->errstr + n, sizeof(a->errstr) - n, " (Stripe-Should-Retry: false)");
        out = STRIPE_ERR_NO_RETRY;
    } else if (!(status == 429 || status >= 500 || a->should_retry == 1)) {
        out = STRIPE_ERR_OTHER;
    }
    json_decref(root);
    return out;
}

/* The page's JSON: an object with a `data` array and `has_more`. */
static stripe_status parse_page(stripe_api *a, const char *url, stripe_page *out) {
    json_error_t jerr;
    out->root = json_loadb(a->body.buf ? a->body.buf : "", a->body.len, 0, &jerr);
    out->data = json_object_get(out->root, "data");
    json_t *more = json_object_get(out->root, "has_more");
    if (!json_is_array(out->data) || !json_is_boolean(more)) {
        snprintf(a->errstr, sizeof(a->errstr), "GET %s: not a list of events%s%s", url,
                 out->root ? "" : ": ", out->root ? "" : jerr.text);
        stripe_page_free(out);
        return STRIPE_ERR_OTHER;
    }
    out->has_more = json_is_true(more);
    return STRIPE_OK;
}

/* How long to wait before attempt `attempt` (1-based): Retry-After when
 * Stripe sent it (at most a minute), else 0.8 s doubling, with jitter. */
static long wait_ms(const stripe_api *a, unsigned attempt) {
    if (a->retry_after_s >= 0)
        return (a->retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : a->retry_after_s) * 1000;
    return backoff_ms(attempt + 2, BACKOFF_MAX_MS);
}

stripe_status stripe_events_page(stripe_api *a, const stripe_query *q, stripe_page *out) {
    memset(out, 0, sizeof(*out));
    char *url = events_url(a, q);
    stripe_status st = STRIPE_ERR_OTHER;
    if (url == NULL) {
        snprintf(a->errstr, sizeof(a->errstr), "out of memory");
        return st;
    }
    for (unsigned attempt = 0;; attempt++) {
        long status;
        CURLcode rc = get_once(a, url, &status);
        if (rc == CURLE_OK && status == 200) {
            st = parse_page(a, url, out);
            break;
        }
        st = judge(a, rc, status, url);
        if (st != STRIPE_OK) break;
        if (attempt + 1 >= STRIPE_MAX_ATTEMPTS) {
            st = STRIPE_ERR_GAVE_UP;
            size_t n = strlen(a->errstr);
            snprintf(a->errstr + n, sizeof(a->errstr) - n, " (gave up after %d attempts)",
                     STRIPE_MAX_ATTEMPTS);
            break;
        }
        long ms = wait_ms(a, attempt + 1);
        log_warn("%s; retrying in %ld ms", a->errstr, ms);
        time_sleep_ms(ms);
    }
    ps_free(url);
    return st;
}
