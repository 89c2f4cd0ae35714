/* envelope.c - read id, type, livemode, created and api_version from a raw
 * Stripe event body with jansson (see envelope.h). jansson checks UTF-8,
 * refuses \u0000 in strings and bounds nesting depth, so a hostile body costs
 * at most one linear pass. */
#include "envelope.h"
#include "alloc.h"
#include "strbuf.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define DETAIL(...)                                                                                \
    do {                                                                                           \
        if (detail && detail_len) snprintf(detail, detail_len, __VA_ARGS__);                       \
    } while (0)

/* True when s[0..len) is a usable field value: not empty, not too long, no
 * control characters (they would only confuse logs and operators). */
static bool plain_text(const char *s, size_t len) {
    if (len == 0 || len > ENVELOPE_MAX_FIELD) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

/* Copy a required string member; ENV_OK, or missing/bad as given. */
static envelope_result take_string(json_t *root, const char *key, envelope_result missing,
                                   envelope_result bad, char **out) {
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v)) return missing;
    if (!json_is_string(v)) return bad;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!plain_text(s, len)) return bad;
    *out = ps_strndup(s, len);
    return *out ? ENV_OK : ENV_OOM;
}

/* livemode, created and api_version: optional, but typed when present. */
static envelope_result take_optional(json_t *root, envelope *e, char *detail, size_t detail_len) {
    json_t *v = json_object_get(root, "livemode");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            DETAIL("\"livemode\" is not a boolean");
            return ENV_BAD_FIELD;
        }
        e->livemode = json_is_true(v);
        e->has_livemode = true;
    }
    v = json_object_get(root, "created");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            DETAIL("\"created\" is not an integer");
            return ENV_BAD_FIELD;
        }
        e->created = (int64_t)json_integer_value(v);
    }
    v = json_object_get(root, "api_version");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || !plain_text(json_string_value(v), json_string_length(v))) {
            DETAIL("\"api_version\" is not a short string");
            return ENV_BAD_FIELD;
        }
        e->api_version = ps_strndup(json_string_value(v), json_string_length(v));
        if (e->api_version == NULL) return ENV_OOM;
    }
    return ENV_OK;
}

static envelope_result parse_root(json_t *root, envelope *e, char *detail, size_t detail_len) {
    if (!json_is_object(root)) {
        DETAIL("the body is JSON but not an object");
        return ENV_NOT_OBJECT;
    }
    envelope_result r = take_string(root, "id", ENV_NO_ID, ENV_BAD_ID, &e->id);
    if (r == ENV_OK && !str_starts_with(e->id, "evt_")) r = ENV_BAD_ID;
    if (r == ENV_OK && e->id[4] == '\0') r = ENV_BAD_ID;
    if (r != ENV_OK) {
        DETAIL("\"id\" is missing or is not an event id (evt_...)");
        return r;
    }
    r = take_string(root, "type", ENV_NO_TYPE, ENV_BAD_TYPE, &e->type);
    if (r != ENV_OK) {
        DETAIL("\"type\" is missing or is not a short string");
        return r;
    }
    return take_optional(root, e, detail, detail_len);
}

envelope_result envelope_parse(const void *body, size_t len, envelope *out, char *detail,
                               size_t detail_len) {
    json_error_t jerr;
    envelope_result r;
    memset(out, 0, sizeof(*out));
    if (detail && detail_len) detail[0] = '\0';
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        DETAIL("not JSON: %s at byte %d", jerr.text, jerr.position);
        r = ENV_NOT_JSON;
        goto done;
    }
    r = parse_root(root, out, detail, detail_len);
done:
    json_decref(root);
    if (r != ENV_OK) envelope_free(out);
    return r;
}

void envelope_free(envelope *e) {
    if (e == NULL) return;
    ps_free(e->id);
    ps_free(e->type);
    ps_free(e->api_version);
    memset(e, 0, sizeof(*e));
}

const char *envelope_result_code(envelope_result r) {
    switch (r) {
    case ENV_OK:
        return "ok";
    case ENV_NOT_JSON:
        return "invalid_json";
    case ENV_NOT_OBJECT:
        return "not_an_object";
    case ENV_NO_ID:
        return "missing_id";
    case ENV_BAD_ID:
        return "invalid_id";
    case ENV_NO_TYPE:
        return "missing_type";
    case ENV_BAD_TYPE:
        return "invalid_type";
    case ENV_BAD_FIELD:
        return "invalid_envelope";
    case ENV_OOM:
        return "out_of_memory";
    }
    return "invalid_envelope";
}
