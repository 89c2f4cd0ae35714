/* log.c - JSON-lines logger (see log.h). */
#include "log.h"
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

log_level log_min_level = LOG_INFO;
static const char *log_program = "paystream";

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *program, log_level min_level) {
    log_program = program;
    log_min_level = min_level;
}

bool log_level_parse(const char *name, log_level *out) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

static void add_field(strbuf *sb, const char *key, const char *value) {
    if (value == NULL) return;
    strbuf_printf(sb, ",\"%s\":\"", key);
    strbuf_json_escape(sb, value, strlen(value));
    strbuf_append(sb, "\"", 1);
}

void log_write(log_level level, const log_ctx *ctx, const char *fmt, ...) {
    char stamp[32], msg[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\"", stamp, level_names[level],
                  log_program);
    if (ctx) {
        add_field(&sb, "event_id", ctx->event_id);
        add_field(&sb, "stream_id", ctx->stream_id);
    }
    add_field(&sb, "msg", msg);
    strbuf_append(&sb, "}\n", 2);
    if (!sb.oom) {
        ssize_t w = write(STDERR_FILENO, sb.buf, sb.len);
        (void)w;
    }
    strbuf_free(&sb);
}
