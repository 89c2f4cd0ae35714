"""verify.py - what the chaos run must end with, and the figures it reports.

The database state that must not depend on delivery order, duplicates or
crashes (subscriptions, ledger sums by user and bucket, pack purchases and
their refunds, the customer map, each event's final status) is read the same
way from the chaos database and from the reference database, where the same
events were applied in order, once each, by the same worker; the two must be
equal line for line. Stream contents are read with a server-side script that
returns only the event ids, never the bodies.
"""
import collections
import subprocess

import services

# canceled subscriptions: the allowance left depends on what came before the end
STATE_QUERIES = {
    "subscriptions": """
        SELECT user_id || ' ' || status || ' ' || coalesce(plan, '-') || ' ' || credits_remaining
               || ' ' || overage_credits || ' ' || coalesce(stripe_subscription_id, '-') || ' '
               || coalesce(stripe_customer_id, '-') || ' ' ||
               CASE WHEN status IN ('canceled', 'incomplete_expired') THEN '-' ELSE
                 credits_total || ' ' || coalesce(credit_period_end::text, '-') || ' '
                 || coalesce(extract(epoch FROM current_period_end)::bigint::text, '-') || ' '
                 || cancel_at_period_end END
          FROM paystream.subscriptions ORDER BY 1""",
    "ledger sums": """
        SELECT user_id || ' ' || bucket || ' ' || sum(amount)
          FROM paystream.credit_transactions GROUP BY user_id, bucket ORDER BY 1""",
    "pack purchases": """
        SELECT checkout_session_id || ' ' || user_id || ' ' || pack_id || ' ' || credits || ' '
               || coalesce(payment_intent, '-') || ' ' || status
          FROM paystream.pack_purchases ORDER BY 1""",
    "payments": """
        SELECT payment || ' ' || user_id || ' ' || source || ' ' || reference || ' ' || granted
               || ' ' || amount || ' ' || refunded || ' ' || disputed || ' ' || due || ' '
               || taken || ' ' || uncollected
          FROM paystream.payments ORDER BY 1""",
    "customers": """
        SELECT stripe_customer_id || ' ' || user_id FROM paystream.customers ORDER BY 1""",
    "event statuses": """
        SELECT event_id || ' ' || status FROM paystream.webhook_events ORDER BY 1""",
}


def state(url):
    return {name: [r[0] for r in services.psql(url, q)] for name, q in STATE_QUERIES.items()}


def compare(chaos, ref, show=5):
    """Differences between two states, as printable lines (empty: equal)."""
    out = []
    for name in STATE_QUERIES:
        a, b = set(chaos[name]), set(ref[name])
        if a == b and len(chaos[name]) == len(ref[name]):
            continue
        out.append("%s: %d rows vs %d in the reference" % (name, len(chaos[name]), len(ref[name])))
        out += ["  only after chaos:   " + x for x in sorted(a - b)[:show]]
        out += ["  only in reference:  " + x for x in sorted(b - a)[:show]]
    return out


def totals(url):
    """(ledger rows, subscription credits, overage credits, users)"""
    r = services.psql(url, """
        SELECT (SELECT count(*) FROM paystream.credit_transactions),
               coalesce(sum(credits_remaining), 0), coalesce(sum(overage_credits), 0), count(*)
          FROM paystream.subscriptions""")[0]
    return tuple(int(x) for x in r)


def twice_written(url):
    """Stripe-made ledger rows written twice for one event (must be 0)."""
    return int(services.psql(url, """
        SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions
         WHERE event_id IS NOT NULL GROUP BY event_id, kind, bucket, reference
        HAVING count(*) > 1) d""")[0][0])


def reconcile(ctl, url):
    """(exit status, output) of paystreamctl reconcile."""
    out = subprocess.run([ctl, "reconcile"], capture_output=True, text=True, timeout=300,
                         env={"PAYSTREAM_DATABASE_URL": url, "PATH": "/usr/bin:/bin"})
    return out.returncode, (out.stdout + out.stderr).strip()


IDS_LUA = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local out = {'', #entries}
for _, e in ipairs(entries) do
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == 'id' then out[#out + 1] = f[i + 1] break end
  end
  out[1] = e[1]
end
return out
"""


def stream_ids(redis, stream, chunk=5000):
    """Counter of the event ids of a stream's entries."""
    ids, start = collections.Counter(), "-"
    while True:
        r = redis.call("EVAL", IDS_LUA, 1, stream, start, chunk)
        ids.update(x.decode() for x in r[2:])
        if r[1] < chunk:
            return ids
        start = "(" + r[0].decode()


def group_info(redis, stream, group):
    """(last generated id, last delivered id, pending, lag) of a stream and group."""
    info = services.as_dict(redis.call("XINFO", "STREAM", stream))
    for g in redis.call("XINFO", "GROUPS", stream):
        g = services.as_dict(g)
        if g["name"] == group.encode():
            return info["last-generated-id"], g["last-delivered-id"], g["pending"], g.get("lag")
    return info["last-generated-id"], None, None, None


def drained(redis, stream, group):
    last, delivered, pending, _ = group_info(redis, stream, group)
    return delivered is not None and last == delivered and pending == 0


def finished_events(url):
    return int(services.psql(url, """SELECT count(*) FROM paystream.webhook_events
        WHERE status IN ('applied', 'skipped', 'failed')""")[0][0])
