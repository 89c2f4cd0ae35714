/* itest_ledger.c - the ledger in PostgreSQL (sql/, SPEC section 5) against
 * a real server: migrations (idempotent, two migrators at once), the app API
 * (overage first, once per video, never overdrawn under concurrency, history,
 * balances, bad input), roles and privileges, and the append-only ledger.
 * The worker API's Stripe rules are in itest_ledger_events.c. */
#include "ledger.h"
#include "alloc.h"
#include "fileio.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* ------------------------------------------------------------ migrations -- */

/* Two migrators started at the same moment on a fresh database: both succeed
 * and every migration is applied exactly once. Three rounds. */
static void test_migrate_race(void **state) {
    (void)state;
    int nfiles = db_migration_count();
    assert_true(nfiles >= 2);
    for (int round = 0; round < 3; round++) {
        char dbname[32], out_path[2][64];
        snprintf(dbname, sizeof(dbname), "race_%d", round);
        db_create_database(dbname);
        char *url = db_url(NULL, dbname);
        const char *args[] = {"--database-url", url, "migrate", NULL};
        int gate[2];
        pid_t pid[2];
        assert_int_equal(pipe(gate), 0);
        for (int i = 0; i < 2; i++) {
            snprintf(out_path[i], sizeof(out_path[i]), "/tmp/itest-race-%d-%d-%d", (int)getpid(),
                     round, i);
            pid[i] = proc_spawn_ctl(args, out_path[i], gate);
            assert_true(pid[i] > 0);
        }
        close(gate[0]);
        close(gate[1]); /* both start now */
        int applied = 0;
        for (int i = 0; i < 2; i++) {
            char err[256];
            int rc = proc_wait(pid[i]);
            char *out = file_read_all(out_path[i], 1 << 20, NULL, err, sizeof(err));
            assert_non_null(out);
            if (rc != 0) fail_msg("migrator %d of round %d exited %d:\n%s", i, round, rc, out);
            applied += text_count_lines(out, "applied ");
            ps_free(out);
            unlink(out_path[i]);
        }
        assert_int_equal(applied, nfiles);
        pg_conn *c = db_connect_url(url);
        assert_int_equal(db_long(c, "SELECT count(*) FROM paystream.schema_migrations", 0), nfiles);
        assert_int_equal(
            db_long(c, "SELECT count(DISTINCT name) FROM paystream.schema_migrations", 0), nfiles);
        pg_close(c);
        ps_free(url);
    }
}

