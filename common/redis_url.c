/* redis_url.c - PAYSTREAM_REDIS_URL parser (see redis_url.h). Percent-escapes
 * in the password are decoded so passwords with '@' or ':' can be written.
 * Finding the master behind a redis-sentinel:// URL is redis_sentinel.c's job. */
#include "redis_url.h"
#include "alloc.h"
#include "strbuf.h"

#include <ctype.h>
#include <stdbool.h>
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

/* host[:port] or [v6]:port in s[0..n), port `defport` when not given. */
static int parse_hostport(const char *s, size_t n, int defport, redis_addr *out, char *err,
                          size_t errlen) {
    char hostport[256];
    if (n == 0 || n >= sizeof(hostport)) {
        snprintf(err, errlen, "missing or too long host");
        return -1;
    }
    memcpy(hostport, s, n);
    hostport[n] = '\0';
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
        out->host = ps_strdup(hostport + 1);
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
        if (hostport[0] == '\0') {
            snprintf(err, errlen, "missing host");
            return -1;
        }
        out->host = ps_strdup(hostport);
    }
    long port = defport;
    if (portp && (!str_to_long(portp, &port) || port < 1 || port > 65535)) {
        snprintf(err, errlen, "bad port");
        return -1;
    }
    out->port = (int)port;
    return out->host ? 0 : -1;
}

static int parse_tcp(const char *rest, redis_url *u, char *err, size_t errlen) {
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    redis_addr a = {NULL, 0};
    int rc = parse_hostport(rest, hostlen, 6379, &a, err, errlen);
    u->host = a.host;
    u->port = a.port;
    if (rc != 0) return -1;
    if (slash && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
        snprintf(err, errlen, "database must be a number");
        return -1;
    }
    return 0;
}

/* The comma-separated sentinels of s[0..n). */
static int parse_sentinels(const char *s, size_t n, redis_url *u, char *err, size_t errlen) {
    u->sentinels = ps_calloc(REDIS_URL_MAX_SENTINELS, sizeof(redis_addr));
    if (u->sentinels == NULL) return -1;
    const char *p = s, *end = s + n;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (u->nsentinels == REDIS_URL_MAX_SENTINELS) {
            snprintf(err, errlen, "more than %d sentinels", REDIS_URL_MAX_SENTINELS);
            return -1;
        }
        redis_addr *a = &u->sentinels[u->nsentinels++];
        if (parse_hostport(p, (size_t)(stop - p), 26379, a, err, errlen) != 0) return -1;
        p = stop + 1;
    }
    return 0;
}

/* [userinfo@]host:port[,host:port...][/db]#MASTER (after "redis-sentinel://"). */
static int parse_sentinel(const char *rest, redis_url *u, char *err, size_t errlen) {
    const char *hash = strchr(rest, '#');
    if (hash == NULL || hash[1] == '\0') {
        snprintf(err, errlen,
                 "a redis-sentinel:// URL ends with #MASTER, the name the "
                 "sentinels monitor");
        return -1;
    }
    if (strpbrk(hash + 1, " \t\r\n#") != NULL) {
        snprintf(err, errlen, "the master name after '#' has a space or '#'");
        return -1;
    }
    char *body = ps_strndup(rest, (size_t)(hash - rest));
    u->master = ps_strdup(hash + 1);
    if (body == NULL || u->master == NULL) {
        ps_free(body);
        return -1;
    }
    const char *hosts = body;
    int rc = parse_userinfo(&hosts, u);
    if (rc == 0) {
        const char *slash = strchr(hosts, '/');
        size_t n = slash ? (size_t)(slash - hosts) : strlen(hosts);
        rc = parse_sentinels(hosts, n, u, err, errlen);
        if (rc == 0 && slash && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
            snprintf(err, errlen, "database must be a number");
            rc = -1;
        }
    }
    ps_free(body);
    return rc;
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
    } else if (str_starts_with(url, "redis-sentinel://")) {
        rc = parse_sentinel(url + 17, out, err, errlen);
    } else if (str_starts_with(url, "unix://")) {
        rest = url + 7;
        rc = parse_userinfo(&rest, out) == 0 ? parse_unix(rest, out, err, errlen) : -1;
    } else {
        snprintf(err, errlen, "must start with redis://, redis-sentinel:// or unix://");
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
    for (size_t i = 0; u->sentinels && i < u->nsentinels; i++)
        ps_free(u->sentinels[i].host);
    ps_free(u->sentinels);
    ps_free(u->master);
    memset(u, 0, sizeof(*u));
}

static void describe_sentinels(const redis_url *u, char *buf, size_t len) {
    size_t used = (size_t)snprintf(buf, len, "master %s via sentinels ", u->master);
    for (size_t i = 0; i < u->nsentinels && used < len; i++) {
        const redis_addr *a = &u->sentinels[i];
        bool v6 = strchr(a->host, ':') != NULL;
        used += (size_t)snprintf(buf + used, len - used, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "",
                                 a->host, v6 ? "]" : "", a->port);
    }
}

void redis_url_describe(const redis_url *u, char *buf, size_t len) {
    if (redis_url_is_sentinel(u))
        describe_sentinels(u, buf, len);
    else if (u->path)
        snprintf(buf, len, "%s", u->path);
    else
        snprintf(buf, len, "%s:%d", u->host, u->port);
}
