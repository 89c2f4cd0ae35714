/* test_redis_sentinel.c - unit tests for redis-sentinel:// URLs
 * (common/redis_url.c) and master discovery (common/redis_sentinel.c):
 * sentinel lists with default ports, IPv6, password and db; every malformed
 * form refused with a message that never shows the password; descriptions
 * without it; allocation failures. Discovery is run against fake sentinels
 * on loopback: one that refuses, one that does not know the master, one that
 * answers, and the one that answered must be asked first next time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/redis_sentinel.h"
#include "common/redis_url.h"

static redis_url ok(const char *url) {
    redis_url u;
    char err[256] = "";
    if (redis_url_parse(url, &u, err, sizeof(err)) != 0) fail_msg("%s: %s", url, err);
    return u;
}

/* Refused with a message (not showing `secret`), nothing left allocated. */
static void refused(const char *url, const char *secret) {
    redis_url u;
    char err[256] = "";
    if (redis_url_parse(url, &u, err, sizeof(err)) == 0) fail_msg("%s: accepted", url);
    assert_true(err[0] != '\0');
    if (secret) assert_null(strstr(err, secret));
    assert_null(u.sentinels);
    assert_null(u.master);
    assert_null(u.password);
    assert_int_equal(u.nsentinels, 0);
}

static void test_sentinel_list(void **state) {
    (void)state;
    redis_url u = ok("redis-sentinel://10.0.0.1:26380,10.0.0.2,sentinel-c:5000#mymaster");
    assert_int_equal(u.nsentinels, 3);
    assert_true(redis_url_is_sentinel(&u));
    assert_string_equal(u.sentinels[0].host, "10.0.0.1");
    assert_int_equal(u.sentinels[0].port, 26380);
    assert_string_equal(u.sentinels[1].host, "10.0.0.2");
    assert_int_equal(u.sentinels[1].port, 26379); /* Sentinel's own default */
    assert_string_equal(u.sentinels[2].host, "sentinel-c");
    assert_int_equal(u.sentinels[2].port, 5000);
    assert_string_equal(u.master, "mymaster");
    assert_null(u.host); /* until the sentinels are asked */
    assert_null(u.password);
    assert_int_equal(u.db, 0);
    redis_url_free(&u);
    redis_url_free(&u); /* twice is fine */
}

static void test_password_db_ipv6(void **state) {
    (void)state;
    redis_url u = ok("redis-sentinel://:s%40cret@[::1]:26379,127.0.0.1:26380/3#pay-stream.1");
    assert_string_equal(u.password, "s@cret");
    assert_null(u.user);
    assert_int_equal(u.nsentinels, 2);
    assert_string_equal(u.sentinels[0].host, "::1");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.master, "pay-stream.1");
    redis_url_free(&u);
    u = ok("redis-sentinel://app:pw@h1#m");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.nsentinels, 1);
    redis_url_free(&u);
    u = ok("redis-sentinel://h1:1/#m"); /* empty db: 0 */
    assert_int_equal(u.db, 0);
    redis_url_free(&u);
}

static void test_errors(void **state) {
    (void)state;
    refused("redis-sentinel://h1:26379", NULL);  /* no #MASTER */
    refused("redis-sentinel://h1:26379#", NULL); /* empty name */
    refused("redis-sentinel://h1#my master", NULL);
    refused("redis-sentinel://#m", NULL);
    refused("redis-sentinel://h1,,h2#m", NULL);
    refused("redis-sentinel://h1,#m", NULL);
    refused("redis-sentinel://,h1#m", NULL);
    refused("redis-sentinel://h1:0#m", NULL);
    refused("redis-sentinel://h1:99999#m", NULL);
    refused("redis-sentinel://h1:x#m", NULL);
    refused("redis-sentinel://h1/x#m", NULL);
    refused("redis-sentinel://::1:26379#m", NULL);
    refused("redis-sentinel://[::1#m", NULL);
    refused("redis-sentinel:/h1#m", NULL);
    refused("sentinel://h1#m", NULL);
    char many[512] = "redis-sentinel://";
    for (int i = 0; i < REDIS_URL_MAX_SENTINELS + 1; i++)
        strcat(many, i ? ",h:1" : "h:1");
    strcat(many, "#m");
    refused(many, NULL);
}

static void test_errors_never_show_the_password(void **state) {
    (void)state;
    refused("redis-sentinel://:hunter2@h1:26379", "hunter2");
    refused("redis-sentinel://:hunter2@h1:bad#m", "hunter2");
    refused("redis-sentinel://:hunter2@#m", "hunter2");
    refused("redis-sentinel://:hunter2@h1/db#m", "hunter2");
}

