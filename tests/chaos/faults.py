"""faults.py - the chaos run's fault driver.

At seeded random moments it does one of four things (one more each with
--pg-failover and --redis-failover), taking the kinds in seeded random order,
each kind once per round:
  worker_kill     SIGKILL a worker process, start a new one a moment later
  ingest_kill     SIGKILL one of the ingest processes sharing the port, restart it
  redis_restart   SIGKILL redis-server (AOF, appendfsync always) and start it
                  again; with --redis-failover the current master, and then waits
                  until the sentinels name a master streaming to the other node
                  (a restart slower than their 2 s turns into a failover)
  pg_restart      pg_ctl restart -m immediate (a crash and recovery) of the primary
  pg_failover     SIGKILL the primary's processes, promote the synchronous
                  standby a moment later, then make a new standby of it on the
                  lost primary's port (tests/harness/pg_standby.sh)
  redis_failover  SIGKILL the master (tests/harness/sentinel.sh), wait until the
                  sentinels promoted the replica, start the old node again a
                  moment later so that it rejoins as a replica (with
                  PAYSTREAM_REDIS_MIN_REPLICAS=1 ingest answers 503 until then),
                  and wait for ingest's first 200 again
Every fault is logged with its time; it stops once told to and every kind has
happened at least once.
"""
import os
import random
import signal
import threading
import time

import services

KINDS = ("worker_kill", "ingest_kill", "redis_restart", "pg_restart")


class Faults:
    def __init__(self, cluster, seed, every_s, log, poster=None):
        self.cluster, self.every_s, self.log, self.poster = cluster, every_s, log, poster
        self.rng = random.Random("faults/%s" % seed)
        self.all = KINDS + (("pg_failover",) if cluster.pair else ()) + (
            ("redis_failover",) if cluster.sentinels else ())
        # each redis_failover: (kill -> promoted, kill -> first 200 again or
        # None when nothing was being sent, 503s meanwhile), in seconds
        self.redis_failovers = []
        self.count = {k: 0 for k in self.all}
        self.down_s = {k: 0.0 for k in self.all}
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def kinds(self):
        while True:
            order = list(self.all)
            self.rng.shuffle(order)
            yield from order

    def run(self):
        t0, kinds = time.monotonic(), self.kinds()
        while True:
            kind = next(kinds)
            if not self.stop.is_set():
                self.stop.wait(self.every_s * self.rng.uniform(0.5, 1.5))
            if self.stop.is_set():  # only the kinds that have not happened yet
                if min(self.count.values()) > 0:
                    return
                if self.count[kind] > 0:
                    continue
                time.sleep(1.0)
            if not self.inject(kind, time.monotonic() - t0):
                return

    def inject(self, kind, at):
        pause = self.rng.uniform(0.2, 2.0)
        start = time.monotonic()
        try:
            what = getattr(self, kind)(pause)
        except Exception as ex:  # a fault that cannot be undone fails the run
            self.errors.append("%s: %s" % (kind, ex))
            self.log("fault %s failed: %s" % (kind, ex))
            return False
        took = time.monotonic() - start
        self.count[kind] += 1
        self.down_s[kind] += took
        self.log("[%7.1f s] fault %d: %s: %s (back after %.1f s)" % (
            at, sum(self.count.values()), kind, what, took))
        return True

    def kill_one(self, names, start, pause):
        """SIGKILL one process of `names`, start it again after `pause` s."""
        name = self.rng.choice(sorted(names))
        pid = self.cluster.procs.kill(name)
        time.sleep(pause)
        start(name)
        return "SIGKILL %s (pid %d)" % (name, pid)

    def worker_kill(self, pause):
        return self.kill_one(self.cluster.workers, self.cluster.start_worker, pause)

    def ingest_kill(self, pause):
        return self.kill_one(self.cluster.ingests, self.cluster.start_ingest, pause)

    def redis_restart(self, pause):
        sn = self.cluster.sentinels
        if sn:
            m = sn.master()
            pid = sn.kill(m)
            time.sleep(pause)
            services.sentinel("sentinel_node_start", str(m))
            sn.wait("a master streaming to its replica", sn.healthy, 120)
            now = sn.master()
            return "SIGKILL the master (node %d, pid %d), started again on its AOF; %s" % (
                m, pid, "still the master" if now == m else "node %d promoted meanwhile" % now)
        pid = services.redis_pid(self.cluster.stack_dir)
        os.kill(pid, signal.SIGKILL)
        if not services.wait_gone(pid, 30):
            raise RuntimeError("redis-server %d still running after SIGKILL" % pid)
        time.sleep(pause)
        services.stack("stack_restart_redis")
        return "SIGKILL redis-server (pid %d), started again on its AOF" % pid

    def pg_restart(self, pause):
        if self.cluster.pair:
            services.pair("pg_pair_restart_primary", "immediate")
            return "pg_ctl restart -m immediate of the primary"
        services.stack("stack_restart_pg", "immediate")
        return "pg_ctl restart -m immediate"

    def pg_failover(self, pause):
        start = time.monotonic()
        services.pair("pg_pair_kill_primary")
        time.sleep(pause)
        services.pair("pg_pair_promote")
        promoted = time.monotonic() - start
        services.pair("pg_pair_rebuild")
        return "SIGKILL the primary, standby promoted after %.1f s, a new standby made" % promoted

    def redis_failover(self, pause):
        sn, p = self.cluster.sentinels, self.poster
        m, marked = sn.master(), []
        pid = sn.kill(m, lambda: marked.append(p.mark()))
        start = marked[0]
        sn.wait("the sentinels promote a replica", lambda: sn.master() != m, 60)
        promoted = time.monotonic() - start
        time.sleep(pause)
        services.sentinel("sentinel_node_start", str(m))
        sn.wait("the old master a replica of the new one", sn.healthy, 120)
        rejoined = time.monotonic() - start
        sn.wait("ingest's first 200 again", lambda: p.since_mark()[0] or not p.sending(), 180)
        first_ok, n503 = p.since_mark()
        again = first_ok - start if first_ok else None
        self.redis_failovers.append((promoted, again, n503))
        return ("SIGKILL the master (node %d, pid %d), node %d promoted after %.1f s, the old one "
                "a replica after %.1f s, first 200 again after %s, %d answers 503 meanwhile" % (
                    m, pid, sn.master(), promoted, rejoined,
                    "%.1f s" % again if again else "- (nothing sent)", n503))

    def summary(self):
        return ", ".join("%s %d" % (k, self.count[k]) for k in self.all)
