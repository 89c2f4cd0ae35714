/* itest_ledger.c - the app's SQL API against a real server (SPEC section
 * 5): bad input refused with an error that says why, history pages,
 * balances with their check, one grant per reference. Migrations, deductions
 * and roles have files of their own (itest_ledger_migrate.c,
 * itest_ledger_deduct.c, itest_ledger_roles.c); the worker API's Stripe
 * rules are in itest_ledger_events.c. */
#include "ledger.h"
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* -------------------------------------------------------------- the API -- */

/* Bad inputs raise errors that say what is wrong, and change nothing. */
static void test_api_bad_inputs(void **state) {
    (void)state;
    char user[37], v[37];
    db_uuid(user, 4, 1);
    db_uuid(v, 4, 101);
    ledger_grant(user, "10", "overage");
    const char *deduct_sql = "SELECT paystream.deduct_credits($1, $2, $3::int, 'render')";
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22023", deduct_sql, 3, user, v, "0"), "p_credits"));
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22023", deduct_sql, 3, user, v, "-5"), "p_credits"));
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22023", deduct_sql, 3, user, v, NULL), "p_credits"));
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22004", deduct_sql, 3, NULL, v, "1"), "required"));
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22004", deduct_sql, 3, user, NULL, "1"), "required"));
    db_must_fail(ledger_app, "22P02", deduct_sql, 3, "not-a-uuid", v, "1");

    const char *grant_sql = "SELECT paystream.grant_credits($1, $2::int, $3, 'promo')";
    assert_non_null(strstr(db_must_fail(ledger_operator, "22023", grant_sql, 3, user, "5", "gold"),
                           "p_bucket"));
    assert_non_null(
        strstr(db_must_fail(ledger_operator, "22023", grant_sql, 3, user, "5", NULL), "p_bucket"));
    assert_non_null(strstr(
        db_must_fail(ledger_operator, "22023", grant_sql, 3, user, "0", "overage"), "p_credits"));
    assert_non_null(strstr(
        db_must_fail(ledger_operator, "22023", grant_sql, 3, user, "-1", "overage"), "p_credits"));
    assert_non_null(strstr(
        db_must_fail(ledger_operator, "22004", grant_sql, 3, NULL, "5", "overage"), "required"));

    const char *check_sql = "SELECT paystream.check_credits($1, $2::int)";
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22023", check_sql, 2, user, "0"), "p_required"));
    assert_non_null(
        strstr(db_must_fail(ledger_app, "22023", check_sql, 2, user, NULL), "p_required"));

    assert_balance(user, 0, 10);
    assert_int_equal(ledger_rows(user), 1);
}

/* Newest first, keyset pages through p_before, limits clamped to 1..1000. */
static void test_history_pagination(void **state) {
    (void)state;
    char user[37], other[37], nobody[37], v[37];
    db_uuid(user, 6, 1);
    db_uuid(other, 6, 2);
    db_uuid(nobody, 6, 3);
    for (int i = 0; i < 8; i++)
        ledger_grant(user, "3", i % 2 ? "overage" : "subscription");
    for (int i = 0; i < 4; i++) {
        db_uuid(v, 6, 100UL + (unsigned long)i);
        assert_true(ledger_deduct(user, v, "2"));
    }
    ledger_grant(other, "1", "overage");
    char *all = db_scalar(ledger_su,
                          "SELECT string_agg(id::text, ',' ORDER BY id DESC) FROM"
                          " paystream.credit_transactions WHERE user_id = $1",
                          1, user);
    assert_int_equal(ledger_rows(user), 12);
    /* pages of 5 as the app: 5, 5, 2, then nothing */
    char pages[1024] = "", before[32] = "";
    static const int want_rows[] = {5, 5, 2, 0};
    for (int page = 0; page < 4; page++) {
        pg_result *r = NULL;
        if (db_run(ledger_app, &r, "SELECT id FROM paystream.get_credit_history($1, 5, $2::bigint)",
                   2, user, before[0] ? before : NULL) != 0)
            fail_msg("%s", pg_errstr(ledger_app));
        assert_int_equal(pg_nrows(r), want_rows[page]);
        for (int i = 0; i < pg_nrows(r); i++) {
            if (pages[0]) strcat(pages, ",");
            strcat(pages, pg_value(r, i, 0));
        }
        if (pg_nrows(r)) snprintf(before, sizeof(before), "%s", pg_value(r, pg_nrows(r) - 1, 0));
        pg_result_free(r);
    }
    /* newest first, every row once, only this user's */
    assert_string_equal(pages, all);
    ps_free(all);
    const char *count_sql = "SELECT count(*) FROM paystream.get_credit_history($1, $2::int)";
    assert_int_equal(db_long(ledger_app, count_sql, 2, user, "0"), 1);
    assert_int_equal(db_long(ledger_app, count_sql, 2, user, "-3"), 1);
    assert_int_equal(db_long(ledger_app, count_sql, 2, user, NULL), 12);
    assert_int_equal(db_long(ledger_app, count_sql, 2, nobody, "10"), 0);
    /* the newest row is the last deduct */
    assert_int_equal(
        db_long(ledger_app, "SELECT amount FROM paystream.get_credit_history($1, 1)", 1, user), -2);
    /* a user with 1,100 rows: NULL gives 50, 5000 is clamped to 1000 */
    db_must(ledger_su,
            "SELECT paystream.grant_credits($1, 1, 'overage', 'bulk') FROM generate_series(1,"
            " 1099)",
            1, other);
    assert_int_equal(db_long(ledger_app, count_sql, 2, other, NULL), 50);
    assert_int_equal(db_long(ledger_app, count_sql, 2, other, "5000"), 1000);
    ledger_assert_consistent(other);
}

