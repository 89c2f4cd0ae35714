/* json_doc_ref.h - common/json_doc.c held to jansson, its reference. The
 * unit test (tests/unit/test_json_doc.c) and the fuzz target
 * (fuzz_json_doc.c) both demand that, on every text:
 *  - json_doc_parse accepts it ⇔ json_loadb(JSON_REJECT_DUPLICATES |
 *    JSON_DECODE_ANY) does, except that a text holding a NUL byte is always
 *    refused (jansson 2.14 takes a NUL right after a number or literal);
 *  - when both accept, the two agree on every value: type, string bytes,
 *    integer, boolean, the members of each object (every key found by
 *    lookup, as jansson finds it) and the elements of each array in order. */
#ifndef PS_JSON_DOC_REF_H
#define PS_JSON_DOC_REF_H

#include "common/json_doc.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static json_doc_type ref_type(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return JSON_DOC_OBJECT;
    case JSON_ARRAY:
        return JSON_DOC_ARRAY;
    case JSON_STRING:
        return JSON_DOC_STRING;
    case JSON_INTEGER:
        return JSON_DOC_INTEGER;
    case JSON_REAL:
        return JSON_DOC_REAL;
    case JSON_TRUE:
        return JSON_DOC_TRUE;
    case JSON_FALSE:
        return JSON_DOC_FALSE;
    default:
        return JSON_DOC_NULL;
    }
}

static bool ref_same(json_doc *d, int v, const json_t *j, char *why, size_t whylen);

static bool ref_same_object(json_doc *d, int v, const json_t *j, char *why, size_t whylen) {
    const char *key;
    size_t key_len, n = 0;
    json_t *member;
    json_object_keylen_foreach((json_t *)j, key, key_len, member) {
        int dv = json_doc_getn(d, v, key, key_len);
        if (dv == JSON_DOC_NONE) {
            snprintf(why, whylen, "key '%.40s' not found by json_doc_getn", key);
            return false;
        }
        if (!ref_same(d, dv, member, why, whylen)) return false;
    }
    for (int k = json_doc_first(d, v); k != JSON_DOC_NONE; k = json_doc_next(d, v, k + 1)) {
        const char *dk = json_doc_string(d, k, &key_len);
        if (dk == NULL || json_object_getn(j, dk, key_len) == NULL) {
            snprintf(why, whylen, "key '%.40s' is not jansson's", dk ? dk : "(not a string)");
            return false;
        }
        n++;
    }
    if (n == json_object_size(j) && json_doc_size(d, v) == n) return true;
    snprintf(why, whylen, "object of %zu members, jansson %zu", n, json_object_size(j));
    return false;
}

static bool ref_same_array(json_doc *d, int v, const json_t *j, char *why, size_t whylen) {
    size_t i = 0;
    int e = json_doc_first(d, v);
    for (; e != JSON_DOC_NONE && i < json_array_size(j); e = json_doc_next(d, v, e), i++)
        if (!ref_same(d, e, json_array_get(j, i), why, whylen)) return false;
    if (e == JSON_DOC_NONE && i == json_array_size(j) && json_doc_size(d, v) == i) return true;
    snprintf(why, whylen, "array of %zu elements, jansson %zu", json_doc_size(d, v),
             json_array_size(j));
    return false;
}

/* Value v of d holds what j holds. */
static bool ref_same(json_doc *d, int v, const json_t *j, char *why, size_t whylen) {
    json_doc_type t = json_doc_type_of(d, v);
    size_t len;
    int64_t i;
    bool b;
    if (t != ref_type(j)) {
        snprintf(why, whylen, "type %d, jansson %d", (int)t, (int)ref_type(j));
        return false;
    }
    switch (t) {
    case JSON_DOC_OBJECT:
        return ref_same_object(d, v, j, why, whylen);
    case JSON_DOC_ARRAY:
        return ref_same_array(d, v, j, why, whylen);
    case JSON_DOC_STRING: {
        const char *s = json_doc_string(d, v, &len);
        if (len == json_string_length(j) && memcmp(s, json_string_value(j), len) == 0 &&
            s[len] == '\0')
            return true;
        snprintf(why, whylen, "string '%.40s', jansson '%.40s'", s, json_string_value(j));
        return false;
    }
    case JSON_DOC_INTEGER:
        if (json_doc_int(d, v, &i) && i == json_integer_value(j)) return true;
        snprintf(why, whylen, "integer %lld, jansson %lld", (long long)i,
                 (long long)json_integer_value(j));
        return false;
    case JSON_DOC_TRUE:
    case JSON_DOC_FALSE:
        if (json_doc_bool(d, v, &b) && b == json_is_true(j)) return true;
        snprintf(why, whylen, "boolean differs");
        return false;
    default:
        return true;
    }
}

/* True when json_doc agrees with jansson on text[0..len); else why. */
static bool ref_doc_agrees(json_doc *d, const void *text, size_t len, char *why, size_t whylen) {
    json_error_t jerr;
    size_t at;
    int r = json_doc_parse(d, text, len);
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    bool nul = len > 0 && memchr(text, 0, len) != NULL, ok = true;
    if (nul && r == 0) {
        snprintf(why, whylen, "a text with a NUL byte accepted");
        ok = false;
    } else if (!nul && (r == 0) != (root != NULL)) {
        const char *err = json_doc_error(d, &at);
        snprintf(why, whylen, "json_doc %s (%s at byte %zu), jansson %s (%s)",
                 r == 0 ? "accepts" : "refuses", err, at, root ? "accepts" : "refuses",
                 root ? "" : jerr.text);
        ok = false;
    } else if (r == 0 && root) {
        ok = ref_same(d, 0, root, why, whylen);
    }
    json_decref(root);
    return ok;
}

#endif
