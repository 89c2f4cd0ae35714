/* ledger.c - the migrated-ledger fixture and invariant checks shared by the
 * ledger integration tests (see ledger.h). */
#include "ledger.h"
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

pg_conn *ledger_su;
pg_conn *ledger_app;
pg_conn *ledger_operator;
pg_conn *ledger_worker;

char *ledger_migrate(const char *dbname, int *rc) {
    char *url = db_url(NULL, dbname), *out = NULL;
    const char *args[] = {"--database-url", url, "migrate", NULL};
    *rc = proc_run_ctl(args, &out);
    ps_free(url);
    return out;
}

int text_count_lines(const char *text, const char *prefix) {
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p;) {
        n += strncmp(p, prefix, len) == 0;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return n;
}

int ledger_setup(void **state) {
    (void)state;
    int rc;
    char *out = ledger_migrate(NULL, &rc);
    if (rc != 0) fail_msg("paystreamctl migrate exited %d:\n%s", rc, out);
    ps_free(out);
    db_create_login(LEDGER_APP_ROLE, "paystream_app");
    db_create_login(LEDGER_OPERATOR_ROLE, "paystream_operator");
    db_create_login(LEDGER_WORKER_ROLE, "paystream_worker");
    ledger_su = db_connect_as(NULL);
    ledger_app = db_connect_as(LEDGER_APP_ROLE);
    ledger_operator = db_connect_as(LEDGER_OPERATOR_ROLE);
    ledger_worker = db_connect_as(LEDGER_WORKER_ROLE);
    db_must(ledger_su,
            "INSERT INTO paystream.plans (id, stripe_price_id, credits_per_period) VALUES"
            " ('basic', $1, 100), ('pro', $2, 500), ('team', $3, 2000)",
            3, PRICE_BASIC, PRICE_PRO, PRICE_TEAM);
    db_must(ledger_su,
            "INSERT INTO paystream.credit_packs (id, stripe_price_id, credits) VALUES"
            " ('credits_100', $1, 100), ('credits_500', $2, 500)",
            2, PRICE_PACK100, PRICE_PACK500);
    return 0;
}

int ledger_teardown(void **state) {
    (void)state;
    pg_close(ledger_su);
    pg_close(ledger_app);
    pg_close(ledger_operator);
    pg_close(ledger_worker);
    return 0;
}

void ledger_grant(const char *user, const char *credits, const char *bucket) {
    db_must(ledger_su, "SELECT paystream.grant_credits($1, $2::int, $3, 'test set-up')", 3, user,
            credits, bucket);
}

int ledger_deduct(const char *user, const char *video, const char *credits) {
    char *v = db_scalar(ledger_app, "SELECT paystream.deduct_credits($1, $2, $3::int, 'render')", 3,
                        user, video, credits);
    int ok = v && strcmp(v, "t") == 0;
    ps_free(v);
    return ok;
}

void ledger_balance(const char *user, long *sub, long *over) {
    pg_result *r = NULL;
    if (db_run(ledger_app, &r, "SELECT * FROM paystream.get_credit_balance($1)", 1, user) != 0)
        fail_msg("%s", pg_errstr(ledger_app));
    assert_int_equal(pg_nrows(r), 1);
    *sub = atol(pg_value(r, 0, 0));
    *over = atol(pg_value(r, 0, 1));
    assert_int_equal(atol(pg_value(r, 0, 2)), *sub + *over);
    pg_result_free(r);
}

long ledger_rows(const char *user) {
    return db_long(ledger_su,
                   "SELECT count(*) FROM paystream.credit_transactions WHERE user_id = $1", 1,
                   user);
}

void ledger_assert_consistent(const char *user) {
    long bad_rows =
        db_long(ledger_su,
                "SELECT count(*) FROM (SELECT balance_after, sum(amount) OVER (PARTITION BY bucket"
                " ORDER BY id) AS running FROM paystream.credit_transactions WHERE user_id = $1) t"
                " WHERE balance_after <> running",
                1, user);
    if (bad_rows) fail_msg("user %s: %ld ledger rows with a wrong balance_after", user, bad_rows);
    char *drift = db_scalar(
        ledger_su,
        "SELECT format('balances %s/%s, ledger sums %s/%s', credits_remaining, overage_credits,"
        " sub, over) FROM (SELECT s.credits_remaining, s.overage_credits, (SELECT"
        " coalesce(sum(amount), 0) FROM paystream.credit_transactions WHERE user_id = $1 AND"
        " bucket = 'subscription') AS sub, (SELECT coalesce(sum(amount), 0) FROM"
        " paystream.credit_transactions WHERE user_id = $1 AND bucket = 'overage') AS over FROM"
        " paystream.subscriptions s WHERE s.user_id = $1) t WHERE credits_remaining <> sub OR"
        " overage_credits <> over",
        1, user);
    if (drift) fail_msg("user %s: %s", user, drift);
}

void ledger_reconcile_clean(void) {
    char *out = NULL;
    const char *args[] = {"reconcile", NULL};
    int rc = proc_run_ctl(args, &out);
    if (rc != 0) fail_msg("paystreamctl reconcile exited %d:\n%s", rc, out);
    ps_free(out);
}

char *ledger_account(const char *user, const char *expr) {
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM paystream.subscriptions WHERE user_id = $1", expr);
    return db_scalar(ledger_su, sql, 1, user);
}
