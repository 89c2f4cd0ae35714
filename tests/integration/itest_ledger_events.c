/* itest_ledger_events.c - the worker API of sql/ (one call per rule) against a
 * real server: SPEC section 4's rules (the period rule, subscription state
 * ordering, one grant per pack session, cumulative refunds) and a property
 * test: the same events in many random orders, with duplicates and the
 * worker's retries, give the same balances and state as in order. How the
 * worker turns Stripe JSON into these calls is tested with the worker. */
#include "ledger.h"
#include "alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Stripe-like timestamps: subscription created T0, periods ending P1, P2, P3 */
#define T0 1767225600L
#define P1 (T0 + 31L * 86400)
#define P2 (P1 + 28L * 86400)
#define P3 (P2 + 31L * 86400)

/* ------------------------------------------------------------ worker API -- */

/* One worker API call, with its parameters as text ("" is SQL NULL). */
typedef struct event {
    char label[48];
    const char *sql;
    int n;
    char p[11][64];
} event;

static void ev_set(event *e, const char *label, const char *sql, int n, ...) {
    va_list ap;
    memset(e, 0, sizeof(*e));
    snprintf(e->label, sizeof(e->label), "%s", label);
    e->sql = sql;
    e->n = n;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *v = va_arg(ap, const char *);
        snprintf(e->p[i], sizeof(e->p[i]), "%s", v ? v : "");
    }
    va_end(ap);
}

static void ev_checkout(event *e, const char *user, const char *cus, const char *sub,
                        const char *evt) {
    ev_set(e, "checkout", "SELECT paystream.ps_checkout_subscription($1, $2, $3, $4)", 4, user, cus,
           sub, evt);
}

static void ev_state(event *e, const char *user, const char *sub, const char *cus,
                     const char *status, const char *price, long start, long end, long sub_created,
                     long created, const char *evt) {
    char n[4][24];
    snprintf(n[0], sizeof(n[0]), "%ld", start);
    snprintf(n[1], sizeof(n[1]), "%ld", end);
    snprintf(n[2], sizeof(n[2]), "%ld", sub_created);
    snprintf(n[3], sizeof(n[3]), "%ld", created);
    ev_set(e, status,
           "SELECT paystream.ps_subscription_state($1, $2, $3, $4, ARRAY[$5], NULL, $6::bigint,"
           " $7::bigint, $8::boolean, NULL, $9::bigint, $10::bigint, $11)",
           11, user, sub, cus, status, price, n[0], n[1], "false", n[2], n[3], evt);
}

static void ev_invoice(event *e, const char *user, const char *sub, const char *cus,
                       const char *invoice, const char *prices, long period_end, const char *evt) {
    char end[24];
    snprintf(end, sizeof(end), "%ld", period_end);
    ev_set(e, invoice,
           "SELECT paystream.ps_invoice_paid($1, $2, $3, $4, $5::text[], NULL, NULL, $6::bigint,"
           " NULL, NULL, $7)",
           7, user, sub, cus, invoice, prices, end, evt);
}

static void ev_past_due(event *e, const char *user, const char *sub, const char *cus, long created,
                        const char *evt) {
    char n[24];
    snprintf(n, sizeof(n), "%ld", created);
    ev_set(e, "payment_failed",
           "SELECT paystream.ps_invoice_payment_failed($1, $2, $3, 'in_failed_' || $4::bigint, $5)",
           5, user, sub, cus, n, evt);
}

static void ev_pack(event *e, const char *user, const char *session, const char *pack,
                    const char *price, const char *pi, const char *cus, const char *evt) {
    ev_set(e, "pack", "SELECT paystream.ps_pack_paid($1, $2, $3, $4, $5, $6, NULL, $7)", 7, user,
           session, pack, price, pi, cus, evt);
}

static void ev_refund(event *e, const char *charge, const char *pi, long amount, long refunded,
                      const char *evt) {
    char n[2][24];
    snprintf(n[0], sizeof(n[0]), "%ld", amount);
    snprintf(n[1], sizeof(n[1]), "%ld", refunded);
    ev_set(e, "refund",
           "SELECT paystream.ps_charge_refunded($1, $2, NULL, $3::bigint, $4::bigint, $5)", 5,
           charge, pi, n[0], n[1], evt);
}

