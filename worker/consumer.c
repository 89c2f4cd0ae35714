/* consumer.c - the consumer loop (SPEC 3).
 *
 * Reads new entries with XREADGROUP, takes over entries idle past
 * PAYSTREAM_CLAIM_IDLE_MS with XAUTOCLAIM, applies what one read returned in
 * one transaction (batch.c; one per transaction through apply.c when a batch
 * fails as a whole) and acknowledges the entries with one XACK only after
 * COMMIT. A failed entry stays pending and is retried alone with backoff;
 * after PAYSTREAM_MAX_ATTEMPTS deliveries it goes to <stream>:dead. An event
 * that waits for another one (SQLSTATE 55000) is kept in PostgreSQL, then
 * acknowledged (waiting.h); each consumer takes the due ones back about once
 * a second and applies them like entries it read. Lost connections are
 * re-made with backoff, forever. Every outcome is counted in metrics.h
 * (one atomic add per event, a few per transaction). */
#include "consumer.h"
#include "alloc.h"
#include "apply.h"
#include "batch.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "redis.h"
#include "stream.h"
#include "strbuf.h"
#include "timeutil.h"
#include "waiting.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define READ_COUNT   BATCH_MAX
#define TRIM_EVERY   (60 * 1000000LL)
#define ALIVE_EVERY  (5 * 1000000LL) /* the consumer's alive key is renewed this often... */
#define ALIVE_TTL_MS 30000L          /* ... and lapses this long after its last renewal */
#define MAX_RETRIES  4096
#define WAIT_POLL_US 1000000LL /* the waiting table is read at most this often... */
#define WAIT_LEASE_S 60        /* ... and what one read claims is its own this long */

typedef struct retry_item {
    char id[64];
    int64_t due_us;
} retry_item;

typedef struct consumer {
    const ps_config *cfg;
    volatile sig_atomic_t *stop;
    consumer_stats *stats;
    int index;
    char name[192];
    char dead_stream[256];
    redis_conn *redis;
    pg_conn *pg;
    bool recover_own;        /* re-read our own pending entries (after a reconnect) */
    char recover_cursor[64]; /* ... once each: the last one re-read so far */
    char claim_cursor[64];
    int64_t next_claim_us, next_trim_us, next_alive_us;
    int64_t next_wait_us; /* when to read the waiting table again */
    bool from_waiting;    /* the entries in hand came from the waiting table */
    retry_item *retries;
    size_t nretries;
    batch_slot slots[BATCH_MAX];
    const char *ack_ids[BATCH_MAX];
} consumer;

/* ---------------------------------------------------------- connections -- */

/* (Re)connect until it works or we stop. The connection object is kept, so
 * that with Sentinel the sentinel that answered last is asked first. */
static void redis_connect_loop(consumer *c) {
    char err[512];
    for (unsigned attempt = 0; !*c->stop; attempt++) {
        if (c->redis == NULL)
            c->redis = redis_new(c->cfg->redis_url, c->cfg->redis_timeout_ms, err, sizeof(err));
        if (c->redis && redis_reopen(c->redis) == 0 &&
            stream_group_ensure(c->redis, c->cfg->stream, c->cfg->group) == 0) {
            if (attempt) log_info("consumer %s: Redis is back", c->name);
            wmetrics_seen_redis(true);
            c->recover_own = true;
            str_copy(c->recover_cursor, "0", sizeof(c->recover_cursor));
            return;
        }
        if (c->redis) str_copy(err, redis_errstr(c->redis), sizeof(err));
        wmetrics_seen_redis(false);
        long wait = backoff_ms(attempt, 5000);
        log_warn("consumer %s: %s; retrying in %ld ms", c->name, err, wait);
        time_sleep_ms(wait);
    }
}

static void pg_connect_loop(consumer *c) {
    log_warn("consumer %s: PostgreSQL connection lost (%s); reconnecting", c->name,
             c->pg && pg_errstr(c->pg)[0] ? pg_errstr(c->pg) : "the server takes no writes");
    pg_close(c->pg);
    wmetrics_seen_postgres(false);
    c->pg = pg_connect_retry(c->cfg->database_url, c->stop);
    wmetrics_seen_postgres(c->pg != NULL);
}

