/* test_json_doc.c - unit tests for common/json_doc.c: a differential test
 * against jansson (json_doc_ref.h) over generated texts and their
 * mutations, duplicate keys at every depth and after decoding, jansson's
 * depth limit, int64 edges, lookups by path, arrays, reuse of one document
 * and allocation failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json_doc.h"
#include "tests/fuzz/json_doc_ref.h"

static json_doc *doc;

static int setup(void **state) {
    (void)state;
    doc = json_doc_new();
    return doc ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    json_doc_free(doc);
    return 0;
}

static int parse(const char *text) {
    return json_doc_parse(doc, text, strlen(text));
}

static void agrees(const char *text, size_t len) {
    char why[512];
    if (!ref_doc_agrees(doc, text, len, why, sizeof(why)))
        fail_msg("%.*s: %s", (int)len, text, why);
}

/* ----------------------------------------------------------- generator -- */

typedef struct gen {
    uint64_t rng;
    char buf[8192];
    size_t len;
} gen;

static unsigned pick(gen *g, unsigned n) {
    g->rng = g->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(g->rng >> 33) % n;
}

static void put(gen *g, const char *s) {
    size_t n = strlen(s);
    if (g->len + n < sizeof(g->buf)) memcpy(g->buf + g->len, s, n), g->len += n;
}

/* Pieces of strings: plain, escapes, UTF-8, surrogate pairs, and a few
 * that are wrong (a lone surrogate, \u0000, a raw control character). */
static const char *const str_parts[] = {
    "a",
    "id",
    "b",
    "\\u0061",
    "\\n",
    "\\\"",
    "\\/",
    "\xc3\xa9",
    "\\u00e9",
    "\xf0\x9f\x98\x80",
    "\\ud83d\\ude00",
    "\\t",
    "x.y",
    " ",
    "\\ud83d",
    "\\u0000",
    "\x01",
    "\xc0\xaf",
    "\\uDC00",
    "\\U0041",
};

static void gen_string(gen *g, bool key) {
    put(g, "\"");
    for (unsigned n = pick(g, key ? 3 : 5); n > 0; n--)
        put(g, str_parts[pick(g, pick(g, 50) ? 13 : 20)]);
    put(g, "\"");
}

static const char *const numbers[] = {
    "0",
    "-0",
    "1",
    "42",
    "-7",
    "1.5",
    "-0.25",
    "1e3",
    "2E-2",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "1e309",
    "01",
    "1.",
    "-",
    ".5",
    "1e",
    "123456789012345678901234567890.0",
};

static void gen_value(gen *g, int depth) {
    unsigned k = pick(g, depth > 5 ? 6 : 9);
    if (k == 0) return gen_string(g, false);
    if (k == 1) return put(g, numbers[pick(g, pick(g, 20) ? 15 : 21)]);
    if (k == 2) return put(g, pick(g, 2) ? "true" : "false");
    if (k == 3) return put(g, "null");
    if (k <= 5) return gen_string(g, false);
    bool object = k != 8;
    put(g, object ? "{" : "[");
    for (unsigned n = pick(g, object ? 12 : 5), i = 0; i < n; i++) {
        if (i) put(g, pick(g, 8) ? "," : " , ");
        if (object) gen_string(g, true), put(g, pick(g, 8) ? ":" : " : ");
        gen_value(g, depth + 1);
    }
    put(g, object ? "}" : "]");
}

/* ------------------------------------------------------------ the tests -- */

/* Thousands of generated texts, then each mutated: jansson and json_doc
 * accept the same ones, and read the same values from them. */
static void test_differential_generated(void **state) {
    (void)state;
    static const char repl[] = "\"\\{}[],:0-e.u \x00\xff\xc3\x80\x7f\x1f";
    gen g = {.rng = 2024};
    int accepted = 0, refused = 0;
    for (int round = 0; round < 6000; round++) {
        g.len = 0;
        gen_value(&g, 0);
        agrees(g.buf, g.len);
        if (json_doc_parse(doc, g.buf, g.len) == 0)
            accepted++;
        else
            refused++;
        char m[sizeof(g.buf)];
        for (int j = 0; j < 4 && g.len > 1; j++) {
            size_t at = pick(&g, (unsigned)g.len);
            memcpy(m, g.buf, g.len);
            m[at] = repl[pick(&g, sizeof(repl) - 1)];
            agrees(m, g.len);
            memmove(m + at, m + at + 1, g.len - at - 1); /* and a byte less */
            agrees(m, g.len - 1);
        }
    }
    assert_true(accepted > 1000 && refused > 1000); /* both sides exercised */
}

