/* subscription.c - customer.subscription.created / .updated / .deleted.
 *
 * Reads the subscription's state in either API shape (period fields on the
 * object before 2025-03-31.basil, on its items after) and hands it to
 * ps_subscription_state, which keeps the newest state (SPEC 4). */
#include "event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- parse -- */

typedef struct sub_state {
    const char *id, *customer, *status, *price;
    int64_t period_start, period_end, created;
    bool has_start, has_end, has_created, cancel_at_period_end;
} sub_state;

static jval first_item(jval sub) {
    return jfirst(jget(sub, "items.data"));
}

static void parse_sub(jval sub, sub_state *s) {
    jval item = first_item(sub);
    memset(s, 0, sizeof(*s));
    s->id = jstr(sub, "id");
    s->customer = jstr(sub, "customer");
    s->status = jstr(sub, "status");
    s->price = jok(item) ? jstr(item, "price") : NULL;
    if (s->price == NULL && jok(item)) s->price = jstr(item, "plan");
    if (s->price == NULL) s->price = jstr(sub, "plan");
    /* before basil: on the subscription; from basil on: on each item */
    s->has_start = jint(sub, "current_period_start", &s->period_start) ||
                   (jok(item) && jint(item, "current_period_start", &s->period_start));
    s->has_end = jint(sub, "current_period_end", &s->period_end) ||
                 (jok(item) && jint(item, "current_period_end", &s->period_end));
    s->has_created = jint(sub, "created", &s->created);
    jbool(sub, "cancel_at_period_end", &s->cancel_at_period_end);
}

/* -------------------------------------------------------------- handlers -- */

ev_outcome subscription_changed(event_ctx *ev) {
    sub_state s;
    parse_sub(ev->object, &s);
    if (s.id == NULL || s.status == NULL)
        return ev_fail(ev, "subscription object without id or status");
    if (s.price == NULL) return ev_fail(ev, "subscription %s has no price on its first item", s.id);
    if (strcmp(ev->type, "customer.subscription.deleted") == 0) s.status = "canceled";
    if (resolve_user(ev, s.customer, s.id, NULL, 0) != 0) return EV_FAILED;
    ledger_row in = LEDGER_ROW_EMPTY;
    in.customer = s.customer;
    in.subscription = s.id;
    in.sub_status = s.status;
    in.price = s.price;
    in.period_start = s.has_start ? s.period_start : ROW_NULL_INT;
    in.period_end = s.has_end ? s.period_end : ROW_NULL_INT;
    in.cancel_at_period_end = s.cancel_at_period_end ? ROW_TRUE : ROW_FALSE;
    in.sub_created = s.has_created ? s.created : ROW_NULL_INT;
    return ev_apply(ev, "subscription_state", &in);
}