/* Apply as the worker. 0 and the text result (NULL for SQL NULL) in *out,
 * or -1 with the error on ledger_worker. */
static int ev_apply(const event *e, char **out) {
    const char *params[11];
    pg_result *r = NULL;
    for (int i = 0; i < e->n; i++)
        params[i] = e->p[i][0] ? e->p[i] : NULL;
    *out = NULL;
    if (pg_exec(ledger_worker, e->sql, e->n, params, &r) != 0) return -1;
    if (pg_nrows(r) == 1 && pg_value(r, 0, 0)) *out = ps_strdup(pg_value(r, 0, 0));
    pg_result_free(r);
    return 0;
}

/* Apply, fail the test on error, and check the result starts with `want`
 * (NULL: expect SQL NULL). */
static void ev_expect(const event *e, const char *want) {
    char *got = NULL;
    if (ev_apply(e, &got) != 0) fail_msg("%s: %s", e->label, pg_errstr(ledger_worker));
    if (want == NULL ? got != NULL : got == NULL || strncmp(got, want, strlen(want)) != 0)
        fail_msg("%s: expected [%s...], got [%s]", e->label, want ? want : "NULL",
                 got ? got : "NULL");
    ps_free(got);
}

#define BASIC "{" PRICE_BASIC "}"
#define PRO   "{" PRICE_PRO "}"

/* SPEC 4's period rule: a new period expires the leftover and grants; the same
 * period tops up on an upgrade; an older period, a repeated invoice or a final
 * subscription change nothing. */
static void test_period_rule(void **state) {
    (void)state;
    char u[37], v[37];
    event e;
    db_uuid(u, 20, 1);
    db_uuid(v, 20, 101);
    /* an invoice waits for its subscription's state: is its period a trial? */
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_1", BASIC, P1, "evt_w1_paid");
    char *early = NULL;
    assert_int_equal(ev_apply(&e, &early), -1);
    assert_string_equal(pg_sqlstate(ledger_worker), "55000");
    ev_state(&e, u, "sub_w1", "cus_w1", "active", PRICE_BASIC, T0, P1, T0, T0 + 1, "evt_w1_state");
    ev_expect(&e, "status active");
    /* ... unless it charged for its plan line: no trial charges the plan */
    char w[37];
    db_uuid(w, 20, 102);
    assert_int_equal(
        db_long(ledger_worker,
                "SELECT count(*) FROM paystream.ps_invoice_paid($1, 'sub_w1c', 'cus_w1c',"
                " 'in_w1c', ARRAY[$2], NULL, true, $3::bigint, NULL, NULL, 'evt_w1c')"
                " AS note WHERE note = 'granted 100'",
                3, w, PRICE_BASIC, "1769817600"),
        1);
    assert_balance(w, 100, 0);
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_1", BASIC, P1, "evt_w1_paid");
    ev_expect(&e, "granted 100");
    assert_balance(u, 100, 0);
    assert_account(u, "credits_total::text", "100");
    /* invoice.payment_succeeded of the same invoice */
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_1", BASIC, P1, "evt_w1_succeeded");
    ev_expect(&e, "nothing");
    assert_balance(u, 100, 0);
    assert_true(ledger_deduct(u, v, "30"));
    /* upgrade in the same period: the proration invoice's non-negative line is the new plan */
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_2", PRO, P1, "evt_w1_up");
    ev_expect(&e, "upgraded by 400");
    assert_balance(u, 470, 0);
    assert_account(u, "credits_total::text", "500");
    ev_expect(&e, "nothing");
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_3", BASIC, P1, "evt_w1_down");
    ev_expect(&e, "nothing");
    assert_balance(u, 470, 0);
    /* renewal: the leftover 470 expires, 500 are granted */
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_4", PRO, P2, "evt_w1_renew");
    ev_expect(&e, "granted 500");
    assert_balance(u, 500, 0);
    char *rows = db_scalar(ledger_su,
                           "SELECT string_agg(kind || ' ' || amount, ', ' ORDER BY id) FROM"
                           " paystream.credit_transactions WHERE reference = 'in_w1_4'",
                           0);
    assert_string_equal(rows, "subscription_expire -470, subscription_grant 500");
    ps_free(rows);
    /* an older period never grants, even for a bigger plan */
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_5", "{" PRICE_TEAM "}", P1, "evt_w1_old");
    ev_expect(&e, "nothing");
    assert_balance(u, 500, 0);
    /* final: subscription credits expire, overage stays, later invoices do nothing */
    ev_pack(&e, u, "cs_w1", "credits_100", NULL, "pi_w1", "cus_w1", "evt_w1_pack");
    ev_expect(&e, "granted 100");
    ev_state(&e, u, "sub_w1", "cus_w1", "canceled", PRICE_PRO, P1, P2, T0, P1 + 86400,
             "evt_w1_deleted");
    ev_expect(&e, "status canceled");
    assert_balance(u, 0, 100);
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_6", PRO, P3, "evt_w1_after");
    ev_expect(&e, "nothing");
    assert_balance(u, 0, 100);
    /* an invoice with no plan price at all fails, naming its prices, and grants nothing */
    ev_invoice(&e, u, "sub_w1", "cus_w1", "in_w1_7", "{price_1NoSuchPrice}", P3, "evt_w1_unknown");
    char *out = NULL;
    assert_int_equal(ev_apply(&e, &out), -1);
    assert_string_equal(pg_sqlstate(ledger_worker), "P0002");
    assert_non_null(strstr(pg_errstr(ledger_worker), "price_1NoSuchPrice"));
    assert_balance(u, 0, 100);
    ledger_assert_consistent(u);
}

