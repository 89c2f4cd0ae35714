/* fuzz_http_parse.c - libFuzzer target for ingest/http_parse.c.
 *
 * Input: raw bytes from a client. Checked:
 *  - http_parse_head under a 16 KiB cap and under a small cap taken from the
 *    first byte: an OK head lies inside the buffer and the cap, ends in
 *    CRLF CRLF, has a path starting with '/' with no query, a signature inside
 *    the head, and never both chunked and a Content-Length; both caps agree
 *    wherever the small one does not bind; the head alone parses the same as
 *    the head with what follows it, and a proper prefix of it is INCOMPLETE;
 *  - the chunked decoder on the bytes after an OK head (else on all of them),
 *    fed whole and split at a point taken from the input, gives the same
 *    result, and on DONE the same body and the same bytes consumed, never
 *    more decoded than max_body. */
#include "ingest/http_parse.h"

#include "tests/fuzz/fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 16384

/* parse buf[0..len) from an exact-size heap copy, so a read past len shows */
static http_parse_result parse_copy(const char *buf, size_t len, size_t max_head, http_head *h) {
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    const char *why = NULL;
    http_parse_result r = http_parse_head(copy, len, max_head, h, &why);
    free(copy);
    return r;
}

static void check_head(const char *buf, size_t len, size_t max_head, http_parse_result r,
                       const http_head *h, const char *why) {
    const char *code = http_parse_result_code(r);
    CHECK(code != NULL && code[0] != '\0');
    CHECK(r >= HTTP_PARSE_OK && r <= HTTP_PARSE_AMBIGUOUS_LENGTH);
    if (r != HTTP_PARSE_OK) {
        /* (INCOMPLETE sets why too, per the header; the unit test checks that) */
        CHECK(r == HTTP_PARSE_INCOMPLETE || (why != NULL && why[0] != '\0'));
        CHECK(r != HTTP_PARSE_INCOMPLETE || len <= max_head);
        return;
    }
    CHECK(h->head_len >= 4 && h->head_len <= len && h->head_len <= max_head);
    CHECK(memcmp(buf + h->head_len - 4, "\r\n\r\n", 4) == 0);
    CHECK(h->method >= HTTP_GET && h->method <= HTTP_OTHER);
    CHECK(h->minor == 0 || h->minor == 1);
    CHECK(h->path != NULL && h->path >= buf && h->path_len > 0);
    CHECK(h->path + h->path_len <= buf + h->head_len);
    CHECK(h->path[0] == '/' && memchr(h->path, '?', h->path_len) == NULL);
    for (size_t i = 0; i < h->path_len; i++)
        CHECK((unsigned char)h->path[i] > 0x20 && (unsigned char)h->path[i] < 0x7f);
    if (h->signature != NULL) {
        CHECK(h->signature >= buf && h->signature + h->signature_len <= buf + h->head_len);
        CHECK(memchr(h->signature, '\r', h->signature_len) == NULL);
        CHECK(memchr(h->signature, '\n', h->signature_len) == NULL);
        const char *last = h->signature + h->signature_len - 1; /* OWS trimmed */
        CHECK(h->signature_len == 0 || (*h->signature != ' ' && *h->signature != '\t'));
        CHECK(h->signature_len == 0 || (*last != ' ' && *last != '\t'));
    }
    CHECK(h->content_length >= -1);
    CHECK(!(h->chunked && h->content_length >= 0));
    CHECK(!(h->chunked && h->minor == 0));
}

/* the same head, found in two buffers whose bytes agree up to head_len */
static void check_same_head(const http_head *a, const char *abuf, const http_head *b,
                            const char *bbuf) {
    CHECK(a->head_len == b->head_len && a->method == b->method && a->minor == b->minor);
    CHECK(a->path - abuf == b->path - bbuf && a->path_len == b->path_len);
    CHECK(a->keep_alive == b->keep_alive && a->chunked == b->chunked);
    CHECK(a->expect_continue == b->expect_continue && a->content_length == b->content_length);
    CHECK((a->signature == NULL) == (b->signature == NULL));
    if (a->signature != NULL)
        CHECK(a->signature - abuf == b->signature - bbuf && a->signature_len == b->signature_len);
}

