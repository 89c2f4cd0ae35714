/* pace.c - the open-loop sender of bench/e2e: signed deliveries at a fixed mean rate.
 *
 * Reads a pool of complete HTTP/1.1 requests (pool.py writes it) and sends them,
 * in order, to one loopback address at RATE per second with exponentially
 * distributed gaps (Poisson arrivals), whatever the server's latency: a request
 * whose time has come goes out on an idle keep-alive connection, or waits for one
 * and is counted late. For each request it writes one line to OUT:
 *     <evt_id> <status> <due_us> <sent_us> <answered_us>
 * in wall-clock microseconds (CLOCK_REALTIME), so that they compare with
 * PostgreSQL's commit timestamps. Status 0: no answer (connection lost).
 * What the latencies mean is left to report.py.
 *
 * Not part of the product build: bench/e2e/run compiles it with cc -O2 -lm.
 * Usage: pace HOST PORT RATE CONNS POOL OUT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define IN_SIZE   4096
#define STALL_US  (10 * 1000000LL) /* no answer for this long: give up */

struct req {
    const char *id;   /* NUL-terminated, inside the pool buffer */
    const char *data; /* the raw request */
    size_t len;
    int status;
    int64_t due_us, sent_us, answered_us; /* wall clock */
};

struct conn {
    int fd;
    long req;       /* index of the request in flight, -1 when idle */
    size_t written; /* bytes of it written so far */
    char in[IN_SIZE];
    size_t in_len;
};

static struct sockaddr_in addr;
static long done; /* requests answered or lost */

static int64_t now_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    fprintf(stderr, "pace: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

/* pool: records "<id> <len>\n<len bytes>", read whole into one buffer */
static struct req *load_pool(const char *path, long *count) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) die(path);
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) die(path);
    fclose(f);
    buf[st.st_size] = '\0';
    long cap = 1024, n = 0;
    struct req *reqs = malloc(sizeof *reqs * (size_t)cap);
    char *p = buf, *end = buf + st.st_size;
    while (p < end && reqs) {
        char *sp = memchr(p, ' ', (size_t)(end - p));
        char *nl = sp ? memchr(sp, '\n', (size_t)(end - sp)) : NULL;
        if (!nl) break;
        *sp = '\0';
        size_t len = strtoul(sp + 1, NULL, 10);
        if (len > (size_t)(end - nl - 1)) break;
        if (n == cap) reqs = realloc(reqs, sizeof *reqs * (size_t)(cap *= 2));
        if (!reqs) break;
        reqs[n++] = (struct req){.id = p, .data = nl + 1, .len = len};
        p = nl + 1 + len;
    }
    if (!reqs || p != end) {
        errno = 0;
        die("malformed pool");
    }
    *count = n;
    return reqs;
}

static void conn_open(struct conn *c) {
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->req = -1;
    c->written = c->in_len = 0;
}

/* the request in flight is over (answered, or lost with status 0) */
static void conn_finish(struct conn *c, struct req *reqs, int status) {
    reqs[c->req].status = status;
    reqs[c->req].answered_us = now_us(CLOCK_REALTIME);
    done++;
    c->req = -1;
    c->written = c->in_len = 0;
    if (status == 0) {
        close(c->fd);
        conn_open(c);
    }
}

static void conn_write(struct conn *c, struct req *reqs) {
    struct req *r = &reqs[c->req];
    ssize_t w = write(c->fd, r->data + c->written, r->len - c->written);
    if (w < 0 && errno != EAGAIN) conn_finish(c, reqs, 0);
    if (w > 0) c->written += (size_t)w;
}

/* read what the server sent; a complete answer (headers + Content-Length) ends the request */
static void conn_read(struct conn *c, struct req *reqs) {
    ssize_t got = read(c->fd, c->in + c->in_len, IN_SIZE - 1 - c->in_len);
    if (got == 0 || (got < 0 && errno != EAGAIN)) {
        if (c->req >= 0) {
            conn_finish(c, reqs, 0);
        } else { /* an idle connection the server closed */
            close(c->fd);
            conn_open(c);
        }
        return;
    }
    if (got < 0 || c->req < 0) return;
    c->in_len += (size_t)got;
    c->in[c->in_len] = '\0';
    char *eoh = strstr(c->in, "\r\n\r\n");
    if (!eoh) {
        if (c->in_len == IN_SIZE - 1) conn_finish(c, reqs, 0);
        return;
    }
    int status = 0;
    sscanf(c->in, "HTTP/1.%*d %d", &status);
    char *cl = strcasestr(c->in, "\r\nContent-Length:");
    size_t body = cl && cl < eoh ? strtoul(cl + 17, NULL, 10) : 0;
    if (c->in_len < (size_t)(eoh + 4 - c->in) + body) return;
    conn_finish(c, reqs, status ? status : 0);
}

