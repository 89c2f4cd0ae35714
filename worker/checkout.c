/* checkout.c - checkout.session.* events.
 *
 * Subscription checkouts link the Stripe customer and subscription to the
 * user (credits come with the paid invoice). Paid credit-pack checkouts grant
 * the pack to the overage bucket, once per session; unpaid ones wait for
 * async_payment_succeeded, and async_payment_failed is recorded. */
#include "event.h"

#include <string.h>

/* ---------------------------------------------------------------- parse -- */

typedef struct pack_ref {
    const char *session, *pack, *price, *payment_intent, *customer;
    int64_t amount; /* amount_total, or ROW_NULL_INT */
} pack_ref;

static ev_outcome pack_ref_or_fail(event_ctx *ev, pack_ref *p) {
    p->session = jstr(ev->object, "id");
    p->pack = jstr(ev->object, "metadata.credit_pack");
    p->price = jstr(ev->object, "metadata.price_id");
    p->payment_intent = jstr(ev->object, "payment_intent");
    p->customer = jstr(ev->object, "customer");
    if (!jint(ev->object, "amount_total", &p->amount)) p->amount = ROW_NULL_INT;
    if (p->session == NULL) return ev_fail(ev, "checkout session without an id");
    if (p->pack == NULL && p->price == NULL)
        return ev_fail(ev,
                       "checkout session %s names no credit pack (metadata.credit_pack or "
                       "metadata.price_id)",
                       p->session);
    return EV_APPLIED;
}

/* A pack checkout's inputs to the ledger rules, in *in. */
static const ledger_row *pack_inputs(const pack_ref *p, ledger_row *in) {
    *in = LEDGER_ROW_EMPTY;
    in->customer = p->customer;
    in->session = p->session;
    in->pack_id = p->pack;
    in->price = p->price;
    in->payment_intent = p->payment_intent;
    in->amount = p->amount;
    return in;
}

/* --------------------------------------------------------- ledger write -- */

static ev_outcome grant_pack(event_ctx *ev) {
    pack_ref p;
    ledger_row in;
    if (pack_ref_or_fail(ev, &p) != EV_APPLIED) return EV_FAILED;
    if (resolve_user(ev, p.customer, NULL, NULL, 0) != 0) return EV_FAILED;
    return ev_apply(ev, "pack_paid", pack_inputs(&p, &in));
}

static ev_outcome link_subscription(event_ctx *ev) {
    const char *customer = jstr(ev->object, "customer");
    const char *sub = jstr(ev->object, "subscription");
    if (resolve_user(ev, customer, NULL, NULL, 0) != 0) return EV_FAILED;
    ledger_row in = LEDGER_ROW_EMPTY;
    in.customer = customer;
    in.subscription = sub;
    return ev_apply(ev, "checkout_subscription", &in);
}

/* -------------------------------------------------------------- handlers -- */

ev_outcome checkout_completed(event_ctx *ev) {
    const char *mode = jstr(ev->object, "mode");
    const char *paid = jstr(ev->object, "payment_status");
    if (mode && strcmp(mode, "subscription") == 0) return link_subscription(ev);
    if (mode == NULL || strcmp(mode, "payment") != 0)
        return ev_skip(ev, "checkout mode %s: nothing to do", mode ? mode : "(none)");
    if (paid && (strcmp(paid, "paid") == 0 || strcmp(paid, "no_payment_required") == 0))
        return grant_pack(ev);
    /* unpaid: the async_payment_* event decides; check the pack exists now */
    pack_ref p;
    if (pack_ref_or_fail(ev, &p) != EV_APPLIED) return EV_FAILED;
    return ev_skip(ev, "payment %s: waiting for checkout.session.async_payment_succeeded",
                   paid ? paid : "(unknown)");
}

ev_outcome checkout_async_succeeded(event_ctx *ev) {
    const char *mode = jstr(ev->object, "mode");
    if (mode && strcmp(mode, "payment") != 0)
        return ev_skip(ev, "checkout mode %s: nothing to do", mode);
    return grant_pack(ev);
}

ev_outcome checkout_async_failed(event_ctx *ev) {
    pack_ref p;
    ledger_row in;
    const char *mode = jstr(ev->object, "mode");
    if (mode && strcmp(mode, "payment") != 0)
        return ev_skip(ev, "checkout mode %s: nothing to do", mode);
    if (pack_ref_or_fail(ev, &p) != EV_APPLIED) return EV_FAILED;
    if (resolve_user(ev, p.customer, NULL, NULL, 0) != 0) return EV_FAILED;
    return ev_apply(ev, "pack_failed", pack_inputs(&p, &in));
}
