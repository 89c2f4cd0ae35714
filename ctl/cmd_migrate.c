/* cmd_migrate.c - `paystreamctl migrate`: bring the schema to this version's.
 *
 * Tables and types change through numbered migrations (sql/migrations/
 * NNN_*.sql), applied once each in order and recorded in
 * paystream.schema_migrations. Functions, triggers and grants are code: the
 * files sql/code.list names, applied again whenever their content changed
 * (their sha256 is recorded in paystream.schema_code), and all of them after
 * any migration.
 * Everything runs in one transaction under a transaction advisory lock, so two
 * migrators at once serialise: the second waits, then finds nothing to do. */
#include "commands.h"
#include "alloc.h"
#include "fileio.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIGRATE_LOCK_KEY "7310868421669316973" /* "paystrm" as a bigint-ish constant */
#define MAX_FILES        512
#define MAX_SQL_BYTES    ((size_t)4 << 20)

typedef struct file_list {
    char *names[MAX_FILES];
    int n;
} file_list;

typedef struct migrate_run {
    pg_conn *c;
    const char *dir;
    int migrations; /* applied in this run */
    int code;       /* code files applied in this run */
} migrate_run;

static const char *sql_dir(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--dir") == 0) return argv[i + 1];
    const char *env = getenv("PAYSTREAM_SQL_DIR");
    if (env) return env;
    struct stat st;
    if (stat(PS_SQL_DIR_INSTALL, &st) == 0 && S_ISDIR(st.st_mode)) return PS_SQL_DIR_INSTALL;
    return PS_SQL_DIR_BUILD;
}

static void files_free(file_list *l) {
    for (int i = 0; i < l->n; i++)
        ps_free(l->names[i]);
    l->n = 0;
}

/* ----------------------------------------------------------- the files -- */

static bool is_migration(const char *name) {
    size_t n = strlen(name);
    return n > 8 && isdigit((unsigned char)name[0]) && isdigit((unsigned char)name[1]) &&
           isdigit((unsigned char)name[2]) && name[3] == '_' && strcmp(name + n - 4, ".sql") == 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The migrations of dir/migrations, sorted; -1 with a message when unreadable. */
static int list_migrations(const char *dir, file_list *l) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/migrations", dir);
    DIR *d = opendir(path);
    if (d == NULL) return ctl_fail(-1, "migrate", "no migrations folder %s", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && l->n < MAX_FILES)
        if (is_migration(e->d_name)) l->names[l->n++] = ps_strdup(e->d_name);
    closedir(d);
    qsort(l->names, (size_t)l->n, sizeof(char *), cmp_names);
    return l->n > 0 ? 0 : ctl_fail(-1, "migrate", "no NNN_*.sql migrations found in %s", path);
}

static bool is_code_name(const char *w, size_t len) {
    if (len < 5 || strncmp(w + len - 4, ".sql", 4) != 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)w[i]) && w[i] != '_' && w[i] != '-' && w[i] != '.')
            return false;
    return true;
}

/* The code files dir/code.list names, in its order: one a line, `#` comments. */
static int list_code(const char *dir, file_list *l) {
    char path[4096], err[256];
    snprintf(path, sizeof(path), "%s/code.list", dir);
    char *text = file_read_all(path, 1 << 16, NULL, err, sizeof(err));
    if (text == NULL) return ctl_fail(-1, "migrate", "%s", err);
    int line = 0, rc = 0;
    for (char *p = text; *p && rc == 0; line++) {
        char *end = p + strcspn(p, "\n"), *w = p + strspn(p, " \t");
        size_t len = strcspn(w, " \t#\n");
        if (len > 0 && (!is_code_name(w, len) || l->n == MAX_FILES))
            rc = ctl_fail(-1, "migrate", "%s:%d: not a code file name", path, line + 1);
        else if (len > 0)
            l->names[l->n++] = ps_strndup(w, len);
        p = *end ? end + 1 : end;
    }
    ps_free(text);
    if (rc == 0 && l->n == 0) rc = ctl_fail(-1, "migrate", "%s names no code file", path);
    return rc;
}

static char *read_sql(const char *dir, const char *sub, const char *name) {
    char path[4096], err[256];
    snprintf(path, sizeof(path), "%s/%s%s", dir, sub, name);
    char *sql = file_read_all(path, MAX_SQL_BYTES, NULL, err, sizeof(err));
    if (sql == NULL) ctl_fail(1, "migrate", "%s", err);
    return sql;
}

/* ---------------------------------------------------------- applying -- */

static int fail_sql(migrate_run *m, const char *file) {
    return ctl_fail(-1, "migrate", "%s: %s", file, pg_errstr(m->c));
}

