/* http.c - the evhttp server of paystream-ingest: listeners, limits, TLS,
 * routing and replies. What a webhook POST does is webhook.c's business.
 *
 * libevent 2.1 gives evhttp servers no hook per connection, only the bevcb
 * that makes a connection's bufferevent. We take a reference on that
 * bufferevent and, one loop turn later, when evhttp has set its callbacks,
 * read the connection back from them and set its close callback. That keeps
 * an exact connection count (for PAYSTREAM_MAX_CONNECTIONS) and gives each
 * connection a deadline: from accept, or from our last answer on it, a client
 * has PAYSTREAM_TIMEOUT seconds to deliver a complete request, however slowly
 * it trickles bytes (evhttp's own timeouts only notice silence). */
#include "ingest.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#define MAX_LISTENERS    16
#define MAX_HEADERS_SIZE 16384 /* all request headers together; a Stripe-Signature fits 8 KiB */
#define LISTEN_BACKLOG   1024
#define CAP_LOG_EVERY_US (10 * 1000000LL)

/* One client connection, from its registration to evhttp freeing it. */
typedef struct conn {
    http_server *srv;
    struct evhttp_connection *evcon;
    int fd;
    struct event *deadline; /* closes the connection unless a request is in our hands */
    bool busy;              /* a request of this connection awaits our answer */
} conn;

/* A bufferevent handed to evhttp, not yet matched to its connection. */
typedef struct fresh_bev {
    struct fresh_bev *next;
    struct bufferevent *bev; /* we hold a reference */
} fresh_bev;

struct http_server {
    ingest *in;
    struct evhttp *http;
    SSL_CTX *ssl;
    struct evhttp_bound_socket *bound[MAX_LISTENERS];
    int n_bound;
    fresh_bev *fresh;
    struct event *register_ev; /* matches the fresh ones, one loop turn after accept */
    conn **by_fd;              /* registered connections by socket */
    int by_fd_len;
    unsigned connections; /* accepted and not yet closed (fresh ones included) */
    bool paused;          /* listeners disabled: the connection cap is reached */
    bool stopped;         /* listeners closed (draining) */
    int64_t cap_logged_us;
};

/* ---------------------------------------------------------- connections -- */

static void set_accepting(http_server *srv, bool on) {
    for (int i = 0; i < srv->n_bound; i++) {
        struct evconnlistener *l = evhttp_bound_socket_get_listener(srv->bound[i]);
        if (on)
            evconnlistener_enable(l);
        else
            evconnlistener_disable(l);
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

static void count_down(http_server *srv) {
    srv->connections--;
    if (srv->paused && !srv->stopped &&
        srv->connections < (unsigned long)srv->in->cfg.max_connections) {
        srv->paused = false;
        set_accepting(srv, true);
    }
}

static void arm_deadline(conn *c) {
    struct timeval tv = {c->srv->in->cfg.timeout, 0};
    event_add(c->deadline, &tv);
}

/* Too slow: close, unless we hold one of its requests (then our answer
 * re-arms the deadline). */
static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->busy) return;
    log_info("a client sent no complete request within %lds (PAYSTREAM_TIMEOUT): closing its "
             "connection",
             c->srv->in->cfg.timeout);
    evhttp_connection_free(c->evcon); /* runs on_close, which frees c */
}

/* evhttp's close callback: the connection is being freed. */
static void on_close(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    conn *c = arg;
    http_server *srv = c->srv;
    if (c->fd >= 0 && c->fd < srv->by_fd_len && srv->by_fd[c->fd] == c) srv->by_fd[c->fd] = NULL;
    event_free(c->deadline);
    ps_free(c);
    count_down(srv);
}

static int by_fd_reserve(http_server *srv, int fd) {
    if (fd < srv->by_fd_len) return 0;
    int len = srv->by_fd_len ? srv->by_fd_len : 256;
    while (len <= fd)
        len *= 2;
    conn **p = ps_realloc(srv->by_fd, (size_t)len * sizeof(*p));
    if (p == NULL) return -1;
    memset(p + srv->by_fd_len, 0, (size_t)(len - srv->by_fd_len) * sizeof(*p));
    srv->by_fd = p;
    srv->by_fd_len = len;
    return 0;
}

/* Match one fresh bufferevent to its connection (evhttp's callback argument). */
static void register_one(http_server *srv, struct bufferevent *bev) {
    void *evcon = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
    if (evcon == NULL) { /* evhttp already freed it: callbacks are cleared on free */
        count_down(srv);
        return;
    }
    conn *c = ps_calloc(1, sizeof(*c));
    int fd = (int)bufferevent_getfd(bev);
    if (c == NULL || fd < 0 || by_fd_reserve(srv, fd) != 0 ||
        (c->deadline = evtimer_new(srv->in->base, on_deadline, c)) == NULL) {
        log_error("out of memory tracking a connection: closing it");
        ps_free(c);
        evhttp_connection_free(evcon);
        count_down(srv);
        return;
    }
    c->srv = srv;
    c->evcon = evcon;
    c->fd = fd;
    srv->by_fd[fd] = c;
    evhttp_connection_set_closecb(evcon, on_close, c);
    arm_deadline(c);
}

