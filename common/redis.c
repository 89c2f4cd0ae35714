/* redis.c - blocking hiredis wrapper (see redis.h). Only this file,
 * redis_async.c and redis_sentinel.c include hiredis. With a
 * redis-sentinel:// URL every (re)connect asks the sentinels first and checks
 * ROLE, and a -READONLY reply counts as a lost connection. */
#include "redis.h"
#include "alloc.h"
#include "redis_sentinel.h"
#include "redis_url.h"
#include "strbuf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

struct redis_conn {
    redisContext *ctx;
    redis_url url;
    long timeout_ms;
    int err;
    char errstr[256];
};

static void redis_set_error(redis_conn *c, int err, const char *msg) {
    c->err = err;
    str_copy(c->errstr, msg ? msg : "", sizeof(c->errstr));
}

/* At most this long per sentinel asked (connect, then the reply). */
#define SENTINEL_ASK_MS 500

static struct timeval to_tv(long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* AUTH and SELECT on a fresh context; 0 or -1 with the error set. */
static int redis_handshake(redis_conn *c) {
    redisReply *r;
    if (c->url.password) {
        if (c->url.user)
            r = redisCommand(c->ctx, "AUTH %s %s", c->url.user, c->url.password);
        else
            r = redisCommand(c->ctx, "AUTH %s", c->url.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            redis_set_error(c, r ? RCONN_ERR_REPLY : RCONN_ERR_IO,
                            r ? "authentication refused (check the password in the URL)"
                              : c->ctx->errstr);
            if (r) freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (c->url.db != 0) {
        r = redisCommand(c->ctx, "SELECT %d", c->url.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            redis_set_error(c, r ? RCONN_ERR_REPLY : RCONN_ERR_IO, r ? r->str : c->ctx->errstr);
            if (r) freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* Sentinel URLs: the node we reached must say it is the master. */
static int redis_check_role(redis_conn *c) {
    char role[32], msg[300];
    redisReply *r = redisCommand(c->ctx, "ROLE");
    bool master = sentinel_role_is_master(r, role, sizeof(role));
    if (r == NULL) {
        redis_set_error(c, RCONN_ERR_IO, c->ctx->errstr);
        return -1;
    }
    freeReplyObject(r);
    if (master) return 0;
    snprintf(msg, sizeof(msg), "%s:%d is not the master of '%s' (ROLE says %s); asking again",
             c->url.host, c->url.port, c->url.master, role);
    redis_set_error(c, RCONN_ERR_IO, msg);
    return -1;
}

/* Sentinel URLs: where the sentinels say the master is now. */
static int redis_find_master(redis_conn *c) {
    char why[512], msg[600];
    long each = c->timeout_ms < SENTINEL_ASK_MS ? c->timeout_ms : SENTINEL_ASK_MS;
    if (sentinel_find_master(&c->url, each, why, sizeof(why)) == 0) return 0;
    snprintf(msg, sizeof(msg), "cannot find the Redis master: %s", why);
    redis_set_error(c, RCONN_ERR_IO, msg);
    return -1;
}

static int redis_dial(redis_conn *c) {
    struct timeval tv = to_tv(c->timeout_ms);
    if (c->ctx) redisFree(c->ctx);
    c->ctx = NULL;
    if (redis_url_is_sentinel(&c->url) && redis_find_master(c) != 0) return -1;
    c->ctx = c->url.path ? redisConnectUnixWithTimeout(c->url.path, tv)
                         : redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (c->ctx == NULL) {
        redis_set_error(c, RCONN_ERR_OOM, "out of memory");
        return -1;
    }
    if (c->ctx->err) {
        char where[256];
        if (redis_url_is_sentinel(&c->url))
            snprintf(where, sizeof(where), "%s:%d (master '%s')", c->url.host, c->url.port,
                     c->url.master);
        else
            redis_url_describe(&c->url, where, sizeof(where));
        char msg[512];
        snprintf(msg, sizeof(msg), "cannot connect to Redis at %s: %s", where, c->ctx->errstr);
        redis_set_error(c, RCONN_ERR_IO, msg);
        return -1;
    }
    redisSetTimeout(c->ctx, tv);
    if (redis_handshake(c) != 0) return -1;
    if (redis_url_is_sentinel(&c->url) && redis_check_role(c) != 0) {
        redisFree(c->ctx); /* never a command to a node that is not the master */
        c->ctx = NULL;
        return -1;
    }
    redis_set_error(c, RCONN_OK, NULL);
    return 0;
}

redis_conn *redis_new(const char *url, long timeout_ms, char *err, size_t errlen) {
    redis_conn *c = ps_calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char why[200] = "";
    if (redis_url_parse(url, &c->url, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "PAYSTREAM_REDIS_URL: %s", why);
        ps_free(c);
        return NULL;
    }
    c->timeout_ms = timeout_ms;
    redis_set_error(c, RCONN_ERR_IO, "not connected");
    return c;
}

redis_conn *redis_open(const char *url, long timeout_ms, char *err, size_t errlen) {
    redis_conn *c = redis_new(url, timeout_ms, err, errlen);
    if (c == NULL) return NULL;
    if (redis_dial(c) != 0) {
        snprintf(err, errlen, "%s", c->errstr);
        redis_close(c);
        return NULL;
    }
    return c;
}

void redis_close(redis_conn *c) {
    if (c == NULL) return;
    if (c->ctx) redisFree(c->ctx);
    redis_url_free(&c->url);
    ps_free(c);
}

int redis_reopen(redis_conn *c) {
    return redis_dial(c);
}

/* Turn a hiredis reply (or its absence) into our error state. */
static int redis_take(redis_conn *c, redisReply *r, redis_reply **out) {
    if (out) *out = NULL;
    if (r == NULL) {
        redis_set_error(c, RCONN_ERR_IO, c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* the master we knew is a replica now: like a lost connection */
        bool moved =
            redis_url_is_sentinel(&c->url) && sentinel_error_means_moved(r->str, (size_t)r->len);
        redis_set_error(c, moved ? RCONN_ERR_IO : RCONN_ERR_REPLY, r->str);
        freeReplyObject(r);
        return -1;
    }
    redis_set_error(c, RCONN_OK, NULL);
    if (out)
        *out = (redis_reply *)r;
    else
        freeReplyObject(r);
    return 0;
}

int redis_cmd(redis_conn *c, redis_reply **out, int argc, const char **argv, const size_t *lens) {
    if (c->ctx == NULL || c->ctx->err) {
        if (out) *out = NULL;
        redis_set_error(c, RCONN_ERR_IO, "not connected");
        return -1;
    }
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
    return redis_take(c, r, out);
}

int redis_append(redis_conn *c, int argc, const char **argv, const size_t *lens) {
    if (c->ctx == NULL) {
        redis_set_error(c, RCONN_ERR_IO, "not connected");
        return -1;
    }
    if (redisAppendCommandArgv(c->ctx, argc, argv, lens) != REDIS_OK) {
        redis_set_error(c, RCONN_ERR_IO, c->ctx->errstr);
        return -1;
    }
    return 0;
}

int redis_read(redis_conn *c, redis_reply **out) {
    void *r = NULL;
    if (c->ctx == NULL) {
        if (out) *out = NULL;
        redis_set_error(c, RCONN_ERR_IO, "not connected");
        return -1;
    }
    if (redisGetReply(c->ctx, &r) != REDIS_OK) r = NULL;
    return redis_take(c, r, out);
}

int redis_err(const redis_conn *c) {
    return c->err;
}

const char *redis_errstr(const redis_conn *c) {
    return c->errstr;
}

bool redis_is_io_error(const redis_conn *c) {
    return c->err == RCONN_ERR_IO || c->ctx == NULL || c->ctx->err != 0;
}

redis_reply_type redis_reply_kind(const redis_reply *r) {
    const redisReply *x = (const redisReply *)r;
    if (x == NULL) return RREPLY_NIL;
    switch (x->type) {
    case REDIS_REPLY_STRING:
        return RREPLY_STRING;
    case REDIS_REPLY_STATUS:
        return RREPLY_STATUS;
    case REDIS_REPLY_INTEGER:
        return RREPLY_INTEGER;
    case REDIS_REPLY_ARRAY:
        return RREPLY_ARRAY;
    case REDIS_REPLY_ERROR:
        return RREPLY_ERROR;
    default:
        return RREPLY_NIL;
    }
}

const char *redis_reply_str(const redis_reply *r, size_t *len) {
    const redisReply *x = (const redisReply *)r;
    if (x == NULL || (x->type != REDIS_REPLY_STRING && x->type != REDIS_REPLY_STATUS &&
                      x->type != REDIS_REPLY_ERROR)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = x->len;
    return x->str;
}

long long redis_reply_int(const redis_reply *r) {
    const redisReply *x = (const redisReply *)r;
    return x && x->type == REDIS_REPLY_INTEGER ? x->integer : 0;
}

size_t redis_reply_count(const redis_reply *r) {
    const redisReply *x = (const redisReply *)r;
    return x && x->type == REDIS_REPLY_ARRAY ? x->elements : 0;
}

const redis_reply *redis_reply_at(const redis_reply *r, size_t i) {
    const redisReply *x = (const redisReply *)r;
    return (x && x->type == REDIS_REPLY_ARRAY && i < x->elements)
               ? (const redis_reply *)x->element[i]
               : NULL;
}

const redis_reply *redis_reply_field(const redis_reply *map, const char *key) {
    for (size_t i = 0; i + 1 < redis_reply_count(map); i += 2) {
        const char *k = redis_reply_str(redis_reply_at(map, i), NULL);
        if (k && strcmp(k, key) == 0) return redis_reply_at(map, i + 1);
    }
    return NULL;
}

void redis_reply_free(redis_reply *r) {
    if (r) freeReplyObject(r);
}
