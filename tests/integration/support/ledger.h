/* ledger.h - a migrated ledger for cmocka integration tests: a group set-up
 * that runs `paystreamctl migrate`, creates one login in each role and loads
 * a few test plans and packs, then helpers that read balances and check the
 * ledger's invariants (SPEC section 5). Built on db.h; same threading rule:
 * use these on the test's own thread only. */
#ifndef PS_ITEST_LEDGER_H
#define PS_ITEST_LEDGER_H

#include "alloc.h"
#include "db.h"

#define LEDGER_APP_ROLE      "app_test"      /* LOGIN, IN ROLE paystream_app */
#define LEDGER_OPERATOR_ROLE "operator_test" /* LOGIN, IN ROLE paystream_operator */
#define LEDGER_WORKER_ROLE   "worker_test"   /* LOGIN, IN ROLE paystream_worker */

/* the plans and packs ledger_setup() loads */
#define PRICE_BASIC   "price_1QbAsicMonthly0001" /* plan basic, 100 a period */
#define PRICE_PRO     "price_1QpRoMonthly000002" /* plan pro, 500 */
#define PRICE_TEAM    "price_1QtEamMonthly00003" /* plan team, 2000 */
#define PRICE_PACK100 "price_1PackOf100Credits"  /* pack credits_100 */
#define PRICE_PACK500 "price_1PackOf500Credits"  /* pack credits_500 */

extern pg_conn *ledger_su;       /* superuser: set-up and inspection */
extern pg_conn *ledger_app;      /* LEDGER_APP_ROLE */
extern pg_conn *ledger_worker;   /* LEDGER_WORKER_ROLE */
extern pg_conn *ledger_operator; /* LEDGER_OPERATOR_ROLE */

/* cmocka group set-up and tear-down */
int ledger_setup(void **state);
int ledger_teardown(void **state);

/* `paystreamctl --database-url <db> migrate` (NULL: the stack's database);
 * exit status in *rc, output returned (caller frees). */
char *ledger_migrate(const char *dbname, int *rc);
/* How many lines of text start with prefix. */
int text_count_lines(const char *text, const char *prefix);

/* grant_credits as the superuser (no reference) */
void ledger_grant(const char *user, const char *credits, const char *bucket);
/* deduct_credits as the app role: 1 true, 0 false; the test fails on error */
int ledger_deduct(const char *user, const char *video, const char *credits);
/* get_credit_balance as the app role (and checks total = sub + over) */
void ledger_balance(const char *user, long *sub, long *over);
long ledger_rows(const char *user);
/* Each bucket's balance equals the sum of its rows, and every row's
 * balance_after is the running sum up to it. */
void ledger_assert_consistent(const char *user);
/* `paystreamctl reconcile` exits 0 */
void ledger_reconcile_clean(void);
/* One expression over the user's subscriptions row, as text (NULL if none). */
char *ledger_account(const char *user, const char *expr);

#define assert_balance(user, want_sub, want_over)                                                  \
    do {                                                                                           \
        long sub_, over_;                                                                          \
        ledger_balance(user, &sub_, &over_);                                                       \
        assert_int_equal(sub_, want_sub);                                                          \
        assert_int_equal(over_, want_over);                                                        \
    } while (0)

#define assert_account(user, expr, want)                                                           \
    do {                                                                                           \
        char *got_ = ledger_account(user, expr);                                                   \
        assert_non_null(got_);                                                                     \
        assert_string_equal(got_, want);                                                           \
        ps_free(got_);                                                                             \
    } while (0)

#endif
