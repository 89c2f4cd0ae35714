/* cmd_dead.c - `paystreamctl dead list`, `dead retry ID|--all` and the
 * command line of `dead drop ID --reason TEXT` (dead_drop.c).
 *
 * A dead letter is an event whose retries ran out (<stream>:dead, with the
 * error). Once the cause is fixed (say a missing plan was added), `retry`
 * applies it at once through the workers' own idempotent path (apply.c) and
 * removes the dead letter after COMMIT. One that still fails stays dead, its
 * new error recorded in webhook_events; `--all` goes on with the rest and
 * exits 1 if any failed. An event applied meanwhile is reported as skipped.
 * One that still waits for another event (its wait ran out, SPEC 3) starts
 * a fresh wait: it goes back to the stream, where a worker keeps it. */
#include "commands.h"
#include "apply.h"
#include "stream.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 500

typedef struct retry_counts {
    long applied, skipped, failed, waiting;
} retry_counts;

static const char *or_dash(const char *s) {
    return s && s[0] ? s : "-";
}

/* "2h5m", "3m10s", "42s": how long ago a dead letter was written (its id). */
static const char *age(const char *id, char *buf, size_t size) {
    long long s = (time_now_ms() - strtoll(id, NULL, 10)) / 1000;
    if (s < 0) s = 0;
    if (s >= 3600)
        snprintf(buf, size, "%lldh%lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, size, "%lldm%llds", s / 60, s % 60);
    else
        snprintf(buf, size, "%llds", s);
    return buf;
}

/* The user webhook_events records for the event, or "-" (none, or no
 * database: then the list is still given, from Redis alone). */
static const char *user_of(pg_conn *pg, const char *event_id, char *buf, size_t size) {
    pg_result *r = NULL;
    const char *params[1] = {event_id};
    snprintf(buf, size, "-");
    if (pg == NULL || event_id == NULL ||
        pg_exec(pg, "SELECT user_id FROM paystream.webhook_events WHERE event_id = $1", 1, params,
                &r) != 0)
        return buf;
    if (pg_nrows(r) == 1 && pg_value(r, 0, 0)) snprintf(buf, size, "%s", pg_value(r, 0, 0));
    pg_result_free(r);
    return buf;
}

static int dead_list(pg_conn *pg, redis_conn *rc, const char *dead) {
    char from[80] = "-", user[64], ago[32];
    long total = 0;
    for (;;) {
        stream_batch b;
        if (stream_range(rc, dead, from, "+", PAGE, &b) != 0)
            return ctl_fail(1, "dead list", "%s", redis_errstr(rc));
        for (size_t i = 0; i < b.n; i++) {
            const stream_entry *e = &b.entries[i];
            printf("%s  %s  %s  user %s  dead %s ago  attempts %ld\n    %s\n", e->id,
                   or_dash(e->event_id), or_dash(e->type),
                   user_of(pg, e->event_id, user, sizeof(user)), age(e->id, ago, sizeof(ago)),
                   e->attempts, e->error ? e->error : "");
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

/* A dead letter whose rule still waits for another event: back to the
 * stream (a fresh arrival), where a worker starts a fresh wait for it; then
 * out of the dead letters. */
static int wait_again(const ps_config *cfg, redis_conn *rc, const char *dead, const stream_entry *d,
                      const apply_info *info, retry_counts *n) {
    char new_id[64] = "";
    if (stream_add(rc, cfg->stream, d->event_id ? d->event_id : info->event_id,
                   d->type ? d->type : info->type, d->body ? d->body : "", d->body_len,
                   time_now_ms(), new_id) != 0)
        return ctl_fail(-1, "dead retry", "%s: cannot re-add it to %s: %s", d->id, cfg->stream,
                        redis_errstr(rc));
    n->waiting++;
    printf("%s  %s  %s  waits again (back in %s as %s): %s\n", d->id, or_dash(d->event_id),
           or_dash(d->type), cfg->stream, new_id, info->error);
    if (stream_delete(rc, dead, d->id) != 0)
        return ctl_fail(-1, "dead retry", "%s is back in %s but still in %s: %s", d->id,
                        cfg->stream, dead, redis_errstr(rc));
    return 0;
}

/* Apply one dead letter now. Returns -1 only when the database or Redis is
 * gone (nothing after it could succeed); a failed event is counted, not fatal. */
static int retry_one(const ps_config *cfg, pg_conn *pg, redis_conn *rc, const char *dead,
                     const stream_entry *d, retry_counts *n) {
    stream_entry e = *d;
    apply_info info;
    if (d->source_id) e.id = d->source_id; /* recorded under its main-stream entry, as before */
    apply_result r = apply_entry(cfg, pg, &e, &info);
    if (r == APPLY_DB_LOST) {
        n->failed++;
        return ctl_fail(-1, "dead retry", "%s: %s", d->id, pg_errstr(pg));
    }
    if (r == APPLY_RETRY && strcmp(info.sqlstate, "55000") == 0)
        return wait_again(cfg, rc, dead, d, &info, n);
    if (r == APPLY_RETRY) {
        n->failed++;
        printf("%s  %s  %s  failed, stays dead: %s\n", d->id, or_dash(d->event_id),
               or_dash(d->type), info.error);
        if (apply_record_failure(pg, &e, &info, d->attempts + 1, true) != 0)
            fprintf(stderr, "paystreamctl: dead retry: %s: cannot record the failure: %s\n", d->id,
                    pg_errstr(pg));
        return 0;
    }
    if (strcmp(info.outcome, "applied") == 0)
        n->applied++;
    else
        n->skipped++;
    printf("%s  %s  %s  %s\n", d->id, or_dash(d->event_id), or_dash(d->type), info.outcome);
    if (stream_delete(rc, dead, d->id) != 0)
        return ctl_fail(-1, "dead retry", "%s is %s but still in %s: %s", d->id, info.outcome, dead,
                        redis_errstr(rc));
    return 0;
}

/* Retry the dead letters in [from, to], PAGE at a time; all of them with --all. */
static int dead_retry(const ps_config *cfg, pg_conn *pg, redis_conn *rc, const char *dead,
                      const char *id) {
    bool all = strcmp(id, "--all") == 0;
    retry_counts n = {0, 0, 0, 0};
    char from[80];
    snprintf(from, sizeof(from), "%s", all ? "-" : id);
    for (;;) {
        stream_batch b;
        if (stream_range(rc, dead, from, all ? "+" : id, PAGE, &b) != 0)
            return ctl_fail(1, "dead retry", "%s", redis_errstr(rc));
        if (b.n == 0 && !all && n.applied + n.skipped + n.failed + n.waiting == 0) {
            stream_batch_free(&b);
            return ctl_fail(1, "dead retry", "no dead letter %s in %s (already retried?)", id,
                            dead);
        }
        int stop = 0;
        for (size_t i = 0; i < b.n && stop == 0; i++)
            stop = retry_one(cfg, pg, rc, dead, &b.entries[i], &n);
        bool more = all && stop == 0 && b.n == PAGE;
        if (more) snprintf(from, sizeof(from), "(%s", b.entries[b.n - 1].id);
        stream_batch_free(&b);
        if (!more) break;
    }
    printf("dead retry: %ld applied, %ld skipped, %ld failed", n.applied, n.skipped, n.failed);
    if (n.waiting) printf(", %ld waiting again", n.waiting);
    printf("\n");
    return n.failed ? 1 : 0;
}

#define DEAD_USAGE "usage: dead list | dead retry ID|--all | dead drop ID --reason TEXT"

static int drop_command(const ps_config *cfg, int argc, char **argv) {
    if (argc != 5 || strcmp(argv[3], "--reason") != 0 || argv[4][0] == '\0')
        return ctl_fail(EXIT_USAGE, "dead drop", "usage: dead drop ID --reason TEXT");
    if (strncmp(argv[2], "evt_", 4) != 0 && stream_id_cmp(argv[2], "0-1") < 0)
        return ctl_fail(EXIT_USAGE, "dead drop", "'%s' is not a stream id or an event id", argv[2]);
    return dead_drop(cfg, argv[2], argv[4]);
}

int cmd_dead(const ps_config *cfg, int argc, char **argv) {
    bool list = argc == 2 && strcmp(argv[1], "list") == 0;
    bool retry = argc == 3 && strcmp(argv[1], "retry") == 0;
    if (argc >= 2 && strcmp(argv[1], "drop") == 0) return drop_command(cfg, argc, argv);
    if (!list && !retry) return ctl_fail(EXIT_USAGE, "dead", DEAD_USAGE);
    if (retry && strcmp(argv[2], "--all") != 0 && stream_id_cmp(argv[2], "0-1") < 0)
        return ctl_fail(EXIT_USAGE, "dead retry", "'%s' is not a stream id", argv[2]);
    char err[512];
    pg_conn *pg = retry ? ctl_db_connect(cfg) : pg_connect(cfg->database_url, err, sizeof(err));
    if (retry && pg == NULL) return 1;
    if (pg == NULL)
        fprintf(stderr, "paystreamctl: dead list: no database (%s): users not shown\n", err);
    redis_conn *rc = ctl_redis_connect(cfg);
    int code = 1;
    if (rc == NULL) goto done;
    char dead[300];
    snprintf(dead, sizeof(dead), "%s:dead", cfg->stream);
    code = list ? dead_list(pg, rc, dead) : dead_retry(cfg, pg, rc, dead, argv[2]);
done:
    redis_close(rc);
    pg_close(pg);
    return code;
}
