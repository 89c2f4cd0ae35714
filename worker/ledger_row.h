/* ledger_row.h - one event's row of ps_apply_batch: the PostgreSQL type
 * paystream.batch_event (sql/migrations/010_batch_event.sql), written as a
 * composite literal. Its fields are named here once, in the type's order
 * (ledger_row.c); test_sql_batch checks the two agree.
 *
 * The row has a head, what every event has (the event, the rule or the
 * outcome, the user), written by batch.c, and the rule's inputs, which a
 * handler fills in a ledger_row by name and hands to ev_apply() (event.h). */
#ifndef PS_WORKER_LEDGER_ROW_H
#define PS_WORKER_LEDGER_ROW_H

#include "strbuf.h"

#include <stddef.h>
#include <stdint.h>

#define ROW_NULL_INT INT64_MIN /* an absent integer */

typedef enum { ROW_NULL_BOOL = -1, ROW_FALSE = 0, ROW_TRUE = 1 } row_bool;

/* The rule's inputs: start from LEDGER_ROW_EMPTY and set what the rule reads
 * (sql/batch.sql's _batch_rule); strings are borrowed, NULL is SQL NULL. */
typedef struct ledger_row {
    const char *customer, *subscription; /* also: whose, when the user is not known */
    const char *sub_status, *price;
    int64_t period_start, period_end;
    row_bool cancel_at_period_end;
    int64_t sub_created;
    const char *invoice, *prices; /* prices: a PostgreSQL array literal (quantities below) */
    const char *session, *pack_id, *payment_intent;
    const char *charge;
    int64_t amount, amount_refunded; /* amount: a charge's, a dispute's, or what was paid */
    const char *quantities;          /* of prices, a PostgreSQL array literal */
    int64_t trial_end;
    row_bool lines_charged; /* an invoice charged for a plan line: P is no trial */
    const char *dispute, *dispute_status;
} ledger_row;

#define LEDGER_ROW_EMPTY                                                                           \
    ((ledger_row){.period_start = ROW_NULL_INT,                                                    \
                  .period_end = ROW_NULL_INT,                                                      \
                  .cancel_at_period_end = ROW_NULL_BOOL,                                           \
                  .sub_created = ROW_NULL_INT,                                                     \
                  .amount = ROW_NULL_INT,                                                          \
                  .amount_refunded = ROW_NULL_INT,                                                 \
                  .trial_end = ROW_NULL_INT,                                                       \
                  .lines_charged = ROW_NULL_BOOL})

/* The head's fields, in order: event_id, type, livemode, api_version,
 * created, stream_id, rule, status, note, user_id (text forms, NULL: SQL NULL). */
#define ROW_HEAD 10

/* Append the fields of the head, then of the inputs (r NULL: all NULL), to
 * rec: the inside of the composite literal, "(" and ")" not included. Each
 * field but the first comes with its leading comma, so that the head's text
 * and the inputs' text put one after the other make the whole row. */
void ledger_row_head(strbuf *rec, const char *const head[ROW_HEAD]);
void ledger_row_inputs(strbuf *rec, const ledger_row *r);

/* The name of the row's field i (0-based, head first), NULL past the last. */
const char *ledger_row_field(size_t i);

#endif
