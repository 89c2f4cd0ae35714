/* db.c - PostgreSQL and paystreamctl helpers for the cmocka integration
 * tests (see db.h). Queries go through common/pg.h like everywhere else;
 * this file only adds the test-failure plumbing and process handling. */
#include "db.h"
#include "alloc.h"
#include "fileio.h"
#include "strbuf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define DB_MAX_PARAMS 16
#define DB_MAX_OUTPUT (4 * 1024 * 1024)

static const char *env_or_fail(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') fail_msg("%s is not set: run this test under with-stack", name);
    return v;
}

/* ------------------------------------------------------------ connecting -- */

char *db_url(const char *user, const char *dbname) {
    const char *base = env_or_fail("PAYSTREAM_DATABASE_URL");
    strbuf sb;
    strbuf_init(&sb);
    const char *scheme = strstr(base, "://");
    if (scheme == NULL) {
        /* key=value conninfo: a later keyword overrides an earlier one */
        strbuf_puts(&sb, base);
        if (user) strbuf_printf(&sb, " user=%s", user);
        if (dbname) strbuf_printf(&sb, " dbname=%s", dbname);
    } else {
        const char *auth = scheme + 3;
        const char *auth_end = auth + strcspn(auth, "/?");
        const char *at = memchr(auth, '@', (size_t)(auth_end - auth));
        const char *host = at ? at + 1 : auth;
        strbuf_append(&sb, base, (size_t)(auth - base));
        if (user)
            strbuf_printf(&sb, "%s@", user);
        else if (at)
            strbuf_append(&sb, auth, (size_t)(host - auth));
        strbuf_append(&sb, host, (size_t)(auth_end - host));
        const char *query = strchr(auth_end, '?');
        if (dbname)
            strbuf_printf(&sb, "/%s", dbname);
        else
            strbuf_append(&sb, auth_end, query ? (size_t)(query - auth_end) : strlen(auth_end));
        if (query) strbuf_puts(&sb, query);
    }
    if (sb.oom) fail_msg("out of memory");
    return strbuf_detach(&sb);
}

pg_conn *db_connect_url(const char *url) {
    char err[512];
    pg_conn *c = pg_connect(url, err, sizeof(err));
    if (c == NULL) fail_msg("%s", err);
    return c;
}

pg_conn *db_connect_as(const char *user) {
    char *url = db_url(user, NULL);
    pg_conn *c = db_connect_url(url);
    ps_free(url);
    return c;
}

