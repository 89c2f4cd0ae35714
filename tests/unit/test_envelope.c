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
#include "tests/fuzz/envelope_ref.h"

static envelope_result parse(const char *body, envelope *e) {
    char detail[256];
    return envelope_parse(body, strlen(body), e, detail, sizeof(detail));
}

static void expect(const char *body, envelope_result want, const char *code) {
    envelope e;
    envelope_result r = parse(body, &e);
    if (r != want) fail_msg("%s: got %s, want %s", body, envelope_result_code(r), code);
    assert_string_equal(envelope_result_code(r), code);
    assert_string_equal(e.id, ""); /* zeroed on failure */
    assert_string_equal(e.type, "");
    assert_string_equal(e.api_version, "");
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
}

static void test_minimal_event(void **state) {
    (void)state;
    envelope e;
    assert_int_equal(parse("{\"type\":\"x\",\"id\":\"evt_1\",\"api_version\":null}", &e), ENV_OK);
    assert_string_equal(e.id, "evt_1");
    assert_string_equal(e.api_version, ""); /* null reads as absent */
    assert_false(e.has_livemode);
    assert_false(e.livemode);
    assert_int_equal(e.created, 0);
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

static void expect_ok(const char *body, const char *id, const char *type) {
    envelope e;
    char detail[256];
    envelope_result r = envelope_parse(body, strlen(body), &e, detail, sizeof(detail));
    if (r != ENV_OK) fail_msg("%s: got %s (%s)", body, envelope_result_code(r), detail);
    assert_string_equal(e.id, id);
    assert_string_equal(e.type, type);
}

/* Escapes in the values read are decoded, in keys too. */
static void test_escapes_decoded(void **state) {
    (void)state;
    envelope e;
    expect_ok("{\"id\":\"evt_\\u0031\\/2\",\"type\":\"a\\\"b\\\\c\"}", "evt_1/2", "a\"b\\c");
    expect_ok("{\"\\u0069d\":\"\\u0065vt_1\",\"t\\u0079pe\":\"x\"}", "evt_1", "x");
    expect_ok("{\"id\":\"evt_\\u00e9\\u20ac\\ud83d\\ude00\",\"type\":\"x\"}",
              "evt_\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "x");
    expect_ok("{\"id\":\"evt_\xc3\xa9\xf0\x9f\x98\x80\",\"type\":\"\xe2\x82\xac\"}",
              "evt_\xc3\xa9\xf0\x9f\x98\x80", "\xe2\x82\xac");
    expect_ok("{\"id\":\"evt_\\uD83D\\uDE00\",\"type\":\"x\"}", "evt_\xf0\x9f\x98\x80", "x");
    const char *body =
        "{\"id\":\"evt_1\",\"type\":\"x\",\"api_version\":\"2024\\u002d06\\u002d20\"}";
    assert_int_equal(parse(body, &e), ENV_OK);
    assert_string_equal(e.api_version, "2024-06-20");
    /* an escaped control character is still one */
    expect("{\"id\":\"evt_1\\u0007\",\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":\"evt_1\",\"type\":\"\\u001f\"}", ENV_BAD_TYPE, "invalid_type");
    expect("{\"id\":\"evt_1\",\"type\":\"\x7f\"}", ENV_BAD_TYPE, "invalid_type");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"api_version\":\"a\\tb\"}", ENV_BAD_FIELD,
           "invalid_envelope");
}

/* Only the top-level object's members count: nested ones are decoys. */
static void test_nested_decoys(void **state) {
    (void)state;
    envelope e;
    expect_ok("{\"data\":{\"object\":{\"id\":\"evt_bad\",\"type\":\"bad\"}},\"id\":\"evt_good\","
              "\"type\":\"good\"}",
              "evt_good", "good");
    expect_ok("{\"id\":\"evt_good\",\"a\":[{\"id\":\"evt_bad\"},[\"id\",\"type\"]],"
              "\"type\":\"good\",\"b\":{\"type\":\"bad\",\"id\":{\"id\":\"evt_x\"}}}",
              "evt_good", "good");
    expect("{\"a\":{\"id\":\"evt_1\",\"type\":\"x\"}}", ENV_NO_ID, "missing_id");
    expect("[{\"id\":\"evt_1\",\"type\":\"x\"}]", ENV_NOT_OBJECT, "not_an_object");
    /* a value that looks like a key, a key in a string */
    expect_ok("{\"note\":\"\\\"id\\\":\\\"evt_bad\\\"\",\"id\":\"evt_2\",\"type\":\"y\"}", "evt_2",
              "y");
    /* duplicates below the top level are not ours to refuse; nested "id" twice is fine */
    expect_ok("{\"id\":\"evt_3\",\"type\":\"z\",\"d\":{\"id\":1,\"id\":2}}", "evt_3", "z");
    /* other top-level keys twice: left to the worker's jansson */
    expect_ok("{\"id\":\"evt_3\",\"object\":1,\"type\":\"z\",\"object\":2}", "evt_3", "z");
    /* each envelope key twice, even when one of them is null or escaped */
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"type\":\"y\"}", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":null,\"type\":\"x\",\"id\":\"evt_1\"}", ENV_NOT_JSON, "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"\\u0069d\":\"evt_2\"}", ENV_NOT_JSON,
           "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"livemode\":true,\"livemode\":false}", ENV_NOT_JSON,
           "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"created\":{}}", ENV_NOT_JSON,
           "invalid_json");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"api_version\":\"a\",\"api_version\":null}",
           ENV_NOT_JSON, "invalid_json");
    /* a key like an envelope key but not one */
    expect_ok("{\"id\":\"evt_1\",\"type\":\"x\",\"id \":2,\"ID\":3,\"idx\":4,\"i\":5}", "evt_1",
              "x");
    /* containers as envelope values */
    expect("{\"id\":{\"id\":\"evt_1\"},\"type\":\"x\"}", ENV_BAD_ID, "invalid_id");
    expect("{\"id\":\"evt_1\",\"type\":[]}", ENV_BAD_TYPE, "invalid_type");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":[1]}", ENV_BAD_FIELD, "invalid_envelope");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"livemode\":{}}", ENV_BAD_FIELD, "invalid_envelope");
    (void)e;
}

