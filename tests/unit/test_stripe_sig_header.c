/* test_stripe_sig_header.c - the Stripe-Signature header and the signed bytes,
 * at their edges, for common/stripe_sig.c.
 *
 * Why this file: the parser's limits and choices beyond what the SDKs test
 * (blanks, duplicates, hex case and length, item and size caps, timestamps,
 * tolerance) and what exactly is signed (empty bodies, NULs), then sig_sign()
 * against known-answer vectors computed outside this code with
 * `openssl dgst -sha256 -hmac`. Time is fixed (NOW) instead of the clock.
 * Shared helpers: stripe_sig_vectors.h. */

#include "stripe_sig_vectors.h"

/* ------------------------------------------------------- our own edge cases */

static void test_empty_body(void **state) {
    (void)state;
    char h[SIG_HEADER_LEN];
    sig_secrets s = secrets_of(SECRET);
    assert_int_equal(sig_sign(SECRET, NOW, NULL, 0, h, sizeof(h)), 0);
    assert_int_equal(sig_verify(h, NULL, 0, &s, 300, NOW, NULL), SIG_OK);
    assert_int_equal(sig_verify(h, "", 0, &s, 300, NOW, NULL), SIG_OK);
    assert_int_equal(sig_verify(h, "x", 1, &s, 300, NOW, NULL), SIG_NO_MATCH);
    sig_secrets_free(&s);
}

/* Every byte up to body_len is signed, also past a NUL. */
static void test_body_with_nul_byte(void **state) {
    (void)state;
    const char body[] = "{\"a\":1}\0tail", other[] = "{\"a\":1}\0TAIL";
    char h[SIG_HEADER_LEN];
    sig_secrets s = secrets_of(SECRET);
    assert_int_equal(sig_sign(SECRET, NOW, body, sizeof(body) - 1, h, sizeof(h)), 0);
    assert_int_equal(sig_verify(h, body, sizeof(body) - 1, &s, 300, NOW, NULL), SIG_OK);
    assert_int_equal(sig_verify(h, other, sizeof(other) - 1, &s, 300, NOW, NULL), SIG_NO_MATCH);
    assert_int_equal(sig_verify(h, body, 7, &s, 300, NOW, NULL), SIG_NO_MATCH);
    sig_secrets_free(&s);
}

