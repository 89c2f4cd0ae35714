/* stream.c - the event stream's Redis commands (see stream.h): building the
 * commands, and turning XREADGROUP/XAUTOCLAIM/XRANGE replies into entries. */
#include "stream.h"
#include "alloc.h"
#include "strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stream_batch_free(stream_batch *b) {
    if (b == NULL) return;
    for (size_t i = 0; i < b->n; i++) {
        stream_entry *e = &b->entries[i];
        ps_free(e->id);
        ps_free(e->event_id);
        ps_free(e->type);
        ps_free(e->body);
        ps_free(e->error);
        ps_free(e->source_id);
        ps_free(e->source);
    }
    ps_free(b->entries);
    b->entries = NULL;
    b->n = 0;
}

static int cmd(redis_conn *c, redis_reply **out, int argc, const char **argv) {
    return redis_cmd(c, out, argc, argv, NULL);
}

int stream_group_ensure(redis_conn *c, const char *stream, const char *group) {
    const char *argv[] = {"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"};
    if (cmd(c, NULL, 6, argv) == 0) return 0;
    return strncmp(redis_errstr(c), "BUSYGROUP", 9) == 0 ? 0 : -1;
}

bool stream_is_nogroup(const redis_conn *c) {
    return redis_err(c) == RCONN_ERR_REPLY && strncmp(redis_errstr(c), "NOGROUP", 7) == 0;
}

static char *dup_reply_str(const redis_reply *r, size_t *len) {
    size_t n = 0;
    const char *s = r ? redis_reply_str(r, &n) : NULL;
    if (s == NULL) return NULL;
    if (len) *len = n;
    return ps_strndup(s, n);
}

static void fill_field(stream_entry *e, const char *key, const redis_reply *val) {
    if (strcmp(key, "id") == 0)
        e->event_id = dup_reply_str(val, NULL);
    else if (strcmp(key, "type") == 0)
        e->type = dup_reply_str(val, NULL);
    else if (strcmp(key, "body") == 0)
        e->body = dup_reply_str(val, &e->body_len);
    else if (strcmp(key, "error") == 0)
        e->error = dup_reply_str(val, NULL);
    else if (strcmp(key, "stream_id") == 0)
        e->source_id = dup_reply_str(val, NULL);
    else if (strcmp(key, "source") == 0)
        e->source = dup_reply_str(val, NULL);
    else if (strcmp(key, "received") == 0 || strcmp(key, "attempts") == 0) {
        char *s = dup_reply_str(val, NULL);
        long v = 0;
        if (s && str_to_long(s, &v)) {
            if (key[0] == 'r')
                e->received_ms = v;
            else
                e->attempts = v;
        }
        ps_free(s);
    }
}

/* One [id, [k, v, ...]] element into e. */
static int parse_entry(const redis_reply *r, stream_entry *e) {
    memset(e, 0, sizeof(*e));
    if (redis_reply_count(r) != 2) return -1;
    e->id = dup_reply_str(redis_reply_at(r, 0), NULL);
    if (e->id == NULL) return -1;
    const redis_reply *fields = redis_reply_at(r, 1);
    size_t n = fields ? redis_reply_count(fields) : 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        size_t klen;
        const char *k = redis_reply_str(redis_reply_at(fields, i), &klen);
        if (k) fill_field(e, k, redis_reply_at(fields, i + 1));
    }
    return 0;
}

/* An array of entries into out (appending). */
static int parse_entries(const redis_reply *arr, stream_batch *out) {
    size_t n = redis_reply_count(arr);
    if (n == 0) return 0;
    stream_entry *p = ps_realloc(out->entries, (out->n + n) * sizeof(*p));
    if (p == NULL) return -1;
    out->entries = p;
    for (size_t i = 0; i < n; i++) {
        if (parse_entry(redis_reply_at(arr, i), &out->entries[out->n]) != 0) continue;
        out->n++;
    }
    return 0;
}

/* Run a command whose reply is an array of entries (XCLAIM, XRANGE). */
static int cmd_entries(redis_conn *c, int argc, const char **argv, stream_batch *out) {
    redis_reply *r = NULL;
    memset(out, 0, sizeof(*out));
    if (cmd(c, &r, argc, argv) != 0) return -1;
    int rc = parse_entries(r, out);
    redis_reply_free(r);
    return rc;
}

/* A string reply into a 64-byte id buffer ("" when absent or too long). */
/* An entry id reply into id[STREAM_ID_MAX] (none: NULL); "" when it is no
 * string or too long. */