static void test_numbers(void **state) {
    (void)state;
    envelope e;
    const char *ok[] = {"0",
                        "-0",
                        "1",
                        "-1",
                        "1.5",
                        "-0.0",
                        "1e5",
                        "1E+5",
                        "1e-5",
                        "0.1e1",
                        "9223372036854775807",
                        "-9223372036854775808",
                        "1e308",
                        "1.7976931348623157e308",
                        "1e-400",
                        "0e999999999999999999999",
                        "0.000000000000000000000000001e330",
                        "17976931348623157e292"};
    const char *bad[] = {"01",
                         "-",
                         "+1",
                         "1.",
                         ".5",
                         "1e",
                         "1e+",
                         "--1",
                         "0x10",
                         "1.e5",
                         "9223372036854775808",
                         "-9223372036854775809",
                         "99999999999999999999",
                         "1e309",
                         "-1e309",
                         "1.7976931348623159e308",
                         "100000000000000000000e300",
                         "Infinity",
                         "NaN",
                         "-Infinity",
                         "1_000"};
    char body[256];
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
        snprintf(body, sizeof(body), "{\"id\":\"evt_1\",\"type\":\"x\",\"n\":[%s]}", ok[i]);
        if (parse(body, &e) != ENV_OK) fail_msg("%s refused", ok[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        snprintf(body, sizeof(body), "{\"id\":\"evt_1\",\"type\":\"x\",\"n\":[%s]}", bad[i]);
        expect(body, ENV_NOT_JSON, "invalid_json");
    }
    assert_int_equal(
        parse("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":-9223372036854775808}", &e), ENV_OK);
    assert_true(e.created == INT64_MIN);
    assert_int_equal(parse("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":-0}", &e), ENV_OK);
    assert_int_equal(e.created, 0);
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1e9}", ENV_BAD_FIELD, "invalid_envelope");
    expect("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1.0}", ENV_BAD_FIELD, "invalid_envelope");
}

/* Every kind of broken JSON, in and around the envelope. */
static void test_malformed(void **state) {
    (void)state;
    const char *bad[] = {
        "{",
        "}",
        "{\"id\"",
        "{\"id\":",
        "{\"id\":\"evt_1\"",
        "{\"id\":\"evt_1\",",
        "{,}",
        "{\"id\":\"evt_1\",}",
        "{\"id\" \"evt_1\"}",
        "{\"id\"::\"evt_1\"}",
        "{id:\"evt_1\"}",
        "{'id':'evt_1'}",
        "{\"a\":[1,2}",
        "{\"a\":[1,2,]}",
        "{\"a\":[,1]}",
        "{\"a\":{]}",
        "{\"a\":[}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "{\"a\":tru}",
        "{\"a\":truee}",
        "{\"a\":nul}",
        "{\"a\":True}",
        "{\"a\":undefined}",
        "{\"a\":\"b}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12G4\"}",
        "{\"a\":\"\\\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\ud800\\ud800\"}",
        "{\"a\":\"\\ud800\\\"}",
        "{\"a\":\"\\u0000\"}",
        "{\"\\u0000\":1}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"nl\nhere\"}",
        "{\"a\":1}{\"b\":2}",
        "{\"a\":1}]",
        "\xef\xbb\xbf{\"a\":1}",
        "{\"a\":1}\x0c",
        "{\"a\":1,\"b\":/*c*/2}",
        "\v{}",
        "{\"a\":\"\x80\"}",
        "{\"a\":\"\xc3\"}",
        "{\"a\":\"\xc3(\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xc1\xbf\"}",
        "{\"a\":\"\xe0\x80\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xed\xbf\xbf\"}",
        "{\"a\":\"\xf0\x80\x80\xaf\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\xf5\x80\x80\x80\"}",
        "{\"a\":\"\xfe\"}",
        "{\"a\":\"\xe2\x82\"}",
        "{\"\xff\":1}",
        "{\"a\":1,\xff}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        expect(bad[i], ENV_NOT_JSON, "invalid_json");
    /* valid UTF-8 at the edges of each length */
    expect_ok(
        "{\"id\":\"evt_\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"
        "\xed\x9f\xbf\xee\x80\x80\",\"type\":\"x\"}",
        "evt_\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"
        "\xed\x9f\xbf\xee\x80\x80",
        "x");
    expect_ok(" \t\r\n{ \"id\" : \"evt_1\" , \"type\" :\n\"x\" } \r\n\t", "evt_1", "x");
}

/* Every prefix of a valid event is not JSON, and costs nothing to refuse. */
static void test_truncated(void **state) {
    (void)state;
    const char *body =
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":123,\"livemode\":false,"
        "\"data\":{\"object\":{\"a\":[1,2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"]}}}";
    envelope e;
    for (size_t n = 0; n < strlen(body); n++)
        if (envelope_parse(body, n, &e, NULL, 0) != ENV_NOT_JSON)
            fail_msg("prefix %zu accepted", n);
    assert_int_equal(envelope_parse(body, strlen(body), &e, NULL, 0), ENV_OK);
    assert_int_equal(envelope_parse(NULL, 0, &e, NULL, 0), ENV_NOT_JSON);
}

