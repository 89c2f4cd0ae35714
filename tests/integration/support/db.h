/* db.h - PostgreSQL helpers for the cmocka integration tests (itest_*.c).
 *
 * They work on the stack that tests/harness/with-stack started: connection
 * URLs are derived from PAYSTREAM_DATABASE_URL (superuser, database not yet
 * migrated), migrations run by exec'ing $PS_BIN_DIR/paystreamctl. The db_must*
 * helpers fail the current cmocka test on any error, so they may only be used
 * on the test's own thread; threads use pg.h directly. Strings returned here
 * are the caller's to ps_free(). */
#ifndef PS_ITEST_DB_H
#define PS_ITEST_DB_H

#include "pg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* PAYSTREAM_DATABASE_URL with the user and/or database replaced (NULL keeps
 * the one there). Never NULL: fails the test if the variable is unset. */
char *db_url(const char *user, const char *dbname);
/* Connect to url, failing the test when that is impossible. */
pg_conn *db_connect_url(const char *url);
/* Connect to the stack's database as `user` (NULL: the superuser). */
pg_conn *db_connect_as(const char *user);

/* CREATE DATABASE name (through PS_PG_ADMIN_URL); fails the test on error. */
void db_create_database(const char *name);
/* CREATE ROLE name LOGIN IN ROLE group_role, unless it exists. */
void db_create_login(const char *name, const char *group_role);

/* Run sql with nparams text parameters (SQL NULL for a NULL pointer). The
 * result goes to *out when out != NULL. Returns 0, or -1 with the error in c. */
int db_run(pg_conn *c, pg_result **out, const char *sql, int nparams, ...);
/* Same, failing the test on error. */
void db_must(pg_conn *c, const char *sql, int nparams, ...);
/* First column of the first row (NULL for no row or SQL NULL), failing the
 * test on error. */
char *db_scalar(pg_conn *c, const char *sql, int nparams, ...);
/* A whole-number scalar; fails the test on error, NULL or junk. */
long db_long(pg_conn *c, const char *sql, int nparams, ...);
/* Expect sql to fail with SQLSTATE `sqlstate`; fails the test otherwise.
 * Returns the error message (valid until the next query on c). */
const char *db_must_fail(pg_conn *c, const char *sqlstate, const char *sql, int nparams, ...);

/* One statement on its own connection and thread, for tests that need a
 * second session (e.g. one blocked behind the first's row lock). Start it,
 * watch `done`, then join: db_async_join fails the test if the statement
 * failed, and leaves the first column of its first row in `value`. */
typedef struct db_async {
    pthread_t thread;
    char *url;
    const char *sql;
    const char *params[8];
    int nparams;
    pthread_barrier_t *start; /* optional: wait here before the statement */
    atomic_int done;
    int rc;
    char value[128];
    char err[256];
} db_async;

/* role NULL: the superuser; start NULL: run at once. params must outlive it. */
void db_async_start(db_async *a, pthread_barrier_t *start, const char *role, const char *sql,
                    int nparams, ...);
void db_async_join(db_async *a);

/* Wait until `n` sessions of `role` are waiting for a lock (pg_stat_activity,
 * seen through c, a superuser); fails the test after 10 seconds. */
void db_wait_lock_waiters(pg_conn *c, const char *role, int n);

/* A well-formed UUID text (36 chars + NUL) made from two numbers, so tests
 * can name users and videos deterministically: db_uuid(buf, 7, 42). */
void db_uuid(char out[37], unsigned long hi, unsigned long lo);

/* Number of NNN_*.sql migrations in $PAYSTREAM_SQL_DIR/migrations. */
int db_migration_count(void);

/* $PS_BIN_DIR/paystreamctl with the given arguments (NULL-terminated, after
 * the program name), its stdout and stderr into out_path (NULL: /dev/null).
 * With a gate (a pipe's two fds) the child waits until the pipe reaches end
 * of file, i.e. until the parent closes gate[1], so several children start at
 * the same moment. Returns the child's pid, or -1. */
pid_t proc_spawn_ctl(const char *const args[], const char *out_path, const int *gate);
/* Wait for pid; its exit status, 128 + signal when killed, -1 on error. */
int proc_wait(pid_t pid);
/* Run paystreamctl to completion; exit status, output in *output when
 * output != NULL (caller frees). */
int proc_run_ctl(const char *const args[], char **output);

#endif
