/* stream.h - the event stream's commands, on a blocking redis_conn.
 *
 * Entries are `id <evt> type <type> body <raw json> received <ms>` (SPEC 2),
 * and `source backfill` after them when paystreamctl backfill added them.
 * The worker reads them through a consumer group; paystreamctl reads ranges,
 * re-adds and dead-letters them. Batches own their entries: free them with
 * stream_batch_free(). An entry deleted by trimming comes back with body NULL. */
#ifndef PS_STREAM_H
#define PS_STREAM_H

#include "redis.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct stream_entry {
    char *id;       /* stream entry id, "1700000000000-0" */
    char *event_id; /* evt_... (NULL if missing) */
    char *type;
    char *body; /* raw event JSON, NUL-terminated; NULL if the entry is gone */
    size_t body_len;
    int64_t received_ms;
    char *error;     /* dead letters only: why it failed */
    char *source_id; /* dead letters only: the entry id in the main stream */
    long attempts;   /* dead letters only */
    char *source;    /* "backfill" for entries paystreamctl backfill added; NULL from ingest */
} stream_entry;

typedef struct stream_batch {
    stream_entry *entries;
    size_t n;
} stream_batch;

void stream_batch_free(stream_batch *b);

/* XGROUP CREATE <stream> <group> 0 MKSTREAM; an existing group is fine. */
int stream_group_ensure(redis_conn *c, const char *stream, const char *group);
/* Is the connection's last error Redis's NOGROUP (group or stream lost)? */
bool stream_is_nogroup(const redis_conn *c);

/* XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s <from>; from is ">" for
 * new entries or "0" for this consumer's own pending ones. */
int stream_read_group(redis_conn *c, const char *stream, const char *group, const char *consumer,
                      const char *from, long count, long block_ms, stream_batch *out);
/* XAUTOCLAIM from *cursor (start with "0-0"); cursor is updated (64 bytes). */
int stream_autoclaim(redis_conn *c, const char *stream, const char *group, const char *consumer,
                     long min_idle_ms, char *cursor, long count, stream_batch *out);
/* XCLAIM one entry to `consumer` now (counts as a delivery). */
int stream_claim(redis_conn *c, const char *stream, const char *group, const char *consumer,
                 const char *id, stream_batch *out);
/* Times the entry has been delivered (XPENDING); 0 if it is not pending. */
long stream_deliveries(redis_conn *c, const char *stream, const char *group, const char *id);
int stream_ack(redis_conn *c, const char *stream, const char *group, const char *const *ids,
               size_t n);

/* XADD an event; new_id (64 bytes) receives the entry id when not NULL. */
int stream_add(redis_conn *c, const char *stream, const char *event_id, const char *type,
               const char *body, size_t body_len, int64_t received_ms, char *new_id);
/* The same with `source <source>` after the ingest fields (NULL: none), for
 * entries that did not come through ingest (paystreamctl backfill). */
int stream_add_from(redis_conn *c, const char *stream, const char *event_id, const char *type,
                    const char *body, size_t body_len, int64_t received_ms, const char *source,
                    char *new_id);
/* XADD to the dead-letter stream, with the failure reason. */
int stream_add_dead(redis_conn *c, const char *dead_stream, const stream_entry *e,
                    const char *error, long attempts);
/* XRANGE <stream> from to COUNT n. */
int stream_range(redis_conn *c, const char *stream, const char *from, const char *to, long count,
                 stream_batch *out);
int stream_delete(redis_conn *c, const char *stream, const char *id);

#define STREAM_ID_MAX 64 /* an entry id and its NUL */

/* One consumer group, as XINFO GROUPS and XPENDING see it. */
typedef struct stream_group_info {
    bool found;                         /* the stream and the group exist */
    long long pending;                  /* entries delivered and not acknowledged */
    long long lag;                      /* entries not delivered yet; -1 when Redis cannot tell */
    char last_delivered[STREAM_ID_MAX]; /* "" when none */
    char oldest_pending[STREAM_ID_MAX]; /* the smallest pending id, "" when none */
} stream_group_info;

/* Read it; a missing stream or group is found = false, not an error. */
int stream_group_info_get(redis_conn *c, const char *stream, const char *group,
                          stream_group_info *out);
/* The milliseconds part of an entry id (0 for NULL or ""). */
long long stream_id_ms(const char *id);

/* The group's oldest pending id or, with nothing pending, the entry after its
 * last delivered one (STREAM_ID_MAX bytes; "" when the group does not exist):
 * every entry before it has been acknowledged. */
int stream_group_floor(redis_conn *c, const char *stream, const char *group, char *floor_id);

/* Trim entries older than `before_ms`, never past the oldest pending or
 * undelivered entry of `group`. Returns entries removed or -1. */
long stream_trim_by_age(redis_conn *c, const char *stream, const char *group, int64_t before_ms);

/* A consumer's liveness, which the worker keeps itself because Redis 7.0
 * counts a consumer's idle time from its last delivery, not its last read:
 * the key <stream>:alive:<consumer>, set for ttl_ms and renewed well before
 * it lapses, deleted on a clean stop. is_alive: 1, 0, or -1 on error. */
int stream_consumer_alive(redis_conn *c, const char *stream, const char *consumer, long ttl_ms);
int stream_consumer_gone(redis_conn *c, const char *stream, const char *consumer);
int stream_consumer_is_alive(redis_conn *c, const char *stream, const char *consumer);

/* XGROUP DELCONSUMER every consumer of `group` but `keep` that holds no
 * pending entry, has been idle longer than min_idle_ms and has no alive key
 * (the consumers of worker processes that are gone), atomically: an entry
 * delivered meanwhile keeps its consumer. Returns consumers removed or -1. */
long stream_reap_consumers(redis_conn *c, const char *stream, const char *group, long min_idle_ms,
                           const char *keep);

/* Compare two stream ids ("ms-seq"); <0, 0, >0. */
int stream_id_cmp(const char *a, const char *b);

#endif
