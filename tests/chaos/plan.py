"""plan.py - the chaos run's events and the order in which they are delivered.

Events come from tests/events/stripe_events.py's builders (real Stripe objects
from the OpenAPI fixtures, both API shapes); this file only composes them into
varied lives (start plan, upgrade or not, 1-3 renewals, 0-2 credit packs, some
paid asynchronously, none/partial/full/two-step refunds, cancellation at once or
at the period's end), a few poison events (unknown price, unknown pack, a
user nothing maps to), and a few events that must wait for another (SPEC 3): a
pack's refund sent before its purchase, an invoice that names no user sent
before the events that map its customer. The delivery plan sends every event
twice, in a shuffled order, and marks some deliveries to be sent late (always
the ones waited for). Everything follows the seed.
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events"))
import stripe_events as se  # noqa: E402

DAY, PERIOD, AMOUNTS = se.DAY, se.PERIOD, se.AMOUNTS


# ------------------------------------------------------------------ lives --

def signup(g, u, plan):
    """Subscription checkout, created (incomplete), first invoice, active: one second."""
    e, uid, ts = g.event, u["user"], u["t0"] + 3
    p1s = u["sub_created"]
    e("customer.created", g.customer(u), u["t0"], "signup", uid)
    e("checkout.session.completed",
      g.checkout(u, "subscription", u["t0"] + 1, g.sid("cs", 58), metadata={"user_id": uid}),
      ts, "signup", uid)
    e("customer.subscription.created", g.subscription(u, plan, "incomplete", p1s, p1s + PERIOD),
      ts, "signup", uid)
    inv = g.invoice(u, u["invoices"][0], "subscription_create", ts,
                    [g.line(u, u["invoices"][0], plan, AMOUNTS[plan], p1s, p1s + PERIOD, False,
                            "1 × %s monthly" % plan)], g.sid("ch", 24), g.sid("pi", 24))
    e("invoice.paid", inv, ts, "signup", uid)
    e("invoice.payment_succeeded", inv, ts, "signup", uid)
    e("customer.subscription.updated", g.subscription(u, plan, "active", p1s, p1s + PERIOD),
      ts, "signup", uid, previous={"status": "incomplete"})


def pack(g, rng, u, t, last):
    """A credit pack bought at t, maybe paid asynchronously, maybe refunded before `last`."""
    e, uid = g.event, u["user"]
    cs, pi, ch = g.sid("cs", 58), g.sid("pi", 24), g.sid("ch", 24)
    meta = {"user_id": uid}
    if rng.random() < 0.3:
        meta["price_id"] = g.plans["pack50"][1]  # the other way the app may name a pack
    else:
        meta["credit_pack"] = "pack50"
    session = g.checkout(u, "payment", t, cs, pi, metadata=meta)
    if rng.random() < 0.15:
        session["payment_status"] = "unpaid"
        e("checkout.session.completed", session, t, "pack", uid)
        session = dict(session, payment_status="paid")
        t += 2 * DAY
        e("checkout.session.async_payment_succeeded", session, t, "pack", uid)
    else:
        e("checkout.session.completed", session, t, "pack", uid)
    amount = AMOUNTS["pack50"]
    e("payment_intent.succeeded", g.payment_intent(u, pi, amount, t, ch), t, "pack", uid)
    e("charge.succeeded", g.charge(u, ch, pi, amount, 0, t), t, "pack", uid)
    refunds = rng.choice([[], [], [amount // 2], [amount], [amount * 3 // 10, amount]])
    before = 0
    for k, refunded in enumerate(refunds):
        tr = t + (k + 1) * (last - t) // (len(refunds) + 1)
        e("charge.refunded", g.charge(u, ch, pi, amount, refunded, tr), tr, "refund", uid,
          previous={"amount_refunded": before})
        before = refunded


def upgrade(g, u, t, p_start, p_end):
    """basic -> pro within a period, with its proration invoice."""
    e, uid = g.event, u["user"]
    unused = -(AMOUNTS["basic"] * (p_end - t) // PERIOD)
    remaining = AMOUNTS["pro"] * (p_end - t) // PERIOD
    e("customer.subscription.updated", g.subscription(u, "pro", "active", p_start, p_end, latest=1),
      t, "upgrade", uid, previous={"items": {"data": [{"price": {"id": g.plans["basic"][1]}}]}})
    inv_id = u["invoices"][1]
    inv = g.invoice(u, inv_id, "subscription_update", t,
                    [g.line(u, inv_id, "basic", unused, t, p_end, True, "Unused time on Basic"),
                     g.line(u, inv_id, "pro", remaining, t, p_end, True, "Remaining time on Pro")],
                    g.sid("ch", 24), g.sid("pi", 24))
    e("invoice.paid", inv, t + 1, "upgrade", uid)
    e("invoice.payment_succeeded", inv, t + 1, "upgrade", uid)


def renewal(g, u, plan, k, p_start, p_end):
    """The subscription moves to [p_start, p_end) and its cycle invoice is paid."""
    e, uid = g.event, u["user"]
    prev = ({"items": {"data": [{"current_period_end": p_start}]}} if g.basil()
            else {"current_period_end": p_start})
    e("customer.subscription.updated",
      g.subscription(u, plan, "active", p_start, p_end, latest=k), p_start, "renewal", uid,
      previous=prev)
    inv_id = u["invoices"][k]
    inv = g.invoice(u, inv_id, "subscription_cycle", p_start,
                    [g.line(u, inv_id, plan, AMOUNTS[plan], p_start, p_end, False,
                            "1 × %s monthly" % plan)], g.sid("ch", 24), g.sid("pi", 24))
    e("invoice.paid", inv, p_start + 3600, "renewal", uid)
    e("invoice.payment_succeeded", inv, p_start + 3600, "renewal", uid)


def cancel(g, rng, u, plan, k, p_start, p_end):
    """Canceled at once, or first marked cancel_at_period_end and ended at the period's end."""
    e, uid = g.event, u["user"]
    if rng.random() < 0.5:
        s = g.subscription(u, plan, "active", p_start, p_end, latest=k)
        s["cancel_at_period_end"] = True
        s["cancel_at"] = p_end
        e("customer.subscription.updated", s, p_start + 4 * DAY, "cancel", uid,
          previous={"cancel_at_period_end": False})
        tc = p_end
    else:
        tc = p_start + 5 * DAY
    e("customer.subscription.deleted",
      g.subscription(u, plan, "canceled", p_start, p_end, cancel=tc, latest=k), tc, "cancel", uid)


