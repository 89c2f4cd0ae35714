/* json_scan.h - the pieces of a JSON scanner that envelope.c and json_doc.c
 * share: blanks, strings (strict UTF-8, escapes, surrogate pairs, no \u0000),
 * numbers (integers within int64, reals that do not overflow a double) and
 * literals, each accepting exactly what jansson 2.14 accepts. Internal to
 * common/: static inline, so that each scanner keeps its fast path in line.
 * The walk over containers, and what is kept of each value, is the caller's. */
#ifndef PS_JSON_SCAN_H
#define PS_JSON_SCAN_H

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Where a scan is, and where and why it stopped when the text is not JSON. */
typedef struct json_scan {
    const unsigned char *start, *p, *end;
    const char *why; /* set when the text is not JSON */
    const unsigned char *where;
} json_scan;

/* Where a string is decoded to, and how big that is. */
typedef struct json_sink {
    char *buf; /* NULL: validate only (len and control stay 0) */
    size_t cap;
    size_t len;   /* decoded length, even past cap */
    bool control; /* a decoded byte < 0x20 or 0x7f */
} json_sink;

static inline bool js_fail(json_scan *s, const char *why) {
    s->why = why;
    s->where = s->p;
    return false;
}

static inline bool js_blank(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Most tokens follow no blank; a pretty-printed body puts a newline and an
 * indent before each member, skipped 16 bytes at a time with SSE2. */
static inline void js_skip_blanks(json_scan *s) {
    const unsigned char *p = s->p;
    if (p >= s->end || *p > ' ') return;
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(' '), nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'),
                  tab = _mm_set1_epi8('\t');
    while (s->end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i blank = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, nl)),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, tab)));
        unsigned other = ~(unsigned)_mm_movemask_epi8(blank) & 0xffffu;
        if (other) {
            s->p = p + __builtin_ctz(other);
            return;
        }
        p += 16;
    }
#endif
    while (p < s->end && js_blank(*p))
        p++;
    s->p = p;
}

/* ------------------------------------------------------------- strings -- */

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0:
 * overlong forms, surrogates and code points above U+10FFFF are invalid. */
static inline size_t js_utf8_sequence(const unsigned char *p, const unsigned char *end) {
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

static inline void js_sink_put(json_sink *k, const unsigned char *b, size_t n) {
    if (k->buf == NULL) return; /* validating only: nothing to keep */
    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x20 || b[i] == 0x7f) k->control = true;
        if (k->len < k->cap) k->buf[k->len] = (char)b[i];
        k->len++;
    }
}

static inline int js_hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 if not. */
static inline long js_hex4(const unsigned char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = js_hex_value(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Code point cp (1..U+10FFFF, no surrogate) as UTF-8 into k. */
static inline void js_put_code_point(json_sink *k, long cp) {
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
    js_sink_put(k, u, n);
}

/* \uXXXX (s->p at the 'u'), a surrogate pair as one code point, as UTF-8. */
static inline bool js_unicode_escape(json_scan *s, json_sink *k) {
    long cp;
    if (s->end - s->p < 5 || (cp = js_hex4(s->p + 1)) < 0) return js_fail(s, "invalid \\u escape");
    s->p += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff) return js_fail(s, "lone low surrogate in a \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo;
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
            (lo = js_hex4(s->p + 2)) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return js_fail(s, "high surrogate not followed by a low one in a \\u escape");
        s->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) return js_fail(s, "\\u0000 in a string");
    js_put_code_point(k, cp);
    return true;
}

/* s->p at the backslash. */
static inline bool js_escape(json_scan *s, json_sink *k) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    s->p++;
    if (s->p >= s->end) return js_fail(s, "string not terminated");
    if (*s->p == 'u') return js_unicode_escape(s, k);
    const char *hit = *s->p ? strchr(from, *s->p) : NULL;
    if (hit == NULL) return js_fail(s, "invalid escape in a string");
    unsigned char c = (unsigned char)to[hit - from];
    js_sink_put(k, &c, 1);
    s->p++;
    return true;
}