/* An older state never overwrites a newer one; same-second ties go to the
 * later stage of life, then to the larger event id, in either order;
 * canceled and incomplete_expired are final. */
static void test_state_ordering(void **state) {
    (void)state;
    char u[37], a[37], b[37];
    event e;
    db_uuid(u, 21, 1);
    ev_state(&e, u, "sub_w2", "cus_w2", "active", PRICE_BASIC, T0, P1, T0, T0 + 100, "evt_w2_1");
    ev_expect(&e, "status active");
    ev_state(&e, u, "sub_w2", "cus_w2", "past_due", PRICE_BASIC, T0, P1, T0, T0 + 50, "evt_w2_2");
    ev_expect(&e, "ignored");
    ev_past_due(&e, u, "sub_w2", "cus_w2", T0 + 60, "evt_w2_3");
    ev_expect(&e, "recorded");
    assert_account(u, "status || ' ' || plan", "active basic");
    ev_state(&e, u, "sub_w2", "cus_w2", "active", PRICE_PRO, T0, P1, T0, T0 + 200, "evt_w2_4");
    ev_expect(&e, "status active");
    assert_account(u, "status || ' ' || plan", "active pro");
    ev_invoice(&e, u, "sub_w2", "cus_w2", "in_w2_1", PRO, P1, "evt_w2_5");
    ev_expect(&e, "granted 500");
    assert_account(u, "stripe_customer_id || ' ' || stripe_subscription_id", "cus_w2 sub_w2");

    /* ties in the same second, applied in both orders to two users */
    for (int order = 0; order < 2; order++) {
        char sub[16], cus[16];
        db_uuid(order ? b : a, 21, 10UL + (unsigned long)order);
        const char *who = order ? b : a;
        snprintf(sub, sizeof(sub), "sub_w2t%d", order);
        snprintf(cus, sizeof(cus), "cus_w2t%d", order);
        event t[3];
        ev_state(&t[0], who, sub, cus, "active", PRICE_BASIC, T0, P1, T0, T0 + 7, "evt_tie_a");
        ev_state(&t[1], who, sub, cus, "past_due", PRICE_BASIC, T0, P1, T0, T0 + 7, "evt_tie_b");
        ev_state(&t[2], who, sub, cus, "active", PRICE_PRO, T0, P1, T0, T0 + 7, "evt_tie_c");
        for (int i = 0; i < 3; i++)
            ev_expect(&t[order ? 2 - i : i], "");
    }
    char *sa = ledger_account(a, "status || ' ' || plan"),
         *sb = ledger_account(b, "status || ' ' || plan");
    assert_string_equal(sa, sb);
    assert_string_equal(sa, "past_due basic");
    ps_free(sa);
    ps_free(sb);

    /* canceled: subscription credits expire once, overage stays, nothing after */
    ev_pack(&e, u, "cs_w2", "credits_100", NULL, "pi_w2", "cus_w2", "evt_w2_6");
    ev_expect(&e, "granted 100");
    ev_state(&e, u, "sub_w2", "cus_w2", "canceled", PRICE_PRO, T0, P1, T0, T0 + 300, "evt_w2_7");
    ev_expect(&e, "status canceled");
    ev_expect(&e, "ignored");
    assert_balance(u, 0, 100);
    ev_state(&e, u, "sub_w2", "cus_w2", "active", PRICE_PRO, T0, P1, T0, T0 + 99999, "evt_w2_8");
    ev_expect(&e, "ignored");
    ev_past_due(&e, u, "sub_w2", "cus_w2", T0 + 99999, "evt_w2_9");
    ev_expect(&e, "recorded");
    assert_account(u, "status", "canceled");
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_transactions WHERE user_id = $1"
                             " AND kind = 'subscription_expire' AND amount <> 0",
                             1, u),
                     1);
    /* incomplete_expired is final too */
    db_uuid(a, 21, 20);
    ev_state(&e, a, "sub_w2x", "cus_w2x", "incomplete", PRICE_BASIC, T0, P1, T0, T0 + 1, "evt_x1");
    ev_expect(&e, "status incomplete");
    ev_state(&e, a, "sub_w2x", "cus_w2x", "incomplete_expired", PRICE_BASIC, T0, P1, T0, T0 + 2,
             "evt_x2");
    ev_expect(&e, "status incomplete_expired");
    ev_state(&e, a, "sub_w2x", "cus_w2x", "active", PRICE_BASIC, T0, P1, T0, T0 + 3, "evt_x3");
    ev_expect(&e, "ignored");
    ev_invoice(&e, a, "sub_w2x", "cus_w2x", "in_w2x", BASIC, P1, "evt_x4");
    ev_expect(&e, "nothing");
    assert_balance(a, 0, 0);
    ledger_assert_consistent(u);
}

