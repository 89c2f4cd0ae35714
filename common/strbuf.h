/* strbuf.h - a growable byte buffer and a few string helpers.
 *
 * Used to build JSON log lines, SQL parameter text and reports. A strbuf owns
 * its memory; strbuf_free() releases it and accepts a zeroed or freed buffer.
 * On allocation failure a strbuf latches `oom` and further appends are no-ops,
 * so callers check once at the end. */
#ifndef PS_STRBUF_H
#define PS_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *buf; /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    bool oom;
} strbuf;

void strbuf_init(strbuf *sb);
void strbuf_free(strbuf *sb);
void strbuf_reset(strbuf *sb);
void strbuf_append(strbuf *sb, const char *data, size_t len);
void strbuf_puts(strbuf *sb, const char *s);
void strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap);
/* Append s as the inside of a JSON string (no quotes added). */
void strbuf_json_escape(strbuf *sb, const char *s, size_t len);
/* Take ownership of the buffer's bytes (NUL-terminated); the strbuf is reset. */
char *strbuf_detach(strbuf *sb);

/* Lower-case hex of `len` bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* Copy at most size-1 bytes and terminate; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t size);
bool str_starts_with(const char *s, const char *prefix);
/* Parse a whole decimal integer; false on junk, empty input or overflow. */
bool str_to_long(const char *s, long *out);

#endif
