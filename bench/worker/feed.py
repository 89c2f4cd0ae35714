#!/usr/bin/env python3
"""feed.py - add events to a Redis stream at a steady Poisson-like rate.

The end-to-end latency part of bench/worker/run: like ingest after a 200,
each event is XADDed (id, type, body, received) the moment it is due, so the
entry id's milliseconds are the time the event entered the pipeline.

Usage: feed.py --port P --stream S --rate R --seconds T EVENTS.jsonl
Prints the achieved rate. Loopback only; stops after T seconds or when the
file runs out.
"""
import argparse
import json
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "events"))
from stripe_events import resp_cmd  # noqa: E402


def read_reply(f):
    line = f.readline()
    if not line or line[:1] == b"-":
        raise SystemExit("feed.py: Redis said %r" % line)
    if line[:1] == b"$":
        n = int(line[1:])
        f.read(n + 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("file")
    a = ap.parse_args()
    sock = socket.create_connection(("127.0.0.1", a.port))
    f = sock.makefile("rb")
    rng = random.Random(1)
    start = time.monotonic()
    due, sent = start, 0
    with open(a.file) as events:
        for line in events:
            now = time.monotonic()
            if now - start >= a.seconds:
                break
            if due > now:
                time.sleep(due - now)
            ev = json.loads(line)
            sock.sendall(resp_cmd("XADD", a.stream, "*", "id", ev["id"], "type", ev["type"],
                                  "body", ev["body"].encode(), "received",
                                  int(time.time() * 1000)))
            read_reply(f)
            sent += 1
            due += rng.expovariate(a.rate)
    elapsed = time.monotonic() - start
    print("%d %.0f" % (sent, sent / elapsed if elapsed > 0 else 0))
    sock.close()


if __name__ == "__main__":
    sys.exit(main())