/* A pack grants once per checkout session; refunds are cumulative, never
 * take the balance below zero and record what could not be taken back; a
 * refund before its grant returns NULL (the worker retries it). */
static void test_pack_once_and_refunds(void **state) {
    (void)state;
    char u[37], v[37];
    event e;
    db_uuid(u, 22, 1);
    db_uuid(v, 22, 101);
    /* a refund before its purchase waits for it (SPEC 3) */
    ev_refund(&e, "ch_w5", "pi_w5", 1000, 250, "evt_w5_early");
    char *out = NULL;
    assert_int_equal(ev_apply(&e, &out), -1);
    assert_string_equal(pg_sqlstate(ledger_worker), "55000");
    ev_pack(&e, u, "cs_w5", "credits_100", NULL, "pi_w5", "cus_w5", "evt_w5_1");
    ev_expect(&e, "granted 100");
    ev_pack(&e, u, "cs_w5", "credits_100", NULL, "pi_w5", "cus_w5", "evt_w5_async");
    ev_expect(&e, "nothing");
    ev_pack(&e, u, "cs_w5", NULL, PRICE_PACK100, "pi_w5", "cus_w5", "evt_w5_2");
    ev_expect(&e, "nothing");
    ev_set(&e, "pack_failed", "SELECT paystream.ps_pack_failed($1, $2, $3, $4, $5, $6)", 6, u,
           "cs_w5", "credits_100", NULL, "pi_w5", "evt_w5_failed");
    ev_expect(&e, "");
    assert_balance(u, 0, 100);
    /* the same session by price id, another session by price id */
    ev_pack(&e, u, "cs_w5b", NULL, PRICE_PACK500, "pi_w5b", "cus_w5", "evt_w5_3");
    ev_expect(&e, "granted 500");
    assert_balance(u, 0, 600);
    ev_pack(&e, u, "cs_w5c", "credits_9999", NULL, "pi_w5c", "cus_w5", "evt_w5_4");
    assert_int_equal(ev_apply(&e, &out), -1);
    assert_non_null(strstr(pg_errstr(ledger_worker), "credits_9999"));

    ev_refund(&e, "ch_w5", "pi_w5", 1000, 250, "evt_w5_r1");
    ev_expect(&e, "refund: took back 25 of 25");
    ev_expect(&e, "refund: nothing");
    assert_balance(u, 0, 575);
    ev_refund(&e, "ch_w5", "pi_w5", 1000, 600, "evt_w5_r2");
    ev_expect(&e, "refund: took back 35 of 35");
    assert_balance(u, 0, 540);
    assert_true(ledger_deduct(u, v, "538"));
    ev_refund(&e, "ch_w5", "pi_w5", 1000, 1000, "evt_w5_r3");
    ev_expect(&e, "refund: took back 2 of 40");
    ev_expect(&e, "refund: nothing");
    assert_balance(u, 0, 0);
    char *p = db_scalar(ledger_su,
                        "SELECT format('%s %s/%s/%s', k.status, p.due, p.taken, p.uncollected)"
                        " FROM paystream.pack_purchases k JOIN paystream.payments p"
                        " ON p.payment = k.payment_intent WHERE k.checkout_session_id = 'cs_w5'",
                        0);
    assert_string_equal(p, "granted 100/62/38");
    ps_free(p);
    ev_refund(&e, "ch_w5", "pi_w5", 1000, 1001, "evt_w5_bad");
    assert_int_equal(ev_apply(&e, &out), -1);
    assert_string_equal(pg_sqlstate(ledger_worker), "22023");
    ledger_assert_consistent(u);
    ledger_reconcile_clean();
}

