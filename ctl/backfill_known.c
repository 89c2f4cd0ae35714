/* backfill_known.c - is an event already known to paystream? (backfill.h)
 *
 * The stream side: a hash set of the event ids of the stream's unacknowledged
 * and recent entries, scanned once with XRANGE and topped up before each page.
 * The database side: one query per page of listed events. */
#include "backfill.h"
#include "alloc.h"
#include "stream.h"
#include "strbuf.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct known_set {
    redis_conn *rc;
    const char *stream;
    char **slots; /* open addressing; NULL is empty */
    size_t cap, n;
    char last_id[80]; /* the last entry scanned: the next scan starts after it */
    long scanned;
};

/* ------------------------------------------------------------- the set -- */

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t slot_of(char **slots, size_t cap, const char *id) {
    size_t i = hash(id) & (cap - 1);
    while (slots[i] && strcmp(slots[i], id) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow(known_set *k) {
    size_t cap = k->cap ? k->cap * 2 : 1024;
    char **slots = ps_calloc(cap, sizeof(*slots));
    if (slots == NULL) return -1;
    for (size_t i = 0; i < k->cap; i++)
        if (k->slots[i]) slots[slot_of(slots, cap, k->slots[i])] = k->slots[i];
    ps_free(k->slots);
    k->slots = slots;
    k->cap = cap;
    return 0;
}

int known_add(known_set *k, const char *event_id) {
    if ((k->n + 1) * 2 > k->cap && grow(k) != 0) return -1;
    size_t i = slot_of(k->slots, k->cap, event_id);
    if (k->slots[i]) return 0;
    if ((k->slots[i] = ps_strdup(event_id)) == NULL) return -1;
    k->n++;
    return 0;
}

bool known_in_stream(const known_set *k, const char *event_id) {
    return k->cap && k->slots[slot_of(k->slots, k->cap, event_id)] != NULL;
}

long known_scanned(const known_set *k) {
    return k->scanned;
}

void known_free(known_set *k) {
    if (k == NULL) return;
    for (size_t i = 0; i < k->cap; i++)
        ps_free(k->slots[i]);
    ps_free(k->slots);
    ps_free(k);
}

/* ---------------------------------------------------------- the stream -- */

/* XRANGE from k->last_id (exclusive; inclusive `first` on the first scan) to
 * the end, BACKFILL_SCAN_PAGE entries at a time. */
static int scan(known_set *k, const char *first, char *err, size_t errlen) {
    char from[84];
    if (first)
        str_copy(from, first, sizeof(from));
    else
        snprintf(from, sizeof(from), "(%s", k->last_id);
    for (;;) {
        stream_batch b;
        if (stream_range(k->rc, k->stream, from, "+", BACKFILL_SCAN_PAGE, &b) != 0) {
            snprintf(err, errlen, "PAYSTREAM_REDIS_URL: XRANGE %s: %s", k->stream,
                     redis_errstr(k->rc));
            return -1;
        }
        int rc = 0;
        for (size_t i = 0; i < b.n && rc == 0; i++)
            if (b.entries[i].event_id) rc = known_add(k, b.entries[i].event_id);
        k->scanned += (long)b.n;
        if (b.n) str_copy(k->last_id, b.entries[b.n - 1].id, sizeof(k->last_id));
        bool more = b.n == BACKFILL_SCAN_PAGE;
        stream_batch_free(&b);
        if (rc != 0) {
            snprintf(err, errlen, "out of memory after %ld stream entries", k->scanned);
            return -1;
        }
        if (k->scanned > BACKFILL_SCAN_MAX) {
            snprintf(err, errlen,
                     "more than %d stream entries to check: let the workers catch up, or "
                     "backfill a shorter window",
                     BACKFILL_SCAN_MAX);
            return -1;
        }
        if (!more) return 0;
        snprintf(from, sizeof(from), "(%s", k->last_id);
    }
}

known_set *known_open(redis_conn *rc, const char *stream, const char *group, long since, char *err,
                      size_t errlen) {
    known_set *k = ps_calloc(1, sizeof(*k));
    char start[80], floor_id[64] = "";
    if (k == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->rc = rc;
    k->stream = stream;
    long from_s = since > BACKFILL_SKEW_S ? since - BACKFILL_SKEW_S : 0;
    snprintf(start, sizeof(start), "%" PRId64 "-0", (int64_t)from_s * 1000);
    /* no stream or no group yet (an error reply): nothing was acknowledged */
    if (stream_group_floor(rc, stream, group, floor_id) != 0 && redis_is_io_error(rc)) {
        snprintf(err, errlen, "PAYSTREAM_REDIS_URL: %s", redis_errstr(rc));
        known_free(k);
        return NULL;
    }
    if (floor_id[0] && stream_id_cmp(floor_id, start) > 0) str_copy(start, floor_id, sizeof(start));
    str_copy(k->last_id, start, sizeof(k->last_id));
    if (scan(k, start, err, errlen) != 0) {
        known_free(k);
        return NULL;
    }
    return k;
}

int known_refresh(known_set *k, char *err, size_t errlen) {
    return scan(k, NULL, err, errlen);
}

/* -------------------------------------------------------- the database -- */

bool known_plain_id(const char *s) {
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    return n > 0 && n <= 255 && s[n] == '\0';
}

int known_in_db(pg_conn *pg, const char *const *ids, size_t n, bool *in_db) {
    strbuf arr;
    strbuf_init(&arr);
    strbuf_puts(&arr, "{");
    for (size_t i = 0; i < n; i++) {
        in_db[i] = false;
        strbuf_printf(&arr, "%s%s", i ? "," : "", ids[i]); /* plain ids need no quoting */
    }
    strbuf_puts(&arr, "}");
    if (arr.oom) {
        strbuf_free(&arr);
        return -1;
    }
    const char *params[1] = {arr.buf};
    pg_result *r = NULL;
    int rc = pg_exec(
        pg, "SELECT event_id FROM paystream.webhook_events WHERE event_id = ANY($1::text[])", 1,
        params, &r);
    strbuf_free(&arr);
    if (rc != 0) return -1;
    for (int row = 0; row < pg_nrows(r); row++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(pg_value(r, row, 0), ids[i]) == 0) in_db[i] = true;
    pg_result_free(r);
    return 0;
}
