/* ledger_row.c - paystream.batch_event's fields in the type's order, and
 * their composite-literal text (see ledger_row.h). A field is written quoted
 * ("..." with " and \ escaped) or, for NULL, as nothing. */
#include "ledger_row.h"

#include <inttypes.h>
#include <stdio.h>

typedef enum { F_HEAD, F_TEXT, F_INT, F_BOOL } field_kind;

static const struct {
    const char *name;
    field_kind kind;
    size_t off; /* in ledger_row, or the head's index */
} fields[] = {
    {"event_id", F_HEAD, 0},
    {"type", F_HEAD, 1},
    {"livemode", F_HEAD, 2},
    {"api_version", F_HEAD, 3},
    {"created", F_HEAD, 4},
    {"stream_id", F_HEAD, 5},
    {"rule", F_HEAD, 6},
    {"status", F_HEAD, 7},
    {"note", F_HEAD, 8},
    {"user_id", F_HEAD, 9},
    {"customer", F_TEXT, offsetof(ledger_row, customer)},
    {"subscription", F_TEXT, offsetof(ledger_row, subscription)},
    {"sub_status", F_TEXT, offsetof(ledger_row, sub_status)},
    {"price", F_TEXT, offsetof(ledger_row, price)},
    {"period_start", F_INT, offsetof(ledger_row, period_start)},
    {"period_end", F_INT, offsetof(ledger_row, period_end)},
    {"cancel_at_period_end", F_BOOL, offsetof(ledger_row, cancel_at_period_end)},
    {"sub_created", F_INT, offsetof(ledger_row, sub_created)},
    {"invoice", F_TEXT, offsetof(ledger_row, invoice)},
    {"prices", F_TEXT, offsetof(ledger_row, prices)},
    {"session", F_TEXT, offsetof(ledger_row, session)},
    {"pack_id", F_TEXT, offsetof(ledger_row, pack_id)},
    {"payment_intent", F_TEXT, offsetof(ledger_row, payment_intent)},
    {"charge", F_TEXT, offsetof(ledger_row, charge)},
    {"amount", F_INT, offsetof(ledger_row, amount)},
    {"amount_refunded", F_INT, offsetof(ledger_row, amount_refunded)},
    {"quantities", F_TEXT, offsetof(ledger_row, quantities)},
    {"trial_end", F_INT, offsetof(ledger_row, trial_end)},
    {"lines_charged", F_BOOL, offsetof(ledger_row, lines_charged)},
    {"dispute", F_TEXT, offsetof(ledger_row, dispute)},
    {"dispute_status", F_TEXT, offsetof(ledger_row, dispute_status)},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static void put_text(strbuf *rec, size_t i, const char *v) {
    if (i > 0) strbuf_puts(rec, ",");
    if (v == NULL) return;
    strbuf_puts(rec, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') strbuf_append(rec, "\\", 1);
        strbuf_append(rec, p, 1);
    }
    strbuf_puts(rec, "\"");
}

static void put_field(strbuf *rec, size_t i, const ledger_row *r) {
    const char *base = (const char *)r;
    char num[24];
    if (r == NULL) {
        put_text(rec, i, NULL);
        return;
    }
    switch (fields[i].kind) {
    case F_TEXT:
        put_text(rec, i, *(const char *const *)(const void *)(base + fields[i].off));
        break;
    case F_INT: {
        int64_t v = *(const int64_t *)(const void *)(base + fields[i].off);
        snprintf(num, sizeof(num), "%" PRId64, v);
        put_text(rec, i, v == ROW_NULL_INT ? NULL : num);
        break;
    }
    case F_BOOL: {
        row_bool v = *(const row_bool *)(const void *)(base + fields[i].off);
        put_text(rec, i, v == ROW_NULL_BOOL ? NULL : v == ROW_TRUE ? "t" : "f");
        break;
    }
    default:
        break;
    }
}

void ledger_row_head(strbuf *rec, const char *const head[ROW_HEAD]) {
    for (size_t i = 0; i < ROW_HEAD; i++)
        put_text(rec, i, head[fields[i].off]);
}

void ledger_row_inputs(strbuf *rec, const ledger_row *r) {
    for (size_t i = ROW_HEAD; i < NFIELDS; i++)
        put_field(rec, i, r);
}

const char *ledger_row_field(size_t i) {
    return i < NFIELDS ? fields[i].name : NULL;
}
