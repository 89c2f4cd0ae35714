/* admin.c - the worker's admin listener (see admin.h): libevent's evhttp on
 * its own event loop and thread, so that a slow scrape never holds up a
 * consumer. /healthz is 200 while the process runs; /readyz is 200 only
 * when Redis and PostgreSQL answer, both as the consumers last saw them and
 * by a probe at most once a second (group_stats.c); /metrics renders
 * metrics.c's counters with the group-wide gauges. A timer checks the stop
 * flag: the loop is only ever touched from its own thread. */
#include "admin.h"
#include "alloc.h"
#include "group_stats.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define STOP_POLL_US  200000
#define ADMIN_TIMEOUT 10 /* seconds a client may take */

struct admin {
    const ps_config *cfg;
    volatile sig_atomic_t *stop;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    group_stats *gs;
    pthread_t tid;
    bool started;
};

/* ---------------------------------------------------------------- replies -- */

static void reply(struct evhttp_request *req, int code, const char *ctype, const char *body,
                  size_t len) {
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Service Unavailable", b);
    evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int code, const char *json) {
    reply(req, code, "application/json", json, strlen(json));
}

static void on_healthz(admin *a, struct evhttp_request *req) {
    (void)a;
    reply_json(req, 200, "{\"status\":\"ok\"}");
}

static void on_readyz(admin *a, struct evhttp_request *req) {
    const wm_group *g = group_stats_get(a->gs);
    bool redis = g->redis_up && wmetrics_consumers_see_redis();
    bool postgres = g->postgres_up && wmetrics_consumers_see_postgres();
    if (redis && postgres)
        reply_json(req, 200, "{\"status\":\"ready\"}");
    else
        reply_json(req, 503,
                   !redis ? "{\"error\":\"redis_unavailable\"}"
                          : "{\"error\":\"postgres_unavailable\"}");
}

static void on_metrics(admin *a, struct evhttp_request *req) {
    strbuf sb;
    strbuf_init(&sb);
    wmetrics_render(group_stats_get(a->gs), &sb);
    if (sb.oom)
        evhttp_send_error(req, 500, "out of memory");
    else
        reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", sb.buf, sb.len);
    strbuf_free(&sb);
}

/* ---------------------------------------------------------------- routing -- */

typedef void (*admin_handler)(admin *a, struct evhttp_request *req);

static const struct {
    const char *path;
    admin_handler fn;
} routes[] = {
    {"/healthz", on_healthz},
    {"/readyz", on_readyz},
    {"/metrics", on_metrics},
};

static void on_request(struct evhttp_request *req, void *arg) {
    admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    for (size_t i = 0; path && i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) != 0) continue;
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
            evhttp_send_error(req, 405, "Method Not Allowed");
            return;
        }
        routes[i].fn(a, req);
        return;
    }
    evhttp_send_error(req, 404, "Not Found");
}

/* ---------------------------------------------------------------- the loop -- */

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    admin *a = arg;
    if (*a->stop) event_base_loopbreak(a->base);
}

static void *admin_main(void *arg) {
    admin *a = arg;
    event_base_dispatch(a->base);
    return NULL;
}

/* Split "host:port" or "[v6]:port" in place. */
static int split_address(char *s, char **host, unsigned short *port) {
    char *colon = strrchr(s, ':');
    long p;
    if (colon == NULL || !str_to_long(colon + 1, &p) || p < 0 || p > 65535) return -1;
    *colon = '\0';
    *host = s;
    if (s[0] == '[') {
        size_t n = strlen(s);
        if (n < 2 || s[n - 1] != ']') return -1;
        s[n - 1] = '\0';
        *host = s + 1;
    }
    *port = (unsigned short)p;
    return **host ? 0 : -1;
}

static int admin_bind(admin *a, char *err, size_t errlen) {
    char addr[256], *host;
    unsigned short port;
    str_copy(addr, a->cfg->admin_listen, sizeof(addr));
    if (split_address(addr, &host, &port) != 0) {
        snprintf(err, errlen, "PAYSTREAM_ADMIN_LISTEN: '%s' is not HOST:PORT or [IPV6]:PORT",
                 a->cfg->admin_listen);
        return -1;
    }
    if (evhttp_bind_socket(a->http, host, port) != 0) {
        snprintf(err, errlen, "PAYSTREAM_ADMIN_LISTEN: cannot listen on %s", a->cfg->admin_listen);
        return -1;
    }
    log_info("admin listener on http://%s/metrics", a->cfg->admin_listen);
    return 0;
}

static int admin_setup(admin *a, char *err, size_t errlen) {
    struct timeval tv = {0, STOP_POLL_US};
    a->base = event_base_new();
    a->http = a->base ? evhttp_new(a->base) : NULL;
    a->tick = a->base ? event_new(a->base, -1, EV_PERSIST, on_tick, a) : NULL;
    a->gs = group_stats_new(a->cfg);
    if (a->http == NULL || a->tick == NULL || a->gs == NULL || event_add(a->tick, &tv) != 0) {
        snprintf(err, errlen, "PAYSTREAM_ADMIN_LISTEN: cannot set up the listener");
        return -1;
    }
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 1024);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(a->http, on_request, a);
    return admin_bind(a, err, errlen);
}

admin *admin_start(const ps_config *cfg, volatile sig_atomic_t *stop, char *err, size_t errlen) {
    admin *a = ps_calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "PAYSTREAM_ADMIN_LISTEN: out of memory");
        return NULL;
    }
    a->cfg = cfg;
    a->stop = stop;
    if (admin_setup(a, err, errlen) != 0) goto err;
    if (pthread_create(&a->tid, NULL, admin_main, a) != 0) {
        snprintf(err, errlen, "PAYSTREAM_ADMIN_LISTEN: cannot start its thread");
        goto err;
    }
    a->started = true;
    return a;
err:
    admin_join(a);
    return NULL;
}

void admin_join(admin *a) {
    if (a == NULL) return;
    if (a->started) pthread_join(a->tid, NULL);
    if (a->http) evhttp_free(a->http);
    if (a->tick) event_free(a->tick);
    group_stats_free(a->gs);
    if (a->base) event_base_free(a->base);
    ps_free(a);
}
