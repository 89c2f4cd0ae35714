/* fuzz_event_json.c - libFuzzer target for the worker's JSON extraction
 * (worker/event_util.c: jget, jstr, jint, jbool and the metadata part of
 * resolve_user) on event-shaped input, parsed as worker/apply.c parses it.
 *
 * Every path the handlers read is read from the places they read it: the
 * event, data.object, its subscription details, invoice lines and
 * subscription items. Checked: no crash, and what comes back is what the
 * JSON holds (a string is non-empty, a user id that was taken is a UUID). */
#include "event.h"

#include <jansson.h>
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

/* Read every path from obj, as the handlers would. */
static void read_paths(json_t *obj) {
    for (size_t i = 0; i < sizeof(str_paths) / sizeof(*str_paths); i++) {
        const char *s = jstr(obj, str_paths[i]);
        CHECK(s == NULL || s[0] != '\0');
    }
    for (size_t i = 0; i < sizeof(int_paths) / sizeof(*int_paths); i++) {
        int64_t v = 0;
        json_t *raw = jget(obj, int_paths[i]);
        CHECK(jint(obj, int_paths[i], &v) == json_is_integer(raw));
        CHECK(!json_is_integer(raw) || v == json_integer_value(raw));
    }
    for (size_t i = 0; i < sizeof(bool_paths) / sizeof(*bool_paths); i++) {
        bool b = false;
        json_t *raw = jget(obj, bool_paths[i]);
        CHECK(jbool(obj, bool_paths[i], &b) == json_is_boolean(raw));
        CHECK(!json_is_boolean(raw) || b == json_is_true(raw));
    }
}

/* Every element of the array at path (invoice lines, subscription items). */
static void read_list(json_t *obj, const char *path) {
    json_t *list = jget(obj, path), *item;
    size_t i;
    if (!json_is_array(list)) return;
    json_array_foreach(list, i, item) {
        if (i >= 64) break;
        read_paths(item);
    }
}

/* resolve_user without a database: only when no customer or subscription
 * would send it to PostgreSQL. */
static void resolve(json_t *object) {
    event_ctx ev;
    memset(&ev, 0, sizeof(ev));
    ev.object = object;
    json_t *extra[2] = {jget(object, "subscription_details"),
                        jget(object, "parent.subscription_details")};
    if (resolve_user(&ev, NULL, NULL, extra, 2) == 0)
        CHECK(strlen(ev.user_id) == 36 && ev.user_id[8] == '-');
    else
        CHECK(ev.error[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) return 0;
    json_t *object = jget(root, "data.object");
    read_paths(root);
    read_paths(object);
    read_paths(jget(object, "subscription_details"));
    read_paths(jget(object, "parent.subscription_details"));
    read_list(object, "lines.data");
    read_list(object, "items.data");
    resolve(object);
    json_decref(root);
    return 0;
}
