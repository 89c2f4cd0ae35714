/* fuzz_event_json.c - libFuzzer target for the worker's JSON extraction
 * (worker/event_util.c: jget, jstr, jint, jbool, jfirst/jnext and the
 * metadata part of resolve_user) on event-shaped input, parsed as
 * worker/apply.c parses it, into a json_doc.
 *
 * Every path the handlers read is read from the places they read it: the
 * event, data.object, its subscription details, invoice lines and
 * subscription items. Checked: no crash, and what comes back is what the
 * helpers answered when they read jansson's tree (ref_get, ref_str below): a
 * string is non-empty, the same integers and booleans, a user id that was
 * taken is a UUID. */
#include "event.h"

#include <jansson.h>
#include "tests/fuzz/event_json_ref.h"
#include "tests/fuzz/fuzz_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const str_paths[] = {
    "id",
    "type",
    "api_version",
    "customer",
    "mode",
    "payment_intent",
    "status",
    "plan",
    "subscription",
    "payment_status",
    "invoice",
    "client_reference_id",
    "metadata.user_id",
    "metadata.price_id",
    "metadata.credit_pack",
    "price",
    "subscription_item",
    "parent.type",
    "pricing.price_details.price",
    "parent.subscription_details.subscription",
    "object.id",
};
static const char *const int_paths[] = {
    "created",
    "amount",
    "amount_refunded",
    "period.end",
    "current_period_start",
    "current_period_end",
};
static const char *const bool_paths[] = {"livemode", "cancel_at_period_end", "proration"};

/* Read every path from obj, as the handlers would: the same answers as
 * from jansson's tree ref. */
static void read_paths(jval obj, json_t *ref) {
    CHECK(jok(obj) == (ref != NULL) && jis_object(obj) == json_is_object(ref));
    for (size_t i = 0; i < sizeof(str_paths) / sizeof(*str_paths); i++) {
        const char *s = jstr(obj, str_paths[i]), *want = ref_str(ref, str_paths[i]);
        CHECK(s == NULL || s[0] != '\0');
        CHECK((s == NULL) == (want == NULL) && (s == NULL || strcmp(s, want) == 0));
    }
    for (size_t i = 0; i < sizeof(int_paths) / sizeof(*int_paths); i++) {
        int64_t v = 0;
        json_t *raw = ref_get(ref, int_paths[i]);
        CHECK(jint(obj, int_paths[i], &v) == json_is_integer(raw));
        CHECK(!json_is_integer(raw) || v == json_integer_value(raw));
    }
    for (size_t i = 0; i < sizeof(bool_paths) / sizeof(*bool_paths); i++) {
        bool b = false;
        json_t *raw = ref_get(ref, bool_paths[i]);
        CHECK(jbool(obj, bool_paths[i], &b) == json_is_boolean(raw));
        CHECK(!json_is_boolean(raw) || b == json_is_true(raw));
    }
}

/* Every element of the array at path (invoice lines, subscription items),
 * in jansson's order. */
static void read_list(jval obj, json_t *ref, const char *path) {
    jval list = jget(obj, path), item = jfirst(list);
    json_t *ref_list = ref_get(ref, path);
    size_t i = 0, n = json_is_array(ref_list) ? json_array_size(ref_list) : 0;
    for (; jok(item) && i < n && i < 64; item = jnext(list, item), i++)
        read_paths(item, json_array_get(ref_list, i));
    CHECK(i == 64 || (!jok(item) && i == n));
}

/* resolve_user without a database: only when no customer or subscription
 * would send it to PostgreSQL. */
static void resolve(jval object) {
    event_ctx ev;
    memset(&ev, 0, sizeof(ev));
    ev.object = object;
    jval extra[2] = {jget(object, "subscription_details"),
                     jget(object, "parent.subscription_details")};
    if (resolve_user(&ev, NULL, NULL, extra, 2) == 0)
        CHECK(strlen(ev.user_id) == 36 && ev.user_id[8] == '-');
    else
        CHECK(ev.error[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_doc *doc;
    json_error_t jerr;
    if (doc == NULL && (doc = json_doc_new()) == NULL) abort();
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    /* the worker takes what jansson without JSON_DECODE_ANY takes: a text
     * whose root is an object or array (worker/apply.c) */
    json_doc_type t = json_doc_parse(doc, data, size) == 0 ? json_doc_type_of(doc, 0) : 0;
    bool ours = t == JSON_DOC_OBJECT || t == JSON_DOC_ARRAY;
    CHECK(ours == (root != NULL) || (!ours && memchr(data, 0, size) != NULL));
    if (!ours) {
        json_decref(root);
        return 0;
    }
    jval top = {doc, 0}, object = jget(top, "data.object");
    json_t *ref_object = ref_get(root, "data.object");
    read_paths(top, root);
    read_paths(object, ref_object);
    read_paths(jget(object, "subscription_details"), ref_get(ref_object, "subscription_details"));
    read_paths(jget(object, "parent.subscription_details"),
               ref_get(ref_object, "parent.subscription_details"));
    read_list(object, ref_object, "lines.data");
    read_list(object, ref_object, "items.data");
    resolve(object);
    json_decref(root);
    return 0;
}
