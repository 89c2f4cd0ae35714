/* http_io.c - see http_io.h.
 *
 * Plain TCP does its own reads and writes rather than use a bufferevent:
 * libevent 2.1's evbuffer_read asks FIONREAD before every read and reads at
 * most 4,096 bytes, so a 5 KB webhook cost two loop turns, two ioctls and two
 * readvs. Here the read event stays armed for the connection's life, a read
 * takes up to 64 KiB, and an answer is written straight to the socket when
 * nothing is queued before it. */
#include "http_io.h"
#include "alloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536

struct http_io {
    struct bufferevent *bev; /* TLS; the rest is plain TCP's */
    evutil_socket_t fd;
    struct event *rev, *wev;
    struct evbuffer *in, *out;
    size_t read_cap;
    bool paused; /* reading stopped at read_cap */
    http_io_handler h;
    void *arg;
};

/* ------------------------------------------------------------ plain TCP -- */

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    http_io *io = arg;
    char buf[READ_CHUNK];
    size_t have = evbuffer_get_length(io->in);
    size_t room = io->read_cap > have ? io->read_cap - have : 0;
    ssize_t n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
    if (n > 0 && evbuffer_add(io->in, buf, (size_t)n) == 0) {
        if (have + (size_t)n >= io->read_cap) {
            event_del(io->rev);
            io->paused = true;
        }
        io->h.readable(io->arg);
    } else if (n == 0 && room > 0) {
        event_del(io->rev);
        io->h.ended(io->arg, false);
    } else if (n != 0 && (n > 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))) {
        event_del(io->rev); /* a socket error, or no memory for what was read */
        io->h.ended(io->arg, true);
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    http_io *io = arg;
    int n = evbuffer_write(io->out, fd);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        io->h.ended(io->arg, true);
    } else if (evbuffer_get_length(io->out) > 0) {
        event_add(io->wev, NULL);
    } else {
        io->h.flushed(io->arg);
    }
}

static int plain_send(http_io *io, const struct iovec *iov, int n) {
    size_t done = 0;
    if (evbuffer_get_length(io->out) == 0) {
        ssize_t w = writev(io->fd, iov, n);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        done = w > 0 ? (size_t)w : 0;
    }
    for (int i = 0; i < n; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        if (evbuffer_add(io->out, (const char *)iov[i].iov_base + done, iov[i].iov_len - done))
            return -1;
        done = 0;
    }
    if (evbuffer_get_length(io->out) > 0) event_add(io->wev, NULL);
    return 0;
}

static int plain_open(http_io *io, struct event_base *base) {
    io->in = evbuffer_new();
    io->out = evbuffer_new();
    io->rev = event_new(base, io->fd, EV_READ | EV_PERSIST, on_readable, io);
    io->wev = event_new(base, io->fd, EV_WRITE, on_writable, io);
    if (!io->in || !io->out || !io->rev || !io->wev) return -1;
    return event_add(io->rev, NULL);
}

/* ------------------------------------------------------------------ TLS -- */

static void on_tls_read(struct bufferevent *bev, void *arg) {
    (void)bev;
    http_io *io = arg;
    io->h.readable(io->arg);
}

static void on_tls_write(struct bufferevent *bev, void *arg) {
    (void)bev;
    http_io *io = arg;
    io->h.flushed(io->arg);
}

static void on_tls_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    http_io *io = arg;
    if (what & BEV_EVENT_CONNECTED) return; /* the handshake is done */
    io->h.ended(io->arg, (what & BEV_EVENT_ERROR) != 0);
}

static int tls_open(http_io *io, struct event_base *base, SSL_CTX *ctx) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return -1;
    io->bev = bufferevent_openssl_socket_new(base, io->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (io->bev == NULL) {
        SSL_free(ssl);
        return -1;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(io->bev, 1);
    bufferevent_setwatermark(io->bev, EV_READ, 0, io->read_cap);
    bufferevent_setcb(io->bev, on_tls_read, on_tls_write, on_tls_event, io);
    return bufferevent_enable(io->bev, EV_READ | EV_WRITE);
}

/* --------------------------------------------------------------- public -- */

http_io *http_io_new(struct event_base *base, evutil_socket_t fd, SSL_CTX *ssl, size_t read_cap,
                     const http_io_handler *h, void *arg) {
    http_io *io = ps_calloc(1, sizeof(*io));
    if (io == NULL) {
        evutil_closesocket(fd);
        return NULL;
    }
    io->fd = fd;
    io->read_cap = read_cap;
    io->h = *h;
    io->arg = arg;
    if ((ssl ? tls_open(io, base, ssl) : plain_open(io, base)) != 0) {
        http_io_free(io);
        return NULL;
    }
    return io;
}

void http_io_free(http_io *io) {
    if (io == NULL) return;
    if (io->bev) {
        bufferevent_free(io->bev); /* closes the socket */
    } else {
        if (io->rev) event_free(io->rev);
        if (io->wev) event_free(io->wev);
        if (io->in) evbuffer_free(io->in);
        if (io->out) evbuffer_free(io->out);
        evutil_closesocket(io->fd);
    }
    ps_free(io);
}

struct evbuffer *http_io_input(http_io *io) {
    return io->bev ? bufferevent_get_input(io->bev) : io->in;
}

void http_io_consumed(http_io *io) {
    if (io->paused && evbuffer_get_length(io->in) < io->read_cap) {
        io->paused = false;
        event_add(io->rev, NULL);
    }
}

int http_io_send(http_io *io, const struct iovec *iov, int n) {
    if (io->bev == NULL) return plain_send(io, iov, n);
    for (int i = 0; i < n; i++)
        if (bufferevent_write(io->bev, iov[i].iov_base, iov[i].iov_len) != 0) return -1;
    return 0;
}

size_t http_io_unflushed(const http_io *io) {
    return evbuffer_get_length(io->bev ? bufferevent_get_output(io->bev) : io->out);
}

void http_io_shutdown(http_io *io) {
    if (io->bev == NULL) shutdown(io->fd, SHUT_WR);
}
