/* price_lines.c - the price lines of a subscription (its items) or an invoice
 * (its lines) as the two PostgreSQL array literals the ledger rules take:
 * prices and, line by line, quantities (ledger_row.h). Which prices are
 * plans, and what they are worth, is the ledger's to say (sql/subscriptions.sql). */
#include "event.h"

#include <inttypes.h>

void price_lines_init(price_lines *l) {
    strbuf_init(&l->prices);
    strbuf_init(&l->quantities);
    strbuf_puts(&l->prices, "{");
    strbuf_puts(&l->quantities, "{");
    l->n = 0;
}

int price_lines_add(event_ctx *ev, price_lines *l, const char *price, int64_t quantity) {
    if (quantity < 0 || quantity > INT32_MAX)
        return ev_fail(ev, "price %s: quantity %" PRId64 " out of range", price, quantity), -1;
    const char *sep = l->n++ ? "," : "";
    strbuf_puts(&l->prices, sep);
    pg_array_elem(&l->prices, price); /* quoted: a price id is data, whatever it holds */
    strbuf_printf(&l->quantities, "%s%" PRId64, sep, quantity);
    return 0;
}

int price_lines_close(event_ctx *ev, price_lines *l) {
    strbuf_puts(&l->prices, "}");
    strbuf_puts(&l->quantities, "}");
    if (l->prices.oom || l->quantities.oom) return ev_fail(ev, "out of memory"), -1;
    return 0;
}

void price_lines_free(price_lines *l) {
    strbuf_free(&l->prices);
    strbuf_free(&l->quantities);
}
