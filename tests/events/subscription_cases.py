#!/usr/bin/env python3
"""subscription_cases.py - the subscription cases of SPEC 4 as Stripe sends them,
for test_e2e_subscriptions.sh: each case is one user's events, built from Stripe's
fixtures by stripe_events.py's builders (either API shape), and the state SPEC 4
says they end in, whatever the order of delivery.

  gen CASE --user UUID --seed S [--api-version V] --expect FILE   events on stdout

The expectation is one line: "SUB OVERAGE SPENDABLE|PLAN STATUS SUBSCRIPTION PERIOD_END
CANCEL" (balances, check_credits(user, 1), then get_subscription's row).
Cases: second-incomplete, second-trial, price-change, addon-first, seats,
upgrade-proration, incomplete-failed, renewal-failed-tie, trial, pause.
"""
import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stripe_events as se  # noqa: E402

DAY, PERIOD = se.DAY, se.PERIOD
NEW_PRO = "price_1QnewProMonthly2026000000"   # plans_cases.txt
SEAT = "price_1QseatPerSeatMonthly00000"
TRIALPRO = "price_1QtrialProMonthly00000000"
ADDON = "price_1QmeterAddonUsage00000000"     # no plan
CREDITS = {"basic": 100, "pro": 300, NEW_PRO: 300, SEAT: 50, TRIALPRO: 300}
TRIAL = {TRIALPRO: 20}


class Case:
    """One user's events, with the builders of stripe_events.Gen."""

    def __init__(self, g, user, t0):
        self.g, self.t0 = g, t0
        self.u = se.new_user(g, user, t0)
        self.subs = {}

    def sub(self, name, created):
        """A subscription of the user's customer: its own ids."""
        if name not in self.subs:
            u = dict(self.u, subscription=self.g.sid("sub", 24), item=self.g.sid("si", 14)[:17],
                     invoices=[self.g.sid("in", 24) for _ in range(4)], sub_created=created,
                     used=0)
            self.subs[name] = u
        return self.subs[name]

    def price_id(self, plan):
        return self.g.plans[plan][1] if plan in self.g.plans else plan

    def state(self, etype, name, items, status, start, end, created, trial_end=None,
              cancel=None, pause=False):
        """customer.subscription.* with items [(plan or price, quantity)]."""
        u, g = self.subs[name], self.g
        s = g.subscription(u, items[0][0], status, start, end, cancel=cancel)
        base = s["items"]["data"][0]
        data = []
        for i, (plan, qty) in enumerate(items):
            it = copy.deepcopy(base)
            price = g.price(plan)
            it.update(id=u["item"] if i == 0 else g.sid("si", 14)[:17], price=price, quantity=qty)
            it["plan"] = dict(it["plan"], id=price["id"], product=price["product"],
                              amount=price["unit_amount"],
                              usage_type="metered" if price["id"] == ADDON else "licensed")
            data.append(it)
        s["items"]["data"] = data
        s["items"]["total_count"] = len(data)
        if not g.basil():
            s["plan"] = copy.deepcopy(data[0]["plan"])
            s["quantity"] = items[0][1]
        s.update(trial_start=start if trial_end else None, trial_end=trial_end)
        if pause:
            s["pause_collection"] = {"behavior": "keep_as_draft", "resumes_at": None}
        g.event(etype, s, created, name, u["user"])

    def invoice(self, name, lines, created, period, reason="subscription_cycle", paid=True):
        """invoice.paid and .payment_succeeded (or .payment_failed) with lines
        [(plan or price, quantity, amount)] for the period (start, end); the
        invoice object."""
        u, g = self.subs[name], self.g
        inv_id = u["invoices"][u["used"]]
        u["used"] += 1
        lns = []
        for plan, qty, amount in lines:
            ln = g.line(u, inv_id, plan, amount, period[0], period[1], False, "%d × %s" % (qty, plan))
            ln["quantity"] = qty
            lns.append(ln)
        inv = g.invoice(u, inv_id, reason, created, lns, g.sid("ch", 24), g.sid("pi", 24))
        if paid:
            g.event("invoice.paid", inv, created, name, u["user"])
            g.event("invoice.payment_succeeded", inv, created, name, u["user"])
        else:
            inv.update(status="open", amount_paid=0, amount_remaining=inv["amount_due"],
                       attempt_count=1, next_payment_attempt=created + 3 * DAY)
            inv["status_transitions"]["paid_at"] = None
            if not g.basil():
                inv["paid"] = False
            g.event("invoice.payment_failed", inv, created, name, u["user"])
        return inv