static void copy_id(const redis_reply *r, char *id) {
    size_t n = 0;
    const char *s = redis_reply_str(r, &n);
    if (id == NULL) return;
    if (s && n < STREAM_ID_MAX) {
        memcpy(id, s, n);
        id[n] = '\0';
    } else {
        id[0] = '\0';
    }
}

int stream_read_group(redis_conn *c, const char *stream, const char *group, const char *consumer,
                      const char *from, long count, long block_ms, stream_batch *out) {
    char countbuf[24], blockbuf[24];
    snprintf(countbuf, sizeof(countbuf), "%ld", count);
    snprintf(blockbuf, sizeof(blockbuf), "%ld", block_ms);
    const char *argv[] = {"XREADGROUP", "GROUP",  group,     consumer, "COUNT", countbuf,
                          "BLOCK",      blockbuf, "STREAMS", stream,   from};
    const char *noblock[] = {"XREADGROUP", "GROUP",   group,  consumer, "COUNT",
                             countbuf,     "STREAMS", stream, from};
    redis_reply *r = NULL;
    memset(out, 0, sizeof(*out));
    int rc = block_ms > 0 ? cmd(c, &r, 11, argv) : cmd(c, &r, 9, noblock);
    if (rc != 0) return -1;
    /* [[stream, [entries...]]] or nil on timeout */
    const redis_reply *s = redis_reply_at(r, 0);
    rc = s ? parse_entries(redis_reply_at(s, 1), out) : 0;
    redis_reply_free(r);
    return rc;
}

int stream_autoclaim(redis_conn *c, const char *stream, const char *group, const char *consumer,
                     long min_idle_ms, char *cursor, long count, stream_batch *out) {
    char idle[24], countbuf[24];
    snprintf(idle, sizeof(idle), "%ld", min_idle_ms);
    snprintf(countbuf, sizeof(countbuf), "%ld", count);
    const char *argv[] = {"XAUTOCLAIM", stream, group, consumer, idle, cursor, "COUNT", countbuf};
    redis_reply *r = NULL;
    memset(out, 0, sizeof(*out));
    if (cmd(c, &r, 8, argv) != 0) return -1;
    /* [next-cursor, [entries...], [deleted ids...]] */
    char next[STREAM_ID_MAX];
    copy_id(redis_reply_at(r, 0), next);
    if (next[0]) str_copy(cursor, next, STREAM_ID_MAX);
    int rc = parse_entries(redis_reply_at(r, 1), out);
    redis_reply_free(r);
    return rc;
}

int stream_claim(redis_conn *c, const char *stream, const char *group, const char *consumer,
                 const char *id, stream_batch *out) {
    const char *argv[] = {"XCLAIM", stream, group, consumer, "0", id};
    return cmd_entries(c, 6, argv, out);
}

long stream_deliveries(redis_conn *c, const char *stream, const char *group, const char *id) {
    const char *argv[] = {"XPENDING", stream, group, id, id, "1"};
    redis_reply *r = NULL;
    if (cmd(c, &r, 6, argv) != 0) return -1;
    /* [[id, consumer, idle, deliveries]] */
    const redis_reply *e = redis_reply_at(r, 0);
    long n = e ? (long)redis_reply_int(redis_reply_at(e, 3)) : 0;
    redis_reply_free(r);
    return n;
}

int stream_ack(redis_conn *c, const char *stream, const char *group, const char *const *ids,
               size_t n) {
    if (n == 0) return 0;
    const char **argv = ps_malloc((n + 3) * sizeof(*argv));
    if (argv == NULL) return -1;
    argv[0] = "XACK";
    argv[1] = stream;
    argv[2] = group;
    memcpy(argv + 3, ids, n * sizeof(*argv));
    int rc = cmd(c, NULL, (int)(n + 3), argv);
    ps_free(argv);
    return rc;
}

int stream_add(redis_conn *c, const char *stream, const char *event_id, const char *type,
               const char *body, size_t body_len, int64_t received_ms, char *new_id) {
    return stream_add_from(c, stream, event_id, type, body, body_len, received_ms, NULL, new_id);
}

