/* redis_sentinel.h - find the Redis master behind a redis-sentinel:// URL.
 *
 * Redis's "guidelines for Sentinel clients": ask the sentinels in order with
 * SENTINEL get-master-addr-by-name, move the one that answered to the front,
 * connect to that address and check with ROLE that it is the master. The
 * connecting and the ROLE check are the clients' (redis.c, redis_async.c);
 * both come back here after a connection error, a -READONLY reply or a role
 * change, and never reuse an address the sentinels did not just give. */
#ifndef PS_REDIS_SENTINEL_H
#define PS_REDIS_SENTINEL_H

#include "redis_url.h"

#include <stdbool.h>
#include <stddef.h>

struct redisReply;

/* Ask u's sentinels, in order, where u->master is. Blocking: timeout_ms bounds
 * the connect and the reply of each sentinel. On success the sentinel that
 * answered is first in u->sentinels, u->host and u->port say where the
 * master is, and 0 is returned. Otherwise u->host is NULL and -1 comes with
 * a one-line reason in err (each sentinel's failure; no password). */
int sentinel_find_master(redis_url *u, long timeout_ms, char *err, size_t errlen);

/* Is this a ROLE reply of a master? role (may be NULL) gets the role named
 * ("master", "slave", "sentinel" or "?"). */
bool sentinel_role_is_master(const struct redisReply *r, char *role, size_t rolelen);

/* Does this error reply text mean the node is no longer the master? */
bool sentinel_error_means_moved(const char *str, size_t len);

#endif
