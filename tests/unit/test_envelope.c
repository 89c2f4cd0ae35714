/* test_envelope.c - unit tests for common/envelope.c: the fields a real
 * Stripe event has, every way a body can fail to be one (each with its
 * machine code), bodies that are not NUL-terminated or hold NUL bytes, and
 * allocation failure at every step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/envelope.h"

static envelope_result parse(const char *body, envelope *e) {
    char detail[256];
    return envelope_parse(body, strlen(body), e, detail, sizeof(detail));
}

static void expect(const char *body, envelope_result want, const char *code) {
    envelope e;
    envelope_result r = parse(body, &e);
    if (r != want) fail_msg("%s: got %s, want %s", body, envelope_result_code(r), code);
    assert_string_equal(envelope_result_code(r), code);
    assert_null(e.id); /* zeroed on failure */
    assert_null(e.type);
    assert_null(e.api_version);
}

static void test_full_event(void **state) {
    (void)state;
    envelope e;
    const char *body =
        "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\","
        "\"api_version\":\"2025-03-31.basil\",\"created\":1686089970,"
        "\"data\":{\"object\":{\"id\":\"cs_test_1\",\"object\":\"checkout.session\"}},"
        "\"livemode\":true,\"pending_webhooks\":1,"
        "\"type\":\"checkout.session.completed\"}";
    assert_int_equal(parse(body, &e), ENV_OK);
    assert_string_equal(e.id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    assert_string_equal(e.type, "checkout.session.completed");
    assert_string_equal(e.api_version, "2025-03-31.basil");
    assert_true(e.livemode);
    assert_true(e.has_livemode);
    assert_int_equal(e.created, 1686089970);
    envelope_free(&e);
    assert_null(e.id);
    envelope_free(&e); /* twice is fine */
    envelope_free(NULL);
}

static void test_minimal_event(void **state) {
    (void)state;
    envelope e;
    assert_int_equal(parse("{\"type\":\"x\",\"id\":\"evt_1\",\"api_version\":null}", &e), ENV_OK);
    assert_string_equal(e.id, "evt_1");
    assert_null(e.api_version);
    assert_false(e.has_livemode);
    assert_false(e.livemode);
    assert_int_equal(e.created, 0);
    envelope_free(&e);
}

static void test_not_json(void **state) {
    (void)state;
    expect("", ENV_NOT_JSON, "invalid_json");
    expect("not json", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\"", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\"} trailing", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"id\":\"evt_2\"}", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"k\":\"\\u0000\"}", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"\xff\xfe\"}", ENV_NOT_JSON, "invalid_json");
}

static void test_not_object(void **state) {
    (void)state;
    expect("[]", ENV_NOT_OBJECT, "not_an_object");
    expect("\"evt_1\"", ENV_NOT_OBJECT, "not_an_object");
    expect("42", ENV_NOT_OBJECT, "not_an_object");
    expect("null", ENV_NOT_OBJECT, "not_an_object");
}

static void test_bad_id(void **state) {
    (void)state;
    expect("{\"type\":\"x\"}", ENV_NO_ID, "missing_id");
    expect("{\"id\":null,\"type\":\"x\"}", ENV_NO_ID, "missing_id");
    expect("{\"id\":\"\",\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":\"evt_\",\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":\"cs_123\",\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":\"EVT_123\",\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":123,\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":[\"evt_1\"],\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":\"evt_1\\n2\",\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"data\":{\"id\":\"evt_1\"},\"type\":\"x\"}", ENV_NO_ID, "missing_id");
}

static void test_bad_type(void **state) {
    (void)state;
    expect("{\"id\":\"evt_1\"}", ENV_NO_TYPE, "missing_type");
    expect("{\"id\":\"evt_1\",\"type\":null}", ENV_NO_TYPE, "missing_type");
    expect("{\"id\":\"evt_1\",\"type\":\"\"}", ENV_BAD_TYPE, "invalid_type");
    expect("{\"id\":\"evt_1\",\"type\":true}", ENV_BAD_TYPE, "invalid_type");
    expect("{\"id\":\"evt_1\",\"type\":\"a\\tb\"}", ENV_BAD_TYPE, "invalid_type");
}

static void test_bad_optional_fields(void **state) {
    (void)state;
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"livemode\":\"true\"}", ENV_BAD_FIELD,
           "invalid_envelope");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":\"1686089970\"}", ENV_BAD_FIELD,
           "invalid_envelope");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1.5}", ENV_BAD_FIELD, "invalid_envelope");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"api_version\":20250331}", ENV_BAD_FIELD,
           "invalid_envelope");
}

