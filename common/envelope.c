/* envelope.c - read id, type, livemode, created and api_version from a raw
 * Stripe event body (see envelope.h) in one pass that also validates the
 * whole body as JSON, the way jansson would, without building anything.
 *
 * The scanner is iterative: a bit per open container (object or array) on a
 * fixed stack, so hostile nesting costs memory of neither heap nor C stack.
 * Only the members of the top-level object are looked at by name; every
 * other string, number and container is checked and skipped. */
#include "envelope.h"
#include "json_scan.h"
#include "strbuf.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX 16 /* longer top-level keys cannot be an envelope key */

/* The five envelope keys, in the order their errors are reported. */
typedef enum { F_ID, F_TYPE, F_LIVEMODE, F_CREATED, F_API_VERSION, F_COUNT } field_id;

static const char *const field_names[F_COUNT] = {"id", "type", "livemode", "created",
                                                 "api_version"};

/* What one envelope key held. */
typedef enum {
    K_ABSENT = 0,
    K_NULL,
    K_STRING,
    K_TRUE,
    K_FALSE,
    K_INTEGER,
    K_REAL,
    K_CONTAINER, /* object or array */
} value_kind;

typedef struct field {
    value_kind kind;
    bool plain;    /* K_STRING: 1..ENVELOPE_MAX_FIELD bytes, no control characters */
    int64_t value; /* K_INTEGER */
} field;

typedef struct scanner {
    json_scan js; /* position, and why the body is not JSON (json_scan.h) */
    int depth;    /* open containers */
    bool root_object;
    unsigned char is_object[ENVELOPE_MAX_DEPTH / 8 + 1];
    field f[F_COUNT];
    char *dst[F_COUNT]; /* decoded string destinations, NULL for non-strings */
} scanner;

/* ------------------------------------------------------------ the walk -- */

/* true, false or null; inline, so that the word's length is a constant. */
static inline bool literal(scanner *s, field *f, const char *word, size_t n, value_kind kind) {
    if (!js_literal(&s->js, word, n)) return false;
    if (f) f->kind = kind;
    return true;
}

static bool number(scanner *s, field *f) {
    bool real;
    int64_t value = 0;
    if (!js_number(&s->js, &real, &value)) return false;
    if (f) {
        f->kind = real ? K_REAL : K_INTEGER;
        f->value = value;
    }
    return true;
}

/* A string, number or literal at s->js.p; fid: the envelope field it is, or -1. */
static bool scalar(scanner *s, int fid) {
    field *f = fid >= 0 ? &s->f[fid] : NULL;
    switch (*s->js.p) {
    case '"': {
        json_sink k = {.buf = fid >= 0 ? s->dst[fid] : NULL, .cap = ENVELOPE_MAX_FIELD};
        if (!js_string(&s->js, &k, NULL)) return false;
        if (f) {
            f->kind = K_STRING;
            f->plain = k.len > 0 && k.len <= ENVELOPE_MAX_FIELD && !k.control;
            if (k.buf && f->plain) k.buf[k.len] = '\0';
        }
        return true;
    }
    case 't':
        return literal(s, f, "true", 4, K_TRUE);
    case 'f':
        return literal(s, f, "false", 5, K_FALSE);
    case 'n':
        return literal(s, f, "null", 4, K_NULL);
    default:
        if (*s->js.p == '-' || (*s->js.p >= '0' && *s->js.p <= '9')) return number(s, f);
        return js_fail(&s->js, "invalid token");
    }
}

/* An object member's key and colon. In the top-level object *fid becomes
 * the envelope field it names, or -1; a field named twice is an error. */
static bool member_key(scanner *s, int *fid) {
    char key[KEY_MAX];
    json_sink k = {.buf = s->depth == 1 ? key : NULL, .cap = sizeof(key)};
    *fid = -1;
    js_skip_blanks(&s->js);
    if (s->js.p >= s->js.end || *s->js.p != '"') return js_fail(&s->js, "expected a string key");
    if (!js_string(&s->js, &k, NULL)) return false;
    for (int i = 0; k.buf && k.len < KEY_MAX && i < F_COUNT; i++) {
        if (strlen(field_names[i]) != k.len || memcmp(field_names[i], key, k.len) != 0) continue;
        if (s->f[i].kind != K_ABSENT) return js_fail(&s->js, "an envelope key appears twice");
        *fid = i;
    }
    js_skip_blanks(&s->js);
    if (s->js.p >= s->js.end || *s->js.p != ':') return js_fail(&s->js, "expected ':' after a key");
    s->js.p++;
    return true;
}

static void push(scanner *s, bool object) {
    unsigned char bit = (unsigned char)(1u << (s->depth & 7));
    if (object)
        s->is_object[s->depth >> 3] |= bit;
    else
        s->is_object[s->depth >> 3] &= (unsigned char)~bit;
    s->depth++;
}

static bool top_is_object(const scanner *s) {
    return s->is_object[(s->depth - 1) >> 3] >> ((s->depth - 1) & 7) & 1;
}

/* After a value: close the containers that end here. 1: another value
 * follows (a member's key already read into *fid); 0: the text is complete;
 * -1: not JSON. */
