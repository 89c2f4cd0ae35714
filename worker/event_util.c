/* event_util.c - helpers the handlers share: outcomes with messages, calling
 * ledger rules, JSON by path, and resolving the user of an event. */
#include "event.h"
#include "strbuf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ev_outcome ev_fail(event_ctx *ev, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->error, sizeof(ev->error), fmt, ap);
    va_end(ap);
    return EV_FAILED;
}

ev_outcome ev_skip(event_ctx *ev, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->note, sizeof(ev->note), fmt, ap);
    va_end(ap);
    return EV_SKIPPED;
}

ev_outcome ev_apply(event_ctx *ev, const char *rule, const ledger_row *inputs) {
    strbuf_reset(ev->inputs);
    ledger_row_inputs(ev->inputs, inputs);
    ev->rule = rule;
    return EV_APPLIED;
}

jval jget(jval obj, const char *path) {
    obj.tok = json_doc_path(obj.doc, obj.tok, path);
    return obj;
}

const char *jstr(jval obj, const char *path) {
    jval v = jget(obj, path);
    size_t len = 0;
    if (jis_object(v)) v.tok = json_doc_getn(v.doc, v.tok, "id", 2);
    const char *s = json_doc_string(v.doc, v.tok, &len);
    return s && len > 0 ? s : NULL;
}

bool jint(jval obj, const char *path, int64_t *out) {
    jval v = jget(obj, path);
    return json_doc_int(v.doc, v.tok, out);
}

bool jbool(jval obj, const char *path, bool *out) {
    jval v = jget(obj, path);
    return json_doc_bool(v.doc, v.tok, out);
}

bool jis_object(jval v) {
    return json_doc_type_of(v.doc, v.tok) == JSON_DOC_OBJECT;
}

jval jfirst(jval array) {
    bool is_array = json_doc_type_of(array.doc, array.tok) == JSON_DOC_ARRAY;
    array.tok = is_array ? json_doc_first(array.doc, array.tok) : JSON_DOC_NONE;
    return array;
}

jval jnext(jval array, jval element) {
    element.tok = json_doc_next(array.doc, array.tok, element.tok);
    return element;
}

bool jok(jval v) {
    return v.tok != JSON_DOC_NONE;
}

static bool is_uuid(const char *s) {
    if (strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return false;
    }
    return true;
}

/* Take a candidate user id; -1 with an error when it is not a UUID. */
static int take_user(event_ctx *ev, const char *id, const char *where) {
    if (!is_uuid(id)) {
        ev_fail(ev, "%s is not a UUID: '%.64s'", where, id);
        return -1;
    }
    snprintf(ev->user_id, sizeof(ev->user_id), "%s", id);
    for (char *p = ev->user_id; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

int resolve_user(event_ctx *ev, const char *customer, const char *subscription,
                 const jval *extra_meta, int n_extra) {
    const char *id = jstr(ev->object, "metadata.user_id");
    if (id) return take_user(ev, id, "metadata.user_id");
    if ((id = jstr(ev->object, "client_reference_id")))
        return take_user(ev, id, "client_reference_id");
    for (int i = 0; i < n_extra; i++)
        if ((id = jstr(extra_meta[i], "metadata.user_id")))
            return take_user(ev, id, "subscription metadata.user_id");
    if (customer || subscription) return 0; /* found at its turn (ledger_row.h) */
    ev_fail(ev,
            "user not found: no metadata.user_id or client_reference_id, and no stored mapping "
            "for customer %s / subscription %s",
            customer ? customer : "(none)", subscription ? subscription : "(none)");
    return -1;
}
