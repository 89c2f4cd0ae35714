"""cluster.py - the paystream processes of a chaos run, and its reference run.

Two ingest processes share one loopback port (SO_REUSEPORT), so that killing
one leaves the other serving; workers are numbered slots, each restarted as a
new process (new consumer names) after a kill. The reference run applies the
same events in order, once each, through one single-consumer worker on a fresh
database, with no faults: what the chaos database must equal.
"""
import os
import subprocess
import time

import services
import verify

STREAM, GROUP, REF_STREAM = "paystream:events", "paystream", "paystream:ref"


class Cluster:
    def __init__(self, a, secret, logdir, url, sentinels=None):
        self.a, self.secret, self.stack_dir = a, secret, os.environ["PS_STACK_DIR"]
        self.url = url  # the ledger's database (both hosts with --pg-failover)
        self.pair = a.pg_failover
        self.sentinels = sentinels  # with --redis-failover: services.Sentinels
        redis_url = sentinels.url if sentinels else os.environ["PAYSTREAM_REDIS_URL"]
        env = dict(os.environ, PAYSTREAM_STREAM=STREAM, PAYSTREAM_GROUP=GROUP,
                   PAYSTREAM_REDIS_URL=redis_url,
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1"),
                   UBSAN_OPTIONS=os.environ.get("UBSAN_OPTIONS",
                                                "print_stacktrace=1:halt_on_error=1"))
        self.procs = services.Procs(os.environ["PS_BIN_DIR"], logdir, env)
        self.port = int(services.stack("stack_free_port"))
        self.ingests = ["ingest-%d" % i for i in range(a.ingests)]
        self.workers = ["worker-%d" % i for i in range(a.workers)]
        # a retry window longer than any wait for another event: the late
        # delay, the backlog and a fault's outage (retries back off to 2 s)
        self.max_attempts = 8 + int((a.late + 30) / 2)
        # an event that waits for another (SPEC 3) waits this long, then the
        # poison whose user nothing maps to is dead: longer than a late
        # delivery, a backlog and an outage
        self.wait_max = "%ds" % int(a.late + 90)

    def start_ingest(self, name):
        self.procs.start(name, "paystream-ingest", {
            "STRIPE_WEBHOOK_SECRET": self.secret, "PAYSTREAM_LISTEN": "127.0.0.1:%d" % self.port,
            "PAYSTREAM_LOG": "warn",
            # every 200'd entry is on the replica too: a failover loses none
            "PAYSTREAM_REDIS_MIN_REPLICAS": "1" if self.sentinels else "0"})
        if not services.wait_http("http://127.0.0.1:%d/healthz" % self.port, 30):
            raise RuntimeError("%s does not answer /healthz" % name)

    def start_worker(self, name, **extra):
        env = {"PAYSTREAM_CONCURRENCY": str(self.a.concurrency), "PAYSTREAM_CLAIM_IDLE_MS": "4000",
               "PAYSTREAM_MAX_ATTEMPTS": str(self.max_attempts), "PAYSTREAM_WAIT_MAX": self.wait_max,
               "PAYSTREAM_LOG": "info", "PAYSTREAM_DATABASE_URL": self.url}
        env.update(extra)
        self.procs.start(name, "paystream-worker", env)

    def start(self):
        for name in self.ingests:
            self.start_ingest(name)
        for name in self.workers:
            self.start_worker(name)


def ctl(*args, url=None):
    """Run paystreamctl; (exit status, output)."""
    env = dict(os.environ)
    if url:
        env["PAYSTREAM_DATABASE_URL"] = url
    out = subprocess.run([os.path.join(os.environ["PS_BIN_DIR"], "paystreamctl")] + list(args),
                         env=env, capture_output=True, text=True, timeout=300)
    return out.returncode, (out.stdout + out.stderr).strip()


def prepare_db(url, plans):
    for args in (["migrate"], ["plans", "load", plans]):
        rc, out = ctl(*args, url=url)
        if rc != 0:
            raise RuntimeError("paystreamctl %s: %s" % (" ".join(args), out))


def wait_drain(redis, stream, url, want, seconds):
    """True once `want` events are finished and the group has nothing left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if verify.finished_events(url) >= want and verify.drained(redis, stream, GROUP):
                return True
        except (OSError, RuntimeError, services.RedisError):
            pass  # a server restarting
        time.sleep(0.5)
    return False


def reference_run(a, cluster, events, redis):
    """Apply `events` in `created` order, once each; the reference database's URL.
    `redis` is the stack's own server (with --redis-failover too)."""
    url = os.environ["PAYSTREAM_DATABASE_URL"].rsplit("/", 1)[0] + "/paystream_ref"
    services.psql(os.environ["PS_PG_ADMIN_URL"], "CREATE DATABASE paystream_ref")
    # no crash happens here: durability would only slow the reference down
    services.psql(os.environ["PS_PG_ADMIN_URL"],
                  "ALTER DATABASE paystream_ref SET synchronous_commit = off")
    redis.call("CONFIG", "SET", "appendfsync", "everysec")
    prepare_db(url, a.plans)
    ordered = sorted(events, key=lambda ev: ev["created"])
    now = str(int(time.time() * 1000))
    for i in range(0, len(ordered), 500):
        replies = redis.pipeline([("XADD", REF_STREAM, "*", "id", ev["id"], "type", ev["type"],
                                   "body", ev["body"].encode(), "received", now)
                                  for ev in ordered[i:i + 500]])
        bad = [r for r in replies if isinstance(r, services.RedisError)]
        if bad:
            raise RuntimeError("XADD to the reference stream: %s" % bad[0])
    cluster.start_worker("reference", PAYSTREAM_DATABASE_URL=url, PAYSTREAM_STREAM=REF_STREAM,
                         PAYSTREAM_REDIS_URL=os.environ["PAYSTREAM_REDIS_URL"],
                         PAYSTREAM_CONCURRENCY="1", PAYSTREAM_MAX_ATTEMPTS="3", PAYSTREAM_WAIT_MAX="10s",
                         PAYSTREAM_CLAIM_IDLE_MS="2000")
    ok = wait_drain(redis, REF_STREAM, url, len(ordered), a.drain_timeout)
    status = cluster.procs.stop_all()
    if not ok or status.get("reference") != 0:
        raise RuntimeError("reference worker: drained %s, exit status %s" % (ok, status))
    return url
