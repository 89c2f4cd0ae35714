/* event_util.c - helpers the handlers share: outcomes with messages, calling
 * worker SQL functions, JSON by path, and resolving the user of an event. */
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

int ev_call(event_ctx *ev, const char *name, const char *sql, int n, const char *const *params) {
    pg_result *r = NULL;
    if (ev->batched) return ev_fail(ev, "%s: no statement of its own in a batch", name), -1;
    if (pg_exec_prepared(ev->pg, name, sql, n, params, &r) != 0) {
        snprintf(ev->error, sizeof(ev->error), "%s", pg_errstr(ev->pg));
        return -1;
    }
    const char *v = pg_nrows(r) > 0 && pg_ncols(r) > 0 ? pg_value(r, 0, 0) : NULL;
    ev->note_null = v == NULL;
    snprintf(ev->note, sizeof(ev->note), "%s", v ? v : "");
    pg_result_free(r);
    return 0;
}

/* "SELECT paystream.fn($1, ..., $n)" into sql (256 bytes) */
static const char *ledger_sql(char *sql, const char *fn, int n) {
    size_t len = (size_t)snprintf(sql, 256, "SELECT paystream.%s(", fn);
    for (int i = 1; i <= n && len < 256; i++)
        len += (size_t)snprintf(sql + len, 256 - len, "%s$%d", i > 1 ? ", " : "", i);
    if (len < 256) snprintf(sql + len, 256 - len, ")");
    return sql;
}

/* The batch row's arguments (sql/006: p1 .. p11). */
#define EV_MAX_PARAMS 11

int ev_apply(event_ctx *ev, const char *fn, int n, const char *const *params) {
    if (!ev->batched) {
        char sql[256];
        return ev_call(ev, fn, ledger_sql(sql, fn, n), n, params);
    }
    if (n > EV_MAX_PARAMS) return ev_fail(ev, "%s: too many parameters", fn), -1;
    strbuf_reset(ev->rule_args);
    for (int i = 0; i < n; i++) { /* a user still to find (resolve_user) is NULL */
        if (i > 0) strbuf_puts(ev->rule_args, ",");
        pg_array_elem(ev->rule_args,
                      params[i] == ev->user_id && ev->user_id[0] == '\0' ? NULL : params[i]);
    }
    ev->rule = fn;
    ev->rule_nargs = n;
    return 0;
}

ev_outcome ev_applied(const event_ctx *ev) {
    return strncmp(ev->note, "skipped: ", 9) == 0 ? EV_SKIPPED : EV_APPLIED;
}

bool ev_note_is_null(const event_ctx *ev) {
    return ev->note_null;
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
    if ((customer || subscription) && ev->batched) { /* looked up at its turn */
        ev->find_user = true;
        ev->find_customer = customer;
        ev->find_sub = subscription;
        return 0;
    }
    if (customer || subscription) {
        const char *params[2] = {customer, subscription};
        if (ev_call(ev, "resolve_user", "SELECT paystream.ps_resolve_user($1, $2)", 2, params) != 0)
            return -1;
        if (!ev_note_is_null(ev)) return take_user(ev, ev->note, "stored mapping");
    }
    ev_fail(ev,
            "user not found: no metadata.user_id or client_reference_id, and no stored mapping "
            "for customer %s / subscription %s",
            customer ? customer : "(none)", subscription ? subscription : "(none)");
    return -1;
}
