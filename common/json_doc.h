/* json_doc.h - a JSON text read in one validating pass into a flat array of
 * tokens, without building a tree of values.
 *
 * The worker reads a dozen fields of each ~4 KB Stripe event; building
 * jansson's tree of it cost most of its CPU. A json_doc instead records, per
 * value, its type, where it lies in the text and where its subtree ends, so
 * that a lookup skips a whole member in one step. Strings are decoded only
 * when asked for, numbers read only when asked for. One json_doc is reused
 * for document after document: it keeps its memory, which grows only when a
 * text needs more than any before it.
 *
 * What parses is exactly what jansson 2.14's json_loadb(JSON_REJECT_DUPLICATES)
 * accepts (see json_scan.h for strings and numbers), a duplicate key in any
 * object refused (keys compared once decoded), with two exceptions: a NUL
 * byte is refused wherever it is (jansson takes one right after a number or
 * literal, a quirk of its stream), and texts of JSON_DOC_MAX_LEN bytes or
 * more are refused. */
#ifndef PS_JSON_DOC_H
#define PS_JSON_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DOC_MAX_DEPTH 2048       /* a value inside N containers is at depth N + 1 */
#define JSON_DOC_MAX_LEN   (1u << 30) /* bytes of text, at most this minus one */
#define JSON_DOC_NONE      (-1)       /* "no such value" */

typedef enum {
    JSON_DOC_INVALID = 0, /* JSON_DOC_NONE, or no document */
    JSON_DOC_OBJECT,
    JSON_DOC_ARRAY,
    JSON_DOC_STRING,
    JSON_DOC_INTEGER,
    JSON_DOC_REAL,
    JSON_DOC_TRUE,
    JSON_DOC_FALSE,
    JSON_DOC_NULL,
} json_doc_type;

typedef struct json_doc json_doc;

/* An empty document; NULL when out of memory. Free with json_doc_free(). */
json_doc *json_doc_new(void);
void json_doc_free(json_doc *d); /* NULL is fine */

/* Parse text[0..len) (need not be NUL-terminated) into d, replacing what d
 * held. The text is not copied: it must stay unchanged while d is read. 0 on
 * success, the root value being 0; -1 when it is not JSON or memory ran
 * out (json_doc_error says which and where). Time linear in len. */
int json_doc_parse(json_doc *d, const void *text, size_t len);

/* Why the last parse failed ("out of memory", or what was expected), and
 * at which byte offset (may be NULL); "" after a success. */
const char *json_doc_error(const json_doc *d, size_t *offset);

/* Values are ints: the root is 0, JSON_DOC_NONE is none. Every function
 * below takes JSON_DOC_NONE (or a value of the wrong type) and answers
 * "none", false or 0. Values are valid until the next parse. */
json_doc_type json_doc_type_of(const json_doc *d, int v);
/* Members of an object, elements of an array; 0 for anything else. */
size_t json_doc_size(const json_doc *d, int v);

/* Children in order: an array's elements, an object's keys each followed by
 * its value. json_doc_first(): the first; json_doc_next(): the one after
 * child v (a key's next is its value), or JSON_DOC_NONE past the last. */
int json_doc_first(const json_doc *d, int container);
int json_doc_next(const json_doc *d, int container, int v);
/* Element i of an array (walks i siblings). */
int json_doc_at(const json_doc *d, int array, size_t i);

/* The value of key[0..key_len) in an object. */
int json_doc_getn(json_doc *d, int object, const char *key, size_t key_len);
/* The value at a dotted path ("data.object.id"): each step a member of an
 * object; "" is v itself. */
int json_doc_path(json_doc *d, int v, const char *path);

/* A string's decoded text, NUL-terminated (JSON strings hold no NUL), its
 * length in *len (may be NULL); NULL when v is not a string. The text
 * lives in d until the next parse; asking again returns the same pointer. */
const char *json_doc_string(json_doc *d, int v, size_t *len);
/* An integer (a number without fraction or exponent, always within int64). */
bool json_doc_int(const json_doc *d, int v, int64_t *out);
/* true or false. */
bool json_doc_bool(const json_doc *d, int v, bool *out);

#endif
