/* test_redis_async.c - unit tests for common/redis_async.c against a fake Redis
 * on the same event loop: a server that stalls (the command timeout answers
 * within bounds, exactly once, and the connection is re-made), one that hangs
 * up mid-command, one that refuses AUTH, and shutdown with commands pending;
 * commands queued past 64 KiB are written before the loop turn ends, and a
 * failure of that early write is answered later, never inside the call.
 * The fake answers +PONG / +OK to whole RESP commands until told otherwise. */
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/redis_async.h"
#include "common/timeutil.h"

#define TIMEOUT_MS 300

typedef struct fake {
    struct event_base *base;
    struct evconnlistener *lev;
    int port;
    int connections;              /* accepted so far */
    int commands;                 /* whole commands received, over all connections */
    int stall_from;               /* from this command on (0-based), answer nothing; -1 never */
    int close_at;                 /* hang up on receiving this command; -1 never */
    bool auth_fails;              /* answer AUTH with an error */
    struct bufferevent *open[32]; /* connections still open, freed at teardown */
} fake;

static void fake_close(fake *f, struct bufferevent *bev) {
    for (int i = 0; i < 32; i++)
        if (f->open[i] == bev) f->open[i] = NULL;
    bufferevent_free(bev);
}

typedef struct outcome {
    int calls;
    ra_status status;
    int64_t at_us;
    char str[64];
} outcome;

static void on_result(void *arg, const ra_result *res) {
    outcome *o = arg;
    o->calls++;
    o->status = res->status;
    o->at_us = time_mono_us();
    snprintf(o->str, sizeof(o->str), "%.*s", res->str ? (int)res->len : 0,
             res->str ? res->str : "");
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

static void fake_read(struct bufferevent *bev, void *arg) {
    fake *f = arg;
    char cmd[32];
    while (take_command(bufferevent_get_input(bev), cmd, sizeof(cmd))) {
        int k = f->commands++;
        if (k == f->close_at) {
            fake_close(f, bev);
            return;
        }
        if (f->stall_from >= 0 && k >= f->stall_from) continue;
        const char *r = strcmp(cmd, "PING") == 0                    ? "+PONG\r\n"
                        : strcmp(cmd, "AUTH") == 0 && f->auth_fails ? "-WRONGPASS invalid\r\n"
                                                                    : "+OK\r\n";
        evbuffer_add(bufferevent_get_output(bev), r, strlen(r));
    }
}

static void fake_event(struct bufferevent *bev, short what, void *arg) {
    (void)what;
    fake_close(arg, bev);
}

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                        void *arg) {
    (void)l;
    (void)sa;
    (void)sl;
    fake *f = arg;
    struct bufferevent *bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, fake_read, NULL, fake_event, f);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    f->open[f->connections++ % 32] = bev;
}

