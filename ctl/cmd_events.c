/* cmd_events.c - `paystreamctl events show EVENT_ID`: everything known about
 * one Stripe event: its database record (status, attempts, error), its wait
 * for another event when it waits (SPEC 3), the stream entry it came in (or
 * its dead letter), and the ledger rows it made. */
#include "commands.h"
#include "stream.h"
#include "strbuf.h"

#include <stdio.h>
#include <string.h>

#define SCAN_PAGE 1000
#define SCAN_MAX  2000000 /* entries scanned when the database does not know the id */

static void print_entry(const char *where, const stream_entry *e) {
    printf("%s entry %s\n  id             %s\n  type           %s\n  received (ms)  %lld\n", where,
           e->id, e->event_id ? e->event_id : "", e->type ? e->type : "",
           (long long)e->received_ms);
    if (e->source) printf("  source         %s\n", e->source);
    if (e->error) printf("  error          %s\n  attempts       %ld\n", e->error, e->attempts);
    printf("  body (%zu bytes) %.*s%s\n", e->body_len, 300, e->body ? e->body : "",
           e->body_len > 300 ? "..." : "");
}

/* Find the entry of event_id in stream, starting at hint when known. */
static bool find_entry(redis_conn *rc, const char *stream, const char *event_id, const char *hint,
                       const char *where) {
    char from[80];
    str_copy(from, hint ? hint : "-", sizeof(from));
    for (long scanned = 0; scanned < SCAN_MAX; scanned += SCAN_PAGE) {
        stream_batch b;
        if (stream_range(rc, stream, from, "+", hint ? 1 : SCAN_PAGE, &b) != 0) return false;
        for (size_t i = 0; i < b.n; i++) {
            if (b.entries[i].event_id && strcmp(b.entries[i].event_id, event_id) == 0) {
                print_entry(where, &b.entries[i]);
                stream_batch_free(&b);
                return true;
            }
        }
        bool more = b.n == SCAN_PAGE && !hint;
        if (more) snprintf(from, sizeof(from), "(%s", b.entries[b.n - 1].id);
        stream_batch_free(&b);
        if (!more) return false;
    }
    return false;
}

/* Its row of the waiting table, if it waits for another event. */
static int show_waiting(pg_conn *pg, const char *const *params) {
    pg_result *r = NULL;
    if (pg_exec(pg,
                "SELECT first_wait_at AS waiting_since,"
                " date_trunc('second', now() - first_wait_at) AS waited, reason AS waits_for,"
                " next_attempt_at AS next_attempt, waits, failures, error AS last_failure"
                " FROM paystream.waiting_events WHERE event_id = $1",
                1, params, &r) != 0)
        return -1;
    if (pg_nrows(r)) {
        printf("waiting for another event\n");
        ctl_print_rows(r, false);
    }
    pg_result_free(r);
    return 0;
}

static int show_db(pg_conn *pg, const char *event_id, char *stream_id, size_t len) {
    const char *params[1] = {event_id};
    pg_result *r = NULL;
    if (pg_exec(pg,
                "SELECT event_id, type, status, attempts, error, note, user_id, livemode,"
                " api_version, to_timestamp(event_created) AS created, stream_id, first_seen_at,"
                " processed_at FROM paystream.webhook_events WHERE event_id = $1",
                1, params, &r) != 0)
        return ctl_fail(1, "events show", "%s", pg_errstr(pg));
    if (pg_nrows(r) == 0) {
        printf("database: no record of %s\n", event_id);
    } else {
        printf("database record\n");
        ctl_print_rows(r, false);
        if (pg_value(r, 0, 10)) str_copy(stream_id, pg_value(r, 0, 10), len);
    }
    pg_result_free(r);
    if (show_waiting(pg, params) != 0) return ctl_fail(1, "events show", "%s", pg_errstr(pg));
    if (pg_exec(pg,
                "SELECT id, user_id, bucket, amount, kind, reference, balance_after, created_at"
                " FROM paystream.credit_transactions WHERE event_id = $1 ORDER BY id",
                1, params, &r) != 0)
        return ctl_fail(1, "events show", "%s", pg_errstr(pg));
    printf("ledger rows: %d\n", pg_nrows(r));
    if (pg_nrows(r)) ctl_print_rows(r, true);
    pg_result_free(r);
    return 0;
}

int cmd_events(const ps_config *cfg, int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "show") != 0)
        return ctl_fail(EXIT_USAGE, "events", "usage: events show EVENT_ID");
    const char *id = argv[2];
    if (!str_starts_with(id, "evt_") && !str_starts_with(id, "stream:"))
        return ctl_fail(EXIT_USAGE, "events show", "'%s' is not an event id (evt_...)", id);
    pg_conn *pg = ctl_db_connect(cfg);
    redis_conn *rc = pg ? ctl_redis_connect(cfg) : NULL;
    int rc_exit = 1;
    char stream_id[80] = "", dead[300];
    if (rc == NULL) goto done;
    rc_exit = show_db(pg, id, stream_id, sizeof(stream_id));
    snprintf(dead, sizeof(dead), "%s:dead", cfg->stream);
    if (!find_entry(rc, cfg->stream, id, stream_id[0] ? stream_id : NULL, "stream") &&
        !find_entry(rc, cfg->stream, id, NULL, "stream"))
        printf("stream: no entry for %s in %s (trimmed, or never received)\n", id, cfg->stream);
    if (find_entry(rc, dead, id, NULL, "dead letter")) printf("(it is in the dead letters)\n");
done:
    redis_close(rc);
    pg_close(pg);
    return rc_exit;
}