/* ---------------------------------------------------- order independence -- */

#define OI_SEEDS      200
#define OI_MAX_EVENTS 16
#define OI_MAX_QUEUE  64

enum { OI_ONE_SUB_CANCELED, OI_ONE_SUB_LIVE, OI_TWO_SUBS };

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The events of one scenario for run k: a fresh user and fresh Stripe ids,
 * since the ledger cannot be truncated. Returns the count. */
static int oi_events(event *ev, int scenario, int k, char *user) {
    char cus[32], sub[32], sub2[32], inv[3][32], cs[32], pi[32], ch[32], evt[13][32];
    db_uuid(user, 30UL + (unsigned long)scenario, (unsigned long)k);
    snprintf(cus, sizeof(cus), "cus_oi%d_%d", scenario, k);
    snprintf(sub, sizeof(sub), "sub_oi%d_%d", scenario, k);
    snprintf(sub2, sizeof(sub2), "sub_oi%d_%d_b", scenario, k);
    snprintf(cs, sizeof(cs), "cs_oi%d_%d", scenario, k);
    snprintf(pi, sizeof(pi), "pi_oi%d_%d", scenario, k);
    snprintf(ch, sizeof(ch), "ch_oi%d_%d", scenario, k);
    for (int i = 0; i < 3; i++)
        snprintf(inv[i], sizeof(inv[i]), "in_oi%d_%d_%d", scenario, k, i);
    for (int i = 0; i < 13; i++)
        snprintf(evt[i], sizeof(evt[i]), "evt_oi%d_%d_%d", scenario, k, i);
    int n = 0;
    if (scenario == OI_TWO_SUBS) {
        /* sub A (basic) is canceled 10 days in; sub B (pro) starts after */
        long tb = T0 + 10L * 86400 + 60, pb = tb + 30L * 86400;
        ev_checkout(&ev[n++], user, cus, sub, evt[0]);
        ev_state(&ev[n++], user, sub, cus, "active", PRICE_BASIC, T0, P1, T0, T0, evt[1]);
        ev_invoice(&ev[n++], user, sub, cus, inv[0], BASIC, P1, evt[2]);
        ev_state(&ev[n++], user, sub, cus, "canceled", PRICE_BASIC, T0, P1, T0, tb - 60, evt[3]);
        ev_checkout(&ev[n++], user, cus, sub2, evt[4]);
        ev_state(&ev[n++], user, sub2, cus, "active", PRICE_PRO, tb, pb, tb, tb, evt[5]);
        ev_invoice(&ev[n++], user, sub2, cus, inv[1], PRO, pb, evt[6]); /* invoice.paid */
        ev_invoice(&ev[n++], user, sub2, cus, inv[1], PRO, pb, evt[7]); /* ...succeeded */
        /* A's other events, late or early: a duplicate invoice event, a failed
         * payment, and an invoice for a period later than B's */
        ev_invoice(&ev[n++], user, sub, cus, inv[0], BASIC, P1, evt[8]);
        ev_past_due(&ev[n++], user, sub, cus, T0 + 1800, evt[9]);
        ev_invoice(&ev[n++], user, sub, cus, inv[2], BASIC, P2, evt[10]);
        return n;
    }
    ev_checkout(&ev[n++], user, cus, sub, evt[0]);
    ev_state(&ev[n++], user, sub, cus, "active", PRICE_BASIC, T0, P1, T0, T0, evt[1]);
    ev_past_due(&ev[n++], user, sub, cus, T0 + 1800, evt[2]);
    ev_state(&ev[n++], user, sub, cus, "active", PRICE_PRO, T0, P1, T0, T0 + 3600, evt[3]);
    ev_invoice(&ev[n++], user, sub, cus, inv[0], BASIC, P1, evt[4]); /* invoice.paid */
    ev_invoice(&ev[n++], user, sub, cus, inv[0], BASIC, P1, evt[5]); /* ...succeeded */
    ev_invoice(&ev[n++], user, sub, cus, inv[1], PRO, P1, evt[6]);   /* upgrade's new line */
    ev_state(&ev[n++], user, sub, cus, "active", PRICE_PRO, P1, P2, T0, P1 + 5, evt[7]);
    ev_invoice(&ev[n++], user, sub, cus, inv[2], PRO, P2, evt[8]); /* renewal */
    ev_pack(&ev[n++], user, cs, "credits_100", NULL, pi, cus, evt[9]);
    ev_refund(&ev[n++], ch, pi, 1000, 400, evt[10]); /* 40% refunded, */
    ev_refund(&ev[n++], ch, pi, 1000, 700, evt[11]); /* then 70% in all */
    if (scenario == OI_ONE_SUB_CANCELED)
        ev_state(&ev[n++], user, sub, cus, "canceled", PRICE_PRO, P1, P2, T0, P1 + 86400, evt[12]);
    return n;
}

