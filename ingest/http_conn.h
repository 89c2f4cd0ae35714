/* http_conn.h - what http.c (the server: listeners, cap, TLS, routing) and
 * http_conn.c (one client connection: reading, framing, answering, closing)
 * share. Handlers see only ingest.h's http_conn functions. */
#ifndef PS_HTTP_CONN_H
#define PS_HTTP_CONN_H

#include "http_parse.h"
#include "ingest.h"

#include <event2/util.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#define HTTP_MAX_LISTENERS 16
#define HTTP_MAX_HEAD      16384 /* the whole request head; a Stripe-Signature fits 8 KiB */

struct evconnlistener;

struct http_server {
    ingest *in;
    SSL_CTX *ssl;
    struct evconnlistener *listeners[HTTP_MAX_LISTENERS];
    int n_listeners;
    struct evconnlistener *admin[HTTP_MAX_LISTENERS]; /* PAYSTREAM_ADMIN_LISTEN: plain HTTP,
                                                         /healthz, /readyz, /metrics only */
    int n_admin;
    http_conn *conns; /* every open connection, a doubly linked list */
    unsigned connections;
    bool paused;  /* listeners disabled: the connection cap is reached */
    bool stopped; /* listeners closed (draining) */
    int64_t cap_logged_us;
};

typedef enum http_route_id {
    ROUTE_WEBHOOK,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_NOT_FOUND
} http_route_id;

/* ---- http_conn.c */
/* Take over an accepted socket (closed on failure); admin: it came to an
 * admin listener (plain HTTP, its own routes). */
void http_conn_open(http_server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                    bool admin);
/* Close at once, whatever its state (server shutdown). */
void http_conn_close(http_conn *c);
size_t http_conn_unflushed(const http_conn *c);
const http_conn *http_conn_next(const http_conn *c);
/* Answer the request in hand: status, body, and an Allow header when allow
 * is not NULL. The connection may be gone after. */
void http_conn_reply(http_conn *c, int status, const char *ctype, const char *body, size_t len,
                     const char *allow);

/* ---- http.c */
/* Which route a request path takes, on an admin connection or a main one. */
http_route_id http_route_of(const http_server *srv, bool admin, const char *path, size_t len);
/* A complete request is in our hands: run its route. It is answered exactly once. */
void http_route(http_server *srv, http_conn *c, http_route_id route, http_method method);
/* A connection closed: count it, accept again under the cap. */
void http_server_conn_closed(http_server *srv);

#endif