/* The SDKs but stripe-go compare lower-case hex strings: upper case fails. */
static void test_uppercase_hex_does_not_match(void **state) {
    (void)state;
    char h[HDR_MAX];
    sig_detail d;
    default_header(h, sizeof(h), NOW);
    for (char *p = strstr(h, "v1=") + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    assert_int_equal(verify(h, 300, &d), SIG_NO_MATCH);
    assert_int_equal(d.n_v1_malformed, 1);
}

static void test_v1_of_wrong_length(void **state) {
    (void)state;
    char h[HDR_SRC], cut[HDR_MAX];
    default_header(h, sizeof(h), NOW);
    snprintf(cut, sizeof(cut), "%.*s", (int)strlen(h) - 1, h); /* 63 digits */
    assert_int_equal(verify(cut, 300, NULL), SIG_NO_MATCH);
    snprintf(cut, sizeof(cut), "%s0", h); /* 65 digits */
    assert_int_equal(verify(cut, 300, NULL), SIG_NO_MATCH);
    snprintf(cut, sizeof(cut), "%s,v1=", h); /* an empty v1 next to a good one */
    assert_int_equal(verify(cut, 300, NULL), SIG_OK);
}

/* Duplicated t=: the first wins (python, ruby, php, java, .NET). */
static void test_duplicated_timestamp_first_wins(void **state) {
    (void)state;
    char h[HDR_SRC], dup[HDR_MAX];
    default_header(h, sizeof(h), NOW);
    snprintf(dup, sizeof(dup), "t=%lld,%s", (long long)NOW - 1, h);
    assert_int_equal(verify(dup, 300, NULL), SIG_NO_MATCH);
    snprintf(dup, sizeof(dup), "%s,t=%lld", h, (long long)NOW - 1);
    assert_int_equal(verify(dup, 300, NULL), SIG_OK);
    snprintf(dup, sizeof(dup), "%s,t=junk", h); /* a later t= is not even parsed */
    assert_int_equal(verify(dup, 300, NULL), SIG_OK);
}

/* Blanks around items are trimmed (ruby, .NET); not around '='. */
static void test_whitespace(void **state) {
    (void)state;
    char h[HDR_SRC], ws[HDR_MAX];
    default_header(h, sizeof(h), NOW);
    char *comma = strchr(h, ',');
    *comma = '\0';
    snprintf(ws, sizeof(ws), " \t%s , %s\t ", h, comma + 1);
    assert_int_equal(verify(ws, 300, NULL), SIG_OK);
    snprintf(ws, sizeof(ws), "t= %lld,%s", (long long)NOW, comma + 1);
    assert_int_equal(verify(ws, 300, NULL), SIG_BAD_HEADER);
    snprintf(ws, sizeof(ws), "%s,v1 =%s", h, comma + 4);
    assert_int_equal(verify(ws, 300, NULL), SIG_NO_V1); /* "v1 " is an unknown scheme */
    assert_int_equal(verify(" \t ", 300, NULL), SIG_NO_HEADER);
    assert_int_equal(verify(",,,", 300, NULL), SIG_NO_HEADER);
    snprintf(ws, sizeof(ws), "%s,%s,", h, comma + 1); /* trailing comma */
    assert_int_equal(verify(ws, 300, NULL), SIG_OK);
}

/* A header of exactly SIG_MAX_HEADER bytes is read; one more byte is not. */
static void test_huge_header(void **state) {
    (void)state;
    static char h[SIG_MAX_HEADER + 2];
    default_header(h, sizeof(h), NOW);
    size_t n = strlen(h);
    memcpy(h + n, ",x=", 3);
    memset(h + n + 3, 'a', SIG_MAX_HEADER - n - 3);
    h[SIG_MAX_HEADER] = '\0';
    assert_int_equal(verify(h, 300, NULL), SIG_OK);
    h[SIG_MAX_HEADER] = 'a';
    h[SIG_MAX_HEADER + 1] = '\0';
    sig_detail d;
    assert_int_equal(verify(h, 300, &d), SIG_BAD_HEADER);
    assert_non_null(strstr(d.problem, "8192"));
}

static void test_too_many_items(void **state) {
    (void)state;
    char h[HDR_MAX];
    default_header(h, sizeof(h), NOW);
    for (int i = 2; i < SIG_MAX_ITEMS; i++)
        strcat(h, ",v0=x");
    assert_int_equal(verify(h, 300, NULL), SIG_OK);
    strcat(h, ",v0=x");
    assert_int_equal(verify(h, 300, NULL), SIG_BAD_HEADER);
}

static void test_bad_timestamps(void **state) {
    (void)state;
    static const char *const bad[] = {"t=-5,v1=00", "t=+5,v1=00", "t=5s,v1=00", "t=0x10,v1=00",
                                      "t=1234567890123456789,v1=00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(verify(bad[i], 300, NULL), SIG_BAD_HEADER);
    assert_int_equal(verify("v1=00", 300, NULL), SIG_NO_TIMESTAMP);
    assert_string_equal(sig_result_code(SIG_NO_TIMESTAMP), "unparseable_header");
}

/* Like the SDKs, the timestamp is signed as re-printed from its integer. */
static void test_leading_zeros_are_normalised(void **state) {
    (void)state;
    char h[HDR_SRC], zeros[HDR_MAX];
    default_header(h, sizeof(h), 12345);
    snprintf(zeros, sizeof(zeros), "t=00%s", h + 2);
    assert_int_equal(verify(zeros, 0, NULL), SIG_OK);
}

static void test_tolerance_zero_or_negative_skips_age(void **state) {
    (void)state;
    char h[HDR_MAX];
    default_header(h, sizeof(h), 0);
    assert_int_equal(verify_with(h, PAYLOAD, SECRET, 0, INT64_MAX, NULL), SIG_OK);
    assert_int_equal(verify_with(h, PAYLOAD, SECRET, -1, NOW, NULL), SIG_OK);
    sig_detail d;
    assert_int_equal(verify_with(h, PAYLOAD, SECRET, 300, INT64_MAX, &d), SIG_TOO_OLD);
    assert_int_equal(d.age, INT64_MAX);
    assert_int_equal(verify_with(h, PAYLOAD, SECRET, 300, INT64_MIN, &d), SIG_OK);
}

static void test_sign_errors(void **state) {
    (void)state;
    char out[SIG_HEADER_LEN];
    assert_int_equal(sig_sign(SECRET, NOW, "x", 1, out, 20), -1); /* too small */
    assert_int_equal(sig_sign("", NOW, "x", 1, out, sizeof(out)), -1);
    assert_int_equal(sig_sign(NULL, NOW, "x", 1, out, sizeof(out)), -1);
    assert_int_equal(sig_sign(SECRET, -1, "x", 1, out, sizeof(out)), -1);
    assert_int_equal(sig_sign(SECRET, INT64_MAX, "x", 1, out, sizeof(out)), 0);
    assert_true(strlen(out) < SIG_HEADER_LEN);
}

/* ------------------------------------------------------- known answers
 * Each v1 below was computed outside this code, e.g.
 *   printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test_secret */

static void check_known_answer(int64_t t, const char *body, size_t len, const char *secret,
                               const char *hex) {
    char want[SIG_HEADER_LEN], got[SIG_HEADER_LEN];
    snprintf(want, sizeof(want), "t=%lld,v1=%s", (long long)t, hex);
    assert_int_equal(sig_sign(secret, t, body, len, got, sizeof(got)), 0);
    assert_string_equal(got, want);
    sig_secrets s = secrets_of(secret);
    assert_int_equal(sig_verify(want, body, len, &s, 300, t + 1, NULL), SIG_OK);
    sig_secrets_free(&s);
}

static void test_known_answer_json(void **state) {
    (void)state;
    const char body[] = "{\"id\":\"evt_kat_1\",\"object\":\"event\",\"type\":\"invoice.paid\"}";
    check_known_answer(1700000000, body, sizeof(body) - 1, SECRET,
                       "ed0ddecb51b2493e23bae0c50807c7f4a265b408e2fdc493a1d59018a8566fa5");
}

/* Body with unicode: "Crème brûlée — 5 crédits ✓ 🎬" in UTF-8. */
static void test_known_answer_unicode_body(void **state) {
    (void)state;
    const char body[] = "{\"id\":\"evt_kat_2\",\"description\":\"Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                        "e \xe2\x80\x94 5 cr\xc3\xa9"
                        "dits \xe2\x9c\x93 \xf0\x9f\x8e\xac\"}";
    check_known_answer(1700000001, body, sizeof(body) - 1, SECRET,
                       "caf8bfaf3cab1d2919a26f4bae36906d19df6c5c8be4f6287b84e6d06dce3a88");
}

static void test_known_answer_nul_and_empty(void **state) {
    (void)state;
    check_known_answer(1700000002, "a\0b", 3, SECRET,
                       "2098ed46aca43e9a275c9cadb4272aa194166d6ec7c42915ccf5e86c23c5a042");
    check_known_answer(1700000003, "", 0, SECRET,
                       "0eb3b8348729bdcbd0bb94a07776c2250afc9f8161d400e2d5170e3f486f92be");
}

int main(void) {
    const struct CMUnitTest edges[] = {
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_body_with_nul_byte),
        cmocka_unit_test(test_uppercase_hex_does_not_match),
        cmocka_unit_test(test_v1_of_wrong_length),
        cmocka_unit_test(test_duplicated_timestamp_first_wins),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_huge_header),
        cmocka_unit_test(test_too_many_items),
        cmocka_unit_test(test_bad_timestamps),
        cmocka_unit_test(test_leading_zeros_are_normalised),
        cmocka_unit_test(test_tolerance_zero_or_negative_skips_age),
        cmocka_unit_test(test_sign_errors),
    };
    const struct CMUnitTest known[] = {
        cmocka_unit_test(test_known_answer_json),
        cmocka_unit_test(test_known_answer_unicode_body),
        cmocka_unit_test(test_known_answer_nul_and_empty),
    };
    int failed =
        cmocka_run_group_tests_name("stripe_sig: header and body edge cases", edges, NULL, NULL);
    failed += cmocka_run_group_tests_name("stripe_sig: known answers", known, NULL, NULL);
    return failed ? 1 : 0;
}
