#!/usr/bin/env python3
"""stripe_events.py - realistic Stripe webhook events for paystream's end-to-end
tests and the worker bench (python3 standard library only).

Every data.object is a copy of the matching object in Stripe's public OpenAPI
fixtures (tests/fixtures/stripe-openapi-fixtures3.json), with only the
fields a scenario needs set, wrapped in the fixtures' event envelope. Two API
shapes: 2025-03-31.basil and later (the fixtures' own shape) and the earlier one
(e.g. 2024-06-20), converted from it. Output is deterministic for a seed.

  gen lifecycle --user UUID [--api-version V] [--no-cancel]   one subscriber's life
  gen poison [--api-version V]                unknown price/pack, unresolvable user
  gen many --users N [--api-version mixed] [--spread-days D]
                                              many lifecycles, interleaved by time
  gen renewal-day --users N [--packs K]       phase "setup": the users' sign-ups and
                                              upgrades; phase "day": events that each
                                              write the ledger (K pack purchases, the
                                              upgrade's invoice, the renewal)
  shuffle --seed N [--dups RATE]              a random delivery order with duplicates
  post --url URL --secret S [--phase P]       sign (Stripe-Signature) and POST each event
  resp [--stream KEY]                         XADD commands for `redis-cli --pipe`

Events are JSON lines {"id", "type", "phase", "user", "body"}; body is the exact
text that is signed and posted. Phases of a lifecycle, in order: signup, pack,
upgrade, renewal, refund, cancel. The plans file (--plans, paystreamctl format)
gives the price ids of the plans `basic` and `pro` and of the pack `pack50`.
"""
import argparse
import copy
import hashlib
import hmac
import http.client
import json
import os
import random
import sys
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BASIL = "2025-03-31.basil"
OLD_SHAPE = "2024-06-20"
DAY = 86400
PERIOD = 30 * DAY
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
AMOUNTS = {"basic": 900, "pro": 2900, "pack50": 1000}  # cents


# ------------------------------------------------------------------ inputs --

