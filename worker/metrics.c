/* metrics.c - the worker's counters (see metrics.h) and the Prometheus text
 * exposition format 0.0.4.
 *
 * Event types are counted by name in a fixed open-addressing table: the
 * first thread to see a type claims a slot with one compare-and-swap and
 * copies the name in; after that a lookup is a hash, one acquire load and a
 * strcmp. Only names of [a-z0-9._] are taken (no label escaping needed), at
 * most WMETRICS_MAX_TYPES of them; anything else counts as type="other". */
#include "metrics.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define TYPE_SLOTS    (2 * WMETRICS_MAX_TYPES) /* a power of two */
#define TYPE_NAME_MAX 64
#define OTHER         TYPE_SLOTS /* the row of type="other" */
#define APPLY_BUCKETS 14
#define BATCH_BUCKETS 8

enum { SLOT_FREE = 0, SLOT_WRITING, SLOT_READY };

static const char *const outcome_names[WM_OUTCOMES] = {"applied", "skipped", "duplicate",
                                                       "waiting", "failed",  "dead"};
/* Upper bounds in seconds (+Inf implied), and in events (BATCH_MAX is 64). */
static const double apply_bounds[APPLY_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,    1,     2.5,  5,     10};
static const unsigned batch_bounds[BATCH_BUCKETS - 1] = {1, 2, 4, 8, 16, 32, 64};

/* Buckets are not cumulative here; a count is the sum of its buckets, so one
 * observation costs a bucket add and a sum add. */
static struct {
    _Atomic int type_state[TYPE_SLOTS];
    char type_name[TYPE_SLOTS][TYPE_NAME_MAX];
    atomic_int types_taken;
    atomic_ullong events[TYPE_SLOTS + 1][WM_OUTCOMES];
    atomic_ullong retries;
    atomic_ullong apply_buckets[APPLY_BUCKETS];
    atomic_ullong apply_sum_us;
    atomic_ullong batch_buckets[BATCH_BUCKETS];
    atomic_ullong batch_sum;
    atomic_llong waiting_here;
    atomic_int consumers;
    atomic_bool seen_redis, seen_postgres;
    int64_t start_ms;
} m;

void wmetrics_init(int64_t start_ms) {
    m.start_ms = start_ms;
}

/* ------------------------------------------------------------ event types -- */

/* One pass over the name: its FNV-1a hash and length, false when it is not
 * a name we count by (empty, too long, or a character outside [a-z0-9._]). */