static void test_describe(void **state) {
    (void)state;
    char buf[256];
    redis_url u = ok("redis-sentinel://:hunter2@10.0.0.1,[::1]:26380/2#mymaster");
    redis_url_describe(&u, buf, sizeof(buf));
    assert_string_equal(buf, "master mymaster via sentinels 10.0.0.1:26379,[::1]:26380");
    char small[20];
    redis_url_describe(&u, small, sizeof(small)); /* truncated, terminated */
    assert_int_equal(strlen(small), sizeof(small) - 1);
    redis_url_free(&u);
}

static void test_out_of_memory(void **state) {
    (void)state;
    for (long n = 0; n < 12; n++) {
        redis_url u;
        char err[128] = "";
        ps_alloc_fail_after(n);
        int rc = redis_url_parse("redis-sentinel://u:pw@h1:1,h2:2,h3:3/1#m", &u, err, sizeof(err));
        ps_alloc_fail_after(-1);
        if (rc == 0) {
            redis_url_free(&u);
            continue;
        }
        assert_true(err[0] != '\0');
        assert_null(u.sentinels);
        assert_null(u.password);
    }
}

/* ---------------------------------------------------- fake sentinels -- */

typedef struct fake {
    int fd, port;
    const char *reply; /* RESP answered to one command per connection */
    int asked;
    pthread_t tid;
} fake;

static void *fake_main(void *arg) {
    fake *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[512];
        if (read(c, buf, sizeof(buf)) > 0) {
            f->asked++;
            (void)!write(c, f->reply, strlen(f->reply));
        }
        close(c);
    }
}

static void fake_start(fake *f, const char *reply) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    f->reply = reply;
    f->asked = 0;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->fd, 8), 0);
    getsockname(f->fd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->tid, NULL, fake_main, f);
}

static void fake_stop(fake *f) {
    shutdown(f->fd, SHUT_RDWR);
    close(f->fd);
    pthread_join(f->tid, NULL);
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void) {
    fake f;
    fake_start(&f, "");
    int port = f.port;
    fake_stop(&f);
    return port;
}

static void test_discovery_order(void **state) {
    (void)state;
    fake unknown, knows;
    fake_start(&unknown, "*-1\r\n"); /* a sentinel that does not monitor it */
    fake_start(&knows, "*2\r\n$8\r\n10.1.2.3\r\n$4\r\n6390\r\n");
    char url[256], err[512];
    int refused_port = dead_port();
    snprintf(url, sizeof(url), "redis-sentinel://:pw@127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d#m",
             refused_port, unknown.port, knows.port);
    redis_url u = ok(url);
    assert_int_equal(sentinel_find_master(&u, 500, err, sizeof(err)), 0);
    assert_string_equal(u.host, "10.1.2.3");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.sentinels[0].port, knows.port); /* the one that answered moves first */
    assert_int_equal(u.sentinels[1].port, refused_port);
    assert_int_equal(u.sentinels[2].port, unknown.port);
    assert_int_equal(unknown.asked, 1);
    assert_int_equal(sentinel_find_master(&u, 500, err, sizeof(err)), 0);
    assert_int_equal(unknown.asked, 1); /* not asked again: the first answered */
    assert_int_equal(knows.asked, 2);
    fake_stop(&knows);
    /* none answers: an error naming each, never the password; no address kept */
    assert_int_equal(sentinel_find_master(&u, 500, err, sizeof(err)), -1);
    assert_null(u.host);
    assert_non_null(strstr(err, "'m'"));
    assert_null(strstr(err, "pw"));
    fake_stop(&unknown);
    redis_url_free(&u);
}

static void test_role_and_moved(void **state) {
    (void)state;
    redisReply name = {.type = REDIS_REPLY_STRING, .str = "master", .len = 6};
    redisReply *elems[1] = {&name};
    redisReply role = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = elems};
    char r[16];
    assert_true(sentinel_role_is_master(&role, r, sizeof(r)));
    assert_string_equal(r, "master");
    name.str = "slave";
    name.len = 5;
    assert_false(sentinel_role_is_master(&role, r, sizeof(r)));
    assert_string_equal(r, "slave");
    assert_false(sentinel_role_is_master(NULL, NULL, 0));
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "ERR", .len = 3};
    assert_false(sentinel_role_is_master(&err, r, sizeof(r)));
    const char *ro = "READONLY You can't write against a read only replica.";
    assert_true(sentinel_error_means_moved(ro, strlen(ro)));
    assert_true(sentinel_error_means_moved("MASTERDOWN Link with MASTER is down", 35));
    assert_false(sentinel_error_means_moved("NOGROUP No such key", 19));
    assert_false(sentinel_error_means_moved("READ", 4));
    assert_false(sentinel_error_means_moved(NULL, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentinel_list),
        cmocka_unit_test(test_password_db_ipv6),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_never_show_the_password),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_discovery_order),
        cmocka_unit_test(test_role_and_moved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
