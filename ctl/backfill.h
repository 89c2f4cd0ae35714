/* backfill.h - what `paystreamctl backfill` knows already (backfill_known.c).
 *
 * An event listed by Stripe is "already known" when it is recorded in
 * paystream.webhook_events (any status) or present in the stream. The stream
 * side is a set of event ids, filled from the entries that may hold an event
 * not yet recorded in the database: those at or after the consumer group's
 * floor (its oldest pending entry, or the one after its last delivered one;
 * every earlier entry was acknowledged, which a worker does only after the
 * event's record committed), and no older than the window asked for (less an
 * hour for clock skew: an entry is received after its event was created).
 * Either bound keeps the scan short: the timer's hour, or the workers' backlog.
 * cmd_backfill.c pages Stripe's API and decides; this file only answers. */
#ifndef PS_CTL_BACKFILL_H
#define PS_CTL_BACKFILL_H

#include "pg.h"
#include "redis.h"

#include <stdbool.h>
#include <stddef.h>

#define BACKFILL_SKEW_S    3600    /* our clock may be behind Stripe's by this much */
#define BACKFILL_SCAN_PAGE 1000    /* stream entries per XRANGE */
#define BACKFILL_SCAN_MAX  4000000 /* entries scanned at most; more is an error */

typedef struct known_set known_set;

/* Scan `stream` from max(group floor, (since - skew) in ms) to its end into a
 * new set. NULL with a one-line reason in err on a Redis error or past
 * BACKFILL_SCAN_MAX entries. */
known_set *known_open(redis_conn *rc, const char *stream, const char *group, long since, char *err,
                      size_t errlen);
/* Add the entries appended since the last scan (webhooks that came meanwhile). */
int known_refresh(known_set *k, char *err, size_t errlen);
bool known_in_stream(const known_set *k, const char *event_id);
int known_add(known_set *k, const char *event_id); /* after enqueueing it */
long known_scanned(const known_set *k);
void known_free(known_set *k); /* NULL is fine */

/* Which of ids[0..n) are recorded in webhook_events: in_db[i] set for each.
 * ids must be plain Stripe ids ([A-Za-z0-9_]). 0, or -1 with pg_errstr(). */
int known_in_db(pg_conn *pg, const char *const *ids, size_t n, bool *in_db);
/* Is s a plain Stripe id ([A-Za-z0-9_], 1 to 255 bytes)? */
bool known_plain_id(const char *s);

#endif
