/* trigger_payments.c - `paystreamctl trigger`'s refunds and disputes: half of
 * a credit pack refunded, a subscription invoice refunded in full, a
 * chargeback of a pack lost or won. Each names the payment of a purchase
 * another scenario made for the same user and period (the ids are derived
 * from the user, trigger_build.h), so `trigger credit-pack` then
 * `trigger dispute-lost` tell one story. */
#include "trigger_build.h"

#include <stdio.h>
#include <string.h>

int trig_refund(trig_ctx *c, int period, const trig_item *pack) {
    int64_t t = upto_now(c, period_start(c, period) + TRIG_PERIOD + 2 * DAY);
    char cs[72], pi[40], ch[40];
    trig_pack_ids(c, period, pack, cs, pi, ch);
    json_t *obj = trig_charge(c, ch, pi, pack->amount, pack->amount / 2, t);
    set_i(obj, "created", upto_now(c, period_start(c, period) + 3 * DAY - 2));
    return trig_emit(c, "charge.refunded", obj, json_pack("{si}", "amount_refunded", 0), t, true);
}

int trig_refund_subscription(trig_ctx *c, int period, const trig_item *plan) {
    int64_t s = period_start(c, period), t = upto_now(c, s + 4 * DAY);
    char ch[40], pi[40];
    trig_invoice_ids(c, 2 * period - 1, ch, pi);
    json_t *obj = trig_charge(c, ch, pi, plan->amount, plan->amount, t);
    set_i(obj, "created", upto_now(c, s + 60));
    return trig_emit(c, "charge.refunded", obj, json_pack("{si}", "amount_refunded", 0), t, true);
}

/* One state of a dispute of the whole pack payment, as charge.dispute.<suffix>. */
static int emit_dispute(trig_ctx *c, const char *dp, const char *ch, const char *pi, long amount,
                        int64_t opened, const char *suffix, const char *status, int64_t t) {
    char type[64];
    json_t *d = trig_tmpl(c, T_DISPUTE);
    set_s(d, "id", dp);
    set_s(d, "charge", ch);
    set_s(d, "payment_intent", pi);
    set_s(d, "status", status);
    set_i(d, "amount", amount);
    set_i(d, "created", opened);
    set_i(json_object_get(d, "evidence_details"), "due_by", opened + 14 * DAY);
    if (strcmp(status, "needs_response") != 0 || strcmp(suffix, "created") != 0) {
        char bt[40];
        trig_fresh_id(c, bt, sizeof(bt), "txn_3", 23);
        json_object_set_new(d, "balance_transactions",
                            json_pack("[{sssIsI}]", "id", bt, "amount", (json_int_t)-amount,
                                      "created", (json_int_t)opened));
    }
    snprintf(type, sizeof(type), "charge.dispute.%s", suffix);
    return trig_emit(c, type, d, NULL, t, false);
}

int trig_dispute(trig_ctx *c, int period, const trig_item *pack, bool won) {
    int64_t t = upto_now(c, period_start(c, period) + 5 * DAY);
    int64_t end = upto_now(c, period_start(c, period) + 25 * DAY);
    char cs[72], pi[40], ch[40], dp[40], label[96];
    trig_pack_ids(c, period, pack, cs, pi, ch);
    snprintf(label, sizeof(label), "dispute of pack %s %d", pack->id, period);
    trig_derived_id(dp, sizeof(dp), "dp_1", 23, c->user, label);
    long n = pack->amount;
    if (emit_dispute(c, dp, ch, pi, n, t, "created", "needs_response", t) != 0 ||
        emit_dispute(c, dp, ch, pi, n, t, "funds_withdrawn", "needs_response", t) != 0 ||
        emit_dispute(c, dp, ch, pi, n, t, "updated", "under_review", t + 2 * DAY) != 0)
        return -1;
    if (won && emit_dispute(c, dp, ch, pi, n, t, "funds_reinstated", "won", end) != 0) return -1;
    return emit_dispute(c, dp, ch, pi, n, t, "closed", won ? "won" : "lost", end);
}
