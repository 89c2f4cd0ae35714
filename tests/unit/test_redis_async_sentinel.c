/* test_redis_async_sentinel.c - unit tests for common/redis_async.c with a
 * redis-sentinel:// URL, against fakes: a sentinel (its own thread, since
 * discovery blocks) that names one of two fake Redis nodes on the test's
 * event loop. The connection goes where the sentinel says and only once
 * ROLE says master; a -READONLY reply, or a ROLE that turns to slave, drops
 * it and the sentinel is asked again; a node that says slave at the
 * handshake is never used; with no sentinel answering, commands are refused
 * at once (RA_ERR_DOWN), never sent to a remembered address. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/redis_async.h"
#include "common/timeutil.h"

#define TIMEOUT_MS 400

/* ------------------------------------------------- a fake Redis node -- */

typedef struct node {
    struct evconnlistener *lev;
    struct event_base *base;
    int port;
    int connections;
    volatile const char *role;    /* what ROLE answers: "master" or "slave" */
    bool readonly;                /* answer other commands -READONLY */
    int commands;                 /* user commands (not ROLE) answered */
    struct bufferevent *open[16]; /* connections still open, freed at the end */
} node;

static void node_forget(node *n, struct bufferevent *bev) {
    for (int i = 0; i < 16; i++)
        if (n->open[i] == bev) n->open[i] = NULL;
    bufferevent_free(bev);
}

/* One whole RESP command off the front of buf: its first word in cmd. */
static bool take_command(struct evbuffer *buf, char *cmd, size_t cmdlen) {
    size_t len = evbuffer_get_length(buf);
    char *p = (char *)evbuffer_pullup(buf, -1), *end = p + len, *q;
    if (len == 0 || p[0] != '*' || (q = memchr(p, '\n', len)) == NULL) return false;
    long n = strtol(p + 1, NULL, 10);
    cmd[0] = '\0';
    for (q++; n > 0; n--) {
        char *nl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
        if (nl == NULL || q[0] != '$') return false;
        long l = strtol(q + 1, NULL, 10);
        if (nl + 1 + l + 2 > end) return false;
        if (cmd[0] == '\0') snprintf(cmd, cmdlen, "%.*s", (int)l, nl + 1);
        q = nl + 1 + l + 2;
    }
    evbuffer_drain(buf, (size_t)(q - p));
    return true;
}

static void node_read(struct bufferevent *bev, void *arg) {
    node *n = arg;
    char cmd[32], r[128];
    while (take_command(bufferevent_get_input(bev), cmd, sizeof(cmd))) {
        if (strcmp(cmd, "ROLE") == 0) {
            const char *role = (const char *)n->role;
            snprintf(r, sizeof(r), "*1\r\n$%zu\r\n%s\r\n", strlen(role), role);
        } else {
            n->commands++;
            snprintf(r, sizeof(r), "%s",
                     n->readonly ? "-READONLY You can't write against a read only replica.\r\n"
                                 : "+OK\r\n");
        }
        evbuffer_add(bufferevent_get_output(bev), r, strlen(r));
    }
}

static void node_event(struct bufferevent *bev, short what, void *arg) {
    (void)what;
    node_forget(arg, bev);
}

static void node_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                        void *arg) {
    (void)l;
    (void)sa;
    (void)sl;
    node *n = arg;
    struct bufferevent *bev = bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, node_read, NULL, node_event, n);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    for (int i = 0; i < 16; i++)
        if (n->open[i] == NULL) {
            n->open[i] = bev;
            break;
        }
    n->connections++;
}

static void node_stop(node *n) {
    for (int i = 0; i < 16; i++)
        if (n->open[i]) node_forget(n, n->open[i]);
    if (n->lev) evconnlistener_free(n->lev);
}

static void node_start(node *n, struct event_base *base) {
    memset(n, 0, sizeof(*n));
    n->base = base;
    n->role = "master";
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    n->lev =
        evconnlistener_new_bind(base, node_accept, n, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(n->lev);
    socklen_t sl = sizeof(sin);
    getsockname(evconnlistener_get_fd(n->lev), (struct sockaddr *)&sin, &sl);
    n->port = ntohs(sin.sin_port);
}

/* ------------------------------------ a fake sentinel, on its own thread -- */

typedef struct sentinel {
    int fd, port;
    volatile int master_port; /* 0: "does not know the master" */
    volatile int asked;
    pthread_t tid;
} sentinel;

static void *sentinel_main(void *arg) {
    sentinel *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[512], r[128];
        if (read(c, buf, sizeof(buf)) > 0) {
            char port[16];
            snprintf(port, sizeof(port), "%d", s->master_port);
            if (s->master_port)
                snprintf(r, sizeof(r), "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%s\r\n", strlen(port),
                         port);
            else
                snprintf(r, sizeof(r), "*-1\r\n");
            s->asked++;
            (void)!write(c, r, strlen(r));
        }
        close(c);
    }
}

static void sentinel_start(sentinel *s, int master_port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    s->master_port = master_port;
    s->asked = 0;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->tid, NULL, sentinel_main, s);
}

static void sentinel_stop(sentinel *s) {
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->tid, NULL);
}

/* ------------------------------------------------------------ helpers -- */

