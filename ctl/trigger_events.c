/* trigger_events.c - the events of `paystreamctl trigger`'s scenarios: ids,
 * templates, events, the objects of subscriptions, and the scenarios of a
 * subscription's life (the billing ones: trigger_billing.c; refunds and
 * disputes: trigger_payments.c).
 *
 * Objects start as the templates in ctl/trigger_templates/ (Stripe's public
 * OpenAPI fixtures, cleaned as tests/events/stripe_events.py does) and get the
 * fields a scenario needs, in the 2025-03-31.basil shape; for an older
 * api_version they are converted to the shape before it (period on the
 * subscription, invoice.subscription, line type/price/plan). Sending and the
 * command line are cmd_trigger.c's.
 *
 * Time: billing periods are 30-day cycles on a grid derived from the user id;
 * period 2 holds now, period 1 is the one before. Each scenario dates its
 * events at fixed offsets in its period (never later than now), so separate
 * runs for one user tell one consistent story in any timing. */
#include "trigger.h"
#include "trigger_build.h"
#include "alloc.h"
#include "strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *const tmpl_names[] = {
    "event",  "checkout.session", "subscription", "invoice", "line_item", "charge",
    "refund", "payment_intent",   "price",        "plan",    "dispute",   "invoice_payment"};
#define N_TMPL (sizeof(tmpl_names) / sizeof(tmpl_names[0]))
_Static_assert(N_TMPL == T_COUNT, "a name for each template");

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* ------------------------------------------------------------------- ids -- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001B3ULL;
    return h;
}

/* prefix + n base62 characters drawn from the stream *s. */
static void make_id(char *out, size_t size, const char *prefix, size_t n, uint64_t *s) {
    size_t p = str_copy(out, prefix, size);
    for (size_t i = 0; i < n && p + 1 < size; i++, p++)
        out[p] = B62[splitmix(s) % 62];
    out[p < size ? p : size - 1] = '\0';
}

/* An id that is the same for every run with the same user and label. */
void trig_derived_id(char *out, size_t size, const char *prefix, size_t n, const char *user,
                     const char *label) {
    uint64_t s = fnv1a(fnv1a(0xCBF29CE484222325ULL, user), label);
    make_id(out, size, prefix, n, &s);
}

void trig_fresh_id(trig_ctx *c, char *out, size_t size, const char *prefix, size_t n) {
    make_id(out, size, prefix, n, &c->rng);
}

/* -------------------------------------------------------------- context -- */

int trig_ctx_init(trig_ctx *c, const char *dir, const char *user, const char *api_version,
                  int64_t now) {
    memset(c, 0, sizeof(*c));
    str_copy(c->user, user, sizeof(c->user));
    for (char *p = c->user; *p; p++)
        if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
    c->api_version = api_version;
    c->basil = strcmp(api_version, "2025-03-31") >= 0;
    c->now = now;
    if (getrandom(&c->rng, sizeof(c->rng), 0) != (ssize_t)sizeof(c->rng))
        c->rng = (uint64_t)now * 6364136223846793005ULL ^ (uint64_t)getpid();
    trig_derived_id(c->customer, sizeof(c->customer), "cus_", 14, c->user, "customer");
    trig_derived_id(c->subscription, sizeof(c->subscription), "sub_1", 23, c->user, "subscription");
    trig_derived_id(c->item, sizeof(c->item), "si_", 14, c->user, "subscription item");
    /* the grid: period k starts at offset + k * TRIG_PERIOD */
    int64_t off = (int64_t)(fnv1a(0xCBF29CE484222325ULL, c->user) % TRIG_PERIOD);
    int64_t holding_now = off + ((now - off) / TRIG_PERIOD) * TRIG_PERIOD;
    c->anchor = holding_now - TRIG_PERIOD;
    for (size_t i = 0; i < N_TMPL; i++) {
        char path[4096];
        json_error_t je;
        snprintf(path, sizeof(path), "%s/%s.json", dir, tmpl_names[i]);
        c->tmpl[i] = json_load_file(path, 0, &je);
        if (!json_is_object(c->tmpl[i])) {
            snprintf(c->err, sizeof(c->err), "template %.180s: %.60s", path,
                     c->tmpl[i] ? "not a JSON object" : je.text);
            return -1;
        }
    }
    return 0;
}

