#!/usr/bin/env python3
"""injection_events.py - Stripe events carrying SQL injection attempts, for
test_db_safety.sh (python3 standard library only).

  lifecycle --user UUID      a whole subscriber's life (stripe_events.py) in
                             which every id Stripe makes (customer, subscription,
                             item, invoices, line items, checkout sessions,
                             payment intents, charges, refunds, events) and the
                             free texts (descriptions, names, emails) end in an
                             injection string; it must apply exactly like the
                             plain one
  bad --user UUID            events whose injected value cannot be accepted
                             (metadata.user_id, a price id, metadata.credit_pack,
                             metadata.price_id, the event type): each must be
                             recorded with a clear error or skipped, never run

Output: JSON lines {"id", "type", "phase", "user", "body", "expect"} as
stripe_events.py writes them ("expect": applied, skipped or failed); `ids`
prints the injection strings, one per line, so the test can look for them.
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events"))
import stripe_events as se  # noqa: E402

# what a careless query builder would run; each names the harm it would do
INJECTIONS = [
    "'); DROP TABLE paystream.credit_transactions; --",
    "' OR '1'='1",
    "'; UPDATE paystream.subscriptions SET overage_credits = 999999; --",
    "$$; DELETE FROM paystream.webhook_events; $$",
    "\\'; SELECT pg_sleep(30); --",
    "\" OR 1=1; --",
    "'||(SELECT string_agg(usename, ',') FROM pg_user)||'",
    "%s%s%n' E'\\x27",
]
HANDLED = {"checkout.session.completed", "customer.subscription.created",
           "customer.subscription.updated", "customer.subscription.deleted", "invoice.paid",
           "invoice.payment_succeeded", "charge.refunded"}
ID_RE = re.compile(r'"((?:cus|sub|si|in|il|ii|cs|pi|ch|re|txn|evt)_1[A-Za-z0-9]{6,60})"')
TEXT_KEYS = ("description", "name", "email", "customer_email", "receipt_email", "nickname")


def inject(text, table):
    """Each Stripe id in `text` gets an injection string appended (the same one
    everywhere for one id), so that the events still refer to one another."""
    def repl(m):
        sid = m.group(1)
        if sid not in table:
            table[sid] = sid + INJECTIONS[len(table) % len(INJECTIONS)]
        return json.dumps(table[sid])
    return ID_RE.sub(repl, text)


def poison_texts(obj, k=0):
    """Free texts (descriptions, names, emails) become injection strings too."""
    if isinstance(obj, dict):
        for key, v in obj.items():
            if key in TEXT_KEYS and isinstance(v, str):
                obj[key] = v + INJECTIONS[k % len(INJECTIONS)]
                k += 1
            else:
                k = poison_texts(v, k)
    elif isinstance(obj, list):
        for v in obj:
            k = poison_texts(v, k)
    return k


def lifecycle(a, fx, plans):
    g = se.Gen(fx, plans, "inject/" + a.seed, a.api_version)
    se.lifecycle(g, a.user, 1750000000)
    table, out = {}, []
    for ev in g.events:
        body = json.loads(ev["body"])
        poison_texts(body)
        text = inject(json.dumps(body), table)
        ev_id = json.loads(text)["id"]
        expect = "applied" if ev["type"] in HANDLED else "skipped"
        out.append(dict(ev, id=ev_id, body=text, expect=expect))
    return out


def bad(a, fx, plans):
    """One event per value that must be refused, each for its own user."""
    out = []
    for k, (what, inj) in enumerate([("user_id", INJECTIONS[0]), ("price", INJECTIONS[1]),
                                      ("credit_pack", INJECTIONS[2]), ("price_id", INJECTIONS[3]),
                                      ("type", INJECTIONS[4])]):
        g = se.Gen(fx, dict(plans), "inject-bad/%s/%d" % (a.seed, k), a.api_version)
        u = se.new_user(g, a.user, 1750000000)
        t = 1750000000 + k
        expect = "failed"
        if what == "user_id":
            meta = {"user_id": a.user + inj}
            g.event("checkout.session.completed",
                    g.checkout(u, "payment", t, g.sid("cs", 58), g.sid("pi", 24), metadata=dict(
                        meta, credit_pack="pack50")), t, what, a.user)
        elif what == "price":
            g.plans["inj"] = ("plan", "price_1" + inj, 0)
            g.event("customer.subscription.created",
                    g.subscription(u, "inj", "active", t, t + se.PERIOD), t, what, a.user)
        elif what in ("credit_pack", "price_id"):
            g.event("checkout.session.completed",
                    g.checkout(u, "payment", t, g.sid("cs", 58), g.sid("pi", 24),
                               metadata={"user_id": a.user, what: "pack50" + inj}), t, what,
                    a.user)
        else:
            g.event("invoice.paid" + inj, {"id": g.sid("in", 24), "object": "invoice"}, t, what,
                    a.user)
            expect = "skipped"
        out += [dict(ev, expect=expect) for ev in g.events]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["lifecycle", "bad", "ids"])
    ap.add_argument("--user")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--api-version", default=se.BASIL)
    ap.add_argument("--plans", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "..", "events", "plans.txt"))
    a = ap.parse_args()
    if a.what == "ids":
        for s in INJECTIONS:
            print(s)
        return
    fx, plans = se.load_fixtures(), se.load_plans(a.plans)
    for ev in (lifecycle if a.what == "lifecycle" else bad)(a, fx, plans):
        sys.stdout.write(json.dumps(ev) + "\n")


if __name__ == "__main__":
    main()