/* jansson's limit, exactly: a value inside 2047 containers is fine, 2048 not. */
static void test_depth_limit(void **state) {
    (void)state;
    static char body[3 * ENVELOPE_MAX_DEPTH + 64];
    envelope e;
    for (int depth = ENVELOPE_MAX_DEPTH - 1; depth <= ENVELOPE_MAX_DEPTH + 1; depth++) {
        /* depth - 1 arrays inside the top-level object, then a scalar or [] */
        size_t n = (size_t)snprintf(body, sizeof(body), "{\"id\":\"evt_1\",\"type\":\"x\",\"d\":");
        memset(body + n, '[', (size_t)depth - 2);
        n += (size_t)depth - 2;
        body[n++] = '1';
        memset(body + n, ']', (size_t)depth - 2);
        n += (size_t)depth - 2;
        body[n++] = '}';
        envelope_result want = depth <= ENVELOPE_MAX_DEPTH ? ENV_OK : ENV_NOT_JSON;
        assert_int_equal(envelope_parse(body, n, &e, NULL, 0), want);
        char why[256];
        if (!ref_agrees(body, n, why, sizeof(why))) fail_msg("depth %d: %s", depth, why);
    }
}

/* One realistic event, mutated every way one byte can go wrong: we agree
 * with jansson on each. */
