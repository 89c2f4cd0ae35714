/* invoice.c - invoice.paid, invoice.payment_succeeded, invoice.payment_failed.
 *
 * Finds the subscription, the billing period P (the largest period end of the
 * subscription lines: proration lines share the cycle's end) and the prices
 * of the non-negative subscription lines of P, in either API shape (before
 * 2025-03-31.basil: invoice.subscription, line.type/price; after:
 * invoice.parent.subscription_details, line.parent, pricing.price_details),
 * and hands them to the invoice_paid rule (sql/invoices.sql), which applies
 * the period rule. A failed payment is recorded only: the status comes from
 * the subscription's own events. */
#include "event.h"
#include "strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- parse -- */

static const char *invoice_subscription(jval inv) {
    const char *s = jstr(inv, "parent.subscription_details.subscription");
    return s ? s : jstr(inv, "subscription");
}

/* The payment that paid the invoice, when the invoice names it (before
 * 2025-03-31.basil; invoice_payment.paid names it after): its payment
 * intent, or its charge when it has none. */
static const char *invoice_payment(jval inv) {
    const char *p = jstr(inv, "payment_intent");
    return p ? p : jstr(inv, "charge");
}

static const char *line_price(jval line) {
    const char *p = jstr(line, "pricing.price_details.price");
    if (p == NULL) p = jstr(line, "price");
    if (p == NULL) p = jstr(line, "plan");
    return p;
}

static bool is_subscription_line(jval line) {
    const char *type = jstr(line, "type");
    const char *parent = jstr(line, "parent.type");
    bool proration = false;
    if (type && strcmp(type, "subscription") == 0) return true;
    if (parent && strcmp(parent, "subscription_item_details") == 0) return true;
    jbool(line, "proration", &proration);
    return proration && jstr(line, "subscription_item") != NULL;
}

/* P, and the price and quantity of each of P's non-negative subscription
 * lines (an upgrade's "unused time" line is negative); *charged when one of
 * them has an amount. */
static int period_and_prices(event_ctx *ev, jval inv, int64_t *period_end, price_lines *l,
                             bool *charged) {
    jval lines = jget(inv, "lines.data"), line;
    bool found = false;
    for (line = jfirst(lines); jok(line); line = jnext(lines, line)) {
        int64_t end;
        if (is_subscription_line(line) && jint(line, "period.end", &end) &&
            (!found || end > *period_end)) {
            *period_end = end;
            found = true;
        }
    }
    if (!found) return -1;
    for (line = jfirst(lines); jok(line); line = jnext(lines, line)) {
        int64_t end, amount = 0, quantity = 1;
        const char *price = line_price(line);
        jint(line, "amount", &amount);
        jint(line, "quantity", &quantity);
        if (!is_subscription_line(line) || !jint(line, "period.end", &end) || end != *period_end ||
            amount < 0 || price == NULL)
            continue;
        if (price_lines_add(ev, l, price, quantity) != 0) return -1;
        *charged = *charged || amount > 0;
    }
    return price_lines_close(ev, l);
}

static int resolve_invoice_user(event_ctx *ev, const char *customer, const char *sub) {
    jval meta[2] = {jget(ev->object, "parent.subscription_details"),
                    jget(ev->object, "subscription_details")};
    return resolve_user(ev, customer, sub, meta, 2);
}

/* -------------------------------------------------------------- handlers -- */

ev_outcome invoice_paid(event_ctx *ev) {
    const char *id = jstr(ev->object, "id"), *customer = jstr(ev->object, "customer");
    const char *sub = invoice_subscription(ev->object);
    int64_t period_end = 0;
    bool charged = false;
    price_lines l;
    if (id == NULL) return ev_fail(ev, "invoice without an id");
    if (sub == NULL) return ev_skip(ev, "invoice %s is not for a subscription", id);
    price_lines_init(&l);
    ev_outcome out = EV_FAILED;
    if (period_and_prices(ev, ev->object, &period_end, &l, &charged) != 0) {
        if (ev->error[0] == '\0') out = ev_skip(ev, "invoice %s has no subscription line", id);
        goto done;
    }
    if (resolve_invoice_user(ev, customer, sub) != 0) goto done;
    ledger_row in = LEDGER_ROW_EMPTY;
    in.customer = customer;
    in.subscription = sub;
    in.invoice = id;
    in.prices = l.prices.buf;
    in.quantities = l.quantities.buf;
    in.lines_charged = charged ? ROW_TRUE : ROW_FALSE;
    in.period_end = period_end;
    in.payment_intent = invoice_payment(ev->object);
    if (!jint(ev->object, "amount_paid", &in.amount)) in.amount = ROW_NULL_INT;
    out = ev_apply(ev, "invoice_paid", &in);
done:
    price_lines_free(&l);
    return out;
}

ev_outcome invoice_payment_failed(event_ctx *ev) {
    const char *id = jstr(ev->object, "id"), *customer = jstr(ev->object, "customer");
    const char *sub = invoice_subscription(ev->object);
    if (id == NULL) return ev_fail(ev, "invoice without an id");
    if (sub == NULL) return ev_skip(ev, "invoice %s is not for a subscription", id);
    if (resolve_invoice_user(ev, customer, sub) != 0) return EV_FAILED;
    ledger_row in = LEDGER_ROW_EMPTY;
    in.customer = customer;
    in.subscription = sub;
    in.invoice = id;
    return ev_apply(ev, "invoice_payment_failed", &in);
}

/* invoice_payment.paid (from 2025-03-31.basil): which payment paid which
 * invoice, remembered for refunds and disputes of that payment. */
ev_outcome invoice_payment_paid(event_ctx *ev) {
    const char *id = jstr(ev->object, "id");
    ledger_row in = LEDGER_ROW_EMPTY;
    in.invoice = jstr(ev->object, "invoice");
    in.payment_intent = jstr(ev->object, "payment.payment_intent");
    if (in.payment_intent == NULL) in.payment_intent = jstr(ev->object, "payment.charge");
    if (id == NULL) return ev_fail(ev, "invoice payment without an id");
    if (in.invoice == NULL) return ev_fail(ev, "invoice payment %s names no invoice", id);
    if (in.payment_intent == NULL)
        return ev_skip(ev, "invoice payment %s is not a payment intent or a charge", id);
    if (!jint(ev->object, "amount_paid", &in.amount)) in.amount = ROW_NULL_INT;
    return ev_apply(ev, "invoice_payment_paid", &in);
}