def life(g, rng, user, t0):
    """One subscriber's varied life; its events are appended to g.events."""
    renewals = rng.randint(1, 3)
    u = se.new_user(g, user, t0)
    u["invoices"] = [g.sid("in", 24) for _ in range(2 + renewals)]
    plan = "basic" if rng.random() < 0.7 else "pro"
    signup(g, u, plan)
    start = u["sub_created"]
    ends = [start + (k + 1) * PERIOD for k in range(renewals + 1)]
    if plan == "basic" and rng.random() < 0.5:
        upgrade(g, u, t0 + rng.randint(5, 20) * DAY, start, ends[0])
        plan = "pro"
    last = ends[-2] + 2 * DAY
    for _ in range(rng.choice([0, 1, 1, 2])):
        pack(g, rng, u, t0 + rng.randint(1, 25) * DAY, last)
    for k in range(renewals):
        renewal(g, u, plan, 2 + k, ends[k], ends[k + 1])
    if rng.random() < 0.35:
        cancel(g, rng, u, plan, 1 + renewals, ends[-2], ends[-1])


def waiters(g, u):
    """(events that wait, the events they wait for) of one user: an invoice
    whose user only its customer's checkout tells, and a pack's refund."""
    e, uid, ts, p1s = g.event, u["user"], u["t0"] + 3, u["sub_created"]
    e("checkout.session.completed",
      g.checkout(u, "subscription", u["t0"] + 1, g.sid("cs", 58), metadata={"user_id": uid}),
      u["t0"] + 1, "signup", uid)
    e("customer.subscription.created", g.subscription(u, "basic", "active", p1s, p1s + PERIOD),
      u["t0"] + 2, "signup", uid)
    inv = g.invoice(u, u["invoices"][0], "subscription_create", ts,
                    [g.line(u, u["invoices"][0], "basic", AMOUNTS["basic"], p1s, p1s + PERIOD,
                            False, "1 × basic monthly")], g.sid("ch", 24), g.sid("pi", 24))
    inv["parent" if g.basil() else "subscription_details"] = (  # no user named, as in poison()
        {"type": "subscription_details", "quote_details": None,
         "subscription_details": {"metadata": {}, "subscription": u["subscription"]}}
        if g.basil() else {"metadata": {}})
    e("invoice.paid", inv, ts, "wait", uid)
    tp = u["t0"] + DAY
    cs, pi, ch = g.sid("cs", 58), g.sid("pi", 24), g.sid("ch", 24)
    e("checkout.session.completed",
      g.checkout(u, "payment", tp, cs, pi, metadata={"user_id": uid, "credit_pack": "pack50"}),
      tp, "pack", uid)
    e("charge.refunded", g.charge(u, ch, pi, AMOUNTS["pack50"], AMOUNTS["pack50"] // 2, tp + DAY),
      tp + DAY, "wait", uid, previous={"amount_refunded": 0})
    return ([ev for ev in g.events if ev["phase"] == "wait"],
            [ev for ev in g.events if ev["phase"] != "wait"])


# ----------------------------------------------------------------- events --

def make_events(target, seed, plans_path, fixtures_path=None):
    """(events in `created` order, poison events, lives, (waiting events, the
    events they wait for)): lives until `target` events."""
    fx, plans = se.load_fixtures(fixtures_path), se.load_plans(plans_path)
    rng = random.Random("chaos/%s" % seed)
    events, i = [], 0
    while len(events) < target:
        api = se.BASIL if i % 2 == 0 else se.OLD_SHAPE
        g = se.Gen(fx, plans, "chaos/%s/%d" % (seed, i), api)
        life(g, random.Random("chaos/%s/life/%d" % (seed, i)), se.user_uuid(rng),
             1750000000 + rng.randrange(0, 20 * DAY))
        events.extend(g.events)
        i += 1
    events.sort(key=lambda ev: ev["created"])
    poison = []
    for k in range(max(1, target // 10000)):
        g = se.Gen(fx, dict(plans), "chaos/%s/poison/%d" % (seed, k),
                   se.BASIL if k % 2 == 0 else se.OLD_SHAPE)
        se.poison(g, 1750000000 + k)
        poison.extend(g.events)
    waiting = ([], [])
    for k in range(max(1, target // 2000)):
        g = se.Gen(fx, plans, "chaos/%s/wait/%d" % (seed, k), se.BASIL if k % 2 else se.OLD_SHAPE)
        w, pre = waiters(g, se.new_user(g, se.user_uuid(rng), 1750000000 + rng.randrange(0, DAY)))
        waiting[0].extend(w)
        waiting[1].extend(pre)
    events.extend(waiting[0] + waiting[1])
    events.sort(key=lambda ev: ev["created"])
    return events, poison, i, waiting


# --------------------------------------------------------------- delivery --

def delivery_plan(events, poison, seed, late_share=0.02, waited_for=()):
    """Deliveries (event, copy, late) in sending order: every event twice.

    Stripe's disorder is local (what happened in the same minutes arrives
    mixed) plus late retries: each first copy moves up to `window` places, the
    second copy up to four windows, and `late_share` of the deliveries are held
    back (sent late by the poster). Poison events go out early, never late, so
    that their retries run out while the rest is still being sent. The events
    in `waited_for` are always sent late, so that what waits for them comes first.
    """
    rng = random.Random("chaos/%s/order" % seed)
    n = len(events)
    window = max(200, n // 50)
    keyed, held = [], {ev["id"] for ev in waited_for}
    for i, ev in enumerate(events):
        keyed.append((i + rng.uniform(0, window), ev, 1, rng.random() < late_share or ev["id"] in held))
        keyed.append((i + rng.uniform(0, 4 * window), ev, 2,
                      rng.random() < late_share or ev["id"] in held))
    for ev in poison:
        for copy in (1, 2):
            keyed.append((rng.uniform(0, max(1, n // 20)), ev, copy, False))
    keyed.sort(key=lambda k: k[0])
    return [(ev, copy, late) for _, ev, copy, late in keyed]
