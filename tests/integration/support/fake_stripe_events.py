#!/usr/bin/env python3
"""fake_stripe_events.py - Stripe's `GET /v1/events`, faked for the backfill tests.

Serves the event objects of JSON-lines files (stripe_events.py gen: each line's
`body` is the whole event) on 127.0.0.1, as Stripe's API lists them: newest
first (created, then id), `limit` (1-100, default 10), `created[gte]`,
`created[lte]`, `starting_after`, `has_more`. Checks `Authorization: Bearer
KEY` (401 with Stripe's error shape otherwise, the key's tail in the message as
Stripe puts it). Serves HTTPS with --tls-cert/--tls-key. Can fail the first N requests (429 with Retry-After by
default, or another status, with or without Stripe-Should-Retry). Any other
path or method is a 404. Each request is logged to --log as one JSON line
(path, query, status, time) so tests can check the paging. Writes its port to
--port-file once listening; stops on SIGTERM. A page once rendered is answered
again from memory (the bench then measures paystreamctl, not this server).
"""
import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def load(paths):
    events = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    body = rec["body"]
                    ev = json.loads(body) if isinstance(body, str) else body
                    events[ev["id"]] = ev
    return sorted(events.values(), key=lambda e: (e["created"], e["id"]), reverse=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # the request log below is the record
        pass

    def reply(self, status, obj, headers=()):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        srv = self.server
        with srv.lock:
            srv.log.write(json.dumps({"t": time.time(), "method": self.command,
                                      "path": urlsplit(self.path).path,
                                      "query": urlsplit(self.path).query, "status": status}) + "\n")
            srv.log.flush()

    def error(self, status, message, headers=()):
        self.reply(status, {"error": {"message": message, "type": "invalid_request_error"}},
                   headers)

    def do_GET(self):
        srv = self.server
        url = urlsplit(self.path)
        if url.path != "/v1/events":
            return self.error(404, "Unrecognized request URL (GET: %s)" % url.path)
        if self.headers.get("Authorization") != "Bearer " + srv.key:
            got = (self.headers.get("Authorization") or "").replace("Bearer ", "")
            return self.error(401, "Invalid API Key provided: %s****%s" % (got[:8], got[-4:]))
        with srv.lock:
            fail = srv.failures_left > 0
            srv.failures_left -= 1 if fail else 0
        if fail:
            headers = []
            if srv.a.fail_status == 429 and srv.a.retry_after is not None:
                headers.append(("Retry-After", str(srv.a.retry_after)))
            if srv.a.should_retry:
                headers.append(("Stripe-Should-Retry", srv.a.should_retry))
            return self.error(srv.a.fail_status, "Fake failure", headers)
        cached = srv.pages.get(url.query)
        if cached is not None:
            return self.reply(200, cached)
        self.list_events(url.query, parse_qs(url.query, keep_blank_values=True))

    def do_POST(self):
        self.error(404, "only GET /v1/events here")

    def list_events(self, query, q):
        def num(name, default=None):
            return int(q[name][0]) if name in q else default
        try:
            limit, gte, lte = num("limit", 10), num("created[gte]"), num("created[lte]")
        except ValueError:
            return self.error(400, "Invalid integer")
        if not 1 <= limit <= 100:
            return self.error(400, "Invalid limit: must be between 1 and 100")
        evs = [e for e in self.server.events
               if (gte is None or e["created"] >= gte) and (lte is None or e["created"] <= lte)]
        if "starting_after" in q:
            ids = [e["id"] for e in evs]
            if q["starting_after"][0] not in ids:
                return self.error(400, "No such event: '%s'" % q["starting_after"][0])
            evs = evs[ids.index(q["starting_after"][0]) + 1:]
        page = json.dumps({"object": "list", "url": "/v1/events", "has_more": len(evs) > limit,
                           "data": evs[:limit]}).encode()
        self.server.pages[query] = page  # the events never change: answer again from here
        self.reply(200, page)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True, help="the API key it accepts")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True, help="request log, JSON lines (appended)")
    ap.add_argument("--fail", type=int, default=0, help="fail the first N requests")
    ap.add_argument("--fail-status", type=int, default=429)
    ap.add_argument("--retry-after", type=int, default=1, help="Retry-After on a 429")
    ap.add_argument("--should-retry", choices=["true", "false"], help="Stripe-Should-Retry")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (and --tls-key)")
    ap.add_argument("--tls-key")
    ap.add_argument("events", nargs="+", help="JSON-lines files (stripe_events.py gen)")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.a, srv.key, srv.failures_left = a, a.key, a.fail
    srv.events, srv.lock, srv.pages = load(a.events), threading.Lock(), {}
    srv.log = open(a.log, "a")
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
