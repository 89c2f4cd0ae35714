#!/usr/bin/env python3
"""gen_events.py - a pool of signed Stripe webhook deliveries for bench/ingest.

Each delivery is a real Stripe object (checkout.session, invoice, subscription
from the OpenAPI fixtures in tests/fixtures) wrapped in the event envelope
Stripe sends, pretty-printed (one-space indent: see INDENT), with a unique
evt_ id, and signed the way Stripe signs: Stripe-Signature: t=<now>,v1=<hex
HMAC-SHA256 keyed with the whole whsec_ secret over "<t>.<body>">.

Output (read by post.lua), one record per delivery:
    <Stripe-Signature header value>\\n<body length in bytes>\\n<body>\\n

Usage: gen_events.py FIXTURES_JSON SECRET COUNT OUT [--now T]
"""
import argparse
import copy
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import time

KINDS = [
    # (fixture resource, event types Stripe sends for it)
    ("checkout.session", ["checkout.session.completed", "checkout.session.async_payment_succeeded"]),
    ("invoice", ["invoice.paid", "invoice.payment_succeeded", "invoice.finalized"]),
    ("subscription", ["customer.subscription.created", "customer.subscription.updated"]),
]
API_VERSION = "2024-06-20"
# Stripe pretty-prints with two spaces; one space keeps the same multi-line shape
# while holding these fixtures inside the 3-6 KB a typical delivery has (4.4-6.0 KB).
INDENT = 1

ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def rid(rng, prefix, n=24):
    return prefix + "".join(rng.choice(ALNUM) for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixtures")
    ap.add_argument("secret")
    ap.add_argument("count", type=int)
    ap.add_argument("out")
    ap.add_argument("--now", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()

    with open(a.fixtures, "rb") as f:
        resources = json.load(f)["resources"]
    rng = random.Random(a.seed if a.seed is not None else os.getpid() ^ time.time_ns())
    now = a.now if a.now is not None else int(time.time())
    key = a.secret.encode()

    sizes = []
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as out:
        for i in range(a.count):
            res, types = KINDS[i % len(KINDS)]
            obj = copy.deepcopy(resources[res])
            # Distinct objects and customers, as a real stream has.
            prefix = obj["id"].split("_")[0] + "_"
            obj["id"] = rid(rng, prefix, 14 if prefix == "cs_" else 24)
            if isinstance(obj.get("customer"), str):
                obj["customer"] = rid(rng, "cus_", 14)
            created = now - rng.randint(0, 3600)
            obj["created"] = created
            event = {
                "id": rid(rng, "evt_"),
                "object": "event",
                "api_version": API_VERSION,
                "created": now - rng.randint(0, 5),
                "data": {"object": obj},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": rid(rng, "req_", 14), "idempotency_key": rid(rng, "", 32)},
                "type": rng.choice(types),
            }
            body = json.dumps(event, indent=INDENT).encode()
            mac = hmac.new(key, str(now).encode() + b"." + body, hashlib.sha256).hexdigest()
            out.write(f"t={now},v1={mac}\n{len(body)}\n".encode())
            out.write(body)
            out.write(b"\n")
            sizes.append(len(body))
    os.replace(tmp, a.out)
    print(
        f"{a.count} signed events, bodies {min(sizes)}..{max(sizes)} B "
        f"(median {int(statistics.median(sizes))} B), t={now}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