/* A second run applies nothing and leaves schema_migrations as it was. */
static void test_migrate_idempotent(void **state) {
    (void)state;
    int nfiles = db_migration_count(), rc;
    char want[64];
    db_create_database("idem");
    char *out = ledger_migrate("idem", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(text_count_lines(out, "applied "), nfiles);
    ps_free(out);
    char *url = db_url(NULL, "idem");
    pg_conn *c = db_connect_url(url);
    const char *snap_sql = "SELECT string_agg(version || ' ' || name || ' ' || applied_at, ','"
                           " ORDER BY version) FROM paystream.schema_migrations";
    char *before = db_scalar(c, snap_sql, 0);
    for (int run = 0; run < 2; run++) {
        out = ledger_migrate(run == 0 ? "idem" : NULL, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(text_count_lines(out, "applied "), 0);
        snprintf(want, sizeof(want), "(0 applied, %d total)", nfiles);
        assert_non_null(strstr(out, want));
        ps_free(out);
    }
    char *after = db_scalar(c, snap_sql, 0);
    assert_string_equal(before, after);
    assert_int_equal(db_long(c, "SELECT count(*) FROM paystream.schema_migrations", 0), nfiles);
    assert_int_equal(db_long(ledger_su, "SELECT count(*) FROM paystream.schema_migrations", 0),
                     nfiles);
    ps_free(before);
    ps_free(after);
    pg_close(c);
    ps_free(url);
}

/* ----------------------------------------------------------- deductions -- */

#define DEDUCT_THREADS 8
#define DEDUCT_CALLS   1000

typedef struct deduct_job {
    char *url;
    const char *user;
    int thread;
    pthread_barrier_t *start;
    int ok, refused, errors;
    char err[256];
} deduct_job;

static void *deduct_main(void *arg) {
    deduct_job *j = arg;
    pg_conn *c = pg_connect(j->url, j->err, sizeof(j->err));
    pthread_barrier_wait(j->start);
    if (c == NULL) {
        j->errors = DEDUCT_CALLS;
        return NULL;
    }
    for (int i = 0; i < DEDUCT_CALLS; i++) {
        char video[37];
        const char *params[2] = {j->user, video};
        pg_result *r = NULL;
        db_uuid(video, 0x7000UL + (unsigned long)j->thread, (unsigned long)i);
        if (pg_exec_prepared(c, "deduct", "SELECT paystream.deduct_credits($1, $2, 1, 'load')", 2,
                             params, &r) != 0) {
            if (j->errors++ == 0) snprintf(j->err, sizeof(j->err), "%s", pg_errstr(c));
            continue;
        }
        if (strcmp(pg_value(r, 0, 0), "t") == 0)
            j->ok++;
        else
            j->refused++;
        pg_result_free(r);
    }
    pg_close(c);
    return NULL;
}

/* 8 connections x 1,000 deducts of 1 credit on one user holding 3,000: exactly
 * 3,000 succeed, overage is spent before any subscription credit, the
 * balance ends at 0/0 and the ledger and reconcile agree. */
static void test_deduct_concurrent_never_overdraws(void **state) {
    (void)state;
    char user[37];
    deduct_job jobs[DEDUCT_THREADS];
    pthread_t th[DEDUCT_THREADS];
    pthread_barrier_t start;
    db_uuid(user, 1, 1);
    ledger_grant(user, "1000", "overage");
    ledger_grant(user, "2000", "subscription");
    char *url = db_url(LEDGER_APP_ROLE, NULL);
    pthread_barrier_init(&start, NULL, DEDUCT_THREADS);
    for (int t = 0; t < DEDUCT_THREADS; t++) {
        jobs[t] = (deduct_job){.url = url, .user = user, .thread = t, .start = &start};
        assert_int_equal(pthread_create(&th[t], NULL, deduct_main, &jobs[t]), 0);
    }
    int ok = 0, refused = 0;
    for (int t = 0; t < DEDUCT_THREADS; t++) {
        pthread_join(th[t], NULL);
        if (jobs[t].errors)
            fail_msg("thread %d: %d errors, first: %s", t, jobs[t].errors, jobs[t].err);
        ok += jobs[t].ok;
        refused += jobs[t].refused;
    }
    pthread_barrier_destroy(&start);
    ps_free(url);
    assert_int_equal(ok, 3000);
    assert_int_equal(refused, DEDUCT_THREADS * DEDUCT_CALLS - 3000);
    assert_balance(user, 0, 0);
    ledger_assert_consistent(user);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_usages WHERE user_id = $1", 1,
                             user),
                     3000);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_transactions WHERE user_id = $1"
                             " AND kind = 'usage' AND bucket = 'overage' AND amount = -1",
                             1, user),
                     1000);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_transactions WHERE user_id = $1"
                             " AND kind = 'usage' AND bucket = 'subscription' AND amount = -1",
                             1, user),
                     2000);
    /* overage first: every overage usage row precedes every subscription one */
    assert_int_equal(
        db_long(ledger_su,
                "SELECT (max(id) FILTER (WHERE bucket = 'overage') < min(id) FILTER (WHERE bucket ="
                " 'subscription'))::int FROM paystream.credit_transactions WHERE user_id = $1 AND"
                " kind = 'usage'",
                1, user),
        1);
    ledger_reconcile_clean();
}

/* Overage first; a deduct spanning both buckets writes two rows, overage
 * first; a short balance returns false and changes nothing. */
