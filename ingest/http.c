/* http.c - the HTTP server of paystream-ingest: listeners (the webhook's and,
 * with PAYSTREAM_ADMIN_LISTEN, the admin one), the connection
 * cap, TLS, routing and the handlers' reply functions. A connection itself
 * (framing, answers, timeouts) is http_conn.c's; what a webhook POST does is
 * webhook.c's. */
#include "http_conn.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#define LISTEN_BACKLOG   1024
#define CAP_LOG_EVERY_US (10 * 1000000LL)

/* ---------------------------------------------------------------- the cap -- */

static void set_accepting(http_server *srv, bool on) {
    for (int i = 0; i < srv->n_listeners; i++) {
        if (on)
            evconnlistener_enable(srv->listeners[i]);
        else
            evconnlistener_disable(srv->listeners[i]);
    }
}

static void count_up(http_server *srv) {
    srv->connections++;
    if (srv->connections < (unsigned long)srv->in->cfg.max_connections || srv->paused) return;
    srv->paused = true;
    set_accepting(srv, false);
    int64_t now = time_mono_us();
    if (now - srv->cap_logged_us > CAP_LOG_EVERY_US) {
        log_warn("%u connections open (PAYSTREAM_MAX_CONNECTIONS): not accepting more until "
                 "one closes",
                 srv->connections);
        srv->cap_logged_us = now;
    }
}

void http_server_conn_closed(http_server *srv) {
    srv->connections--;
    if (srv->paused && !srv->stopped &&
        srv->connections < (unsigned long)srv->in->cfg.max_connections) {
        srv->paused = false;
        set_accepting(srv, true);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg) {
    (void)l;
    http_server *srv = arg;
    count_up(srv);
    http_conn_open(srv, fd, sa, salen, false);
}

/* The admin listener is not paused by the cap: a scrape still gets in. */
static void on_accept_admin(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg) {
    (void)l;
    http_server *srv = arg;
    srv->connections++;
    http_conn_open(srv, fd, sa, salen, true);
}

static void on_accept_error(struct evconnlistener *l, void *arg) {
    (void)l;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn("accept failed: %s", evutil_socket_error_to_string(err));
}

/* ------------------------------------------------------------- replies -- */

void http_reply_json(http_conn *c, int status, const char *json) {
    http_conn_reply(c, status, "application/json", json, strlen(json), NULL);
}

void http_reply_error(http_conn *c, int status, const char *code) {
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", code);
    http_conn_reply(c, status, "application/json", body, (size_t)n, NULL);
}

static void reply_metrics(ingest *in, http_conn *c) {
    metrics_gauges g = {.redis_ready = redis_async_ready(in->redis),
                        .connections = http_server_connections(in->http),
                        .inflight = in->inflight,
                        .draining = in->draining,
                        .start_time = (double)in->started_ms / 1000.0};
    redis_async_stats(in->redis, &g.redis);
    strbuf sb;
    strbuf_init(&sb);
    metrics_render(&in->metrics, &g, &sb);
    if (sb.oom)
        http_reply_error(c, 500, "out_of_memory");
    else
        http_conn_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", sb.buf, sb.len, NULL);
    strbuf_free(&sb);
}

static void reply_not_allowed(http_conn *c, const char *allow) {
    static const char body[] = "{\"error\":\"method_not_allowed\"}";
    http_conn_reply(c, 405, "application/json", body, sizeof(body) - 1, allow);
}

/* ------------------------------------------------------------- routing -- */

static bool path_is(const char *path, size_t len, const char *want) {
    return strlen(want) == len && memcmp(path, want, len) == 0;
}

/* With PAYSTREAM_ADMIN_LISTEN set, the main listener serves only the webhook
 * path and the admin listener only the other three; unset, the main one
 * serves all four. */
http_route_id http_route_of(const http_server *srv, bool admin, const char *path, size_t len) {
    bool split = srv->in->cfg.admin_listen != NULL;
    if (!admin && path_is(path, len, srv->in->cfg.webhook_path)) return ROUTE_WEBHOOK;
    if (split && !admin) return ROUTE_NOT_FOUND;
    if (path_is(path, len, "/healthz")) return ROUTE_HEALTHZ;
    if (path_is(path, len, "/readyz")) return ROUTE_READYZ;
    if (path_is(path, len, "/metrics")) return ROUTE_METRICS;
    return ROUTE_NOT_FOUND;
}

void http_route(http_server *srv, http_conn *c, http_route_id route, http_method method) {
    ingest *in = srv->in;
    bool get = method == HTTP_GET || method == HTTP_HEAD;
    switch (route) {
    case ROUTE_WEBHOOK:
        method == HTTP_POST ? webhook_handle(in, c) : reply_not_allowed(c, "POST");
        break;
    case ROUTE_HEALTHZ:
        get ? http_reply_json(c, 200, "{\"status\":\"ok\"}") : reply_not_allowed(c, "GET, HEAD");
        break;
    case ROUTE_READYZ:
        get ? readyz_handle(in, c) : reply_not_allowed(c, "GET, HEAD");
        break;
    case ROUTE_METRICS:
        get ? reply_metrics(in, c) : reply_not_allowed(c, "GET, HEAD");
        break;
    default:
        http_reply_error(c, 404, "not_found");
    }
}

/* ----------------------------------------------------------- listening -- */

static SSL_CTX *tls_context(const ps_config *cfg, char *err, size_t errlen) {
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "PAYSTREAM_TLS_CERT: cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        snprintf(err, errlen, "PAYSTREAM_TLS_CERT: cannot load %s: %s", cfg->tls_cert, why);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        snprintf(err, errlen, "PAYSTREAM_TLS_KEY: cannot load %s: %s", cfg->tls_key, why);
        goto err;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "PAYSTREAM_TLS_KEY: does not match PAYSTREAM_TLS_CERT");
        goto err;
    }
    return ctx;
err:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* Split "host:port" or "[v6]:port" (host may be empty or "*": every address). */
static int split_address(char *item, char **host, char **port) {
    char *colon;
    if (item[0] == '[') {
        char *close = strchr(item, ']');
        if (close == NULL || close[1] != ':') return -1;
        *close = '\0';
        *host = item + 1;
        *port = close + 2;
    } else {
        colon = strrchr(item, ':');
        if (colon == NULL) return -1;
        *colon = '\0';
        *host = item;
        *port = colon + 1;
    }
    if (**host == '\0' || strcmp(*host, "*") == 0) *host = NULL;
    return **port ? 0 : -1;
}

static void describe_bound(http_server *srv, struct evconnlistener *l, bool admin) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return;
    log_info("listening on %s://%s%s%s:%s%s", srv->ssl && !admin ? "https" : "http",
             ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "", port,
             admin ? "/metrics (admin)" : srv->in->cfg.webhook_path);
}

/* Bind every address one PAYSTREAM_LISTEN (or, admin, PAYSTREAM_ADMIN_LISTEN)
 * item resolves to. */
static int listen_item(http_server *srv, char *item, bool admin, char *err, size_t errlen) {
    const char *name = admin ? "PAYSTREAM_ADMIN_LISTEN" : "PAYSTREAM_LISTEN";
    struct evconnlistener **to = admin ? srv->admin : srv->listeners;
    int *n = admin ? &srv->n_admin : &srv->n_listeners;
    char *host, *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    if (split_address(item, &host, &port) != 0) {
        snprintf(err, errlen, "%s: '%s' is not HOST:PORT or [IPV6]:PORT", name, item);
        return -1;
    }
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s: %s:%s: %s", name, host ? host : "*", port, gai_strerror(gai));
        return -1;
    }
    int rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        /* admin: no SO_REUSEPORT, each process has its own address to scrape */
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
                         (admin ? 0 : LEV_OPT_REUSEABLE_PORT) |
                         (ai->ai_family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0);
        struct evconnlistener *l = NULL;
        if (*n < HTTP_MAX_LISTENERS)
            l = evconnlistener_new_bind(srv->in->base, admin ? on_accept_admin : on_accept, srv,
                                        flags, LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
        if (l == NULL) {
            snprintf(err, errlen, "%s: cannot listen on %s:%s: %s", name, host ? host : "*", port,
                     *n >= HTTP_MAX_LISTENERS ? "too many addresses" : strerror(errno));
            rc = -1;
            break;
        }
        evconnlistener_set_error_cb(l, on_accept_error);
        to[(*n)++] = l;
        describe_bound(srv, l, admin);
    }
    freeaddrinfo(res);
    return rc;
}

/* PAYSTREAM_LISTEN (or PAYSTREAM_ADMIN_LISTEN) is one address or a
 * comma-separated list of them. */
static int listen_all(http_server *srv, const char *addresses, bool admin, char *err,
                      size_t errlen) {
    char *list = ps_strdup(addresses), *save = NULL;
    if (list == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *item = strtok_r(list, ", ", &save); item && rc == 0;
         item = strtok_r(NULL, ", ", &save))
        rc = listen_item(srv, item, admin, err, errlen);
    ps_free(list);
    if (rc == 0 && (admin ? srv->n_admin : srv->n_listeners) == 0) {
        snprintf(err, errlen, "%s: no address to listen on",
                 admin ? "PAYSTREAM_ADMIN_LISTEN" : "PAYSTREAM_LISTEN");
        rc = -1;
    }
    return rc;
}

/* -------------------------------------------------------------- public -- */

http_server *http_server_new(ingest *in, char *err, size_t errlen) {
    http_server *srv = ps_calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->in = in;
    in->http = srv;
    if (in->cfg.tls_cert && in->cfg.tls_key) {
        srv->ssl = tls_context(&in->cfg, err, errlen);
        if (srv->ssl == NULL) goto err;
    }
    if (listen_all(srv, in->cfg.listen, false, err, errlen) != 0) goto err;
    if (in->cfg.admin_listen && listen_all(srv, in->cfg.admin_listen, true, err, errlen) != 0)
        goto err;
    return srv;
err:
    http_server_free(srv);
    in->http = NULL;
    return NULL;
}

static void close_listeners(http_server *srv) {
    for (int i = 0; i < srv->n_listeners; i++)
        evconnlistener_free(srv->listeners[i]);
    srv->n_listeners = 0;
    for (int i = 0; i < srv->n_admin; i++)
        evconnlistener_free(srv->admin[i]);
    srv->n_admin = 0;
}

void http_server_stop_accepting(http_server *srv) {
    if (srv == NULL || srv->stopped) return;
    srv->stopped = true;
    close_listeners(srv);
}

void http_server_free(http_server *srv) {
    if (srv == NULL) return;
    srv->stopped = true;
    close_listeners(srv);
    while (srv->conns)
        http_conn_close(srv->conns);
    if (srv->ssl) SSL_CTX_free(srv->ssl);
    ps_free(srv);
}

unsigned http_server_connections(const http_server *srv) {
    return srv ? srv->connections : 0;
}

size_t http_server_unflushed(const http_server *srv) {
    size_t n = 0;
    for (const http_conn *c = srv ? srv->conns : NULL; c; c = http_conn_next(c))
        n += http_conn_unflushed(c);
    return n;
}