/* The event's Stripe type, for the metrics. */
static const char *type_of(const stream_entry *e, const apply_info *info) {
    return info->type[0] ? info->type : e->type;
}

/* After a Redis error: recover a lost group, or reconnect. */
static void redis_recover(consumer *c) {
    if (stream_is_nogroup(c->redis)) {
        log_warn("consumer %s: stream or group lost (Redis restarted?): re-creating it", c->name);
        if (stream_group_ensure(c->redis, c->cfg->stream, c->cfg->group) == 0) return;
    }
    if (redis_is_io_error(c->redis) || redis_err(c->redis) != RCONN_OK) {
        log_warn("consumer %s: Redis: %s", c->name, redis_errstr(c->redis));
        if (redis_is_io_error(c->redis)) wmetrics_seen_redis(false);
        redis_connect_loop(c);
    }
}

/* --------------------------------------------------------------- retries -- */

static void retry_remove(consumer *c, const char *id) {
    for (size_t i = 0; i < c->nretries; i++) {
        if (strcmp(c->retries[i].id, id) == 0) {
            c->retries[i] = c->retries[--c->nretries];
            return;
        }
    }
}

/* The delay before the next attempt after `failures` failed ones. */
static long retry_delay_ms(const consumer *c, long failures) {
    long cap = c->cfg->claim_idle_ms / 2 < 60000 ? c->cfg->claim_idle_ms / 2 : 60000;
    return backoff_ms((unsigned)failures, cap);
}

static void retry_schedule(consumer *c, const char *id, long deliveries) {
    int64_t due = time_mono_us() + (int64_t)retry_delay_ms(c, deliveries) * 1000;
    for (size_t i = 0; i < c->nretries; i++) {
        if (strcmp(c->retries[i].id, id) == 0) {
            c->retries[i].due_us = due;
            return;
        }
    }
    if (c->nretries == MAX_RETRIES) return; /* XAUTOCLAIM will find it after the idle time */
    if (c->retries == NULL) c->retries = ps_calloc(MAX_RETRIES, sizeof(retry_item));
    if (c->retries == NULL) return;
    str_copy(c->retries[c->nretries].id, id, sizeof(c->retries[0].id));
    c->retries[c->nretries++].due_us = due;
}

/* ------------------------------------------------------------- applying -- */

static void ack(consumer *c, const char *id) {
    const char *ids[1] = {id};
    if (c->from_waiting) return; /* acknowledged when it started waiting */
    if (stream_ack(c->redis, c->cfg->stream, c->cfg->group, ids, 1) != 0) {
        /* not acknowledged: it stays pending and comes back as a duplicate */
        log_warn("consumer %s: XACK %s failed: %s", c->name, id, redis_errstr(c->redis));
        redis_recover(c);
    }
    retry_remove(c, id);
}

/* Dead-letter an event: XADD to <stream>:dead first, then record it failed
 * (which ends its wait, if it waited): a crash between the two can
 * duplicate a dead letter, never lose one. 0 once it is dead. */
static int dead_letter(consumer *c, const stream_entry *e, const apply_info *info,
                       const char *error, long attempts) {
    log_ctx lc = {info->event_id, e->id};
    if (stream_add_dead(c->redis, c->dead_stream, e, error, attempts) != 0) {
        log_ev_error(&lc, "cannot dead-letter: %s", redis_errstr(c->redis));
        redis_recover(c);
        return -1; /* still pending, or still in the waiting table: comes back */
    }
    apply_info dead = *info;
    str_copy(dead.error, error, sizeof(dead.error));
    if (apply_record_failure(c->pg, e, &dead, attempts, true) != 0)
        log_ev_warn(&lc, "cannot record the dead letter: %s", pg_errstr(c->pg));
    log_ev_error(&lc, "dead-lettered after %ld attempts: %s", attempts, error);
    c->stats->dead++;
    wmetrics_event(type_of(e, info), WM_DEAD);
    if (c->from_waiting) wmetrics_waiting_add(-1);
    return 0;
}

/* Read the waiting table again by `in_ms` at the latest. */
static void wait_poll_by(consumer *c, long in_ms) {
    int64_t at = time_mono_us() + (int64_t)in_ms * 1000;
    if (at < c->next_wait_us) c->next_wait_us = at;
}

