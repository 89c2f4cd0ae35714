/* cmd_backfill.c - `paystreamctl backfill --since SPEC [--until SPEC] [--dry-run]`.
 *
 * Closes gaps webhooks left (SPEC 6): pages Stripe's `GET /v1/events` over the
 * window (stripe_api.c) and appends every event paystream does not know yet
 * (backfill_known.c) to the stream with the fields ingest writes, plus
 * `source backfill`, so workers apply it through the same idempotent path.
 * The body is the event object re-serialised by jansson (compact, keys in
 * Stripe's order), not Stripe's bytes: the API has no raw text per event. */
#include "commands.h"
#include "backfill.h"
#include "log.h"
#include "stream.h"
#include "stripe_api.h"
#include "strbuf.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STRIPE_KEEPS_S (30L * 86400) /* Stripe lists the last 30 days of events */
#define USAGE                                                                                      \
    "usage: backfill --since SPEC [--until SPEC] [--dry-run] (SPEC: 90m, 72h, 30d or a unix time)"

typedef struct backfill_opts {
    long since, until; /* unix seconds; until -1: up to now */
    bool dry_run;
} backfill_opts;

typedef struct backfill_run {
    const ps_config *cfg;
    const backfill_opts *o;
    redis_conn *rc;
    pg_conn *pg;
    known_set *known;
    bool progress; /* stderr is a terminal */
    long pages, listed, enqueued, already;
} backfill_run;

/* ------------------------------------------------------------- options -- */

/* A unix time (all digits) as it is, or a duration counted back from now. */
static bool parse_spec(const char *s, long now, long *out) {
    long v;
    if (s[0] && strspn(s, "0123456789") == strlen(s)) return str_to_long(s, out);
    if (!duration_parse(s, &v)) return false;
    *out = now - v;
    return true;
}

static int parse_opts(int argc, char **argv, backfill_opts *o) {
    long now = (long)time(NULL);
    const char *since = NULL, *until = NULL;
    memset(o, 0, sizeof(*o));
    o->until = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            o->dry_run = true;
        else if (i + 1 < argc && strcmp(argv[i], "--since") == 0)
            since = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--until") == 0)
            until = argv[++i];
        else
            return ctl_fail(EXIT_USAGE, "backfill", "unknown argument '%s'; %s", argv[i], USAGE);
    }
    if (since == NULL) return ctl_fail(EXIT_USAGE, "backfill", "--since is required; %s", USAGE);
    if (!parse_spec(since, now, &o->since))
        return ctl_fail(EXIT_USAGE, "backfill", "--since '%s': %s", since, USAGE);
    if (until && !parse_spec(until, now, &o->until))
        return ctl_fail(EXIT_USAGE, "backfill", "--until '%s': %s", until, USAGE);
    if (o->since < now - STRIPE_KEEPS_S)
        return ctl_fail(EXIT_USAGE, "backfill",
                        "--since %s is beyond the 30 days of events Stripe keeps: use at most 30d",
                        since);
    if (until && o->until < o->since)
        return ctl_fail(EXIT_USAGE, "backfill", "--until %s is before --since %s", until, since);
    return 0;
}

/* ------------------------------------------------------------- one page -- */

static void show_progress(const backfill_run *r) {
    if (!r->progress) return;
    fprintf(stderr, "\rbackfill: page %ld, %ld listed, %ld enqueued, %ld already known", r->pages,
            r->listed, r->enqueued, r->already);
    fflush(stderr);
}

/* Append one event, as ingest would, with `source backfill`. */
static int enqueue(backfill_run *r, json_t *ev, const char *id, const char *type) {
    char *body = json_dumps(ev, JSON_COMPACT);
    char sid[64] = "";
    if (body == NULL) return ctl_fail(1, "backfill", "%s: out of memory", id);
    int rc = stream_add_from(r->rc, r->cfg->stream, id, type, body, strlen(body), time_now_ms(),
                             "backfill", sid);
    free(body); /* jansson's allocator */
    if (rc != 0)
        return ctl_fail(1, "backfill", "PAYSTREAM_REDIS_URL: XADD %s: %s", id, redis_errstr(r->rc));
    log_ev_debug(&((log_ctx){.event_id = id, .stream_id = sid}), "enqueued by backfill");
    return known_add(r->known, id) == 0 ? 0 : ctl_fail(1, "backfill", "out of memory");
}

