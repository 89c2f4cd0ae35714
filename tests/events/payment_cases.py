#!/usr/bin/env python3
"""payment_cases.py - refunds and disputes of SPEC 4 as Stripe sends them, for
test_e2e_payments.sh: each case is one user's purchases (credit packs, a
subscription's invoices) and the refunds and disputes of their payments, built
from Stripe's fixtures (either API shape: before 2025-03-31.basil a charge and
an invoice name each other; from basil on invoice_payment.paid says which
payment paid which invoice), and the balances SPEC 4 says they end in,
whatever the order of delivery.

  gen CASE --user UUID --seed S [--api-version V] --expect FILE   events on stdout

The expectation is one line: "SUB OVERAGE|DUE TAKEN UNCOLLECTED,..." (balances,
then each refunded or disputed payment's record, by payment id), a glob pattern:
"*" stands for a figure that rightly depends on the order.
Cases: pack-refunds, pack-dispute-lost, pack-dispute-won, pack-refund-and-dispute,
sub-refund, sub-dispute-lost, sub-dispute-won, sub-refund-after-renewal, inquiry.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stripe_events as se  # noqa: E402
import subscription_cases as sc  # noqa: E402

DAY, PERIOD = se.DAY, se.PERIOD
PACK_CREDITS, PACK_AMOUNT = 50, se.AMOUNTS["pack50"]
BASIC_CREDITS, BASIC_AMOUNT = 100, se.AMOUNTS["basic"]


class Payments(sc.Case):
    """A user's purchases and what happens to their payments."""

    def __init__(self, g, user, t0):
        super().__init__(g, user, t0)
        self.records = {}  # payment -> "due taken uncollected"

    def pack(self, created):
        """A paid credit-pack checkout; its (charge, payment intent)."""
        g, u = self.g, self.u
        cs, pi, ch = g.sid("cs", 58), g.sid("pi", 24), g.sid("ch", 24)
        s = g.checkout(u, "payment", created, cs, pi,
                       metadata={"user_id": u["user"], "credit_pack": "pack50"})
        g.event("checkout.session.completed", s, created, "pack", u["user"])
        g.event("charge.succeeded", g.charge(u, ch, pi, PACK_AMOUNT, 0, created), created, "pack",
                u["user"])
        return ch, pi, None

    def paid_invoice(self, name, plan, amount, created, period, reason="subscription_cycle"):
        """A paid subscription invoice and, from basil on, its invoice_payment.paid;
        its (charge, payment intent, invoice)."""
        g, u = self.g, self.subs[name]
        inv = self.invoice(name, [(plan, 1, amount)], created, period, reason)
        if not g.basil():
            return inv["charge"], inv["payment_intent"], inv["id"]
        ch, pi = g.sid("ch", 24), g.sid("pi", 24)
        p = g.fixture("invoice_payment")
        p.update(id=g.sid("inpay", 24), invoice=inv["id"], amount_paid=amount,
                 amount_requested=amount, created=created, currency="usd", livemode=False,
                 is_default=True, status="paid",
                 payment={"type": "payment_intent", "payment_intent": pi},
                 status_transitions={"canceled_at": None, "paid_at": created})
        g.event("invoice_payment.paid", p, created, name, u["user"])
        return ch, pi, None

    def refund(self, paid, amount, refunded, created):
        """charge.refunded with the cumulative amount_refunded."""
        g, u = self.g, self.u
        ch, pi, invoice = paid
        c = g.charge(u, ch, pi, amount, refunded, created)
        if invoice:  # before basil a charge names its invoice
            c["invoice"] = invoice
        g.event("charge.refunded", c, created, "refund", u["user"],
                previous={"amount_refunded": 0})

    def dispute(self, paid, dp, amount, steps):
        """charge.dispute.* events [(type suffix, status, created)] of dispute dp."""
        g, u = self.g, self.u
        for suffix, status, created in steps:
            d = g.fixture("dispute")
            d.update(id=dp, charge=paid[0], payment_intent=paid[1], amount=amount,
                     currency="usd", created=steps[0][2], status=status, livemode=False,
                     is_charge_refundable=False, reason="fraudulent")
            g.event("charge.dispute." + suffix, d, created, "dispute", u["user"])

    def record(self, paid, due, taken, uncollected=0):
        self.records[paid[1]] = "%d %d %d" % (due, taken, uncollected)

    def expect(self, sub_credits, over):
        recs = ",".join(self.records[k] for k in sorted(self.records))
        return "%d %d|%s" % (sub_credits, over, recs)


LOST = [("created", "needs_response", 0), ("funds_withdrawn", "needs_response", 1),
        ("updated", "under_review", 2 * DAY), ("closed", "lost", 20 * DAY)]
WON = [("created", "needs_response", 0), ("funds_withdrawn", "needs_response", 1),
       ("updated", "under_review", 2 * DAY), ("funds_reinstated", "won", 20 * DAY),
       ("closed", "won", 20 * DAY)]