static bool type_name_hash(const char *t, unsigned *hash, size_t *len) {
    unsigned h = 2166136261u;
    size_t n = 0;
    for (; t[n]; n++) {
        char ch = t[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_';
        if (!ok || n + 1 >= TYPE_NAME_MAX) return false;
        h = (h ^ (unsigned char)ch) * 16777619u;
    }
    *hash = h;
    *len = n;
    return n > 0;
}

/* Claim a free slot for t (its name copied in), unless the cap is reached. */
static bool type_claim(unsigned slot, const char *t, size_t len) {
    int expect = SLOT_FREE;
    if (atomic_load_explicit(&m.types_taken, memory_order_relaxed) >= WMETRICS_MAX_TYPES)
        return false;
    if (!atomic_compare_exchange_strong(&m.type_state[slot], &expect, SLOT_WRITING)) return false;
    atomic_fetch_add(&m.types_taken, 1);
    memcpy(m.type_name[slot], t, len + 1);
    atomic_store_explicit(&m.type_state[slot], SLOT_READY, memory_order_release);
    return true;
}

/* The row of `type`: its slot, claimed on first sight, or OTHER. */
static unsigned type_row(const char *type) {
    size_t len;
    unsigned h;
    if (type == NULL || !type_name_hash(type, &h, &len)) return OTHER;
    for (unsigned i = 0; i < TYPE_SLOTS; i++) {
        unsigned slot = (h + i) & (TYPE_SLOTS - 1);
        int st = atomic_load_explicit(&m.type_state[slot], memory_order_acquire);
        if (st == SLOT_FREE) {
            if (type_claim(slot, type, len)) return slot;
            st = atomic_load_explicit(&m.type_state[slot], memory_order_acquire);
            if (st == SLOT_FREE) return OTHER; /* the cap is reached */
        }
        while (st == SLOT_WRITING) { /* another thread is copying a name in: a moment */
            sched_yield();
            st = atomic_load_explicit(&m.type_state[slot], memory_order_acquire);
        }
        if (strcmp(m.type_name[slot], type) == 0) return slot;
    }
    return OTHER;
}

/* -------------------------------------------------------------- hot path -- */

void wmetrics_event(const char *type, wm_outcome o) {
    if ((int)o < 0 || o >= WM_OUTCOMES) return;
    atomic_fetch_add_explicit(&m.events[type_row(type)][o], 1, memory_order_relaxed);
}

void wmetrics_retry(void) {
    atomic_fetch_add_explicit(&m.retries, 1, memory_order_relaxed);
}

void wmetrics_batch(size_t events, int64_t us) {
    double s = (double)us / 1e6;
    int a = 0, b = 0;
    while (a < APPLY_BUCKETS - 1 && s > apply_bounds[a])
        a++;
    while (b < BATCH_BUCKETS - 1 && events > batch_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m.apply_buckets[a], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.apply_sum_us, (unsigned long long)(us > 0 ? us : 0),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m.batch_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m.batch_sum, events, memory_order_relaxed);
}

void wmetrics_waiting_add(int delta) {
    atomic_fetch_add_explicit(&m.waiting_here, delta, memory_order_relaxed);
}

void wmetrics_seen_redis(bool up) {
    atomic_store_explicit(&m.seen_redis, up, memory_order_relaxed);
}

void wmetrics_seen_postgres(bool up) {
    atomic_store_explicit(&m.seen_postgres, up, memory_order_relaxed);
}

void wmetrics_consumers_add(int delta) {
    atomic_fetch_add_explicit(&m.consumers, delta, memory_order_relaxed);
}

bool wmetrics_consumers_see_redis(void) {
    return atomic_load_explicit(&m.seen_redis, memory_order_relaxed);
}

bool wmetrics_consumers_see_postgres(void) {
    return atomic_load_explicit(&m.seen_postgres, memory_order_relaxed);
}

int wmetrics_consumers(void) {
    return atomic_load_explicit(&m.consumers, memory_order_relaxed);
}

void wmetrics_reset(void) {
    memset(&m, 0, sizeof(m));
}

/* ------------------------------------------------------------- rendering -- */

static void header(strbuf *out, const char *name, const char *type, const char *help) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned long long load(atomic_ullong *v) {
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_type_row(strbuf *out, unsigned row, const char *name) {
    for (int o = 0; o < WM_OUTCOMES; o++)
        strbuf_printf(out, "paystream_worker_events_total{type=\"%s\",outcome=\"%s\"} %llu\n", name,
                      outcome_names[o], load(&m.events[row][o]));
}

static void render_events(strbuf *out) {
    header(out, "paystream_worker_events_total", "counter",
           "Events handled by this process, by Stripe type and outcome (failed: attempts).");
    for (unsigned s = 0; s < TYPE_SLOTS; s++)
        if (atomic_load_explicit(&m.type_state[s], memory_order_acquire) == SLOT_READY)
            render_type_row(out, s, m.type_name[s]);
    render_type_row(out, OTHER, "other");
    header(out, "paystream_worker_retries_total", "counter",
           "Failed attempts scheduled to be tried again.");
    strbuf_printf(out, "paystream_worker_retries_total %llu\n", load(&m.retries));
}

/* One histogram from non-cumulative buckets: cumulative _bucket lines, _sum, _count. */
static void render_histogram(strbuf *out, const char *name, atomic_ullong *buckets, int n,
                             const char *const *les, double sum) {
    unsigned long long cum = 0;
    for (int i = 0; i < n; i++) {
        cum += load(&buckets[i]);
        strbuf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, les[i], cum);
    }
    strbuf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, cum);
}

