/* test_redis_url.c - unit tests for common/redis_url.c (PAYSTREAM_REDIS_URL):
 * redis:// with and without user, password, port and db; IPv6 literals;
 * unix:// sockets with ?db=N; percent-escapes in passwords; every error, and
 * that no error message or description ever shows the password. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/alloc.h"
#include "common/redis_url.h"

static redis_url ok(const char *url) {
    redis_url u;
    char err[128] = "";
    if (redis_url_parse(url, &u, err, sizeof(err)) != 0) fail_msg("%s: %s", url, err);
    return u;
}

/* The URL is refused, with a message that does not contain `secret`. */
static void refused(const char *url, const char *secret) {
    redis_url u;
    char err[128] = "";
    if (redis_url_parse(url, &u, err, sizeof(err)) == 0) fail_msg("%s: accepted", url);
    assert_true(err[0] != '\0');
    if (secret) assert_null(strstr(err, secret));
    assert_null(u.host); /* nothing left allocated */
    assert_null(u.password);
    assert_null(u.path);
}

static void test_default_form(void **state) {
    (void)state;
    redis_url u = ok("redis://127.0.0.1:6379/0");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_null(u.path);
    assert_null(u.user);
    assert_null(u.password);
    redis_url_free(&u);
    assert_null(u.host);
    redis_url_free(&u); /* twice is fine */
    redis_url_free(NULL);
}

static void test_defaults_when_omitted(void **state) {
    (void)state;
    redis_url u = ok("redis://localhost");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    redis_url_free(&u);
    u = ok("redis://cache.internal:7000/");
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);
    redis_url_free(&u);
}

static void test_db_numbers(void **state) {
    (void)state;
    redis_url u = ok("redis://h:1/15");
    assert_int_equal(u.db, 15);
    redis_url_free(&u);
    u = ok("redis://h/65535");
    assert_int_equal(u.db, 65535);
    assert_int_equal(u.port, 6379);
    redis_url_free(&u);
    refused("redis://h/65536", NULL);
    refused("redis://h/-1", NULL);
    refused("redis://h/one", NULL);
    refused("redis://h/1x", NULL);
}

static void test_password_only(void **state) {
    (void)state;
    redis_url u = ok("redis://:s3cret@10.0.0.5:6380/2");
    assert_null(u.user);
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    redis_url_free(&u);
    u = ok("redis://s3cret@h"); /* no colon: the whole userinfo is the password */
    assert_null(u.user);
    assert_string_equal(u.password, "s3cret");
    redis_url_free(&u);
}

static void test_user_and_password(void **state) {
    (void)state;
    redis_url u = ok("redis://paystream:pw@h:6379/1");
    assert_string_equal(u.user, "paystream");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 1);
    redis_url_free(&u);
}

static void test_percent_escapes(void **state) {
    (void)state;
    redis_url u = ok("redis://:p%40ss%3Aw%2Fo%25rd@h:6379/0");
    assert_string_equal(u.password, "p@ss:w/o%rd");
    redis_url_free(&u);
    u = ok("redis://us%65r:%7e%7E@h"); /* lower and upper case hex */
    assert_string_equal(u.user, "user");
    assert_string_equal(u.password, "~~");
    redis_url_free(&u);
    u = ok("redis://:100%25@h");
    assert_string_equal(u.password, "100%");
    redis_url_free(&u);
    u = ok("redis://:a%zzb%4@h"); /* not an escape: kept as written */
    assert_string_equal(u.password, "a%zzb%4");
    redis_url_free(&u);
}

static void test_unescaped_at_in_password(void **state) {
    (void)state;
    redis_url u = ok("redis://:p@ss@h:6379"); /* the last '@' ends the userinfo */
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "h");
    redis_url_free(&u);
}

static void test_ipv6(void **state) {
    (void)state;
    redis_url u = ok("redis://[::1]:6380/3");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    redis_url_free(&u);
    u = ok("redis://[fe80::1:2]");
    assert_string_equal(u.host, "fe80::1:2");
    assert_int_equal(u.port, 6379);
    redis_url_free(&u);
    u = ok("redis://:pw@[2001:db8::7]:7001");
    assert_string_equal(u.host, "2001:db8::7");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.port, 7001);
    redis_url_free(&u);
    refused("redis://[::1:6379", NULL);
}

static void test_unix_socket(void **state) {
    (void)state;
    redis_url u = ok("unix:///var/run/redis/redis.sock");
    assert_null(u.host);
    assert_string_equal(u.path, "/var/run/redis/redis.sock");
    assert_int_equal(u.db, 0);
    redis_url_free(&u);
    u = ok("unix:///tmp/r.sock?db=4");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 4);
    redis_url_free(&u);
    u = ok("unix://:se%40cret@/tmp/r.sock");
    assert_string_equal(u.password, "se@cret");
    assert_string_equal(u.path, "/tmp/r.sock");
    redis_url_free(&u);
    refused("unix://relative/path.sock", NULL);
    refused("unix://", NULL);
    refused("unix:///tmp/r.sock?database=1", NULL);
    refused("unix:///tmp/r.sock?db=x", NULL);
}

static void test_errors(void **state) {
    (void)state;
    refused("", NULL);
    refused("127.0.0.1:6379", NULL);
    refused("http://h:6379", NULL);
    refused("rediss://h:6379", NULL);
    refused("REDIS://h", NULL);
    refused("redis://", NULL);
    refused("redis:///0", NULL);
    refused("redis://h:", NULL);
    refused("redis://h:0", NULL);
    refused("redis://h:65536", NULL);
    refused("redis://h:port", NULL);
    refused("redis://[::1]x", NULL);
    refused("redis://[::1]6379", NULL);
    refused("redis://::1:6379", NULL);
}

static void test_errors_never_show_the_password(void **state) {
    (void)state;
    refused("redis://:hunter2@h:notaport", "hunter2");
    refused("redis://:hunter2@h/notadb", "hunter2");
    refused("redis://:hunter2@", "hunter2");
    refused("unix://:hunter2@relative", "hunter2");
}

static void test_describe(void **state) {
    (void)state;
    char buf[64];
    redis_url u = ok("redis://:hunter2@h:6380/2");
    redis_url_describe(&u, buf, sizeof(buf));
    assert_string_equal(buf, "h:6380");
    redis_url_free(&u);
    u = ok("unix://:hunter2@/tmp/r.sock?db=1");
    redis_url_describe(&u, buf, sizeof(buf));
    assert_string_equal(buf, "/tmp/r.sock");
    redis_url_free(&u);
}

static void test_out_of_memory(void **state) {
    (void)state;
    const char *urls[] = {"redis://user:pw@h:1/2", "unix://:pw@/tmp/s?db=1"};
    for (size_t i = 0; i < 2; i++) {
        for (long n = 0; n < 3; n++) {
            redis_url u;
            char err[128] = "";
            ps_alloc_fail_after(n);
            int rc = redis_url_parse(urls[i], &u, err, sizeof(err));
            ps_alloc_fail_after(-1);
            if (rc == 0) {
                redis_url_free(&u);
                continue;
            }
            assert_true(err[0] != '\0');
            assert_null(u.host);
            assert_null(u.password);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_form),
        cmocka_unit_test(test_defaults_when_omitted),
        cmocka_unit_test(test_db_numbers),
        cmocka_unit_test(test_password_only),
        cmocka_unit_test(test_user_and_password),
        cmocka_unit_test(test_percent_escapes),
        cmocka_unit_test(test_unescaped_at_in_password),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_never_show_the_password),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests_name("redis_url", tests, NULL, NULL);
}
