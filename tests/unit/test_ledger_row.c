/* test_ledger_row.c - the worker's batch row (worker/ledger_row.c) as
 * PostgreSQL's composite-literal text: fields in the type's order, NULL as
 * nothing, every other value quoted with " and \ escaped, integers and
 * booleans in their text forms. (test_sql_batch checks the field names
 * against paystream.batch_event itself.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ledger_row.h"

#include <string.h>

static const char *const head[ROW_HEAD] = {"evt_1", "invoice.paid", "f",  NULL, "1700000000",
                                           "1-0",   "invoice_paid", NULL, NULL, NULL};

static void test_head_then_empty_inputs(void **state) {
    (void)state;
    strbuf sb;
    strbuf_init(&sb);
    ledger_row_head(&sb, head);
    ledger_row_inputs(&sb, NULL);
    assert_string_equal(sb.buf, "\"evt_1\",\"invoice.paid\",\"f\",,\"1700000000\",\"1-0\","
                                "\"invoice_paid\",,,,,,,,,,,,,,,,,,,,,,,,");
    strbuf_free(&sb);
}

static void test_inputs_by_name_and_escaping(void **state) {
    (void)state;
    strbuf sb;
    ledger_row in = LEDGER_ROW_EMPTY;
    in.customer = "cus_\"quoted\", (x) {y}";
    in.prices = "{price_a,price_b}";
    in.period_end = 0;
    in.amount = -5;
    in.cancel_at_period_end = ROW_TRUE;
    in.lines_charged = ROW_FALSE;
    in.dispute = "dp_1";
    in.invoice = "back\\slash";
    in.session = "";
    strbuf_init(&sb);
    ledger_row_inputs(&sb, &in);
    assert_string_equal(
        sb.buf, ",\"cus_\\\"quoted\\\", (x) {y}\",,,,,\"0\",\"t\",,"
                "\"back\\\\slash\",\"{price_a,price_b}\",\"\",,,,\"-5\",,,,\"f\",\"dp_1\",");
    strbuf_free(&sb);
}

static void test_field_names(void **state) {
    (void)state;
    assert_string_equal(ledger_row_field(0), "event_id");
    assert_string_equal(ledger_row_field(ROW_HEAD - 1), "user_id");
    assert_string_equal(ledger_row_field(ROW_HEAD), "customer");
    size_t n = 0;
    while (ledger_row_field(n))
        n++;
    assert_int_equal(n, 31);
    assert_string_equal(ledger_row_field(n - 1), "dispute_status");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_then_empty_inputs),
        cmocka_unit_test(test_inputs_by_name_and_escaping),
        cmocka_unit_test(test_field_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
