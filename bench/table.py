#!/usr/bin/env python3
"""table.py - bench/run's one table, from what the part scripts printed.

Reads OUT/ingest.out, OUT/worker.*.out, OUT/renewal.*.out, OUT/catchup.out, OUT/e2e.out,
OUT/deduct.out, OUT/backfill.out (each part's
stdout; the machine-readable lines start with "RESULT <part> k=v ...") and
OUT/meta (k=v lines bench/run wrote: load averages, settings).

  table.py OUT                 print the table (Markdown) and the notes under it
  table.py OUT --worker-max    print "<events/s> <processes>" of the fastest worker row
"""
import os
import re
import statistics
import sys

TARGETS = {"node": 5.0, "bare": 0.8, "worker": 3.0, "renewal": 2.5, "e2e_p99_ms": 50.0,
           "deduct": 0.9, "wait1": 3.0}
ISSUE = {"worker": 6, "renewal": 23}


def results(path, part):
    """the k=v dicts of a file's "RESULT <part>" lines"""
    rows = []
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            w = line.split()
            if len(w) >= 2 and w[0] == "RESULT" and w[1] == part:
                rows.append(dict(x.split("=", 1) for x in w[2:] if "=" in x))
    return rows


def worker_samples(out, part="worker"):
    """[(processes, events/s, pgbench tps)], one per process count and run of
    bench/worker/run (part "worker": the mixed stream; "renewal": a renewal day's)"""
    samples = []
    for name in sorted(os.listdir(out)):
        if re.fullmatch(part + r"\.\d+\.out", name):
            samples += [(int(r["procs"]), float(r["events_per_s"]), float(r["anchor_tps"]))
                        for r in results(os.path.join(out, name), part)]
    return samples


def worker_rows(out, part="worker"):
    """{processes: (median events/s, median tps, median ratio, [events/s of each run])}"""
    by = {}
    for procs, eps, tps in worker_samples(out, part):
        by.setdefault(procs, []).append((eps, tps))
    med = statistics.median
    return {p: (med(e for e, _ in s), med(t for _, t in s), med(e / t for e, t in s), [e for e, _ in s])
            for p, s in sorted(by.items())}


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, TypeError, ValueError):
        return None


def f(v, spec=".0f"):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or not b else a / b


def verdict(value, target, higher_is_better=True):
    if value is None:
        return "-"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "**missed**"


def spread(vals):
    """(max - min) / median of a list, in %"""
    vals = [v for v in vals if v is not None]
    if len(vals) < 2 or not statistics.median(vals):
        return None
    return (max(vals) - min(vals)) / statistics.median(vals) * 100


def ingest_rows(out, row, spreads):
    ing = {r.get("server") + ("/" + r["phase"] if "phase" in r else ""): r for r in results(out + "/ingest.out", "ingest")}
    ps = ing.get("paystream")
    if not ps:
        return
    if num(ps, "runs") != 1:
        spreads["ingest req/s"] = spread([num(ps, "rps_min"), num(ps, "rps_max"), num(ps, "rps")])
    lat = lambda d: " / ".join(f(num(d, k), ".2f") for k in ("p50_ms", "p99_ms", "p999_ms"))
    # one process against one process; two on one port (SO_REUSEPORT) as an extra row
    for server, what in (("paystream", "ingest req/s (100 connections, closed loop)"),
                         ("paystream2", "ingest req/s, 2 processes on one port (not like for like)")):
        p = ing.get(server)
        if not p:
            continue
        rps = num(p, "rps")
        runs = f"{f(num(p, 'rps_min'))} - {f(num(p, 'rps_max'))}" if num(p, "runs") != 1 else ""
        for anchor, label in (("node", "Node stripe + ioredis"), ("bare", "bare libevent (200 only)")):
            a = ing.get(anchor)
            if a:
                r = ratio(rps, num(a, "rps"))
                row(what, f(rps), label, f(num(a, "rps")), f(r, ".2f") + "x",
                    f"≥ {TARGETS[anchor]}x: {verdict(r, TARGETS[anchor])}", runs)
    for anchor, label in (("node", "Node"), ("bare", "bare libevent")):
        a = ing.get(anchor)
        if a:
            rs = " / ".join(f(ratio(num(ps, k), num(a, k)), ".2f") for k in ("p50_ms", "p99_ms", "p999_ms"))
            row("ingest p50 / p99 / p99.9 ms at max load", lat(ps), label, lat(a), rs, "-", "")
    # PAYSTREAM_REDIS_MIN_REPLICAS=1: each 200 after WAIT 1 (issue 21), against Node without
    w, a = ing.get("wait1"), ing.get("node")
    if w and a:
        r = ratio(num(w, "rps"), num(a, "rps"))
        runs = f"{f(num(w, 'rps_min'))} - {f(num(w, 'rps_max'))}" if num(w, "runs") != 1 else ""
        row("ingest req/s with MIN_REPLICAS=1 (WAIT 1, one replica)", f(num(w, "rps")),
            "Node stripe + ioredis (no WAIT)", f(num(a, "rps")), f(r, ".2f") + "x",
            f"≥ {TARGETS['wait1']}x: {verdict(r, TARGETS['wait1'])}", runs)
        row("ingest p50 / p99 / p99.9 ms with MIN_REPLICAS=1", lat(w), "Node", lat(a),
            " / ".join(f(ratio(num(w, k), num(a, k)), ".2f") for k in ("p50_ms", "p99_ms", "p999_ms")),
            "-", "")
    half = ing.get("paystream/half")
    if half:
        row(f"ingest p50 / p99 / p99.9 ms at half load ({f(num(half, 'rps'))} req/s)", lat(half), "-", "-", "-",
            f"p99 ≤ 3 ms (issue 3): {verdict(num(half, 'p99_ms'), 3.0, False)}", "")


