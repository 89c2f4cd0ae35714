/* itest_ledger_roles.c - who may do what to the ledger, against a real
 * server (SPEC section 5): the append-only ledger, each role's privileges,
 * and SECURITY DEFINER functions with a fixed search_path. */
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

/* ------------------------------------------------------------------ roles -- */

/* No role rewrites history: the app and worker roles have no table
 * privilege, and the owner (here a superuser) is stopped by the trigger. */
static void test_ledger_append_only(void **state) {
    (void)state;
    char user[37];
    db_uuid(user, 5, 1);
    ledger_grant(user, "7", "overage");
    static const char *const rewrites[] = {
        "UPDATE paystream.credit_transactions SET amount = 1000 WHERE user_id = $1",
        "DELETE FROM paystream.credit_transactions WHERE user_id = $1",
        "TRUNCATE paystream.credit_transactions",
    };
    pg_conn *roles[2] = {ledger_app, ledger_worker};
    for (size_t i = 0; i < sizeof(rewrites) / sizeof(rewrites[0]); i++) {
        int np = strstr(rewrites[i], "$1") ? 1 : 0;
        for (int r = 0; r < 2; r++)
            assert_non_null(strstr(db_must_fail(roles[r], "42501", rewrites[i], np, user),
                                   "permission denied"));
        assert_non_null(
            strstr(db_must_fail(ledger_su, "42501", rewrites[i], np, user), "append-only"));
    }
    assert_int_equal(ledger_rows(user), 1);
    assert_balance(user, 0, 7);
    ledger_assert_consistent(user);
}

/* Neither role may touch a table directly; the app role may execute exactly
 * the app API, the worker role exactly ps_*, nobody the internals (every
 * role and function: test_roles.sh). */
static void test_role_privileges(void **state) {
    (void)state;
    static const char *const app_api =
        "{check_credits,deduct_credits,get_credit_balance,get_credit_history,get_subscription}";
    static const char *const roles[] = {"paystream_app", "paystream_worker", LEDGER_APP_ROLE,
                                        LEDGER_WORKER_ROLE};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        char *granted = db_scalar(
            ledger_su,
            "SELECT string_agg(c.relname, ',') FROM pg_class c WHERE c.relnamespace ="
            " 'paystream'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND"
            " (has_table_privilege($1, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,"
            "TRIGGER') OR (c.relkind = 'S' AND has_sequence_privilege($1, c.oid,"
            " 'USAGE,SELECT,UPDATE')))",
            1, roles[i]);
        if (granted) fail_msg("%s has privileges on: %s", roles[i], granted);
        char *fns = db_scalar(ledger_su,
                              "SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p"
                              " WHERE p.pronamespace = 'paystream'::regnamespace AND"
                              " has_function_privilege($1, p.oid, 'EXECUTE')",
                              1, roles[i]);
        char *want = db_scalar(ledger_su,
                               "SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p"
                               " WHERE p.pronamespace = 'paystream'::regnamespace AND"
                               " (NOT $2::bool AND p.proname = ANY ($1::text[]) OR ($2::bool AND"
                               " p.proname LIKE 'ps\\_%'))",
                               2, app_api, strstr(roles[i], "worker") ? "true" : "false");
        if (fns == NULL || strcmp(fns, want) != 0)
            fail_msg("%s may execute\n  [%s]\nbut should exactly\n  [%s]", roles[i], fns, want);
        ps_free(fns);
        ps_free(want);
    }
    /* and by trying: every table refuses every kind of statement to the app */
    pg_result *tables = NULL;
    if (db_run(ledger_su, &tables,
               "SELECT c.relname, (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND"
               " attnum = 1) FROM pg_class c WHERE c.relnamespace = 'paystream'::regnamespace AND"
               " c.relkind = 'r' ORDER BY 1",
               0) != 0)
        fail_msg("%s", pg_errstr(ledger_su));
    assert_true(pg_nrows(tables) >= 8);
    for (int i = 0; i < pg_nrows(tables); i++) {
        const char *t = pg_value(tables, i, 0), *col = pg_value(tables, i, 1);
        char sql[4][256];
        snprintf(sql[0], sizeof(sql[0]), "SELECT * FROM paystream.%s LIMIT 1", t);
        snprintf(sql[1], sizeof(sql[1]), "INSERT INTO paystream.%s DEFAULT VALUES", t);
        snprintf(sql[2], sizeof(sql[2]), "UPDATE paystream.%s SET %s = %s", t, col, col);
        snprintf(sql[3], sizeof(sql[3]), "DELETE FROM paystream.%s", t);
        for (int k = 0; k < 4; k++) {
            db_must_fail(ledger_app, "42501", sql[k], 0);
            db_must_fail(ledger_worker, "42501", sql[k], 0);
        }
    }
    pg_result_free(tables);
    db_must_fail(ledger_app, "42501",
                 "SELECT paystream.ps_invoice_paid(gen_random_uuid(), 'sub_x', 'cus_x', 'in_x',"
                 " ARRAY[$1], NULL, NULL, 1, NULL, NULL, 'evt_x')",
                 1, PRICE_BASIC);
    db_must_fail(ledger_app, "42501",
                 "SELECT paystream.ps_invoice_payment_failed(gen_random_uuid(), 'sub_x', 'cus_x',"
                 " 'in_x', 'evt_x')",
                 0);
    db_must_fail(ledger_worker, "42501",
                 "SELECT paystream._ledger_add(gen_random_uuid(), 'overage', 5, 'operator_grant',"
                 " 'x', NULL, NULL)",
                 0);
}

