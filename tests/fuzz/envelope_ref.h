/* envelope_ref.h - the envelope as jansson reads it, and the comparison of
 * common/envelope.c against it. jansson is the reference: the unit test
 * (tests/unit/test_envelope.c) and the fuzz target (fuzz_envelope.c) both
 * demand that the single-pass parser agree with it on every body.
 *
 * Agreement means: jansson (JSON_DECODE_ANY) refuses the body ⇔ we answer
 * ENV_NOT_JSON, except that we also refuse an envelope key given twice in
 * the top-level object, which jansson without JSON_REJECT_DUPLICATES takes
 * (last wins), and a body holding a NUL byte, which is never JSON but which
 * jansson 2.14 takes when the NUL directly follows a number or a literal (its
 * stream drops a pushed-back NUL); otherwise the same result code and the
 * same fields. */
#ifndef PS_ENVELOPE_REF_H
#define PS_ENVELOPE_REF_H

#include "common/envelope.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool ref_plain(json_t *v) {
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > ENVELOPE_MAX_FIELD) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static envelope_result ref_string(json_t *root, const char *key, envelope_result missing,
                                  envelope_result bad, char *out) {
    json_t *v = json_object_get(root, key);
    if (v == NULL || json_is_null(v)) return missing;
    if (!ref_plain(v)) return bad;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return ENV_OK;
}

static envelope_result ref_fields(json_t *root, envelope *e) {
    if (!json_is_object(root)) return ENV_NOT_OBJECT;
    envelope_result r = ref_string(root, "id", ENV_NO_ID, ENV_BAD_ID, e->id);
    if (r == ENV_OK && (strncmp(e->id, "evt_", 4) != 0 || e->id[4] == '\0')) r = ENV_BAD_ID;
    if (r != ENV_OK) return r;
    if ((r = ref_string(root, "type", ENV_NO_TYPE, ENV_BAD_TYPE, e->type)) != ENV_OK) return r;
    json_t *v = json_object_get(root, "livemode");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) return ENV_BAD_FIELD;
        e->livemode = json_is_true(v);
        e->has_livemode = true;
    }
    v = json_object_get(root, "created");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v)) return ENV_BAD_FIELD;
        e->created = json_integer_value(v);
    }
    v = json_object_get(root, "api_version");
    if (v && !json_is_null(v)) {
        if (!ref_plain(v)) return ENV_BAD_FIELD;
        memcpy(e->api_version, json_string_value(v), json_string_length(v) + 1);
    }
    return ENV_OK;
}

/* The reference result; *dups: jansson finds a duplicate key somewhere. */
static envelope_result ref_envelope(const void *body, size_t len, envelope *e, bool *dups) {
    json_error_t jerr;
    memset(e, 0, sizeof(*e));
    *dups = false;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) return ENV_NOT_JSON;
    json_t *strict = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    *dups = strict == NULL;
    json_decref(strict);
    envelope_result r = ref_fields(root, e);
    json_decref(root);
    if (r != ENV_OK) memset(e, 0, sizeof(*e));
    return r;
}

/* True when envelope_parse agrees with the reference on body; else why. */
static bool ref_agrees(const void *body, size_t len, char *why, size_t whylen) {
    envelope ours, ref;
    char detail[256];
    bool dups;
    envelope_result r = envelope_parse(body, len, &ours, detail, sizeof(detail));
    envelope_result want = ref_envelope(body, len, &ref, &dups);
    if (len > 0 && memchr(body, 0, len) && r != ENV_NOT_JSON) {
        snprintf(why, whylen, "a body with a NUL byte accepted (%s)", envelope_result_code(r));
        return false;
    }
    if (len > 0 && memchr(body, 0, len)) return true;
    if (r == ENV_NOT_JSON && want != ENV_NOT_JSON && dups && strstr(detail, "twice")) return true;
    if (r != want) {
        snprintf(why, whylen, "ours %s (%s), jansson %s", envelope_result_code(r), detail,
                 envelope_result_code(want));
        return false;
    }
    if (strcmp(ours.id, ref.id) || strcmp(ours.type, ref.type) ||
        strcmp(ours.api_version, ref.api_version) || ours.livemode != ref.livemode ||
        ours.has_livemode != ref.has_livemode || ours.created != ref.created) {
        snprintf(why, whylen, "fields differ: id '%.100s'/'%.100s' type '%.100s'/'%.100s'", ours.id,
                 ref.id, ours.type, ref.type);
        return false;
    }
    return true;
}

#endif
