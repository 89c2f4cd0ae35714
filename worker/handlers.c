/* handlers.c - which function applies which Stripe event type.
 * Adding an event type is one row here and one function in the file of its
 * object family. Types not listed are recorded as skipped. */
#include "event.h"

#include <string.h>

static const struct {
    const char *type;
    event_handler handler;
} handlers[] = {
    {"charge.dispute.closed", charge_dispute},
    {"charge.dispute.created", charge_dispute},
    {"charge.dispute.funds_reinstated", charge_dispute},
    {"charge.dispute.funds_withdrawn", charge_dispute},
    {"charge.dispute.updated", charge_dispute},
    {"charge.refunded", charge_refunded},
    {"checkout.session.async_payment_failed", checkout_async_failed},
    {"checkout.session.async_payment_succeeded", checkout_async_succeeded},
    {"checkout.session.completed", checkout_completed},
    {"customer.subscription.created", subscription_changed},
    {"customer.subscription.deleted", subscription_changed},
    {"customer.subscription.paused", subscription_changed},
    {"customer.subscription.resumed", subscription_changed},
    {"customer.subscription.updated", subscription_changed},
    {"invoice.paid", invoice_paid},
    {"invoice.payment_failed", invoice_payment_failed},
    {"invoice.payment_succeeded", invoice_paid},
    {"invoice_payment.paid", invoice_payment_paid},
};

event_handler handler_for(const char *type) {
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(handlers[i].type, type) == 0) return handlers[i].handler;
    return NULL;
}
