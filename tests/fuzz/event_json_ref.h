/* event_json_ref.h - the worker's JSON helpers as they were on jansson's
 * tree (before worker/event_util.c read a json_doc): the reference that
 * fuzz_event_json.c holds jget/jstr/jint/jbool to, and the jansson side of
 * bench/worker/json_bench.c. Dotted paths; an expanded object reads as its
 * "id"; an empty string is NULL; integers and booleans strictly typed. */
#ifndef PS_EVENT_JSON_REF_H
#define PS_EVENT_JSON_REF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static json_t *ref_get(json_t *obj, const char *path) {
    char key[128];
    while (obj && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(key) || !json_is_object(obj)) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        path += n + (dot ? 1 : 0);
    }
    return obj;
}

static const char *ref_str(json_t *obj, const char *path) {
    json_t *v = ref_get(obj, path);
    if (json_is_object(v)) v = json_object_get(v, "id");
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static inline bool ref_int(json_t *obj, const char *path, int64_t *out) {
    json_t *v = ref_get(obj, path);
    if (json_is_integer(v)) *out = json_integer_value(v);
    return json_is_integer(v);
}

static inline bool ref_bool(json_t *obj, const char *path, bool *out) {
    json_t *v = ref_get(obj, path);
    if (json_is_boolean(v)) *out = json_is_true(v);
    return json_is_boolean(v);
}

#endif
