/* http_conn.c - one client connection of paystream-ingest: read, frame,
 * hand a complete request to http.c's router, write its answer, close.
 *
 * Why not evhttp: it costs 18 us of CPU per request here, most of it nine
 * system calls (four epoll_ctl to flip read and write interest, a FIONREAD
 * ioctl per read, a readv that finds nothing). This keeps read interest on
 * for the connection's life and writes an answer straight to the socket when
 * nothing is queued before it (plain TCP), so a webhook costs a read, a
 * FIONREAD and a write.
 *
 * One request at a time per connection: bytes a client pipelines behind it
 * wait in the input buffer (bounded by a read watermark) until it is answered,
 * so answers go out in order. From accept, or from our last answer, a client
 * has PAYSTREAM_TIMEOUT seconds to deliver a complete request however slowly
 * it trickles bytes, and to read our answer; a request in our hands is never
 * timed out here (Redis's own timeout bounds it). */
#include "http_conn.h"
#include "alloc.h"
#include "http_io.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CHUNK_PULL     65536 /* bytes of a chunked body decoded per step */
#define LINGER_MAX_SEC 5     /* reading what a rejected client still sends */
#define SIG_INLINE     256   /* a Stripe-Signature this long needs no allocation */
#define OUT_MAX        65536 /* answers not yet read by the client: none is added past this */

typedef enum conn_state {
    ST_HEAD,    /* reading a request head */
    ST_BODY,    /* reading a Content-Length body */
    ST_CHUNKED, /* decoding a chunked body */
    ST_BUSY,    /* a request is in the router's hands */
    ST_CLOSING, /* answered with Connection: close; closing once it is written */
    ST_LINGER   /* answered an error; discarding input until EOF or the deadline */
} conn_state;

struct http_conn {
    http_conn *prev, *next;
    http_server *srv;
    http_io *io;     /* NULL once the socket is closed under a busy request */
    bool eof;        /* the client will send nothing more */
    bool in_process; /* process() is on the stack: replies and closes wait for it */
    bool doomed;     /* free when process() returns */
    bool keep_alive; /* of the request in hand */
    bool head_only;  /* HEAD: the answer has no body */
    bool continued;  /* 100 Continue sent for the request in hand */
    bool throttled;  /* requests wait until the client reads its answers (OUT_MAX) */
    conn_state state;
    struct event *deadline;
    http_head head; /* of the request being read; its pointers are stale after */
    http_route_id route;
    bool admin; /* accepted on PAYSTREAM_ADMIN_LISTEN */
    http_method method;
    http_chunked chunked;
    struct evbuffer *chunk_body; /* decoded chunked body, made on first use */
    const unsigned char *body;   /* while the router has the request */
    size_t body_len;
    char *signature; /* NUL-terminated copy, sig_inline or allocated, or NULL */
    char sig_inline[SIG_INLINE];
    struct sockaddr_storage peer;
    socklen_t peer_len;
};

static void process(http_conn *c);

/* -------------------------------------------------------------- closing -- */

static void close_socket(http_conn *c) {
    http_io_free(c->io);
    c->io = NULL;
}

static size_t out_len(const http_conn *c) {
    return c->io ? http_io_unflushed(c->io) : 0;
}

static void drop_signature(http_conn *c) {
    if (c->signature != c->sig_inline) ps_free(c->signature);
    c->signature = NULL;
}

