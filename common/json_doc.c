/* json_doc.c - one validating pass over a JSON text into a flat token array
 * (see json_doc.h); lookups, and the decoding of strings when asked for.
 *
 * Strings and numbers are scanned by json_scan.h, as common/envelope.c
 * scans them. The walk is iterative: an open container's token holds its
 * parent's index until it closes, so hostile nesting costs no C stack.
 * Duplicate keys are looked for when an object closes: pairwise in a small
 * object, through a hash table reused across objects in a larger one. */
#include "json_doc.h"
#include "alloc.h"
#include "json_scan.h"

#include <stdint.h>
#include <string.h>

typedef struct json_tok {
    uint32_t start; /* strings: first byte after the quote; others: first byte */
    uint32_t len;   /* strings: raw bytes between the quotes; others: bytes spanned */
    uint32_t next;  /* index just past its subtree (an open container: its parent) */
    uint32_t size;  /* containers: members or elements */
    uint32_t text;  /* strings: 1 + offset of the decoded text in d->text, 0 if not yet */
    uint8_t type;   /* json_doc_type */
    bool escaped;   /* strings: holds a backslash escape */
} json_tok;

typedef struct seen_slot {
    uint32_t gen; /* d->gen when filled in */
    uint32_t tok; /* the key */
} seen_slot;

struct json_doc {
    const unsigned char *body;
    size_t len;
    json_tok *tok;
    uint32_t ntok, cap;
    char *text; /* decoded strings; never moves between parses */
    size_t text_len, text_cap;
    seen_slot *seen; /* open addressing, for duplicate keys of large objects */
    uint32_t seen_cap, gen;
    const char *why;
    size_t where;
};

#define NO_PARENT    UINT32_MAX
#define SMALL_OBJECT 8 /* keys compared pairwise up to this many */

json_doc *json_doc_new(void) {
    return ps_calloc(1, sizeof(json_doc));
}

void json_doc_free(json_doc *d) {
    if (d == NULL) return;
    ps_free(d->tok);
    ps_free(d->text);
    ps_free(d->seen);
    ps_free(d);
}

const char *json_doc_error(const json_doc *d, size_t *offset) {
    if (offset) *offset = d->why ? d->where : 0;
    return d->why ? d->why : "";
}

/* ------------------------------------------------------------- strings -- */

/* The decoded text of string token t: decoded into d->text the first time
 * (room for every string of the text was reserved by the parse). */
static const char *tok_text(json_doc *d, json_tok *t) {
    if (t->text == 0) {
        char *dst = d->text + d->text_len;
        const unsigned char *raw = d->body + t->start;
        size_t n = t->len;
        if (t->escaped) {
            json_scan s = {d->body, raw - 1, raw + t->len + 1, NULL, NULL};
            json_sink k = {.buf = dst, .cap = t->len};
            js_string(&s, &k, NULL); /* validated by the parse: cannot fail */
            n = k.len;
        } else {
            memcpy(dst, raw, n);
        }
        dst[n] = '\0';
        t->text = (uint32_t)(d->text_len + 1);
        d->text_len += n + 1;
    }
    return d->text + t->text - 1;
}

/* A key's bytes as decoded: in the body when it has no escape. */
static const char *key_bytes(json_doc *d, uint32_t k, size_t *len) {
    json_tok *t = &d->tok[k];
    if (!t->escaped) {
        *len = t->len;
        return (const char *)d->body + t->start;
    }
    const char *s = tok_text(d, t);
    *len = strlen(s);
    return s;
}

static bool key_equals(json_doc *d, uint32_t k, const char *key, size_t key_len) {
    const json_tok *t = &d->tok[k];
    size_t n;
    if (!t->escaped && t->len != key_len) return false; /* the common answer */
    const char *b = key_bytes(d, k, &n);
    return n == key_len && memcmp(b, key, n) == 0;
}

/* ---------------------------------------------------- duplicate keys -- */

static uint64_t key_hash(const char *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ h >> 29;
}

