/* strbuf.c - growable buffer and string helpers (see strbuf.h). */
#include "strbuf.h"
#include "alloc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(strbuf *sb) {
    memset(sb, 0, sizeof(*sb));
}

void strbuf_free(strbuf *sb) {
    if (sb == NULL) return;
    ps_free(sb->buf);
    strbuf_init(sb);
}

void strbuf_reset(strbuf *sb) {
    sb->len = 0;
    if (sb->buf) sb->buf[0] = '\0';
}

static bool strbuf_reserve(strbuf *sb, size_t extra) {
    if (sb->oom) return false;
    if (sb->len + extra + 1 <= sb->cap) return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = ps_realloc(sb->buf, cap);
    if (p == NULL) {
        sb->oom = true;
        return false;
    }
    sb->buf = p;
    sb->cap = cap;
    return true;
}

void strbuf_append(strbuf *sb, const char *data, size_t len) {
    if (!strbuf_reserve(sb, len)) return;
    if (len) memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void strbuf_puts(strbuf *sb, const char *s) {
    strbuf_append(sb, s, strlen(s));
}

void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap) {
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0 || !strbuf_reserve(sb, (size_t)n)) return;
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void strbuf_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_json_escape(strbuf *sb, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            strbuf_append(sb, "\\\"", 2);
            break;
        case '\\':
            strbuf_append(sb, "\\\\", 2);
            break;
        case '\n':
            strbuf_append(sb, "\\n", 2);
            break;
        case '\r':
            strbuf_append(sb, "\\r", 2);
            break;
        case '\t':
            strbuf_append(sb, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                strbuf_printf(sb, "\\u%04x", c);
            else
                strbuf_append(sb, (const char *)&s[i], 1);
        }
    }
}

char *strbuf_detach(strbuf *sb) {
    char *p = sb->buf;
    if (p == NULL && !sb->oom) p = ps_strdup("");
    if (sb->oom) {
        ps_free(p);
        p = NULL;
    }
    strbuf_init(sb);
    return p;
}

void hex_encode(const unsigned char *in, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

size_t str_copy(char *dst, const char *src, size_t size) {
    size_t n = strlen(src);
    if (size) {
        size_t k = n < size - 1 ? n : size - 1;
        memcpy(dst, src, k);
        dst[k] = '\0';
    }
    return n;
}

bool str_starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_to_long(const char *s, long *out) {
    if (s == NULL || *s == '\0') return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s) return false;
    *out = v;
    return true;
}
