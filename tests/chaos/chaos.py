#!/usr/bin/env python3
"""chaos.py - nothing lost, nothing applied twice, while everything crashes.

Runs inside tests/harness/with-stack (PostgreSQL 15 and redis-server with the
AOF of deploy/redis.conf, on loopback) and needs PS_BIN_DIR: use tests/chaos/run.
It generates signed, realistic events (plan.py), starts two ingest processes
sharing one port and three workers (cluster.py), and posts every event twice in
a shuffled order, some late, retrying like Stripe (poster.py), while faults.py
kills and restarts workers, ingest, Redis and PostgreSQL (and with --pg-failover
fails PostgreSQL over to its synchronous standby; with --redis-failover the
stream lives on a Redis master with one replica under three sentinels, ingest
waits for the replica before each 200, and the master is killed and the replica
promoted). Once the workers have drained the stream, the same events are
applied in order, once each, by the same worker on a fresh database, and the
two must agree (verify.py). Prints the figures (with --redis-failover each
failover's times and 503s too); exit status 0 only if every check passed.
"""
import argparse
import collections
import glob
import os
import re
import sys
import threading
import time

import cluster as cl
import faults as faults_mod
import plan as plan_mod
import poster as poster_mod
import services
import verify

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print("# " + msg, flush=True)


class Checks:
    def __init__(self):
        self.failed = 0

    def __call__(self, name, ok, detail=""):
        print("%s - %s%s" % ("ok" if ok else "not ok", name, "" if ok else ": %s" % (detail,)),
              flush=True)
        self.failed += not ok


def report_progress(p, url, n, stop, t0):
    while not stop.wait(15):
        try:
            done = verify.finished_events(url)
        except RuntimeError:
            done = "?"
        sent, total, held = p.progress()
        log("[%7.1f s] sent %d/%d deliveries (%d held back), backlog %s, %s/%d events done" % (
            time.monotonic() - t0, sent, total, held, p.lag, done, n))


def sanitizer_reports(logdir):
    pat = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")
    return [os.path.basename(f) for f in sorted(glob.glob(os.path.join(logdir, "*.log")))
            if pat.search(open(f, errors="replace").read())]


def chaos_phase(a, check, events, poison, deliveries, url, logdir, sentinels):
    """Post under faults and drain; (cluster, redis, poster stats, faults, timings)."""
    secret = "whsec_chaos_" + os.urandom(12).hex()
    cluster = cl.Cluster(a, secret, logdir, url, sentinels)
    cl.prepare_db(url, a.plans)
    cluster.start()
    if sentinels:
        redis = sentinels.redis()
    else:
        redis = services.Redis(int(os.environ["PS_REDIS_PORT"]))
    p = poster_mod.Poster(cluster.port, "/webhooks/stripe", secret, deliveries, a.late,
                          redis_port=int(os.environ["PS_REDIS_PORT"]), seed=a.seed,
                          redis_locate=sentinels.master_port if sentinels else None)
    f = faults_mod.Faults(cluster, a.seed, a.fault_every, log, p)
    stop = threading.Event()
    t0 = time.monotonic()
    threading.Thread(target=report_progress, args=(p, url, len(events) + len(poison), stop, t0),
                     daemon=True).start()
    f.thread.start()
    stats = p.run()
    posted = time.monotonic()
    log("posting done in %.1f s; faults go on until each kind has happened" % (posted - t0))
    f.stop.set()
    f.thread.join()
    drained = cl.wait_drain(redis, cl.STREAM, url, len(events) + len(poison), a.drain_timeout)
    end = time.monotonic()
    stop.set()
    check("drained within %d s" % a.drain_timeout, drained)
    exits = cluster.procs.stop_all()
    check("every ingest and worker exits 0 on SIGTERM", all(v == 0 for v in exits.values()), exits)
    timing = {"post": posted - t0, "drain": end - (p.last_ok_at or posted), "chaos": end - t0}
    return cluster, redis, stats, f, timing


