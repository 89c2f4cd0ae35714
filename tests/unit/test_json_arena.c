/* test_json_arena.c - the worker's jansson arena (worker/json_arena.c): trees
 * parsed inside a batch window come from the arena and stay intact until
 * freed, the arena is reused batch after batch, large and out-of-window
 * allocations go to malloc, and under AddressSanitizer what is not handed
 * out is poisoned, so a tree used after its free or after the batch is
 * reported as it would be with malloc. */
#include "json_arena.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define IS_POISONED(p) __asan_address_is_poisoned(p)
#endif

static const char EVENT[] = "{\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"data\":{\"object\":"
                            "{\"id\":\"in_1\",\"lines\":{\"data\":[{\"amount\":1000,"
                            "\"period\":{\"end\":1772323200}}]}}}}";

static json_t *parse(const char *text) {
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    assert_non_null(root);
    return root;
}

static void test_trees_survive_until_freed(void **state) {
    (void)state;
    for (int batch = 0; batch < 50; batch++) {
        json_t *trees[64];
        json_arena_begin();
        for (int i = 0; i < 64; i++)
            trees[i] = parse(EVENT);
        for (int i = 0; i < 64; i++) {
            json_t *end = json_object_get(
                json_array_get(
                    json_object_get(
                        json_object_get(
                            json_object_get(json_object_get(trees[i], "data"), "object"), "lines"),
                        "data"),
                    0),
                "period");
            assert_int_equal(json_integer_value(json_object_get(end, "end")), 1772323200);
            json_decref(trees[i]);
        }
        json_arena_end();
    }
}

static void test_outside_the_window_is_malloc(void **state) {
    (void)state;
    json_t *kept = parse(EVENT); /* outlives any batch */
    json_arena_begin();
    json_decref(parse(EVENT));
    json_arena_end();
    json_arena_begin();
    json_decref(parse(EVENT));
    json_arena_end();
    assert_string_equal(json_string_value(json_object_get(kept, "type")), "invoice.paid");
    json_decref(kept);
}

static void test_large_values_are_malloc(void **state) {
    (void)state;
    static char big[200000];
    memset(big, 'x', sizeof(big) - 1);
    json_arena_begin();
    json_t *s = json_stringn(big, sizeof(big) - 1);
    assert_non_null(s);
    assert_int_equal(json_string_length(s), sizeof(big) - 1);
    json_decref(s);
    json_arena_end();
}

#if defined(__SANITIZE_ADDRESS__)
static void test_poisoned_after_free_and_after_batch(void **state) {
    (void)state;
    json_arena_begin();
    json_t *a = parse(EVENT), *b = parse(EVENT);
    assert_false(IS_POISONED(a));
    json_decref(a);
    assert_true(IS_POISONED(a)); /* freed inside the batch */
    assert_false(IS_POISONED(b));
    json_decref(b);
    json_t *c = parse(EVENT);
    json_arena_end();
    assert_true(IS_POISONED(c)); /* the batch is over: any use is reported */
    json_arena_begin();          /* and the arena hands out memory again */
    json_t *d = parse(EVENT);
    assert_false(IS_POISONED(d));
    json_decref(d);
    json_arena_end();
}
#endif

int main(void) {
    json_arena_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trees_survive_until_freed),
        cmocka_unit_test(test_outside_the_window_is_malloc),
        cmocka_unit_test(test_large_values_are_malloc),
#if defined(__SANITIZE_ADDRESS__)
        cmocka_unit_test(test_poisoned_after_free_and_after_batch),
#endif
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_arena_release();
    return rc;
}