static void fuzz_head(const char *buf, size_t size, http_head *h, http_parse_result *out) {
    const char *why = NULL;
    http_parse_result r = http_parse_head(buf, size, MAX_HEAD, h, &why);
    check_head(buf, size, MAX_HEAD, r, h, why);
    *out = r;

    /* a small cap (16..1036 bytes): the answer changes only where the cap binds */
    size_t small = 16 + (size ? (size_t)(unsigned char)buf[0] * 4 : 0);
    http_head hs;
    why = NULL;
    http_parse_result rs = http_parse_head(buf, size, small, &hs, &why);
    check_head(buf, size, small, rs, &hs, why);
    if (size < small) CHECK(rs == r);
    if (r == HTTP_PARSE_OK && h->head_len <= small) CHECK(rs == HTTP_PARSE_OK);
    if (r == HTTP_PARSE_OK && h->head_len > small) CHECK(rs == HTTP_PARSE_TOO_LARGE);
    if (rs == HTTP_PARSE_OK) CHECK(r == HTTP_PARSE_OK);
    if (r == HTTP_PARSE_OK && rs == HTTP_PARSE_OK) check_same_head(h, buf, &hs, buf);
    if (r != HTTP_PARSE_OK) return;

    /* the head alone parses the same; a proper prefix of it is INCOMPLETE */
    char *copy = malloc(h->head_len);
    CHECK(copy != NULL);
    memcpy(copy, buf, h->head_len);
    http_head alone;
    CHECK(http_parse_head(copy, h->head_len, MAX_HEAD, &alone, NULL) == HTTP_PARSE_OK);
    check_same_head(h, buf, &alone, copy);
    free(copy);
    size_t cut = size > 1 ? ((size_t)(unsigned char)buf[size - 1] * 131) % h->head_len : 0;
    CHECK(parse_copy(buf, cut, MAX_HEAD, &alone) == HTTP_PARSE_INCOMPLETE);
}

/* ---------------------------------------------------------- chunked -- */

typedef struct body {
    char *data;
    size_t len, cap; /* cap: max_body, more would break the decoder's limit */
} body;

static int collect(void *arg, const char *p, size_t n) {
    body *b = arg;
    CHECK(n <= b->cap - b->len);
    if (n > 0) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Feed in[0..split) from an exact-size copy, then (on MORE) what was not
 * consumed followed by the rest, as http.c does. *used: the total consumed. */
static http_chunk_result decode(const char *in, size_t len, size_t split, size_t max_body, body *b,
                                size_t *used) {
    http_chunked c;
    size_t u = 0;
    http_chunked_init(&c, max_body);
    char *first = malloc(split ? split : 1);
    CHECK(first != NULL);
    memcpy(first, in, split);
    http_chunk_result r = http_chunked_feed(&c, first, split, &u, collect, b);
    free(first);
    CHECK(u <= split);
    *used = u;
    if (r == HTTP_CHUNK_MORE && split < len) {
        size_t u2 = 0;
        r = http_chunked_feed(&c, in + u, len - u, &u2, collect, b);
        CHECK(u2 <= len - u);
        *used += u2;
    }
    CHECK(c.body_len <= max_body);
    if (r == HTTP_CHUNK_DONE || r == HTTP_CHUNK_MORE) CHECK(c.body_len == b->len);
    return r;
}

static void fuzz_chunked(const char *in, size_t len, size_t max_body, size_t split) {
    body whole = {malloc(max_body ? max_body : 1), 0, max_body};
    body parts = {malloc(max_body ? max_body : 1), 0, max_body};
    CHECK(whole.data != NULL && parts.data != NULL);
    size_t used_whole, used_parts;
    http_chunk_result rw = decode(in, len, len, max_body, &whole, &used_whole);
    http_chunk_result rp = decode(in, len, split, max_body, &parts, &used_parts);
    CHECK(rw >= HTTP_CHUNK_DONE && rw <= HTTP_CHUNK_TOO_LARGE);
    CHECK(rw == rp);
    if (rw == HTTP_CHUNK_DONE) {
        CHECK(used_whole == used_parts && used_whole >= 5); /* "0\r\n\r\n" at least */
        CHECK(memcmp(in + used_whole - 2, "\r\n", 2) == 0);
        CHECK(whole.len == parts.len && memcmp(whole.data, parts.data, whole.len) == 0);
    }
    free(whole.data);
    free(parts.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    http_head h;
    http_parse_result r;
    fuzz_head(buf, size, &h, &r);

    const char *in = buf;
    size_t len = size;
    if (r == HTTP_PARSE_OK) {
        in += h.head_len;
        len -= h.head_len;
    }
    size_t max_body = size > 1 ? (size_t)(unsigned char)buf[1] * 8 : 64;
    size_t split = size > 2 ? ((size_t)(unsigned char)buf[size - 2] * 257) % (len + 1) : len / 2;
    fuzz_chunked(in, len, max_body, split);
    return 0;
}
