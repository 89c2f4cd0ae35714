/* test_pg.c - unit tests for what common/pg.c decides without a server:
 * which SQLSTATEs end a session (the worker connects again and applies the
 * event again, idempotently, instead of counting a failed attempt), and the
 * one-line error of a failed connection to several hosts (a failover URL):
 * every host named, no newline, never the password. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/pg.h"

static void test_lost_states(void **state) {
    (void)state;
    const char *lost[] = {"08000", "08003", "08006", "08001", "08P01",
                          "57P01", "57P02", "57P03", "25006"};
    for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
        if (!pg_sqlstate_is_lost(lost[i])) fail_msg("%s is not lost", lost[i]);
}

static void test_event_states(void **state) {
    (void)state;
    /* the event's own failures: retried with backoff, counted, dead at last */
    const char *mine[] = {"",      "23505", "40001", "40P01", "55000", "PS001",
                          "22023", "42501", "57014", "25P02", "53300"};
    for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
        if (pg_sqlstate_is_lost(mine[i])) fail_msg("'%s' is lost", mine[i]);
}

/* Two hosts that refuse at once (port 1 and 2 of loopback: nothing listens
 * there as a rule): NULL, and one line naming both. */
static void test_several_hosts_refused(void **state) {
    (void)state;
    char err[512] = "";
    pg_conn *c = pg_connect("postgresql://paystream:s3cr3t-pw@127.0.0.1:1,127.0.0.1:2/paystream"
                            "?target_session_attrs=read-write",
                            err, sizeof(err));
    assert_null(c);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL: "));
    assert_non_null(strstr(err, "port 1 failed"));
    assert_non_null(strstr(err, "port 2 failed"));
    assert_null(strchr(err, '\n'));
    assert_null(strchr(err, '\t'));
    assert_null(strstr(err, "s3cr3t-pw"));
}

/* A short buffer: cut, terminated, no overrun (ASan watches). */
static void test_short_error_buffer(void **state) {
    (void)state;
    char err[40];
    memset(err, 'x', sizeof(err));
    pg_conn *c = pg_connect("postgresql://127.0.0.1:1,127.0.0.1:2/x", err, sizeof(err));
    assert_null(c);
    assert_true(strlen(err) < sizeof(err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_states),
        cmocka_unit_test(test_event_states),
        cmocka_unit_test(test_several_hosts_refused),
        cmocka_unit_test(test_short_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