static void test_field_length_limit(void **state) {
    (void)state;
    char body[1024], id[ENVELOPE_MAX_FIELD + 2];
    envelope e;
    memset(id, 'a', sizeof(id));
    memcpy(id, "evt_", 4);
    id[ENVELOPE_MAX_FIELD] = '\0'; /* exactly the limit */
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"type\":\"x\"}", id);
    assert_int_equal(parse(body, &e), ENV_OK);
    assert_int_equal(strlen(e.id), ENVELOPE_MAX_FIELD);
    envelope_free(&e);
    id[ENVELOPE_MAX_FIELD] = 'a'; /* one more */
    id[ENVELOPE_MAX_FIELD + 1] = '\0';
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"type\":\"x\"}", id);
    expect(body, ENV_BAD_ID, "invalid_id");
}

/* The body is a byte range: no NUL terminator needed, bytes past len unread. */
static void test_not_nul_terminated(void **state) {
    (void)state;
    const char buf[] = "{\"id\":\"evt_1\",\"type\":\"x\"}GARBAGE";
    envelope e;
    size_t len = strlen("{\"id\":\"evt_1\",\"type\":\"x\"}");
    assert_int_equal(envelope_parse(buf, len, &e, NULL, 0), ENV_OK);
    assert_string_equal(e.type, "x");
    envelope_free(&e);
    const char nul[] = "{\"id\":\"evt_1\",\"type\":\"x\"}\0{}";
    assert_int_equal(envelope_parse(nul, sizeof(nul) - 1, &e, NULL, 0), ENV_NOT_JSON);
}

static void test_deep_nesting_is_bounded(void **state) {
    (void)state;
    enum { DEPTH = 100000 };
    static char body[2 * DEPTH + 64];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"id\":\"evt_1\",\"type\":\"x\",\"d\":");
    memset(body + n, '[', DEPTH);
    memset(body + n + DEPTH, ']', DEPTH);
    body[n + 2 * DEPTH] = '}';
    envelope e;
    assert_int_equal(envelope_parse(body, n + 2 * DEPTH + 1, &e, NULL, 0), ENV_NOT_JSON);
}

static void test_detail_names_the_problem(void **state) {
    (void)state;
    char detail[256];
    envelope e;
    const char *body = "{\"id\":\"cs_1\",\"type\":\"x\"}";
    envelope_parse(body, strlen(body), &e, detail, sizeof(detail));
    assert_non_null(strstr(detail, "\"id\""));
    body = "{oops";
    envelope_parse(body, strlen(body), &e, detail, sizeof(detail));
    assert_non_null(strstr(detail, "not JSON"));
}

static void test_out_of_memory(void **state) {
    (void)state;
    const char *body = "{\"id\":\"evt_1\",\"type\":\"x\",\"api_version\":\"2024-06-20\"}";
    for (long n = 0; n < 3; n++) {
        envelope e;
        ps_alloc_fail_after(n);
        envelope_result r = envelope_parse(body, strlen(body), &e, NULL, 0);
        ps_alloc_fail_after(-1);
        assert_int_equal(r, ENV_OOM);
        assert_null(e.id);
        assert_null(e.type);
    }
}

static void test_codes_are_stable(void **state) {
    (void)state;
    assert_string_equal(envelope_result_code(ENV_OK), "ok");
    assert_string_equal(envelope_result_code(ENV_OOM), "out_of_memory");
    assert_string_equal(envelope_result_code((envelope_result)99), "invalid_envelope");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_event),
        cmocka_unit_test(test_minimal_event),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_bad_id),
        cmocka_unit_test(test_bad_type),
        cmocka_unit_test(test_bad_optional_fields),
        cmocka_unit_test(test_field_length_limit),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_deep_nesting_is_bounded),
        cmocka_unit_test(test_detail_names_the_problem),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_codes_are_stable),
    };
    return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