def check_chaos(check, a, cluster, redis, stats, f, deliveries, ids, poison_ids, url):
    check("every delivery answered 200 in the end (%d)" % len(deliveries),
          not stats.failures and sum(stats.ok.values()) == len(deliveries), stats.failures[:5])
    check("every event got a 200", set(stats.ok) == ids, len(ids - set(stats.ok)))
    check("faults of every kind, none failed (%s)" % f.summary(),
          min(f.count.values()) > 0 and not f.errors, f.errors)
    in_stream = verify.stream_ids(redis, cl.STREAM)
    lost = sorted(i for i, n in stats.ok.items() if in_stream[i] < n)
    check("every 200 has its own stream entry", not lost, "%d events, e.g. %s" % (len(lost), lost[:3]))
    recorded = {r[0] for r in services.psql(url, "SELECT event_id FROM paystream.webhook_events")}
    check("webhook_events holds every event, once (primary key), and nothing else",
          recorded == ids, "missing %d, extra %d" % (len(ids - recorded), len(recorded - ids)))
    check("no Stripe-made ledger row written twice", verify.twice_written(url) == 0)
    rc, out = verify.reconcile(os.path.join(os.environ["PS_BIN_DIR"], "paystreamctl"), url)
    check("paystreamctl reconcile is clean", rc == 0, out[-2000:])
    dead = verify.stream_ids(redis, cl.STREAM + ":dead")
    check("the dead letters are exactly the poison events (%d, in %d entries)" % (
        len(poison_ids), sum(dead.values())), set(dead) == poison_ids,
        "unexpected %s, missing %s" % (sorted(set(dead) - poison_ids)[:5],
                                       sorted(poison_ids - set(dead))[:5]))
    return in_stream


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--late", type=float, help="seconds a held-back delivery waits "
                    "(default: 60 at 100,000 events, scaled down for fewer, at least 5)")
    ap.add_argument("--ingests", type=int, default=2)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--fault-every", type=float, default=8.0, help="mean seconds between faults")
    ap.add_argument("--drain-timeout", type=float, default=600)
    ap.add_argument("--plans", default=os.path.join(HERE, "..", "events", "plans.txt"))
    ap.add_argument("--pg-failover", action="store_true",
                    help="the ledger on a primary with a synchronous standby; one more fault: "
                    "SIGKILL the primary, promote the standby, make a new standby")
    ap.add_argument("--redis-failover", action="store_true",
                    help="the stream on a Redis master with a replica and three sentinels, "
                    "ingest waiting for the replica; one more fault: SIGKILL the master, the "
                    "sentinels promote the replica, the old master rejoins as a replica")
    a = ap.parse_args()
    if a.late is None:
        a.late = max(5.0, min(60.0, a.events * 60 / 100000))
    check, start = Checks(), time.monotonic()
    url = os.environ["PAYSTREAM_DATABASE_URL"]
    if a.pg_failover:  # the reference run keeps the stack's own server
        url = services.pair("pg_pair_start_print").strip().splitlines()[-1]
        log("the ledger on a primary and its synchronous standby: %s" % url)
    sentinels = None
    if a.redis_failover:  # the reference run keeps the stack's own server here too
        sentinels = services.Sentinels()
        log("the stream on a Redis master (port %d), its replica (%s) and three sentinels: %s" % (
            sentinels.nodes[0], ", ".join(map(str, sentinels.nodes[1:])), sentinels.url))
    logdir = os.path.join(os.environ["PS_STACK_DIR"], "chaos")
    os.makedirs(logdir, exist_ok=True)

    events, poison, users, waiting = plan_mod.make_events(a.events, a.seed, a.plans)
    deliveries = plan_mod.delivery_plan(events, poison, a.seed, waited_for=waiting[1])
    ids, poison_ids = {ev["id"] for ev in events + poison}, {ev["id"] for ev in poison}
    gen_s = time.monotonic() - start
    log("seed %s: %d events of %d users and %d poison events, %d deliveries, late by %.0f s "
        "(generated in %.1f s)" % (a.seed, len(events), users, len(poison), len(deliveries),
                                   a.late, gen_s))

    cluster, redis, stats, f, timing = chaos_phase(a, check, events, poison, deliveries, url,
                                                   logdir, sentinels)
    in_stream = check_chaos(check, a, cluster, redis, stats, f, deliveries, ids, poison_ids, url)
    waited = {ev["id"] for ev in waiting[0]}
    applied = {r[0] for r in services.psql(url, "SELECT event_id FROM paystream.webhook_events "
                                                "WHERE status = 'applied'")}
    check("the events sent before what they wait for (%d) waited and applied" % len(waited),
          waited <= applied, sorted(waited - applied)[:5])
    check("nothing is left waiting", services.psql(
        url, "SELECT count(*) FROM paystream.waiting_events")[0][0] == "0")

    t = time.monotonic()
    ref_redis = services.Redis(int(os.environ["PS_REDIS_PORT"]))
    ref_url = cl.reference_run(a, cluster, events + poison, ref_redis)
    timing["reference"] = time.monotonic() - t
    diff = verify.compare(verify.state(url), verify.state(ref_url))
    check("balances, ledger sums, packs, customers and event statuses equal the in-order run",
          not diff, "\n" + "\n".join(diff))
    rc, out = verify.reconcile(os.path.join(os.environ["PS_BIN_DIR"], "paystreamctl"), ref_url)
    check("the reference is clean too", rc == 0, out[-1000:])
    ref_dead = set(verify.stream_ids(ref_redis, cl.REF_STREAM + ":dead"))
    check("the reference dead-lettered exactly the poison events", ref_dead == poison_ids,
          sorted(ref_dead ^ poison_ids)[:5])
    bad_logs = sanitizer_reports(logdir)
    check("no sanitizer report in any log", not bad_logs, bad_logs)

    figures(a, events, poison, users, deliveries, stats, f, in_stream, poison_ids, url, ref_url,
            timing, time.monotonic() - start)
    if check.failed:
        log("%d checks failed; logs in %s" % (check.failed, logdir))
    return 1 if check.failed else 0