void trig_ctx_free(trig_ctx *c) {
    for (size_t i = 0; i < N_TMPL; i++) {
        json_decref(c->tmpl[i]);
        c->tmpl[i] = NULL;
    }
    for (size_t i = 0; i < c->n_events; i++)
        ps_free(c->events[i].body);
    ps_free(c->events);
    c->events = NULL;
    c->n_events = c->cap_events = 0;
}

/* -------------------------------------------------------------- helpers -- */

json_t *trig_tmpl(const trig_ctx *c, int t) {
    return json_deep_copy(c->tmpl[t]);
}

static const char *email(const trig_ctx *c, char *buf, size_t size) {
    snprintf(buf, size, "user-%.8s@example.com", c->user);
    return buf;
}

json_t *trig_user_meta(const trig_ctx *c) {
    return json_pack("{ss}", "user_id", c->user);
}

static void money(char *buf, size_t size, long cents) {
    snprintf(buf, size, "$%ld.%02ld", cents / 100, (cents < 0 ? -cents : cents) % 100);
}

/* The price as Stripe expands it on items and lines. */
static json_t *price_obj(const trig_ctx *c, const trig_item *it, bool recurring) {
    char product[32], amount[24];
    json_t *p = trig_tmpl(c, T_PRICE);
    trig_derived_id(product, sizeof(product), "prod_", 14, it->price, "product");
    snprintf(amount, sizeof(amount), "%ld", it->amount);
    set_s(p, "id", it->price);
    set_s(p, "product", product);
    set_s(p, "nickname", it->id);
    set_i(p, "created", c->anchor - 90 * DAY);
    set_i(p, "unit_amount", it->amount);
    set_s(p, "unit_amount_decimal", amount);
    if (!recurring) {
        set_s(p, "type", "one_time");
        json_object_set_new(p, "recurring", json_null());
    }
    return p;
}

/* The legacy plan object that mirrors a recurring price. */
static json_t *plan_obj(const trig_ctx *c, const trig_item *it) {
    json_t *price = price_obj(c, it, true), *p = trig_tmpl(c, T_PLAN);
    char amount[24];
    snprintf(amount, sizeof(amount), "%ld", it->amount);
    set_s(p, "id", it->price);
    json_object_set(p, "product", json_object_get(price, "product"));
    set_s(p, "nickname", it->id);
    set_i(p, "created", c->anchor - 90 * DAY);
    set_i(p, "amount", it->amount);
    set_s(p, "amount_decimal", amount);
    json_decref(price);
    return p;
}

/* Wrap obj (stolen) in an event and append it. `api` marks events caused by
 * an API request (they carry a request id and an idempotency key). */
