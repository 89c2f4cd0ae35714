/* http_io.h - the socket under one ingest connection: plain TCP on libevent
 * events of our own, or TLS on libevent's OpenSSL bufferevent. http_conn.c
 * sees bytes in and bytes out, whichever it is. */
#ifndef PS_HTTP_IO_H
#define PS_HTTP_IO_H

#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct event_base;
struct evbuffer;
typedef struct http_io http_io;

typedef struct http_io_handler {
    void (*readable)(void *arg);          /* new bytes are in the input buffer */
    void (*flushed)(void *arg);           /* what was queued has reached the kernel */
    void (*ended)(void *arg, bool error); /* EOF (error false) or a socket error */
} http_io_handler;

/* Take fd over (closed by http_io_free, or here on failure); TLS when ssl is
 * not NULL. Reading pauses while the input holds read_cap bytes or more. */
http_io *http_io_new(struct event_base *base, evutil_socket_t fd, SSL_CTX *ssl, size_t read_cap,
                     const http_io_handler *h, void *arg);
void http_io_free(http_io *io);

struct evbuffer *http_io_input(http_io *io);
/* Call after draining the input: reading resumes if it was paused. */
void http_io_consumed(http_io *io);
/* Queue bytes after everything queued before; straight to a plain socket
 * when nothing waits. -1: the peer is gone (ended() is not called for it). */
int http_io_send(http_io *io, const struct iovec *iov, int n);
size_t http_io_unflushed(const http_io *io);
/* No more bytes from us: a FIN after what is queued (plain TCP only). */
void http_io_shutdown(http_io *io);

#endif
