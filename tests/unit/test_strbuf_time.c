/* test_strbuf_time.c - the small helpers: strbuf growth, JSON escaping,
 * allocation failure latching, number and duration parsing, backoff bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alloc.h"
#include "strbuf.h"
#include "timeutil.h"

#include <string.h>

static void test_strbuf_grows_and_escapes(void **state) {
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < 1000; i++)
        strbuf_printf(&sb, "%d,", i);
    assert_int_equal(sb.len, strlen(sb.buf));
    strbuf_reset(&sb);
    strbuf_json_escape(&sb, "a\"b\\c\n\x01", 7);
    assert_string_equal(sb.buf, "a\\\"b\\\\c\\n\\u0001");
    char *p = strbuf_detach(&sb);
    assert_string_equal(p, "a\\\"b\\\\c\\n\\u0001");
    assert_null(sb.buf);
    ps_free(p);
    strbuf_free(&sb);
    strbuf_free(NULL);
}

static void test_strbuf_latches_oom(void **state) {
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    ps_alloc_fail_after(0);
    strbuf_puts(&sb, "hello");
    ps_alloc_fail_after(-1);
    strbuf_puts(&sb, "world");
    assert_true(sb.oom);
    assert_null(strbuf_detach(&sb));
}

static void test_numbers_and_durations(void **state) {
    (void)state;
    long v;
    assert_true(str_to_long("42", &v) && v == 42);
    assert_false(str_to_long("", &v));
    assert_false(str_to_long("4x", &v));
    assert_false(str_to_long("99999999999999999999999", &v));
    assert_true(duration_parse("30d", &v) && v == 30L * 86400);
    assert_true(duration_parse("90m", &v) && v == 5400);
    assert_true(duration_parse("12h", &v) && v == 43200);
    assert_true(duration_parse("15", &v) && v == 15);
    assert_false(duration_parse("0", &v));
    assert_false(duration_parse("-1d", &v));
    assert_false(duration_parse("1w", &v));
    assert_false(duration_parse("1dd", &v));
    assert_false(duration_parse("99999999999999999d", &v));
}

static void test_backoff_is_bounded(void **state) {
    (void)state;
    for (unsigned a = 0; a < 64; a++) {
        long ms = backoff_ms(a, 5000);
        assert_true(ms >= 80 && ms <= 6000);
    }
    assert_true(backoff_ms(0, 5000) <= 120);
}

static void test_hex_and_copy(void **state) {
    (void)state;
    unsigned char in[] = {0x00, 0xab, 0xff};
    char out[7], small[4];
    hex_encode(in, 3, out);
    assert_string_equal(out, "00abff");
    assert_int_equal(str_copy(small, "abcdef", sizeof(small)), 6);
    assert_string_equal(small, "abc");
    assert_true(str_starts_with("evt_123", "evt_"));
    assert_false(str_starts_with("ev", "evt_"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_grows_and_escapes),
        cmocka_unit_test(test_strbuf_latches_oom),
        cmocka_unit_test(test_numbers_and_durations),
        cmocka_unit_test(test_backoff_is_bounded),
        cmocka_unit_test(test_hex_and_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