static void fake_start(fake *f, struct event_base *base) {
    memset(f, 0, sizeof(*f));
    f->base = base;
    f->stall_from = f->close_at = -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    f->lev =
        evconnlistener_new_bind(base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(f->lev);
    socklen_t sl = sizeof(sin);
    getsockname(evconnlistener_get_fd(f->lev), (struct sockaddr *)&sin, &sl);
    f->port = ntohs(sin.sin_port);
}

/* Run the loop until cond(arg) or ms pass; true when cond became true. */
static bool run_until(struct event_base *base, bool (*cond)(void *), void *arg, long ms) {
    int64_t end = time_mono_us() + ms * 1000;
    while (!cond(arg) && time_mono_us() < end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        time_sleep_ms(1);
    }
    return cond(arg);
}

static bool is_ready(void *ra) {
    return redis_async_ready(ra);
}
static bool not_ready(void *ra) {
    return !redis_async_ready(ra);
}
static bool was_called(void *o) {
    return ((outcome *)o)->calls > 0;
}

typedef struct env {
    struct event_base *base;
    fake f;
    redis_async *ra;
} env;

static redis_async *connect_to(env *e, const char *userinfo) {
    char url[128], err[128];
    snprintf(url, sizeof(url), "redis://%s127.0.0.1:%d/0", userinfo, e->f.port);
    e->ra = redis_async_new(e->base, url, TIMEOUT_MS, err, sizeof(err));
    assert_non_null(e->ra);
    return e->ra;
}

static int setup(void **state) {
    env *e = calloc(1, sizeof(*e));
    e->base = event_base_new();
    fake_start(&e->f, e->base);
    *state = e;
    return 0;
}

static int teardown(void **state) {
    env *e = *state;
    redis_async_free(e->ra);
    for (int i = 0; i < 32; i++)
        if (e->f.open[i]) bufferevent_free(e->f.open[i]);
    evconnlistener_free(e->f.lev);
    event_base_free(e->base);
    free(e);
    return 0;
}

static const char *set_argv[3] = {"SET", "k", "v"};

static void test_command_and_reply(void **state) {
    env *e = *state;
    outcome o = {0};
    connect_to(e, "");
    assert_int_equal(redis_async_command(e->ra, on_result, &o, 3, set_argv, NULL), RA_ERR_DOWN);
    assert_true(run_until(e->base, is_ready, e->ra, 2000));
    assert_int_equal(redis_async_command(e->ra, on_result, &o, 3, set_argv, NULL), RA_OK);
    assert_int_equal(o.calls, 0); /* never from inside redis_async_command */
    assert_true(run_until(e->base, was_called, &o, 2000));
    assert_int_equal(o.status, RA_OK);
    assert_string_equal(o.str, "OK");
    assert_int_equal(redis_async_pending(e->ra), 0);
}

static void test_stall_times_out_once_and_reconnects(void **state) {
    env *e = *state;
    outcome o = {0};
    connect_to(e, "");
    assert_true(run_until(e->base, is_ready, e->ra, 2000));
    e->f.stall_from = e->f.commands; /* everything from now on */
    int64_t t0 = time_mono_us();
    assert_int_equal(redis_async_command(e->ra, on_result, &o, 3, set_argv, NULL), RA_OK);
    assert_true(run_until(e->base, was_called, &o, 3000));
    long waited_ms = (long)((o.at_us - t0) / 1000);
    assert_int_equal(o.status, RA_ERR_TIMEOUT);
    assert_in_range(waited_ms, TIMEOUT_MS - 5, TIMEOUT_MS + 250);
    assert_false(redis_async_ready(e->ra));
    e->f.stall_from = -1; /* the server recovers; the late reply never comes */
    assert_true(run_until(e->base, is_ready, e->ra, 3000));
    assert_int_equal(e->f.connections, 2);
    run_until(e->base, not_ready, e->ra, 200); /* spin a while: no second answer */
    assert_int_equal(o.calls, 1);
    ra_stats st;
    redis_async_stats(e->ra, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.connects, 2);
}

static void test_hang_up_mid_command(void **state) {
    env *e = *state;
    outcome o = {0};
    connect_to(e, "");
    assert_true(run_until(e->base, is_ready, e->ra, 2000));
    e->f.close_at = e->f.commands;
    assert_int_equal(redis_async_command(e->ra, on_result, &o, 3, set_argv, NULL), RA_OK);
    assert_true(run_until(e->base, was_called, &o, 2000));
    assert_int_equal(o.status, RA_ERR_IO);
    e->f.close_at = -1;
    assert_true(run_until(e->base, is_ready, e->ra, 3000));
}

static void test_auth_refused_is_retried(void **state) {
    env *e = *state;
    e->f.auth_fails = true;
    connect_to(e, ":wrong@");
    assert_false(run_until(e->base, is_ready, e->ra, 600));
    assert_true(e->f.connections >= 2); /* retried with backoff */
    e->f.auth_fails = false;
    assert_true(run_until(e->base, is_ready, e->ra, 3000));
}

static void test_connection_refused_then_server_appears(void **state) {
    env *e = *state;
    int port = e->f.port;
    evconnlistener_free(e->f.lev);
    char url[64], err[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    e->ra = redis_async_new(e->base, url, TIMEOUT_MS, err, sizeof(err));
    assert_non_null(e->ra);
    assert_false(run_until(e->base, is_ready, e->ra, 400));
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons((uint16_t)port)};
    e->f.lev = evconnlistener_new_bind(e->base, fake_accept, &e->f,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                       (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(e->f.lev);
    assert_true(run_until(e->base, is_ready, e->ra, 4000));
}

static void test_free_answers_pending(void **state) {
    env *e = *state;
    outcome o = {0};
    connect_to(e, "");
    assert_true(run_until(e->base, is_ready, e->ra, 2000));
    e->f.stall_from = e->f.commands;
    assert_int_equal(redis_async_command(e->ra, on_result, &o, 3, set_argv, NULL), RA_OK);
    run_until(e->base, was_called, &o, 50);
    assert_int_equal(redis_async_pending(e->ra), 1);
    redis_async_free(e->ra);
    e->ra = NULL;
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, RA_ERR_CLOSED);
}

#define BIG_N     40
#define BIG_VALUE 4096 /* 40 of them: 160 KiB, past the early write's 64 KiB */

/* Bytes waiting unread on the fake's side of its (only) connection. */
static int fake_unread(const env *e) {
    int n = -1;
    ioctl((int)bufferevent_getfd(e->f.open[0]), FIONREAD, &n);
    return n;
}

static void queue_big(env *e, outcome *o, int n) {
    static char value[BIG_VALUE];
    memset(value, 'v', sizeof(value));
    const char *argv[3] = {"SET", "k", value};
    size_t lens[3] = {3, 1, sizeof(value)};
    for (int i = 0; i < n; i++)
        assert_int_equal(redis_async_command(e->ra, on_result, &o[i], 3, argv, lens), RA_OK);
}

static bool all_called(void *arg) {
    outcome *o = arg;
    for (int i = 0; i < BIG_N; i++)
        if (o[i].calls == 0) return false;
    return true;
}

/* Outcomes for BIG_N commands, on a connection that is ready. Static: still
 * there if a failed check leaves them pending until teardown answers them. */
static outcome *big_start(env *e) {
    static outcome o[BIG_N];
    memset(o, 0, sizeof(o));
    connect_to(e, "");
    assert_true(run_until(e->base, is_ready, e->ra, 2000));
    return o;
}

/* Every one of the BIG_N answered exactly once; RA_OK or not, as want_ok. */
static void big_answered(const outcome *o, bool want_ok) {
    for (int i = 0; i < BIG_N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status == RA_OK, want_ok);
    }
}

static void test_big_queue_written_early(void **state) {
    env *e = *state;
    outcome *o = big_start(e);
    queue_big(e, o, 1);
    assert_int_equal(fake_unread(e), 0); /* one: written at the end of the loop turn */
    assert_true(run_until(e->base, was_called, &o[0], 2000));
    memset(o, 0, BIG_N * sizeof(*o));
    queue_big(e, o, BIG_N);
    assert_true(fake_unread(e) >= 64 * 1024); /* many: on their way before the turn ends */
    assert_true(run_until(e->base, all_called, o, 2000));
    big_answered(o, true);
}

static void test_early_write_failure_answered_later(void **state) {
    env *e = *state;
    outcome *o = big_start(e);
    fake_close(&e->f, e->f.open[0]); /* the client does not know yet */
    queue_big(e, o, BIG_N);
    for (int i = 0; i < BIG_N; i++)
        assert_int_equal(o[i].calls, 0); /* never from inside redis_async_command */
    assert_true(run_until(e->base, all_called, o, 2000));
    big_answered(o, false);
    assert_true(run_until(e->base, is_ready, e->ra, 4000)); /* and it connects again */
}

static void test_bad_url(void **state) {
    env *e = *state;
    char err[128] = "";
    assert_null(redis_async_new(e->base, "redis://:hunter2@h:notaport", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "PAYSTREAM_REDIS_URL"));
    assert_null(strstr(err, "hunter2"));
    assert_string_equal(ra_status_name(RA_ERR_TIMEOUT), "timeout");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_command_and_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_times_out_once_and_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_up_mid_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_refused_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_then_server_appears, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_answers_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_queue_written_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_write_failure_answered_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as every program does: a write to a closed socket fails */
    return cmocka_run_group_tests_name("redis_async", tests, NULL, NULL);
}