static int after_value(scanner *s, int *fid) {
    *fid = -1;
    for (;;) {
        js_skip_blanks(&s->js);
        if (s->depth == 0)
            return s->js.p == s->js.end ? 0 : (js_fail(&s->js, "bytes after the JSON text"), -1);
        if (s->js.p >= s->js.end)
            return js_fail(&s->js, "the text ends inside an object or array"), -1;
        bool object = top_is_object(s);
        if (*s->js.p == ',') {
            s->js.p++;
            return object && !member_key(s, fid) ? -1 : 1;
        }
        if (*s->js.p != (object ? '}' : ']'))
            return js_fail(&s->js, object ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
        s->js.p++;
        s->depth--;
    }
}

/* The whole body, once. */
static bool scan(scanner *s) {
    int fid = -1, more = 1;
    while (more > 0) {
        js_skip_blanks(&s->js);
        if (s->depth >= ENVELOPE_MAX_DEPTH)
            return js_fail(&s->js, "nested deeper than 2048 levels");
        if (s->js.p >= s->js.end) return js_fail(&s->js, "a value expected");
        unsigned char c = *s->js.p;
        if (s->depth == 0) s->root_object = c == '{';
        if (c != '{' && c != '[') {
            if (!scalar(s, fid)) return false;
        } else {
            if (fid >= 0) s->f[fid].kind = K_CONTAINER;
            s->js.p++;
            push(s, c == '{');
            js_skip_blanks(&s->js);
            if (s->js.p >= s->js.end || *s->js.p != (c == '{' ? '}' : ']')) {
                if (c == '{' && !member_key(s, &fid)) return false;
                if (c == '[') fid = -1;
                continue;
            }
            s->js.p++;
            s->depth--;
        }
        more = after_value(s, &fid);
    }
    return more == 0;
}

/* ------------------------------------------------------------- fields -- */

#define DETAIL(...)                                                                                \
    do {                                                                                           \
        if (detail && detail_len) snprintf(detail, detail_len, __VA_ARGS__);                       \
    } while (0)

static envelope_result required_string(const field *f, envelope_result missing,
                                       envelope_result bad) {
    if (f->kind == K_ABSENT || f->kind == K_NULL) return missing;
    return f->kind == K_STRING && f->plain ? ENV_OK : bad;
}

/* livemode, created and api_version: optional, but typed when present. */
static envelope_result optional_fields(const scanner *s, envelope *e, char *detail,
                                       size_t detail_len) {
    const field *live = &s->f[F_LIVEMODE], *created = &s->f[F_CREATED], *api = &s->f[F_API_VERSION];
    if (live->kind != K_ABSENT && live->kind != K_NULL) {
        if (live->kind != K_TRUE && live->kind != K_FALSE) {
            DETAIL("\"livemode\" is not a boolean");
            return ENV_BAD_FIELD;
        }
        e->livemode = live->kind == K_TRUE;
        e->has_livemode = true;
    }
    if (created->kind != K_ABSENT && created->kind != K_NULL) {
        if (created->kind != K_INTEGER) {
            DETAIL("\"created\" is not an integer");
            return ENV_BAD_FIELD;
        }
        e->created = created->value;
    }
    if (api->kind != K_ABSENT && api->kind != K_NULL && !(api->kind == K_STRING && api->plain)) {
        DETAIL("\"api_version\" is not a short string");
        return ENV_BAD_FIELD;
    }
    return ENV_OK;
}

/* The scan succeeded: are the fields those of a Stripe event? */
static envelope_result check_fields(const scanner *s, envelope *e, char *detail,
                                    size_t detail_len) {
    if (!s->root_object) {
        DETAIL("the body is JSON but not an object");
        return ENV_NOT_OBJECT;
    }
    envelope_result r = required_string(&s->f[F_ID], ENV_NO_ID, ENV_BAD_ID);
    if (r == ENV_OK && (!str_starts_with(e->id, "evt_") || e->id[4] == '\0')) r = ENV_BAD_ID;
    if (r != ENV_OK) {
        DETAIL("\"id\" is missing or is not an event id (evt_...)");
        return r;
    }
    r = required_string(&s->f[F_TYPE], ENV_NO_TYPE, ENV_BAD_TYPE);
    if (r != ENV_OK) {
        DETAIL("\"type\" is missing or is not a short string");
        return r;
    }
    return optional_fields(s, e, detail, detail_len);
}

envelope_result envelope_parse(const void *body, size_t len, envelope *out, char *detail,
                               size_t detail_len) {
    scanner s;
    envelope_result r;
    memset(out, 0, sizeof(*out));
    memset(&s, 0, sizeof(s));
    if (detail && detail_len) detail[0] = '\0';
    s.js.start = s.js.p = body ? body : (const void *)"";
    s.js.end = s.js.start + (body ? len : 0);
    s.dst[F_ID] = out->id;
    s.dst[F_TYPE] = out->type;
    s.dst[F_API_VERSION] = out->api_version;
    if (scan(&s)) {
        r = check_fields(&s, out, detail, detail_len);
    } else {
        DETAIL("not JSON: %s at byte %zu", s.js.why, (size_t)(s.js.where - s.js.start));
        r = ENV_NOT_JSON;
    }
    if (r != ENV_OK) memset(out, 0, sizeof(*out));
    return r;
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