def expect(c, sub_credits, over, spendable, name, plan, status, period_end, cancel=False):
    sub = c.subs[name]["subscription"] if name else ""
    return "%d %d %s|%s %s %s %d %s" % (sub_credits, over, "t" if spendable else "f", plan,
                                       status, sub, period_end, "t" if cancel else "f")


def build(case, c):
    t0 = c.t0
    p1s, p1e, p2e = t0, t0 + PERIOD, t0 + 2 * PERIOD
    created = "customer.subscription.created"
    updated = "customer.subscription.updated"
    a = c.sub("A", t0)
    if case in ("second-incomplete", "second-trial"):
        # Pro since t0, paid; a second subscription that never goes live, or
        # whose trial is cancelled, must not take over
        c.state(created, "A", [("pro", 1)], "active", p1s, p1e, t0)
        c.invoice("A", [("pro", 1, 2900)], t0, (p1s, p1e), "subscription_create")
        tb = t0 + 5 * DAY
        c.sub("B", tb)
        if case == "second-incomplete":
            c.state(created, "B", [("basic", 1)], "incomplete", tb, tb + PERIOD, tb)
            c.invoice("B", [("basic", 1, 900)], tb, (tb, tb + PERIOD), "subscription_create",
                      paid=False)
            c.state(updated, "B", [("basic", 1)], "incomplete_expired", tb, tb + PERIOD,
                    tb + DAY)
            # and the first subscription renews
            c.state(updated, "A", [("pro", 1)], "active", p1e, p2e, p1e)
            c.invoice("A", [("pro", 1, 2900)], p1e + 3600, (p1e, p2e))
            return expect(c, 300, 0, True, "A", "pro", "active", p2e)
        te = tb + 14 * DAY
        c.state(created, "B", [("basic", 1)], "trialing", tb, te, tb, trial_end=te)
        c.invoice("B", [("basic", 1, 0)], tb, (tb, te), "subscription_create")
        c.state("customer.subscription.deleted", "B", [("basic", 1)], "canceled", tb, te,
                tb + 3 * DAY, trial_end=te, cancel=tb + 3 * DAY)
        return expect(c, 300, 0, True, "A", "pro", "active", p1e)
    if case == "price-change":
        # a grandfathered subscription on pro's old price renews and is cancelled
        # after the operator gave pro a new price
        c.state(created, "A", [("pro", 1)], "active", p1s, p1e, t0)
        c.invoice("A", [("pro", 1, 2900)], t0, (p1s, p1e), "subscription_create")
        c.state(updated, "A", [("pro", 1)], "active", p1e, p2e, p1e)
        c.invoice("A", [("pro", 1, 2900)], p1e + 3600, (p1e, p2e))
        c.state("customer.subscription.deleted", "A", [("pro", 1)], "canceled", p1e, p2e,
                p1e + 5 * DAY, cancel=p1e + 5 * DAY)
        return expect(c, 0, 0, False, "A", "pro", "canceled", p2e)
    if case == "addon-first":
        # a metered add-on as the first item and line, beside the plan
        c.state(created, "A", [(ADDON, 1), (NEW_PRO, 1)], "active", p1s, p1e, t0)
        c.invoice("A", [(ADDON, 1, 0), (NEW_PRO, 1, 2900)], t0, (p1s, p1e),
                  "subscription_create")
        return expect(c, 300, 0, True, "A", "pro", "active", p1e)
    if case == "seats":
        # five seats, and a second plan line: the sum of credits × quantity
        c.state(created, "A", [(SEAT, 5), ("basic", 1)], "active", p1s, p1e, t0)
        c.invoice("A", [(SEAT, 5, 5 * 500), ("basic", 1, 900)], t0, (p1s, p1e),
                  "subscription_create")
        return expect(c, 5 * 50 + 100, 0, True, "A", "seat", "active", p1e)
    if case == "upgrade-proration":
        # basic -> pro in the period; Stripe's default proration bills it next time
        c.state(created, "A", [("basic", 1)], "active", p1s, p1e, t0)
        c.invoice("A", [("basic", 1, 900)], t0, (p1s, p1e), "subscription_create")
        c.state(updated, "A", [("pro", 1)], "active", p1s, p1e, t0 + 10 * DAY)
        return expect(c, 300, 0, True, "A", "pro", "active", p1e)
    if case == "incomplete-failed":
        # default_incomplete: the first invoice's payment fails; Stripe says incomplete
        c.state(created, "A", [("pro", 1)], "incomplete", p1s, p1e, t0)
        c.invoice("A", [("pro", 1, 2900)], t0, (p1s, p1e), "subscription_create", paid=False)
        return expect(c, 0, 0, False, "A", "pro", "incomplete", p1e)
    if case == "renewal-failed-tie":
        # the renewal fails in the same second as the period change
        c.state(created, "A", [("pro", 1)], "active", p1s, p1e, t0)
        c.invoice("A", [("pro", 1, 2900)], t0, (p1s, p1e), "subscription_create")
        c.state(updated, "A", [("pro", 1)], "active", p1e, p2e, p1e)
        c.invoice("A", [("pro", 1, 2900)], p1e, (p1e, p2e), paid=False)
        return expect(c, 300, 0, True, "A", "pro", "active", p2e)
    if case == "trial":
        # a trial's $0 invoice grants the plan's trial credits, not its allowance
        c.state(created, "A", [(TRIALPRO, 1)], "trialing", p1s, p1e, t0, trial_end=p1e)
        c.invoice("A", [(TRIALPRO, 1, 0)], t0, (p1s, p1e), "subscription_create")
        return expect(c, 20, 0, True, "A", "trialpro", "trialing", p1e)
    if case == "pause":
        # paused: the credits are kept but cannot be spent
        c.state(created, "A", [("pro", 1)], "active", p1s, p1e, t0)
        c.invoice("A", [("pro", 1, 2900)], t0, (p1s, p1e), "subscription_create")
        c.state("customer.subscription.paused", "A", [("pro", 1)], "paused", p1s, p1e,
                t0 + 5 * DAY, pause=True)
        return expect(c, 300, 0, False, "A", "pro", "paused", p1e)
    sys.exit("subscription_cases: unknown case %s" % case)