int trig_emit(trig_ctx *c, const char *type, json_t *obj, json_t *previous, int64_t created,
              bool api) {
    json_t *ev = trig_tmpl(c, T_EVENT), *data = json_object();
    char id[40];
    uint64_t a = splitmix(&c->rng), b = splitmix(&c->rng);
    trig_fresh_id(c, id, sizeof(id), "evt_1", 23);
    set_s(ev, "id", id);
    set_s(ev, "api_version", c->api_version);
    set_i(ev, "created", upto_now(c, created));
    json_object_set_new(data, "object", obj);
    if (previous) json_object_set_new(data, "previous_attributes", previous);
    json_object_set_new(ev, "data", data);
    if (api) {
        char req[32], key[40];
        trig_fresh_id(c, req, sizeof(req), "req_", 14);
        snprintf(key, sizeof(key), "%08x-%04x-4%03x-%04x-%012" PRIx64, (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xFFFF, (unsigned)a & 0xFFF,
                 0x8000 | ((unsigned)(b >> 48) & 0x3FFF), (uint64_t)(b & 0xFFFFFFFFFFFFULL));
        json_object_set_new(ev, "request", json_pack("{ssss}", "id", req, "idempotency_key", key));
    }
    set_s(ev, "type", type);
    char *body = json_dumps(ev, JSON_INDENT(2));
    json_decref(ev);
    if (body == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory building %s", type);
        return -1;
    }
    if (c->n_events == c->cap_events) {
        size_t cap = c->cap_events ? c->cap_events * 2 : 16;
        trig_event *e = ps_realloc(c->events, cap * sizeof(*e));
        if (e == NULL) {
            free(body);
            snprintf(c->err, sizeof(c->err), "out of memory");
            return -1;
        }
        c->events = e;
        c->cap_events = cap;
    }
    trig_event *e = &c->events[c->n_events];
    str_copy(e->id, id, sizeof(e->id));
    str_copy(e->type, type, sizeof(e->type));
    e->body = ps_strdup(body);
    free(body); /* jansson's allocator */
    if (e->body == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }
    c->n_events++;
    return 0;
}

/* -------------------------------------------------------------- objects -- */

json_t *trig_checkout(trig_ctx *c, const char *session, const char *mode, long amount,
                      int64_t created, json_t *meta) {
    json_t *s = trig_tmpl(c, T_CHECKOUT);
    char mail[64];
    set_s(s, "id", session);
    set_s(s, "mode", mode);
    set_s(s, "customer", c->customer);
    set_s(s, "customer_email", email(c, mail, sizeof(mail)));
    json_object_set_new(json_object_get(s, "customer_details"), "email", json_string(mail));
    set_i(s, "created", created);
    set_i(s, "expires_at", created + DAY);
    set_i(s, "amount_subtotal", amount);
    set_i(s, "amount_total", amount);
    json_object_set_new(s, "metadata", meta);
    return s;
}

json_t *trig_sub_obj(trig_ctx *c, const trig_item *plan, const char *status, int period,
                     const char *latest_invoice) {
    json_t *s = trig_tmpl(c, T_SUB),
           *item = json_array_get(json_object_get(json_object_get(s, "items"), "data"), 0);
    int64_t start = period_start(c, period), created = c->anchor + 30;
    char url[96];
    set_s(s, "id", c->subscription);
    set_s(s, "customer", c->customer);
    set_s(s, "status", status);
    set_i(s, "created", created);
    set_i(s, "start_date", created);
    set_i(s, "billing_cycle_anchor", created);
    set_s(s, "latest_invoice", latest_invoice);
    json_object_set_new(s, "metadata", trig_user_meta(c));
    snprintf(url, sizeof(url), "/v1/subscription_items?subscription=%s", c->subscription);
    set_s(json_object_get(s, "items"), "url", url);
    set_s(item, "id", c->item);
    set_s(item, "subscription", c->subscription);
    set_i(item, "created", created);
    json_object_set_new(item, "price", price_obj(c, plan, true));
    json_object_set_new(item, "plan", plan_obj(c, plan));
    set_i(item, "current_period_start", start);
    set_i(item, "current_period_end", start + TRIG_PERIOD);
    if (!c->basil) { /* before basil: the period on the subscription, a top-level plan */
        json_object_set(s, "current_period_start", json_object_get(item, "current_period_start"));
        json_object_set(s, "current_period_end", json_object_get(item, "current_period_end"));
        json_object_del(item, "current_period_start");
        json_object_del(item, "current_period_end");
        json_object_set_new(s, "plan", json_deep_copy(json_object_get(item, "plan")));
        set_i(s, "quantity", 1);
        json_object_del(s, "billing_mode");
        json_object_del(s, "billing_schedules");
        json_object_del(s, "customer_account");
        json_object_del(s, "managed_payments");
    }
    return s;
}

json_t *trig_line(trig_ctx *c, const char *invoice, const trig_item *plan, long amount,
                  int64_t start, int64_t end, bool proration, const char *description) {
    json_t *ln = trig_tmpl(c, T_LINE), *price = price_obj(c, plan, true);
    char id[40], ii[40] = "";
    trig_fresh_id(c, id, sizeof(id), "il_1", 23);
    if (proration) trig_fresh_id(c, ii, sizeof(ii), "ii_1", 23);
    set_s(ln, "id", id);
    set_s(ln, "invoice", invoice);
    set_s(ln, "subscription", c->subscription);
    set_i(ln, "amount", amount);
    set_i(ln, "subtotal", amount);
    set_s(ln, "description", description);
    json_object_set_new(ln, "period",
                        json_pack("{sIsI}", "start", (json_int_t)start, "end", (json_int_t)end));
    if (c->basil) {
        json_t *d = json_object_get(json_object_get(ln, "parent"), "subscription_item_details");
        set_s(d, "invoice_item", proration ? ii : NULL);
        set_b(d, "proration", proration);
        set_s(d, "subscription", c->subscription);
        set_s(d, "subscription_item", c->item);
        json_t *pricing = json_object_get(ln, "pricing");
        json_object_set_new(pricing, "price_details",
                            json_pack("{sOsO}", "price", json_object_get(price, "id"), "product",
                                      json_object_get(price, "product")));
        json_object_set(pricing, "unit_amount_decimal",
                        json_object_get(price, "unit_amount_decimal"));
    } else { /* before basil: line type, expanded price and plan, proration flag */
        json_object_del(ln, "parent");
        json_object_del(ln, "pricing");
        json_object_del(ln, "subtotal");
        json_object_del(ln, "pretax_credit_amounts");
        set_s(ln, "type", proration ? "invoiceitem" : "subscription");
        json_object_set(ln, "price", price);
        json_object_set_new(ln, "plan", plan_obj(c, plan));
        set_b(ln, "proration", proration);
        set_s(ln, "subscription_item", c->item);
        set_s(ln, "invoice_item", proration ? ii : NULL);
        json_object_set(ln, "unit_amount_excluding_tax",
                        json_object_get(price, "unit_amount_decimal"));
    }
    json_decref(price);
    return ln;
}

/* A paid invoice of the user's subscription; lines (stolen) decide P. */
json_t *trig_invoice(trig_ctx *c, const char *id, const char *reason, int number, int64_t created,
                     json_t *lines) {
    json_t *inv = trig_tmpl(c, T_INVOICE), *ln;
    size_t i;
    long total = 0;
    int64_t pstart = INT64_MAX, pend = 0;
    char mail[64], url[64], num[32], prefix[8];
    json_array_foreach(lines, i, ln) {
        int64_t v;
        total += (long)json_integer_value(json_object_get(ln, "amount"));
        v = json_integer_value(json_object_get(json_object_get(ln, "period"), "start"));
        pstart = v < pstart ? v : pstart;
        v = json_integer_value(json_object_get(json_object_get(ln, "period"), "end"));
        pend = v > pend ? v : pend;
    }
    snprintf(url, sizeof(url), "/v1/invoices/%s/lines", id);
    json_t *list = json_object_get(inv, "lines");
    json_object_set_new(list, "data", lines);
    set_s(list, "url", url);
    for (i = 0; i < 7; i++)
        prefix[i] = c->customer[strlen(c->customer) - 7 + i];
    prefix[7] = '\0';
    for (char *p = prefix; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    snprintf(num, sizeof(num), "%s-%04d", prefix, number);
    set_s(inv, "id", id);
    set_s(inv, "number", num);
    set_s(inv, "customer", c->customer);
    set_s(inv, "customer_email", email(c, mail, sizeof(mail)));
    set_s(inv, "billing_reason", reason);
    created = upto_now(c, created);
    set_i(inv, "created", created);
    set_i(inv, "effective_at", created);
    set_i(inv, "webhooks_delivered_at", created);
    set_i(inv, "period_start", pstart);
    set_i(inv, "period_end", pend);
    const char *amounts[] = {"amount_due", "amount_paid",
                             "subtotal",   "subtotal_excluding_tax",
                             "total",      "total_excluding_tax"};
    for (i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++)
        set_i(inv, amounts[i], total < 0 ? 0 : total);
    json_t *st = json_object_get(inv, "status_transitions");
    set_i(st, "finalized_at", created);
    set_i(st, "paid_at", created);
    if (c->basil) {
        json_t *d = json_object_get(json_object_get(inv, "parent"), "subscription_details");
        json_object_set_new(d, "metadata", trig_user_meta(c));
        set_s(d, "subscription", c->subscription);
    } else {
        char ch[40], pi[40];
        trig_invoice_ids(c, number, ch, pi);
        json_object_del(inv, "parent");
        json_object_del(inv, "customer_account");
        set_s(inv, "subscription", c->subscription);
        json_object_set_new(inv, "subscription_details",
                            json_pack("{so}", "metadata", trig_user_meta(c)));
        set_b(inv, "paid", true);
        set_b(inv, "paid_out_of_band", false);
        set_s(inv, "charge", total > 0 ? ch : NULL);
        set_s(inv, "payment_intent", total > 0 ? pi : NULL);
    }
    return inv;
}

/* The payment of the user's invoice `number`: the same ids in the invoice
 * (before basil), its invoice_payment (from basil on) and a refund. */
void trig_invoice_ids(const trig_ctx *c, int number, char *ch, char *pi) {
    char label[64];
    snprintf(label, sizeof(label), "invoice %d charge", number);
    trig_derived_id(ch, 40, "ch_3", 23, c->user, label);
    snprintf(label, sizeof(label), "invoice %d payment intent", number);
    trig_derived_id(pi, 40, "pi_3", 23, c->user, label);
}

/* invoice_payment.paid (from basil on): which payment paid invoice `number`. */
static int emit_invoice_payment(trig_ctx *c, const json_t *inv, int number, int64_t t) {
    char ch[40], pi[40], id[40];
    json_int_t paid = json_integer_value(json_object_get(inv, "amount_paid"));
    trig_invoice_ids(c, number, ch, pi);
    trig_fresh_id(c, id, sizeof(id), "inpay_1", 23);
    json_t *p = trig_tmpl(c, T_INVOICE_PAYMENT);
    set_s(p, "id", id);
    set_s(p, "invoice", json_string_value(json_object_get(inv, "id")));
    set_i(p, "amount_paid", paid);
    set_i(p, "amount_requested", paid);
    set_i(p, "created", upto_now(c, t));
    set_s(json_object_get(p, "payment"), "payment_intent", pi);
    set_i(json_object_get(p, "status_transitions"), "paid_at", upto_now(c, t));
    return trig_emit(c, "invoice_payment.paid", p, NULL, t, false);
}

/* invoice.paid and invoice.payment_succeeded: both arrive for one invoice;
 * from basil on, invoice_payment.paid too when it charged something. */
int trig_emit_paid(trig_ctx *c, json_t *inv, int number, int64_t t) {
    json_t *copy = json_deep_copy(inv);
    bool charged = json_integer_value(json_object_get(inv, "amount_paid")) > 0;
    if (c->basil && charged && emit_invoice_payment(c, inv, number, t) != 0) {
        json_decref(inv);
        json_decref(copy);
        return -1;
    }
    int rc = trig_emit(c, "invoice.paid", inv, NULL, t, false);
    if (rc == 0) return trig_emit(c, "invoice.payment_succeeded", copy, NULL, t, false);
    json_decref(copy);
    return rc;
}

/* The pack purchase of a period: the same ids in credit-pack and refund. */
void trig_pack_ids(const trig_ctx *c, int period, const trig_item *pack, char *cs, char *pi,
                   char *ch) {
    char label[128];
    snprintf(label, sizeof(label), "pack %s %d session", pack->id, period);
    trig_derived_id(cs, 72, "cs_test_a1", 54, c->user, label);
    snprintf(label, sizeof(label), "pack %s %d payment intent", pack->id, period);
    trig_derived_id(pi, 40, "pi_3", 23, c->user, label);
    snprintf(label, sizeof(label), "pack %s %d charge", pack->id, period);
    trig_derived_id(ch, 40, "ch_3", 23, c->user, label);
}

json_t *trig_charge(trig_ctx *c, const char *id, const char *pi, long amount, long refunded,
                    int64_t created) {
    json_t *ch = trig_tmpl(c, T_CHARGE), *refunds = json_array();
    char txn[40], pm[40], mail[64], url[64], fp[24];
    trig_fresh_id(c, txn, sizeof(txn), "txn_3", 23);
    trig_derived_id(pm, sizeof(pm), "pm_1", 23, c->user, "payment method");
    trig_derived_id(fp, sizeof(fp), "", 16, c->user, "card fingerprint");
    snprintf(url, sizeof(url), "/v1/charges/%s/refunds", id);
    set_s(ch, "id", id);
    set_s(ch, "payment_intent", pi);
    set_s(ch, "customer", c->customer);
    set_s(ch, "payment_method", pm);
    set_s(ch, "balance_transaction", txn);
    set_s(ch, "receipt_email", email(c, mail, sizeof(mail)));
    json_object_set_new(json_object_get(ch, "billing_details"), "email", json_string(mail));
    set_s(json_object_get(json_object_get(ch, "payment_method_details"), "card"), "fingerprint",
          fp);
    set_i(ch, "created", created);
    set_i(ch, "amount", amount);
    set_i(ch, "amount_captured", amount);
    set_i(ch, "amount_refunded", refunded);
    set_b(ch, "refunded", refunded == amount);
    if (refunded > 0) {
        json_t *r = trig_tmpl(c, T_REFUND);
        char re[40], rtxn[40];
        trig_fresh_id(c, re, sizeof(re), "re_3", 23);
        trig_fresh_id(c, rtxn, sizeof(rtxn), "txn_3", 23);
        set_s(r, "id", re);
        set_s(r, "charge", id);
        set_s(r, "payment_intent", pi);
        set_s(r, "balance_transaction", rtxn);
        set_i(r, "amount", refunded);
        set_i(r, "created", upto_now(c, created));
        json_array_append_new(refunds, r);
    }
    json_t *list = json_object_get(ch, "refunds");
    json_object_set_new(list, "data", refunds);
    set_s(list, "url", url);
    if (!c->basil) set_s(ch, "invoice", NULL);
    return ch;
}

/* ------------------------------------------------------------ scenarios -- */

int trig_subscription(trig_ctx *c, int period, const trig_item *plan) {
    int64_t s = period_start(c, period), t = s + 60;
    char cs[72], inv_id[40], desc[256], amount[24];
    trig_fresh_id(c, cs, sizeof(cs), "cs_test_a1", 54);
    trig_fresh_id(c, inv_id, sizeof(inv_id), "in_1", 23);
    json_t *session = trig_checkout(c, cs, "subscription", plan->amount, s, trig_user_meta(c));
    set_s(session, "subscription", c->subscription);
    set_s(session, "invoice", inv_id);
    json_object_set_new(session, "invoice_creation", json_null());
    money(amount, sizeof(amount), plan->amount);
    snprintf(desc, sizeof(desc), "1 × %s (at %s / month)", plan->name, amount);
    json_t *lines = json_array();
    json_array_append_new(
        lines, trig_line(c, inv_id, plan, plan->amount, s, s + TRIG_PERIOD, false, desc));
    if (trig_emit(c, "checkout.session.completed", session, NULL, t, false) != 0 ||
        trig_emit(c, "customer.subscription.created",
                  trig_sub_obj(c, plan, "active", period, inv_id), NULL, t, false) != 0) {
        json_decref(lines);
        return -1;
    }
    return trig_emit_paid(
        c, trig_invoice(c, inv_id, "subscription_create", 2 * period - 1, t + 2, lines),
        2 * period - 1, t + 2);
}

int trig_credit_pack(trig_ctx *c, int period, const trig_item *pack) {
    int64_t t = period_start(c, period) + 3 * DAY;
    char cs[72], pi[40], ch[40], secret[80];
    trig_pack_ids(c, period, pack, cs, pi, ch);
    t = upto_now(c, t);
    json_t *session =
        trig_checkout(c, cs, "payment", pack->amount, t - 40,
                      json_pack("{ssss}", "user_id", c->user, "credit_pack", pack->id));
    set_s(session, "payment_intent", pi);
    json_t *intent = trig_tmpl(c, T_PI);
    snprintf(secret, sizeof(secret), "%s_secret_%.25s", pi, cs + 10);
    set_s(intent, "id", pi);
    set_s(intent, "customer", c->customer);
    set_s(intent, "latest_charge", ch);
    set_s(intent, "client_secret", secret);
    set_s(intent, "payment_method", NULL);
    set_i(intent, "amount", pack->amount);
    set_i(intent, "amount_received", pack->amount);
    set_i(intent, "created", t - 5);
    if (trig_emit(c, "checkout.session.completed", session, NULL, t, false) != 0) {
        json_decref(intent);
        return -1;
    }
    if (trig_emit(c, "payment_intent.succeeded", intent, NULL, t, false) != 0) return -1;
    return trig_emit(c, "charge.succeeded", trig_charge(c, ch, pi, pack->amount, 0, t - 2), NULL, t,
                     false);
}

int trig_renewal(trig_ctx *c, int period, const trig_item *plan) {
    int64_t s = period_start(c, period);
    char inv_id[40], desc[256], amount[24];
    json_t *prev;
    trig_fresh_id(c, inv_id, sizeof(inv_id), "in_1", 23);
    if (c->basil)
        prev = json_pack("{s{s[{sIsI}]}}", "items", "data", "current_period_end", (json_int_t)s,
                         "current_period_start", (json_int_t)(s - TRIG_PERIOD));
    else
        prev = json_pack("{sIsI}", "current_period_end", (json_int_t)s, "current_period_start",
                         (json_int_t)(s - TRIG_PERIOD));
    if (trig_emit(c, "customer.subscription.updated",
                  trig_sub_obj(c, plan, "active", period, inv_id), prev, s, false) != 0)
        return -1;
    money(amount, sizeof(amount), plan->amount);
    snprintf(desc, sizeof(desc), "1 × %s (at %s / month)", plan->name, amount);
    json_t *lines = json_array();
    json_array_append_new(
        lines, trig_line(c, inv_id, plan, plan->amount, s, s + TRIG_PERIOD, false, desc));
    return trig_emit_paid(
        c, trig_invoice(c, inv_id, "subscription_cycle", 2 * period - 1, s + 3600, lines),
        2 * period - 1, s + 3600);
}

int trig_upgrade(trig_ctx *c, int period, const trig_item *from, const trig_item *to) {
    int64_t s = period_start(c, period), e = s + TRIG_PERIOD, t = s + 10 * DAY;
    long unused = -(long)(from->amount * (e - t) / TRIG_PERIOD);
    long remaining = (long)(to->amount * (e - t) / TRIG_PERIOD);
    char inv_id[40], d1[160], d2[160];
    trig_fresh_id(c, inv_id, sizeof(inv_id), "in_1", 23);
    json_t *prev = json_pack("{s{s[{s{ss}}]}}", "items", "data", "price", "id", from->price);
    if (trig_emit(c, "customer.subscription.updated", trig_sub_obj(c, to, "active", period, inv_id),
                  prev, t, true) != 0)
        return -1;
    snprintf(d1, sizeof(d1), "Unused time on %s after upgrade", from->name);
    snprintf(d2, sizeof(d2), "Remaining time on %s after upgrade", to->name);
    json_t *lines = json_array();
    json_array_append_new(lines, trig_line(c, inv_id, from, unused, t, e, true, d1));
    json_array_append_new(lines, trig_line(c, inv_id, to, remaining, t, e, true, d2));
    return trig_emit_paid(c,
                          trig_invoice(c, inv_id, "subscription_update", 2 * period, t + 5, lines),
                          2 * period, t + 5);
}

int trig_cancel(trig_ctx *c, int period, const trig_item *plan) {
    int64_t t = upto_now(c, period_start(c, period) + 20 * DAY);
    json_t *sub = trig_sub_obj(c, plan, "canceled", period, NULL);
    set_i(sub, "canceled_at", t);
    set_i(sub, "ended_at", t);
    json_object_set_new(sub, "cancellation_details",
                        json_pack("{snssss}", "comment", "feedback", "too_expensive", "reason",
                                  "cancellation_requested"));
    return trig_emit(c, "customer.subscription.deleted", sub, NULL, t, true);
}
