/* pg.c - libpq wrapper: connect with backoff (to the host of several that
 * takes writes), parameterised queries, one error state per connection that
 * tells a lost session from a failed statement, deferred statements in
 * pipeline mode (see pg.h). Every PGresult is cleared here or handed to the
 * caller as a pg_result. */
#include "pg.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#define PG_MAX_PREPARED 64

/* A statement sent in pipeline mode whose result is still to be read. */
typedef struct pg_queued {
    long seq;             /* its sequence number */
    const char *prepared; /* a Parse of this name: forgotten again if it fails */
} pg_queued;

struct pg_conn {
    PGconn *conn;
    char *url;
    int err;
    char errstr[256];
    char sqlstate[6];
    long seq;                              /* number of the next statement */
    long err_seq;                          /* number of the statement that failed, or -1 */
    const char *prepared[PG_MAX_PREPARED]; /* statement names prepared on this connection */
    int nprepared;
    pg_queued *queue; /* in pipeline mode: sent, results not read yet */
    size_t nqueue, capqueue;
};

static void pg_set_error(pg_conn *c, int err, const char *msg, const char *sqlstate) {
    c->err = err;
    str_copy(c->sqlstate, sqlstate ? sqlstate : "", sizeof(c->sqlstate));
    str_copy(c->errstr, msg ? msg : "", sizeof(c->errstr));
    /* libpq messages end in a newline and may span lines: keep the first one */
    char *nl = strchr(c->errstr, '\n');
    if (nl) *nl = '\0';
}

static void pg_clear_error(pg_conn *c) {
    c->err = PG_OK;
    c->err_seq = -1;
    c->errstr[0] = c->sqlstate[0] = '\0';
}

bool pg_sqlstate_is_lost(const char *s) {
    return strncmp(s, "08", 2) == 0    /* connection exception */
           || strcmp(s, "57P01") == 0  /* admin shutdown (a fast stop, a failover) */
           || strcmp(s, "57P02") == 0  /* crash shutdown */
           || strcmp(s, "57P03") == 0  /* cannot connect now (starting, stopping) */
           || strcmp(s, "25006") == 0; /* read-only transaction: not the primary */
}

/* The error of a failed result (or of the connection, when it is gone). */
static void pg_set_result_error(pg_conn *c, const PGresult *res) {
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pg_set_error(c, PG_ERR_LOST, PQerrorMessage(c->conn), NULL);
    } else if (res == NULL) {
        pg_set_error(c, PG_ERR_OOM, "out of memory", NULL);
    } else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        pg_set_error(c, state && pg_sqlstate_is_lost(state) ? PG_ERR_LOST : PG_ERR_QUERY,
                     PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), state);
    }
}

static void quiet_notices(void *arg, const char *msg) {
    (void)arg;
    (void)msg;
}

/* Seconds a connection attempt may take unless the URL says
 * (connect_timeout): libpq's own default is to wait for TCP to give up.
 * libpq applies it to each host in turn, so with several hosts (a primary
 * and its standbys) a dead first host costs less before the next is tried. */
#define CONNECT_TIMEOUT       "10"
#define CONNECT_TIMEOUT_HOSTS "3"

/* With several hosts and no target_session_attrs in the URL, the one that
 * takes writes: libpq would keep the first that answers, a standby maybe. */
#define SESSION_ATTRS_HOSTS "read-write"

/* TCP settings unless the URL says: a machine that vanishes (no RST) is
 * noticed in about 30 s, not hours, whether a reply or an ACK is awaited. */
#define KEEPALIVES_IDLE     "10"
#define KEEPALIVES_INTERVAL "5"
#define KEEPALIVES_COUNT    "3"
#define TCP_USER_TIMEOUT    "30000" /* ms */

/* Does the URL name more than one host? */
static bool several_hosts(const char *url) {
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    bool several = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && o->val &&
            strchr(o->val, ','))
            several = true;
    PQconninfoFree(opts);
    return several;
}