/* The event's rule waits for another event (SQLSTATE 55000): keep it in
 * PostgreSQL, then acknowledge its entry (SPEC 3). It does not count
 * against PAYSTREAM_MAX_ATTEMPTS; when its wait has run out it is skipped
 * (a refund or dispute) or dead-lettered, naming what never came. */
static void wait_event(consumer *c, const stream_entry *e, const apply_info *info) {
    log_ctx lc = {info->event_id, e->id};
    wait_result w;
    if (waiting_put(c->pg, c->cfg, e, info, &w) != 0) {
        log_ev_warn(&lc, "cannot keep the waiting event: %s", pg_errstr(c->pg));
        if (!c->from_waiting) retry_schedule(c, e->id, 1); /* still pending: comes back */
        return;
    }
    switch (w.outcome) {
    case WAIT_WAITING:
        if (w.waits == 0) {
            log_ev_info(&lc, "waits for another event (next attempt in %ld ms): %s", w.next_ms,
                        w.detail);
            c->stats->waited++;
            wmetrics_event(type_of(e, info), WM_WAITING);
            wmetrics_waiting_add(1);
        } else {
            log_ev_debug(&lc, "still waits (%ld times; next attempt in %ld ms): %s", w.waits,
                         w.next_ms, w.detail);
        }
        wait_poll_by(c, w.next_ms);
        break;
    case WAIT_DONE:
        c->stats->duplicates++;
        wmetrics_event(type_of(e, info), WM_DUPLICATE);
        if (c->from_waiting) wmetrics_waiting_add(-1);
        break;
    case WAIT_SKIPPED:
        log_ev_info(&lc, "%s", w.detail);
        c->stats->skipped++;
        wmetrics_event(type_of(e, info), WM_SKIPPED);
        if (c->from_waiting) wmetrics_waiting_add(-1);
        break;
    case WAIT_DEAD:
        if (dead_letter(c, e, info, w.detail, w.waits + 1) != 0) return;
        break;
    }
    ack(c, e->id);
}

/* A waiting event, applied again, failed for real: it stays waiting, tried
 * again on the usual backoff, dead after PAYSTREAM_MAX_ATTEMPTS such
 * failures (e->attempts: the ones before). */
static void waiting_failure(consumer *c, const stream_entry *e, const apply_info *info) {
    log_ctx lc = {info->event_id, e->id};
    long failures = e->attempts + 1;
    wmetrics_event(type_of(e, info), WM_FAILED);
    if (failures >= c->cfg->max_attempts) {
        dead_letter(c, e, info, info->error, failures);
        return;
    }
    long delay = retry_delay_ms(c, failures);
    if (waiting_failed(c->pg, info, delay) < 0)
        log_ev_warn(&lc, "cannot record the failure: %s", pg_errstr(c->pg));
    log_ev_warn(&lc, "waiting event: attempt %ld of %ld failed: %s", failures, c->cfg->max_attempts,
                info->error);
    c->stats->retried++;
    wmetrics_retry();
    wait_poll_by(c, delay);
}

/* A failed attempt: wait, schedule a retry, or dead-letter after the last one. */
static void handle_failure(consumer *c, const stream_entry *e, const apply_info *info) {
    if (strcmp(info->sqlstate, WAIT_SQLSTATE) == 0) {
        wait_event(c, e, info);
        return;
    }
    if (c->from_waiting) {
        waiting_failure(c, e, info);
        return;
    }
    log_ctx lc = {info->event_id, e->id};
    long deliveries = stream_deliveries(c->redis, c->cfg->stream, c->cfg->group, e->id);
    if (deliveries < 0) {
        redis_recover(c);
        return; /* still pending: comes back */
    }
    wmetrics_event(type_of(e, info), WM_FAILED);
    if (deliveries >= c->cfg->max_attempts) {
        if (dead_letter(c, e, info, info->error, deliveries) == 0) ack(c, e->id);
        return;
    }
    if (apply_record_failure(c->pg, e, info, deliveries, false) != 0)
        log_ev_warn(&lc, "cannot record the failure: %s", pg_errstr(c->pg));
    log_ev_warn(&lc, "attempt %ld of %ld failed: %s", deliveries, c->cfg->max_attempts,
                info->error);
    c->stats->retried++;
    wmetrics_retry();
    retry_schedule(c, e->id, deliveries);
}

