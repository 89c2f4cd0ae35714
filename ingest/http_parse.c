/* http_parse.c - the request-head parser and chunked decoder of http_parse.h.
 *
 * The head is parsed only once it is complete (its CRLF CRLF is in the
 * buffer), in one pass over its lines. Until then it is only searched for
 * its end, a memchr over at most the cap per read. */
#include "http_parse.h"

#include <string.h>

#define MAX_SIZE_LINE     1024  /* a chunk-size line, extensions included */
#define MAX_TRAILER       16384 /* the trailer section of a chunked body */
#define MAX_LENGTH_DIGITS 18    /* fits int64_t whatever the digits */

/* tchar of RFC 9110 5.6.2 */
static bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP, HTAB and obs-text: anything but CTLs other than HTAB */
static bool is_field_byte(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool ieq(const char *a, size_t alen, const char *lit) {
    size_t n = strlen(lit);
    if (alen != n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)lit[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

/* Where the head ends (just past CRLF CRLF), or 0. */
static size_t head_end(const char *buf, size_t len) {
    const char *p = buf, *end = buf + len;
    while (end - p >= 4) {
        const char *cr = memchr(p, '\r', (size_t)(end - p - 3));
        if (cr == NULL) return 0;
        if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n') return (size_t)(cr + 4 - buf);
        p = cr + 1;
    }
    return 0;
}

static const struct {
    const char *name;
    http_method m;
} methods[] = {{"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
               {"PUT", HTTP_PUT},     {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
               {"PATCH", HTTP_PATCH}, {"TRACE", HTTP_TRACE},   {"CONNECT", HTTP_CONNECT}};

static http_method method_of(const char *p, size_t n) {
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, p, n) == 0) return methods[i].m;
    return HTTP_OTHER;
}

/* The path of an origin-form or absolute-form target, query left out. */
static int target_path(const char *t, size_t n, http_head *h) {
    size_t i = 0;
    if (n >= 7 && (ieq(t, 7, "http://") || (n >= 8 && ieq(t, 8, "https://")))) {
        i = t[4] == ':' ? 7 : 8;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
        if (i == n || t[i] != '/') return -1;
    }
    if (i >= n || t[i] != '/') return -1;
    size_t j = i;
    if (memchr(t, '#', n)) return -1; /* a fragment is never sent */
    while (j < n && t[j] != '?')
        j++;
    h->path = t + i;
    h->path_len = j - i;
    return 0;
}

/* request-line = method SP request-target SP HTTP-version */
static int request_line(const char *p, size_t n, http_head *h) {
    const char *sp1 = memchr(p, ' ', n);
    if (sp1 == NULL || sp1 == p) return -1;
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) return -1;
    h->method = method_of(p, (size_t)(sp1 - p));
    const char *t = sp1 + 1, *end = p + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (sp2 == NULL || sp2 == t) return -1;
    for (const char *q = t; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) return -1;
    if (target_path(t, (size_t)(sp2 - t), h) != 0) return -1;
    const char *v = sp2 + 1;
    if (end - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1')) return -1;
    h->minor = v[7] - '0';
    return 0;
}

static int parse_length(const char *v, size_t n, int64_t *out) {
    if (n == 0 || n > MAX_LENGTH_DIGITS) return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

/* Does a comma-separated list hold the token (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *token) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && ieq(v + s, e - s, token)) return true;
    }
    return false;
}

static http_parse_result fail(const char **why, const char *what, http_parse_result r) {
    *why = what;
    return r;
}

typedef struct fields_seen {
    int lengths;
    bool te, conn_close, conn_keep_alive;
} fields_seen;

/* One field line (no CRLF): name ":" OWS value OWS. */
static http_parse_result field(const char *p, size_t n, http_head *h, fields_seen *s,
                               const char **why) {
    const char *colon = memchr(p, ':', n);
    if (colon == NULL || colon == p)
        return fail(why, "a header line without a name and colon", HTTP_PARSE_BAD);
    for (const char *q = p; q < colon; q++)
        if (!is_tchar((unsigned char)*q))
            return fail(why, "a header name with a character no name may hold", HTTP_PARSE_BAD);
    const char *v = colon + 1, *end = p + n;
    for (const char *q = v; q < end; q++)
        if (!is_field_byte((unsigned char)*q))
            return fail(why, "a control character in a header value", HTTP_PARSE_BAD);
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t name_len = (size_t)(colon - p), vlen = (size_t)(end - v);
    if (ieq(p, name_len, "content-length")) {
        if (++s->lengths > 1)
            return fail(why, "two Content-Length headers", HTTP_PARSE_AMBIGUOUS_LENGTH);
        if (parse_length(v, vlen, &h->content_length) != 0)
            return fail(why, "a Content-Length that is not a decimal number", HTTP_PARSE_BAD);
    } else if (ieq(p, name_len, "transfer-encoding")) {
        if (s->te || !ieq(v, vlen, "chunked"))
            return fail(why, "a Transfer-Encoding other than chunked", HTTP_PARSE_BAD);
        s->te = true;
    } else if (ieq(p, name_len, "connection")) {
        s->conn_close |= list_has(v, vlen, "close");
        s->conn_keep_alive |= list_has(v, vlen, "keep-alive");
    } else if (ieq(p, name_len, "expect")) {
        h->expect_continue |= ieq(v, vlen, "100-continue");
    } else if (ieq(p, name_len, "stripe-signature") && h->signature == NULL) {
        h->signature = v;
        h->signature_len = vlen;
    }
    return HTTP_PARSE_OK;
}

/* The lines of a complete head of `len` bytes (ending CRLF CRLF). */
static http_parse_result lines(const char *buf, size_t len, http_head *h, const char **why) {
    fields_seen s = {0};
    const char *p = buf, *end = buf + len - 2; /* the final CRLF */
    bool first = true;
    while (p < end) {
        const char *cr = memchr(p, '\r', (size_t)(end - p));
        if (cr == NULL || cr[1] != '\n') return fail(why, "a bare CR in the head", HTTP_PARSE_BAD);
        size_t n = (size_t)(cr - p);
        if (memchr(p, '\n', n)) return fail(why, "a bare LF in the head", HTTP_PARSE_BAD);
        if (first) {
            if (request_line(p, n, h) != 0)
                return fail(why, "not an HTTP/1.0 or 1.1 request line", HTTP_PARSE_BAD);
            first = false;
        } else {
            if (n == 0 || *p == ' ' || *p == '\t')
                return fail(why, "a folded or empty header line", HTTP_PARSE_BAD);
            http_parse_result r = field(p, n, h, &s, why);
            if (r != HTTP_PARSE_OK) return r;
        }
        p = cr + 2;
    }
    if (first) return fail(why, "an empty request line", HTTP_PARSE_BAD);
    if (s.te && (s.lengths || h->minor == 0))
        return fail(why, "Transfer-Encoding with Content-Length, or in HTTP/1.0", HTTP_PARSE_BAD);
    h->chunked = s.te;
    h->keep_alive = h->minor == 1 ? !s.conn_close : (s.conn_keep_alive && !s.conn_close);
    return HTTP_PARSE_OK;
}

/* Is there a LF without its CR? (Such a head never ends: say so at once.) */
static bool bare_lf(const char *buf, size_t len) {
    for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++)
        if (p == buf || p[-1] != '\r') return true;
    return false;
}

http_parse_result http_parse_head(const char *buf, size_t len, size_t max_head, http_head *h,
                                  const char **why) {
    const char *unused;
    if (why == NULL) why = &unused;
    size_t n = head_end(buf, len < max_head ? len : max_head);
    if (n == 0) {
        if (bare_lf(buf, len < max_head ? len : max_head))
            return fail(why, "a bare LF in the head", HTTP_PARSE_BAD);
        if (len >= max_head)
            return fail(why, "a request head over the size limit", HTTP_PARSE_TOO_LARGE);
        return fail(why, "no end of the request head yet", HTTP_PARSE_INCOMPLETE);
    }
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    h->head_len = n;
    return lines(buf, n, h, why);
}

const char *http_parse_result_code(http_parse_result r) {
    switch (r) {
    case HTTP_PARSE_OK:
        return "ok";
    case HTTP_PARSE_INCOMPLETE:
        return "incomplete_request";
    case HTTP_PARSE_TOO_LARGE:
        return "headers_too_large";
    case HTTP_PARSE_AMBIGUOUS_LENGTH:
        return "ambiguous_content_length";
    default:
        return "bad_request";
    }
}

/* ------------------------------------------------------------- chunked -- */

enum { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER, CH_DONE };

void http_chunked_init(http_chunked *c, size_t max_body) {
    memset(c, 0, sizeof(*c));
    c->phase = CH_SIZE;
    c->max_body = max_body;
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* chunk-size [ chunk-ext ], the line without its CRLF. */
static http_chunk_result size_line(http_chunked *c, const char *p, size_t n) {
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n && hex_value(p[i]) >= 0; i++) {
        if (i == 16) return HTTP_CHUNK_BAD;
        size = size << 4 | (uint64_t)hex_value(p[i]);
    }
    if (i == 0) return HTTP_CHUNK_BAD;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i < n && p[i] != ';') return HTTP_CHUNK_BAD;
    for (; i < n; i++)
        if (!is_field_byte((unsigned char)p[i])) return HTTP_CHUNK_BAD;
    if (size > c->max_body - c->body_len) return HTTP_CHUNK_TOO_LARGE;
    c->left = size;
    c->phase = size ? CH_DATA : CH_TRAILER;
    return HTTP_CHUNK_MORE;
}

/* One line (size or trailer) at in[0..len): its length with CRLF, or 0 when
 * it is not complete yet (r set when it never can be). */
static size_t take_line(http_chunked *c, const char *in, size_t len, size_t cap,
                        http_chunk_result *r) {
    const char *lf = memchr(in, '\n', len < cap ? len : cap);
    if (lf == NULL) {
        if (len >= cap) *r = c->phase == CH_SIZE ? HTTP_CHUNK_BAD : HTTP_CHUNK_TOO_LARGE;
        return 0;
    }
    if (lf == in || lf[-1] != '\r') {
        *r = HTTP_CHUNK_BAD;
        return 0;
    }
    return (size_t)(lf - in) + 1;
}

http_chunk_result http_chunked_feed(http_chunked *c, const char *in, size_t len, size_t *used,
                                    int (*emit)(void *arg, const char *p, size_t n), void *arg) {
    size_t at = 0;
    http_chunk_result r = HTTP_CHUNK_MORE;
    while (r == HTTP_CHUNK_MORE && at < len && c->phase != CH_DONE) {
        const char *p = in + at;
        size_t n = len - at, line;
        switch (c->phase) {
        case CH_SIZE:
            if ((line = take_line(c, p, n, MAX_SIZE_LINE, &r)) == 0) goto out;
            r = size_line(c, p, line - 2);
            at += line;
            break;
        case CH_DATA:
            line = n < c->left ? n : (size_t)c->left;
            if (emit(arg, p, line) != 0) {
                r = HTTP_CHUNK_BAD;
                goto out;
            }
            c->left -= line;
            c->body_len += line;
            at += line;
            if (c->left == 0) c->phase = CH_DATA_CRLF;
            break;
        case CH_DATA_CRLF:
            if (n < 2) goto out;
            if (p[0] != '\r' || p[1] != '\n') {
                r = HTTP_CHUNK_BAD;
                goto out;
            }
            at += 2;
            c->phase = CH_SIZE;
            break;
        default: /* CH_TRAILER: field lines, then an empty line */
            if ((line = take_line(c, p, n, MAX_TRAILER - c->trailer_len, &r)) == 0) goto out;
            for (size_t i = 0; i + 2 < line; i++)
                if (!is_field_byte((unsigned char)p[i])) r = HTTP_CHUNK_BAD;
            c->trailer_len += line;
            at += line;
            if (line == 2) c->phase = CH_DONE;
            break;
        }
    }
out:
    *used = at;
    if (r == HTTP_CHUNK_MORE && c->phase == CH_DONE) r = HTTP_CHUNK_DONE;
    return r;
}
