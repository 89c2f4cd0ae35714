/* envelope.c - read id, type, livemode, created and api_version from a raw
 * Stripe event body (see envelope.h) in one pass that also validates the
 * whole body as JSON, the way jansson would, without building anything.
 *
 * The scanner is iterative: a bit per open container (object or array) on a
 * fixed stack, so hostile nesting costs memory of neither heap nor C stack.
 * Only the members of the top-level object are looked at by name; every
 * other string, number and container is checked and skipped. */
#include "envelope.h"
#include "strbuf.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Where a captured string is decoded to, and how big that is. */
typedef struct sink {
    char *buf; /* NULL: validate only (len and control stay 0) */
    size_t cap;
    size_t len;   /* decoded length, even past cap */
    bool control; /* a decoded byte < 0x20 or 0x7f */
} sink;

typedef struct scanner {
    const unsigned char *start, *p, *end;
    const char *why; /* set when the body is not JSON */
    const unsigned char *where;
    int depth; /* open containers */
    bool root_object;
    unsigned char is_object[ENVELOPE_MAX_DEPTH / 8 + 1];
    field f[F_COUNT];
    char *dst[F_COUNT]; /* decoded string destinations, NULL for non-strings */
} scanner;

static bool fail(scanner *s, const char *why) {
    s->why = why;
    s->where = s->p;
    return false;
}

static void skip_blanks(scanner *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* ------------------------------------------------------------- strings -- */

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0:
 * overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0], need, min, cp;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) <= need) return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return need + 1;
}

static inline void sink_put(sink *k, const unsigned char *b, size_t n) {
    if (k->buf == NULL) return; /* validating only: nothing to keep */
    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x20 || b[i] == 0x7f) k->control = true;
        if (k->len < k->cap) k->buf[k->len] = (char)b[i];
        k->len++;
    }
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 if not. */
static long hex4(const unsigned char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* \uXXXX (s->p at the 'u'), a surrogate pair as one code point, as UTF-8. */
static bool unicode_escape(scanner *s, sink *k) {
    long cp;
    if (s->end - s->p < 5 || (cp = hex4(s->p + 1)) < 0) return fail(s, "invalid \\u escape");
    s->p += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff) return fail(s, "lone low surrogate in a \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo;
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || (lo = hex4(s->p + 2)) < 0 ||
            lo < 0xdc00 || lo > 0xdfff)
            return fail(s, "high surrogate not followed by a low one in a \\u escape");
        s->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) return fail(s, "\\u0000 in a string");
    unsigned char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (unsigned char)(0xc0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (unsigned char)(0xe0 | cp >> 12), u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
        u[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (unsigned char)(0xf0 | cp >> 18), u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (unsigned char)(0x80 | (cp & 0x3f)),
        n = 4;
    sink_put(k, u, n);
    return true;
}

/* s->p at the backslash. */
static bool escape(scanner *s, sink *k) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    s->p++;
    if (s->p >= s->end) return fail(s, "string not terminated");
    if (*s->p == 'u') return unicode_escape(s, k);
    const char *hit = *s->p ? strchr(from, *s->p) : NULL;
    if (hit == NULL) return fail(s, "invalid escape in a string");
    unsigned char c = (unsigned char)to[hit - from];
    sink_put(k, &c, 1);
    s->p++;
    return true;
}

/* Bytes that stand for themselves in a string: printable ASCII but " and \. */
static bool plain_ascii(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Skip the bytes that stand for themselves: 16 at a time with SSE2 (every
 * x86-64 has it), else 8 at a time, then byte by byte. A block is passed over
 * when none of its bytes is < 0x20, '"', '\\' or >= 0x80. */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: bytes >= 0x80 are negative, so below 0x20 too */
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ull, highs = ones * 0x80;
    while (end - p >= 8) {
        uint64_t w, q, b;
        memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        if ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & highs) break;
        p += 8;
    }
#endif
    while (p < end && plain_ascii(*p))
        p++;
    return p;
}

/* The rest of a string from s->p, past its first escape or non-ASCII byte:
 * the slow path, kept out of line so that the common one stays small. */