/* Apply events in `order` as the worker would: a call that fails or returns
 * NULL is retried after the others, until a whole round makes no progress
 * (then the rest would be dead-lettered). The applied sequence goes to log.
 * Returns how many were left unapplied. */
static int oi_apply(const event *ev, const int *order, int n, char *log, size_t loglen) {
    int queue[OI_MAX_QUEUE * 4], head = 0, tail = 0, stuck = 0;
    size_t used = 0;
    for (int i = 0; i < n; i++)
        queue[tail++] = order[i];
    log[0] = '\0';
    while (head < tail && stuck <= tail - head) {
        int i = queue[head++];
        char *out = NULL;
        int rc = ev_apply(&ev[i], &out);
        if (rc != 0 && strcmp(pg_sqlstate(ledger_worker), "55000") != 0)
            fail_msg("%s failed: %s (%s)\n  after: %s", ev[i].label, pg_errstr(ledger_worker),
                     pg_sqlstate(ledger_worker), log);
        bool retry = rc != 0 || out == NULL;
        used += (size_t)snprintf(log + used, used < loglen ? loglen - used : 0, "%s%d%s",
                                 used ? " " : "", i, retry ? "(retry)" : "");
        ps_free(out);
        if (!retry) {
            stuck = 0;
            continue;
        }
        if (tail == (int)(sizeof(queue) / sizeof(queue[0]))) fail_msg("retry queue full: %s", log);
        queue[tail++] = i;
        stuck++;
    }
    return tail - head;
}

/* What must not depend on the order: the balances and refund state (what
 * the spec promises), the subscription state, and, unless the subscription
 * ends canceled (then later invoices rightly do nothing), the allowance and
 * credit period. */
static char *oi_summary(const char *user, bool allowance) {
    return db_scalar(
        ledger_su,
        "SELECT format('sub=%s over=%s refunds=%s state=%s/%s/%s/%s', credits_remaining,"
        " overage_credits, (SELECT string_agg(format('%s/%s/%s', due, taken, uncollected), ','"
        " ORDER BY payment) FROM paystream.payments p WHERE p.user_id = s.user_id),"
        " status, plan, stripe_subscription_id, extract(epoch FROM current_period_end)::bigint)"
        " || CASE WHEN $2::bool THEN format(' allowance=%s period=%s', credits_total,"
        " credit_period_end) ELSE '' END FROM paystream.subscriptions s WHERE user_id = $1",
        2, user, allowance ? "true" : "false");
}

