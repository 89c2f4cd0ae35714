/* pg.h - the only door to libpq.
 *
 * A pg_conn carries its own error state (err, errstr, sqlstate) set in one
 * place, so callers report what went wrong without touching libpq. Queries are
 * parameterised only (PQexecParams); pg_exec_script() exists for migration
 * files, which have no parameters. A pg_result belongs to the caller, who
 * frees it with pg_result_free() (NULL is fine).
 *
 * Deferred statements (pg_defer) cut round trips: statements whose result
 * only matters when they fail are queued (libpq pipeline mode) and go out
 * with the next pg_exec*() or pg_flush(), in one flight with one Sync. Every
 * statement sent gets a sequence number (pg_next_seq); when a flight fails,
 * pg_error_seq() names the statement that failed: the ones after it in that
 * flight were not run.
 *
 * Failover: a URL may name a primary and its standbys
 * (postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write); libpq
 * tries them in turn and keeps the one that takes writes. An error after
 * which the session is no use (the server went away, shuts down, or takes no
 * writes) makes the connection lost: the caller connects again. */
#ifndef PS_PG_H
#define PS_PG_H

#include "strbuf.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pg_conn pg_conn;
typedef struct pg_result pg_result;

enum { PG_OK = 0, PG_ERR_CONNECT, PG_ERR_QUERY, PG_ERR_LOST, PG_ERR_OOM };

/* One attempt. On failure returns NULL and a one-line reason in err. */
pg_conn *pg_connect(const char *url, char *err, size_t errlen);
/* Keep trying with backoff until connected to a server that takes writes
 * (pg_check_writable) or *stop becomes non-zero. */
pg_conn *pg_connect_retry(const char *url, const volatile sig_atomic_t *stop);
/* 0 if the session may write; else -1, lost (SQLSTATE 25006 when the
 * server is read-only: a standby, or a primary fenced read-only). */
int pg_check_writable(pg_conn *c);
void pg_close(pg_conn *c);
/* Re-open a lost connection once; 0 on success. */
int pg_reconnect(pg_conn *c);

/* Run a parameterised statement. Returns 0 and (if out != NULL) the result,
 * or -1 with the error in c. params may hold NULLs for SQL NULL. */
int pg_exec(pg_conn *c, const char *sql, int nparams, const char *const *params, pg_result **out);
/* Same through a statement prepared once per connection under `name`. */
int pg_exec_prepared(pg_conn *c, const char *name, const char *sql, int nparams,
                     const char *const *params, pg_result **out);
/* Queue a statement (prepared under `name` when name != NULL) to go out
 * with the next pg_exec*() or pg_flush(); its result is dropped unless it
 * fails. -1 only when it cannot even be queued (connection gone). */
int pg_defer(pg_conn *c, const char *name, const char *sql, int nparams, const char *const *params);
/* Send what is queued and wait for it: 0, or -1 with the first error. */
int pg_flush(pg_conn *c);
/* The number the next statement sent on c will get. */
long pg_next_seq(const pg_conn *c);
/* The number of the statement whose failure is in c's error state (-1 if
 * the error belongs to no statement, e.g. a lost connection). */
long pg_error_seq(const pg_conn *c);
/* Run a parameter-free script of several statements (migrations). */
int pg_exec_script(pg_conn *c, const char *sql);

int pg_err(const pg_conn *c);            /* PG_OK or PG_ERR_* */
const char *pg_errstr(const pg_conn *c); /* one line, never a password */
const char *pg_sqlstate(const pg_conn *c);
/* The connection is gone or no use: its server is going away (57P01...)
 * or takes no writes (25006), e.g. after a failover. Connect again; what
 * was in flight is applied again, through the idempotent path. */
bool pg_is_lost(const pg_conn *c);
/* Is an error of this SQLSTATE one that pg_is_lost() reports? */
bool pg_sqlstate_is_lost(const char *sqlstate);

int pg_nrows(const pg_result *r);
int pg_ncols(const pg_result *r);
const char *pg_colname(const pg_result *r, int col);
const char *pg_value(const pg_result *r, int row, int col); /* NULL for SQL NULL */
void pg_result_free(pg_result *r);

/* Append v as one element of a PostgreSQL array literal ("{a,b}"): quoted,
 * with '"' and '\\' escaped; NULL as NULL. Separators are the caller's. */
void pg_array_elem(strbuf *sb, const char *v);

#endif
