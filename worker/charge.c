/* charge.c - charge.refunded.
 *
 * A refund of a credit pack (matched by payment_intent) takes back the
 * refunded share of the pack's credits (ps_charge_refunded). A refund whose
 * pack grant has not been applied yet fails and is retried; a charge that
 * plainly belongs to an invoice is not a pack and is skipped. In a batch,
 * ps_apply_batch (sql/006) takes the same decision on the server. */
#include "event.h"

#include <inttypes.h>
#include <stdio.h>

ev_outcome charge_refunded(event_ctx *ev) {
    const char *id = jstr(ev->object, "id");
    const char *pi = jstr(ev->object, "payment_intent");
    int64_t amount, refunded;
    char a[24], r[24];
    if (id == NULL) return ev_fail(ev, "charge without an id");
    if (pi == NULL) return ev_skip(ev, "charge %s has no payment_intent: not a credit pack", id);
    if (!jint(ev->object, "amount", &amount) || !jint(ev->object, "amount_refunded", &refunded))
        return ev_fail(ev, "charge %s without amount or amount_refunded", id);
    snprintf(a, sizeof(a), "%" PRId64, amount);
    snprintf(r, sizeof(r), "%" PRId64, refunded);
    if (ev->batched) { /* ps_apply_batch makes the same three-way decision */
        const char *batch_params[6] = {
            id, pi, a, r, ev->event_id, jstr(ev->object, "invoice") ? "true" : "false"};
        return EV_APPLY(ev, "ps_charge_refunded", 6, batch_params) == 0 ? EV_APPLIED : EV_FAILED;
    }
    const char *params[5] = {id, pi, a, r, ev->event_id};
    if (ev_call(ev, "charge_refunded", "SELECT paystream.ps_charge_refunded($1, $2, $3, $4, $5)", 5,
                params) != 0)
        return EV_FAILED;
    if (!ev_note_is_null(ev)) return EV_APPLIED;
    if (jstr(ev->object, "invoice"))
        return ev_skip(ev, "charge %s pays an invoice: not a credit pack", id);
    return ev_fail(ev,
                   "no credit-pack purchase with payment_intent %s yet (its checkout may not be "
                   "applied yet; retried)",
                   pi);
}