static void test_differential_mutations(void **state) {
    (void)state;
    static const char base[] =
        "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\",\"api_version\":"
        "\"2025-03-31.basil\",\"created\":1686089970,\"data\":{\"object\":{\"id\":\"cs_test_a1\","
        "\"amount_total\":2000,\"metadata\":{\"user_id\":\"5f0c\\u00e9\",\"x\":null},"
        "\"rate\":-1.25e-3,\"list\":[true,false,{}, [] ,\"\\ud83d\\ude00\\n\"]}},"
        "\"livemode\":false,\"pending_webhooks\":1,\"type\":\"checkout.session.completed\"}";
    static const char repl[] = "\"\\{}[],:0-e.u \x00\xff\xc3\x80\x7f\x1fitnfd";
    char buf[sizeof(base)], why[512];
    size_t n = sizeof(base) - 1;
    int cases = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof(repl) - 1; j++) {
            memcpy(buf, base, n);
            buf[i] = repl[j];
            if (!ref_agrees(buf, n, why, sizeof(why)))
                fail_msg("byte %zu -> 0x%02x: %s", i, (unsigned char)repl[j], why);
            cases++;
        }
        memcpy(buf, base, i); /* byte i deleted */
        memcpy(buf + i, base + i + 1, n - i - 1);
        if (!ref_agrees(buf, n - 1, why, sizeof(why))) fail_msg("byte %zu deleted: %s", i, why);
        cases++;
    }
    assert_true(cases > 8000);
}

/* Hand-picked bodies where a careless parser and jansson would part. */
static void test_differential_corpus(void **state) {
    (void)state;
    const char *bodies[] = {
        "{}",
        "[]",
        "null",
        "1",
        "\"s\"",
        " {} ",
        "{\"id\":\"evt_1\",\"type\":\"x\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"id\":\"evt_1\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"d\":{\"a\":1,\"a\":1}}",
        "{\"id\":\"evt_\\u0000\",\"type\":\"x\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1e2}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":123456789012345678901}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"livemode\":null,\"created\":null,\"api_version\":null}",
        "{\"type\":\"x\",\"id\":\"evt_1\",\"livemode\":true}",
        "{\"id\":\"evt_\\ud834\\udd1e\",\"type\":\"\\u00ff\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"n\":"
        "1797693134862315807937289714053034150799341327100378"
        "26936173778980444968292764750946649017977587207096330286416692887910946555547851940402630"
        "65748867150582068190890200070838367627385484581771153176447573027006985557136695962284291"
        "4819860834936475292719074168444365510704342711559699508093042880177904174497791.0}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"n\":"
        "1797693134862315807937289714053034150799341327100378"
        "26936173778980444968292764750946649017977587207096330286416692887910946555547851940402630"
        "65748867150582068190890200070838367627385484581771153176447573027006985557136695962284291"
        "4819860834936475292719074168444365510704342711559699508093042880177904174497792.0}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"n\":0.00000000000000000000000000000000000000000000000"
        "1797693134862315807937289714053034150799341327100378e357}",
    };
    char why[512];
    for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++)
        if (!ref_agrees(bodies[i], strlen(bodies[i]), why, sizeof(why)))
            fail_msg("%s: %s", bodies[i], why);
}

/* Parsing allocates nothing: it succeeds with every allocation failing. */
static void test_allocates_nothing(void **state) {
    (void)state;
    const char *body = "{\"id\":\"evt_1\",\"type\":\"x\",\"api_version\":\"2024-06-20\"}";
    envelope e;
    ps_alloc_fail_after(0);
    envelope_result r = envelope_parse(body, strlen(body), &e, NULL, 0);
    ps_alloc_fail_after(-1);
    assert_int_equal(r, ENV_OK);
    assert_string_equal(e.api_version, "2024-06-20");
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
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_nested_decoys),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_differential_mutations),
        cmocka_unit_test(test_differential_corpus),
        cmocka_unit_test(test_allocates_nothing),
        cmocka_unit_test(test_codes_are_stable),
    };
    return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