static void count_done(consumer *c, const stream_entry *e, const apply_info *info) {
    wm_outcome o = WM_DUPLICATE;
    if (strcmp(info->outcome, "applied") == 0) {
        c->stats->applied++;
        o = WM_APPLIED;
    } else if (strcmp(info->outcome, "skipped") == 0) {
        c->stats->skipped++;
        o = WM_SKIPPED;
    } else {
        c->stats->duplicates++;
    }
    wmetrics_event(type_of(e, info), o);
    if (c->from_waiting) wmetrics_waiting_add(-1);
}

/* apply_entry, where an event refused for the session's sake (SQLSTATE
 * 25006 under a savepoint: the server was made read-only) is no failure of
 * the event's: it goes again on a new connection, counting no attempt. */
static apply_result apply_one(consumer *c, const stream_entry *e, apply_info *info) {
    apply_result r = apply_entry(c->cfg, c->pg, e, info);
    return r == APPLY_RETRY && pg_sqlstate_is_lost(info->sqlstate) ? APPLY_DB_LOST : r;
}

static void process(consumer *c, const stream_entry *e) {
    apply_info info;
    log_ctx lc = {e->event_id, e->id};
    if (e->body == NULL && e->event_id == NULL) { /* trimmed or deleted meanwhile */
        log_ev_warn(&lc, "entry has no fields (deleted); acknowledging");
        ack(c, e->id);
        return;
    }
    apply_result r;
    int64_t t0 = time_mono_us();
    while ((r = apply_one(c, e, &info)) == APPLY_DB_LOST && !*c->stop) {
        pg_connect_loop(c);
        if (c->pg == NULL) return;
        t0 = time_mono_us();
    }
    if (r == APPLY_DONE) wmetrics_batch(1, time_mono_us() - t0);
    if (r == APPLY_DB_LOST) return; /* stopping: left pending for another worker */
    if (r == APPLY_RETRY) {
        handle_failure(c, e, &info);
        return;
    }
    log_ev_debug(&lc, "%s %s", info.outcome, info.type);
    count_done(c, e, &info);
    ack(c, e->id);
}

/* After COMMIT: one XACK for the applied entries, then the failed ones. */
static void settle_batch(consumer *c, size_t n) {
    size_t nack = 0;
    for (size_t i = 0; i < n; i++) {
        const batch_slot *s = &c->slots[i];
        if (s->res != APPLY_DONE) continue;
        log_ctx lc = {s->info.event_id, s->e->id};
        log_ev_debug(&lc, "%s %s", s->info.outcome, s->info.type);
        count_done(c, s->e, &s->info);
        c->ack_ids[nack++] = s->e->id;
    }
    if (nack && !c->from_waiting &&
        stream_ack(c->redis, c->cfg->stream, c->cfg->group, c->ack_ids, nack) != 0) {
        /* not acknowledged: they stay pending and come back as duplicates */
        log_warn("consumer %s: XACK of %zu entries failed: %s", c->name, nack,
                 redis_errstr(c->redis));
        redis_recover(c);
    }
    for (size_t i = 0; i < nack; i++)
        retry_remove(c, c->ack_ids[i]);
    for (size_t i = 0; i < n; i++)
        if (c->slots[i].res != APPLY_DONE) handle_failure(c, c->slots[i].e, &c->slots[i].info);
}

/* apply_batch, the same way as apply_one: the whole batch goes again on a
 * new connection (what it did apply is then a duplicate). */
static apply_result apply_slots(consumer *c, size_t n, char *why, size_t whylen) {
    apply_result r = apply_batch(c->cfg, c->pg, c->slots, n, why, whylen);
    for (size_t i = 0; r == APPLY_DONE && i < n; i++)
        if (c->slots[i].res != APPLY_DONE && pg_sqlstate_is_lost(c->slots[i].info.sqlstate))
            r = APPLY_DB_LOST;
    return r;
}