INQUIRY = [("created", "warning_needs_response", 0), ("updated", "warning_under_review", DAY),
           ("closed", "warning_closed", 10 * DAY)]


def at(steps, t):
    return [(s, st, t + dt) for s, st, dt in steps]


def subscribe(c, t0, period_end):
    """Basic since t0, first invoice paid; its payment."""
    c.sub("A", t0)
    c.state("customer.subscription.created", "A", [("basic", 1)], "active", t0, period_end, t0)
    return c.paid_invoice("A", "basic", BASIC_AMOUNT, t0, (t0, period_end), "subscription_create")


def build(case, c):
    t0 = c.t0
    p1e, p2e = t0 + PERIOD, t0 + 2 * PERIOD
    g = c.g
    if case == "pack-refunds":
        # two partial refunds: amount_refunded is cumulative (30 %, then 60 %)
        a = c.pack(t0)
        c.refund(a, PACK_AMOUNT, PACK_AMOUNT * 3 // 10, t0 + DAY)
        c.refund(a, PACK_AMOUNT, PACK_AMOUNT * 6 // 10, t0 + 2 * DAY)
        c.record(a, 30, 30)
        return c.expect(0, PACK_CREDITS - 30)
    if case == "pack-dispute-lost":
        a = c.pack(t0)
        c.dispute(a, g.sid("dp", 24), PACK_AMOUNT, at(LOST, t0 + DAY))
        c.record(a, PACK_CREDITS, PACK_CREDITS)
        return c.expect(0, 0)
    if case == "pack-dispute-won":
        # withdrawn, then won: what the dispute took comes back
        a = c.pack(t0)
        c.dispute(a, g.sid("dp", 24), PACK_AMOUNT, at(WON, t0 + DAY))
        c.record(a, 0, 0)
        return c.expect(0, PACK_CREDITS)
    if case == "pack-refund-and-dispute":
        # half refunded, then the whole charge disputed and lost: never more
        # than the pack granted, and the user's other pack is untouched
        a, b = c.pack(t0), c.pack(t0 + 1)
        c.refund(a, PACK_AMOUNT, PACK_AMOUNT // 2, t0 + DAY)
        c.dispute(a, g.sid("dp", 24), PACK_AMOUNT, at(LOST, t0 + 2 * DAY))
        c.record(a, PACK_CREDITS, PACK_CREDITS)
        return c.expect(0, PACK_CREDITS)
    if case == "sub-refund":
        # the first invoice refunded in full while its period is the credit period
        a = subscribe(c, t0, p1e)
        c.pack(t0 + 1)
        c.refund(a, BASIC_AMOUNT, BASIC_AMOUNT, t0 + 3 * DAY)
        c.record(a, BASIC_CREDITS, BASIC_CREDITS)
        return c.expect(0, PACK_CREDITS)
    if case == "sub-dispute-lost":
        a = subscribe(c, t0, p1e)
        c.dispute(a, g.sid("dp", 24), BASIC_AMOUNT, at(LOST, t0 + 3 * DAY))
        c.record(a, BASIC_CREDITS, BASIC_CREDITS)
        return c.expect(0, 0)
    if case == "sub-dispute-won":
        a = subscribe(c, t0, p1e)
        c.dispute(a, g.sid("dp", 24), BASIC_AMOUNT, at(WON, t0 + 3 * DAY))
        c.record(a, 0, 0)
        return c.expect(BASIC_CREDITS, 0)
    if case == "sub-refund-after-renewal":
        # a refund of the first period's invoice once the next period is paid:
        # those credits expired with their period, the renewal's stay
        a = subscribe(c, t0, p1e)
        c.state("customer.subscription.updated", "A", [("basic", 1)], "active", p1e, p2e, p1e)
        c.paid_invoice("A", "basic", BASIC_AMOUNT, p1e + 3600, (p1e, p2e))
        c.refund(a, BASIC_AMOUNT, BASIC_AMOUNT, p1e + 2 * DAY)
        # taken back only when the refund came first; nothing granted by the
        # first invoice when the renewal came before it
        c.records[a[1]] = "* * 0"
        return c.expect(BASIC_CREDITS, 0)
    if case == "inquiry":
        # an inquiry (warning_*) withdraws nothing
        a = c.pack(t0)
        c.dispute(a, g.sid("dp", 24), PACK_AMOUNT, at(INQUIRY, t0 + DAY))
        c.record(a, 0, 0)
        return c.expect(0, PACK_CREDITS)
    sys.exit("payment_cases: unknown case %s" % case)


CASES = ["pack-refunds", "pack-dispute-lost", "pack-dispute-won", "pack-refund-and-dispute",
         "sub-refund", "sub-dispute-lost", "sub-dispute-won", "sub-refund-after-renewal",
         "inquiry"]


if __name__ == "__main__":
    sc.cases_main(__doc__, CASES, build, Payments)
