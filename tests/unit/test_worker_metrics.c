/* test_worker_metrics.c - worker/metrics.c: counts by type and outcome, the
 * bound on distinct types, cumulative histogram buckets with _sum and
 * _count, the group gauges shown only when known, and counts from several
 * threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int setup(void **state) {
    (void)state;
    wmetrics_reset();
    wmetrics_init(1750000000123);
    return 0;
}

static char *render(const wm_group *g, strbuf *sb) {
    strbuf_init(sb);
    wmetrics_render(g, sb);
    assert_false(sb->oom);
    return sb->buf;
}

static void assert_has(const char *text, const char *line) {
    if (strstr(text, line) == NULL) fail_msg("missing line: %s", line);
}

static void test_events_by_type_and_outcome(void **state) {
    (void)state;
    wmetrics_event("invoice.paid", WM_APPLIED);
    wmetrics_event("invoice.paid", WM_APPLIED);
    wmetrics_event("invoice.paid", WM_DEAD);
    wmetrics_event("charge.refunded", WM_WAITING);
    wmetrics_event(NULL, WM_SKIPPED);
    wmetrics_event("Bad\"Type", WM_SKIPPED); /* not [a-z0-9._]: other, never escaped */
    wmetrics_retry();
    strbuf sb;
    wm_group g = {0};
    const char *t = render(&g, &sb);
    assert_has(t, "# TYPE paystream_worker_events_total counter\n");
    assert_has(t, "paystream_worker_events_total{type=\"invoice.paid\",outcome=\"applied\"} 2\n");
    assert_has(t, "paystream_worker_events_total{type=\"invoice.paid\",outcome=\"dead\"} 1\n");
    assert_has(t,
               "paystream_worker_events_total{type=\"charge.refunded\",outcome=\"waiting\"} 1\n");
    assert_has(t, "paystream_worker_events_total{type=\"other\",outcome=\"skipped\"} 2\n");
    assert_has(t, "paystream_worker_retries_total 1\n");
    assert_has(t, "paystream_worker_start_time_seconds 1750000000.123\n");
    assert_null(strstr(t, "Bad"));
    strbuf_free(&sb);
}

static void test_types_are_bounded(void **state) {
    (void)state;
    char type[32];
    for (int i = 0; i < WMETRICS_MAX_TYPES + 10; i++) {
        snprintf(type, sizeof(type), "type.%d", i);
        wmetrics_event(type, WM_APPLIED);
    }
    strbuf sb;
    wm_group g = {0};
    const char *t = render(&g, &sb);
    int rows = 0;
    for (const char *p = t; (p = strstr(p, "outcome=\"applied\"}")) != NULL; p++)
        rows++;
    assert_int_equal(rows, WMETRICS_MAX_TYPES + 1); /* + type="other" */
    assert_has(t, "paystream_worker_events_total{type=\"other\",outcome=\"applied\"} 10\n");
    strbuf_free(&sb);
}

static void test_histograms_are_cumulative(void **state) {
    (void)state;
    wmetrics_batch(1, 500);       /* 0.5 ms: le 0.001 */
    wmetrics_batch(3, 20000);     /* 20 ms: le 0.025 */
    wmetrics_batch(64, 20000000); /* 20 s: +Inf */
    strbuf sb;
    wm_group g = {0};
    const char *t = render(&g, &sb);
    assert_has(t, "# TYPE paystream_worker_apply_seconds histogram\n");
    assert_has(t, "paystream_worker_apply_seconds_bucket{le=\"0.001\"} 1\n");
    assert_has(t, "paystream_worker_apply_seconds_bucket{le=\"0.01\"} 1\n");
    assert_has(t, "paystream_worker_apply_seconds_bucket{le=\"0.025\"} 2\n");
    assert_has(t, "paystream_worker_apply_seconds_bucket{le=\"10\"} 2\n");
    assert_has(t, "paystream_worker_apply_seconds_bucket{le=\"+Inf\"} 3\n");
    assert_has(t, "paystream_worker_apply_seconds_sum 20.020500\n");
    assert_has(t, "paystream_worker_apply_seconds_count 3\n");
    assert_has(t, "paystream_worker_batch_events_bucket{le=\"1\"} 1\n");
    assert_has(t, "paystream_worker_batch_events_bucket{le=\"4\"} 2\n");
    assert_has(t, "paystream_worker_batch_events_bucket{le=\"64\"} 3\n");
    assert_has(t, "paystream_worker_batch_events_bucket{le=\"+Inf\"} 3\n");
    assert_has(t, "paystream_worker_batch_events_sum 68.000000\n");
    assert_has(t, "paystream_worker_batch_events_count 3\n");
    strbuf_free(&sb);
}

static void test_group_gauges_when_known(void **state) {
    (void)state;
    strbuf sb;
    wm_group g = {.redis_known = true,
                  .lag = 7,
                  .pending = 3,
                  .oldest_pending_age = 1.5,
                  .dead_letters = 2,
                  .waiting_known = true,
                  .waiting = 4,
                  .oldest_waiting_age = 60,
                  .redis_up = true};
    const char *t = render(&g, &sb);
    assert_has(t, "paystream_worker_group_lag 7\n");
    assert_has(t, "paystream_worker_group_pending 3\n");
    assert_has(t, "paystream_worker_oldest_pending_age_seconds 1.5\n");
    assert_has(t, "paystream_worker_dead_letters 2\n");
    assert_has(t, "paystream_worker_waiting_events 4\n");
    assert_has(t, "paystream_worker_oldest_waiting_age_seconds 60\n");
    assert_has(t, "paystream_worker_redis_up 1\n");
    assert_has(t, "paystream_worker_postgres_up 0\n");
    strbuf_free(&sb);

    wm_group none = {.lag = -1};
    wmetrics_waiting_add(1);
    t = render(&none, &sb);
    assert_null(strstr(t, "paystream_worker_group_lag"));
    assert_null(strstr(t, "paystream_worker_oldest_waiting_age_seconds"));
    assert_has(t, "paystream_worker_waiting_events 1\n"); /* what this process saw */
    strbuf_free(&sb);
}

static void *count_many(void *arg) {
    const char *type = arg;
    for (int i = 0; i < 10000; i++)
        wmetrics_event(type, WM_APPLIED);
    return NULL;
}

static void test_threads_count_together(void **state) {
    (void)state;
    pthread_t t[4];
    const char *types[4] = {"a.b", "c.d", "a.b", "c.d"};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, count_many, (void *)types[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    strbuf sb;
    wm_group g = {0};
    const char *text = render(&g, &sb);
    assert_has(text, "paystream_worker_events_total{type=\"a.b\",outcome=\"applied\"} 20000\n");
    assert_has(text, "paystream_worker_events_total{type=\"c.d\",outcome=\"applied\"} 20000\n");
    strbuf_free(&sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_events_by_type_and_outcome, setup),
        cmocka_unit_test_setup(test_types_are_bounded, setup),
        cmocka_unit_test_setup(test_histograms_are_cumulative, setup),
        cmocka_unit_test_setup(test_group_gauges_when_known, setup),
        cmocka_unit_test_setup(test_threads_count_together, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