static void test_deduct_overage_first(void **state) {
    (void)state;
    char user[37], v1[37], v2[37], v3[37], nobody[37];
    db_uuid(user, 2, 1);
    db_uuid(v1, 2, 101);
    db_uuid(v2, 2, 102);
    db_uuid(v3, 2, 103);
    db_uuid(nobody, 2, 999);
    ledger_grant(user, "5", "overage");
    ledger_grant(user, "10", "subscription");
    assert_true(ledger_deduct(user, v1, "3"));
    assert_balance(user, 10, 2);
    assert_true(ledger_deduct(user, v2, "4"));
    assert_balance(user, 8, 0);
    pg_result *r = NULL;
    if (db_run(ledger_su, &r,
               "SELECT bucket, amount, kind FROM paystream.credit_transactions WHERE user_id = $1"
               " AND reference = $2 ORDER BY id",
               2, user, v2) != 0)
        fail_msg("%s", pg_errstr(ledger_su));
    assert_int_equal(pg_nrows(r), 2);
    assert_string_equal(pg_value(r, 0, 0), "overage");
    assert_string_equal(pg_value(r, 0, 1), "-2");
    assert_string_equal(pg_value(r, 1, 0), "subscription");
    assert_string_equal(pg_value(r, 1, 1), "-2");
    assert_string_equal(pg_value(r, 1, 2), "usage");
    pg_result_free(r);
    long rows = ledger_rows(user);
    assert_false(ledger_deduct(user, v3, "9"));
    assert_balance(user, 8, 0);
    assert_int_equal(ledger_rows(user), rows);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_usages WHERE video_id = $1", 1,
                             v3),
                     0);
    /* a refused video is not remembered: with enough credits it is charged */
    assert_true(ledger_deduct(user, v3, "8"));
    assert_balance(user, 0, 0);
    /* an unknown user has nothing and gets no account row */
    assert_false(ledger_deduct(nobody, v1, "1"));
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.subscriptions WHERE user_id = $1", 1,
                             nobody),
                     0);
    ledger_assert_consistent(user);
}

/* The same p_video_id charges once: repeated, with another amount, and from
 * two connections at once (the second waits for the first's row lock). */
static void test_deduct_repeated_video(void **state) {
    (void)state;
    char user[37], v[37], v2[37];
    db_uuid(user, 3, 1);
    db_uuid(v, 3, 101);
    db_uuid(v2, 3, 102);
    ledger_grant(user, "40", "overage");
    assert_true(ledger_deduct(user, v, "4"));
    assert_true(ledger_deduct(user, v, "4"));
    assert_true(ledger_deduct(user, v, "7"));
    assert_balance(user, 0, 36);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_transactions WHERE reference ="
                             " $1",
                             1, v),
                     1);

    /* A holds the row lock inside a transaction; B, the same video, waits */
    db_must(ledger_app, "BEGIN", 0);
    assert_true(ledger_deduct(user, v2, "2"));
    db_async b;
    db_async_start(&b, NULL, LEDGER_APP_ROLE,
                   "SELECT paystream.deduct_credits($1, $2, 2, 'render')", 2, user, v2);
    db_wait_lock_waiters(ledger_su, LEDGER_APP_ROLE, 1);
    assert_int_equal(atomic_load(&b.done), 0);
    db_must(ledger_app, "COMMIT", 0);
    db_async_join(&b);
    assert_string_equal(b.value, "t");
    assert_balance(user, 0, 34);

    /* 20 videos, each raced by two connections released together */
    db_async calls[2][20];
    pthread_barrier_t start;
    char videos[20][37];
    pthread_barrier_init(&start, NULL, 40);
    for (int i = 0; i < 20; i++) {
        db_uuid(videos[i], 3, 200UL + (unsigned long)i);
        for (int k = 0; k < 2; k++) {
            db_async_start(&calls[k][i], &start, LEDGER_APP_ROLE,
                           "SELECT paystream.deduct_credits($1, $2, 1, 'render')", 2, user,
                           videos[i]);
        }
    }
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 2; k++) {
            db_async_join(&calls[k][i]);
            assert_string_equal(calls[k][i].value, "t");
        }
    pthread_barrier_destroy(&start);
    assert_balance(user, 0, 14);
    assert_int_equal(db_long(ledger_su,
                             "SELECT count(*) FROM paystream.credit_usages WHERE user_id = $1", 1,
                             user),
                     22);
    ledger_assert_consistent(user);
}

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

/* ------------------------------------------------------ roles and history -- */

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
        cmocka_unit_test(test_migrate_race),
        cmocka_unit_test(test_migrate_idempotent),
        cmocka_unit_test(test_deduct_concurrent_never_overdraws),
        cmocka_unit_test(test_deduct_overage_first),
        cmocka_unit_test(test_deduct_repeated_video),
        cmocka_unit_test(test_api_bad_inputs),
        cmocka_unit_test(test_ledger_append_only),
        cmocka_unit_test(test_role_privileges),
        cmocka_unit_test(test_security_definer_search_path),
        cmocka_unit_test(test_history_pagination),
        cmocka_unit_test(test_balance_and_check),
        cmocka_unit_test(test_grant_reference_once),
    };
    return cmocka_run_group_tests(tests, ledger_setup, ledger_teardown);
}
