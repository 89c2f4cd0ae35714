/* subscription.c - customer.subscription.created / .updated / .paused /
 * .resumed / .deleted.
 *
 * Reads the subscription's state in either API shape (period fields on the
 * object before 2025-03-31.basil, on its items after): status, every item's
 * price and quantity, period, trial end, and hands it to the
 * subscription_state rule (sql/subscriptions.sql), which keeps the newest
 * state, decides which subscription is current and tops up upgrades. */
#include "event.h"

#include <string.h>

/* ---------------------------------------------------------------- parse -- */

typedef struct sub_state {
    const char *id, *customer, *status;
    int64_t period_start, period_end, created, trial_end;
    bool has_start, has_end, has_created, has_trial_end, cancel_at_period_end;
} sub_state;

static void parse_sub(jval sub, sub_state *s) {
    jval item = jfirst(jget(sub, "items.data"));
    memset(s, 0, sizeof(*s));
    s->id = jstr(sub, "id");
    s->customer = jstr(sub, "customer");
    s->status = jstr(sub, "status");
    /* before basil: on the subscription; from basil on: on each item */
    s->has_start = jint(sub, "current_period_start", &s->period_start) ||
                   (jok(item) && jint(item, "current_period_start", &s->period_start));
    s->has_end = jint(sub, "current_period_end", &s->period_end) ||
                 (jok(item) && jint(item, "current_period_end", &s->period_end));
    s->has_created = jint(sub, "created", &s->created);
    s->has_trial_end = jint(sub, "trial_end", &s->trial_end);
    jbool(sub, "cancel_at_period_end", &s->cancel_at_period_end);
}

/* Every item's price and quantity; before basil a subscription without
 * items names its plan and quantity on itself. */
static int parse_items(event_ctx *ev, jval sub, price_lines *l) {
    jval items = jget(sub, "items.data"), item;
    for (item = jfirst(items); jok(item); item = jnext(items, item)) {
        const char *price = jstr(item, "price");
        int64_t quantity = 1;
        if (price == NULL) price = jstr(item, "plan");
        jint(item, "quantity", &quantity);
        if (price && price_lines_add(ev, l, price, quantity) != 0) return -1;
    }
    const char *plan = jstr(sub, "plan");
    if (l->n == 0 && plan) {
        int64_t quantity = 1;
        jint(sub, "quantity", &quantity);
        if (price_lines_add(ev, l, plan, quantity) != 0) return -1;
    }
    return price_lines_close(ev, l);
}

static bool is_final(const char *status) {
    return strcmp(status, "canceled") == 0 || strcmp(status, "incomplete_expired") == 0;
}

/* ------------------------------------------------------------- handlers -- */

ev_outcome subscription_changed(event_ctx *ev) {
    sub_state s;
    price_lines l;
    ev_outcome out = EV_FAILED;
    parse_sub(ev->object, &s);
    if (s.id == NULL || s.status == NULL)
        return ev_fail(ev, "subscription object without id or status");
    if (strcmp(ev->type, "customer.subscription.deleted") == 0) s.status = "canceled";
    price_lines_init(&l);
    if (parse_items(ev, ev->object, &l) != 0) goto done;
    /* a final state applies whatever the prices are (SPEC 4) */
    if (l.n == 0 && !is_final(s.status)) {
        ev_fail(ev, "subscription %s has no price on its items", s.id);
        goto done;
    }
    if (resolve_user(ev, s.customer, s.id, NULL, 0) != 0) goto done;
    ledger_row in = LEDGER_ROW_EMPTY;
    in.customer = s.customer;
    in.subscription = s.id;
    in.sub_status = s.status;
    in.prices = l.prices.buf;
    in.quantities = l.quantities.buf;
    in.period_start = s.has_start ? s.period_start : ROW_NULL_INT;
    in.period_end = s.has_end ? s.period_end : ROW_NULL_INT;
    in.cancel_at_period_end = s.cancel_at_period_end ? ROW_TRUE : ROW_FALSE;
    in.trial_end = s.has_trial_end ? s.trial_end : ROW_NULL_INT;
    in.sub_created = s.has_created ? s.created : ROW_NULL_INT;
    out = ev_apply(ev, "subscription_state", &in);
done:
    price_lines_free(&l);
    return out;
}
