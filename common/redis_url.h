/* redis_url.h - parse PAYSTREAM_REDIS_URL.
 *
 * redis://[[user]:password@]host[:port][/db] and unix://[:password@]/path[?db=N].
 * Used by both the blocking wrapper (redis.c) and ingest's async connection. */
#ifndef PS_REDIS_URL_H
#define PS_REDIS_URL_H

#include <stddef.h>

typedef struct redis_url {
    char *host; /* NULL for unix sockets */
    int port;
    char *path;     /* unix socket path or NULL */
    char *user;     /* NULL unless given (Redis 6 ACL) */
    char *password; /* NULL unless given; never log it */
    int db;
} redis_url;

int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen);
void redis_url_free(redis_url *u);
/* "host:port" or the socket path, for log lines (no password). */
void redis_url_describe(const redis_url *u, char *buf, size_t len);

#endif