def load_fixtures(path=None):
    if path is None:
        path = os.path.join(HERE, "..", "fixtures", "stripe-openapi-fixtures3.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["resources"]


def load_plans(path):
    """{id: (kind, price, credits)} from a paystreamctl plans file."""
    plans = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if len(words) >= 4:
                plans[words[1]] = (words[0], words[2], int(words[3]))
    for need in ("basic", "pro", "pack50"):
        if need not in plans:
            sys.exit("stripe_events: plans file %s has no '%s'" % (path, need))
    return plans


# --------------------------------------------------------------- builders --

class Gen:
    """Builds objects and events for one seed; ids come from the seed's RNG."""

    def __init__(self, fixtures, plans, seed, api_version):
        self.fx = fixtures
        self.plans = plans
        self.rng = random.Random(seed)
        self.api = api_version
        self.events = []

    def sid(self, prefix, n=24):
        return prefix + "_1" + "".join(self.rng.choice(ALNUM) for _ in range(n - 1))

    def fixture(self, name):
        return copy.deepcopy(self.fx[name])

    def basil(self):
        return self.api >= "2025-03-31"

    def price(self, plan_id):
        """The fixture price, as Stripe expands it on items and lines."""
        kind, price_id, _ = self.plans[plan_id] if plan_id in self.plans else ("plan", plan_id, 0)
        p = self.fixture("price")
        p["id"] = price_id
        p["product"] = "prod_" + hashlib.sha1(price_id.encode()).hexdigest()[:14]
        p["nickname"] = plan_id
        p["unit_amount"] = AMOUNTS.get(plan_id, 1500)
        p["unit_amount_decimal"] = str(p["unit_amount"])
        p["created"] = 1700000000
        p["transform_quantity"] = None
        if kind == "pack":
            p["type"] = "one_time"
            p["recurring"] = None
        return p

    # -- envelope -----------------------------------------------------------

    def event(self, etype, obj, created, phase, user, previous=None):
        ev = self.fixture("event")
        ev["id"] = self.sid("evt", 24)
        ev["api_version"] = self.api
        ev["created"] = created
        ev["data"] = {"object": obj}
        if previous is not None:
            ev["data"]["previous_attributes"] = previous
        ev["livemode"] = False
        ev["pending_webhooks"] = 1
        ev["request"] = {"id": self.sid("req", 14), "idempotency_key": str(uuid.UUID(
            int=self.rng.getrandbits(128), version=4))}
        ev["type"] = etype
        body = json.dumps(ev)
        self.events.append({"id": ev["id"], "type": etype, "phase": phase, "user": user,
                            "created": created, "body": body})

    # -- objects ------------------------------------------------------------

    def customer(self, u):
        c = self.fixture("customer")
        c.update(id=u["customer"], created=u["t0"], email=u["email"], name="Test User",
                 discount=None, invoice_prefix=u["customer"][-7:].upper(),
                 metadata={"user_id": u["user"]})
        return c

    def checkout(self, u, mode, created, session_id, payment_intent=None, metadata=None):
        s = self.fixture("checkout.session")
        s.update(id=session_id, created=created, expires_at=created + DAY, mode=mode,
                 customer=u["customer"], customer_email=u["email"], status="complete",
                 payment_status="paid", client_reference_id=None, metadata=metadata or {},
                 payment_intent=payment_intent, url=None, shipping_cost=None,
                 shipping_address_collection=None, currency="usd", currency_conversion=None)
        s["customer_details"]["email"] = u["email"]
        s["after_expiration"] = None
        if mode == "subscription":
            s.update(subscription=u["subscription"], invoice=u["invoices"][0],
                     amount_subtotal=AMOUNTS["basic"], amount_total=AMOUNTS["basic"],
                     invoice_creation=None, payment_intent=None)
        else:
            s.update(subscription=None, amount_subtotal=AMOUNTS["pack50"],
                     amount_total=AMOUNTS["pack50"])
        s["total_details"] = {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        return s

    def subscription(self, u, plan, status, start, end, cancel=None, latest=0):
        s = self.fixture("subscription")
        item = s["items"]["data"][0]
        item.update(id=u["item"], created=u["t0"], subscription=u["subscription"],
                    price=self.price(plan), current_period_start=start, current_period_end=end)
        item["plan"] = dict(item["plan"], id=item["price"]["id"], amount=AMOUNTS.get(plan, 1500),
                            currency="usd", interval_count=1, product=item["price"]["product"])
        s["items"]["url"] = "/v1/subscription_items?subscription=" + u["subscription"]
        s.update(id=u["subscription"], customer=u["customer"], created=u["sub_created"],
                 start_date=u["sub_created"], billing_cycle_anchor=u["sub_created"],
                 billing_cycle_anchor_config=None, status=status,
                 metadata={"user_id": u["user"]}, latest_invoice=u["invoices"][latest],
                 cancel_at_period_end=False, cancel_at=None, canceled_at=None, ended_at=None,
                 trial_start=None, trial_end=None, pending_update=None, pause_collection=None,
                 next_pending_invoice_item_invoice=None, pending_invoice_item_interval=None,
                 transfer_data=None)
        if cancel is not None:
            s.update(canceled_at=cancel, ended_at=cancel,
                     cancellation_details={"comment": None, "feedback": "too_expensive",
                                           "reason": "cancellation_requested"})
        if not self.basil():
            # before basil: the period on the subscription, a top-level plan
            s["current_period_start"] = item.pop("current_period_start")
            s["current_period_end"] = item.pop("current_period_end")
            s["plan"] = copy.deepcopy(item["plan"])
            s["quantity"] = 1
            for k in ("billing_mode", "billing_schedules", "customer_account", "managed_payments"):
                s.pop(k, None)
        return s

    def line(self, u, invoice_id, plan, amount, start, end, proration, description):
        ln = self.fixture("line_item")
        price = self.price(plan)
        ln.update(id=self.sid("il", 24), invoice=invoice_id, amount=amount, subtotal=amount,
                  description=description, period={"start": start, "end": end},
                  subscription=u["subscription"], metadata={})
        ii = self.sid("ii", 24) if proration else None
        if self.basil():
            ln["parent"] = {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": ii, "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": u["subscription"], "subscription_item": u["item"]}}
            ln["pricing"] = {"type": "price_details",
                             "price_details": {"price": price["id"], "product": price["product"]},
                             "unit_amount_decimal": str(price["unit_amount"])}
        else:
            # before basil: line type, expanded price and plan, proration flag
            for k in ("parent", "pricing", "subtotal", "pretax_credit_amounts"):
                ln.pop(k, None)
            ln.update(type="invoiceitem" if proration else "subscription", price=price,
                      plan=dict(self.fixture("plan"), id=price["id"], amount=price["unit_amount"],
                                product=price["product"], interval="month", interval_count=1),
                      proration=proration, subscription_item=u["item"], invoice_item=ii,
                      unit_amount_excluding_tax=str(price["unit_amount"]))
        return ln

    def invoice(self, u, invoice_id, reason, created, lines, charge, payment_intent):
        inv = self.fixture("invoice")
        total = sum(ln["amount"] for ln in lines)
        inv["lines"]["data"] = lines
        inv["lines"]["url"] = "/v1/invoices/%s/lines" % invoice_id
        inv.update(id=invoice_id, customer=u["customer"], customer_email=u["email"],
                   billing_reason=reason, created=created, effective_at=created,
                   period_start=min(ln["period"]["start"] for ln in lines),
                   period_end=max(ln["period"]["end"] for ln in lines),
                   amount_due=total, amount_paid=total, amount_remaining=0, subtotal=total,
                   subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
                   status="paid", attempted=True, attempt_count=1, auto_advance=False,
                   number="%s-%04d" % (u["customer"][-7:].upper(), u["invoices"].index(invoice_id) + 1),
                   due_date=None, next_payment_attempt=None, from_invoice=None,
                   last_finalization_error=None, shipping_cost=None, amount_overpaid=0,
                   webhooks_delivered_at=created)
        inv["status_transitions"] = {"finalized_at": created, "marked_uncollectible_at": None,
                                     "paid_at": created, "voided_at": None}
        meta = {"user_id": u["user"]}
        if self.basil():
            inv.pop("subscription", None)
            inv["parent"] = {"type": "subscription_details", "quote_details": None,
                             "subscription_details": {"metadata": meta,
                                                      "subscription": u["subscription"]}}
        else:
            inv.pop("parent", None)
            inv.pop("customer_account", None)
            inv.update(subscription=u["subscription"], subscription_details={"metadata": meta},
                       paid=True, paid_out_of_band=False, charge=charge,
                       payment_intent=payment_intent)
        return inv

    def charge(self, u, charge_id, payment_intent, amount, refunded, created):
        c = self.fixture("charge")
        c.update(id=charge_id, amount=amount, amount_captured=amount, amount_refunded=refunded,
                 captured=True, created=created, customer=u["customer"], paid=True,
                 payment_intent=payment_intent, refunded=refunded == amount, status="succeeded",
                 description=None, receipt_email=u["email"], transfer_data=None, source=None,
                 balance_transaction=self.sid("txn", 24), metadata={})
        c["billing_details"]["email"] = u["email"]
        c["refunds"]["url"] = "/v1/charges/%s/refunds" % charge_id
        c["refunds"]["data"] = []
        if refunded:
            r = self.fixture("refund")
            r.update(id=self.sid("re", 24), amount=refunded, charge=charge_id, created=created,
                     payment_intent=payment_intent, reason="requested_by_customer",
                     balance_transaction=self.sid("txn", 24))
            c["refunds"]["data"].append(r)
        if not self.basil():
            c["invoice"] = None
        return c

    def payment_intent(self, u, pi_id, amount, created, charge_id):
        p = self.fixture("payment_intent")
        p.update(id=pi_id, amount=amount, amount_received=amount, amount_capturable=0,
                 created=created, customer=u["customer"], status="succeeded",
                 latest_charge=charge_id, client_secret=pi_id + "_secret_" + self.sid("x", 12)[3:],
                 metadata={}, description=None)
        return p


# -------------------------------------------------------------- scenarios --

def new_user(g, user, t0):
    u = {"user": user, "t0": t0, "customer": g.sid("cus", 14)[:18],
         "subscription": g.sid("sub", 24), "item": g.sid("si", 14)[:17],
         "invoices": [g.sid("in", 24) for _ in range(3)], "sub_created": t0 + 2}
    u["email"] = "user-%s@example.com" % user[:8]
    return u


def lifecycle(g, user, t0, cancel=True):
    """One subscriber's life, events in `created` order (see the module doc)."""
    u = new_user(g, user, t0)
    e, uid = g.event, u["user"]
    p1s = u["sub_created"]
    p1e, p2e = p1s + PERIOD, p1s + 2 * PERIOD
    # signup: subscription checkout, created (incomplete) then active, first invoice
    e("customer.created", g.customer(u), t0, "signup", uid)
    # all within one second, as Stripe does it: same-second ties between the
    # subscription's states must go to the later stage (active)
    ts = t0 + 3
    e("checkout.session.completed",
      g.checkout(u, "subscription", t0 + 1, g.sid("cs", 58), metadata={"user_id": uid}),
      ts, "signup", uid)
    e("customer.subscription.created", g.subscription(u, "basic", "incomplete", p1s, p1e),
      ts, "signup", uid)
    inv1 = g.invoice(u, u["invoices"][0], "subscription_create", ts,
                     [g.line(u, u["invoices"][0], "basic", AMOUNTS["basic"], p1s, p1e, False,
                             "1 × Basic monthly (at $9.00 / month)")],
                     g.sid("ch", 24), g.sid("pi", 24))
    e("invoice.paid", inv1, ts, "signup", uid)
    e("invoice.payment_succeeded", inv1, ts, "signup", uid)
    e("customer.subscription.updated", g.subscription(u, "basic", "active", p1s, p1e),
      ts, "signup", uid, previous={"status": "incomplete"})
    # a credit pack
    tp = t0 + 3 * DAY
    cs_pack, pi_pack, ch_pack = g.sid("cs", 58), g.sid("pi", 24), g.sid("ch", 24)
    e("checkout.session.completed",
      g.checkout(u, "payment", tp, cs_pack, pi_pack,
                 metadata={"user_id": uid, "credit_pack": "pack50"}), tp, "pack", uid)
    e("payment_intent.succeeded", g.payment_intent(u, pi_pack, AMOUNTS["pack50"], tp, ch_pack),
      tp, "pack", uid)
    e("charge.succeeded", g.charge(u, ch_pack, pi_pack, AMOUNTS["pack50"], 0, tp), tp, "pack", uid)
    # upgrade basic -> pro in the first period, with its proration invoice
    tu = t0 + 10 * DAY
    unused = -(AMOUNTS["basic"] * (p1e - tu) // PERIOD)
    remaining = AMOUNTS["pro"] * (p1e - tu) // PERIOD
    e("customer.subscription.updated", g.subscription(u, "pro", "active", p1s, p1e, latest=1), tu,
      "upgrade", uid, previous={"items": {"data": [{"price": {"id": g.plans["basic"][1]}}]}})
    inv2 = g.invoice(u, u["invoices"][1], "subscription_update", tu,
                     [g.line(u, u["invoices"][1], "basic", unused, tu, p1e, True,
                             "Unused time on Basic monthly after upgrade"),
                      g.line(u, u["invoices"][1], "pro", remaining, tu, p1e, True,
                             "Remaining time on Pro monthly after upgrade")],
                     g.sid("ch", 24), g.sid("pi", 24))
    e("invoice.paid", inv2, tu + 1, "upgrade", uid)
    e("invoice.payment_succeeded", inv2, tu + 1, "upgrade", uid)
    # renewal: the next period
    e("customer.subscription.updated", g.subscription(u, "pro", "active", p1e, p2e, latest=2), p1e,
      "renewal", uid, previous={"current_period_end": p1e} if not g.basil() else
      {"items": {"data": [{"current_period_end": p1e, "current_period_start": p1s}]}})
    inv3 = g.invoice(u, u["invoices"][2], "subscription_cycle", p1e,
                     [g.line(u, u["invoices"][2], "pro", AMOUNTS["pro"], p1e, p2e, False,
                             "1 × Pro monthly (at $29.00 / month)")],
                     g.sid("ch", 24), g.sid("pi", 24))
    e("invoice.paid", inv3, p1e + 3600, "renewal", uid)
    e("invoice.payment_succeeded", inv3, p1e + 3600, "renewal", uid)
    # half of the pack refunded
    tr = p1e + 2 * DAY
    e("charge.refunded", g.charge(u, ch_pack, pi_pack, AMOUNTS["pack50"], AMOUNTS["pack50"] // 2,
                                  tr), tr, "refund", uid, previous={"amount_refunded": 0})
    if cancel:
        tc = p1e + 5 * DAY
        e("customer.subscription.deleted",
          g.subscription(u, "pro", "canceled", p1e, p2e, cancel=tc, latest=2), tc, "cancel", uid)
    return u


# The events of a lifecycle that each write the ledger: a renewal day's
# traffic. What they need first (the sign-up, the upgraded subscription) is
# the "setup" phase.
DAY_EVENTS = {("pack", "checkout.session.completed"), ("upgrade", "invoice.paid"),
              ("renewal", "customer.subscription.updated"), ("renewal", "invoice.paid")}
SETUP_EVENTS = {("upgrade", "customer.subscription.updated")}


def renewal_day(g, user, t0, packs):
    """One subscriber's setup and day events; packs >= 1 pack purchases."""
    u = lifecycle(g, user, t0, cancel=False)
    kept = []
    for ev in g.events:
        key = (ev["phase"], ev["type"])
        if key in DAY_EVENTS:
            kept.append(dict(ev, phase="day"))
        elif ev["phase"] == "signup" or key in SETUP_EVENTS:
            kept.append(dict(ev, phase="setup"))
    g.events = kept
    for i in range(1, packs):
        tp = t0 + 3 * DAY + 600 * i
        g.event("checkout.session.completed",
                g.checkout(u, "payment", tp, g.sid("cs", 58), g.sid("pi", 24),
                           metadata={"user_id": user, "credit_pack": "pack50"}), tp, "day", user)


def poison(g, t0):
    """Events that can never apply: each fails for a reason the test checks."""
    # a subscription on a price no plan has
    u = new_user(g, str(uuid.UUID(int=g.rng.getrandbits(128), version=4)), t0)
    g.plans["unknown"] = ("plan", "price_1PgafmB7WZ01zgkWNoSuchPr", 0)
    g.event("customer.subscription.created",
            g.subscription(u, "unknown", "active", t0, t0 + PERIOD), t0, "unknown_price",
            u["user"])
    # a credit pack nobody defined
    u = new_user(g, str(uuid.UUID(int=g.rng.getrandbits(128), version=4)), t0)
    g.event("checkout.session.completed",
            g.checkout(u, "payment", t0, g.sid("cs", 58), g.sid("pi", 24),
                       metadata={"user_id": u["user"], "credit_pack": "pack_nosuch"}),
            t0, "unknown_pack", u["user"])
    # an invoice of a customer and subscription nothing ever maps to a user
    u = new_user(g, str(uuid.UUID(int=g.rng.getrandbits(128), version=4)), t0)
    inv = g.invoice(u, u["invoices"][0], "subscription_cycle", t0,
                    [g.line(u, u["invoices"][0], "basic", AMOUNTS["basic"], t0, t0 + PERIOD, False,
                            "1 × Basic monthly")], g.sid("ch", 24), g.sid("pi", 24))
    inv["parent" if g.basil() else "subscription_details"] = (
        {"type": "subscription_details", "quote_details": None,
         "subscription_details": {"metadata": {}, "subscription": u["subscription"]}}
        if g.basil() else {"metadata": {}})
    g.event("invoice.paid", inv, t0, "no_user", "")


# -------------------------------------------------------------- commands --

def user_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def cmd_gen(a):
    fx, plans = load_fixtures(a.fixtures), load_plans(a.plans)
    t0 = a.t0
    if a.scenario == "lifecycle":
        g = Gen(fx, plans, a.seed, a.api_version)
        lifecycle(g, a.user or user_uuid(g.rng), t0, cancel=not a.no_cancel)
        events = g.events
    elif a.scenario == "poison":
        g = Gen(fx, plans, a.seed, a.api_version)
        poison(g, t0)
        events = g.events
    else:  # many users, each starting at its own time; all sorted by created
        rng = random.Random(a.seed)
        events = []
        for i in range(a.users):
            api = a.api_version
            if api == "mixed":
                api = BASIL if i % 2 == 0 else OLD_SHAPE
            g = Gen(fx, plans, "%s/%d" % (a.seed, i), api)
            start = t0 + rng.randrange(0, a.spread_days * DAY)
            if a.scenario == "renewal-day":
                renewal_day(g, user_uuid(rng), start, a.packs)
            else:
                lifecycle(g, user_uuid(rng), start, cancel=i % 3 == 0)
            events.extend(g.events)
        events.sort(key=lambda ev: ev["created"])
    out = sys.stdout
    for ev in events[:a.limit] if a.limit else events:
        out.write(json.dumps(ev) + "\n")


def read_events(path, phases=None):
    """The events of a JSON-lines file (or stdin), only of `phases` if given."""
    f = open(path, encoding="utf-8") if path and path != "-" else sys.stdin
    events = [json.loads(line) for line in f if line.strip()]
    if phases:
        events = [ev for ev in events if ev["phase"] in phases.split(",")]
    return events


def cmd_shuffle(a):
    rng = random.Random(a.seed)
    events = read_events(a.file)
    out = list(events) + [ev for ev in events if rng.random() < a.dups]
    rng.shuffle(out)
    for ev in out:
        sys.stdout.write(json.dumps(ev) + "\n")


def sign(secret, t, body):
    mac = hmac.new(secret.encode(), ("%d." % t).encode() + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def cmd_post(a):
    url = urllib.parse.urlsplit(a.url)
    conn = None
    posted = 0
    retried = {}
    start = time.monotonic()
    for ev in read_events(a.file, a.phase):
        if a.rate:
            time.sleep(max(0.0, start + posted / a.rate - time.monotonic()))
        body = ev["body"].encode()
        for attempt in range(a.retries + 1):
            headers = {"Content-Type": "application/json; charset=utf-8",
                       "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                       "Stripe-Signature": sign(a.secret, int(time.time()), body)}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                conn.request("POST", url.path or "/", body, headers)
                resp = conn.getresponse()
                text = resp.read().decode(errors="replace")
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as ex:
                status, text = 0, str(ex)
                if conn is not None:
                    conn.close()
                conn = None
            if status == 200:
                break
            # like Stripe: a 5xx or a lost connection is retried later
            if status not in (0, 502, 503, 504) or attempt == a.retries:
                sys.exit("stripe_events: POST %s (%s) -> %s %s" % (ev["id"], ev["type"], status,
                                                                  text.strip()))
            retried[status] = retried.get(status, 0) + 1
            time.sleep(min(2.0, 0.1 * 2 ** attempt))
        posted += 1
    if conn is not None:
        conn.close()
    if a.verbose or retried:
        print("posted %d events; retried: %s" % (posted, " ".join(
            "%s×%d" % (st or "no-answer", n) for st, n in sorted(retried.items())) or "none"),
            file=sys.stderr)


def resp_cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for x in args:
        x = x if isinstance(x, bytes) else str(x).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(parts)


def cmd_resp(a):
    out = sys.stdout.buffer
    now = int(time.time() * 1000)
    for ev in read_events(a.file, a.phase):
        out.write(resp_cmd("XADD", a.stream, "*", "id", ev["id"], "type", ev["type"],
                           "body", ev["body"].encode(), "received", now))


def days(text):
    """--spread-days: a whole number of days, at least 1"""
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1 day, not %d" % n)
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen", help="generate events (JSON lines on stdout)")
    g.add_argument("scenario", choices=["lifecycle", "poison", "many", "renewal-day"])
    g.add_argument("--seed", default="1")
    g.add_argument("--user", help="user uuid (lifecycle; default: from the seed)")
    g.add_argument("--users", type=int, default=100, help="users (many)")
    g.add_argument("--api-version", default=BASIL, help="%s, %s, ... or mixed (many)" %
                   (BASIL, OLD_SHAPE))
    g.add_argument("--no-cancel", action="store_true", help="lifecycle without cancellation")
    g.add_argument("--packs", type=int, default=1, help="pack purchases per user (renewal-day)")
    g.add_argument("--spread-days", type=days, default=20,
                   help="many: users' lives start over this many days (a life lasts 35): "
                   "over 20 the first events are sign-ups and the last renewals, refunds and "
                   "cancels; over 350, cut with --limit, the mix is the same from the first "
                   "tenth on, as a service with users at every stage sees it")
    g.add_argument("--limit", type=int, help="at most this many events (the first by time)")
    g.add_argument("--t0", type=int, default=1750000000, help="created time of the first event")
    g.add_argument("--plans", default=os.path.join(HERE, "plans.txt"))
    g.add_argument("--fixtures")
    s = sub.add_parser("shuffle", help="random order with random duplicates")
    s.add_argument("--seed", default="1")
    s.add_argument("--dups", type=float, default=0.3, help="share of events delivered twice")
    s.add_argument("file", nargs="?")
    p = sub.add_parser("post", help="sign and POST each event")
    p.add_argument("--url", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--phase", help="only these phases (comma-separated)")
    p.add_argument("--retries", type=int, default=30, help="retries of a 5xx or lost connection")
    p.add_argument("--rate", type=float, help="events per second at most")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("file", nargs="?")
    r = sub.add_parser("resp", help="XADD commands in the Redis protocol, for redis-cli --pipe")
    r.add_argument("--stream", default="paystream:events")
    r.add_argument("--phase", help="only these phases (comma-separated)")
    r.add_argument("file", nargs="?")
    a = ap.parse_args()
    {"gen": cmd_gen, "shuffle": cmd_shuffle, "post": cmd_post, "resp": cmd_resp}[a.cmd](a)


if __name__ == "__main__":
    main()
