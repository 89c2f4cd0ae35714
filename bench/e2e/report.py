#!/usr/bin/env python3
"""report.py - end-to-end latency of bench/e2e: from ingest's 200 to the worker's COMMIT.

Inputs: COMMITS, lines "<evt_id> <commit_us> <status> <attempts>" (PostgreSQL's
pg_xact_commit_timestamp(xmin) of each webhook_events row, so the commit of the
transaction that last wrote it, whatever else that transaction held), and one
pace.c output per run ("<evt_id> <http status> <due_us> <sent_us> <answered_us>").
The latency of an event is commit_us - answered_us (both wall clock, one machine).
PostgreSQL takes the commit timestamp as it writes the commit record, before the
WAL flush that makes the commit durable: --wal-sync-ms (the run's mean flush time)
is printed alongside, to say by how much the figures fall short of durability.
Events due in a run's first WARMUP seconds are left out.

Prints one line per run and the medians over the runs as
    RESULT e2e rate=… achieved=… p50_ms=… p99_ms=… p999_ms=… …
Usage: report.py COMMITS RUN_OUT... [--warmup S] [--rate R]
"""
import argparse
import statistics


def pct(sorted_vals, p):
    """nearest-rank percentile of an ascending list"""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p / 100.0 * len(sorted_vals) // 1)) - 1))
    return sorted_vals[k]


def load_commits(path):
    commits = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 4:
                commits[w[0]] = (int(w[1]) if w[1] else None, w[2], int(w[3]))
    return commits


def one_run(path, commits, warmup_us):
    rows = [line.split() for line in open(path) if line.strip()]
    first_due = min(int(r[2]) for r in rows)
    last_due = max(int(r[2]) for r in rows)
    lat, answer, non200, missing, retried = [], [], 0, 0, 0
    for evt, status, due, sent, answered in rows:
        if int(due) < first_due + warmup_us:
            continue
        if status != "200":
            non200 += 1
            continue
        c = commits.get(evt)
        if c is None or c[0] is None or c[1] not in ("applied", "skipped"):
            missing += 1
            continue
        retried += c[2] > 1
        lat.append((c[0] - int(answered)) / 1000.0)
        answer.append((int(answered) - int(sent)) / 1000.0)
    lat.sort()
    answer.sort()
    return {
        "events": len(lat), "achieved": len(rows) / max(1e-6, (last_due - first_due) / 1e6),
        "negative": sum(x < 0 for x in lat), "p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9), "max": lat[-1] if lat else float("nan"),
        "ingest_p99": pct(answer, 99), "non200": non200, "missing": missing, "retried": retried,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("commits")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--wal-sync-ms", type=float, default=0.0)
    a = ap.parse_args()
    commits = load_commits(a.commits)
    runs = [one_run(p, commits, a.warmup * 1e6) for p in a.runs]
    for i, r in enumerate(runs, 1):
        print("e2e run %d: %d events at %.0f/s: 200->COMMIT p50 %.2f ms, p99 %.2f, p99.9 %.2f, max %.2f; "
              "POST->200 p99 %.2f ms; non-200 %d, not committed %d, retried %d, committed before the 200 was read %d"
              % (i, r["events"], r["achieved"], r["p50"], r["p99"], r["p999"], r["max"], r["ingest_p99"],
                 r["non200"], r["missing"], r["retried"], r["negative"]))
    med = {k: statistics.median(r[k] for r in runs) for k in ("achieved", "p50", "p99", "p999", "ingest_p99")}
    p99s = [r["p99"] for r in runs]
    print("RESULT e2e rate=%.0f achieved=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f p99_min_ms=%.2f "
          "p99_max_ms=%.2f ingest_p99_ms=%.2f wal_sync_ms=%.2f runs=%d events=%d non200=%d missing=%d retried=%d"
          % (a.rate, med["achieved"], med["p50"], med["p99"], med["p999"], min(p99s), max(p99s),
             med["ingest_p99"], a.wal_sync_ms, len(runs), sum(r["events"] for r in runs), sum(r["non200"] for r in runs),
             sum(r["missing"] for r in runs), sum(r["retried"] for r in runs)))


if __name__ == "__main__":
    main()