static __attribute__((noinline)) bool string_rest(scanner *s, sink *k) {
    for (;;) {
        const unsigned char *run = s->p;
        s->p = skip_plain(s->p, s->end);
        sink_put(k, run, (size_t)(s->p - run));
        if (s->p >= s->end) return fail(s, "string not terminated");
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c == '\\') {
            if (!escape(s, k)) return false;
        } else if (c < 0x20) {
            return fail(s, "control character in a string");
        } else {
            size_t n = utf8_sequence(s->p, s->end);
            if (n == 0) return fail(s, "invalid UTF-8");
            sink_put(k, s->p, n);
            s->p += n;
        }
    }
}

/* A string, s->p at the opening quote; decoded into k. Most strings are
 * plain ASCII through their closing quote: that path is short. */
static inline bool string(scanner *s, sink *k) {
    const unsigned char *start = s->p + 1;
    s->p = skip_plain(start, s->end);
    sink_put(k, start, (size_t)(s->p - start));
    if (s->p < s->end && *s->p == '"') {
        s->p++;
        return true;
    }
    return string_rest(s, k);
}
/* ------------------------------------------------------------- numbers -- */

/* Whether the real number in tok[0..len) (already checked against the
 * grammar) is beyond DBL_MAX once rounded, as jansson's strtod finds:
 * jansson refuses those and accepts underflow. Decided from the decimal
 * exponent; only at exactly 10^308 are the digits handed to strtod, at most
 * 400 of them plus one sticky digit that keeps the rounding exact. */
static bool real_overflows(const unsigned char *tok, size_t len) {
    const unsigned char *p = tok, *end = tok + len;
    long long n_int = 0, n_frac = 0, first = 0, exp10 = 0;
    int where = 0; /* of the first significant digit: 0 none yet, 1 integer part, 2 fraction */
    char digits[420];
    size_t nd = 0;
    bool sticky = false, in_frac = false;
    if (*p == '-') p++;
    for (; p < end && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            in_frac = true;
            continue;
        }
        in_frac ? n_frac++ : n_int++;
        if (where == 0 && *p == '0') continue;
        if (where == 0) {
            where = in_frac ? 2 : 1;
            first = in_frac ? n_frac : n_int;
        }
        if (nd < 400)
            digits[nd++] = (char)*p;
        else if (*p != '0')
            sticky = true;
    }
    if (where == 0) return false; /* zero */
    if (p < end) {                /* exponent, saturated */
        bool neg = *++p == '-';
        if (*p == '-' || *p == '+') p++;
        for (; p < end; p++)
            if (exp10 < 1000000000000LL) exp10 = exp10 * 10 + (*p - '0');
        if (neg) exp10 = -exp10;
    }
    /* the first significant digit stands for 10^e */
    long long e = (where == 1 ? n_int - first : -first) + exp10;
    if (e != 308) return e > 308;
    if (sticky) digits[nd++] = '1';
    snprintf(digits + nd, sizeof(digits) - nd, "e%lld", 309 - (long long)nd);
    return isinf(strtod(digits, NULL));
}

static bool is_digit(const scanner *s) {
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static void skip_digits(scanner *s) {
    while (is_digit(s))
        s->p++;
}

/* A number; an integer must fit int64 (jansson says "too big integer"). */
static bool number(scanner *s, field *f) {
    const unsigned char *tok = s->p;
    bool neg = *s->p == '-', real = false, big = false;
    uint64_t mag = 0;
    if (neg) s->p++;
    if (!is_digit(s)) return fail(s, "invalid number");
    if (*s->p == '0') {
        s->p++;
        if (is_digit(s)) return fail(s, "number with a leading zero");
    }
    for (; is_digit(s); s->p++) {
        unsigned d = *s->p - '0';
        big = big || mag > (UINT64_MAX - d) / 10;
        mag = mag * 10 + d;
    }
    if (s->p < s->end && *s->p == '.') {
        real = true;
        s->p++;
        if (!is_digit(s)) return fail(s, "no digit after a decimal point");
        skip_digits(s);
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        real = true;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!is_digit(s)) return fail(s, "no digit in an exponent");
        skip_digits(s);
    }
    if (real) {
        if (real_overflows(tok, (size_t)(s->p - tok))) return fail(s, "real number overflow");
        if (f) f->kind = K_REAL;
        return true;
    }
    if (big || mag > (uint64_t)INT64_MAX + neg) return fail(s, "integer beyond 64 bits");
    if (f) {
        f->kind = K_INTEGER;
        f->value = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    return true;
}

/* ------------------------------------------------------------ the walk -- */

static bool literal(scanner *s, const char *word, field *f, value_kind kind) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return fail(s, "invalid token");
    s->p += n;
    if (f) f->kind = kind;
    return true;
}

