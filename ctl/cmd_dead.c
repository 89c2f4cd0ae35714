/* cmd_dead.c - `paystreamctl dead list` and `dead retry ID|--all`.
 *
 * A dead letter is an event whose retries ran out (<stream>:dead, with the
 * error). Once the cause is fixed (say a missing plan was added), `retry`
 * appends it to the main stream again, where workers apply it through the
 * usual idempotent path, and removes the dead letter. */
#include "commands.h"
#include "stream.h"
#include "strbuf.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>

#define PAGE 500

static int dead_list(redis_conn *rc, const char *dead) {
    char from[80] = "-";
    long total = 0;
    for (;;) {
        stream_batch b;
        if (stream_range(rc, dead, from, "+", PAGE, &b) != 0)
            return ctl_fail(1, "dead list", "%s", redis_errstr(rc));
        for (size_t i = 0; i < b.n; i++) {
            const stream_entry *e = &b.entries[i];
            printf("%s  %s  %s  attempts %ld\n    %s\n", e->id, e->event_id ? e->event_id : "-",
                   e->type ? e->type : "-", e->attempts, e->error ? e->error : "");
        }
        total += (long)b.n;
        bool more = b.n == PAGE;
        if (more) snprintf(from, sizeof(from), "(%s", b.entries[b.n - 1].id);
        stream_batch_free(&b);
        if (!more) break;
    }
    printf("%ld dead letter%s in %s\n", total, total == 1 ? "" : "s", dead);
    return 0;
}

/* Re-add one dead letter to the stream, then delete it from the dead letters. */
static int retry_one(redis_conn *rc, const ps_config *cfg, const char *dead,
                     const stream_entry *e) {
    char new_id[64];
    if (e->body == NULL || e->event_id == NULL)
        return ctl_fail(1, "dead retry", "%s has no event body", e->id);
    if (stream_add(rc, cfg->stream, e->event_id, e->type ? e->type : "", e->body, e->body_len,
                   time_now_ms(), new_id) != 0)
        return ctl_fail(1, "dead retry", "%s: %s", e->id, redis_errstr(rc));
    if (stream_delete(rc, dead, e->id) != 0)
        return ctl_fail(1, "dead retry", "%s re-sent as %s but not removed: %s", e->id, new_id,
                        redis_errstr(rc));
    printf("%s (%s) sent back to %s as %s\n", e->id, e->event_id, cfg->stream, new_id);
    return 0;
}

static int dead_retry(redis_conn *rc, const ps_config *cfg, const char *dead, const char *id) {
    bool all = strcmp(id, "--all") == 0;
    int failures = 0, sent = 0;
    for (;;) {
        stream_batch b;
        if (stream_range(rc, dead, all ? "-" : id, all ? "+" : id, all ? PAGE : 1, &b) != 0)
            return ctl_fail(1, "dead retry", "%s", redis_errstr(rc));
        if (b.n == 0 && !all && sent == 0 && failures == 0) {
            stream_batch_free(&b);
            return ctl_fail(1, "dead retry", "no dead letter %s in %s", id, dead);
        }
        for (size_t i = 0; i < b.n; i++) {
            if (retry_one(rc, cfg, dead, &b.entries[i]) != 0)
                failures++;
            else
                sent++;
        }
        bool more = all && b.n == PAGE && failures == 0;
        stream_batch_free(&b);
        if (!more) break;
    }
    printf("%d sent back, %d failed\n", sent, failures);
    return failures ? 1 : 0;
}

int cmd_dead(const ps_config *cfg, int argc, char **argv) {
    bool list = argc == 2 && strcmp(argv[1], "list") == 0;
    bool retry = argc == 3 && strcmp(argv[1], "retry") == 0;
    if (!list && !retry)
        return ctl_fail(EXIT_USAGE, "dead", "usage: dead list | dead retry ID|--all");
    if (retry && strcmp(argv[2], "--all") != 0 && stream_id_cmp(argv[2], "0-1") < 0)
        return ctl_fail(EXIT_USAGE, "dead retry", "'%s' is not a stream id", argv[2]);
    redis_conn *rc = ctl_redis_connect(cfg);
    if (rc == NULL) return 1;
    char dead[300];
    snprintf(dead, sizeof(dead), "%s:dead", cfg->stream);
    int code = list ? dead_list(rc, dead) : dead_retry(rc, cfg, dead, argv[2]);
    redis_close(rc);
    return code;
}