/* Every SECURITY DEFINER function in the schema pins search_path to trusted
 * schemas, with pg_temp last; the API and ps_* are all SECURITY DEFINER. */
static void test_security_definer_search_path(void **state) {
    (void)state;
    pg_result *r = NULL;
    if (db_run(ledger_su, &r,
               "SELECT p.proname, (SELECT c FROM unnest(p.proconfig) c WHERE c LIKE"
               " 'search\\_path=%') FROM pg_proc p WHERE p.pronamespace ="
               " 'paystream'::regnamespace AND p.prosecdef ORDER BY 1",
               0) != 0)
        fail_msg("%s", pg_errstr(ledger_su));
    /* exactly the API, the operator's, the ps_* and the my_* functions are SECURITY DEFINER */
    assert_true(pg_nrows(r) >= 15);
    assert_int_equal(pg_nrows(r),
                     db_long(ledger_su,
                             "SELECT count(*) FROM pg_proc WHERE pronamespace ="
                             " 'paystream'::regnamespace AND (proname LIKE 'ps\\_%' OR proname LIKE"
                             " 'my\\_%' OR proname IN"
                             " ('check_credits', 'deduct_credits', 'grant_credits', 'drop_event',"
                             " 'get_credit_balance', 'get_credit_history', 'get_subscription'))",
                             0));
    for (int i = 0; i < pg_nrows(r); i++) {
        const char *fn = pg_value(r, i, 0), *sp = pg_value(r, i, 1);
        if (sp == NULL) fail_msg("SECURITY DEFINER %s has no fixed search_path", fn);
        const char *list = sp + strlen("search_path="), *last = strrchr(list, ',');
        last = last ? last + 1 + strspn(last + 1, " ") : list;
        if (strcmp(last, "pg_temp") != 0 || strstr(list, "public") || strstr(list, "$user"))
            fail_msg("SECURITY DEFINER %s has an unsafe %s", fn, sp);
    }
    pg_result_free(r);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM pg_proc WHERE pronamespace ="
                             " 'paystream'::regnamespace AND NOT prosecdef AND (proname LIKE"
                             " 'ps\\_%' OR proname LIKE 'my\\_%' OR proname IN ('check_credits',"
                             " 'deduct_credits',"
                             " 'grant_credits', 'get_credit_balance', 'get_credit_history',"
                             " 'get_subscription'))",
                             0),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ledger_append_only),
        cmocka_unit_test(test_role_privileges),
        cmocka_unit_test(test_security_definer_search_path),
    };
    return cmocka_run_group_tests(tests, ledger_setup, ledger_teardown);
}
