/* test_config.c - settings: defaults, environment, flags overriding it, the
 * one-line errors that name the setting, and secrets never shown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void clear_env(void) {
    const char *vars[] = {"PAYSTREAM_LISTEN",      "PAYSTREAM_TOLERANCE",   "PAYSTREAM_RETENTION",
                          "PAYSTREAM_LIVEMODE",    "STRIPE_WEBHOOK_SECRET", "PAYSTREAM_LOG",
                          "PAYSTREAM_CONCURRENCY", "PAYSTREAM_DATABASE_URL"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static int load(ps_config *cfg, unsigned prog, int *argc, char **argv, char *err) {
    return config_load(cfg, prog, argc, argv, err, 256);
}

static void test_defaults(void **state) {
    (void)state;
    clear_env();
    ps_config cfg;
    char err[256], *argv[] = {"prog", NULL};
    int argc = 1;
    assert_int_equal(load(&cfg, PROG_WORKER, &argc, argv, err), 0);
    assert_int_equal(cfg.concurrency, 4);
    assert_int_equal(cfg.max_attempts, 8);
    assert_int_equal(cfg.claim_idle_ms, 30000);
    assert_int_equal(cfg.retention, 30L * 86400);
    assert_string_equal(cfg.stream, "paystream:events");
    assert_string_equal(cfg.group, "paystream");
    assert_int_equal(cfg.livemode, LIVEMODE_ANY);
    config_free(&cfg);
}

static void test_flag_overrides_env_and_is_removed(void **state) {
    (void)state;
    clear_env();
    setenv("PAYSTREAM_LISTEN", "127.0.0.1:1111", 1);
    ps_config cfg;
    char err[256];
    char *argv[] = {"prog",          "--listen", "[::1]:2222", "replay",
                    "--tolerance=0", "--from",   "0-1",        NULL};
    int argc = 7;
    assert_int_equal(load(&cfg, PROG_INGEST | PROG_CTL, &argc, argv, err), 0);
    assert_string_equal(cfg.listen, "[::1]:2222");
    assert_int_equal(cfg.tolerance, 0);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[1], "replay");
    assert_string_equal(argv[2], "--from");
    assert_string_equal(argv[3], "0-1");
    assert_null(argv[4]);
    config_free(&cfg);
}

static void test_errors_name_the_setting(void **state) {
    (void)state;
    struct {
        const char *var, *value, *needle;
    } cases[] = {
        {"PAYSTREAM_TOLERANCE", "abc", "PAYSTREAM_TOLERANCE"},
        {"PAYSTREAM_TOLERANCE", "-5", "PAYSTREAM_TOLERANCE"},
        {"PAYSTREAM_RETENTION", "30x", "PAYSTREAM_RETENTION"},
        {"PAYSTREAM_LIVEMODE", "prod", "PAYSTREAM_LIVEMODE"},
        {"PAYSTREAM_LOG", "loud", "PAYSTREAM_LOG"},
        {"PAYSTREAM_CONCURRENCY", "0", "PAYSTREAM_CONCURRENCY"},
        {"PAYSTREAM_LISTEN", "", "PAYSTREAM_LISTEN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear_env();
        setenv(cases[i].var, cases[i].value, 1);
        ps_config cfg;
        char err[256], *argv[] = {"prog", NULL};
        int argc = 1;
        assert_int_equal(load(&cfg, PROG_INGEST | PROG_WORKER | PROG_CTL, &argc, argv, err), -1);
        assert_non_null(strstr(err, cases[i].needle));
        assert_null(strchr(err, '\n'));
        config_free(&cfg);
    }
    clear_env();
}

static void test_flag_without_value(void **state) {
    (void)state;
    clear_env();
    ps_config cfg;
    char err[256], *argv[] = {"prog", "--stream", NULL};
    int argc = 2;
    assert_int_equal(load(&cfg, PROG_WORKER, &argc, argv, err), -1);
    assert_non_null(strstr(err, "PAYSTREAM_STREAM"));
    config_free(&cfg);
}

static void test_flags_of_other_programs_are_left_alone(void **state) {
    (void)state;
    clear_env();
    ps_config cfg;
    char err[256], *argv[] = {"prog", "--listen", "x", NULL};
    int argc = 3;
    assert_int_equal(load(&cfg, PROG_WORKER, &argc, argv, err), 0);
    assert_int_equal(argc, 3); /* the worker has no --listen: the caller reports it */
    config_free(&cfg);
}

static void test_secrets_are_masked(void **state) {
    (void)state;
    clear_env();
    setenv("STRIPE_WEBHOOK_SECRET", "whsec_topsecret", 1);
    setenv("PAYSTREAM_DATABASE_URL", "postgresql://u:hunter2@db/x", 1);
    ps_config cfg;
    char err[256], *argv[] = {"prog", NULL}, buf[8192] = "";
    int argc = 1;
    assert_int_equal(load(&cfg, PROG_CTL, &argc, argv, err), 0);
    assert_string_equal(cfg.webhook_secret, "whsec_topsecret");
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    config_show(f, &cfg, PROG_CTL);
    config_print_help(f, PROG_CTL);
    fclose(f);
    assert_null(strstr(buf, "topsecret"));
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "STRIPE_WEBHOOK_SECRET"));
    config_free(&cfg);
    clear_env();
}

static void test_malformed_secret_value_not_echoed(void **state) {
    (void)state;
    clear_env();
    ps_config cfg;
    char err[256], *argv[] = {"prog", "--redis-url", "", NULL};
    int argc = 3;
    assert_int_equal(load(&cfg, PROG_WORKER, &argc, argv, err), -1);
    assert_non_null(strstr(err, "PAYSTREAM_REDIS_URL"));
    config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flag_overrides_env_and_is_removed),
        cmocka_unit_test(test_errors_name_the_setting),
        cmocka_unit_test(test_flag_without_value),
        cmocka_unit_test(test_flags_of_other_programs_are_left_alone),
        cmocka_unit_test(test_secrets_are_masked),
        cmocka_unit_test(test_malformed_secret_value_not_echoed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
