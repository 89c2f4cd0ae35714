/* trigger_billing.c - `paystreamctl trigger`'s billing scenarios: seats, a
 * trial, a pause, and a second subscription whose payment never succeeds.
 * Each starts or changes the user's subscription as Stripe billing does,
 * from the objects trigger_events.c builds (trigger_build.h). */
#include "trigger_build.h"
#include "strbuf.h"

#include <stdio.h>

/* The subscription's first item (and, before basil, the subscription) bills n. */
static void set_quantity(const trig_ctx *c, json_t *sub, long n) {
    json_t *item = json_array_get(json_object_get(json_object_get(sub, "items"), "data"), 0);
    set_i(item, "quantity", n);
    if (!c->basil) set_i(sub, "quantity", n);
}

/* A subscription checkout: created with `status` (quantity n, trial until
 * trial_end when > 0), its first invoice's one line worth `amount`; paid
 * unless failed (then invoice.payment_failed). */
static int start_subscription(trig_ctx *c, int period, const trig_item *plan, const char *status,
                              long n, int64_t trial_end, long amount, bool failed) {
    int64_t s = period_start(c, period), e = s + TRIG_PERIOD, t = s + 60;
    char cs[72], inv_id[40], desc[256];
    trig_fresh_id(c, cs, sizeof(cs), "cs_test_a1", 54);
    trig_fresh_id(c, inv_id, sizeof(inv_id), "in_1", 23);
    json_t *session = trig_checkout(c, cs, "subscription", amount, s, trig_user_meta(c));
    set_s(session, "subscription", c->subscription);
    set_s(session, "invoice", inv_id);
    json_object_set_new(session, "invoice_creation", json_null());
    json_t *sub = trig_sub_obj(c, plan, status, period, inv_id);
    set_quantity(c, sub, n);
    set_i(sub, "created", s + 30);
    set_i(sub, "start_date", s + 30);
    if (trial_end > 0) {
        set_i(sub, "trial_start", s);
        set_i(sub, "trial_end", trial_end);
    }
    snprintf(desc, sizeof(desc), "%s%ld × %s", trial_end > 0 ? "Trial period for " : "", n,
             plan->name);
    json_t *ln = trig_line(c, inv_id, plan, amount, s, e, false, desc), *lines = json_array();
    set_i(ln, "quantity", n);
    json_array_append_new(lines, ln);
    if (trig_emit(c, "checkout.session.completed", session, NULL, t, false) != 0 ||
        trig_emit(c, "customer.subscription.created", sub, NULL, t, false) != 0) {
        json_decref(lines);
        return -1;
    }
    json_t *inv = trig_invoice(c, inv_id, "subscription_create", 2 * period - 1, t + 2, lines);
    if (!failed) return trig_emit_paid(c, inv, 2 * period - 1, t + 2);
    set_s(inv, "status", "open");
    set_i(inv, "amount_paid", 0);
    set_i(inv, "amount_remaining", amount);
    set_s(json_object_get(inv, "status_transitions"), "paid_at", NULL);
    if (!c->basil) set_b(inv, "paid", false);
    return trig_emit(c, "invoice.payment_failed", inv, NULL, t + 2, false);
}

int trig_seats(trig_ctx *c, int period, const trig_item *plan, long seats) {
    return start_subscription(c, period, plan, "active", seats, 0, plan->amount * seats, false);
}

int trig_trial(trig_ctx *c, int period, const trig_item *plan) {
    int64_t e = period_start(c, period) + TRIG_PERIOD;
    return start_subscription(c, period, plan, "trialing", 1, e, 0, false);
}

int trig_pause(trig_ctx *c, int period, const trig_item *plan) {
    int64_t t = upto_now(c, period_start(c, period) + 5 * DAY);
    json_t *sub = trig_sub_obj(c, plan, "paused", period, NULL);
    json_object_set_new(
        sub, "pause_collection",
        json_pack("{ssso}", "behavior", "keep_as_draft", "resumes_at", json_null()));
    return trig_emit(c, "customer.subscription.paused", sub, json_pack("{ss}", "status", "active"),
                     t, true);
}

/* A second subscription of the user's customer whose first payment never
 * succeeds (3-D Secure failed): created incomplete, the invoice's payment
 * failed, incomplete_expired a day later. It must not take over. */
int trig_second_subscription(trig_ctx *c, int period, const trig_item *plan) {
    char first[sizeof(c->subscription)], first_item[sizeof(c->item)];
    int64_t t = upto_now(c, period_start(c, period) + 7 * DAY);
    str_copy(first, c->subscription, sizeof(first));
    str_copy(first_item, c->item, sizeof(first_item));
    trig_fresh_id(c, c->subscription, sizeof(c->subscription), "sub_1", 23);
    trig_fresh_id(c, c->item, sizeof(c->item), "si_", 14);
    int rc = start_subscription(c, period, plan, "incomplete", 1, 0, plan->amount, true);
    json_t *sub = rc == 0 ? trig_sub_obj(c, plan, "incomplete_expired", period, NULL) : NULL;
    if (sub) {
        set_i(sub, "created", period_start(c, period) + 30);
        rc = trig_emit(c, "customer.subscription.updated", sub,
                       json_pack("{ss}", "status", "incomplete"), t + DAY, false);
    }
    str_copy(c->subscription, first, sizeof(c->subscription));
    str_copy(c->item, first_item, sizeof(c->item));
    return rc;
}
