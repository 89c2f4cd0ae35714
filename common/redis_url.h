/* redis_url.h - parse PAYSTREAM_REDIS_URL.
 *
 * redis://[[user]:password@]host[:port][/db], unix://[:password@]/path[?db=N]
 * and redis-sentinel://[[user]:password@]host[:port][,host[:port]...][/db]#MASTER
 * (sentinels on port 26379 unless given; the password is the master's, the
 * sentinels are asked without one). Used by both the blocking wrapper
 * (redis.c) and ingest's async connection; redis_sentinel.c finds the master. */
#ifndef PS_REDIS_URL_H
#define PS_REDIS_URL_H

#include <stddef.h>

#define REDIS_URL_MAX_SENTINELS 16

typedef struct redis_addr {
    char *host;
    int port;
} redis_addr;

typedef struct redis_url {
    char *host; /* NULL for unix sockets; sentinel URLs: the master last found, or NULL */
    int port;
    char *path;     /* unix socket path or NULL */
    char *user;     /* NULL unless given (Redis 6 ACL) */
    char *password; /* NULL unless given; never log it */
    int db;
    /* redis-sentinel:// only (nsentinels > 0): the sentinels, in the order to
     * ask them, and the name of the master they monitor. */
    redis_addr *sentinels;
    size_t nsentinels;
    char *master;
} redis_url;

int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen);
void redis_url_free(redis_url *u);
/* "host:port", the socket path, or "master NAME via sentinels h:p,h:p", for
 * log lines (never the password). */
void redis_url_describe(const redis_url *u, char *buf, size_t len);
static inline int redis_url_is_sentinel(const redis_url *u) {
    return u->nsentinels > 0;
}

#endif
