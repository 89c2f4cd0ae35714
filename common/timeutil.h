/* timeutil.h - clocks and durations.
 *
 * Wall-clock time for stream entries and logs, a monotonic clock for timeouts
 * and latency, a backoff schedule shared by every reconnect loop, and the
 * duration syntax of settings such as PAYSTREAM_RETENTION ("30d"). */
#ifndef PS_TIMEUTIL_H
#define PS_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

int64_t time_now_ms(void);  /* Unix time in milliseconds */
int64_t time_mono_us(void); /* monotonic microseconds */
void time_sleep_ms(long ms);
/* "90", "90s", "15m", "12h", "30d" -> seconds. False on junk or <= 0. */
bool duration_parse(const char *s, long *seconds);
/* Exponential backoff with jitter: 100ms, 200ms ... capped at max_ms. */
long backoff_ms(unsigned attempt, long max_ms);

#endif
