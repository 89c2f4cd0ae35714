/* cmd_status.c - `paystreamctl status` (SPEC 6): one screen of how the
 * pipeline is doing, from Redis (the stream's length and age, the group's
 * lag and pending entries, the workers seen, the dead letters) and from
 * PostgreSQL (events waiting for another event, the last one applied).
 * Exit 1 when something needs an operator: a dead letter, an entry pending
 * for longer than STUCK_MS, or entries to apply and no worker seen lately. */
#include "commands.h"
#include "stream.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUCK_MS (5L * 60 * 1000) /* a pending entry this old: its worker is stuck */
#define SEEN_MS  (60L * 1000)     /* a worker idle longer than this is not seen */

typedef struct redis_status {
    long long length, dead, lag, pending, consumers, seen;
    long long oldest_ms, oldest_pending_ms; /* entry times, 0 when none */
    bool group;
} redis_status;

static int run(redis_conn *rc, redis_reply **r, int argc, const char **argv) {
    return redis_cmd(rc, r, argc, argv, NULL);
}

/* A consumer is seen when its worker keeps its alive key, or (a worker
 * older than those keys) when it was delivered entries within SEEN_MS. */
static int consumers(redis_conn *rc, const ps_config *cfg, redis_status *s) {
    const char *argv[] = {"XINFO", "CONSUMERS", cfg->stream, cfg->group};
    redis_reply *r = NULL;
    int err = 0;
    if (run(rc, &r, 4, argv) != 0) return -1;
    s->consumers = (long long)redis_reply_count(r);
    for (size_t i = 0; i < redis_reply_count(r) && err == 0; i++) {
        const redis_reply *c = redis_reply_at(r, i);
        const char *name = redis_reply_str(redis_reply_field(c, "name"), NULL);
        int alive = name ? stream_consumer_is_alive(rc, cfg->stream, name) : 0;
        if (alive < 0) err = -1;
        if (alive > 0 || redis_reply_int(redis_reply_field(c, "idle")) < SEEN_MS) s->seen++;
    }
    redis_reply_free(r);
    return err;
}

static int redis_part(redis_conn *rc, const ps_config *cfg, redis_status *s) {
    char dead[300];
    snprintf(dead, sizeof(dead), "%s:dead", cfg->stream);
    const char *len[] = {"XLEN", cfg->stream}, *dlen[] = {"XLEN", dead};
    const char *first[] = {"XRANGE", cfg->stream, "-", "+", "COUNT", "1"};
    redis_reply *r = NULL;
    if (run(rc, &r, 2, len) != 0) return -1;
    s->length = redis_reply_int(r);
    redis_reply_free(r);
    if (run(rc, &r, 2, dlen) != 0) return -1;
    s->dead = redis_reply_int(r);
    redis_reply_free(r);
    if (run(rc, &r, 6, first) != 0) return -1;
    s->oldest_ms = stream_id_ms(redis_reply_str(redis_reply_at(redis_reply_at(r, 0), 0), NULL));
    redis_reply_free(r);
    stream_group_info gi;
    if (stream_group_info_get(rc, cfg->stream, cfg->group, &gi) != 0) return -1;
    s->group = gi.found;
    s->lag = gi.lag;
    s->pending = gi.pending;
    s->oldest_pending_ms = stream_id_ms(gi.oldest_pending);
    return s->group ? consumers(rc, cfg, s) : 0;
}

static void print_age(const char *label, long long ms_then, long long now) {
    long long s = (now - ms_then) / 1000;
    if (ms_then == 0)
        printf("%-22s -\n", label);
    else
        printf("%-22s %lldh%02lldm%02llds\n", label, s / 3600, s % 3600 / 60, s % 60);
}

static const char *SQL_DB =
    "SELECT (SELECT count(*) FROM paystream.waiting_events),"
    " (SELECT coalesce(extract(epoch FROM now() - min(first_wait_at))::bigint::text, '-')"
    "    FROM paystream.waiting_events),"
    " (SELECT coalesce(max(processed_at)::text, '-') FROM paystream.webhook_events"
    "   WHERE status = 'applied'),"
    " (SELECT count(*) FROM paystream.webhook_events WHERE status = 'failed')";

int cmd_status(const ps_config *cfg, int argc, char **argv) {
    (void)argv;
    if (argc != 1) return ctl_fail(EXIT_USAGE, "status", "usage: status");
    redis_status s = {0};
    redis_conn *rc = ctl_redis_connect(cfg);
    if (rc == NULL) return 1;
    int rs = redis_part(rc, cfg, &s);
    if (rs != 0) fprintf(stderr, "paystreamctl: status: Redis: %s\n", redis_errstr(rc));
    redis_close(rc);
    if (rs != 0) return 1;
    pg_conn *pg = ctl_db_connect(cfg);
    pg_result *r = NULL;
    if (pg == NULL || pg_exec(pg, SQL_DB, 0, NULL, &r) != 0) {
        if (pg) fprintf(stderr, "paystreamctl: status: PostgreSQL: %s\n", pg_errstr(pg));
        pg_close(pg);
        return 1;
    }
    long long now = time_now_ms();
    printf("%-22s %s (%lld entries)\n", "stream", cfg->stream, s.length);
    print_age("oldest entry", s.oldest_ms, now);
    if (s.group) {
        printf("%-22s %s: lag %lld, pending %lld\n", "group", cfg->group, s.lag, s.pending);
        print_age("oldest pending", s.oldest_pending_ms, now);
    } else {
        printf("%-22s %s: not created yet (no worker ever ran)\n", "group", cfg->group);
    }
    printf("%-22s %lld seen in the last %lds (%lld in the group)\n", "workers (consumers)", s.seen,
           SEEN_MS / 1000, s.consumers);
    printf("%-22s %s (oldest waiting %s s)\n", "waiting events", pg_value(r, 0, 0),
           pg_value(r, 0, 1));
    printf("%-22s %lld in %s:dead (%s recorded failed)\n", "dead letters", s.dead, cfg->stream,
           pg_value(r, 0, 3));
    printf("%-22s %s\n", "last applied", pg_value(r, 0, 2));
    pg_result_free(r);
    pg_close(pg);
    bool stuck = s.oldest_pending_ms && now - s.oldest_pending_ms > STUCK_MS;
    bool idle = s.seen == 0 && (s.pending > 0 || s.lag > 0 || (!s.group && s.length > 0));
    if (s.dead > 0)
        printf("NEEDS AN OPERATOR: %lld dead letter(s): paystreamctl dead list\n", s.dead);
    if (stuck) printf("NEEDS AN OPERATOR: an entry pending for over %ld min\n", STUCK_MS / 60000);
    if (idle) printf("NEEDS AN OPERATOR: events to apply and no worker seen\n");
    if (s.dead == 0 && !stuck && !idle) printf("status: ok\n");
    return s.dead > 0 || stuck || idle ? 1 : 0;
}