static void on_register(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_server *srv = arg;
    fresh_bev *f = srv->fresh;
    srv->fresh = NULL;
    while (f) {
        fresh_bev *next = f->next;
        register_one(srv, f->bev);
        bufferevent_decref(f->bev);
        ps_free(f);
        f = next;
    }
}

/* evhttp's bevcb: the bufferevent for a new connection (evhttp sets the fd). */
static struct bufferevent *conn_new(struct event_base *base, void *arg) {
    http_server *srv = arg;
    struct bufferevent *bev = NULL;
    fresh_bev *f = ps_calloc(1, sizeof(*f));
    if (f == NULL) goto err;
    if (srv->ssl) {
        SSL *ssl = SSL_new(srv->ssl);
        if (ssl == NULL) goto err;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) SSL_free(ssl);
        if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) goto err;
    bufferevent_incref(bev);
    f->bev = bev;
    f->next = srv->fresh;
    srv->fresh = f;
    event_active(srv->register_ev, EV_TIMEOUT, 0);
    count_up(srv);
    return bev;
err:
    /* evhttp then uses a plain socket bufferevent, untracked (a TLS client
     * gets a 400 for its ClientHello). Only happens when memory runs out. */
    log_error("out of memory setting up a connection");
    ps_free(f);
    return NULL;
}

static conn *conn_of(http_server *srv, struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) return NULL;
    int fd = (int)bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    if (fd < 0 || fd >= srv->by_fd_len) return NULL;
    conn *c = srv->by_fd[fd];
    return c && c->evcon == evcon ? c : NULL;
}

/* ------------------------------------------------------------- replies -- */

static void send_reply(ingest *in, struct evhttp_request *req, int status, const char *ctype,
                       const char *body, size_t len) {
    conn *c = conn_of(in->http, req);
    if (c) { /* the client now has PAYSTREAM_TIMEOUT for its next request */
        c->busy = false;
        arm_deadline(c);
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (in->draining) evhttp_add_header(h, "Connection", "close");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    metrics_count_status(&in->metrics, status);
    evhttp_send_reply(req, status, NULL, NULL);
}

void http_reply_json(ingest *in, struct evhttp_request *req, int status, const char *json) {
    send_reply(in, req, status, "application/json", json, strlen(json));
}

void http_reply_error(ingest *in, struct evhttp_request *req, int status, const char *code) {
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", code);
    send_reply(in, req, status, "application/json", body, (size_t)n);
}

static void reply_metrics(ingest *in, struct evhttp_request *req) {
    metrics_gauges g = {.redis_ready = redis_async_ready(in->redis),
                        .connections = http_server_connections(in->http),
                        .inflight = in->inflight,
                        .draining = in->draining};
    redis_async_stats(in->redis, &g.redis);
    strbuf sb;
    strbuf_init(&sb);
    metrics_render(&in->metrics, &g, &sb);
    if (sb.oom)
        http_reply_error(in, req, 500, "out_of_memory");
    else
        send_reply(in, req, 200, "text/plain; version=0.0.4; charset=utf-8", sb.buf, sb.len);
    strbuf_free(&sb);
}

static void reply_not_allowed(ingest *in, struct evhttp_request *req, const char *allow) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    http_reply_error(in, req, 405, "method_not_allowed");
}

/* ------------------------------------------------------------- routing -- */

/* More than one Content-Length: libevent framed the body with the first, but a
 * proxy in front may have used another (RFC 9112 6.3: reject, and close). */
static bool ambiguous_length(struct evhttp_request *req) {
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    struct evkeyval *h;
    int n = 0;
    TAILQ_FOREACH(h, headers, next) {
        if (strcasecmp(h->key, "Content-Length") == 0) n++;
    }
    return n > 1;
}

