#!/usr/bin/env python3
"""pool.py - signed HTTP requests for pace.c, from stripe_events.py's JSON lines.

Each event becomes one complete HTTP/1.1 POST with the Stripe-Signature header
Stripe would send (t=<now>, v1=HMAC-SHA256 of "<t>.<body>" keyed with the
secret), signed now: send the pool within PAYSTREAM_TOLERANCE seconds.

Output records, one per event: "<evt_id> <request length>\\n<request bytes>".
Usage: pool.py EVENTS_JSONL SECRET HOST:PORT PATH OUT [--first I] [--count N]
"""
import argparse
import hashlib
import hmac
import json
import time


def request(host, path, secret, t, body):
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    head = ("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
            "Content-Type: application/json; charset=utf-8\r\nStripe-Signature: t=%d,v1=%s\r\n"
            "Content-Length: %d\r\n\r\n" % (path, host, t, mac, len(body)))
    return head.encode() + body


def main():
    ap = argparse.ArgumentParser()
    for name in ("events", "secret", "host", "path", "out"):
        ap.add_argument(name)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int)
    a = ap.parse_args()
    t = int(time.time())
    with open(a.events, encoding="utf-8") as f, open(a.out, "wb") as out:
        for i, line in enumerate(f):
            if i < a.first:
                continue
            if a.count is not None and i >= a.first + a.count:
                break
            ev = json.loads(line)
            req = request(a.host, a.path, a.secret, t, ev["body"].encode())
            out.write(b"%s %d\n" % (ev["id"].encode(), len(req)) + req)


if __name__ == "__main__":
    main()
