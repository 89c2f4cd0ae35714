/* cmd_replay.c - `paystreamctl replay --from ID [--to ID] [--type T] [--dry-run]`.
 *
 * Re-applies stream entries through the workers' own apply path (apply.c):
 * events already applied or skipped are reported as skipped; events that
 * failed, or that the database lost (say, after restoring an older backup),
 * are applied. Signatures are not checked again: they were verified when the
 * events arrived, so the timestamp tolerance does not apply to replays. */
#include "commands.h"
#include "apply.h"
#include "stream.h"
#include "strbuf.h"

#include <stdio.h>
#include <string.h>

#define PAGE 200

typedef struct replay_opts {
    const char *from, *to, *type;
    bool dry_run;
} replay_opts;

typedef struct replay_counts {
    long applied, skipped, failed;
} replay_counts;

static int parse_opts(int argc, char **argv, replay_opts *o) {
    memset(o, 0, sizeof(*o));
    o->to = "+";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--dry-run") == 0)
            o->dry_run = true;
        else if (i + 1 < argc && strcmp(a, "--from") == 0)
            o->from = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--to") == 0)
            o->to = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--type") == 0)
            o->type = argv[++i];
        else
            return -1;
    }
    return o->from ? 0 : -1;
}

/* What a replay would do with this event, from its database record. */
static const char *dry_outcome(pg_conn *pg, const stream_entry *e) {
    const char *params[1] = {e->event_id};
    pg_result *r = NULL;
    const char *out = "apply";
    if (pg_exec(pg, "SELECT status FROM paystream.webhook_events WHERE event_id = $1", 1, params,
                &r) != 0)
        return "error";
    if (pg_nrows(r) &&
        (strcmp(pg_value(r, 0, 0), "applied") == 0 || strcmp(pg_value(r, 0, 0), "skipped") == 0))
        out = "skip";
    pg_result_free(r);
    return out;
}

static void replay_one(const ps_config *cfg, pg_conn *pg, const stream_entry *e, bool dry,
                       replay_counts *n) {
    if (dry) {
        const char *what = e->event_id ? dry_outcome(pg, e) : "apply";
        printf("%s  %s  %s  would %s\n", e->id, e->event_id ? e->event_id : "-",
               e->type ? e->type : "-", what);
        if (strcmp(what, "skip") == 0)
            n->skipped++;
        else
            n->applied++;
        return;
    }
    apply_info info;
    apply_result r = apply_entry(cfg, pg, e, &info);
    if (r == APPLY_DONE && strcmp(info.outcome, "applied") == 0)
        n->applied++;
    else if (r == APPLY_DONE)
        n->skipped++;
    else
        n->failed++;
    printf("%s  %s  %s  %s%s%s\n", e->id, e->event_id ? e->event_id : "-", e->type ? e->type : "-",
           r == APPLY_DONE ? info.outcome : "failed", r == APPLY_DONE ? "" : ": ",
           r == APPLY_DONE ? "" : (r == APPLY_DB_LOST ? pg_errstr(pg) : info.error));
}

int cmd_replay(const ps_config *cfg, int argc, char **argv) {
    replay_opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return ctl_fail(EXIT_USAGE, "replay",
                        "usage: replay --from STREAM_ID [--to STREAM_ID] [--type T] [--dry-run]");
    pg_conn *pg = ctl_db_connect(cfg);
    redis_conn *rc = pg ? ctl_redis_connect(cfg) : NULL;
    replay_counts n = {0, 0, 0};
    char from[80];
    int code = 1;
    if (rc == NULL) goto done;
    str_copy(from, o.from, sizeof(from));
    for (;;) {
        stream_batch b;
        if (stream_range(rc, cfg->stream, from, o.to, PAGE, &b) != 0) {
            ctl_fail(1, "replay", "%s", redis_errstr(rc));
            goto done;
        }
        for (size_t i = 0; i < b.n; i++)
            if (o.type == NULL || (b.entries[i].type && strcmp(b.entries[i].type, o.type) == 0))
                replay_one(cfg, pg, &b.entries[i], o.dry_run, &n);
        bool more = b.n == PAGE;
        if (more) snprintf(from, sizeof(from), "(%s", b.entries[b.n - 1].id);
        stream_batch_free(&b);
        if (!more) break;
    }
    printf("replay%s: %ld %s, %ld skipped, %ld failed\n", o.dry_run ? " (dry run)" : "", n.applied,
           o.dry_run ? "to apply" : "applied", n.skipped, n.failed);
    code = n.failed ? 1 : 0;
done:
    redis_close(rc);
    pg_close(pg);
    return code;
}