/* Apply up to BATCH_MAX entries in one transaction. */
static void apply_chunk(consumer *c, stream_entry *entries, size_t count) {
    size_t n = 0;
    char why[256];
    for (size_t i = 0; i < count; i++) {
        const stream_entry *e = &entries[i];
        if (e->body == NULL && e->event_id == NULL) { /* trimmed or deleted meanwhile */
            log_ctx lc = {e->event_id, e->id};
            log_ev_warn(&lc, "entry has no fields (deleted); acknowledging");
            ack(c, e->id);
            continue;
        }
        c->slots[n++].e = e;
    }
    if (n == 0) return;
    apply_result r;
    int64_t t0 = time_mono_us();
    while ((r = apply_slots(c, n, why, sizeof(why))) == APPLY_DB_LOST && !*c->stop) {
        pg_connect_loop(c);
        if (c->pg == NULL) return;
        t0 = time_mono_us();
    }
    if (r == APPLY_DONE) wmetrics_batch(n, time_mono_us() - t0);
    if (r == APPLY_DB_LOST) return; /* stopping: left pending for another worker */
    if (r == APPLY_DONE) {
        settle_batch(c, n);
        return;
    }
    log_warn("consumer %s: a transaction of %zu events failed as a whole (%s); applying them one "
             "per transaction",
             c->name, n, why);
    for (size_t i = 0; i < n; i++)
        process(c, c->slots[i].e);
}

static void process_batch(consumer *c, stream_batch *b) {
    for (size_t i = 0; i < b->n; i += BATCH_MAX) /* all in hand, even when stopping */
        apply_chunk(c, &b->entries[i], b->n - i < BATCH_MAX ? b->n - i : BATCH_MAX);
    stream_batch_free(b);
}

/* ----------------------------------------------------------------- loop -- */

/* Entries this consumer already holds (after a reconnect or restart), each
 * read once, in pages: one that fails again stays pending with its retry
 * scheduled, and is not read again here (that would spend its attempts in a
 * burst, with no backoff). */
static void recover_own(consumer *c) {
    stream_batch b;
    if (stream_read_group(c->redis, c->cfg->stream, c->cfg->group, c->name, c->recover_cursor, 100,
                          0, &b) != 0) {
        redis_recover(c);
        return;
    }
    if (b.n == 0)
        c->recover_own = false;
    else
        str_copy(c->recover_cursor, b.entries[b.n - 1].id, sizeof(c->recover_cursor));
    process_batch(c, &b);
}

static void run_due_retries(consumer *c) {
    int64_t now = time_mono_us();
    for (size_t i = 0; i < c->nretries && !*c->stop;) {
        if (c->retries[i].due_us > now) {
            i++;
            continue;
        }
        char id[64];
        str_copy(id, c->retries[i].id, sizeof(id));
        c->retries[i] = c->retries[--c->nretries];
        stream_batch b;
        if (stream_claim(c->redis, c->cfg->stream, c->cfg->group, c->name, id, &b) != 0) {
            redis_recover(c);
            return;
        }
        process_batch(c, &b); /* empty if another consumer took it or it was acked */
    }
}

/* The waiting events that are due, claimed for this consumer and applied
 * like entries it read (at most once a second, sooner when it scheduled an
 * earlier attempt itself, at once again after a full read). */
static void run_waiting(consumer *c) {
    int64_t now = time_mono_us();
    if (now < c->next_wait_us) return;
    c->next_wait_us = now + WAIT_POLL_US;
    stream_batch b;
    if (waiting_due(c->pg, READ_COUNT, WAIT_LEASE_S, &b) != 0) {
        log_warn("consumer %s: cannot read the waiting events: %s", c->name, pg_errstr(c->pg));
        if (pg_is_lost(c->pg)) pg_connect_loop(c);
        return;
    }
    if (b.n == READ_COUNT) c->next_wait_us = now;
    c->from_waiting = true;
    process_batch(c, &b);
    c->from_waiting = false;
}

static void claim_idle(consumer *c) {
    int64_t now = time_mono_us();
    if (now < c->next_claim_us) return;
    long every = c->cfg->claim_idle_ms / 4 < 1000 ? 1000 : c->cfg->claim_idle_ms / 4;
    c->next_claim_us = now + (int64_t)every * 1000;
    stream_batch b;
    if (stream_autoclaim(c->redis, c->cfg->stream, c->cfg->group, c->name, c->cfg->claim_idle_ms,
                         c->claim_cursor, READ_COUNT, &b) != 0) {
        redis_recover(c);
        return;
    }
    if (b.n) log_info("consumer %s: took over %zu idle entries", c->name, b.n);
    process_batch(c, &b);
}