/* A table of at least 2 * n slots, all free. */
static bool seen_reserve(json_doc *d, uint32_t n) {
    uint32_t cap = d->seen_cap ? d->seen_cap : 64;
    while (cap < 2 * n)
        cap *= 2;
    if (cap != d->seen_cap || ++d->gen == 0) {
        seen_slot *t = ps_calloc(cap, sizeof(*t));
        if (t == NULL) return false;
        ps_free(d->seen);
        d->seen = t;
        d->seen_cap = cap;
        d->gen = 1;
    }
    return true;
}

/* Whether key k's text is already in the table; adds it if not. */
static bool seen_before(json_doc *d, uint32_t k) {
    size_t n, m;
    const char *b = key_bytes(d, k, &n);
    uint32_t mask = d->seen_cap - 1, i = (uint32_t)key_hash(b, n) & mask;
    for (; d->seen[i].gen == d->gen; i = (i + 1) & mask) {
        const char *o = key_bytes(d, d->seen[i].tok, &m);
        if (m == n && memcmp(o, b, n) == 0) return true;
    }
    d->seen[i].gen = d->gen;
    d->seen[i].tok = k;
    return false;
}

/* The object at o, closed: 1 when two of its keys are equal, 0 when not,
 * -1 when out of memory. A key's value is the token after it. */
static int has_duplicate(json_doc *d, uint32_t o) {
    uint32_t n = d->tok[o].size, end = d->tok[o].next;
    if (n < 2) return 0;
    if (n <= SMALL_OBJECT) {
        for (uint32_t a = o + 1; a < end; a = d->tok[a + 1].next)
            for (uint32_t b = d->tok[a + 1].next; b < end; b = d->tok[b + 1].next) {
                size_t len;
                const char *ka = key_bytes(d, a, &len);
                if (key_equals(d, b, ka, len)) return 1;
            }
        return 0;
    }
    if (!seen_reserve(d, n)) return -1;
    for (uint32_t k = o + 1; k < end; k = d->tok[k + 1].next)
        if (seen_before(d, k)) return 1;
    return 0;
}

/* ---------------------------------------------------------------- walk -- */

typedef struct walk {
    json_doc *d;
    json_scan s;
    uint32_t cur; /* innermost open container, or NO_PARENT */
    int depth;    /* open containers */
} walk;

static uint32_t offset_of(const json_scan *s) {
    return (uint32_t)(s->p - s->start);
}

/* A new token, zeroed but its start; NO_PARENT when out of memory. */
static uint32_t new_tok(walk *w) {
    json_doc *d = w->d;
    if (d->ntok == d->cap) {
        uint32_t cap = d->cap ? 2 * d->cap : 256;
        json_tok *t = ps_realloc(d->tok, (size_t)cap * sizeof(*t));
        if (t == NULL) return js_fail(&w->s, "out of memory"), NO_PARENT;
        d->tok = t;
        d->cap = cap;
    }
    json_tok *t = &d->tok[d->ntok];
    memset(t, 0, sizeof(*t));
    t->start = offset_of(&w->s);
    t->next = d->ntok + 1;
    return d->ntok++;
}

/* A string at s.p (key or value) into a new token. */
static bool string_tok(walk *w) {
    bool plain;
    uint32_t i = new_tok(w);
    if (i == NO_PARENT) return false;
    if (!js_string(&w->s, &(json_sink){0}, &plain)) return false;
    json_tok *t = &w->d->tok[i];
    t->type = JSON_DOC_STRING;
    t->start++;
    t->len = offset_of(&w->s) - t->start - 1;
    t->escaped = !plain && memchr(w->d->body + t->start, '\\', t->len) != NULL;
    return true;
}

/* A number or literal at s.p into a new token. */
static bool other_scalar(walk *w) {
    json_scan *s = &w->s;
    bool ok, real = false;
    int64_t v;
    uint8_t type = JSON_DOC_NULL;
    uint32_t i = new_tok(w);
    if (i == NO_PARENT) return false;
    if (*s->p == 't')
        type = JSON_DOC_TRUE, ok = js_literal(s, "true", 4);
    else if (*s->p == 'f')
        type = JSON_DOC_FALSE, ok = js_literal(s, "false", 5);
    else if (*s->p == 'n')
        ok = js_literal(s, "null", 4);
    else if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
        ok = js_number(s, &real, &v), type = real ? JSON_DOC_REAL : JSON_DOC_INTEGER;
    else
        return js_fail(s, "invalid token");
    if (!ok) return false;
    w->d->tok[i].type = type;
    w->d->tok[i].len = offset_of(s) - w->d->tok[i].start;
    return true;
}