/* get_credit_balance of an unknown user is one row 0/0/0; check_credits. */
static void test_balance_and_check(void **state) {
    (void)state;
    char user[37], nobody[37];
    db_uuid(user, 7, 1);
    db_uuid(nobody, 7, 2);
    char *b = db_scalar(ledger_app,
                        "SELECT format('%s/%s/%s', subscription_credits, overage_credits, total)"
                        " FROM paystream.get_credit_balance($1)",
                        1, nobody);
    assert_string_equal(b, "0/0/0");
    ps_free(b);
    assert_int_equal(
        db_long(ledger_app, "SELECT count(*) FROM paystream.get_credit_balance($1)", 1, nobody), 1);
    ledger_grant(user, "5", "overage");
    ledger_grant(user, "10", "subscription");
    const char *check = "SELECT paystream.check_credits($1, $2::int)::int";
    assert_int_equal(db_long(ledger_app, check, 2, user, "15"), 1);
    assert_int_equal(db_long(ledger_app, check, 2, user, "16"), 0);
    assert_int_equal(db_long(ledger_app, check, 2, user, "1"), 1);
    assert_int_equal(db_long(ledger_app, check, 2, nobody, "1"), 0);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.subscriptions WHERE user_id = $1", 1,
                             nobody),
                     0);
}

/* grant_credits with a reference grants once, even from two sessions. */
static void test_grant_reference_once(void **state) {
    (void)state;
    char user[37];
    db_uuid(user, 8, 1);
    const char *sql = "SELECT paystream.grant_credits($1, $2::int, $3, 'promo', $4)";
    assert_int_equal(
        db_long(ledger_operator, sql, 4, user, "50", "overage", "promo-2026-spring:u8"), 50);
    assert_int_equal(
        db_long(ledger_operator, sql, 4, user, "50", "overage", "promo-2026-spring:u8"), 50);
    assert_int_equal(
        db_long(ledger_operator, sql, 4, user, "70", "subscription", "promo-2026-spring:u8"), 0);
    assert_balance(user, 0, 50);
    /* without a reference every call is a grant */
    db_must(ledger_operator, "SELECT paystream.grant_credits($1, 1, 'overage', 'support')", 1,
            user);
    db_must(ledger_operator, "SELECT paystream.grant_credits($1, 1, 'overage', 'support')", 1,
            user);
    assert_balance(user, 0, 52);
    /* A grants inside a transaction; B, same reference, waits and grants nothing */
    db_must(ledger_operator, "BEGIN", 0);
    db_must(ledger_operator, sql, 4, user, "10", "overage", "support-ticket-4411");
    db_async b;
    db_async_start(&b, NULL, LEDGER_OPERATOR_ROLE, sql, 4, user, "10", "overage",
                   "support-ticket-4411");
    db_wait_lock_waiters(ledger_su, LEDGER_OPERATOR_ROLE, 1);
    assert_int_equal(atomic_load(&b.done), 0);
    db_must(ledger_operator, "COMMIT", 0);
    db_async_join(&b);
    assert_string_equal(b.value, "62");
    assert_balance(user, 0, 62);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_transactions WHERE reference"
                             " IN ('promo-2026-spring:u8', 'support-ticket-4411')",
                             0),
                     2);
    ledger_assert_consistent(user);
    /* a reference is once per user: another user gets the same promotion, once */
    char other[37];
    db_uuid(other, 8, 2);
    assert_int_equal(
        db_long(ledger_operator, sql, 4, other, "50", "overage", "promo-2026-spring:u8"), 50);
    assert_int_equal(
        db_long(ledger_operator, sql, 4, other, "50", "overage", "promo-2026-spring:u8"), 50);
    assert_balance(other, 0, 50);
    assert_balance(user, 0, 62);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_bad_inputs),
        cmocka_unit_test(test_history_pagination),
        cmocka_unit_test(test_balance_and_check),
        cmocka_unit_test(test_grant_reference_once),
    };
    return cmocka_run_group_tests(tests, ledger_setup, ledger_teardown);
}
