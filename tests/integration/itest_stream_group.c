/* itest_stream_group.c - what common/stream.c reads of a consumer group, and
 * what it trims and removes because of it, against a real redis-server
 * (tests/harness/with-stack): the group's lag, pending entries and oldest
 * one for `paystreamctl status` and the worker's gauges; the floor below
 * which every entry is acknowledged; trimming by age that never passes that
 * floor; removing consumers that hold nothing. Each test has its own stream. */
#include "stream.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define GROUP   "g"
#define ENTRIES 300 /* ids 1001-0 .. 1300-0: from 1970, older than any retention */

static redis_conn *R;

/* A Redis command from printf-style words separated by single spaces. */
static redis_reply *run(const char *fmt, ...) {
    char line[512], *words[16], *save = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    int n = 0;
    for (char *w = strtok_r(line, " ", &save); w && n < 16; w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    redis_reply *r = NULL;
    if (redis_cmd(R, &r, n, (const char **)words, NULL) != 0)
        fail_msg("%s: %s", fmt, redis_errstr(R));
    return r;
}

static long long run_int(const char *fmt, const char *stream) {
    redis_reply *r = run(fmt, stream);
    long long v = redis_reply_int(r);
    redis_reply_free(r);
    return v;
}

/* ENTRIES old entries on `stream`, a group at 0, and consumer "gone" that
 * was delivered the first `read` of them and acknowledged the first `acked`. */
static void fill(const char *stream, int read, int acked) {
    for (int i = 1; i <= ENTRIES; i++)
        redis_reply_free(run("XADD %s %d-0 id evt_old%d type x body {}", stream, 1000 + i, i));
    redis_reply_free(run("XGROUP CREATE %s " GROUP " 0", stream));
    if (read > 0)
        redis_reply_free(
            run("XREADGROUP GROUP " GROUP " gone COUNT %d STREAMS %s >", read, stream));
    for (int i = 1; i <= acked; i++)
        redis_reply_free(run("XACK %s " GROUP " %d-0", stream, 1000 + i));
}

static int setup(void **state) {
    (void)state;
    const char *url = getenv("PAYSTREAM_REDIS_URL");
    char err[256];
    if (url == NULL) {
        fprintf(stderr, "PAYSTREAM_REDIS_URL is not set: run under tests/harness/with-stack\n");
        return -1;
    }
    R = redis_open(url, 5000, err, sizeof(err));
    if (R == NULL) fprintf(stderr, "%s\n", err);
    return R ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    redis_close(R);
    return 0;
}

static void test_no_stream_no_group(void **state) {
    (void)state;
    stream_group_info gi;
    char floor_id[STREAM_ID_MAX] = "x";
    assert_int_equal(stream_group_info_get(R, "t:none", GROUP, &gi), 0);
    assert_false(gi.found);
    assert_int_equal(gi.lag, -1);
    assert_int_equal(gi.pending, 0);
    assert_string_equal(gi.oldest_pending, "");
    assert_int_equal(stream_group_floor(R, "t:none", GROUP, floor_id), 0);
    assert_string_equal(floor_id, "");

    redis_reply_free(run("XADD t:nogroup 5-0 id evt_x"));
    assert_int_equal(stream_group_info_get(R, "t:nogroup", GROUP, &gi), 0);
    assert_false(gi.found);
    assert_int_equal(stream_group_floor(R, "t:nogroup", GROUP, floor_id), 0);
    assert_string_equal(floor_id, "");
    /* another key type is an error, not "no group" */
    redis_reply_free(run("SET t:string x"));
    assert_int_equal(stream_group_info_get(R, "t:string", GROUP, &gi), -1);
}

static void test_group_info(void **state) {
    (void)state;
    stream_group_info gi;
    fill("t:info", 150, 120);
    assert_int_equal(stream_group_info_get(R, "t:info", GROUP, &gi), 0);
    assert_true(gi.found);
    assert_int_equal(gi.pending, 30);
    assert_int_equal(gi.lag, ENTRIES - 150);
    assert_string_equal(gi.last_delivered, "1150-0");
    assert_string_equal(gi.oldest_pending, "1121-0");
    assert_int_equal(stream_id_ms(gi.oldest_pending), 1121);
    assert_int_equal(stream_id_ms(""), 0);
    assert_int_equal(stream_id_ms(NULL), 0);

    /* nothing pending: no oldest pending id */
    fill("t:acked", 10, 10);
    assert_int_equal(stream_group_info_get(R, "t:acked", GROUP, &gi), 0);
    assert_int_equal(gi.pending, 0);
    assert_string_equal(gi.oldest_pending, "");
    assert_string_equal(gi.last_delivered, "1010-0");
}

static void test_floor(void **state) {
    (void)state;
    char floor_id[STREAM_ID_MAX];
    fill("t:floor", ENTRIES, 120);
    assert_int_equal(stream_group_floor(R, "t:floor", GROUP, floor_id), 0);
    assert_string_equal(floor_id, "1121-0"); /* the oldest pending entry */
    fill("t:floor2", 200, 200);
    assert_int_equal(stream_group_floor(R, "t:floor2", GROUP, floor_id), 0);
    assert_string_equal(floor_id, "1200-1"); /* the entry after the last delivered */
}

/* Trimming by age removes old entries but never one at or past the floor. */
static void test_trim_stops_at_the_floor(void **state) {
    (void)state;
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    fill("t:trim", ENTRIES, 120);
    long n = stream_trim_by_age(R, "t:trim", GROUP, now_ms - 3600 * 1000);
    assert_true(n > 0);
    assert_true(n <= 120);
    assert_int_equal(run_int("XLEN %s", "t:trim"), ENTRIES - n);
    redis_reply *r = run("XRANGE t:trim 1121-0 + COUNT 1000");
    assert_int_equal(redis_reply_count(r), ENTRIES - 120); /* every unacknowledged one */
    redis_reply_free(r);

    /* all acknowledged now: the floor is past the last entry, but an entry
     * younger than the retention stays */
    for (int i = 121; i <= ENTRIES; i++)
        redis_reply_free(run("XACK t:trim " GROUP " %d-0", 1000 + i));
    redis_reply_free(run("XADD t:trim * id evt_new type x body {}"));
    redis_reply_free(run("XREADGROUP GROUP " GROUP " gone COUNT 1 STREAMS t:trim >"));
    n = stream_trim_by_age(R, "t:trim", GROUP, now_ms - 3600 * 1000);
    assert_true(n > 0);
    r = run("XRANGE t:trim - + COUNT 1000");
    const redis_reply *last = redis_reply_at(r, redis_reply_count(r) - 1);
    assert_string_equal(redis_reply_str(redis_reply_field(redis_reply_at(last, 1), "id"), NULL),
                        "evt_new");
    redis_reply_free(r);
}

static void test_trim_without_group_keeps_everything(void **state) {
    (void)state;
    for (int i = 1; i <= ENTRIES; i++)
        redis_reply_free(run("XADD t:trim_nogroup %d-0 id evt_old%d", 1000 + i, i));
    assert_int_equal(stream_trim_by_age(R, "t:trim_nogroup", GROUP, (int64_t)time(NULL) * 1000), 0);
    assert_int_equal(run_int("XLEN %s", "t:trim_nogroup"), ENTRIES);
}

/* Consumers holding nothing, idle long enough and without an alive key go;
 * `keep`, holders and consumers whose worker keeps them alive stay (on Redis
 * 7.0 a live consumer of a quiet stream looks idle: only deliveries count). */
static void test_reap_consumers(void **state) {
    (void)state;
    fill("t:reap", 2, 0); /* "gone" holds two entries */
    redis_reply_free(run("XGROUP CREATECONSUMER t:reap " GROUP " idle"));
    redis_reply_free(run("XGROUP CREATECONSUMER t:reap " GROUP " quiet"));
    redis_reply_free(run("XGROUP CREATECONSUMER t:reap " GROUP " me"));
    assert_int_equal(stream_consumer_alive(R, "t:reap", "quiet", 60000), 0);
    assert_int_equal(stream_consumer_is_alive(R, "t:reap", "quiet"), 1);
    assert_int_equal(stream_consumer_is_alive(R, "t:reap", "idle"), 0);
    struct timespec ms20 = {0, 20 * 1000 * 1000};
    nanosleep(&ms20, NULL);
    assert_int_equal(stream_reap_consumers(R, "t:reap", GROUP, 60000, "me"), 0);
    assert_int_equal(stream_reap_consumers(R, "t:reap", GROUP, 5, "me"), 1);
    redis_reply *r = run("XINFO CONSUMERS t:reap " GROUP);
    assert_int_equal(redis_reply_count(r), 3);
    for (size_t i = 0; i < redis_reply_count(r); i++) {
        const char *name = redis_reply_str(redis_reply_field(redis_reply_at(r, i), "name"), NULL);
        assert_true(strcmp(name, "gone") == 0 || strcmp(name, "me") == 0 ||
                    strcmp(name, "quiet") == 0);
    }
    redis_reply_free(r);

    /* its worker stopped: the key is gone, and so is the consumer */
    assert_int_equal(stream_consumer_gone(R, "t:reap", "quiet"), 0);
    assert_int_equal(stream_consumer_is_alive(R, "t:reap", "quiet"), 0);
    assert_int_equal(stream_reap_consumers(R, "t:reap", GROUP, 5, "me"), 1);
    /* a key that lapses */
    assert_int_equal(stream_consumer_alive(R, "t:reap", "brief", 10), 0);
    struct timespec ms50 = {0, 50 * 1000 * 1000};
    nanosleep(&ms50, NULL);
    assert_int_equal(stream_consumer_is_alive(R, "t:reap", "brief"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stream_no_group),
        cmocka_unit_test(test_group_info),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_trim_stops_at_the_floor),
        cmocka_unit_test(test_trim_without_group_keeps_everything),
        cmocka_unit_test(test_reap_consumers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