/* A value at s.p: a scalar, or the opening of a container (then w->cur). */
static bool value(walk *w) {
    json_scan *s = &w->s;
    js_skip_blanks(s);
    if (w->depth >= JSON_DOC_MAX_DEPTH) return js_fail(s, "nested deeper than 2048 levels");
    if (s->p >= s->end) return js_fail(s, "a value expected");
    if (w->cur != NO_PARENT) w->d->tok[w->cur].size++;
    if (*s->p == '"') return string_tok(w);
    if (*s->p != '{' && *s->p != '[') return other_scalar(w);
    uint32_t i = new_tok(w);
    if (i == NO_PARENT) return false;
    w->d->tok[i].type = *s->p == '{' ? JSON_DOC_OBJECT : JSON_DOC_ARRAY;
    w->d->tok[i].next = w->cur;
    w->cur = i;
    w->depth++;
    s->p++;
    return true;
}

/* An object member's key and colon. */
static bool member_key(walk *w) {
    json_scan *s = &w->s;
    js_skip_blanks(s);
    if (s->p >= s->end || *s->p != '"') return js_fail(s, "expected a string key");
    if (!string_tok(w)) return false;
    js_skip_blanks(s);
    if (s->p >= s->end || *s->p != ':') return js_fail(s, "expected ':' after a key");
    s->p++;
    return true;
}

/* The closing bracket of w->cur was just passed. */
static bool close_container(walk *w) {
    json_doc *d = w->d;
    uint32_t c = w->cur;
    json_tok *t = &d->tok[c];
    w->cur = t->next;
    t->next = d->ntok;
    t->len = offset_of(&w->s) - t->start;
    w->depth--;
    if (t->type != JSON_DOC_OBJECT) return true;
    int dup = has_duplicate(d, c);
    return dup == 0 ? true : js_fail(&w->s, dup > 0 ? "duplicate key" : "out of memory");
}

/* After a value: close the containers that end here. 1: another value
 * follows (a member's key already read); 0: the text is complete; -1: not
 * JSON. */
static int after_value(walk *w) {
    json_scan *s = &w->s;
    for (;;) {
        js_skip_blanks(s);
        if (w->depth == 0)
            return s->p == s->end ? 0 : (js_fail(s, "bytes after the JSON text"), -1);
        if (s->p >= s->end) return js_fail(s, "the text ends inside an object or array"), -1;
        bool object = w->d->tok[w->cur].type == JSON_DOC_OBJECT;
        if (*s->p == ',') {
            s->p++;
            return object && !member_key(w) ? -1 : 1;
        }
        if (*s->p != (object ? '}' : ']'))
            return js_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
        s->p++;
        if (!close_container(w)) return -1;
    }
}

/* The whole text, once. */
static bool walk_all(walk *w) {
    json_scan *s = &w->s;
    for (;;) {
        if (!value(w)) return false;
        if (w->cur == w->d->ntok - 1) { /* a container just opened */
            bool object = w->d->tok[w->cur].type == JSON_DOC_OBJECT;
            js_skip_blanks(s);
            if (s->p >= s->end || *s->p != (object ? '}' : ']')) {
                if (object && !member_key(w)) return false;
                continue;
            }
            s->p++;
            if (!close_container(w)) return false;
        }
        int more = after_value(w);
        if (more <= 0) return more == 0;
    }
}

/* Room for every string of a len-byte text, decoded and NUL-terminated:
 * never more than the text itself, since each has two quotes. */
static bool reserve_text(json_doc *d, size_t len) {
    d->text_len = 0;
    if (d->text_cap > len) return true;
    char *t = ps_malloc(len + 1);
    if (t == NULL) return false;
    ps_free(d->text);
    d->text = t;
    d->text_cap = len + 1;
    return true;
}