/* Bytes that stand for themselves in a string: printable ASCII but " and \. */
static inline bool js_plain_ascii(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Skip the bytes that stand for themselves: 16 at a time with SSE2 (every
 * x86-64 has it), else 8 at a time, then byte by byte. A block is passed over
 * when none of its bytes is < 0x20, '"', '\\' or >= 0x80. */
static inline const unsigned char *js_skip_plain(const unsigned char *p, const unsigned char *end) {
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
    while (p < end && js_plain_ascii(*p))
        p++;
    return p;
}

/* The rest of a string from s->p, past its first escape or non-ASCII byte:
 * the slow path, kept out of line so that the common one stays small. */
static __attribute__((noinline, unused)) bool js_string_rest(json_scan *s, json_sink *k) {
    for (;;) {
        const unsigned char *run = s->p;
        s->p = js_skip_plain(s->p, s->end);
        js_sink_put(k, run, (size_t)(s->p - run));
        if (s->p >= s->end) return js_fail(s, "string not terminated");
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c == '\\') {
            if (!js_escape(s, k)) return false;
        } else if (c < 0x20) {
            return js_fail(s, "control character in a string");
        } else {
            size_t n = js_utf8_sequence(s->p, s->end);
            if (n == 0) return js_fail(s, "invalid UTF-8");
            js_sink_put(k, s->p, n);
            s->p += n;
        }
    }
}

/* A string, s->p at the opening quote; decoded into k. Most strings are
 * plain ASCII through their closing quote: that path is short, and *plain
 * (may be NULL) tells the caller it was taken (no escape, no byte >= 0x80). */
static inline bool js_string(json_scan *s, json_sink *k, bool *plain) {
    const unsigned char *start = s->p + 1;
    s->p = js_skip_plain(start, s->end);
    js_sink_put(k, start, (size_t)(s->p - start));
    if (s->p < s->end && *s->p == '"') {
        s->p++;
        if (plain) *plain = true;
        return true;
    }
    if (plain) *plain = false;
    return js_string_rest(s, k);
}

/* ------------------------------------------------------------- numbers -- */

/* Whether the real number in tok[0..len) (already checked against the
 * grammar) is beyond DBL_MAX once rounded, as jansson's strtod finds:
 * jansson refuses those and accepts underflow. Decided from the decimal
 * exponent; only at exactly 10^308 are the digits handed to strtod, at most
 * 400 of them plus one sticky digit that keeps the rounding exact. */
static __attribute__((noinline, unused)) bool js_real_overflows(const unsigned char *tok,
                                                                size_t len) {
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

static inline bool js_is_digit(const json_scan *s) {
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static inline void js_skip_digits(json_scan *s) {
    while (js_is_digit(s))
        s->p++;
}

/* A number at s->p; an integer must fit int64 (jansson says "too big
 * integer"). *real: it has a fraction or an exponent; else *value is it. */
static inline bool js_number(json_scan *s, bool *real, int64_t *value) {
    const unsigned char *tok = s->p;
    bool neg = *s->p == '-', big = false;
    uint64_t mag = 0;
    *real = false;
    if (neg) s->p++;
    if (!js_is_digit(s)) return js_fail(s, "invalid number");
    if (*s->p == '0') {
        s->p++;
        if (js_is_digit(s)) return js_fail(s, "number with a leading zero");
    }
    for (; js_is_digit(s); s->p++) {
        unsigned d = *s->p - '0';
        big = big || mag > (UINT64_MAX - d) / 10;
        mag = mag * 10 + d;
    }
    if (s->p < s->end && *s->p == '.') {
        *real = true;
        s->p++;
        if (!js_is_digit(s)) return js_fail(s, "no digit after a decimal point");
        js_skip_digits(s);
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        *real = true;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!js_is_digit(s)) return js_fail(s, "no digit in an exponent");
        js_skip_digits(s);
    }
    if (*real)
        return js_real_overflows(tok, (size_t)(s->p - tok)) ? js_fail(s, "real number overflow")
                                                            : true;
    if (big || mag > (uint64_t)INT64_MAX + neg) return js_fail(s, "integer beyond 64 bits");
    *value = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

/* "true", "false" or "null" (word) at s->p. */
static inline bool js_literal(json_scan *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return js_fail(s, "invalid token");
    s->p += n;
    return true;
}

#endif
