/* trigger_http.c - the small blocking HTTP/1.1 client of `paystreamctl trigger`:
 * parse an http:// URL, POST one signed body per connection (Connection:
 * close) and read back the status line. Every step (connect, send, receive)
 * is bounded by a timeout. No TLS: ingest is reached on its plain listener.
 * Retries and signing are the caller's (cmd_trigger.c). */
#include "trigger.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RESPONSE_MAX 65536

/* ------------------------------------------------------------------- url -- */

int trig_url_parse(const char *url, trig_url *u, char *err, size_t errlen) {
    memset(u, 0, sizeof(*u));
    if (strncmp(url, "https://", 8) == 0) {
        snprintf(err, errlen,
                 "'%s': https:// is not supported (trigger speaks plain HTTP); use ingest's "
                 "http:// listener, e.g. http://127.0.0.1:8080/webhooks/stripe",
                 url);
        return -1;
    }
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen,
                 "'%s' is not an http:// URL (e.g. http://127.0.0.1:8080/webhooks/stripe)", url);
        return -1;
    }
    const char *hp = url + 7, *slash = strchr(hp, '/');
    size_t n = slash ? (size_t)(slash - hp) : strlen(hp);
    if (n == 0 || n >= sizeof(u->host_header) || memchr(hp, '@', n) || memchr(hp, '?', n)) {
        snprintf(err, errlen, "'%s': expected http://host[:port][/path]", url);
        return -1;
    }
    memcpy(u->host_header, hp, n);
    str_copy(u->path, slash ? slash : "/", sizeof(u->path));
    if (strlen(slash ? slash : "/") >= sizeof(u->path)) {
        snprintf(err, errlen, "'%s': the path is too long", url);
        return -1;
    }
    const char *h = u->host_header, *colon;
    size_t hl;
    if (h[0] == '[') { /* [v6]:port */
        const char *close = strchr(h, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            snprintf(err, errlen, "'%s': unterminated [IPv6] host", url);
            return -1;
        }
        hl = (size_t)(close - h - 1);
        memcpy(u->host, h + 1, hl);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        hl = colon ? (size_t)(colon - h) : strlen(h);
        memcpy(u->host, h, hl);
    }
    long port = 80;
    if (hl == 0 || (colon && (!str_to_long(colon + 1, &port) || port < 1 || port > 65535))) {
        snprintf(err, errlen, "'%s': bad host or port", url);
        return -1;
    }
    snprintf(u->port, sizeof(u->port), "%ld", port);
    return 0;
}

/* ------------------------------------------------------------ transport -- */

/* Wait until fd is ready for `events`; 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* A connected blocking socket with send/receive timeouts; -1 with err. */
static int connect_to(const trig_url *u, int timeout_ms, char *err, size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(u->host, u->port, &hints, &res), fd = -1, saved = 0;
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
            (errno != EINPROGRESS || wait_fd(fd, POLLOUT, timeout_ms) != 0 ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || (errno = soerr) != 0)) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, strerror(saved));
        return -1;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000L};
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        snprintf(err, errlen, "socket setup: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Read until EOF (we asked for Connection: close) or RESPONSE_MAX bytes. */
static int recv_all(int fd, strbuf *sb) {
    char chunk[4096];
    while (sb->len < RESPONSE_MAX) {
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return sb->len > 0 && strstr(sb->buf, "\r\n\r\n") ? 0 : -1;
        if (r == 0) break;
        strbuf_append(sb, chunk, (size_t)r);
    }
    return sb->oom ? -1 : 0;
}

/* "HTTP/1.x NNN ..." -> NNN, the first body line -> detail; 0 when unparseable. */
static int parse_response(const char *resp, char *detail, size_t detail_len) {
    int status = 0;
    if (resp == NULL || sscanf(resp, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100) return 0;
    const char *body = strstr(resp, "\r\n\r\n");
    if (body != NULL) {
        body += 4;
        size_t n = strcspn(body, "\r\n");
        if (n >= detail_len) n = detail_len - 1;
        memcpy(detail, body, n);
        detail[n] = '\0';
    }
    return status;
}

int trig_http_post(const trig_url *u, const char *signature, const char *body, size_t len,
                   int timeout_ms, char *detail, size_t detail_len, char *err, size_t errlen) {
    strbuf req, resp;
    int status = 0, fd;
    detail[0] = '\0';
    err[0] = '\0';
    if ((fd = connect_to(u, timeout_ms, err, errlen)) < 0) return 0;
    strbuf_init(&req);
    strbuf_init(&resp);
    strbuf_printf(&req,
                  "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Stripe/1.0 "
                  "(+https://stripe.com/docs/webhooks)\r\nAccept: */*; q=0.5, application/xml\r\n"
                  "Cache-Control: no-cache\r\nContent-Type: application/json; charset=utf-8\r\n"
                  "Stripe-Signature: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                  u->path, u->host_header, signature, len);
    strbuf_append(&req, body, len);
    if (req.oom) {
        snprintf(err, errlen, "out of memory");
    } else if (send_all(fd, req.buf, req.len) != 0) {
        snprintf(err, errlen, "sending to %s:%s: %s", u->host, u->port,
                 errno == EAGAIN ? "timed out" : strerror(errno));
    } else if (recv_all(fd, &resp) != 0) {
        snprintf(err, errlen, "reading the answer of %s:%s: %s", u->host, u->port,
                 errno == EAGAIN ? "timed out" : strerror(errno ? errno : EPROTO));
    } else if ((status = parse_response(resp.len ? resp.buf : NULL, detail, detail_len)) == 0) {
        snprintf(err, errlen, "%s:%s did not answer with an HTTP/1.x status line", u->host,
                 u->port);
    }
    close(fd);
    strbuf_free(&req);
    strbuf_free(&resp);
    return status;
}
