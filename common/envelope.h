/* envelope.h - the outer fields of a Stripe event body, and nothing more.
 *
 * Ingest checks that a verified body is a Stripe event (id evt_..., a type)
 * before it puts it on the stream; the worker reads the same fields first.
 * The raw body is never re-serialised: this only reads it. Everything below
 * data.object is left to the worker's handlers. */
#ifndef PS_ENVELOPE_H
#define PS_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_MAX_FIELD 255  /* longest id, type or api_version accepted */
#define ENVELOPE_MAX_DEPTH 2048 /* nesting of values, counted as jansson counts it */

/* The envelope of one event. Plain arrays: nothing to free, safe to copy. */
typedef struct envelope {
    char id[ENVELOPE_MAX_FIELD + 1];          /* "evt_..." */
    char type[ENVELOPE_MAX_FIELD + 1];        /* e.g. "checkout.session.completed" */
    char api_version[ENVELOPE_MAX_FIELD + 1]; /* "" when absent or null */
    bool livemode;                            /* false when absent */
    bool has_livemode;
    int64_t created; /* Unix seconds; 0 when absent */
} envelope;

typedef enum {
    ENV_OK = 0,
    ENV_NOT_JSON,   /* not one well-formed JSON text, or an envelope key twice */
    ENV_NOT_OBJECT, /* JSON, but not an object */
    ENV_NO_ID,      /* no "id", or null */
    ENV_BAD_ID,     /* "id" not a string, empty, too long, not evt_..., control chars */
    ENV_NO_TYPE,    /* no "type", or null */
    ENV_BAD_TYPE,   /* "type" not a string, empty, too long, control chars */
    ENV_BAD_FIELD,  /* livemode not boolean, created not integer, api_version not string */
    ENV_OOM,        /* never returned (parsing allocates nothing); kept for metric labels */
} envelope_result;

/* Parse body[0..len) (need not be NUL-terminated) in one pass that allocates
 * nothing, reads no byte past len and takes time linear in len.
 *
 * Valid JSON is what jansson 2.14's json_loadb(JSON_DECODE_ANY) accepts (two
 * exceptions below), so a body that passes here also parses in the worker,
 * duplicate keys aside: RFC 8259 grammar, nothing but blanks after the
 * value; strings in strict UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF), escapes with \u surrogate pairs properly paired, and no
 * \u0000; numbers without leading zeros, integers within int64, reals that
 * do not overflow a double; values nested at most ENVELOPE_MAX_DEPTH deep (a
 * value inside N containers is at depth N + 1).
 *
 * Duplicate keys: one of the five envelope keys twice in the top-level
 * object is ENV_NOT_JSON (ingest and worker could otherwise read different
 * ids); other duplicates are left to the worker, whose jansson rejects them,
 * so such an event ends in the dead letters (Stripe never sends any). A NUL
 * byte is refused wherever it is (jansson 2.14 skips one right after a number
 * or literal: a quirk of its stream, not copied).
 *
 * The fields are read from the top-level object only, escapes decoded. On
 * ENV_OK *out is filled; otherwise it is zeroed. detail (may be NULL) gets
 * one line for a log: where the JSON broke (byte offset and what was
 * expected, never the bytes) or which field is wrong, never a value. */
envelope_result envelope_parse(const void *body, size_t len, envelope *out, char *detail,
                               size_t detail_len);

/* Stable machine code for a JSON error body and metrics: "ok",
 * "invalid_json", "not_an_object", "missing_id", "invalid_id",
 * "missing_type", "invalid_type", "invalid_envelope", "out_of_memory". */
const char *envelope_result_code(envelope_result r);

#endif