static void render_histograms(strbuf *out) {
    char apply_le[APPLY_BUCKETS][24], batch_le[BATCH_BUCKETS][24];
    const char *al[APPLY_BUCKETS], *bl[BATCH_BUCKETS];
    for (int i = 0; i < APPLY_BUCKETS; i++) {
        snprintf(apply_le[i], sizeof(apply_le[i]), "%g",
                 i + 1 < APPLY_BUCKETS ? apply_bounds[i] : 0);
        al[i] = i + 1 < APPLY_BUCKETS ? apply_le[i] : "+Inf";
    }
    for (int i = 0; i < BATCH_BUCKETS; i++) {
        snprintf(batch_le[i], sizeof(batch_le[i]), "%u",
                 i + 1 < BATCH_BUCKETS ? batch_bounds[i] : 0);
        bl[i] = i + 1 < BATCH_BUCKETS ? batch_le[i] : "+Inf";
    }
    header(out, "paystream_worker_apply_seconds", "histogram",
           "Time one transaction of events took to apply and commit.");
    render_histogram(out, "paystream_worker_apply_seconds", m.apply_buckets, APPLY_BUCKETS, al,
                     (double)load(&m.apply_sum_us) / 1e6);
    header(out, "paystream_worker_batch_events", "histogram", "Events per transaction.");
    render_histogram(out, "paystream_worker_batch_events", m.batch_buckets, BATCH_BUCKETS, bl,
                     (double)load(&m.batch_sum));
}

static void gauge(strbuf *out, const char *name, const char *help, double v) {
    header(out, name, "gauge", help);
    strbuf_printf(out, "%s %.15g\n", name, v);
}

static void render_group(const wm_group *g, strbuf *out) {
    if (g->redis_known) {
        if (g->lag >= 0)
            gauge(out, "paystream_worker_group_lag",
                  "Entries of the stream not yet delivered to the consumer group.", (double)g->lag);
        gauge(out, "paystream_worker_group_pending",
              "Entries delivered to the group and not yet acknowledged.", (double)g->pending);
        gauge(out, "paystream_worker_oldest_pending_age_seconds",
              "Age of the oldest pending entry (0: none).", g->oldest_pending_age);
        gauge(out, "paystream_worker_dead_letters", "Entries in <stream>:dead.",
              (double)g->dead_letters);
    }
    if (g->waiting_known) {
        gauge(out, "paystream_worker_waiting_events",
              "Events waiting for another event (PostgreSQL's waiting table).", (double)g->waiting);
        gauge(out, "paystream_worker_oldest_waiting_age_seconds",
              "Time since the oldest waiting event first waited (0: none).", g->oldest_waiting_age);
    } else {
        gauge(out, "paystream_worker_waiting_events",
              "Events this process saw start waiting minus those it saw stop (the waiting "
              "table is not readable by this login; sum over the workers).",
              (double)atomic_load_explicit(&m.waiting_here, memory_order_relaxed));
    }
}

static void render_state(const wm_group *g, strbuf *out) {
    gauge(out, "paystream_worker_redis_up", "1 while Redis answers.", g->redis_up);
    gauge(out, "paystream_worker_postgres_up", "1 while PostgreSQL answers.", g->postgres_up);
    gauge(out, "paystream_worker_consumers", "Consumer threads running.", wmetrics_consumers());
    gauge(out, "paystream_worker_start_time_seconds",
          "Start time of the process since the Unix epoch, in seconds.",
          (double)m.start_ms / 1000.0);
}

void wmetrics_render(const wm_group *g, strbuf *out) {
    render_events(out);
    render_histograms(out);
    render_group(g, out);
    render_state(g, out);
}
