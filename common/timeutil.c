/* timeutil.c - clocks, sleeps, durations and backoff (see timeutil.h). */
#include "timeutil.h"
#include "strbuf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void time_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

bool duration_parse(const char *s, long *seconds) {
    if (s == NULL || *s == '\0') return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || v <= 0) return false;
    long unit = 1;
    if (*end != '\0') {
        if (end[1] != '\0') return false;
        switch (*end) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return false;
        }
    }
    if (v > LONG_MAX / unit) return false;
    *seconds = v * unit;
    return true;
}

long backoff_ms(unsigned attempt, long max_ms) {
    long ms = 100;
    for (unsigned i = 0; i < attempt && ms < max_ms; i++)
        ms *= 2;
    if (ms > max_ms) ms = max_ms;
    /* +-20% jitter so that many workers do not reconnect in lock step */
    long jitter = ms / 5;
    if (jitter > 0) ms += (long)(random() % (2 * jitter + 1)) - jitter;
    return ms;
}
