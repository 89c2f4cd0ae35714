/* test_stripe_sig_secrets.c - webhook secrets and what an operator is told,
 * for common/stripe_sig.c.
 *
 * Why this file: secret lists are configuration (STRIPE_WEBHOOK_SECRET, a
 * secret file) and carry rotation, so their parsing, warnings, limits, memory
 * failures and reused HMAC contexts are tested here, with the result codes
 * and explanations that must never show a secret. Time is fixed (NOW).
 * Shared helpers: stripe_sig_vectors.h. */

#include "stripe_sig_vectors.h"
#include "common/alloc.h"

/* Rotation: the 16th secret of 16 matches; a 17th is refused by the parser. */
static void test_many_secrets(void **state) {
    (void)state;
    char list[2048] = "", h[HDR_MAX], err[160];
    sig_detail d;
    sig_secrets s;
    for (int i = 0; i < SIG_MAX_SECRETS - 1; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "whsec_old_%d,\n", i);
    strcat(list, SECRET);
    default_header(h, sizeof(h), NOW);
    assert_int_equal(verify_with(h, PAYLOAD, list, 300, NOW, &d), SIG_OK);
    assert_int_equal(d.n_secrets, SIG_MAX_SECRETS);
    assert_int_equal(d.matched_secret, SIG_MAX_SECRETS - 1);
    strcat(list, ",whsec_one_too_many");
    assert_int_equal(sig_secrets_parse(list, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 16"));
    assert_int_equal(s.count, 0);
}

/* With the same secret twice, the first is reported. */
static void test_first_matching_secret_reported(void **state) {
    (void)state;
    char h[HDR_MAX];
    sig_detail d;
    default_header(h, sizeof(h), NOW);
    assert_int_equal(verify_with(h, PAYLOAD, "whsec_x," SECRET "," SECRET, 300, NOW, &d), SIG_OK);
    assert_int_equal(d.matched_secret, 1);
}

static void test_no_secret(void **state) {
    (void)state;
    char h[HDR_MAX];
    sig_secrets none = {0};
    default_header(h, sizeof(h), NOW);
    assert_int_equal(sig_verify(h, PAYLOAD, strlen(PAYLOAD), &none, 300, NOW, NULL), SIG_NO_SECRET);
    assert_int_equal(sig_verify(h, PAYLOAD, strlen(PAYLOAD), NULL, 300, NOW, NULL), SIG_NO_SECRET);
}

static void test_secrets_parse(void **state) {
    (void)state;
    sig_secrets s;
    char err[160];
    assert_int_equal(sig_secrets_parse(" whsec_a , whsec_b\nwhsec_c\r\n,\n", &s, err, sizeof(err)),
                     0);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.secret[0], "whsec_a");
    assert_string_equal(s.secret[1], "whsec_b");
    assert_string_equal(s.secret[2], "whsec_c");
    sig_secrets_free(&s);
    sig_secrets_free(&s); /* a freed list may be freed again */
    sig_secrets_free(NULL);
    assert_int_equal(sig_secrets_parse(" ,\n, ", &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no webhook secret"));
    assert_int_equal(sig_secrets_parse(NULL, &s, err, sizeof(err)), -1);
}

/* Errors name a secret by position only, never by content. */
static void test_secrets_parse_too_long(void **state) {
    (void)state;
    static char list[SIG_MAX_SECRET + 32];
    sig_secrets s;
    char err[160];
    snprintf(list, sizeof(list), "whsec_ok,whsec_");
    memset(list + strlen(list), 'Q', SIG_MAX_SECRET);
    assert_int_equal(sig_secrets_parse(list, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "#2"));
    assert_null(strstr(err, "whsec_"));
    assert_null(strstr(err, "QQ"));
    assert_int_equal(s.count, 0);
}

static void test_secrets_check(void **state) {
    (void)state;
    char warn[200];
    sig_secrets s = secrets_of("whsec_good,sk_test_oops,whsec_good");
    assert_int_equal(sig_secrets_check(&s, warn, sizeof(warn)), 2);
    assert_non_null(strstr(warn, "secret #2 does not start with whsec_"));
    assert_null(strstr(warn, "sk_test"));
    sig_secrets_free(&s);
    s = secrets_of("whsec_a,whsec_a");
    assert_int_equal(sig_secrets_check(&s, warn, sizeof(warn)), 1);
    assert_string_equal(warn, "webhook secret #2 is the same as secret #1");
    sig_secrets_free(&s);
    s = secrets_of(SECRET);
    assert_int_equal(sig_secrets_check(&s, warn, sizeof(warn)), 0);
    assert_string_equal(warn, "");
    sig_secrets_free(&s);
}

/* ps_alloc_fail_after: the first or second copy fails, nothing leaks (ASan). */
static void test_secrets_parse_out_of_memory(void **state) {
    (void)state;
    sig_secrets s;
    char err[160];
    for (long n = 0; n < 2; n++) {
        ps_alloc_fail_after(n);
        int rc = sig_secrets_parse("whsec_a,whsec_b", &s, err, sizeof(err));
        ps_alloc_fail_after(-1);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "out of memory"));
        assert_int_equal(s.count, 0);
    }
}

static void test_result_codes_are_stable(void **state) {
    (void)state;
    assert_string_equal(sig_result_code(SIG_OK), "ok");
    assert_string_equal(sig_result_code(SIG_NO_HEADER), "missing_header");
    assert_string_equal(sig_result_code(SIG_BAD_HEADER), "unparseable_header");
    assert_string_equal(sig_result_code(SIG_NO_TIMESTAMP), "unparseable_header");
    assert_string_equal(sig_result_code(SIG_NO_V1), "no_v1_signature");
    assert_string_equal(sig_result_code(SIG_NO_MATCH), "no_matching_signature");
    assert_string_equal(sig_result_code(SIG_TOO_OLD), "timestamp_outside_tolerance");
    assert_string_equal(sig_result_code(SIG_NO_SECRET), "no_secret");
    assert_string_equal(sig_result_code((sig_result)99), "unknown");
}

static void test_explain_too_old(void **state) {
    (void)state;
    char h[HDR_MAX], msg[256];
    sig_detail d;
    default_header(h, sizeof(h), NOW - (2 * 3600 + 3 * 60 + 7));
    assert_int_equal(verify(h, 300, &d), SIG_TOO_OLD);
    sig_explain(SIG_TOO_OLD, &d, msg, sizeof(msg));
    assert_non_null(strstr(msg, "signed 2h 3m ago (tolerance 300 s): clock skew or a replayed"));
}

static void test_explain_no_match(void **state) {
    (void)state;
    char h[HDR_MAX], msg[512];
    sig_detail d;
    make_header(h, sizeof(h), NOW, "v1", NULL, "whsec_live_secret", PAYLOAD);
    assert_int_equal(verify_with(h, PAYLOAD, SECRET ",whsec_2", 300, NOW, &d), SIG_NO_MATCH);
    sig_explain(SIG_NO_MATCH, &d, msg, sizeof(msg));
    assert_non_null(strstr(msg, "no secret matches (2 secrets tried against 1 v1 signature)"));
    assert_non_null(strstr(msg, "test/live secret mix-up"));
    assert_null(strstr(msg, "whsec_"));
}

/* Every sentence fits a small buffer safely, with or without detail, and
 * none contains the secret. */
static void test_explain_all_results(void **state) {
    (void)state;
    char h[HDR_MAX], msg[512], tiny[8];
    sig_detail d;
    default_header(h, sizeof(h), NOW);
    assert_int_equal(verify(h, 300, &d), SIG_OK);
    for (int r = SIG_OK; r <= SIG_NO_SECRET + 1; r++) {
        sig_explain((sig_result)r, &d, msg, sizeof(msg));
        assert_true(strlen(msg) > 10);
        assert_null(strstr(msg, SECRET));
        sig_explain((sig_result)r, NULL, msg, sizeof(msg));
        assert_true(strlen(msg) > 10);
        sig_explain((sig_result)r, &d, tiny, sizeof(tiny));
        assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    }
    sig_explain(SIG_OK, &d, msg, 0); /* no write at all */
    sig_explain(SIG_OK, &d, msg, sizeof(msg));
    assert_string_equal(msg, "valid: signed by secret #1 of 1, 0 s ago");
}

/* One list verifies many requests: each starts from the keyed state, so an
 * earlier request (good, forged, other t, other body) leaves no trace. A
 * list built by hand, without prepared contexts, gives the same answers. */
static void test_prepared_contexts_are_reused(void **state) {
    (void)state;
    sig_secrets s = secrets_of("whsec_other, " SECRET);
    char good[HDR_MAX], old[HDR_MAX];
    default_header(good, sizeof(good), NOW);
    make_header(old, sizeof(old), NOW - 5, "v1", NULL, SECRET, "{}");
    assert_non_null(s.mac[0]);
    assert_non_null(s.mac[1]);
    for (int round = 0; round < 3; round++) {
        sig_detail d;
        assert_int_equal(sig_verify(good, PAYLOAD, strlen(PAYLOAD), &s, 300, NOW, &d), SIG_OK);
        assert_int_equal(d.matched_secret, 1);
        assert_int_equal(sig_verify(good, "{}", 2, &s, 300, NOW, NULL), SIG_NO_MATCH);
        assert_int_equal(sig_verify(old, "{}", 2, &s, 300, NOW, NULL), SIG_OK);
        assert_int_equal(sig_verify(old, PAYLOAD, strlen(PAYLOAD), &s, 300, NOW, NULL),
                         SIG_NO_MATCH);
    }
    sig_secrets by_hand = {.count = 2, .secret = {s.secret[0], s.secret[1]}};
    assert_int_equal(sig_verify(good, PAYLOAD, strlen(PAYLOAD), &by_hand, 300, NOW, NULL), SIG_OK);
    assert_int_equal(sig_verify(old, PAYLOAD, strlen(PAYLOAD), &by_hand, 300, NOW, NULL),
                     SIG_NO_MATCH);
    sig_secrets_free(&s);
    assert_null(s.mac[0]);
}

int main(void) {
    const struct CMUnitTest cases[] = {
        cmocka_unit_test(test_many_secrets),
        cmocka_unit_test(test_first_matching_secret_reported),
        cmocka_unit_test(test_no_secret),
        cmocka_unit_test(test_secrets_parse),
        cmocka_unit_test(test_secrets_parse_too_long),
        cmocka_unit_test(test_secrets_check),
        cmocka_unit_test(test_secrets_parse_out_of_memory),
        cmocka_unit_test(test_result_codes_are_stable),
        cmocka_unit_test(test_explain_too_old),
        cmocka_unit_test(test_explain_no_match),
        cmocka_unit_test(test_explain_all_results),
        cmocka_unit_test(test_prepared_contexts_are_reused),
    };
    int failed =
        cmocka_run_group_tests_name("stripe_sig: secrets and explanations", cases, NULL, NULL);
    return failed ? 1 : 0;
}
