/* batch.h - apply several stream entries in one PostgreSQL transaction.
 *
 * Each event runs under its own savepoint (on the server, in one call of
 * ps_apply_batch, sql/batch.sql): one that fails rolls back alone and is reported
 * in its slot; the others commit together, with one WAL flush. The caller acknowledges the
 * committed entries only after apply_batch() returned APPLY_DONE, and retries or dead-letters the
 * failed ones one by one (apply_entry(), apply.h: a batch of one). */
#ifndef PS_WORKER_BATCH_H
#define PS_WORKER_BATCH_H

#include "apply.h"
#include "event.h"

/* Events per transaction at most. Each holds at most one subtransaction id
 * until the COMMIT, and PostgreSQL caches 64 of them per backend: past that
 * every other session's snapshots get slower, so 64 is the most. Against 32:
 * 15-30 % more events/s in bench/worker/run (half the commits and round
 * trips per event, and a user's events more often in one batch than split
 * between two that wait on each other's locks). ps_apply_batch takes 64 rows
 * (sql/batch.sql). */
#define BATCH_MAX 64

typedef struct batch_slot {
    const stream_entry *e; /* in: the caller's entry */
    json_doc *doc;         /* the event's JSON: made by the first apply_batch() that
                              uses the slot, reused after; batch_release() frees it */
    apply_info info;       /* out */
    apply_result res;      /* out, after APPLY_DONE: APPLY_DONE (acknowledge it) or
                              APPLY_RETRY (it failed alone: info.error) */
    /* private to batch.c */
    event_ctx ev;
    const char *key; /* lock-order key */
    size_t pos;      /* position in the caller's order */
    int row;         /* its row of ps_apply_batch's argument, or -1 */
} batch_slot;

/* Apply the entries of slots[0..n) (n <= BATCH_MAX; only .e set) in one
 * transaction. The slots are sorted by the user each event locks, so that two
 * workers lock users in the same order. Returns
 *  - APPLY_DONE: committed; each slot's res says what became of its entry;
 *  - APPLY_DB_LOST: the connection went away, nothing committed: reconnect and
 *    call again (the events are applied again, idempotently);
 *  - APPLY_RETRY: the batch failed as a whole (deadlock, serialization failure,
 *    an event applied by another worker meanwhile, a failed COMMIT), nothing
 *    committed: apply its entries one per
 *    transaction with apply_entry(); why says what happened. */
apply_result apply_batch(const ps_config *cfg, pg_conn *pg, batch_slot *slots, size_t n, char *why,
                         size_t whylen);
/* Free what apply_batch() kept in slots[0..n) (their documents). */
void batch_release(batch_slot *slots, size_t n);

#endif