/* libpq's connection error on one line: each host's reason, without the
 * indented hint lines. */
static void connect_error(char *err, size_t errlen, const char *msg) {
    size_t n = (size_t)snprintf(err, errlen, "cannot connect to PostgreSQL: ");
    bool hint = false;
    for (const char *p = msg; *p && n + 3 < errlen; p++) {
        if (*p == '\n') {
            hint = p[1] == '\t';
            if (!hint && p[1]) {
                err[n++] = ';';
                err[n++] = ' ';
            }
        } else if (!hint) {
            err[n++] = *p;
        }
    }
    err[n < errlen ? n : errlen - 1] = '\0';
}

pg_conn *pg_connect(const char *url, char *err, size_t errlen) {
    bool several = several_hosts(url);
    /* the URL's own settings win: expand_dbname applies it after the defaults */
    const char *const keys[] = {
        "connect_timeout",  "target_session_attrs", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout",     "dbname",          NULL};
    const char *const values[] = {several ? CONNECT_TIMEOUT_HOSTS : CONNECT_TIMEOUT,
                                  several ? SESSION_ATTRS_HOSTS : "", /* "": libpq's default */
                                  KEEPALIVES_IDLE,
                                  KEEPALIVES_INTERVAL,
                                  KEEPALIVES_COUNT,
                                  TCP_USER_TIMEOUT,
                                  url,
                                  NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        connect_error(err, errlen, conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notices, NULL);
    pg_conn *c = ps_calloc(1, sizeof(*c));
    if (c) c->url = ps_strdup(url);
    if (c == NULL || c->url == NULL) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: out of memory");
        PQfinish(conn);
        ps_free(c);
        return NULL;
    }
    c->conn = conn;
    return c;
}

/* The longest wait between two attempts: a promoted standby is found
 * within about this long. */
#define RETRY_MAX_MS 2000

pg_conn *pg_connect_retry(const char *url, const volatile sig_atomic_t *stop) {
    char err[512];
    for (unsigned attempt = 0; stop == NULL || !*stop; attempt++) {
        pg_conn *c = pg_connect(url, err, sizeof(err));
        if (c && pg_check_writable(c) == 0) {
            if (attempt > 0) log_info("connected to PostgreSQL after %u retries", attempt);
            return c;
        }
        if (c) snprintf(err, sizeof(err), "PostgreSQL: %s", pg_errstr(c));
        pg_close(c);
        long wait = backoff_ms(attempt, RETRY_MAX_MS);
        log_warn("%s; retrying in %ld ms", err, wait);
        time_sleep_ms(wait);
    }
    return NULL;
}

int pg_check_writable(pg_conn *c) {
    pg_result *r = NULL;
    if (pg_exec(c, "SHOW transaction_read_only", 0, NULL, &r) != 0) return -1;
    const char *v = pg_value(r, 0, 0);
    bool writable = v && strcmp(v, "off") == 0;
    pg_result_free(r);
    if (writable) return 0;
    pg_set_error(c, PG_ERR_LOST,
                 "the server takes no writes (a standby? name the hosts with "
                 "target_session_attrs=read-write)",
                 "25006");
    c->err_seq = -1;
    return -1;
}

void pg_close(pg_conn *c) {
    if (c == NULL) return;
    PQfinish(c->conn);
    ps_free(c->queue);
    ps_free(c->url);
    ps_free(c);
}

int pg_reconnect(pg_conn *c) {
    PQreset(c->conn);
    c->nprepared = 0;
    c->nqueue = 0;
    if (PQstatus(c->conn) != CONNECTION_OK) {
        pg_set_error(c, PG_ERR_CONNECT, PQerrorMessage(c->conn), NULL);
        return -1;
    }
    PQsetNoticeProcessor(c->conn, quiet_notices, NULL);
    pg_clear_error(c);
    return 0;
}

static bool result_ok(const PGresult *res) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Check the result of statement number seq; on error record it and clear
 * the result. */
static int pg_check_seq(pg_conn *c, long seq, PGresult *res, pg_result **out) {
    if (result_ok(res)) {
        pg_clear_error(c);
        if (out)
            *out = (pg_result *)res;
        else
            PQclear(res);
        return 0;
    }
    pg_set_result_error(c, res);
    c->err_seq = c->err == PG_ERR_LOST ? -1 : seq;
    PQclear(res);
    if (out) *out = NULL;
    return -1;
}

static int pg_check(pg_conn *c, PGresult *res, pg_result **out) {
    return pg_check_seq(c, c->seq++, res, out);
}

static bool pg_is_prepared(const pg_conn *c, const char *name) {
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == name || strcmp(c->prepared[i], name) == 0) return true;
    return false;
}