static void trim(consumer *c) {
    int64_t now = time_mono_us();
    if (c->index != 0 || now < c->next_trim_us) return;
    c->next_trim_us = now + TRIM_EVERY;
    int64_t before = time_now_ms() - (int64_t)c->cfg->retention * 1000;
    long n = stream_trim_by_age(c->redis, c->cfg->stream, c->cfg->group, before);
    if (n < 0)
        log_warn("trimming the stream failed: %s", redis_errstr(c->redis));
    else if (n > 0)
        log_info("trimmed %ld entries older than the retention", n);
    /* consumers of processes that are gone, once XAUTOCLAIM has emptied them */
    n = stream_reap_consumers(c->redis, c->cfg->stream, c->cfg->group, 2 * c->cfg->claim_idle_ms,
                              c->name);
    if (n < 0)
        log_warn("removing idle consumers failed: %s", redis_errstr(c->redis));
    else if (n > 0)
        log_info("removed %ld idle consumers without pending entries from the group", n);
}

/* Keep <stream>:alive:<name> set while this consumer runs, so that other
 * workers never take it for a gone one, however quiet the stream (see
 * stream_reap_consumers). A failure is retried at the next turn; a lost
 * Redis is the next read's to notice. */
static void keep_alive(consumer *c) {
    int64_t now = time_mono_us();
    if (now < c->next_alive_us) return;
    if (stream_consumer_alive(c->redis, c->cfg->stream, c->name, ALIVE_TTL_MS) != 0) {
        log_debug("consumer %s: cannot renew its alive key: %s", c->name, redis_errstr(c->redis));
        return;
    }
    c->next_alive_us = now + ALIVE_EVERY;
}

static long block_ms(const consumer *c) {
    long ms = c->cfg->redis_timeout_ms / 2 < 1000 ? c->cfg->redis_timeout_ms / 2 : 1000;
    int64_t now = time_mono_us();
    for (size_t i = 0; i < c->nretries; i++) {
        long until = (long)((c->retries[i].due_us - now) / 1000);
        if (until < ms) ms = until;
    }
    long until_wait = (long)((c->next_wait_us - now) / 1000);
    if (until_wait < ms) ms = until_wait;
    return ms < 1 ? 1 : ms;
}

static void read_new(consumer *c) {
    stream_batch b;
    if (stream_read_group(c->redis, c->cfg->stream, c->cfg->group, c->name, ">", READ_COUNT,
                          block_ms(c), &b) != 0) {
        redis_recover(c);
        return;
    }
    process_batch(c, &b);
}

void consumer_run(const ps_config *cfg, int index, volatile sig_atomic_t *stop,
                  consumer_stats *stats) {
    consumer c;
    char host[128] = "host";
    memset(&c, 0, sizeof(c));
    c.cfg = cfg;
    c.stop = stop;
    c.stats = stats;
    c.index = index;
    gethostname(host, sizeof(host) - 1);
    snprintf(c.name, sizeof(c.name), "%s:%ld:%d", host, (long)getpid(), index);
    snprintf(c.dead_stream, sizeof(c.dead_stream), "%s:dead", cfg->stream);
    str_copy(c.claim_cursor, "0-0", sizeof(c.claim_cursor));
    redis_connect_loop(&c);
    if (c.redis) keep_alive(&c); /* before this consumer first reads: never seen without it */
    c.pg = pg_connect_retry(cfg->database_url, stop);
    wmetrics_seen_postgres(c.pg != NULL);
    if (c.redis && c.pg) log_info("consumer %s: ready", c.name);
    while (!*stop && c.redis && c.pg) {
        if (c.recover_own)
            recover_own(&c);
        else {
            run_due_retries(&c);
            run_waiting(&c);
            if (c.pg == NULL) break;
            keep_alive(&c);
            claim_idle(&c);
            trim(&c);
            read_new(&c);
        }
    }
    if (c.redis) (void)stream_consumer_gone(c.redis, cfg->stream, c.name);
    log_info("consumer %s: stopped", c.name);
    ps_free(c.retries);
    batch_release(c.slots, BATCH_MAX);
    redis_close(c.redis);
    pg_close(c.pg);
}