def worker_table_rows(out, row, spreads):
    for part, what in (("worker", "worker events/s"), ("renewal", "renewal day: worker events/s")):
        for procs, (eps, tps, r, runs) in worker_rows(out, part).items():
            spreads[f"{part} {procs} proc"] = spread(runs)
            row(f"{what}, {procs} process{'es' if procs > 1 else ''}", f(eps),
                "pgbench, event transaction, 8 clients", f(tps), f(r, ".2f") + "x",
                f"≥ {TARGETS[part]}x (issue {ISSUE[part]}): {verdict(r, TARGETS[part])}",
                " - ".join(f(v) for v in (min(runs), max(runs))) if len(runs) > 1 else "")
    for c in results(out + "/catchup.out", "renewal"):
        row(f"catch-up: a backlog of {f(num(c, 'events'))} renewal-day events drained from a standing "
            f"start, {c.get('procs')} processes", f"{f(num(c, 'start_to_drained_events_per_s'))}/s, "
            f"{f(num(c, 'start_to_drained_s'), '.1f')} s", "pgbench, event transaction, 8 clients",
            f(num(c, "anchor_tps")), f(ratio(num(c, "start_to_drained_events_per_s"), num(c, "anchor_tps")), ".2f")
            + "x", "none", "")


def e2e_parts(out, meta):
    """(label, RESULT e2e) of the run at half the pipeline's max, with the best
    worker row's processes, then of the one-process run at half its own max"""
    parts = []
    for name, procs, what in (("e2e", meta.get("e2e_workers", "?"), "½ of max"),
                              ("e2e.1", "1", "½ of 1 process's max")):
        for e in results(f"{out}/{name}.out", "e2e"):
            parts.append((f"{what}, {procs} worker process{'' if procs == '1' else 'es'}", e))
    return parts


def e2e_rows(out, meta, row, spreads):
    for label, e in e2e_parts(out, meta):
        p99 = num(e, "p99_ms")
        if num(e, "runs") != 1:
            spreads[f"e2e p99 ({label})"] = spread([num(e, "p99_min_ms"), num(e, "p99_max_ms"), p99])
        row(f"200 → COMMIT p50 / p99 / p99.9 ms at {f(num(e, 'achieved'))} events/s ({label})",
            " / ".join(f(num(e, k), ".2f") for k in ("p50_ms", "p99_ms", "p999_ms")), "- (no anchor)", "-",
            f"p99 {f(ratio(p99, TARGETS['e2e_p99_ms']), '.2f')}x of target",
            f"p99 ≤ {TARGETS['e2e_p99_ms']:.0f} ms: {verdict(p99, TARGETS['e2e_p99_ms'], False)}",
            f"p99 {f(num(e, 'p99_min_ms'), '.2f')} - {f(num(e, 'p99_max_ms'), '.2f')}" if num(e, "runs") != 1 else "")