static void pg_forget_prepared(pg_conn *c, const char *name) {
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == name) c->prepared[i--] = c->prepared[--c->nprepared];
}

/* ------------------------------------------------------- pipeline mode -- */

static int pipe_push(pg_conn *c, long seq, const char *prepared) {
    if (c->nqueue == c->capqueue) {
        size_t cap = c->capqueue ? c->capqueue * 2 : 64;
        pg_queued *q = ps_realloc(c->queue, cap * sizeof(*q));
        if (q == NULL) return -1;
        c->queue = q;
        c->capqueue = cap;
    }
    c->queue[c->nqueue].seq = seq;
    c->queue[c->nqueue++].prepared = prepared;
    return 0;
}

/* Send one statement in pipeline mode (entered for the first one). A
 * statement that cannot be sent leaves the connection unusable: lost. */
static int pipe_send(pg_conn *c, const char *name, const char *sql, int nparams,
                     const char *const *params) {
    long seq = c->seq++;
    bool ok = c->nqueue > 0 || PQenterPipelineMode(c->conn) == 1;
    if (ok && name && !pg_is_prepared(c, name) && c->nprepared < PG_MAX_PREPARED) {
        ok = PQsendPrepare(c->conn, name, sql, nparams, NULL) == 1 && pipe_push(c, seq, name) == 0;
        if (ok) c->prepared[c->nprepared++] = name;
    }
    if (ok && name && pg_is_prepared(c, name))
        ok = PQsendQueryPrepared(c->conn, name, nparams, params, NULL, NULL, 0) == 1;
    else if (ok)
        ok = PQsendQueryParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0) == 1;
    if (ok && pipe_push(c, seq, NULL) == 0) return 0;
    pg_set_error(c, PG_ERR_LOST, PQerrorMessage(c->conn), NULL);
    c->err_seq = -1;
    return -1;
}

/* Read one statement's result (and the NULL that ends it). */
static PGresult *pipe_result(pg_conn *c) {
    PGresult *res = PQgetResult(c->conn), *extra;
    if (res == NULL) return NULL;
    while ((extra = PQgetResult(c->conn)) != NULL)
        PQclear(extra);
    return res;
}

/* Sync, then read every queued result in order: the first failure becomes
 * c's error; the last result goes to *out when it and all before it
 * succeeded. Leaves pipeline mode. */
static int pipe_collect(pg_conn *c, pg_result **out) {
    bool failed = false;
    if (out) *out = NULL;
    if (PQpipelineSync(c->conn) != 1) goto lost;
    for (size_t i = 0; i < c->nqueue; i++) {
        PGresult *res = pipe_result(c);
        if (res == NULL || PQstatus(c->conn) == CONNECTION_BAD) {
            PQclear(res);
            goto lost;
        }
        if (!result_ok(res) && c->queue[i].prepared) pg_forget_prepared(c, c->queue[i].prepared);
        if (!failed && !result_ok(res)) {
            failed = true;
            pg_check_seq(c, c->queue[i].seq, res, NULL);
        } else if (out && !failed && i + 1 == c->nqueue) {
            *out = (pg_result *)res;
        } else {
            PQclear(res);
        }
    }
    PGresult *sync = PQgetResult(c->conn);
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    c->nqueue = 0;
    if (!synced || PQexitPipelineMode(c->conn) != 1) goto lost;
    if (!failed) pg_clear_error(c);
    return failed ? -1 : 0;
lost:
    c->nqueue = 0;
    if (out) {
        pg_result_free(*out);
        *out = NULL;
    }
    pg_set_error(c, PG_ERR_LOST, PQerrorMessage(c->conn), NULL);
    c->err_seq = -1;
    return -1;
}

