#!/usr/bin/env python3
"""report.py - turn bench/ingest/run's results file into the table.

Input: lines "server=NAME phase=PHASE k=v ..." (see run). Output: a Markdown
table of medians, the ratios, the half-load line, the stream check and the
targets of issue 3, each said met or missed. Exit status is 0 whatever the
numbers: a missed target is a finding, not a crash.
"""
import statistics
import sys

SERVERS = ["paystream", "bare", "node", "paystream2", "wait1"]
LABEL = {
    "paystream": "paystream-ingest",
    "bare": "bare libevent (200 only)",
    "node": "Node stripe+ioredis",
    "paystream2": "paystream-ingest x2 (SO_REUSEPORT, extra row)",
    "wait1": "paystream-ingest, MIN_REPLICAS=1 (WAIT 1, one replica)",
}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            row = {}
            for tok in line.split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    try:
                        row[k] = float(v)
                    except ValueError:
                        row[k] = v
            rows.append(row)
    return rows


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else None


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def ms(us):
    return None if us is None else us / 1000.0


def mib(kib):
    return None if kib is None else kib / 1024.0


def main():
    rows = load(sys.argv[1])
    by = {s: {} for s in SERVERS}
    for r in rows:
        s = r.get("server")
        if s in by:
            by[s].setdefault(r.get("phase"), []).append(r)

    S = {}
    for s in SERVERS:
        mx = by[s].get("max", [])
        if not mx:
            continue
        many = by[s].get("many", [{}])[-1]
        idle = by[s].get("idle", [{}])[-1]
        S[s] = {
            "runs": len(mx),
            "rps": med(mx, "rps_ok"),
            "rps_all": [r["rps_ok"] for r in mx],
            "p50": ms(med(mx, "p50_us")),
            "p99": ms(med(mx, "p99_us")),
            "p999": ms(med(mx, "p999_us")),
            "non2xx": sum(r.get("non2xx", 0) for r in mx),
            "errs": sum(r.get(k, 0) for r in mx for k in ("err_connect", "err_read", "err_write", "err_timeout")),
            "cpu_srv": med(mx, "srv_cpu_pct"),
            "cpu_redis": med(mx, "redis_cpu_pct"),
            "cpu_wrk": med(mx, "wrk_cpu_pct"),
            "cpu_other": med(mx, "other_cpu_pct"),
            "cpu_softirq": med(mx, "softirq_cpu_pct"),
            "cpu_steal": med(mx, "steal_cpu_pct"),
            "other_max": max((r.get("other_cpu_pct", 0) for r in mx), default=0),
            "rss_idle": mib(idle.get("rss_kib")),
            "rss_many": mib(many.get("rss_kib")),
            "hwm": mib(many.get("hwm_kib")),
            "fds_many": many.get("fds"),
            "rps_many": many.get("rps_ok"),
            "many_errs": sum(many.get(k, 0) for k in ("err_connect", "err_read", "err_write", "err_timeout")),
            "xlen": [(r.get("xlen_delta"), r.get("ok")) for r in mx if "xlen_delta" in r],
        }

    print("| server | 2xx req/s (median; runs) | p50 ms | p99 ms | p99.9 ms | CPU % server / redis / wrk / softirq / other | "
          "RSS idle MiB | RSS with 1,000 conns MiB (peak) | req/s with 1,000 conns |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in SERVERS:
        if s not in S:
            continue
        x = S[s]
        runs = ", ".join(f"{v:.0f}" for v in x["rps_all"])
        cpu = f"{fmt(x['cpu_srv'], '.0f')} / {fmt(x['cpu_redis'], '.0f')} / {fmt(x['cpu_wrk'], '.0f')} / {fmt(x['cpu_softirq'], '.0f')} / {fmt(x['cpu_other'], '.0f')}"
        print(f"| {LABEL[s]} | {x['rps']:.0f} ({runs}) | {fmt(x['p50'], '.2f')} | {fmt(x['p99'], '.2f')} | "
              f"{fmt(x['p999'], '.2f')} | {cpu} | {fmt(x['rss_idle'], '.1f')} | "
              f"{fmt(x['rss_many'], '.1f')} ({fmt(x['hwm'], '.1f')}) | {fmt(x['rps_many'], '.0f')} |")
    print()

    notes = []
    for s in SERVERS:
        if s in S and (S[s]["non2xx"] or S[s]["errs"]):
            notes.append(f"{LABEL[s]}: {S[s]['non2xx']:.0f} non-2xx answers and {S[s]['errs']:.0f} socket errors "
                         f"over the measured runs (only 2xx are counted in req/s)")
        if s in S and S[s]["many_errs"]:
            notes.append(f"{LABEL[s]}: {S[s]['many_errs']:.0f} socket errors in the 1,000-connection run")
        if s in S and S[s]["fds_many"] is not None:
            notes.append(f"{LABEL[s]}: {S[s]['fds_many']:.0f} open file descriptors sampled during the "
                         f"1,000-connection run")
    noisy = [LABEL[s] for s in SERVERS if s in S and S[s]["other_max"] > 15]
    steal = max((r.get("steal_cpu_pct", 0) for s in SERVERS for r in by[s].get("max", [])), default=0)
    if steal > 5:
        notes.append(f"the hypervisor took up to {steal:.0f}% of a core (steal) during some runs")
    for r in by["paystream"].get("half", []):
        if r.get("other_cpu_pct", 0) > 15 and "paystream half load" not in noisy:
            noisy.append("paystream half load")
    if noisy:
        notes.append("NOISY: other processes took more than 15% of a core (besides server, redis, wrk "
                     "and the loopback softirqs) "
                     f"during some runs of: {', '.join(noisy)}; rerun on a quiet machine")
    else:
        notes.append("quiet machine: other processes took at most 15% of a core in every run")
    for n in notes:
        print(f"- {n}")

    verdicts = []

    def ratio(a, b, target, what):
        if a in S and b in S and S[b]["rps"]:
            r = S[a]["rps"] / S[b]["rps"]
            ok = r >= target
            print(f"- {what}: {r:.2f}x (target >= {target}x: {'met' if ok else 'MISSED'})")
            verdicts.append(ok)

    print()
    print("Ratios (2xx req/s, medians of the same run):")
    ratio("paystream", "node", 5.0, "paystream / node")
    ratio("paystream", "bare", 0.8, "paystream / bare")
    ratio("wait1", "node", 3.0, "paystream with WAIT 1 / node (without)")
    if "node" in S and "bare" in S:
        print(f"- node / bare: {S['node']['rps'] / S['bare']['rps']:.2f}x")
    # CPU time per request moves much less with other load than req/s does
    cpu_us = {s: S[s]["cpu_srv"] / 100.0 / S[s]["rps"] * 1e6 for s in SERVERS
              if s in S and S[s]["cpu_srv"] and S[s]["rps"]}
    if cpu_us:
        print("- server CPU per request (medians): " + ", ".join(
            f"{s} {v:.1f} us" for s, v in cpu_us.items()) +
            ("; bare / paystream " f"{cpu_us['bare'] / cpu_us['paystream']:.2f}x, "
             f"node / paystream {cpu_us['node'] / cpu_us['paystream']:.2f}x "
             "(what the req/s ratios become when each server has a core to itself)"
             if all(k in cpu_us for k in ("bare", "node", "paystream")) else ""))
    for b in ("node", "bare"):  # two processes against one: shown, not judged
        if "paystream2" in S and b in S:
            print(f"- paystream x2 processes / {b} (1 process): "
                  f"{S['paystream2']['rps'] / S[b]['rps']:.2f}x (not like for like)")

    half = by["paystream"].get("half", [])
    if half:
        p99 = ms(med(half, "p99_us"))
        print()
        print(f"paystream at half of its max load (target {med(half, 'target_rps'):.0f} req/s; "
              f"achieved median {med(half, 'rps_ok'):.0f} req/s over {len(half)} runs, "
              f"{med(half, 'conns'):.0f} connections, exponential think time of mean "
              f"{med(half, 'delay_ms'):.2f} ms): p50 {ms(med(half, 'p50_us')):.2f} ms, "
              f"p99 {p99:.2f} ms, p99.9 {ms(med(half, 'p999_us')):.2f} ms "
              f"(target p99 <= 3 ms: {'met' if p99 <= 3.0 else 'MISSED'})")
        verdicts.append(p99 <= 3.0)

    if "paystream" in S and S["paystream"]["rss_many"] is not None:
        rss = S["paystream"]["rss_many"]
        hwm = S["paystream"]["hwm"]
        ok = rss <= 32.0 and (hwm is None or hwm <= 32.0)
        print(f"paystream RSS with 1,000 open connections: {rss:.1f} MiB sampled mid-run, "
              f"peak (VmHWM over the whole bench) {fmt(hwm, '.1f')} MiB (target <= 32 MiB: "
              f"{'met' if ok else 'MISSED'})")
        verdicts.append(ok)

    print()
    print("Stream check (XLEN growth vs 200 answers, per measured run; growth may exceed the 200s "
          "counted by at most the requests in flight when wrk stopped):")
    for s in ("paystream", "node", "paystream2", "wait1"):
        if s not in S:
            continue
        parts = []
        bad = False
        for d, ok in S[s]["xlen"]:
            parts.append(f"+{d:.0f} for {ok:.0f}")
            bad |= d < ok
        print(f"- {LABEL[s]}: {'; '.join(parts)} -> "
              f"{'a 200 without its entry: NOT HONEST' if bad else 'every 200 is in the stream'}")

    print()
    print(f"Targets met: {sum(verdicts)}/{len(verdicts)}")

    # one machine-readable line per server and for the half-load runs (read by bench/run)
    for s in (s for s in SERVERS if s in S):
        x = S[s]
        print(f"RESULT ingest server={s} rps={x['rps']:.0f} rps_min={min(x['rps_all']):.0f} "
              f"rps_max={max(x['rps_all']):.0f} p50_ms={fmt(x['p50'], '.2f')} p99_ms={fmt(x['p99'], '.2f')} "
              f"p999_ms={fmt(x['p999'], '.2f')} runs={x['runs']} other_cpu_max={x['other_max']:.0f}")
    if half:
        print(f"RESULT ingest server=paystream phase=half rps={med(half, 'rps_ok'):.0f} "
              f"p50_ms={ms(med(half, 'p50_us')):.2f} p99_ms={ms(med(half, 'p99_us')):.2f} "
              f"p999_ms={ms(med(half, 'p999_us')):.2f} runs={len(half)}")


if __name__ == "__main__":
    main()
