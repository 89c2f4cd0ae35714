/* test_http_parse.c - unit tests for ingest/http_parse.c, the strict request
 * parser in front of the webhook handler: the fields of a real Stripe POST,
 * incremental reads, target and method forms, keep-alive, every framing
 * ambiguity RFC 9112 lets a proxy read differently (each must be refused), the
 * head cap, and the chunked decoder fed whole, in pieces and over its limits.
 * Every parse reads from a heap copy of exactly the given length, so
 * AddressSanitizer catches a read past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/http_parse.h"

#define MAX_HEAD 16384
#define STRIPE_HEAD                                                                                \
    "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"              \
    "Stripe-Signature: t=1,v1=ab\r\nContent-Length: 17\r\n\r\n"

/* --------------------------------------------------------------- head -- */

static char *held; /* the copy last parsed: h's pointers point into it */
static size_t held_len;

/* plausible but wrong values: a field the parser leaves unset shows */
static const http_head poison = {
    HTTP_TRACE, "poison", 6, 7, true, true, true, 999, "poison", 6, 999,
};

static http_parse_result parse_n(const char *s, size_t n, size_t max_head, http_head *h) {
    const char *why = NULL;
    free(held);
    held = malloc(n ? n : 1);
    assert_non_null(held);
    memcpy(held, s, n);
    held_len = n;
    *h = poison;
    http_parse_result r = http_parse_head(held, n, max_head, h, &why);
    if (r != HTTP_PARSE_OK && r != HTTP_PARSE_INCOMPLETE) { /* see test_codes_and_why */
        assert_non_null(why);
        assert_true(why[0] != '\0');
    }
    return r;
}

static http_parse_result parse(const char *s, http_head *h) {
    return parse_n(s, strlen(s), MAX_HEAD, h);
}

static void expect_result(const char *s, http_parse_result want) {
    http_head h;
    http_parse_result r = parse(s, &h);
    if (r != want)
        fail_msg("%s: got %s, want %s", s, http_parse_result_code(r), http_parse_result_code(want));
}

static void ok(const char *s, http_head *h) {
    http_parse_result r = parse(s, h);
    if (r != HTTP_PARSE_OK) fail_msg("%s: got %s, want ok", s, http_parse_result_code(r));
}

static void expect_bad(const char *s) {
    expect_result(s, HTTP_PARSE_BAD);
}

/* p[0..n) is want and lies inside the parsed copy */
static void assert_field(const char *p, size_t n, const char *want) {
    assert_non_null(p);
    assert_true(p >= held && p + n <= held + held_len);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

/* "POST /w HTTP/1.<minor>\r\nHost: x\r\n<fields>\r\n" */
static const char *with_fields(int minor, const char *fields) {
    static char req[512];
    snprintf(req, sizeof(req), "POST /w HTTP/1.%d\r\nHost: x\r\n%s\r\n", minor, fields);
    return req;
}

static void test_stripe_post(void **state) {
    (void)state;
    const char *head = STRIPE_HEAD;
    http_head h;
    ok(head, &h);
    assert_int_equal(h.method, HTTP_POST);
    assert_field(h.path, h.path_len, "/webhooks/stripe");
    assert_int_equal(h.minor, 1);
    assert_true(h.keep_alive);
    assert_false(h.chunked);
    assert_false(h.expect_continue);
    assert_int_equal(h.content_length, 17);
    assert_field(h.signature, h.signature_len, "t=1,v1=ab");
    assert_ptr_equal(h.signature, held + (strstr(head, "t=1,v1=ab") - head));
    assert_int_equal(h.head_len, strlen(head));
}

static void test_body_after_head(void **state) {
    (void)state;
    http_head alone, body;
    ok(STRIPE_HEAD, &alone);
    size_t path_at = (size_t)(alone.path - held), sig_at = (size_t)(alone.signature - held);
    ok(STRIPE_HEAD "{\"id\":\"evt_1234\"}", &body);
    assert_int_equal(body.head_len, alone.head_len);
    assert_ptr_equal(body.path, held + path_at);
    assert_ptr_equal(body.signature, held + sig_at);
    assert_int_equal(body.content_length, alone.content_length);
    /* the head ends at its own CRLF CRLF, not at one in the body */
    ok(STRIPE_HEAD "\r\n\r\nGET / HTTP/1.1\r\n\r\n", &body);
    assert_int_equal(body.head_len, alone.head_len);
}

static void test_every_prefix_incomplete(void **state) {
    (void)state;
    const char *heads[] = {STRIPE_HEAD, "GET /x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                           ("POST /w HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            "Expect: 100-continue\r\nX-Tab: a\tb\r\n\r\n")};
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        http_head h;
        size_t len = strlen(heads[i]);
        for (size_t n = 0; n < len; n++)
            if (parse_n(heads[i], n, MAX_HEAD, &h) != HTTP_PARSE_INCOMPLETE)
                fail_msg("%s: prefix of %zu bytes is not incomplete", heads[i], n);
        assert_int_equal(parse_n(heads[i], len, MAX_HEAD, &h), HTTP_PARSE_OK);
        assert_int_equal(h.head_len, len);
    }
}