int stream_add_from(redis_conn *c, const char *stream, const char *event_id, const char *type,
                    const char *body, size_t body_len, int64_t received_ms, const char *source,
                    char *new_id) {
    char received[24];
    snprintf(received, sizeof(received), "%" PRId64, received_ms);
    const char *argv[] = {"XADD", stream, "*",        "id",     event_id, "type", type,
                          "body", body,   "received", received, "source", source};
    int argc = source ? 13 : 11;
    size_t lens[13];
    for (int i = 0; i < argc; i++)
        lens[i] = i == 8 ? body_len : strlen(argv[i]);
    redis_reply *r = NULL;
    if (redis_cmd(c, &r, argc, argv, lens) != 0) return -1;
    copy_id(r, new_id);
    redis_reply_free(r);
    return 0;
}

int stream_add_dead(redis_conn *c, const char *dead_stream, const stream_entry *e,
                    const char *error, long attempts) {
    char att[24], received[24];
    snprintf(att, sizeof(att), "%ld", attempts);
    snprintf(received, sizeof(received), "%" PRId64, e->received_ms);
    const char *argv[] = {"XADD",
                          dead_stream,
                          "*",
                          "stream_id",
                          e->id,
                          "id",
                          e->event_id ? e->event_id : "",
                          "type",
                          e->type ? e->type : "",
                          "body",
                          e->body ? e->body : "",
                          "received",
                          received,
                          "error",
                          error,
                          "attempts",
                          att};
    size_t lens[17];
    for (int i = 0; i < 17; i++)
        lens[i] = strlen(argv[i]);
    lens[10] = e->body ? e->body_len : 0;
    return redis_cmd(c, NULL, 17, argv, lens);
}

int stream_range(redis_conn *c, const char *stream, const char *from, const char *to, long count,
                 stream_batch *out) {
    char countbuf[24];
    snprintf(countbuf, sizeof(countbuf), "%ld", count);
    const char *argv[] = {"XRANGE", stream, from, to, "COUNT", countbuf};
    return cmd_entries(c, 6, argv, out);
}

int stream_delete(redis_conn *c, const char *stream, const char *id) {
    const char *argv[] = {"XDEL", stream, id};
    return cmd(c, NULL, 3, argv);
}

/* "ms-seq" (or "ms") as its two numbers; NULL or "" is 0-0. */
static void id_parts(const char *id, unsigned long long *ms, unsigned long long *seq) {
    const char *d = id ? strchr(id, '-') : NULL;
    *ms = id ? strtoull(id, NULL, 10) : 0;
    *seq = d ? strtoull(d + 1, NULL, 10) : 0;
}

int stream_id_cmp(const char *a, const char *b) {
    unsigned long long ams, aseq, bms, bseq;
    id_parts(a, &ams, &aseq);
    id_parts(b, &bms, &bseq);
    if (ams != bms) return ams < bms ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq ? 1 : 0;
}

long long stream_id_ms(const char *id) {
    unsigned long long ms, seq;
    id_parts(id, &ms, &seq);
    return (long long)ms;
}

static bool is_no_such_key(const redis_conn *c) {
    return redis_err(c) == RCONN_ERR_REPLY && strstr(redis_errstr(c), "no such key") != NULL;
}

/* Our group's entry of an XINFO GROUPS reply, or NULL. */
static const redis_reply *find_group(const redis_reply *groups, const char *group) {
    for (size_t g = 0; g < redis_reply_count(groups); g++) {
        const redis_reply *grp = redis_reply_at(groups, g);
        const char *name = redis_reply_str(redis_reply_field(grp, "name"), NULL);
        if (name && strcmp(name, group) == 0) return grp;
    }
    return NULL;
}

int stream_group_info_get(redis_conn *c, const char *stream, const char *group,
                          stream_group_info *out) {
    const char *info[] = {"XINFO", "GROUPS", stream}, *pend[] = {"XPENDING", stream, group};
    redis_reply *r = NULL;
    memset(out, 0, sizeof(*out));
    out->lag = -1;
    if (cmd(c, &r, 3, info) != 0) return is_no_such_key(c) ? 0 : -1;
    const redis_reply *grp = find_group(r, group), *lag = redis_reply_field(grp, "lag");
    out->found = grp != NULL;
    out->pending = redis_reply_int(redis_reply_field(grp, "pending"));
    if (redis_reply_kind(lag) == RREPLY_INTEGER) out->lag = redis_reply_int(lag);
    copy_id(redis_reply_field(grp, "last-delivered-id"), out->last_delivered);
    redis_reply_free(r);
    if (!out->found || out->pending == 0) return 0;
    if (cmd(c, &r, 3, pend) != 0) return -1;
    if (redis_reply_int(redis_reply_at(r, 0)) > 0)
        copy_id(redis_reply_at(r, 1), out->oldest_pending);
    redis_reply_free(r);
    return 0;
}

