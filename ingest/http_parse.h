/* http_parse.h - a strict HTTP/1.1 request-head parser and a chunked-body
 * decoder, with no I/O, for paystream-ingest's own HTTP server (http.c).
 *
 * Strict on purpose: paystream is the last hop before money moves, so every
 * framing ambiguity a proxy in front could read differently (RFC 9112 6.3,
 * 11.2) is refused rather than guessed: two Content-Lengths, Content-Length
 * with Transfer-Encoding, a coding other than chunked, obs-fold, whitespace
 * before a colon, bare CR or LF, control bytes in a field. */
#ifndef PS_HTTP_PARSE_H
#define PS_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
    HTTP_TRACE,
    HTTP_CONNECT,
    HTTP_OTHER /* a valid token we do not know: 405 on our paths, 404 elsewhere */
} http_method;

/* What the head of one request says. Pointers point into the parsed buffer. */
typedef struct http_head {
    http_method method;
    const char *path; /* the request-target's path, query left out (absolute-form too) */
    size_t path_len;
    int minor;              /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;        /* the connection may carry another request after this one */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool expect_continue;   /* Expect: 100-continue */
    int64_t content_length; /* -1: none (then 0, unless chunked) */
    const char *signature;  /* the Stripe-Signature value (first one), or NULL */
    size_t signature_len;
    size_t head_len; /* bytes of the head, the final CRLF CRLF included */
} http_head;

typedef enum http_parse_result {
    HTTP_PARSE_OK = 0,
    HTTP_PARSE_INCOMPLETE,      /* no end of head yet, and under the cap: read more */
    HTTP_PARSE_TOO_LARGE,       /* no end of head within max_head bytes */
    HTTP_PARSE_BAD,             /* not an HTTP/1.x request we can frame */
    HTTP_PARSE_AMBIGUOUS_LENGTH /* two Content-Length fields */
} http_parse_result;

/* Parse the request head at the start of buf[0..len). max_head bounds the
 * whole head (request line, fields, final CRLF CRLF). On HTTP_PARSE_OK, h is
 * filled; otherwise *why (when not NULL) is a short static phrase for a log. */
http_parse_result http_parse_head(const char *buf, size_t len, size_t max_head, http_head *h,
                                  const char **why);

/* The word for a result, as the JSON error code of the 400 it gets. */
const char *http_parse_result_code(http_parse_result r);

/* ---------------------------------------------------------- chunked -- */

typedef enum http_chunk_result {
    HTTP_CHUNK_DONE = 0, /* the body and its trailer section are complete */
    HTTP_CHUNK_MORE,     /* everything given was consumed or waits for more bytes */
    HTTP_CHUNK_BAD,      /* malformed framing */
    HTTP_CHUNK_TOO_LARGE /* the decoded body would exceed max_body */
} http_chunk_result;

typedef struct http_chunked {
    int phase;          /* where in the framing we are (http_parse.c's enum) */
    uint64_t left;      /* data bytes left in the current chunk */
    size_t body_len;    /* decoded bytes so far */
    size_t max_body;    /* limit on body_len */
    size_t line_len;    /* bytes of the current size or trailer line seen so far */
    size_t trailer_len; /* bytes of the trailer section so far (bounded) */
} http_chunked;

void http_chunked_init(http_chunked *c, size_t max_body);

/* Feed in[0..len) of a chunked body. Data bytes are handed to emit(arg, p, n)
 * in order (emit returns 0, or -1 to stop with HTTP_CHUNK_BAD). *used is how
 * many bytes of in were consumed: on DONE, the bytes after *used belong to the
 * next request; on MORE, the caller keeps in[*used..len) and calls again with
 * those bytes followed by new ones (a size line is never consumed in part). */
http_chunk_result http_chunked_feed(http_chunked *c, const char *in, size_t len, size_t *used,
                                    int (*emit)(void *arg, const char *p, size_t n), void *arg);

#endif
