/* redis_async.h - ingest's non-blocking Redis connection on a libevent loop.
 *
 * Hides hiredis (0.14 async + its libevent adapter): callers see redis_async
 * and ra_result only. One connection, made from PAYSTREAM_REDIS_URL (AUTH and
 * SELECT included), re-made in the background with backoff whenever it drops.
 * Every command gets an answer within the timeout: hiredis has no command
 * timeout, so a watchdog timer drops a connection whose oldest command has
 * waited too long; that command and every other one pending on it are then
 * answered RA_ERR_TIMEOUT, and a fresh connection is made. With a
 * redis-sentinel:// URL every connection goes to the master the sentinels
 * name (ROLE checked), and is dropped and made again when that node stops
 * being the master (a -READONLY reply, or ROLE asked every second). */
#ifndef PS_REDIS_ASYNC_H
#define PS_REDIS_ASYNC_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct redis_async redis_async;

typedef enum {
    RA_OK = 0,
    RA_ERR_DOWN,    /* not connected (or still handshaking): nothing was sent */
    RA_ERR_TIMEOUT, /* no reply within the timeout: the command may or may not have run */
    RA_ERR_IO,      /* the connection broke before the reply came */
    RA_ERR_REPLY,   /* Redis answered with an error (text in ra_result.str) */
    RA_ERR_OOM,     /* out of memory: nothing was sent */
    RA_ERR_CLOSED,  /* redis_async_free() ran while the command was pending */
} ra_status;

/* What a command came to. str (string, status or error reply) and the
 * array elements are valid only during the callback. */
typedef struct ra_result {
    ra_status status;
    const char *str; /* NULL for integer, nil and array replies */
    size_t len;
    long long integer; /* integer replies */
    size_t elements;   /* array replies */
} ra_result;

/* Called exactly once per accepted command, always from the event loop and
 * never from inside redis_async_command(). It may send new commands; it must
 * not call redis_async_free(). */
typedef void (*ra_callback)(void *arg, const ra_result *res);

typedef struct ra_stats {
    unsigned long long connects;    /* handshakes completed */
    unsigned long long disconnects; /* ready connections lost */
    unsigned long long timeouts;    /* commands answered RA_ERR_TIMEOUT */
    unsigned long long io_errors;   /* commands answered RA_ERR_IO */
    unsigned long long reply_errors;
} ra_stats;

/* Parse url and start connecting on base (the first attempt runs from the
 * loop). timeout_ms bounds connect + handshake and every command. NULL and a
 * one-line reason (never the password) in err when the URL is bad or memory
 * runs out. A Redis that is down is not an error here: it is retried. */
redis_async *redis_async_new(struct event_base *base, const char *url, long timeout_ms, char *err,
                             size_t errlen);

/* Queue one command (binary-safe arguments, copied before this returns).
 * RA_OK: cb(arg, ...) will be called exactly once, later. Any other value
 * (RA_ERR_DOWN while not ready, RA_ERR_OOM): nothing was sent and cb will
 * never be called. */
ra_status redis_async_command(redis_async *ra, ra_callback cb, void *arg, int argc,
                              const char **argv, const size_t *lens);

/* True while connected, authenticated and selected: commands are accepted. */
bool redis_async_ready(const redis_async *ra);
/* Commands sent and not yet answered. */
size_t redis_async_pending(const redis_async *ra);
void redis_async_stats(const redis_async *ra, ra_stats *out);
/* "host:port", the socket path or the sentinels (no password), for log lines. */
const char *redis_async_describe(const redis_async *ra);
/* Which connection commands go to now: it changes whenever the connection is
 * re-made. WAIT answers only for the writes of its own connection. */
unsigned redis_async_connection(const redis_async *ra);

/* Close the connection and stop reconnecting. Pending commands are answered
 * RA_ERR_CLOSED before this returns. Accepts NULL. Not from a callback. */
void redis_async_free(redis_async *ra);

const char *ra_status_name(ra_status s); /* "ok", "down", "timeout", ... */

#endif
