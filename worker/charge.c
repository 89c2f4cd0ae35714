/* charge.c - charge.refunded and charge.dispute.*.
 *
 * Both name a payment (the charge's payment intent, or the charge itself
 * when it has none); the rules (sql/charges.sql, sql/payments.sql) find what
 * it paid for and take back the refunded or disputed share, or wait for the
 * purchase when it is not applied yet. These handlers only read the charge
 * or the dispute. Before 2025-03-31.basil a charge names the invoice it
 * paid; after, invoice_payment.paid does (invoice.c). */
#include "event.h"

ev_outcome charge_refunded(event_ctx *ev) {
    ledger_row in = LEDGER_ROW_EMPTY;
    in.charge = jstr(ev->object, "id");
    in.payment_intent = jstr(ev->object, "payment_intent");
    in.invoice = jstr(ev->object, "invoice");
    in.customer = jstr(ev->object, "customer");
    if (in.charge == NULL) return ev_fail(ev, "charge without an id");
    if (!jint(ev->object, "amount", &in.amount) ||
        !jint(ev->object, "amount_refunded", &in.amount_refunded))
        return ev_fail(ev, "charge %s without amount or amount_refunded", in.charge);
    return ev_apply(ev, "charge_refunded", &in);
}

ev_outcome charge_dispute(event_ctx *ev) {
    ledger_row in = LEDGER_ROW_EMPTY;
    in.dispute = jstr(ev->object, "id");
    in.charge = jstr(ev->object, "charge");
    in.payment_intent = jstr(ev->object, "payment_intent");
    in.dispute_status = jstr(ev->object, "status");
    if (in.dispute == NULL) return ev_fail(ev, "dispute without an id");
    if (in.charge == NULL && in.payment_intent == NULL)
        return ev_fail(ev, "dispute %s names no charge or payment intent", in.dispute);
    if (in.dispute_status == NULL) return ev_fail(ev, "dispute %s without a status", in.dispute);
    if (!jint(ev->object, "amount", &in.amount))
        return ev_fail(ev, "dispute %s without an amount", in.dispute);
    return ev_apply(ev, "charge_dispute", &in);
}