/* A string, number or literal at s->p; fid: the envelope field it is, or -1. */
static bool scalar(scanner *s, int fid) {
    field *f = fid >= 0 ? &s->f[fid] : NULL;
    switch (*s->p) {
    case '"': {
        sink k = {.buf = fid >= 0 ? s->dst[fid] : NULL, .cap = ENVELOPE_MAX_FIELD};
        if (!string(s, &k)) return false;
        if (f) {
            f->kind = K_STRING;
            f->plain = k.len > 0 && k.len <= ENVELOPE_MAX_FIELD && !k.control;
            if (k.buf && f->plain) k.buf[k.len] = '\0';
        }
        return true;
    }
    case 't':
        return literal(s, "true", f, K_TRUE);
    case 'f':
        return literal(s, "false", f, K_FALSE);
    case 'n':
        return literal(s, "null", f, K_NULL);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) return number(s, f);
        return fail(s, "invalid token");
    }
}

/* An object member's key and colon. In the top-level object *fid becomes
 * the envelope field it names, or -1; a field named twice is an error. */
static bool member_key(scanner *s, int *fid) {
    char key[KEY_MAX];
    sink k = {.buf = s->depth == 1 ? key : NULL, .cap = sizeof(key)};
    *fid = -1;
    skip_blanks(s);
    if (s->p >= s->end || *s->p != '"') return fail(s, "expected a string key");
    if (!string(s, &k)) return false;
    for (int i = 0; k.buf && k.len < KEY_MAX && i < F_COUNT; i++) {
        if (strlen(field_names[i]) != k.len || memcmp(field_names[i], key, k.len) != 0) continue;
        if (s->f[i].kind != K_ABSENT) return fail(s, "an envelope key appears twice");
        *fid = i;
    }
    skip_blanks(s);
    if (s->p >= s->end || *s->p != ':') return fail(s, "expected ':' after a key");
    s->p++;
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
        skip_blanks(s);
        if (s->depth == 0) return s->p == s->end ? 0 : (fail(s, "bytes after the JSON text"), -1);
        if (s->p >= s->end) return fail(s, "the text ends inside an object or array"), -1;
        bool object = top_is_object(s);
        if (*s->p == ',') {
            s->p++;
            return object && !member_key(s, fid) ? -1 : 1;
        }
        if (*s->p != (object ? '}' : ']'))
            return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
        s->p++;
        s->depth--;
    }
}

/* The whole body, once. */
static bool scan(scanner *s) {
    int fid = -1, more = 1;
    while (more > 0) {
        skip_blanks(s);
        if (s->depth >= ENVELOPE_MAX_DEPTH) return fail(s, "nested deeper than 2048 levels");
        if (s->p >= s->end) return fail(s, "a value expected");
        unsigned char c = *s->p;
        if (s->depth == 0) s->root_object = c == '{';
        if (c != '{' && c != '[') {
            if (!scalar(s, fid)) return false;
        } else {
            if (fid >= 0) s->f[fid].kind = K_CONTAINER;
            s->p++;
            push(s, c == '{');
            skip_blanks(s);
            if (s->p >= s->end || *s->p != (c == '{' ? '}' : ']')) {
                if (c == '{' && !member_key(s, &fid)) return false;
                if (c == '[') fid = -1;
                continue;
            }
            s->p++;
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
    s.start = s.p = body ? body : (const void *)"";
    s.end = s.start + (body ? len : 0);
    s.dst[F_ID] = out->id;
    s.dst[F_TYPE] = out->type;
    s.dst[F_API_VERSION] = out->api_version;
    if (scan(&s)) {
        r = check_fields(&s, out, detail, detail_len);
    } else {
        DETAIL("not JSON: %s at byte %zu", s.why, (size_t)(s.where - s.start));
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
