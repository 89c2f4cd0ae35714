/* cmd_balance.c - `paystreamctl balance USER_ID [--history N]`: a user's
 * balance by bucket, the subscription it comes from, and the newest ledger
 * rows, read through the same SQL API the app uses. */
#include "commands.h"
#include "strbuf.h"

#include <stdio.h>
#include <string.h>

static void print_subscription(pg_conn *c, const char *user) {
    const char *params[1] = {user};
    pg_result *r = NULL;
    if (pg_exec(c,
                "SELECT coalesce(plan, '-'), status, coalesce(stripe_subscription_id, '-'),"
                " coalesce(to_char(current_period_end AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD HH24:MI \"UTC\"'), '-'), credits_total, cancel_at_period_end"
                " FROM paystream.subscriptions WHERE user_id = $1",
                1, params, &r) == 0 &&
        pg_nrows(r) == 1) {
        printf("  plan %s, status %s, subscription %s, period ends %s, allowance %s%s\n",
               pg_value(r, 0, 0), pg_value(r, 0, 1), pg_value(r, 0, 2), pg_value(r, 0, 3),
               pg_value(r, 0, 4),
               strcmp(pg_value(r, 0, 5), "t") == 0 ? ", cancels at period end" : "");
    }
    pg_result_free(r);
}

static int print_history(pg_conn *c, const char *user, const char *limit) {
    const char *params[2] = {user, limit};
    pg_result *r = NULL;
    if (pg_exec(c,
                "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
                " bucket, amount, kind, reference, balance_after, description"
                " FROM paystream.get_credit_history($1, $2::int)",
                2, params, &r) != 0)
        return ctl_fail(1, "balance", "%s", pg_errstr(c));
    printf("\n  %-6s %-19s %-12s %7s %-20s %7s  %s\n", "id", "time (UTC)", "bucket", "amount",
           "kind", "after", "reference / description");
    for (int i = 0; i < pg_nrows(r); i++)
        printf("  %-6s %-19s %-12s %7s %-20s %7s  %s %s\n", pg_value(r, i, 0), pg_value(r, i, 1),
               pg_value(r, i, 2), pg_value(r, i, 3), pg_value(r, i, 4), pg_value(r, i, 6),
               pg_value(r, i, 5), pg_value(r, i, 7));
    pg_result_free(r);
    return 0;
}

int cmd_balance(const ps_config *cfg, int argc, char **argv) {
    const char *user = NULL, *history = NULL;
    long n;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--history") == 0 && i + 1 < argc)
            history = argv[++i];
        else if (user == NULL && argv[i][0] != '-')
            user = argv[i];
        else
            return ctl_fail(EXIT_USAGE, "balance", "usage: balance USER_ID [--history N]");
    }
    if (user == NULL)
        return ctl_fail(EXIT_USAGE, "balance", "usage: balance USER_ID [--history N]");
    if (!ctl_is_uuid(user)) return ctl_fail(EXIT_USAGE, "balance", "'%s' is not a UUID", user);
    if (history && (!str_to_long(history, &n) || n < 1 || n > 1000))
        return ctl_fail(EXIT_USAGE, "balance", "--history must be from 1 to 1000");
    pg_conn *c = ctl_db_connect(cfg);
    if (c == NULL) return 1;
    const char *params[1] = {user};
    pg_result *r = NULL;
    int rc = 0;
    if (pg_exec(c, "SELECT * FROM paystream.get_credit_balance($1)", 1, params, &r) != 0) {
        rc = ctl_fail(1, "balance", "%s", pg_errstr(c));
    } else {
        printf("user %s\n  subscription credits %8s\n  overage credits      %8s\n"
               "  total                %8s\n",
               user, pg_value(r, 0, 0), pg_value(r, 0, 1), pg_value(r, 0, 2));
        print_subscription(c, user);
        if (history) rc = print_history(c, user, history);
    }
    pg_result_free(r);
    pg_close(c);
    return rc;
}