def deduct_rows(out, row, spreads):
    for d in results(out + "/deduct.out", "deduct"):
        w = d.get("workload")
        r = num(d, "ratio")
        if num(d, "rounds") != 1:
            spreads[f"deduct {w} ratio"] = spread([num(d, "ratio_min"), num(d, "ratio_max"), r])
        row(f"deduct_credits calls/s, {'one hot user' if w == 'hot' else 'many users'}", f(num(d, "paystream_tps")),
            "pgbench, same SQL without the function", f(num(d, "plain_tps")), f(r, ".2f") + "x",
            f"≥ {TARGETS['deduct']}x: {verdict(r, TARGETS['deduct'])}",
            f"ratio {f(num(d, 'ratio_min'), '.2f')} - {f(num(d, 'ratio_max'), '.2f')}" if num(d, "rounds") != 1 else "")


def backfill_rows(out, row, spreads):
    for b in results(out + "/backfill.out", "backfill"):
        if num(b, "runs") != 1:
            spreads["backfill cold"] = spread([num(b, "cold_min"), num(b, "cold_max"), num(b, "cold_eps")])
        row(f"backfill events/s listed and enqueued ({f(num(b, 'events'))} events, fake API)",
            f(num(b, "cold_eps")), "Stripe's read limit, 100 requests/s of 100 events", "10000",
            f(ratio(num(b, "cold_eps"), 10000), ".2f") + "x", "none",
            f"{f(num(b, 'cold_min'))} - {f(num(b, 'cold_max'))}; all known: {f(num(b, 'warm_eps'))}/s"
            if num(b, "runs") != 1 else f"all known: {f(num(b, 'warm_eps'))}/s")


def notes(out, meta, spreads):
    print()
    for label, e in e2e_parts(out, meta):
        print(f"- 200 → COMMIT ({label}): {f(num(e, 'events'))} events over {f(num(e, 'runs'))} run(s), the first 2 s of each "
              f"left out; ingest's own POST → 200 p99 at that rate {f(num(e, 'ingest_p99_ms'), '.2f')} ms; "
              f"non-200 {f(num(e, 'non200'))}, never committed {f(num(e, 'missing'))}, retried "
              f"{f(num(e, 'retried'))}. Commit times are PostgreSQL's commit timestamps, taken just before "
              f"the WAL flush (mean {f(num(e, 'wal_sync_ms'), '.2f')} ms in the run) that makes the commit durable.")
    big = {k: v for k, v in spreads.items() if v is not None and v > 20}
    ing_other = max((num(r, "other_cpu_max") or 0 for r in results(out + "/ingest.out", "ingest")), default=0)
    busy = float(meta.get("busy_before", 0))
    noisy = big or ing_other > 15 or busy > 15
    print(f"- machine: {meta.get('cores')} cores; load average (1 min) {meta.get('load_before')} before, "
          f"{meta.get('load_after')} after; {busy:.0f}% of all cores busy in the 2 s before the start"
          + (f"; other processes took up to {ing_other:.0f}% of a core during the ingest runs" if ing_other else ""))
    sp = ", ".join(f"{k} {v:.0f}%" for k, v in spreads.items() if v is not None)
    print(f"- spread between runs ((max - min) / median): {sp or 'one run each'}")
    if noisy:
        why = [f"{busy:.0f}% busy before the start"] if busy > 15 else []
        why += [f"other processes at {ing_other:.0f}% of a core during ingest"] if ing_other > 15 else []
        why += [f"{k} spread {v:.0f}%" for k, v in big.items()]
        print(f"- **NOISY machine** ({'; '.join(why)}): treat these figures as low bounds, rerun when quiet")
    else:
        print("- quiet machine: nothing else busy before the start, runs within 20% of each other")


def main():
    out = sys.argv[1]
    meta = {}
    if os.path.exists(out + "/meta"):
        meta = dict(line.strip().split("=", 1) for line in open(out + "/meta") if "=" in line)
    if sys.argv[2:3] == ["--worker-max"]:  # [PROCS]: that row's, else the best row's
        rows = worker_rows(out)
        procs = int(sys.argv[3]) if sys.argv[3:] else max(rows, key=lambda p: rows[p][0], default=None)
        if procs in rows:
            print(f"{rows[procs][0]:.0f} {procs}")
        return
    print("| figure | paystream | anchor | anchor's figure | paystream / anchor | target | runs (min - max) |")
    print("|---|---|---|---|---|---|---|")

    def row(*cells):
        print("| " + " | ".join(cells) + " |")

    spreads = {}
    ingest_rows(out, row, spreads)
    worker_table_rows(out, row, spreads)
    e2e_rows(out, meta, row, spreads)
    deduct_rows(out, row, spreads)
    backfill_rows(out, row, spreads)
    notes(out, meta, spreads)


if __name__ == "__main__":
    main()
