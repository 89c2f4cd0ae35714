/* cmd_migrate.c - `paystreamctl migrate`: apply sql/NNN_*.sql in order.
 *
 * Each file runs once, in its own transaction, recorded in
 * paystream.schema_migrations. A session advisory lock held for the whole run
 * makes two migrators at once safe: the second waits, then finds nothing to do. */
#include "commands.h"
#include "alloc.h"
#include "fileio.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIGRATE_LOCK_KEY "7310868421669316973" /* "paystrm" as a bigint-ish constant */
#define MAX_MIGRATIONS   512
#define MAX_SQL_BYTES    ((size_t)4 << 20)

static const char *sql_dir(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--dir") == 0) return argv[i + 1];
    const char *env = getenv("PAYSTREAM_SQL_DIR");
    if (env) return env;
    struct stat st;
    if (stat(PS_SQL_DIR_INSTALL, &st) == 0 && S_ISDIR(st.st_mode)) return PS_SQL_DIR_INSTALL;
    return PS_SQL_DIR_BUILD;
}

static bool is_migration(const char *name) {
    size_t n = strlen(name);
    return n > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
           name[2] >= '0' && name[2] <= '9' && name[3] == '_' && strcmp(name + n - 4, ".sql") == 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted migration file names in dir; returns count or -1. */
static int list_migrations(const char *dir, char **names) {
    DIR *d = opendir(dir);
    if (d == NULL) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_MIGRATIONS)
        if (is_migration(e->d_name)) names[n++] = ps_strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_names);
    return n;
}

static int rollback_fail(pg_conn *c, const char *file, const char *what) {
    ctl_fail(1, "migrate", "%s: %s", file, what);
    pg_exec(c, "ROLLBACK", 0, NULL, NULL);
    return 1;
}

/* Apply one file unless recorded; *applied says whether it ran. */
static int apply_one(pg_conn *c, const char *dir, const char *file, bool *applied) {
    char path[4096], err[512], version[4] = {file[0], file[1], file[2], '\0'};
    const char *params[2] = {version, file};
    pg_result *r = NULL;
    *applied = false;
    if (pg_exec(c, "BEGIN", 0, NULL, NULL) != 0) return rollback_fail(c, file, pg_errstr(c));
    if (pg_exec(c, "SELECT 1 FROM paystream.schema_migrations WHERE version = $1", 1, params, &r) !=
        0)
        return rollback_fail(c, file, pg_errstr(c));
    int done = pg_nrows(r);
    pg_result_free(r);
    if (done) return pg_exec(c, "COMMIT", 0, NULL, NULL) == 0 ? 0 : 1;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *sql = file_read_all(path, MAX_SQL_BYTES, NULL, err, sizeof(err));
    if (sql == NULL) return rollback_fail(c, file, err);
    int rc = pg_exec_script(c, sql);
    ps_free(sql);
    if (rc != 0) return rollback_fail(c, file, pg_errstr(c));
    if (pg_exec(c, "INSERT INTO paystream.schema_migrations (version, name) VALUES ($1, $2)", 2,
                params, NULL) != 0 ||
        pg_exec(c, "COMMIT", 0, NULL, NULL) != 0)
        return rollback_fail(c, file, pg_errstr(c));
    *applied = true;
    return 0;
}

static int migrate_all(pg_conn *c, const char *dir, char **names, int n) {
    static const char *setup = "CREATE SCHEMA IF NOT EXISTS paystream;"
                               "CREATE TABLE IF NOT EXISTS paystream.schema_migrations ("
                               " version integer PRIMARY KEY, name text NOT NULL,"
                               " applied_at timestamptz NOT NULL DEFAULT now())";
    if (pg_exec_script(c, setup) != 0) return ctl_fail(1, "migrate", "%s", pg_errstr(c));
    int applied = 0;
    for (int i = 0; i < n; i++) {
        bool ran;
        if (apply_one(c, dir, names[i], &ran) != 0) return 1;
        if (ran) {
            printf("applied %s\n", names[i]);
            applied++;
        }
    }
    printf("schema up to date (%d applied, %d total)\n", applied, n);
    return 0;
}

int cmd_migrate(const ps_config *cfg, int argc, char **argv) {
    const char *dir = sql_dir(argc, argv);
    char *names[MAX_MIGRATIONS];
    int n = list_migrations(dir, names);
    if (n <= 0) return ctl_fail(1, "migrate", "no NNN_*.sql migrations found in %s", dir);
    int rc = 1;
    pg_conn *c = ctl_db_connect(cfg);
    if (c == NULL) goto done;
    const char *key[1] = {MIGRATE_LOCK_KEY};
    if (pg_exec(c, "SELECT pg_advisory_lock($1::bigint)", 1, key, NULL) != 0) {
        ctl_fail(1, "migrate", "cannot take the migration lock: %s", pg_errstr(c));
        goto done;
    }
    rc = migrate_all(c, dir, names, n);
    pg_exec(c, "SELECT pg_advisory_unlock($1::bigint)", 1, key, NULL);
done:
    pg_close(c);
    for (int i = 0; i < n; i++)
        ps_free(names[i]);
    return rc;
}