/* A realistic event, every byte replaced or deleted. */
static void test_differential_mutations(void **state) {
    (void)state;
    static const char base[] =
        "{\"id\":\"evt_1\",\"object\":\"event\",\"created\":1686089970,\"data\":{\"object\":{"
        "\"id\":\"in_1\",\"amount\":-2000,\"metadata\":{\"user_id\":\"5f0c\\u00e9\",\"x\":null},"
        "\"rate\":-1.25e-3,\"lines\":{\"data\":[{\"a\":1,\"b\":2},{\"a\":1,\"c\":[true,false,{},"
        "[]]}]},\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,"
        "\"k\\u0039\":9,\"s\":\"\\ud83d\\ude00\\n\"}},\"livemode\":false,\"type\":\"t\"}";
    static const char repl[] = "\"\\{}[],:0-e.u \x00\xff\xc3\x80\x7f\x1fitnfd81";
    char buf[sizeof(base)];
    size_t n = sizeof(base) - 1;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof(repl) - 1; j++) {
            memcpy(buf, base, n);
            buf[i] = repl[j];
            agrees(buf, n);
        }
        memcpy(buf, base, i);
        memcpy(buf + i, base + i + 1, n - i - 1);
        agrees(buf, n - 1);
    }
    assert_int_equal(parse(base), 0);
}

static void refused_as_duplicate(const char *text) {
    if (parse(text) != -1) fail_msg("%s accepted", text);
    assert_string_equal(json_doc_error(doc, NULL), "duplicate key");
    agrees(text, strlen(text));
}

static void test_duplicates_at_depth(void **state) {
    (void)state;
    const char *dups[] = {
        "{\"a\":1,\"a\":1}",
        "{\"a\":{\"b\":{\"c\":1,\"c\":2}}}",
        "[[{\"x\":[],\"y\":0,\"x\":{}}]]",
        "{\"a\":[{\"k\":1},{\"k\":1,\"j\":2,\"k\":3}]}",
        /* large objects (the hashed path), the duplicate last or first */
        "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k1\":"
        "0}",
        "{\"o\":{\"k0\":0,\"k0\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8}"
        "}",
    };
    for (size_t i = 0; i < sizeof(dups) / sizeof(*dups); i++)
        refused_as_duplicate(dups[i]);
    /* the same key in sibling or nested objects is fine */
    assert_int_equal(parse("{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}"), 0);
    /* 200 levels down */
    char deep[2048];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":");
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"z\":1,\"z\":2}");
    memset(deep + n, '}', 200);
    assert_int_equal(json_doc_parse(doc, deep, n + 200), -1);
    agrees(deep, n + 200);
}

static void test_escaped_keys_collide(void **state) {
    (void)state;
    const char *dups[] = {
        "{\"a\":1,\"\\u0061\":2}",
        "{\"\\u00e9\":1,\"\xc3\xa9\":2}",
        "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
        "{\"a/b\":1,\"a\\/b\":2}",
        "{\"\\n\":1,\"\\u000a\":2}",
        "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k\\u0031\":9}",
    };
    for (size_t i = 0; i < sizeof(dups) / sizeof(*dups); i++)
        refused_as_duplicate(dups[i]);
    /* decoded keys that differ, and lookups by decoded key */
    assert_int_equal(parse("{\"a\\\"\":1,\"a\":2,\"\\u00e9t\\u00e9\":3}"), 0);
    int64_t v = 0;
    assert_true(json_doc_int(doc, json_doc_getn(doc, 0, "a\"", 2), &v));
    assert_int_equal(v, 1);
    assert_true(json_doc_int(doc, json_doc_path(doc, 0, "\xc3\xa9t\xc3\xa9"), &v));
    assert_int_equal(v, 3);
}

