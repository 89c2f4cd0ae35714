/* cmd_reconcile.c - `paystreamctl reconcile`: check the ledger invariants of
 * SPEC section 5 over the whole database and report every breach.
 *
 * Each check is one SQL query returning the offending rows as (user, what);
 * an empty result is a pass. Exit 0 when all pass, 1 with a report otherwise. */
#include "commands.h"

#include <stdio.h>

typedef struct reconcile_check {
    const char *name;
    const char *sql; /* returns (user_id, detail) per breach */
} reconcile_check;

static const reconcile_check checks[] = {
    {"subscription balance equals the sum of its ledger rows",
     "SELECT s.user_id, format('balance %s, ledger sum %s', s.credits_remaining,"
     " coalesce(l.total, 0)) FROM paystream.subscriptions s LEFT JOIN (SELECT user_id,"
     " sum(amount) AS total FROM paystream.credit_transactions WHERE bucket = 'subscription'"
     " GROUP BY user_id) l USING (user_id) WHERE s.credits_remaining <> coalesce(l.total, 0)"},
    {"overage balance equals the sum of its ledger rows",
     "SELECT s.user_id, format('balance %s, ledger sum %s', s.overage_credits,"
     " coalesce(l.total, 0)) FROM paystream.subscriptions s LEFT JOIN (SELECT user_id,"
     " sum(amount) AS total FROM paystream.credit_transactions WHERE bucket = 'overage'"
     " GROUP BY user_id) l USING (user_id) WHERE s.overage_credits <> coalesce(l.total, 0)"},
    {"ledger rows belong to a known account",
     "SELECT DISTINCT t.user_id, 'ledger rows without an account row'"
     " FROM paystream.credit_transactions t LEFT JOIN paystream.subscriptions s"
     " USING (user_id) WHERE s.user_id IS NULL"},
    {"no balance is negative",
     "SELECT user_id, format('subscription %s, overage %s', credits_remaining,"
     " overage_credits) FROM paystream.subscriptions"
     " WHERE credits_remaining < 0 OR overage_credits < 0"},
    {"each granted credit pack has exactly one grant row of its size",
     "SELECT p.user_id, format('session %s: pack %s credits, granted %s in %s rows',"
     " p.checkout_session_id, p.credits, coalesce(sum(t.amount), 0), count(t.id))"
     " FROM paystream.pack_purchases p LEFT JOIN paystream.credit_transactions t"
     " ON t.kind = 'pack_grant' AND t.reference = p.checkout_session_id"
     " WHERE p.status = 'granted' GROUP BY p.user_id, p.checkout_session_id, p.credits"
     " HAVING count(t.id) <> 1 OR coalesce(sum(t.amount), 0) <> p.credits"},
    {"each Stripe-made ledger row names its event",
     "SELECT user_id, format('row %s (%s) has no event id', id, kind)"
     " FROM paystream.credit_transactions WHERE event_id IS NULL"
     " AND kind IN ('subscription_grant', 'subscription_upgrade', 'pack_grant', 'pack_refund',"
     " 'subscription_refund', 'dispute_withdrawal', 'dispute_reinstatement')"},
    {"no refunded or disputed payment takes back more than it granted",
     "SELECT user_id, format('payment %s: granted %s, owed back %s, taken %s, uncollected %s',"
     " payment, granted, due, taken, uncollected) FROM paystream.payments"
     " WHERE due > granted OR taken + uncollected > granted"},
};

#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

int cmd_reconcile(const ps_config *cfg, int argc, char **argv) {
    (void)argv;
    if (argc != 1) return ctl_fail(EXIT_USAGE, "reconcile", "takes no arguments");
    pg_conn *c = ctl_db_connect(cfg);
    if (c == NULL) return 1;
    int failed = 0, breaches = 0;
    /* one snapshot for all checks, so a busy system is judged at one instant */
    if (pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL) != 0) {
        pg_close(c);
        return ctl_fail(1, "reconcile", "%s", pg_errstr(c));
    }
    for (size_t i = 0; i < NCHECKS; i++) {
        pg_result *r = NULL;
        if (pg_exec(c, checks[i].sql, 0, NULL, &r) != 0) {
            printf("ERROR %s: %s\n", checks[i].name, pg_errstr(c));
            failed++;
            continue;
        }
        int n = pg_nrows(r);
        printf("%-5s %s\n", n ? "FAIL" : "ok", checks[i].name);
        for (int j = 0; j < n && j < 50; j++)
            printf("      user %s: %s\n", pg_value(r, j, 0), pg_value(r, j, 1));
        if (n > 50) printf("      ... and %d more\n", n - 50);
        if (n) failed++;
        breaches += n;
        pg_result_free(r);
    }
    pg_exec(c, "COMMIT", 0, NULL, NULL);
    pg_close(c);
    if (failed)
        printf("reconcile: %d check(s) failed, %d breach(es)\n", failed, breaches);
    else
        printf("reconcile: clean\n");
    return failed ? 1 : 0;
}