typedef struct world {
    struct event_base *base;
    node a, b;
    sentinel s;
    redis_async *ra;
    int calls;
    ra_status last;
} world;

static void on_result(void *arg, const ra_result *res) {
    world *w = arg;
    w->calls++;
    w->last = res->status;
}

/* Run the loop until cond(w) or ms pass; true when cond became true. */
static bool run_until(world *w, bool (*cond)(world *), long ms) {
    int64_t end = time_mono_us() + ms * 1000;
    while (!cond(w) && time_mono_us() < end) {
        event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        time_sleep_ms(1);
    }
    return cond(w);
}

static bool is_ready(world *w) {
    return redis_async_ready(w->ra);
}
static bool on_b(world *w) {
    return redis_async_ready(w->ra) && w->b.connections > 0;
}
static bool answered(world *w) {
    return w->calls > 0;
}
static bool not_ready(world *w) {
    return !redis_async_ready(w->ra);
}

static void world_start(world *w, const char *extra_sentinel) {
    char url[256], err[256];
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    node_start(&w->a, w->base);
    node_start(&w->b, w->base);
    sentinel_start(&w->s, w->a.port);
    snprintf(url, sizeof(url), "redis-sentinel://%s127.0.0.1:%d/0#m",
             extra_sentinel ? extra_sentinel : "", w->s.port);
    w->ra = redis_async_new(w->base, url, TIMEOUT_MS, err, sizeof(err));
    assert_non_null(w->ra);
}

static void world_stop(world *w) {
    redis_async_free(w->ra);
    sentinel_stop(&w->s);
    node_stop(&w->a);
    node_stop(&w->b);
    event_base_free(w->base);
}

static void send_one(world *w) {
    const char *argv[2] = {"XADD", "x"};
    w->calls = 0;
    assert_int_equal(redis_async_command(w->ra, on_result, w, 2, argv, NULL), RA_OK);
    assert_true(run_until(w, answered, 2000));
}

/* -------------------------------------------------------------- tests -- */

static void test_follows_readonly(void **state) {
    (void)state;
    world w;
    world_start(&w, NULL);
    assert_true(run_until(&w, is_ready, 2000));
    assert_int_equal(w.a.connections, 1);
    assert_int_equal(w.b.connections, 0);
    send_one(&w);
    assert_int_equal(w.last, RA_OK);
    /* a failover: A is a replica now, the sentinel names B */
    w.a.readonly = true;
    w.s.master_port = w.b.port;
    send_one(&w);
    assert_int_equal(w.last, RA_ERR_REPLY);
    assert_true(run_until(&w, on_b, 3000));
    send_one(&w);
    assert_int_equal(w.last, RA_OK);
    assert_int_equal(w.b.commands, 1);
    assert_int_equal(w.a.connections, 1); /* never back to the remembered address */
    assert_true(w.s.asked >= 2);
    world_stop(&w);
}

static void test_follows_role_change(void **state) {
    (void)state;
    world w;
    world_start(&w, NULL);
    assert_true(run_until(&w, is_ready, 2000));
    /* A turns into a replica without closing our connection */
    w.a.role = "slave";
    w.s.master_port = w.b.port;
    assert_true(run_until(&w, on_b, 4000)); /* the ROLE asked every second sees it */
    send_one(&w);
    assert_int_equal(w.last, RA_OK);
    assert_int_equal(w.a.commands, 0);
    world_stop(&w);
}

static void test_never_a_replica(void **state) {
    (void)state;
    world w;
    world_start(&w, NULL);
    w.a.role = "slave"; /* the sentinel names a node that is not the master (yet) */
    assert_false(run_until(&w, is_ready, 600));
    const char *argv[1] = {"XADD"};
    assert_int_equal(redis_async_command(w.ra, on_result, &w, 1, argv, NULL), RA_ERR_DOWN);
    assert_true(w.a.connections >= 1);
    assert_int_equal(w.a.commands, 0);
    w.a.role = "master";
    assert_true(run_until(&w, is_ready, 4000));
    world_stop(&w);
}

static void test_no_sentinel_answers(void **state) {
    (void)state;
    world w;
    /* a first sentinel that refuses connections: the second answers */
    world_start(&w, "127.0.0.1:1,");
    assert_true(run_until(&w, is_ready, 2000));
    /* the master is demoted and no sentinel knows a new one yet */
    w.s.master_port = 0;
    w.a.readonly = true;
    w.a.role = "slave";
    send_one(&w);
    assert_true(run_until(&w, not_ready, 2000));
    int64_t t0 = time_mono_us();
    const char *argv[1] = {"XADD"};
    assert_int_equal(redis_async_command(w.ra, on_result, &w, 1, argv, NULL), RA_ERR_DOWN);
    assert_true(time_mono_us() - t0 < 100000); /* refused at once */
    int connections = w.a.connections;
    run_until(&w, is_ready, 500);
    assert_int_equal(w.a.connections, connections); /* no remembered address tried */
    w.s.master_port = w.b.port;
    assert_true(run_until(&w, is_ready, 4000));
    assert_int_equal(w.b.connections, 1);
    world_stop(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follows_readonly),
        cmocka_unit_test(test_follows_role_change),
        cmocka_unit_test(test_never_a_replica),
        cmocka_unit_test(test_no_sentinel_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
