/* pg.c - libpq wrapper: connect with backoff, parameterised queries, one
 * error state per connection (see pg.h). Every PGresult is cleared here or
 * handed to the caller as a pg_result. */
#include "pg.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#define PG_MAX_PREPARED 64

struct pg_conn {
    PGconn *conn;
    char *url;
    int err;
    char errstr[256];
    char sqlstate[6];
    const char *prepared[PG_MAX_PREPARED]; /* statement names prepared on this connection */
    int nprepared;
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
    c->errstr[0] = c->sqlstate[0] = '\0';
}

static void quiet_notices(void *arg, const char *msg) {
    (void)arg;
    (void)msg;
}

pg_conn *pg_connect(const char *url, char *err, size_t errlen) {
    PGconn *conn = PQconnectdb(url);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        const char *m = conn ? PQerrorMessage(conn) : "out of memory";
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", m);
        char *nl = strchr(err, '\n');
        if (nl) *nl = '\0';
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

pg_conn *pg_connect_retry(const char *url, const volatile sig_atomic_t *stop) {
    char err[256];
    for (unsigned attempt = 0; stop == NULL || !*stop; attempt++) {
        pg_conn *c = pg_connect(url, err, sizeof(err));
        if (c) {
            if (attempt > 0) log_info("connected to PostgreSQL after %u retries", attempt);
            return c;
        }
        long wait = backoff_ms(attempt, 5000);
        log_warn("%s; retrying in %ld ms", err, wait);
        time_sleep_ms(wait);
    }
    return NULL;
}

void pg_close(pg_conn *c) {
    if (c == NULL) return;
    PQfinish(c->conn);
    ps_free(c->url);
    ps_free(c);
}

int pg_reconnect(pg_conn *c) {
    PQreset(c->conn);
    c->nprepared = 0;
    if (PQstatus(c->conn) != CONNECTION_OK) {
        pg_set_error(c, PG_ERR_CONNECT, PQerrorMessage(c->conn), NULL);
        return -1;
    }
    PQsetNoticeProcessor(c->conn, quiet_notices, NULL);
    pg_clear_error(c);
    return 0;
}

/* Check a result; on error record it and clear the result. */
static int pg_check(pg_conn *c, PGresult *res, pg_result **out) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        pg_clear_error(c);
        if (out)
            *out = (pg_result *)res;
        else
            PQclear(res);
        return 0;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pg_set_error(c, PG_ERR_LOST, PQerrorMessage(c->conn), NULL);
    } else if (res == NULL) {
        pg_set_error(c, PG_ERR_OOM, "out of memory", NULL);
    } else {
        pg_set_error(c, PG_ERR_QUERY, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                     PQresultErrorField(res, PG_DIAG_SQLSTATE));
    }
    PQclear(res);
    if (out) *out = NULL;
    return -1;
}

int pg_exec(pg_conn *c, const char *sql, int nparams, const char *const *params, pg_result **out) {
    PGresult *res = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return pg_check(c, res, out);
}

static bool pg_is_prepared(const pg_conn *c, const char *name) {
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == name || strcmp(c->prepared[i], name) == 0) return true;
    return false;
}

int pg_exec_prepared(pg_conn *c, const char *name, const char *sql, int nparams,
                     const char *const *params, pg_result **out) {
    if (!pg_is_prepared(c, name)) {
        if (c->nprepared == PG_MAX_PREPARED) return pg_exec(c, sql, nparams, params, out);
        PGresult *res = PQprepare(c->conn, name, sql, nparams, NULL);
        if (pg_check(c, res, NULL) != 0) return -1;
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