int stream_group_floor(redis_conn *c, const char *stream, const char *group, char *floor_id) {
    stream_group_info gi;
    floor_id[0] = '\0';
    if (stream_group_info_get(c, stream, group, &gi) != 0) return -1;
    if (gi.oldest_pending[0]) {
        str_copy(floor_id, gi.oldest_pending, STREAM_ID_MAX);
    } else if (gi.found && gi.last_delivered[0]) {
        unsigned long long ms, seq;
        id_parts(gi.last_delivered, &ms, &seq);
        snprintf(floor_id, STREAM_ID_MAX, "%llu-%llu", ms, seq + 1);
    }
    return 0;
}

long stream_trim_by_age(redis_conn *c, const char *stream, const char *group, int64_t before_ms) {
    char minid[64], floor_id[64] = "";
    snprintf(minid, sizeof(minid), "%" PRId64 "-0", before_ms);
    if (stream_group_floor(c, stream, group, floor_id) != 0) return -1;
    if (floor_id[0] == '\0') return 0; /* no group yet: keep everything */
    if (stream_id_cmp(floor_id, minid) < 0) str_copy(minid, floor_id, sizeof(minid));
    const char *argv[] = {"XTRIM", stream, "MINID", "~", minid};
    redis_reply *r = NULL;
    if (cmd(c, &r, 5, argv) != 0) return -1;
    long n = (long)redis_reply_int(r);
    redis_reply_free(r);
    return n;
}

/* <stream>:alive:<consumer>, or "" when it would not fit. */
static void alive_key(char *key, size_t size, const char *stream, const char *consumer) {
    int n = snprintf(key, size, "%s:alive:%s", stream, consumer);
    if (n < 0 || (size_t)n >= size) key[0] = '\0';
}

int stream_consumer_alive(redis_conn *c, const char *stream, const char *consumer, long ttl_ms) {
    char key[512], ttl[24];
    alive_key(key, sizeof(key), stream, consumer);
    snprintf(ttl, sizeof(ttl), "%ld", ttl_ms);
    const char *argv[] = {"SET", key, "1", "PX", ttl};
    return key[0] ? cmd(c, NULL, 5, argv) : -1;
}

int stream_consumer_gone(redis_conn *c, const char *stream, const char *consumer) {
    char key[512];
    alive_key(key, sizeof(key), stream, consumer);
    const char *argv[] = {"DEL", key};
    return key[0] ? cmd(c, NULL, 2, argv) : -1;
}

int stream_consumer_is_alive(redis_conn *c, const char *stream, const char *consumer) {
    char key[512];
    redis_reply *r = NULL;
    alive_key(key, sizeof(key), stream, consumer);
    const char *argv[] = {"EXISTS", key};
    if (key[0] == '\0' || cmd(c, &r, 2, argv) != 0) return -1;
    int alive = redis_reply_int(r) > 0;
    redis_reply_free(r);
    return alive;
}

/* One script, so that no entry can be delivered to a consumer between the
 * look at its pending count and its removal (XGROUP DELCONSUMER drops the
 * entries a consumer holds). A consumer whose alive key exists is kept
 * whatever its idle time: Redis 7.0 counts idle time from its last delivery,
 * so a live consumer of a quiet stream looks idle. */
static const char REAP_SCRIPT[] =
    "local removed = 0\n"
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "  if f['name'] ~= ARGV[3] and f['pending'] == 0 and f['idle'] > tonumber(ARGV[2])\n"
    "     and redis.call('EXISTS', ARGV[4] .. f['name']) == 0 then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])\n"
    "    removed = removed + 1\n"
    "  end\n"
    "end\n"
    "return removed\n";

long stream_reap_consumers(redis_conn *c, const char *stream, const char *group, long min_idle_ms,
                           const char *keep) {
    char idle[24], prefix[512];
    snprintf(idle, sizeof(idle), "%ld", min_idle_ms);
    alive_key(prefix, sizeof(prefix), stream, ""); /* the script appends each name */
    const char *argv[] = {"EVAL", REAP_SCRIPT, "1", stream, group, idle, keep, prefix};
    redis_reply *r = NULL;
    if (prefix[0] == '\0' || cmd(c, &r, 8, argv) != 0) return -1;
    long removed = (long)redis_reply_int(r);
    redis_reply_free(r);
    return removed;
}
