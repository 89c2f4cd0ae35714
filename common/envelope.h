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

#define ENVELOPE_MAX_FIELD 255 /* longest id, type or api_version accepted */

/* The envelope of one event. Owns its strings: envelope_free() releases them
 * and accepts a zeroed or already-freed envelope. */
typedef struct envelope {
    char *id;          /* "evt_..." */
    char *type;        /* e.g. "checkout.session.completed" */
    char *api_version; /* NULL when absent or null */
    bool livemode;     /* false when absent */
    bool has_livemode;
    int64_t created; /* Unix seconds; 0 when absent */
} envelope;

typedef enum {
    ENV_OK = 0,
    ENV_NOT_JSON,   /* not one well-formed JSON text (or a duplicated key) */
    ENV_NOT_OBJECT, /* JSON, but not an object */
    ENV_NO_ID,      /* no "id", or null */
    ENV_BAD_ID,     /* "id" not a string, empty, too long, not evt_..., control chars */
    ENV_NO_TYPE,    /* no "type", or null */
    ENV_BAD_TYPE,   /* "type" not a string, empty, too long, control chars */
    ENV_BAD_FIELD,  /* livemode not boolean, created not integer, api_version not string */
    ENV_OOM,
} envelope_result;

/* Parse body[0..len) (need not be NUL-terminated). The whole body must be
 * valid JSON without duplicate keys; nesting depth is bounded by jansson, so
 * the work is linear in len. On ENV_OK *out is filled and owned by the
 * caller; otherwise *out is zeroed. detail (may be NULL) gets one line for a
 * log: where the JSON broke (jansson's message, which may quote the token
 * it stopped at) or which field is wrong, never a field's value. */
envelope_result envelope_parse(const void *body, size_t len, envelope *out, char *detail,
                               size_t detail_len);
void envelope_free(envelope *e);

/* Stable machine code for a JSON error body and metrics: "ok",
 * "invalid_json", "not_an_object", "missing_id", "invalid_id",
 * "missing_type", "invalid_type", "invalid_envelope", "out_of_memory". */
const char *envelope_result_code(envelope_result r);

#endif
