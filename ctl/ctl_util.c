/* ctl_util.c - small helpers the paystreamctl commands share: connecting to
 * the database with a readable error, argument checks, error lines. */
#include "commands.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ctl_fail(int code, const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "paystreamctl: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

pg_conn *ctl_db_connect(const ps_config *cfg) {
    char err[512];
    pg_conn *c = pg_connect(cfg->database_url, err, sizeof(err));
    if (c == NULL) fprintf(stderr, "paystreamctl: PAYSTREAM_DATABASE_URL: %s\n", err);
    return c;
}

bool ctl_is_uuid(const char *s) {
    static const int dash[] = {8, 13, 18, 23};
    if (strlen(s) != 36) return false;
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dash[d]) {
            if (s[i] != '-') return false;
            d++;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

redis_conn *ctl_redis_connect(const ps_config *cfg) {
    char err[512] = "";
    redis_conn *c = redis_open(cfg->redis_url, cfg->redis_timeout_ms, err, sizeof(err));
    bool named = strncmp(err, "PAYSTREAM_REDIS_URL:", 20) == 0; /* a malformed URL */
    if (c == NULL)
        fprintf(stderr, "paystreamctl: %s%s\n", named ? "" : "PAYSTREAM_REDIS_URL: ", err);
    return c;
}

void ctl_print_rows(const pg_result *r, bool as_table) {
    int rows = pg_nrows(r), cols = pg_ncols(r);
    if (as_table) {
        for (int j = 0; j < cols; j++)
            printf("%s%s", j ? " | " : "  ", pg_colname(r, j));
        printf("\n");
    }
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
            const char *v = pg_value(r, i, j);
            if (as_table)
                printf("%s%s", j ? " | " : "  ", v ? v : "");
            else
                printf("  %-14s %s\n", pg_colname(r, j), v ? v : "(null)");
        }
        if (as_table) printf("\n");
    }
}