int pg_defer(pg_conn *c, const char *name, const char *sql, int nparams,
             const char *const *params) {
    return pipe_send(c, name, sql, nparams, params);
}

int pg_flush(pg_conn *c) {
    return c->nqueue == 0 ? 0 : pipe_collect(c, NULL);
}

long pg_next_seq(const pg_conn *c) {
    return c->seq;
}

long pg_error_seq(const pg_conn *c) {
    return c->err == PG_OK ? -1 : c->err_seq;
}

/* ------------------------------------------------------------ statements -- */

int pg_exec(pg_conn *c, const char *sql, int nparams, const char *const *params, pg_result **out) {
    if (c->nqueue > 0) {
        if (pipe_send(c, NULL, sql, nparams, params) != 0) return -1;
        return pipe_collect(c, out);
    }
    PGresult *res = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return pg_check(c, res, out);
}

int pg_exec_prepared(pg_conn *c, const char *name, const char *sql, int nparams,
                     const char *const *params, pg_result **out) {
    if (c->nqueue > 0) {
        if (pipe_send(c, name, sql, nparams, params) != 0) return -1;
        return pipe_collect(c, out);
    }
    if (!pg_is_prepared(c, name)) {
        if (c->nprepared == PG_MAX_PREPARED) return pg_exec(c, sql, nparams, params, out);
        PGresult *res = PQprepare(c->conn, name, sql, nparams, NULL);
        if (pg_check_seq(c, c->seq, res, NULL) != 0) { /* numbered as the statement */
            c->seq++;
            return -1;
        }
        c->prepared[c->nprepared++] = name;
    }
    PGresult *res = PQexecPrepared(c->conn, name, nparams, params, NULL, NULL, 0);
    return pg_check(c, res, out);
}

int pg_exec_script(pg_conn *c, const char *sql) {
    return pg_check(c, PQexec(c->conn, sql), NULL);
}

int pg_err(const pg_conn *c) {
    return c->err;
}

const char *pg_errstr(const pg_conn *c) {
    return c->errstr;
}

const char *pg_sqlstate(const pg_conn *c) {
    return c->sqlstate;
}

bool pg_is_lost(const pg_conn *c) {
    return c->err == PG_ERR_LOST || PQstatus(c->conn) == CONNECTION_BAD;
}

int pg_nrows(const pg_result *r) {
    return r ? PQntuples((const PGresult *)r) : 0;
}

int pg_ncols(const pg_result *r) {
    return r ? PQnfields((const PGresult *)r) : 0;
}

const char *pg_colname(const pg_result *r, int col) {
    return PQfname((const PGresult *)r, col);
}

const char *pg_value(const pg_result *r, int row, int col) {
    const PGresult *res = (const PGresult *)r;
    if (PQgetisnull(res, row, col)) return NULL;
    return PQgetvalue(res, row, col);
}

void pg_result_free(pg_result *r) {
    PQclear((PGresult *)r);
}

/* ---------------------------------------------------------- array text -- */

void pg_array_elem(strbuf *sb, const char *v) {
    if (v == NULL) {
        strbuf_puts(sb, "NULL");
        return;
    }
    strbuf_puts(sb, "\"");
    for (const char *p = v; *p; p++) {
        size_t run = strcspn(p, "\"\\");
        strbuf_append(sb, p, run);
        p += run;
        if (*p == '\0') break;
        strbuf_append(sb, "\\", 1);
        strbuf_append(sb, p, 1);
    }
    strbuf_puts(sb, "\"");
}