static void check_identifier(const char *name) {
    if (name == NULL || *name == '\0' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
        fail_msg("'%s' is not a plain lower-case identifier", name ? name : "(null)");
}

void db_create_database(const char *name) {
    char sql[256];
    check_identifier(name);
    pg_conn *c = db_connect_url(env_or_fail("PS_PG_ADMIN_URL"));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    db_must(c, sql, 0);
    pg_close(c);
}

void db_create_login(const char *name, const char *group_role) {
    char sql[512];
    check_identifier(name);
    check_identifier(group_role);
    pg_conn *c = db_connect_as(NULL);
    snprintf(sql, sizeof(sql),
             "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN"
             " CREATE ROLE %s LOGIN IN ROLE %s; END IF; END $$",
             name, name, group_role);
    db_must(c, sql, 0);
    pg_close(c);
}

/* --------------------------------------------------------------- queries -- */

static int db_vrun(pg_conn *c, pg_result **out, const char *sql, int nparams, va_list ap) {
    const char *params[DB_MAX_PARAMS];
    if (nparams < 0 || nparams > DB_MAX_PARAMS) fail_msg("db: %d parameters", nparams);
    for (int i = 0; i < nparams; i++)
        params[i] = va_arg(ap, const char *);
    return pg_exec(c, sql, nparams, params, out);
}

int db_run(pg_conn *c, pg_result **out, const char *sql, int nparams, ...) {
    va_list ap;
    va_start(ap, nparams);
    int rc = db_vrun(c, out, sql, nparams, ap);
    va_end(ap);
    return rc;
}

void db_must(pg_conn *c, const char *sql, int nparams, ...) {
    va_list ap;
    va_start(ap, nparams);
    int rc = db_vrun(c, NULL, sql, nparams, ap);
    va_end(ap);
    if (rc != 0) fail_msg("%s\n  in: %s", pg_errstr(c), sql);
}

static char *db_vscalar(pg_conn *c, const char *sql, int nparams, va_list ap) {
    pg_result *r = NULL;
    if (db_vrun(c, &r, sql, nparams, ap) != 0) fail_msg("%s\n  in: %s", pg_errstr(c), sql);
    const char *v = pg_nrows(r) > 0 && pg_ncols(r) > 0 ? pg_value(r, 0, 0) : NULL;
    char *copy = v ? ps_strdup(v) : NULL;
    pg_result_free(r);
    return copy;
}

char *db_scalar(pg_conn *c, const char *sql, int nparams, ...) {
    va_list ap;
    va_start(ap, nparams);
    char *v = db_vscalar(c, sql, nparams, ap);
    va_end(ap);
    return v;
}

long db_long(pg_conn *c, const char *sql, int nparams, ...) {
    va_list ap;
    va_start(ap, nparams);
    char *v = db_vscalar(c, sql, nparams, ap);
    va_end(ap);
    long n;
    if (v == NULL || !str_to_long(v, &n)) fail_msg("not a number: [%s]\n  in: %s", v, sql);
    ps_free(v);
    return n;
}

const char *db_must_fail(pg_conn *c, const char *sqlstate, const char *sql, int nparams, ...) {
    va_list ap;
    va_start(ap, nparams);
    int rc = db_vrun(c, NULL, sql, nparams, ap);
    va_end(ap);
    if (rc == 0) fail_msg("expected SQLSTATE %s, but it succeeded: %s", sqlstate, sql);
    if (strcmp(pg_sqlstate(c), sqlstate) != 0)
        fail_msg("expected SQLSTATE %s, got %s (%s)\n  in: %s", sqlstate, pg_sqlstate(c),
                 pg_errstr(c), sql);
    return pg_errstr(c);
}

static void *db_async_main(void *arg) {
    db_async *a = arg;
    pg_result *r = NULL;
    pg_conn *c = pg_connect(a->url, a->err, sizeof(a->err));
    a->rc = -1;
    if (a->start) pthread_barrier_wait(a->start);
    if (c) {
        a->rc = pg_exec(c, a->sql, a->nparams, a->params, &r);
        if (a->rc != 0)
            snprintf(a->err, sizeof(a->err), "%s", pg_errstr(c));
        else if (pg_nrows(r) > 0 && pg_value(r, 0, 0))
            snprintf(a->value, sizeof(a->value), "%s", pg_value(r, 0, 0));
        pg_result_free(r);
        pg_close(c);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

void db_async_start(db_async *a, pthread_barrier_t *start, const char *role, const char *sql,
                    int nparams, ...) {
    va_list ap;
    if (nparams < 0 || nparams > 8) fail_msg("db_async: %d parameters", nparams);
    memset(a, 0, sizeof(*a));
    a->start = start;
    a->url = db_url(role, NULL);
    a->sql = sql;
    a->nparams = nparams;
    va_start(ap, nparams);
    for (int i = 0; i < nparams; i++)
        a->params[i] = va_arg(ap, const char *);
    va_end(ap);
    if (pthread_create(&a->thread, NULL, db_async_main, a) != 0) fail_msg("pthread_create");
}

void db_async_join(db_async *a) {
    pthread_join(a->thread, NULL);
    ps_free(a->url);
    a->url = NULL;
    if (a->rc != 0) fail_msg("%s\n  in: %s", a->err, a->sql);
}

void db_wait_lock_waiters(pg_conn *c, const char *role, int n) {
    char want[16];
    snprintf(want, sizeof(want), "%d", n);
    for (int i = 0; i < 1000; i++) {
        long waiting = db_long(c,
                               "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND"
                               " wait_event_type = 'Lock'",
                               1, role);
        if (waiting >= n) return;
        usleep(10 * 1000);
    }
    fail_msg("no %d session(s) of %s waiting for a lock after 10 s", n, role);
}

void db_uuid(char out[37], unsigned long hi, unsigned long lo) {
    snprintf(out, 37, "%08lx-%04lx-4%03lx-8%03lx-%012lx", hi & 0xffffffffUL, (hi >> 32) & 0xffffUL,
             (lo >> 48) & 0xfffUL, (lo >> 36) & 0xfffUL, lo & 0xfffffffffUL);
}

static bool is_migration_name(const char *n) {
    size_t len = strlen(n);
    return len > 8 && strspn(n, "0123456789") == 3 && n[3] == '_' &&
           strcmp(n + len - 4, ".sql") == 0;
}

int db_migration_count(void) {
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/migrations", env_or_fail("PAYSTREAM_SQL_DIR"));
    DIR *d = opendir(dir);
    if (d == NULL) fail_msg("cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += is_migration_name(e->d_name);
    closedir(d);
    return n;
}

/* ------------------------------------------------------------- processes -- */

pid_t proc_spawn_ctl(const char *const args[], const char *out_path, const int *gate) {
    char prog[4096];
    const char *argv[32];
    int n = 0;
    snprintf(prog, sizeof(prog), "%s/paystreamctl", env_or_fail("PS_BIN_DIR"));
    argv[n++] = prog;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(126);
    close(fd);
    if (gate) {
        char ch;
        close(gate[1]);
        while (read(gate[0], &ch, 1) > 0) {
        }
        close(gate[0]);
    }
    execv(prog, (char *const *)argv);
    _exit(127);
}

int proc_wait(pid_t pid) {
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

int proc_run_ctl(const char *const args[], char **output) {
    char path[] = "/tmp/paystream-itest-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) fail_msg("mkstemp failed");
    close(fd);
    int rc = proc_wait(proc_spawn_ctl(args, path, NULL));
    if (output) {
        char err[256];
        *output = file_read_all(path, DB_MAX_OUTPUT, NULL, err, sizeof(err));
        if (*output == NULL) fail_msg("%s", err);
    }
    unlink(path);
    return rc;
}