CASES = ["second-incomplete", "second-trial", "price-change", "addon-first", "seats",
         "upgrade-proration", "incomplete-failed", "renewal-failed-tie", "trial", "pause"]


def cases_main(doc, cases, build_fn, case_cls):
    """The command line of a cases file: `gen CASE ...` and `list`."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("case", choices=cases)
    g.add_argument("--user", required=True)
    g.add_argument("--seed", default="1")
    g.add_argument("--api-version", default=se.BASIL)
    g.add_argument("--t0", type=int, default=1760000000)
    g.add_argument("--plans", default=os.path.join(se.HERE, "plans.txt"))
    g.add_argument("--expect", required=True, help="file for the expected state")
    sub.add_parser("list")
    a = ap.parse_args()
    if a.cmd == "list":
        print(" ".join(cases))
        return
    gen = se.Gen(se.load_fixtures(), se.load_plans(a.plans), "%s/%s" % (a.case, a.seed),
                 a.api_version)
    want = build_fn(a.case, case_cls(gen, a.user, a.t0))
    with open(a.expect, "w", encoding="utf-8") as f:
        f.write(want + "\n")
    for ev in gen.events:
        sys.stdout.write(se.json.dumps(ev) + "\n")


if __name__ == "__main__":
    cases_main(__doc__, CASES, build, Case)
