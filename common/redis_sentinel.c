/* redis_sentinel.c - master discovery through Redis Sentinel (see
 * redis_sentinel.h). hiredis 0.14 has no Sentinel support: this file is
 * ours. It only asks the sentinels; the clients connect and check ROLE. */
#include "redis_sentinel.h"
#include "alloc.h"
#include "strbuf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

/* Ask one sentinel. 0 with *host (caller frees) and *port, or -1 with why. */
static int ask_one(const redis_addr *s, const char *master, long timeout_ms, char **host, int *port,
                   char *why, size_t whylen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    redisReply *r = NULL;
    int rc = -1;
    if (c == NULL || c->err) {
        snprintf(why, whylen, "%s", c ? c->errstr : "out of memory");
        goto done;
    }
    redisSetTimeout(c, tv);
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", master);
    if (r == NULL) {
        snprintf(why, whylen, "%s", c->errstr[0] ? c->errstr : "no reply");
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%.100s", r->str);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING) {
        snprintf(why, whylen, "does not know master '%s'", master);
    } else {
        long p = 0;
        if (!str_to_long(r->element[1]->str, &p) || p < 1 || p > 65535) {
            snprintf(why, whylen, "answered a bad port");
        } else if ((*host = ps_strdup(r->element[0]->str)) != NULL) {
            *port = (int)p;
            rc = 0;
        } else {
            snprintf(why, whylen, "out of memory");
        }
    }
done:
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return rc;
}

/* Put sentinel i first, the others keeping their order. */
static void move_to_front(redis_url *u, size_t i) {
    redis_addr first = u->sentinels[i];
    memmove(&u->sentinels[1], &u->sentinels[0], i * sizeof(redis_addr));
    u->sentinels[0] = first;
}

int sentinel_find_master(redis_url *u, long timeout_ms, char *err, size_t errlen) {
    size_t used = 0;
    ps_free(u->host);
    u->host = NULL;
    used = (size_t)snprintf(err, errlen, "no sentinel knows master '%s':", u->master);
    for (size_t i = 0; i < u->nsentinels; i++) {
        char why[160];
        char *host = NULL;
        int port = 0;
        const redis_addr *s = &u->sentinels[i];
        if (ask_one(s, u->master, timeout_ms, &host, &port, why, sizeof(why)) == 0) {
            u->host = host;
            u->port = port;
            if (i > 0) move_to_front(u, i);
            err[0] = '\0';
            return 0;
        }
        if (used < errlen)
            used += (size_t)snprintf(err + used, errlen - used, "%s %s:%d %s", i ? ";" : "",
                                     s->host, s->port, why);
    }
    return -1;
}

bool sentinel_role_is_master(const struct redisReply *r, char *role, size_t rolelen) {
    const char *name = "?";
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        (r->element[0]->type == REDIS_REPLY_STRING || r->element[0]->type == REDIS_REPLY_STATUS))
        name = r->element[0]->str;
    if (role) str_copy(role, name, rolelen);
    return strcmp(name, "master") == 0;
}

static bool starts(const char *str, size_t len, const char *word) {
    size_t n = strlen(word);
    return len >= n && strncmp(str, word, n) == 0;
}

/* -READONLY: a replica (the old master, demoted); -MASTERDOWN: a replica
 * that lost its master. Either way, ask the sentinels again. */
bool sentinel_error_means_moved(const char *str, size_t len) {
    return str && (starts(str, len, "READONLY") || starts(str, len, "MASTERDOWN"));
}