static void on_request(struct evhttp_request *req, void *arg) {
    http_server *srv = arg;
    ingest *in = srv->in;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    conn *c = conn_of(srv, req);
    if (c) c->busy = true;
    if (path == NULL) {
        http_reply_error(in, req, 400, "bad_request");
    } else if (ambiguous_length(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        http_reply_error(in, req, 400, "ambiguous_content_length");
    } else if (strcmp(path, in->cfg.webhook_path) == 0) {
        cmd == EVHTTP_REQ_POST ? webhook_handle(in, req) : reply_not_allowed(in, req, "POST");
    } else if (strcmp(path, "/healthz") == 0) {
        get ? http_reply_json(in, req, 200, "{\"status\":\"ok\"}")
            : reply_not_allowed(in, req, "GET, HEAD");
    } else if (strcmp(path, "/readyz") == 0) {
        get ? readyz_handle(in, req) : reply_not_allowed(in, req, "GET, HEAD");
    } else if (strcmp(path, "/metrics") == 0) {
        get ? reply_metrics(in, req) : reply_not_allowed(in, req, "GET, HEAD");
    } else {
        http_reply_error(in, req, 404, "not_found");
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

static void describe_bound(http_server *srv, struct evconnlistener *l) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return;
    log_info("listening on %s://%s%s%s:%s%s", srv->ssl ? "https" : "http",
             ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "", port,
             srv->in->cfg.webhook_path);
}

/* Bind every address one PAYSTREAM_LISTEN item resolves to. */
static int listen_item(http_server *srv, char *item, char *err, size_t errlen) {
    char *host, *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    if (split_address(item, &host, &port) != 0) {
        snprintf(err, errlen, "PAYSTREAM_LISTEN: '%s' is not HOST:PORT or [IPV6]:PORT", item);
        return -1;
    }
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "PAYSTREAM_LISTEN: %s:%s: %s", host ? host : "*", port,
                 gai_strerror(gai));
        return -1;
    }
    int rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
                         LEV_OPT_REUSEABLE_PORT |
                         (ai->ai_family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0);
        struct evconnlistener *l = NULL;
        if (srv->n_bound < MAX_LISTENERS)
            l = evconnlistener_new_bind(srv->in->base, NULL, NULL, flags, LISTEN_BACKLOG,
                                        ai->ai_addr, (int)ai->ai_addrlen);
        struct evhttp_bound_socket *b = l ? evhttp_bind_listener(srv->http, l) : NULL;
        if (b == NULL) {
            snprintf(err, errlen, "PAYSTREAM_LISTEN: cannot listen on %s:%s: %s", host ? host : "*",
                     port, srv->n_bound >= MAX_LISTENERS ? "too many addresses" : strerror(errno));
            if (l) evconnlistener_free(l);
            rc = -1;
            break;
        }
        srv->bound[srv->n_bound++] = b;
        describe_bound(srv, l);
    }
    freeaddrinfo(res);
    return rc;
}

/* PAYSTREAM_LISTEN is one address or a comma-separated list of them. */
static int listen_all(http_server *srv, char *err, size_t errlen) {
    char *list = ps_strdup(srv->in->cfg.listen), *save = NULL;
    if (list == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *item = strtok_r(list, ", ", &save); item && rc == 0;
         item = strtok_r(NULL, ", ", &save))
        rc = listen_item(srv, item, err, errlen);
    ps_free(list);
    if (rc == 0 && srv->n_bound == 0) {
        snprintf(err, errlen, "PAYSTREAM_LISTEN: no address to listen on");
        rc = -1;
    }
    return rc;
}

/* -------------------------------------------------------------- public -- */

static void configure(http_server *srv) {
    const ps_config *cfg = &srv->in->cfg;
    evhttp_set_gencb(srv->http, on_request, srv);
    evhttp_set_bevcb(srv->http, conn_new, srv);
    evhttp_set_timeout(srv->http, (int)cfg->timeout);
    evhttp_set_max_body_size(srv->http, cfg->max_body);
    evhttp_set_max_headers_size(srv->http, MAX_HEADERS_SIZE);
    /* read an over-long body to its end so that the client sees our 413 */
    evhttp_set_flags(srv->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
}

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
    srv->http = evhttp_new(in->base);
    srv->register_ev = event_new(in->base, -1, 0, on_register, srv);
    if (srv->http == NULL || srv->register_ev == NULL) {
        snprintf(err, errlen, "cannot create the HTTP server");
        goto err;
    }
    configure(srv);
    if (listen_all(srv, err, errlen) != 0) goto err;
    return srv;
err:
    http_server_free(srv);
    in->http = NULL;
    return NULL;
}

void http_server_stop_accepting(http_server *srv) {
    if (srv == NULL || srv->stopped) return;
    srv->stopped = true;
    for (int i = 0; i < srv->n_bound; i++)
        evhttp_del_accept_socket(srv->http, srv->bound[i]);
    srv->n_bound = 0;
}

void http_server_free(http_server *srv) {
    if (srv == NULL) return;
    srv->stopped = true;
    srv->n_bound = 0;
    if (srv->register_ev) on_register(-1, 0, srv); /* drop our references */
    if (srv->http) evhttp_free(srv->http);         /* runs on_close for every connection */
    if (srv->register_ev) event_free(srv->register_ev);
    if (srv->ssl) SSL_CTX_free(srv->ssl);
    ps_free(srv->by_fd);
    ps_free(srv);
}

unsigned http_server_connections(const http_server *srv) {
    return srv ? srv->connections : 0;
}

size_t http_server_unflushed(const http_server *srv) {
    size_t n = 0;
    for (int fd = 0; srv && fd < srv->by_fd_len; fd++) {
        const conn *c = srv->by_fd[fd];
        if (c)
            n += evbuffer_get_length(
                bufferevent_get_output(evhttp_connection_get_bufferevent(c->evcon)));
    }
    return n;
}
