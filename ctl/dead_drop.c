/* dead_drop.c - `paystreamctl dead drop ID --reason TEXT` (SPEC 6): for an
 * event that can never apply (say a test event sent to the live endpoint).
 * ID is the dead letter's stream id or its event id (evt_...). The event is
 * recorded `dropped` in webhook_events with the reason and who dropped it
 * (drop_event, sql/events.sql), then its dead letter is removed: a crash
 * between the two leaves the dead letter, and dropping it again is fine. */
#include "commands.h"
#include "stream.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 500

#define SQL_DROP "SELECT paystream.drop_event($1, $2, $3, $4, $5)"

/* The dead letter named by id (a stream id or an event id), into *out
 * (a batch of one); 0 found, 1 not found, -1 Redis error. */
static int find_dead(redis_conn *rc, const char *dead, const char *id, stream_batch *out) {
    if (strncmp(id, "evt_", 4) != 0) {
        if (stream_range(rc, dead, id, id, 1, out) != 0) return -1;
        return out->n == 1 ? 0 : 1;
    }
    char from[80] = "-";
    for (;;) {
        if (stream_range(rc, dead, from, "+", PAGE, out) != 0) return -1;
        for (size_t i = 0; i < out->n; i++) {
            if (out->entries[i].event_id && strcmp(out->entries[i].event_id, id) == 0) {
                if (i > 0) { /* keep only that one, first */
                    stream_entry tmp = out->entries[0];
                    out->entries[0] = out->entries[i];
                    out->entries[i] = tmp;
                }
                return 0;
            }
        }
        bool more = out->n == PAGE;
        if (more) snprintf(from, sizeof(from), "(%s", out->entries[out->n - 1].id);
        stream_batch_free(out);
        if (!more) return 1;
    }
}

/* Who drops it, as this machine names them. */
static const char *who(char *buf, size_t size) {
    const struct passwd *pw = getpwuid(geteuid());
    const char *name = pw ? pw->pw_name : getenv("USER");
    snprintf(buf, size, "%s", name ? name : "unknown");
    return buf;
}

static int drop_entry(pg_conn *pg, redis_conn *rc, const char *dead, const stream_entry *d,
                      const char *reason) {
    char by[128];
    const char *params[5] = {d->event_id, d->type, d->source_id ? d->source_id : d->id, reason,
                             who(by, sizeof(by))};
    pg_result *r = NULL;
    if (d->event_id == NULL) {
        printf("%s has no event id (not a Stripe event): nothing to record\n", d->id);
    } else if (pg_exec(pg, SQL_DROP, 5, params, &r) != 0) {
        return ctl_fail(1, "dead drop", "%s: %s", d->event_id, pg_errstr(pg));
    }
    if (r) printf("%s  %s  %s\n", d->id, d->event_id, pg_value(r, 0, 0));
    pg_result_free(r);
    if (stream_delete(rc, dead, d->id) != 0)
        return ctl_fail(1, "dead drop", "%s is recorded dropped but still in %s: %s", d->id, dead,
                        redis_errstr(rc));
    printf("dead drop: %s removed from %s\n", d->id, dead);
    return 0;
}

int dead_drop(const ps_config *cfg, const char *id, const char *reason) {
    char dead[300];
    snprintf(dead, sizeof(dead), "%s:dead", cfg->stream);
    pg_conn *pg = ctl_db_connect(cfg);
    if (pg == NULL) return 1;
    redis_conn *rc = ctl_redis_connect(cfg);
    int code = 1;
    stream_batch b = {0};
    if (rc == NULL) goto done;
    int found = find_dead(rc, dead, id, &b);
    if (found < 0)
        code = ctl_fail(1, "dead drop", "%s", redis_errstr(rc));
    else if (found > 0)
        code = ctl_fail(1, "dead drop", "no dead letter %s in %s", id, dead);
    else
        code = drop_entry(pg, rc, dead, &b.entries[0], reason);
done:
    stream_batch_free(&b);
    redis_close(rc);
    pg_close(pg);
    return code;
}
