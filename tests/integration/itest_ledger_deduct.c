/* itest_ledger_deduct.c - deduct_credits against a real server (SPEC
 * section 5): never overdrawn by concurrent callers, overage spent first,
 * one charge per video however often it is asked. */
#include "ledger.h"
#include "alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deduct_concurrent_never_overdraws),
        cmocka_unit_test(test_deduct_overage_first),
        cmocka_unit_test(test_deduct_repeated_video),
    };
    return cmocka_run_group_tests(tests, ledger_setup, ledger_teardown);
}
