"""poster.py - send the delivery plan to ingest the way Stripe does.

A few keep-alive connections send the deliveries in plan order. Each request is
signed when it is sent (Stripe signs every attempt). A 5xx or a connection that
drops or is refused is retried with exponential backoff until ingest answers
200; a delivery marked late is held back `late_s` seconds first. Anything else
(a 4xx, or no 200 within `give_up_s`) is recorded as a failure of the run.
The backlog the workers have not read yet is kept under `max_lag` entries, so
that the time an event waits for another one it depends on stays bounded, as
with workers that keep up in production.
"""
import collections
import heapq
import http.client
import random
import threading
import time

import services
from plan import se


# entries after the group's last delivered id, counted up to ARGV[2]
UNREAD_LUA = """
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then
    return #redis.call('XRANGE', KEYS[1], '(' .. f['last-delivered-id'], '+', 'COUNT', ARGV[2])
  end
end
return 0
"""


class Stats:
    def __init__(self):
        self.status = collections.Counter()  # HTTP status (0: no answer) -> responses
        self.ok = collections.Counter()  # event id -> 200 responses
        self.late = 0
        self.most_attempts = 0
        self.failures = []

    def merge(self, other):
        self.status.update(other.status)
        self.ok.update(other.ok)
        self.late += other.late
        self.most_attempts = max(self.most_attempts, other.most_attempts)
        self.failures.extend(other.failures)


class Poster:
    def __init__(self, port, path, secret, plan, late_s, conns=4, redis_port=None,
                 stream="paystream:events", group="paystream", max_lag=2000, give_up_s=300,
                 seed="1", redis_locate=None):
        self.port, self.path, self.secret, self.plan = port, path, secret, plan
        self.redis_locate = redis_locate  # with --redis-failover: where the master is
        self.late_s, self.conns, self.max_lag, self.give_up_s = late_s, conns, max_lag, give_up_s
        self.redis_port, self.stream, self.group = redis_port, stream, group
        self.seed = seed
        self.lock = threading.Lock()
        self.next = 0
        self.held = []  # (due, seq, delivery)
        self.lag = 0
        self.done = threading.Event()
        self.stats = Stats()
        self.first_at = self.last_ok_at = None
        # since mark(): the first 200 to a request sent after it, and the 503s
        self.mark_lock = threading.Lock()
        self.mark_at, self.first_ok_at, self.n503 = None, None, 0

    # -- what to send next --------------------------------------------------

    def take(self):
        """The next delivery, or None when everything has been sent."""
        while True:
            with self.lock:
                now = time.monotonic()
                if self.held and self.held[0][0] <= now:
                    return heapq.heappop(self.held)[2]
                if self.next < len(self.plan):
                    if self.lag <= self.max_lag:
                        d = self.plan[self.next]
                        self.next += 1
                        if not d[2]:
                            return d
                        heapq.heappush(self.held, (now + self.late_s, self.next, d))
                        continue
                    wait = 0.05
                elif self.held:
                    wait = min(0.2, self.held[0][0] - now)
                else:
                    return None
            time.sleep(max(wait, 0.001))

    def watch_lag(self):
        """Keep self.lag at the count of entries no consumer has read yet (up to
        max_lag + 1; XINFO's own `lag` is not kept across a Redis restart)."""
        r = services.Redis(self.redis_port, timeout=2, locate=self.redis_locate)
        while not self.done.is_set():
            try:
                self.lag = r.call("EVAL", UNREAD_LUA, 1, self.stream, self.group,
                                  self.max_lag + 1)
            except (OSError, services.RedisError):
                pass  # Redis down or no stream yet: ingest answers 503 or workers catch up
            self.done.wait(0.5)
        r.close()

    # -- a fault's outage, as the sender sees it ------------------------------

    def mark(self):
        """Count from now: the first 200 again, and the 503s meanwhile."""
        with self.mark_lock:
            self.mark_at, self.first_ok_at, self.n503 = time.monotonic(), None, 0
            return self.mark_at

    def since_mark(self):
        """(monotonic time of the first 200 to a request sent after mark() or
        None, 503s since mark())."""
        with self.mark_lock:
            return self.first_ok_at, self.n503

    def note(self, sent, status):
        with self.mark_lock:
            if self.mark_at is None:
                return
            if status == 200 and self.first_ok_at is None and sent >= self.mark_at:
                self.first_ok_at = time.monotonic()
            elif status == 503:
                self.n503 += 1

    def sending(self):
        """False once every delivery has had its 200 (or failed)."""
        return not self.done.is_set()

    # -- sending ------------------------------------------------------------

    def send(self, conn, body):
        """(status, connection to reuse or None); status 0 when there was no answer."""
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                   "Stripe-Signature": se.sign(self.secret, int(time.time()), body)}
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            conn.request("POST", self.path, body, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            return resp.status, conn
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            return 0, None

    def deliver(self, conn, d, st, rng):
        ev, copy, late = d
        body = ev["body"].encode()
        start = time.monotonic()
        for attempt in range(1, 1 << 30):
            sent = time.monotonic()
            status, conn = self.send(conn, body)
            self.note(sent, status)
            st.status[status] += 1
            if status == 200:
                st.ok[ev["id"]] += 1
                st.most_attempts = max(st.most_attempts, attempt)
                st.late += late
                self.last_ok_at = time.monotonic()
                return conn
            if status not in (0, 500, 502, 503, 504):
                st.failures.append("%s (copy %d): HTTP %d" % (ev["id"], copy, status))
                return conn
            if time.monotonic() - start > self.give_up_s:
                st.failures.append("%s (copy %d): no 200 in %d s" % (ev["id"], copy,
                                                                     self.give_up_s))
                return conn
            delay = min(2.0, 0.05 * 2 ** min(attempt, 8))
            time.sleep(delay * rng.uniform(0.8, 1.2))
        return conn

    def worker(self, k, stats):
        conn, st = None, Stats()
        rng = random.Random("poster/%s/%d" % (self.seed, k))
        while True:
            d = self.take()
            if d is None:
                break
            conn = self.deliver(conn, d, st, rng)
        if conn is not None:
            conn.close()
        stats[k] = st

    def run(self):
        """Send everything; the merged Stats."""
        self.first_at = time.monotonic()
        watcher = threading.Thread(target=self.watch_lag, daemon=True)
        watcher.start()
        stats = [None] * self.conns
        threads = [threading.Thread(target=self.worker, args=(k, stats))
                   for k in range(self.conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.done.set()
        watcher.join()
        for st in stats:
            self.stats.merge(st)
        return self.stats

    def progress(self):
        return self.next, len(self.plan), len(self.held)