int json_doc_parse(json_doc *d, const void *text, size_t len) {
    walk w = {d, {0}, NO_PARENT, 0};
    d->body = text ? text : (const void *)"";
    d->len = text ? len : 0;
    d->ntok = 0;
    d->why = NULL;
    w.s.start = w.s.p = d->body;
    w.s.end = d->body + d->len;
    if (d->len >= JSON_DOC_MAX_LEN)
        js_fail(&w.s, "text too long");
    else if (!reserve_text(d, d->len))
        js_fail(&w.s, "out of memory");
    else if (walk_all(&w))
        return 0;
    d->ntok = 0;
    d->why = w.s.why;
    d->where = (size_t)(w.s.where - w.s.start);
    return -1;
}

/* -------------------------------------------------------------- values -- */

static const json_tok *tok_of(const json_doc *d, int v) {
    return d && v >= 0 && (uint32_t)v < d->ntok ? &d->tok[v] : NULL;
}

json_doc_type json_doc_type_of(const json_doc *d, int v) {
    const json_tok *t = tok_of(d, v);
    return t ? (json_doc_type)t->type : JSON_DOC_INVALID;
}

static bool is_container(const json_tok *t) {
    return t && (t->type == JSON_DOC_OBJECT || t->type == JSON_DOC_ARRAY);
}

size_t json_doc_size(const json_doc *d, int v) {
    const json_tok *t = tok_of(d, v);
    return is_container(t) ? t->size : 0;
}

int json_doc_first(const json_doc *d, int container) {
    const json_tok *t = tok_of(d, container);
    return is_container(t) && t->size > 0 ? container + 1 : JSON_DOC_NONE;
}

int json_doc_next(const json_doc *d, int container, int v) {
    const json_tok *c = tok_of(d, container), *t = tok_of(d, v);
    if (!is_container(c) || t == NULL || v <= container) return JSON_DOC_NONE;
    return t->next < c->next ? (int)t->next : JSON_DOC_NONE;
}

int json_doc_at(const json_doc *d, int array, size_t i) {
    if (json_doc_type_of(d, array) != JSON_DOC_ARRAY) return JSON_DOC_NONE;
    int v = json_doc_first(d, array);
    for (; v != JSON_DOC_NONE && i > 0; i--)
        v = json_doc_next(d, array, v);
    return v;
}

int json_doc_getn(json_doc *d, int object, const char *key, size_t key_len) {
    if (json_doc_type_of(d, object) != JSON_DOC_OBJECT) return JSON_DOC_NONE;
    uint32_t end = d->tok[object].next;
    for (uint32_t k = (uint32_t)object + 1; k < end; k = d->tok[k + 1].next)
        if (key_equals(d, k, key, key_len)) return (int)k + 1;
    return JSON_DOC_NONE;
}

int json_doc_path(json_doc *d, int v, const char *path) {
    while (v != JSON_DOC_NONE && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        v = json_doc_getn(d, v, path, n);
        path += n + (dot ? 1 : 0);
    }
    return v;
}

const char *json_doc_string(json_doc *d, int v, size_t *len) {
    if (json_doc_type_of(d, v) != JSON_DOC_STRING) return NULL;
    json_tok *t = &d->tok[v];
    const char *s = tok_text(d, t);
    if (len) *len = t->escaped ? strlen(s) : t->len;
    return s;
}

bool json_doc_int(const json_doc *d, int v, int64_t *out) {
    if (json_doc_type_of(d, v) != JSON_DOC_INTEGER) return false;
    const unsigned char *p = d->body + d->tok[v].start, *end = p + d->tok[v].len;
    bool neg = *p == '-';
    uint64_t mag = 0;
    for (p += neg; p < end; p++)
        mag = mag * 10 + (uint64_t)(*p - '0'); /* within int64: checked by the parse */
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

bool json_doc_bool(const json_doc *d, int v, bool *out) {
    json_doc_type t = json_doc_type_of(d, v);
    if (t != JSON_DOC_TRUE && t != JSON_DOC_FALSE) return false;
    *out = t == JSON_DOC_TRUE;
    return true;
}