static void conn_free(http_conn *c) {
    if (c->in_process) {
        c->doomed = true;
        return;
    }
    http_server *srv = c->srv;
    close_socket(c);
    event_free(c->deadline);
    if (c->chunk_body) evbuffer_free(c->chunk_body);
    drop_signature(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    ps_free(c);
    http_server_conn_closed(srv);
}

/* Gone for good: unless the router holds its request (then the answer frees it). */
static void conn_lost(http_conn *c) {
    if (c->state == ST_BUSY)
        close_socket(c);
    else
        conn_free(c);
}

void http_conn_close(http_conn *c) {
    c->in_process = false;
    conn_free(c);
}

static void arm_deadline(http_conn *c, long seconds) {
    struct timeval tv = {seconds, 0};
    event_add(c->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_conn *c = arg;
    if (c->state == ST_BUSY) return;
    /* an idle keep-alive connection closes quietly; a stalled one is worth a line */
    if (c->state < ST_BUSY && (evbuffer_get_length(http_io_input(c->io)) || out_len(c)))
        log_info("a client sent no complete request within %lds (PAYSTREAM_TIMEOUT), or did not "
                 "read our answer: closing its connection",
                 c->srv->in->cfg.timeout);
    conn_free(c);
}

/* Everything queued has reached the kernel. */
static void on_flushed(http_conn *c) {
    if (c->state == ST_CLOSING || (c->state == ST_LINGER && c->eof)) {
        conn_free(c);
    } else if (c->state == ST_LINGER) {
        http_io_shutdown(c->io); /* our FIN; what the client still sends is read and dropped */
        long t = c->srv->in->cfg.timeout;
        arm_deadline(c, t < LINGER_MAX_SEC ? t : LINGER_MAX_SEC);
    } else if (c->throttled && !c->in_process) {
        process(c); /* the requests that waited for the client to read */
    }
}

size_t http_conn_unflushed(const http_conn *c) {
    return out_len(c);
}

const http_conn *http_conn_next(const http_conn *c) {
    return c->next;
}

/* -------------------------------------------------------------- writing -- */

static void send_iov(http_conn *c, const struct iovec *iov, int n) {
    if (http_io_send(c->io, iov, n) != 0) {
        c->eof = true; /* the client is gone: nothing more to read or write */
        c->state = ST_CLOSING;
    }
}

static const char *reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 500:
        return "Internal Server Error";
    default:
        return "Service Unavailable";
    }
}

/* "Sun, 06 Nov 1994 08:49:37 GMT", made once a second. */
static const char *http_date(void) {
    static char date[40];
    static time_t made = -1;
    time_t now = time(NULL);
    if (now != made) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        made = now;
    }
    return date;
}

static void send_answer(http_conn *c, int status, const char *ctype, const char *body, size_t len,
                        const char *allow, bool close) {
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "Cache-Control: no-store\r\nContent-Length: %zu\r\n%s%s%s%s\r\n",
                     status, reason(status), http_date(), ctype, len, allow ? "Allow: " : "",
                     allow ? allow : "", allow ? "\r\n" : "",
                     close                ? "Connection: close\r\n"
                     : c->head.minor == 0 ? "Connection: keep-alive\r\n"
                                          : "");
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, c->head_only ? 0 : len}};
    send_iov(c, iov, iov[1].iov_len ? 2 : 1);
}

void http_conn_reply(http_conn *c, int status, const char *ctype, const char *body, size_t len,
                     const char *allow) {
    ingest *in = c->srv->in;
    if (!c->admin) metrics_count_status(&in->metrics, status); /* scrapes are not traffic */
    bool framing_error = c->state != ST_BUSY;                  /* the parser's own answer */
    c->body = NULL;
    drop_signature(c);
    if (c->io == NULL) { /* the client left while its request was ours */
        c->state = ST_CLOSING;
        conn_free(c);
        return;
    }
    bool close = framing_error || !c->keep_alive || c->eof || in->draining;
    c->state = framing_error ? ST_LINGER : close ? ST_CLOSING : ST_HEAD;
    send_answer(c, status, ctype, body, len, allow, close);
    arm_deadline(c, in->cfg.timeout);
    if (c->state == ST_LINGER) {
        struct evbuffer *input = http_io_input(c->io);
        evbuffer_drain(input, evbuffer_get_length(input));
    }
    if (c->state != ST_HEAD) { /* closing or lingering; c may be freed here */
        if (out_len(c) == 0) on_flushed(c);
    } else if (!c->in_process) {
        process(c); /* what was pipelined behind it */
    }
}

/* -------------------------------------------------------------- reading -- */

