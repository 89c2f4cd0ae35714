/* itest_ledger_migrate.c - `paystreamctl migrate` against a real server
 * (SPEC section 5): two migrators at once each succeed and every migration
 * is applied once; running it again changes nothing. */
#include "ledger.h"
#include "alloc.h"
#include "fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* ------------------------------------------------------------ migrations -- */

/* Two migrators started at the same moment on a fresh database: both succeed
 * and every migration is applied exactly once. Three rounds. */
static void test_migrate_race(void **state) {
    (void)state;
    int nfiles = db_migration_count();
    assert_true(nfiles >= 2);
    for (int round = 0; round < 3; round++) {
        char dbname[32], out_path[2][64];
        snprintf(dbname, sizeof(dbname), "race_%d", round);
        db_create_database(dbname);
        char *url = db_url(NULL, dbname);
        const char *args[] = {"--database-url", url, "migrate", NULL};
        int gate[2];
        pid_t pid[2];
        assert_int_equal(pipe(gate), 0);
        for (int i = 0; i < 2; i++) {
            snprintf(out_path[i], sizeof(out_path[i]), "/tmp/itest-race-%d-%d-%d", (int)getpid(),
                     round, i);
            pid[i] = proc_spawn_ctl(args, out_path[i], gate);
            assert_true(pid[i] > 0);
        }
        close(gate[0]);
        close(gate[1]); /* both start now */
        int applied = 0;
        for (int i = 0; i < 2; i++) {
            char err[256];
            int rc = proc_wait(pid[i]);
            char *out = file_read_all(out_path[i], 1 << 20, NULL, err, sizeof(err));
            assert_non_null(out);
            if (rc != 0) fail_msg("migrator %d of round %d exited %d:\n%s", i, round, rc, out);
            applied += text_count_lines(out, "applied ");
            ps_free(out);
            unlink(out_path[i]);
        }
        assert_int_equal(applied, nfiles);
        pg_conn *c = db_connect_url(url);
        assert_int_equal(db_long(c, "SELECT count(*) FROM paystream.schema_migrations", 0), nfiles);
        assert_int_equal(
            db_long(c, "SELECT count(DISTINCT name) FROM paystream.schema_migrations", 0), nfiles);
        pg_close(c);
        ps_free(url);
    }
}

/* A second run applies nothing and leaves schema_migrations as it was. */
static void test_migrate_idempotent(void **state) {
    (void)state;
    int nfiles = db_migration_count(), rc;
    char want[64];
    db_create_database("idem");
    char *out = ledger_migrate("idem", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(text_count_lines(out, "applied "), nfiles);
    ps_free(out);
    char *url = db_url(NULL, "idem");
    pg_conn *c = db_connect_url(url);
    const char *snap_sql = "SELECT string_agg(version || ' ' || name || ' ' || applied_at, ','"
                           " ORDER BY version) FROM paystream.schema_migrations";
    char *before = db_scalar(c, snap_sql, 0);
    for (int run = 0; run < 2; run++) {
        out = ledger_migrate(run == 0 ? "idem" : NULL, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(text_count_lines(out, "applied "), 0);
        snprintf(want, sizeof(want), "(0 applied, %d total)", nfiles);
        assert_non_null(strstr(out, want));
        ps_free(out);
    }
    char *after = db_scalar(c, snap_sql, 0);
    assert_string_equal(before, after);
    assert_int_equal(db_long(c, "SELECT count(*) FROM paystream.schema_migrations", 0), nfiles);
    assert_int_equal(db_long(ledger_su, "SELECT count(*) FROM paystream.schema_migrations", 0),
                     nfiles);
    ps_free(before);
    ps_free(after);
    pg_close(c);
    ps_free(url);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_race),
        cmocka_unit_test(test_migrate_idempotent),
    };
    return cmocka_run_group_tests(tests, ledger_setup, ledger_teardown);
}