def figures(a, events, poison, users, deliveries, stats, f, in_stream, poison_ids, url, ref_url,
            timing, total_s):
    entries = sum(in_stream.values())
    dups = sum(n - 1 for i, n in in_stream.items() if i not in poison_ids)
    retried = services.psql(url, "SELECT count(*) FROM paystream.webhook_events WHERE attempts > 1")
    rows, sub, over, subs = verify.totals(url)
    status = collections.OrderedDict(sorted(stats.status.items()))
    print("\n== chaos figures (seed %s) ==" % a.seed)
    print("events             %d (%d users, both API shapes) + %d poison" % (
        len(events), users, len(poison)))
    print("deliveries         %d (each event twice), %d held back %.0f s" % (
        len(deliveries), stats.late, a.late))
    print("HTTP requests      %d: %s; most attempts for one delivery %d" % (
        sum(status.values()), ", ".join("%s %d" % (k or "no answer", v) for k, v in status.items()),
        stats.most_attempts))
    print("faults             %s" % f.summary())
    for k, (promoted, again, n503) in enumerate(f.redis_failovers):
        print("redis failover %-3d kill -> promoted %.1f s, kill -> first 200 again %s, "
              "%d answers 503 meanwhile" % (
                  k + 1, promoted, "%.1f s" % again if again else "- (nothing sent)", n503))
    print("stream entries     %d; duplicates suppressed %d; events retried by workers %s" % (
        entries, dups, retried[0][0]))
    print("ledger             %d rows; %d subscriptions hold %d subscription + %d overage "
          "credits (reference: %s)" % (rows, subs, sub, over, verify.totals(ref_url)))
    print("time               posting %.1f s, drain after the last 200 %.1f s, chaos phase %.1f s,"
          " reference %.1f s, total %.1f s" % (timing["post"], timing["drain"], timing["chaos"],
                                               timing["reference"], total_s))
    print("throughput         %.0f events/s under faults (%d stream entries)" % (
        len(events) / timing["chaos"], entries))


if __name__ == "__main__":
    sys.exit(main())