/* Each event's id and type, checked; -1 on an event without them. */
static int page_ids(json_t *data, const char **ids, const char **types) {
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *ev = json_array_get(data, i);
        ids[i] = json_string_value(json_object_get(ev, "id"));
        types[i] = json_string_value(json_object_get(ev, "type"));
        if (ids[i] == NULL || types[i] == NULL || !known_plain_id(ids[i]))
            return ctl_fail(1, "backfill",
                            "Stripe listed an event #%zu without a plain id and a "
                            "type",
                            i);
    }
    return 0;
}

/* Decide and enqueue the events of one page. */
static int take_page(backfill_run *r, json_t *data) {
    size_t n = json_array_size(data);
    const char *ids[STRIPE_PAGE_LIMIT], *types[STRIPE_PAGE_LIMIT];
    bool in_db[STRIPE_PAGE_LIMIT];
    char err[512];
    if (n > STRIPE_PAGE_LIMIT)
        return ctl_fail(1, "backfill", "Stripe listed %zu events on a page of %d", n,
                        STRIPE_PAGE_LIMIT);
    if (page_ids(data, ids, types) != 0) return 1;
    /* the stream first: an entry acknowledged after this scan is in the database */
    if (known_refresh(r->known, err, sizeof(err)) != 0) return ctl_fail(1, "backfill", "%s", err);
    if (n && known_in_db(r->pg, ids, n, in_db) != 0)
        return ctl_fail(1, "backfill", "PAYSTREAM_DATABASE_URL: %s", pg_errstr(r->pg));
    for (size_t i = n; i-- > 0;) { /* oldest first within the page, as webhooks come */
        r->listed++;
        if (in_db[i] || known_in_stream(r->known, ids[i])) {
            r->already++;
        } else if (r->o->dry_run) {
            printf("would enqueue %s %s\n", ids[i], types[i]);
        } else {
            if (enqueue(r, json_array_get(data, i), ids[i], types[i]) != 0) return 1;
            r->enqueued++;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- paging -- */

static int page_all(backfill_run *r, stripe_api *api) {
    char after[256] = "";
    stripe_query q = {.gte = r->o->since, .lte = r->o->until, .starting_after = NULL};
    for (;;) {
        stripe_page p;
        stripe_status st = stripe_events_page(api, &q, &p);
        if (st != STRIPE_OK) return ctl_fail(1, "backfill", "%s", stripe_api_errstr(api));
        r->pages++;
        int rc = take_page(r, p.data);
        size_t n = json_array_size(p.data);
        bool more = p.has_more && n > 0;
        if (rc == 0 && more) {
            str_copy(after, json_string_value(json_object_get(json_array_get(p.data, n - 1), "id")),
                     sizeof(after));
            q.starting_after = after;
        }
        stripe_page_free(&p);
        show_progress(r);
        if (rc != 0) return rc;
        if (!more) return 0;
    }
}

int cmd_backfill(const ps_config *cfg, int argc, char **argv) {
    backfill_opts o;
    int code = parse_opts(argc, argv, &o);
    if (code != 0) return code;
    if (cfg->stripe_api_key == NULL)
        return ctl_fail(EXIT_USAGE, "backfill",
                        "STRIPE_API_KEY is not set: a restricted key (rk_...) with read access "
                        "to Events (or use --stripe-api-key)");
    backfill_run r = {.cfg = cfg, .o = &o, .progress = isatty(STDERR_FILENO) == 1};
    stripe_api *api = NULL;
    char err[512];
    code = 1;
    if ((r.pg = ctl_db_connect(cfg)) == NULL || (r.rc = ctl_redis_connect(cfg)) == NULL) goto done;
    r.known = known_open(r.rc, cfg->stream, cfg->group, o.since, err, sizeof(err));
    if (r.known == NULL) {
        ctl_fail(1, "backfill", "%s", err);
        goto done;
    }
    if ((api = stripe_api_new(cfg->stripe_api_base, cfg->stripe_api_key)) == NULL) {
        ctl_fail(1, "backfill", "cannot start libcurl (out of memory?)");
        goto done;
    }
    code = page_all(&r, api);
    if (r.progress) fputc('\n', stderr);
    log_debug("backfill: %ld pages, %ld requests, %ld stream entries checked", r.pages,
              stripe_api_requests(api), known_scanned(r.known));
    printf("%ld listed, %ld enqueued, %ld already known\n", r.listed, r.enqueued, r.already);
done:
    stripe_api_free(api);
    known_free(r.known);
    redis_close(r.rc);
    pg_close(r.pg);
    return code;
}