static void write_out(const char *path, struct req *reqs, long n) {
    FILE *f = fopen(path, "w");
    if (!f) die(path);
    for (long i = 0; i < n; i++)
        fprintf(f, "%s %d %lld %lld %lld\n", reqs[i].id, reqs[i].status, (long long)reqs[i].due_us,
                (long long)reqs[i].sent_us, (long long)reqs[i].answered_us);
    if (fclose(f) != 0) die(path);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: pace HOST PORT RATE CONNS POOL OUT\n");
        return 2;
    }
    double rate = atof(argv[3]);
    int nconns = atoi(argv[4]);
    if (rate <= 0 || nconns < 1 || nconns > MAX_CONNS) {
        fprintf(stderr, "pace: RATE must be > 0 and CONNS 1..%d\n", MAX_CONNS);
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("HOST must be an IPv4 address");
    signal(SIGPIPE, SIG_IGN);

    long n, next = 0, released = 0, late = 0;
    struct req *reqs = load_pool(argv[5], &n);
    static struct conn conns[MAX_CONNS];
    for (int i = 0; i < nconns; i++)
        conn_open(&conns[i]);

    srand48((long)now_us(CLOCK_MONOTONIC));
    int64_t mono0 = now_us(CLOCK_MONOTONIC), wall0 = now_us(CLOCK_REALTIME);
    double due = 0; /* µs after mono0 of the next request not yet released */
    int64_t last_progress = mono0;
    struct pollfd pfd[MAX_CONNS];

    while (done < n) {
        int64_t now = now_us(CLOCK_MONOTONIC);
        while (released < n && mono0 + (int64_t)due <= now) {
            reqs[released++].due_us = wall0 + (int64_t)due;
            due += -log(1.0 - drand48()) / rate * 1e6;
        }
        for (int i = 0; i < nconns && next < released; i++) {
            if (conns[i].req >= 0) continue;
            conns[i].req = next;
            reqs[next].sent_us = now_us(CLOCK_REALTIME);
            if (reqs[next].sent_us > reqs[next].due_us + 1000) late++;
            next++;
            conn_write(&conns[i], reqs);
        }
        for (int i = 0; i < nconns; i++) {
            pfd[i].fd = conns[i].fd;
            pfd[i].events = POLLIN;
            if (conns[i].req >= 0 && conns[i].written < reqs[conns[i].req].len)
                pfd[i].events |= POLLOUT;
        }
        int64_t wait = released < n ? mono0 + (int64_t)due - now_us(CLOCK_MONOTONIC) : 100000;
        if (wait < 0) wait = 0;
        struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
        if (ppoll(pfd, (nfds_t)nconns, &ts, NULL) < 0 && errno != EINTR) die("ppoll");
        long before = done;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            if (pfd[i].revents & POLLOUT && c->req >= 0) conn_write(c, reqs);
            if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) conn_read(c, reqs);
        }
        now = now_us(CLOCK_MONOTONIC);
        if (done > before || next == done) last_progress = now; /* answered, or none in flight */
        if (now - last_progress > STALL_US) {
            errno = 0;
            die("no answer for 10 s");
        }
    }
    write_out(argv[6], reqs, n);
    double secs = (double)(now_us(CLOCK_MONOTONIC) - mono0) / 1e6;
    long ok = 0;
    for (long i = 0; i < n; i++)
        ok += reqs[i].status == 200;
    fprintf(stderr,
            "pace: %ld sent in %.1f s (%.0f/s, target %.0f/s), %ld answered 200, %ld late > 1 ms\n",
            n, secs, (double)n / secs, rate, ok, late);
    return 0;
}
