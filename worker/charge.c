/* charge.c - charge.refunded.
 *
 * The refund rule (sql/charges.sql) takes back the refunded share of a
 * credit pack, matched by payment intent; it decides too what becomes of a
 * refund it finds no pack for (one that pays an invoice is skipped, any other
 * waits for its checkout). This handler only reads the charge. */
#include "event.h"

ev_outcome charge_refunded(event_ctx *ev) {
    ledger_row in = LEDGER_ROW_EMPTY;
    in.charge = jstr(ev->object, "id");
    in.payment_intent = jstr(ev->object, "payment_intent");
    if (in.charge == NULL) return ev_fail(ev, "charge without an id");
    if (in.payment_intent == NULL)
        return ev_skip(ev, "charge %s has no payment_intent: not a credit pack", in.charge);
    if (!jint(ev->object, "amount", &in.amount) ||
        !jint(ev->object, "amount_refunded", &in.amount_refunded))
        return ev_fail(ev, "charge %s without amount or amount_refunded", in.charge);
    in.pays_invoice = jstr(ev->object, "invoice") ? ROW_TRUE : ROW_FALSE;
    return ev_apply(ev, "charge_refunded", &in);
}