static void test_target_forms(void **state) {
    (void)state;
    http_head h;
    ok("POST /webhooks/stripe?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", &h);
    assert_field(h.path, h.path_len, "/webhooks/stripe");
    ok("POST http://example.com/webhooks/stripe?a HTTP/1.1\r\nHost: x\r\n\r\n", &h);
    assert_field(h.path, h.path_len, "/webhooks/stripe");
    ok("GET /?q HTTP/1.1\r\nHost: x\r\n\r\n", &h);
    assert_field(h.path, h.path_len, "/");
    expect_bad("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_bad("POST webhooks/stripe HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_bad("POST ?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_bad("POST  HTTP/1.1\r\nHost: x\r\n\r\n");
}

static void test_methods(void **state) {
    (void)state;
    static const char *names[] = {"GET",   "HEAD",    "POST", "PUT",  "DELETE", "OPTIONS", "PATCH",
                                  "TRACE", "CONNECT", "FOO",  "post", "Get",    "M-SEARCH"};
    static const http_method want[] = {
        HTTP_GET,   HTTP_HEAD,    HTTP_POST,  HTTP_PUT,   HTTP_DELETE, HTTP_OPTIONS, HTTP_PATCH,
        HTTP_TRACE, HTTP_CONNECT, HTTP_OTHER, HTTP_OTHER, HTTP_OTHER,  HTTP_OTHER};
    char req[128];
    http_head h;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(req, sizeof(req), "%s /w HTTP/1.1\r\nHost: x\r\n\r\n", names[i]);
        ok(req, &h);
        if (h.method != want[i]) fail_msg("%s: method %d", names[i], (int)h.method);
    }
    expect_bad("P@ST /w HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_bad("GE{T /w HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_bad("/w HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_bad(" GET /w HTTP/1.1\r\nHost: x\r\n\r\n");
}

static void expect_keep_alive(int minor, const char *fields, bool keep_alive) {
    http_head h;
    ok(with_fields(minor, fields), &h);
    assert_int_equal(h.minor, minor);
    if (h.keep_alive != keep_alive) fail_msg("1.%d %s: keep_alive %d", minor, fields, h.keep_alive);
}

static void test_versions_and_keep_alive(void **state) {
    (void)state;
    expect_keep_alive(0, "", false);
    expect_keep_alive(0, "Connection: keep-alive\r\n", true);
    expect_keep_alive(0, "Connection: Keep-Alive\r\n", true);
    expect_keep_alive(0, "Connection: close\r\n", false);
    expect_keep_alive(1, "", true);
    expect_keep_alive(1, "Connection: keep-alive\r\n", true);
    expect_keep_alive(1, "Connection: close\r\n", false);
    expect_keep_alive(1, "Connection: foo, Close\r\n", false);
    static const char *bad[] = {"HTTP/9.9", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1", ""};
    char req[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(req, sizeof(req), "GET / %s\r\nHost: x\r\n\r\n", bad[i]);
        expect_bad(req);
    }
}

static void test_field_syntax(void **state) {
    (void)state;
    static const char *bad[] = {
        "Host x\r\n",         "Host : x\r\n",     "Host\t: x\r\n",     ": x\r\n",
        "X(A: b\r\n",         "X-A: a\r\n b\r\n", "X-A: a\r\n\tb\r\n", /* obs-fold */
        " X-A: b\r\n",        "X-A: a\001b\r\n",  "X-A: a\033b\r\n",   "X-A: a\177b\r\n",
        "X-A: a\nX-B: b\r\n", /* bare LF */
        "X-A: a\rX-B: b\r\n", /* bare CR */
        "X-A: a\rb\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(with_fields(1, bad[i]));
    expect_bad("GET / HTTP/1.1\nHost: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\rHost: x\r\n\r\n");

    static const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    http_head h;
    assert_int_equal(parse_n(nul, sizeof(nul) - 1, MAX_HEAD, &h), HTTP_PARSE_BAD);
    ok(with_fields(1, "X-A: a\tb\r\n"), &h); /* HTAB is allowed inside a value */

    /* LF alone ends no line: never a head (BAD, or waits for a CRLF CRLF) */
    const char *lf = "GET / HTTP/1.1\nHost: x\n\n";
    http_parse_result r = parse(lf, &h);
    assert_true(r == HTTP_PARSE_BAD || r == HTTP_PARSE_INCOMPLETE);
    r = parse_n(lf, strlen(lf), strlen(lf), &h);
    assert_true(r == HTTP_PARSE_BAD || r == HTTP_PARSE_TOO_LARGE);
}

static void test_values_names_first_signature(void **state) {
    (void)state;
    http_head h;
    ok(with_fields(1, "Stripe-Signature:   t=1  \r\n"), &h);
    assert_field(h.signature, h.signature_len, "t=1");
    ok(with_fields(1, "Stripe-Signature:\tt=1\t\r\n"), &h);
    assert_field(h.signature, h.signature_len, "t=1");
    ok(with_fields(1, "stripe-signature: t=2\r\nCONTENT-LENGTH: 5\r\n"), &h);
    assert_field(h.signature, h.signature_len, "t=2");
    assert_int_equal(h.content_length, 5);
    ok(with_fields(1, "Stripe-Signature: t=1,v1=aa\r\nstripe-signature: t=2,v1=bb\r\n"), &h);
    assert_field(h.signature, h.signature_len, "t=1,v1=aa"); /* the first one */
    ok(with_fields(1, "Content-Length:  42 \r\n"), &h);
    assert_int_equal(h.content_length, 42);
    ok("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &h);
    assert_null(h.signature);
    assert_int_equal(h.content_length, -1);
    assert_false(h.chunked);
}

static void test_content_length(void **state) {
    (void)state;
    static const char *bad[] = {"-5", "abc", "1x", "0x10", "2, 3", "+5", "", "1 2", "5.0"};
    char fields[128];
    http_head h;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(fields, sizeof(fields), "Content-Length: %s\r\n", bad[i]);
        expect_bad(with_fields(1, fields));
    }
    expect_bad(with_fields(1, "Content-Length: 99999999999999999999\r\n"));
    expect_bad(with_fields(1, "Content-Length: 9999999999999999999\r\n")); /* > INT64_MAX */
    ok(with_fields(1, "Content-Length: 0\r\n"), &h);
    assert_int_equal(h.content_length, 0);
    expect_result(with_fields(1, "Content-Length: 5\r\nContent-Length: 5\r\n"),
                  HTTP_PARSE_AMBIGUOUS_LENGTH);
    expect_result(with_fields(1, "Content-Length: 5\r\nX: y\r\ncontent-length: 6\r\n"),
                  HTTP_PARSE_AMBIGUOUS_LENGTH);
}

static void test_transfer_encoding_expect(void **state) {
    (void)state;
    static const char *chunked[] = {"chunked", "CHUNKED", "Chunked", " chunked "};
    char fields[128];
    http_head h;
    for (size_t i = 0; i < sizeof(chunked) / sizeof(chunked[0]); i++) {
        snprintf(fields, sizeof(fields), "Transfer-Encoding:%s\r\n", chunked[i]);
        ok(with_fields(1, fields), &h);
        assert_true(h.chunked);
        assert_int_equal(h.content_length, -1);
    }
    expect_bad(with_fields(1, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"));
    expect_bad(with_fields(1, "Content-Length: 5\r\ntransfer-encoding: chunked\r\n"));
    expect_bad(with_fields(1, "Transfer-Encoding: gzip, chunked\r\n"));
    expect_bad(with_fields(1, "Transfer-Encoding: identity\r\n"));
    expect_bad(with_fields(1, "Transfer-Encoding: \r\n"));
    expect_bad(with_fields(0, "Transfer-Encoding: chunked\r\n"));
    ok(with_fields(1, "Expect: 100-continue\r\nContent-Length: 3\r\n"), &h);
    assert_true(h.expect_continue);
    ok(with_fields(1, "expect: 100-Continue\r\n"), &h);
    assert_true(h.expect_continue);
}

/* "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: aaa...", padded so that the head (with
 * its final CRLF CRLF when complete) is total bytes long */
static size_t padded(char *out, size_t total, bool complete) {
    const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    size_t n = strlen(start), end = complete ? 4 : 0;
    memcpy(out, start, n);
    memset(out + n, 'a', total - n - end);
    memcpy(out + total - end, "\r\n\r\n", end);
    return total;
}

static void test_head_cap(void **state) {
    (void)state;
    char buf[512];
    http_head h;
    size_t n = padded(buf, 101, false);
    assert_int_equal(parse_n(buf, n, 100, &h), HTTP_PARSE_TOO_LARGE);
    n = padded(buf, 99, false);
    assert_int_equal(parse_n(buf, n, 100, &h), HTTP_PARSE_INCOMPLETE);
    n = padded(buf, 100, true);
    assert_int_equal(parse_n(buf, n, 100, &h), HTTP_PARSE_OK);
    assert_int_equal(h.head_len, 100);
    memcpy(buf + n, "body", 4); /* the buffer may run past the cap: only the head counts */
    assert_int_equal(parse_n(buf, n + 4, 100, &h), HTTP_PARSE_OK);
    assert_int_equal(h.head_len, 100);
    n = padded(buf, 101, true);
    assert_int_equal(parse_n(buf, n, 100, &h), HTTP_PARSE_TOO_LARGE);
}

static void test_codes_and_why(void **state) {
    (void)state;
    const char *codes[HTTP_PARSE_AMBIGUOUS_LENGTH + 1];
    for (int r = HTTP_PARSE_OK; r <= HTTP_PARSE_AMBIGUOUS_LENGTH; r++) {
        codes[r] = http_parse_result_code((http_parse_result)r);
        assert_non_null(codes[r]);
        assert_true(codes[r][0] != '\0');
        assert_null(strpbrk(codes[r], " \t\r\n"));
        for (int s = 0; s < r; s++)
            assert_string_not_equal(codes[r], codes[s]);
    }
    /* every result but OK sets *why, INCOMPLETE included; why may be NULL */
    http_head h;
    const char *why = NULL;
    assert_int_equal(http_parse_head("GET / HTTP/1.1\r\n", 16, MAX_HEAD, &h, &why),
                     HTTP_PARSE_INCOMPLETE);
    assert_non_null(why);
    assert_int_equal(http_parse_head("GET / HTTP/7.0\r\n\r\n", 18, MAX_HEAD, &h, NULL),
                     HTTP_PARSE_BAD);
}

/* ------------------------------------------------------------ chunked -- */

typedef struct body {
    char data[256];
    size_t len;
    int fail; /* emit returns -1 once len reaches this (-1: never) */
} body;

static int collect(void *arg, const char *p, size_t n) {
    body *b = arg;
    if (b->fail >= 0 && b->len >= (size_t)b->fail) return -1;
    assert_true(b->len + n <= sizeof(b->data));
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Feed in[0..len) in pieces of piece bytes (from exact-size heap copies),
 * keeping what was not consumed for the next call, as http.c does. *used is
 * the total consumed. */
static http_chunk_result feed(const char *in, size_t len, size_t max_body, size_t piece, body *b,
                              size_t *used) {
    http_chunked c;
    http_chunk_result r = HTTP_CHUNK_MORE;
    size_t start = 0, end = 0; /* in[start..end) is what the next call gets */
    http_chunked_init(&c, max_body);
    *b = (body){.fail = -1};
    while (r == HTTP_CHUNK_MORE && end < len) {
        end = end + piece < len ? end + piece : len;
        char *copy = malloc(end - start ? end - start : 1);
        size_t u = 999999;
        assert_non_null(copy);
        memcpy(copy, in + start, end - start);
        r = http_chunked_feed(&c, copy, end - start, &u, collect, b);
        free(copy);
        assert_true(u <= end - start);
        start += u;
    }
    *used = start;
    return r;
}

/* in, fed whole and in pieces of 1, 2, 3 and 7 bytes, gives want; DONE consumes
 * all of in and decodes to body */
static void expect_chunks(const char *in, size_t max_body, http_chunk_result want,
                          const char *body_want) {
    size_t len = strlen(in), pieces[] = {len, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        body b;
        size_t used;
        http_chunk_result r = feed(in, len, max_body, pieces[i], &b, &used);
        if (r != want) fail_msg("%s in pieces of %zu: result %d, want %d", in, pieces[i], r, want);
        if (r != HTTP_CHUNK_DONE) continue;
        if (used != len) fail_msg("%s in pieces of %zu: used %zu", in, pieces[i], used);
        assert_int_equal(b.len, strlen(body_want));
        assert_memory_equal(b.data, body_want, b.len);
    }
}

static void test_chunked_body(void **state) {
    (void)state;
    const char *in = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    expect_chunks(in, 1024, HTTP_CHUNK_DONE, "hello world");
    expect_chunks("0\r\n\r\n", 1024, HTTP_CHUNK_DONE, "");
    expect_chunks("5;ext=1\r\nhello\r\n0;last\r\n\r\n", 1024, HTTP_CHUNK_DONE, "hello");
    expect_chunks("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", 1024, HTTP_CHUNK_DONE,
                  "0123456789abcdefghij");
    expect_chunks("0\r\nX-T: 1\r\n\r\n", 1024, HTTP_CHUNK_DONE, "");
    expect_chunks("2\r\nok\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n", 1024, HTTP_CHUNK_DONE, "ok");
}

static void test_chunked_stops_at_end(void **state) {
    (void)state;
    const char *in = "5\r\nhello\r\n0\r\n\r\nPOST /w HTTP/1.1\r\n\r\n";
    body b;
    size_t used;
    assert_int_equal(feed(in, strlen(in), 1024, strlen(in), &b, &used), HTTP_CHUNK_DONE);
    assert_int_equal(used, 15);
    assert_int_equal(feed(in, strlen(in), 1024, 1, &b, &used), HTTP_CHUNK_DONE);
    assert_int_equal(used, 15);
    assert_int_equal(b.len, 5);
}

/* a size line is never consumed in part: MORE, used 0 */
static void test_chunked_size_line_kept_whole(void **state) {
    (void)state;
    static const char *partial[] = {"1f", "1f;ext=", "1f\r"};
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        body b;
        size_t used, len = strlen(partial[i]);
        assert_int_equal(feed(partial[i], len, 1024, len, &b, &used), HTTP_CHUNK_MORE);
        assert_int_equal(used, 0);
    }
}

static void test_chunked_bad(void **state) {
    (void)state;
    expect_chunks("z\r\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("\r\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks(";ext\r\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("-1\r\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("10000000000000000\r\nhello\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("00000000000000005\r\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("5\r\nhelloXY", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("5\r\nhello\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("5\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("5;ab\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("0\r\nX-T: 1\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
    expect_chunks("5;a\rb\r\nhello\r\n0\r\n\r\n", 1024, HTTP_CHUNK_BAD, NULL);
}

static void test_chunked_too_large(void **state) {
    (void)state;
    expect_chunks("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10, HTTP_CHUNK_DONE, "helloworld");
    expect_chunks("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 9, HTTP_CHUNK_TOO_LARGE, NULL);
    expect_chunks("b\r\nhello world\r\n0\r\n\r\n", 10, HTTP_CHUNK_TOO_LARGE, NULL);
    expect_chunks("ffffffffffff\r\nabc", 1 << 20, HTTP_CHUNK_TOO_LARGE, NULL);
    expect_chunks("3\r\nabc\r\n3\r\nabc\r\n3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n", 10,
                  HTTP_CHUNK_TOO_LARGE, NULL);
}

static void test_chunked_emit_fails(void **state) {
    (void)state;
    const char *in = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    http_chunked c;
    body b = {.fail = 5}; /* takes "hello", refuses " world" */
    size_t used;
    http_chunked_init(&c, 1024);
    assert_int_equal(http_chunked_feed(&c, in, strlen(in), &used, collect, &b), HTTP_CHUNK_BAD);
    assert_int_equal(b.len, 5);
}

static int teardown(void **state) {
    (void)state;
    free(held);
    held = NULL;
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stripe_post),
        cmocka_unit_test(test_body_after_head),
        cmocka_unit_test(test_every_prefix_incomplete),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_versions_and_keep_alive),
        cmocka_unit_test(test_field_syntax),
        cmocka_unit_test(test_values_names_first_signature),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding_expect),
        cmocka_unit_test(test_head_cap),
        cmocka_unit_test(test_codes_and_why),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_chunked_stops_at_end),
        cmocka_unit_test(test_chunked_size_line_kept_whole),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_chunked_too_large),
        cmocka_unit_test(test_chunked_emit_fails),
    };
    return cmocka_run_group_tests_name("http_parse", tests, NULL, teardown);
}