/* Answer a request that cannot be routed; 1: process() goes on (to linger). */
static int refuse(http_conn *c, int status, const char *code) {
    http_reply_error(c, status, code);
    return 1;
}

static int keep_signature(http_conn *c, const http_head *h) {
    if (h->signature == NULL) return 0;
    char *s = h->signature_len < SIG_INLINE ? c->sig_inline : ps_malloc(h->signature_len + 1);
    if (s == NULL) return -1;
    memcpy(s, h->signature, h->signature_len);
    s[h->signature_len] = '\0';
    c->signature = s;
    return 0;
}

static void maybe_continue(http_conn *c) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!c->head.expect_continue || c->head.minor == 0 || c->continued) return;
    c->continued = true;
    struct iovec iov = {(void *)cont, sizeof(cont) - 1};
    send_iov(c, &iov, 1);
}

/* Hand the request to the router; it answers now or later. */
static void dispatch(http_conn *c, const unsigned char *body, size_t len) {
    c->state = ST_BUSY;
    c->body = body;
    c->body_len = len;
    http_route(c->srv, c, c->route, c->method);
}

/* 1: go on with the next step; 0: wait for more bytes. */
static int read_head(http_conn *c, struct evbuffer *in) {
    size_t len = evbuffer_get_length(in), n = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    if (len == 0) return 0;
    c->head_only = false; /* a refusal below has its body, whatever came before */
    c->continued = false;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n), *why = "";
    if (p == NULL) return refuse(c, 503, "out_of_memory");
    http_head *h = &c->head;
    http_parse_result r = http_parse_head(p, n, HTTP_MAX_HEAD, h, &why);
    if (r == HTTP_PARSE_INCOMPLETE) return 0;
    if (r != HTTP_PARSE_OK) {
        log_debug("a request refused before routing: %s", why);
        return refuse(c, 400, http_parse_result_code(r));
    }
    c->keep_alive = h->keep_alive;
    c->head_only = h->method == HTTP_HEAD;
    c->method = h->method;
    c->route = http_route_of(c->srv, c->admin, h->path, h->path_len);
    if (keep_signature(c, h) != 0) return refuse(c, 503, "out_of_memory");
    if (h->content_length > c->srv->in->cfg.max_body) return refuse(c, 413, "body_too_large");
    if (h->chunked) {
        evbuffer_drain(in, h->head_len);
        if (c->chunk_body == NULL && (c->chunk_body = evbuffer_new()) == NULL)
            return refuse(c, 503, "out_of_memory");
        http_chunked_init(&c->chunked, (size_t)c->srv->in->cfg.max_body);
        c->state = ST_CHUNKED;
    } else {
        c->body_len = h->content_length > 0 ? (size_t)h->content_length : 0;
        c->state = ST_BODY;
    }
    return 1;
}

static int read_body(http_conn *c, struct evbuffer *in) {
    size_t need = c->head.head_len + c->body_len;
    if (evbuffer_get_length(in) < need) {
        maybe_continue(c);
        return 0;
    }
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)need);
    if (p == NULL) return refuse(c, 503, "out_of_memory");
    dispatch(c, p + c->head.head_len, c->body_len);
    if (c->io) evbuffer_drain(in, need);
    return 1;
}

static int emit_body(void *arg, const char *p, size_t n) {
    return evbuffer_add(arg, p, n);
}

static int read_chunked(http_conn *c, struct evbuffer *in) {
    for (;;) {
        size_t len = evbuffer_get_length(in), n = len < CHUNK_PULL ? len : CHUNK_PULL, used = 0;
        const char *p = n ? (const char *)evbuffer_pullup(in, (ev_ssize_t)n) : "";
        if (p == NULL) return refuse(c, 503, "out_of_memory");
        http_chunk_result r = http_chunked_feed(&c->chunked, p, n, &used, emit_body, c->chunk_body);
        evbuffer_drain(in, used);
        if (r == HTTP_CHUNK_BAD) return refuse(c, 400, "bad_chunked_body");
        if (r == HTTP_CHUNK_TOO_LARGE) return refuse(c, 413, "body_too_large");
        if (r == HTTP_CHUNK_DONE) break;
        if (used == 0) {
            maybe_continue(c);
            return 0;
        }
    }
    size_t blen = evbuffer_get_length(c->chunk_body);
    const unsigned char *body =
        blen ? evbuffer_pullup(c->chunk_body, -1) : (const unsigned char *)"";
    if (body == NULL) return refuse(c, 503, "out_of_memory");
    dispatch(c, body, blen);
    if (c->chunk_body) evbuffer_drain(c->chunk_body, blen);
    return 1;
}

