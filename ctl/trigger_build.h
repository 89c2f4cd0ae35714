/* trigger_build.h - the builders `paystreamctl trigger`'s scenario files
 * share (trigger_events.c: ids, templates, events and the objects of
 * subscriptions; trigger_payments.c: refunds and disputes). Not part of
 * trigger.h: cmd_trigger.c only calls the scenarios. */
#ifndef PS_CTL_TRIGGER_BUILD_H
#define PS_CTL_TRIGGER_BUILD_H

#include "trigger.h"

#define DAY ((int64_t)86400)

/* The templates of ctl/trigger_templates/, by their order in trigger_events.c. */
enum {
    T_EVENT,
    T_CHECKOUT,
    T_SUB,
    T_INVOICE,
    T_LINE,
    T_CHARGE,
    T_REFUND,
    T_PI,
    T_PRICE,
    T_PLAN,
    T_DISPUTE,
    T_INVOICE_PAYMENT,
    T_COUNT
};

static inline void set_s(json_t *o, const char *key, const char *v) {
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static inline void set_i(json_t *o, const char *key, int64_t v) {
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

static inline void set_b(json_t *o, const char *key, bool v) {
    json_object_set_new(o, key, json_boolean(v));
}

static inline int64_t period_start(const trig_ctx *c, int period) {
    return c->anchor + (int64_t)(period - 1) * TRIG_PERIOD;
}

static inline int64_t upto_now(const trig_ctx *c, int64_t t) {
    return t < c->now ? t : c->now;
}

/* A copy of template t. */
json_t *trig_tmpl(const trig_ctx *c, int t);
/* An id that is the same for every run with the same user and label. */
void trig_derived_id(char *out, size_t size, const char *prefix, size_t n, const char *user,
                     const char *label);
/* A new random id. */
void trig_fresh_id(trig_ctx *c, char *out, size_t size, const char *prefix, size_t n);
/* Wrap obj (stolen) in an event of `type` and append it; `api`: caused by
 * an API request. 0, or -1 with c->err. */
int trig_emit(trig_ctx *c, const char *type, json_t *obj, json_t *previous, int64_t created,
              bool api);
/* A charge of the user's customer, `refunded` of `amount` refunded. */
json_t *trig_charge(trig_ctx *c, const char *id, const char *pi, long amount, long refunded,
                    int64_t created);
/* The ids of the pack purchase of a period (session, payment intent, charge). */
void trig_pack_ids(const trig_ctx *c, int period, const trig_item *pack, char *cs, char *pi,
                   char *ch);
/* The ids of the payment of the user's invoice `number` (charge, payment intent). */
void trig_invoice_ids(const trig_ctx *c, int number, char *ch, char *pi);

/* {"user_id": the user}, the metadata the app sets. */
json_t *trig_user_meta(const trig_ctx *c);
/* A checkout session of the user's customer (meta stolen). */
json_t *trig_checkout(trig_ctx *c, const char *session, const char *mode, long amount,
                      int64_t created, json_t *meta);
/* The user's subscription on `plan` in `status`, its period `period`. */
json_t *trig_sub_obj(trig_ctx *c, const trig_item *plan, const char *status, int period,
                     const char *latest_invoice);
/* An invoice line of `plan` worth `amount` for start..end. */
json_t *trig_line(trig_ctx *c, const char *invoice, const trig_item *plan, long amount,
                  int64_t start, int64_t end, bool proration, const char *description);
/* A paid invoice of the user's subscription (its `number`-th); lines (stolen) decide P. */
json_t *trig_invoice(trig_ctx *c, const char *id, const char *reason, int number, int64_t created,
                     json_t *lines);
/* invoice.paid and .payment_succeeded of inv (stolen), and from basil on its
 * invoice_payment.paid. */
int trig_emit_paid(trig_ctx *c, json_t *inv, int number, int64_t t);

#endif