/* jansson's limit, exactly: a value inside 2047 containers is fine, 2048 not. */
static void test_depth_limit(void **state) {
    (void)state;
    static char text[2 * JSON_DOC_MAX_DEPTH + 8];
    for (int depth = JSON_DOC_MAX_DEPTH - 1; depth <= JSON_DOC_MAX_DEPTH + 1; depth++) {
        size_t n = (size_t)depth - 1; /* containers around the scalar */
        memset(text, '[', n);
        text[n] = '1';
        memset(text + n + 1, ']', n);
        int want = depth <= JSON_DOC_MAX_DEPTH ? 0 : -1;
        assert_int_equal(json_doc_parse(doc, text, 2 * n + 1), want);
        agrees(text, 2 * n + 1);
        memset(text + n, ']', n); /* no scalar: n containers, the last empty */
        assert_int_equal(json_doc_parse(doc, text, 2 * n),
                         depth - 1 <= JSON_DOC_MAX_DEPTH ? 0 : -1);
        agrees(text, 2 * n);
    }
    /* hostile nesting costs no stack: a megabyte of '[' */
    size_t big = 1 << 20;
    char *deep = malloc(big);
    assert_non_null(deep);
    memset(deep, '[', big);
    assert_int_equal(json_doc_parse(doc, deep, big), -1);
    assert_string_equal(json_doc_error(doc, NULL), "nested deeper than 2048 levels");
    free(deep);
}

static void test_int64_edges(void **state) {
    (void)state;
    const struct {
        const char *text;
        int ok;
        int64_t value;
    } cases[] = {
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -1, 0},
        {"-9223372036854775809", -1, 0},
        {"18446744073709551616", -1, 0},
        {"0", 0, 0},
        {"-0", 0, 0},
        {"[ 12 ]", 0, 12},
    };
    int64_t v;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_int_equal(parse(cases[i].text), cases[i].ok);
        agrees(cases[i].text, strlen(cases[i].text));
        if (cases[i].ok != 0) continue;
        int at = json_doc_type_of(doc, 0) == JSON_DOC_ARRAY ? 1 : 0;
        assert_true(json_doc_int(doc, at, &v));
        assert_true(v == cases[i].value);
    }
    /* reals are not integers, and only overflow is refused */
    assert_int_equal(parse("[1.0, 1e2, 1e-400, 1.7976931348623157e308]"), 0);
    assert_false(json_doc_int(doc, 1, &v));
    assert_int_equal(json_doc_type_of(doc, 2), JSON_DOC_REAL);
    assert_int_equal(parse("1.8e308"), -1);
}

static const char event[] =
    "{\"id\":\"evt_1\",\"created\":1700000000,\"livemode\":true,\"data\":{\"object\":{"
    "\"id\":\"sub_1\",\"customer\":{\"id\":\"cus_1\",\"name\":\"x\"},\"empty\":\"\","
    "\"metadata\":{\"user_id\":\"u\\u0031\"},\"items\":{\"data\":[{\"price\":\"p1\"},"
    "{\"price\":\"p2\"},[],\"s\",3]},\"n\":null,\"f\":false}}}";

static void test_lookups_by_path(void **state) {
    (void)state;
    int64_t v;
    bool b;
    assert_int_equal(parse(event), 0);
    assert_string_equal(json_doc_string(doc, json_doc_path(doc, 0, "id"), NULL), "evt_1");
    int obj = json_doc_path(doc, 0, "data.object");
    assert_int_equal(json_doc_type_of(doc, obj), JSON_DOC_OBJECT);
    assert_string_equal(json_doc_string(doc, json_doc_path(doc, obj, "customer.id"), NULL),
                        "cus_1");
    assert_string_equal(json_doc_string(doc, json_doc_path(doc, obj, "metadata.user_id"), NULL),
                        "u1");
    assert_true(json_doc_int(doc, json_doc_path(doc, 0, "created"), &v));
    assert_true(v == 1700000000);
    assert_true(json_doc_bool(doc, json_doc_path(doc, 0, "livemode"), &b) && b);
    assert_true(json_doc_bool(doc, json_doc_path(doc, obj, "f"), &b) && !b);
    assert_int_equal(json_doc_path(doc, obj, ""), obj);
    assert_int_equal(json_doc_type_of(doc, json_doc_path(doc, obj, "n")), JSON_DOC_NULL);
    /* absent, or through something that is not an object */
    assert_int_equal(json_doc_path(doc, obj, "nope"), JSON_DOC_NONE);
    assert_int_equal(json_doc_path(doc, obj, "id.x"), JSON_DOC_NONE);
    assert_int_equal(json_doc_path(doc, obj, "items.data.price"), JSON_DOC_NONE);
    assert_int_equal(json_doc_path(doc, JSON_DOC_NONE, "id"), JSON_DOC_NONE);
    assert_null(json_doc_string(doc, json_doc_path(doc, 0, "created"), NULL));
    assert_false(json_doc_int(doc, json_doc_path(doc, 0, "id"), &v));
    assert_false(json_doc_bool(doc, json_doc_path(doc, obj, "n"), &b));
    size_t len = 99;
    assert_string_equal(json_doc_string(doc, json_doc_path(doc, obj, "empty"), &len), "");
    assert_int_equal(len, 0);
    /* a prefix of a key is not the key */
    assert_int_equal(json_doc_getn(doc, obj, "i", 1), JSON_DOC_NONE);
    assert_int_equal(json_doc_getn(doc, obj, "idx", 3), JSON_DOC_NONE);
}

