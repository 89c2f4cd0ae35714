/* redis.h - blocking Redis client for the worker and paystreamctl.
 *
 * Hides hiredis: callers see redis_conn and redis_reply only. A redis_conn
 * carries err/errstr, set together in one place. An error reply from the
 * server is an error too (RCONN_ERR_REPLY) with the server's message in
 * errstr, except where a function documents otherwise. Replies are owned by
 * the caller and freed with redis_reply_free() (NULL is fine); elements of an
 * array reply live as long as the array. */
#ifndef PS_REDIS_H
#define PS_REDIS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct redis_conn redis_conn;
typedef struct redis_reply redis_reply;

enum { RCONN_OK = 0, RCONN_ERR_IO, RCONN_ERR_REPLY, RCONN_ERR_OOM };

typedef enum {
    RREPLY_NIL = 0,
    RREPLY_STRING,
    RREPLY_STATUS,
    RREPLY_INTEGER,
    RREPLY_ARRAY,
    RREPLY_ERROR,
} redis_reply_type;

/* Connect, AUTH and SELECT as the URL says. timeout_ms bounds connect and
 * every command. NULL with a one-line reason (no password) in err. With a
 * redis-sentinel:// URL the sentinels are asked first and the node must say
 * ROLE master; a -READONLY or -MASTERDOWN reply is then an I/O error (the
 * master moved: redis_reopen() finds the new one). */
redis_conn *redis_open(const char *url, long timeout_ms, char *err, size_t errlen);
/* Parse the URL only, not connected yet (redis_reopen() connects). NULL only
 * for a malformed URL ("PAYSTREAM_REDIS_URL: why" in err) or no memory. */
redis_conn *redis_new(const char *url, long timeout_ms, char *err, size_t errlen);
void redis_close(redis_conn *c);
int redis_reopen(redis_conn *c); /* (re)connect once; 0 on success, else the error is set */

/* Send one command and read its reply. 0 on success (*out set if out != NULL). */
int redis_cmd(redis_conn *c, redis_reply **out, int argc, const char **argv, const size_t *lens);
/* Pipelining: queue commands, then read one reply per queued command. */
int redis_append(redis_conn *c, int argc, const char **argv, const size_t *lens);
int redis_read(redis_conn *c, redis_reply **out);

int redis_err(const redis_conn *c);
const char *redis_errstr(const redis_conn *c);
bool redis_is_io_error(const redis_conn *c);

/* Reading a reply: a NULL reply (a missing element or field) reads as nil,
 * no string, 0 and an empty array. */
redis_reply_type redis_reply_kind(const redis_reply *r);
const char *redis_reply_str(const redis_reply *r, size_t *len); /* strings, status, errors */
long long redis_reply_int(const redis_reply *r);
size_t redis_reply_count(const redis_reply *r); /* array length, 0 otherwise */
const redis_reply *redis_reply_at(const redis_reply *r, size_t i);
/* The value after `key` in a flat key-value array (XINFO's replies), or NULL. */
const redis_reply *redis_reply_field(const redis_reply *map, const char *key);
void redis_reply_free(redis_reply *r);

#endif
