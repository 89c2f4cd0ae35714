/* group_stats.c - the group-wide gauges of /metrics and the probes behind
 * /readyz (see group_stats.h): XINFO GROUPS, XPENDING and XLEN on Redis; in
 * PostgreSQL, whether it takes writes (a standby is not ready: failover) and
 * one SELECT on the waiting table; at most once a second, on the admin
 * thread's own connections (never the consumers').
 *
 * The waiting table is read through ps_waiting_summary (sql/events.sql),
 * which the worker's least-privilege login may call. A database whose schema
 * lacks it (not migrated yet) refuses: then the waiting gauges fall back to
 * what this process itself saw (metrics.c says so in their HELP), and the
 * database is not asked again. */
#include "group_stats.h"
#include "alloc.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
#include "stream.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_US        1000000LL
#define SQLSTATE_DENIED   "42501"
#define SQLSTATE_MISSING  "42883" /* a schema before ps_waiting_summary */
#define SQL_WAITING_STATS "SELECT waiting, oldest_age_s FROM paystream.ps_waiting_summary()"

struct group_stats {
    const ps_config *cfg;
    char dead_stream[256];
    redis_conn *redis;
    pg_conn *pg;
    bool waiting_denied; /* the login cannot read the waiting table */
    int64_t asked_us;    /* monotonic time of the last refresh, 0: never */
    wm_group g;
};

group_stats *group_stats_new(const ps_config *cfg) {
    group_stats *gs = ps_calloc(1, sizeof(*gs));
    if (gs == NULL) return NULL;
    gs->cfg = cfg;
    snprintf(gs->dead_stream, sizeof(gs->dead_stream), "%s:dead", cfg->stream);
    return gs;
}

void group_stats_free(group_stats *gs) {
    if (gs == NULL) return;
    redis_close(gs->redis);
    pg_close(gs->pg);
    ps_free(gs);
}

/* ------------------------------------------------------------------ Redis -- */

static int redis_ask(group_stats *gs, int argc, const char **argv, redis_reply **out) {
    if (redis_cmd(gs->redis, out, argc, argv, NULL) == 0) return 0;
    log_debug("metrics: %s: %s", argv[0], redis_errstr(gs->redis));
    return -1;
}

/* Our group's lag (nil when Redis cannot tell), pending entries and the
 * oldest one's age. No group yet (nothing posted) is not known either. */
static int ask_group(group_stats *gs, wm_group *g) {
    stream_group_info gi;
    if (stream_group_info_get(gs->redis, gs->cfg->stream, gs->cfg->group, &gi) != 0) {
        log_debug("metrics: XINFO GROUPS: %s", redis_errstr(gs->redis));
        return -1;
    }
    if (!gi.found) return -1;
    g->lag = gi.lag;
    g->pending = gi.pending;
    g->oldest_pending_age = 0;
    if (gi.oldest_pending[0]) {
        long long age_ms = (long long)time_now_ms() - stream_id_ms(gi.oldest_pending);
        g->oldest_pending_age = age_ms > 0 ? (double)age_ms / 1000.0 : 0;
    }
    return 0;
}

static int ask_dead_letters(group_stats *gs, wm_group *g) {
    const char *argv[] = {"XLEN", gs->dead_stream};
    redis_reply *r = NULL;
    if (redis_ask(gs, 2, argv, &r) != 0) return -1;
    g->dead_letters = redis_reply_int(r);
    redis_reply_free(r);
    return 0;
}

static void refresh_redis(group_stats *gs, wm_group *g) {
    char err[256];
    if (gs->redis == NULL)
        gs->redis = redis_open(gs->cfg->redis_url, gs->cfg->redis_timeout_ms, err, sizeof(err));
    if (gs->redis == NULL) {
        log_debug("metrics: %s", err);
        return;
    }
    /* a missing stream or group (nothing posted yet) is not known, and not a lost Redis */
    g->redis_known = ask_group(gs, g) == 0 && ask_dead_letters(gs, g) == 0;
    g->redis_up = g->redis_known || !redis_is_io_error(gs->redis);
    if (!g->redis_up) {
        redis_close(gs->redis);
        gs->redis = NULL;
    }
}

/* ------------------------------------------------------------- PostgreSQL -- */

static int ask_waiting(group_stats *gs, wm_group *g) {
    pg_result *r = NULL;
    if (pg_exec(gs->pg, SQL_WAITING_STATS, 0, NULL, &r) != 0) return -1;
    const char *n = pg_value(r, 0, 0), *age = pg_value(r, 0, 1);
    g->waiting = n ? strtoll(n, NULL, 10) : 0;
    g->oldest_waiting_age = age ? strtod(age, NULL) : 0;
    pg_result_free(r);
    return 0;
}

/* Does a PostgreSQL that takes writes answer (a standby does not count)?
 * Then the waiting table, when readable. */
static void refresh_postgres(group_stats *gs, wm_group *g) {
    char err[512];
    if (gs->pg == NULL) gs->pg = pg_connect(gs->cfg->database_url, err, sizeof(err));
    if (gs->pg == NULL) {
        log_debug("metrics: %s", err);
        return;
    }
    if (pg_check_writable(gs->pg) != 0) {
        log_debug("metrics: PostgreSQL: %s", pg_errstr(gs->pg));
        pg_close(gs->pg);
        gs->pg = NULL;
        return;
    }
    if (!gs->waiting_denied) {
        g->waiting_known = ask_waiting(gs, g) == 0;
        if (!g->waiting_known && (strcmp(pg_sqlstate(gs->pg), SQLSTATE_DENIED) == 0 ||
                                  strcmp(pg_sqlstate(gs->pg), SQLSTATE_MISSING) == 0)) {
            gs->waiting_denied = true;
            log_info("metrics: this database has no ps_waiting_summary this login may call; "
                     "paystream_worker_waiting_events counts what this process saw");
        }
    }
    g->postgres_up = g->waiting_known || !pg_is_lost(gs->pg);
    if (!g->postgres_up) {
        pg_close(gs->pg);
        gs->pg = NULL;
    }
}

const wm_group *group_stats_get(group_stats *gs) {
    int64_t now = time_mono_us();
    if (gs->asked_us && now - gs->asked_us < REFRESH_US) return &gs->g;
    gs->asked_us = now;
    wm_group g = {0};
    refresh_redis(gs, &g);
    refresh_postgres(gs, &g);
    gs->g = g;
    return &gs->g;
}
