/* log.h - JSON-lines logging to stderr.
 *
 * One JSON object per line: {"ts":..,"level":..,"prog":..,"msg":..} plus
 * "event_id"/"stream_id" when a log_ctx is given, so every line about an
 * event can be found with one grep. Lines are written with a single write(2)
 * and are safe from several threads. Never pass a secret to these functions. */
#ifndef PS_LOG_H
#define PS_LOG_H

#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

typedef struct log_ctx {
    const char *event_id;  /* evt_... or NULL */
    const char *stream_id; /* Redis stream entry id or NULL */
} log_ctx;

extern log_level log_min_level;

void log_init(const char *program, log_level min_level);
bool log_level_parse(const char *name, log_level *out);
void log_write(log_level level, const log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_at(level, ctx, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= log_min_level) log_write((level), (ctx), __VA_ARGS__);                      \
    } while (0)

#define log_debug(...) log_at(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, NULL, __VA_ARGS__)

#define log_ev_debug(ctx, ...) log_at(LOG_DEBUG, (ctx), __VA_ARGS__)
#define log_ev_info(ctx, ...)  log_at(LOG_INFO, (ctx), __VA_ARGS__)
#define log_ev_warn(ctx, ...)  log_at(LOG_WARN, (ctx), __VA_ARGS__)
#define log_ev_error(ctx, ...) log_at(LOG_ERROR, (ctx), __VA_ARGS__)

#endif