static int step(http_conn *c) {
    struct evbuffer *in = http_io_input(c->io);
    switch (c->state) {
    case ST_HEAD:
        if (out_len(c) > OUT_MAX) { /* a client that pipelines and does not read */
            c->throttled = true;
            return 0;
        }
        return read_head(c, in);
    case ST_BODY:
        return read_body(c, in);
    case ST_CHUNKED:
        return read_chunked(c, in);
    case ST_LINGER:
        evbuffer_drain(in, evbuffer_get_length(in));
        return 0;
    default: /* ST_BUSY, ST_CLOSING: nothing is read now */
        return 0;
    }
}

static void process(http_conn *c) {
    c->in_process = true;
    c->throttled = false;
    while (!c->doomed && c->io && step(c))
        ;
    c->in_process = false;
    if (c->io) http_io_consumed(c->io);
    if (c->doomed) {
        conn_free(c);
    } else if (c->eof && c->state < ST_BUSY && !c->throttled) { /* can never complete */
        c->state = ST_CLOSING;
        if (out_len(c) == 0) conn_free(c);
    }
}

/* ------------------------------------------------------------- callbacks -- */

static void on_readable(void *arg) {
    process(arg);
}

static void on_flushed_cb(void *arg) {
    on_flushed(arg);
}

/* EOF is a half-close: answer what was sent, then close. */
static void on_ended(void *arg, bool error) {
    http_conn *c = arg;
    c->eof = true;
    if (error)
        conn_lost(c);
    else if (c->state < ST_BUSY)
        process(c);
    else if (c->state != ST_BUSY && out_len(c) == 0)
        conn_free(c);
}

static const http_io_handler io_handler = {on_readable, on_flushed_cb, on_ended};

void http_conn_open(http_server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                    bool admin) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    http_conn *c = ps_calloc(1, sizeof(*c));
    if (c == NULL || (c->deadline = evtimer_new(srv->in->base, on_deadline, c)) == NULL) {
        evutil_closesocket(fd);
        goto err;
    }
    /* room for a whole request, not more, while one waits for its answer */
    size_t cap = HTTP_MAX_HEAD + (size_t)srv->in->cfg.max_body + CHUNK_PULL;
    c->io = http_io_new(srv->in->base, fd, admin ? NULL : srv->ssl, cap, &io_handler, c);
    if (c->io == NULL) goto err;
    c->srv = srv;
    c->admin = admin;
    if (salen > 0 && (size_t)salen <= sizeof(c->peer)) {
        memcpy(&c->peer, sa, (size_t)salen);
        c->peer_len = (socklen_t)salen;
    }
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    arm_deadline(c, srv->in->cfg.timeout);
    return;
err:
    log_error("out of memory setting up a connection: closing it");
    if (c && c->deadline) event_free(c->deadline);
    ps_free(c);
    http_server_conn_closed(srv);
}

/* ------------------------------------------------------------ accessors -- */

const unsigned char *http_body(const http_conn *c, size_t *len) {
    *len = c->body ? c->body_len : 0;
    return c->body ? c->body : (const unsigned char *)"";
}

const char *http_signature(const http_conn *c) {
    return c->signature;
}

void http_peer(const http_conn *c, char *buf, size_t len) {
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "0";
    if (c->peer_len)
        getnameinfo((const struct sockaddr *)&c->peer, c->peer_len, host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    bool v6 = c->peer.ss_family == AF_INET6;
    snprintf(buf, len, "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
}