static void test_arrays(void **state) {
    (void)state;
    assert_int_equal(parse(event), 0);
    int items = json_doc_path(doc, 0, "data.object.items.data");
    assert_int_equal(json_doc_type_of(doc, items), JSON_DOC_ARRAY);
    assert_int_equal(json_doc_size(doc, items), 5);
    const char *want[] = {"p1", "p2", NULL, NULL, NULL};
    size_t i = 0;
    for (int e = json_doc_first(doc, items); e != JSON_DOC_NONE; e = json_doc_next(doc, items, e))
        assert_int_equal(e, json_doc_at(doc, items, i)), i++;
    assert_int_equal(i, 5);
    for (i = 0; i < 5; i++) {
        const char *p =
            json_doc_string(doc, json_doc_path(doc, json_doc_at(doc, items, i), "price"), NULL);
        if (want[i])
            assert_string_equal(p, want[i]);
        else
            assert_null(p);
    }
    assert_int_equal(json_doc_type_of(doc, json_doc_at(doc, items, 2)), JSON_DOC_ARRAY);
    assert_int_equal(json_doc_at(doc, items, 5), JSON_DOC_NONE);
    assert_int_equal(json_doc_first(doc, json_doc_at(doc, items, 2)), JSON_DOC_NONE); /* [] */
    assert_int_equal(json_doc_at(doc, json_doc_path(doc, 0, "data"), 0), JSON_DOC_NONE);
    assert_int_equal(parse("[]"), 0);
    assert_int_equal(json_doc_size(doc, 0), 0);
    assert_int_equal(json_doc_first(doc, 0), JSON_DOC_NONE);
}

/* One document for text after text: strings stay put until the next parse,
 * a failed parse leaves nothing, and a warm document allocates nothing. */
static void test_reuse_and_memory(void **state) {
    (void)state;
    assert_int_equal(parse(event), 0);
    const char *id =
        json_doc_string(doc, json_doc_path(doc, 0, "data.object.metadata.user_id"), NULL);
    assert_ptr_equal(
        id, json_doc_string(doc, json_doc_path(doc, 0, "data.object.metadata.user_id"), NULL));
    assert_int_equal(parse("{\"a\":"), -1);
    size_t at;
    assert_string_equal(json_doc_error(doc, &at), "a value expected");
    assert_int_equal(at, 5);
    assert_int_equal(json_doc_type_of(doc, 0), JSON_DOC_INVALID);
    assert_int_equal(parse("\"s\""), 0);
    assert_string_equal(json_doc_error(doc, NULL), "");
    ps_alloc_fail_after(0); /* warm: the event again, every lookup, no allocation */
    int r = parse(event);
    const char *s =
        json_doc_string(doc, json_doc_path(doc, 0, "data.object.metadata.user_id"), NULL);
    ps_alloc_fail_after(-1);
    assert_int_equal(r, 0);
    assert_string_equal(s, "u1");
    json_doc *cold = json_doc_new();
    assert_non_null(cold);
    ps_alloc_fail_after(0);
    r = json_doc_parse(cold, event, sizeof(event) - 1);
    ps_alloc_fail_after(-1);
    assert_int_equal(r, -1);
    assert_string_equal(json_doc_error(cold, NULL), "out of memory");
    json_doc_free(cold);
    json_doc_free(NULL);
    assert_int_equal(json_doc_parse(doc, NULL, 0), -1);
    assert_int_equal(json_doc_parse(doc, "1\0", 2), -1); /* jansson takes this one */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_differential_generated),
        cmocka_unit_test(test_differential_mutations),
        cmocka_unit_test(test_duplicates_at_depth),
        cmocka_unit_test(test_escaped_keys_collide),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_int64_edges),
        cmocka_unit_test(test_lookups_by_path),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_reuse_and_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