/* want_template with "SUB" replaced by the scenario's (last) subscription id */
static void oi_expected(char *out, size_t len, const char *tmpl, int scenario, int k) {
    const char *at = strstr(tmpl, "SUB");
    assert_non_null(at);
    snprintf(out, len, "%.*ssub_oi%d_%d%s%s", (int)(at - tmpl), tmpl, scenario, k,
             scenario == OI_TWO_SUBS ? "_b" : "", at + 3);
}

static void oi_run_scenario(int scenario, const char *want_template) {
    event ev[OI_MAX_EVENTS];
    char user[37], log[2048], want[512];
    int order[OI_MAX_QUEUE];
    bool allowance = scenario != OI_ONE_SUB_CANCELED;
    int n = oi_events(ev, scenario, 0, user);
    for (int i = 0; i < n; i++)
        order[i] = i;
    assert_int_equal(oi_apply(ev, order, n, log, sizeof(log)), 0);
    char *in_order = oi_summary(user, allowance);
    oi_expected(want, sizeof(want), want_template, scenario, 0);
    assert_string_equal(in_order, want);
    for (int seed = 1; seed <= OI_SEEDS; seed++) {
        uint64_t rng = (uint64_t)seed * 7919 + (uint64_t)scenario;
        n = oi_events(ev, scenario, seed, user);
        for (int i = 0; i < n; i++)
            order[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(splitmix(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        /* duplicates: each event again with probability 1/3, anywhere */
        int len = n;
        for (int i = 0; i < n && len < OI_MAX_QUEUE; i++) {
            if (splitmix(&rng) % 3 != 0) continue;
            int at = (int)(splitmix(&rng) % (uint64_t)(len + 1));
            memmove(&order[at + 1], &order[at], (size_t)(len - at) * sizeof(int));
            order[at] = i;
            len++;
        }
        int left = oi_apply(ev, order, len, log, sizeof(log));
        if (left)
            fail_msg("scenario %d seed %d: %d event(s) never applied (they would be"
                     " dead-lettered); order %s",
                     scenario, seed, left, log);
        char *got = oi_summary(user, allowance);
        oi_expected(want, sizeof(want), want_template, scenario, seed);
        if (strcmp(got, want) != 0)
            fail_msg("scenario %d seed %d: events applied in the order %s\n  got      %s\n"
                     "  expected %s",
                     scenario, seed, log, got, want);
        ledger_assert_consistent(user);
        ps_free(got);
    }
    ps_free(in_order);
}

/* The same events in 200 random orders with random duplicates give the same
 * balances and state as in order (SPEC 4: "Tests must show this"). */
static void test_order_independence_canceled(void **state) {
    (void)state;
    oi_run_scenario(OI_ONE_SUB_CANCELED, "sub=0 over=30 refunds=70/70/0"
                                         " state=canceled/pro/SUB/1772323200");
}

static void test_order_independence_live(void **state) {
    (void)state;
    oi_run_scenario(OI_ONE_SUB_LIVE, "sub=500 over=30 refunds=70/70/0"
                                     " state=active/pro/SUB/1772323200"
                                     " allowance=500 period=1772323200");
}

/* Subscription A replaced by B: A's late events (sql/subscriptions.sql) are applied or
 * skipped in every order, never left to the dead letters, and grant nothing
 * once B is current. */
static void test_order_independence_two_subscriptions(void **state) {
    (void)state;
    oi_run_scenario(OI_TWO_SUBS, "sub=500 over=0 refunds= state=active/pro/SUB/1770681660"
                                 " allowance=500 period=1770681660");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_rule),
        cmocka_unit_test(test_state_ordering),
        cmocka_unit_test(test_pack_once_and_refunds),
        cmocka_unit_test(test_order_independence_canceled),
        cmocka_unit_test(test_order_independence_live),
        cmocka_unit_test(test_order_independence_two_subscriptions),
    };
    return cmocka_run_group_tests(tests, ledger_setup, ledger_teardown);
}