/* Apply one migration unless recorded. */
static int apply_migration(migrate_run *m, const char *file) {
    char version[4] = {file[0], file[1], file[2], '\0'};
    const char *params[2] = {version, file};
    pg_result *r = NULL;
    if (pg_exec(m->c, "SELECT 1 FROM paystream.schema_migrations WHERE version = $1", 1, params,
                &r) != 0)
        return fail_sql(m, file);
    int done = pg_nrows(r);
    pg_result_free(r);
    if (done) return 0;
    char *sql = read_sql(m->dir, "migrations/", file);
    if (sql == NULL) return -1;
    int rc = pg_exec_script(m->c, sql);
    ps_free(sql);
    if (rc != 0 ||
        pg_exec(m->c, "INSERT INTO paystream.schema_migrations (version, name) VALUES ($1, $2)", 2,
                params, NULL) != 0)
        return fail_sql(m, file);
    printf("applied %s\n", file);
    m->migrations++;
    return 0;
}

/* Apply one code file if it changed since it was last applied, or always
 * when force. */
static int apply_code(migrate_run *m, const char *file, bool force) {
    char *sql = read_sql(m->dir, "", file);
    if (sql == NULL) return -1;
    const char *params[2] = {file, sql};
    pg_result *r = NULL;
    int rc = -1;
    if (pg_exec(m->c,
                "SELECT 1 FROM paystream.schema_code WHERE file = $1 AND"
                " sha256 = encode(sha256(convert_to($2, 'UTF8')), 'hex')",
                2, params, &r) != 0)
        goto done;
    bool same = pg_nrows(r) > 0;
    pg_result_free(r);
    if (same && !force) {
        rc = 0;
        goto done;
    }
    if (pg_exec_script(m->c, sql) != 0 ||
        pg_exec(m->c,
                "INSERT INTO paystream.schema_code (file, sha256) VALUES ($1,"
                " encode(sha256(convert_to($2, 'UTF8')), 'hex')) ON CONFLICT (file) DO UPDATE"
                " SET sha256 = EXCLUDED.sha256, applied_at = now()",
                2, params, NULL) != 0)
        goto done;
    printf("updated %s\n", file);
    m->code++;
    rc = 0;
done:
    if (rc != 0) fail_sql(m, file);
    ps_free(sql);
    return rc;
}

static int migrate_all(migrate_run *m, const file_list *migrations, const file_list *code) {
    static const char *setup = "CREATE SCHEMA IF NOT EXISTS paystream;"
                               "CREATE TABLE IF NOT EXISTS paystream.schema_migrations ("
                               " version integer PRIMARY KEY, name text NOT NULL,"
                               " applied_at timestamptz NOT NULL DEFAULT now());"
                               "CREATE TABLE IF NOT EXISTS paystream.schema_code ("
                               " file text PRIMARY KEY, sha256 text NOT NULL,"
                               " applied_at timestamptz NOT NULL DEFAULT now())";
    const char *key[1] = {MIGRATE_LOCK_KEY};
    if (pg_exec(m->c, "SELECT pg_advisory_xact_lock($1::bigint)", 1, key, NULL) != 0)
        return ctl_fail(-1, "migrate", "cannot take the migration lock: %s", pg_errstr(m->c));
    if (pg_exec_script(m->c, setup) != 0) return fail_sql(m, "schema_migrations");
    for (int i = 0; i < migrations->n; i++)
        if (apply_migration(m, migrations->names[i]) != 0) return -1;
    for (int i = 0; i < code->n; i++)
        if (apply_code(m, code->names[i], m->migrations > 0) != 0) return -1;
    return 0;
}

int cmd_migrate(const ps_config *cfg, int argc, char **argv) {
    static file_list migrations, code;
    migrate_run m = {.dir = sql_dir(argc, argv)};
    int rc = 1;
    if (list_migrations(m.dir, &migrations) != 0 || list_code(m.dir, &code) != 0) goto done;
    if ((m.c = ctl_db_connect(cfg)) == NULL) goto done;
    if (pg_exec(m.c, "BEGIN", 0, NULL, NULL) != 0) {
        ctl_fail(1, "migrate", "%s", pg_errstr(m.c));
        goto done;
    }
    if (migrate_all(&m, &migrations, &code) != 0) {
        pg_exec(m.c, "ROLLBACK", 0, NULL, NULL);
        goto done;
    }
    if (pg_exec(m.c, "COMMIT", 0, NULL, NULL) != 0) {
        ctl_fail(1, "migrate", "commit: %s", pg_errstr(m.c));
        goto done;
    }
    printf("schema up to date (%d applied, %d total); code: %d of %d files updated\n", m.migrations,
           migrations.n, m.code, code.n);
    rc = 0;
done:
    pg_close(m.c);
    files_free(&migrations);
    files_free(&code);
    return rc;
}
