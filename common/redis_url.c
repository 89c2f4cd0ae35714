/* redis_url.c - PAYSTREAM_REDIS_URL parser (see redis_url.h). Percent-escapes
 * in the password are decoded so passwords with '@' or ':' can be written. */
#include "redis_url.h"
#include "alloc.h"
#include "strbuf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static char *pct_decode(const char *s, size_t n) {
    char *out = ps_malloc(n + 1);
    if (out == NULL) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* Split "user:password@" off the front of *rest. */
static int parse_userinfo(const char **rest, redis_url *u) {
    const char *at = strrchr(*rest, '@');
    if (at == NULL) return 0;
    const char *colon = memchr(*rest, ':', (size_t)(at - *rest));
    if (colon) {
        if (colon > *rest) u->user = pct_decode(*rest, (size_t)(colon - *rest));
        u->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
    } else {
        u->password = pct_decode(*rest, (size_t)(at - *rest));
    }
    *rest = at + 1;
    return u->password ? 0 : -1;
}

static int parse_db(const char *s, int *db) {
    long v;
    if (!str_to_long(s, &v) || v < 0 || v > 65535) return -1;
    *db = (int)v;
    return 0;
}

static int parse_tcp(const char *rest, redis_url *u, char *err, size_t errlen) {
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    char hostport[256];
    if (hostlen == 0 || hostlen >= sizeof(hostport)) {
        snprintf(err, errlen, "missing or too long host");
        return -1;
    }
    memcpy(hostport, rest, hostlen);
    hostport[hostlen] = '\0';
    char *portp = NULL;
    if (hostport[0] == '[') { /* [::1]:6379 */
        char *close = strchr(hostport, ']');
        if (close == NULL) {
            snprintf(err, errlen, "unclosed '[' in host");
            return -1;
        }
        *close = '\0';
        if (close[1] != '\0' && close[1] != ':') {
            snprintf(err, errlen, "unexpected text after ']' in host");
            return -1;
        }
        u->host = ps_strdup(hostport + 1);
        if (close[1] == ':') portp = close + 2;
    } else {
        char *colon = strrchr(hostport, ':');
        if (colon && memchr(hostport, ':', (size_t)(colon - hostport))) {
            snprintf(err, errlen, "an IPv6 address must be in brackets: redis://[::1]:6379");
            return -1;
        }
        if (colon) {
            *colon = '\0';
            portp = colon + 1;
        }
        u->host = ps_strdup(hostport);
    }
    long port = 6379;
    if (portp && (!str_to_long(portp, &port) || port < 1 || port > 65535)) {
        snprintf(err, errlen, "bad port");
        return -1;
    }
    u->port = (int)port;
    if (slash && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
        snprintf(err, errlen, "database must be a number");
        return -1;
    }
    return u->host ? 0 : -1;
}

static int parse_unix(const char *rest, redis_url *u, char *err, size_t errlen) {
    const char *q = strchr(rest, '?');
    size_t n = q ? (size_t)(q - rest) : strlen(rest);
    if (n == 0 || rest[0] != '/') {
        snprintf(err, errlen, "unix socket path must be absolute");
        return -1;
    }
    u->path = ps_strndup(rest, n);
    if (q && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) != 0)) {
        snprintf(err, errlen, "only ?db=N may follow the socket path");
        return -1;
    }
    return u->path ? 0 : -1;
}

int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const char *rest;
    int rc;
    if (str_starts_with(url, "redis://")) {
        rest = url + 8;
        rc = parse_userinfo(&rest, out) == 0 ? parse_tcp(rest, out, err, errlen) : -1;
    } else if (str_starts_with(url, "unix://")) {
        rest = url + 7;
        rc = parse_userinfo(&rest, out) == 0 ? parse_unix(rest, out, err, errlen) : -1;
    } else {
        snprintf(err, errlen, "must start with redis:// or unix://");
        rc = -1;
    }
    if (rc != 0) {
        if (err[0] == '\0') snprintf(err, errlen, "out of memory");
        redis_url_free(out);
    }
    return rc;
}

void redis_url_free(redis_url *u) {
    if (u == NULL) return;
    ps_free(u->host);
    ps_free(u->path);
    ps_free(u->user);
    ps_free(u->password);
    memset(u, 0, sizeof(*u));
}

void redis_url_describe(const redis_url *u, char *buf, size_t len) {
    if (u->path)
        snprintf(buf, len, "%s", u->path);
    else
        snprintf(buf, len, "%s:%d", u->host, u->port);
}
