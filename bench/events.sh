# shellcheck shell=bash
# events.sh - the one definition of a bench stream's events, so that the
# worker's max (bench/worker/run), its CPU (bench/worker/cpu) and the latency
# at half of that max (bench/e2e/run) are measured on the same mix.
#
# bench_events ROOT N SEED: N realistic events on stdout (JSON lines of
# tests/events/stripe_events.py): whole lives of N/15 users, both API shapes,
# in time order, starting over 350 days so that past the first tenth every
# stretch has the same mix of sign-ups, packs, upgrades, renewals, refunds and
# cancels (over the generator's default 20 days the last events would be all
# renewals, refunds and cancels).
bench_events() {
    python3 "$1/tests/events/stripe_events.py" gen many --users $(($2 / 15 + 1)) --spread-days 350 \
        --seed "$3" --api-version mixed --plans "$1/tests/events/plans.txt" --limit "$2"
}

# bench_renewal_events ROOT N PACKS DAY SETUP: a renewal day's N events into
# the file DAY, each of which writes the ledger (PACKS pack purchases per user,
# the upgrade's invoice, the renewal's new period and invoice: gen
# renewal-day), and what their users need applied first (sign-ups, upgrades)
# into the file SETUP.
bench_renewal_events() {
    python3 "$1/tests/events/stripe_events.py" gen renewal-day --users $(($2 / ($3 + 3) + 1)) \
        --packs "$3" --spread-days 1 --seed bench --api-version mixed \
        --plans "$1/tests/events/plans.txt" | python3 -c '
import json, sys
n, day, setup = int(sys.argv[1]), open(sys.argv[2], "w"), open(sys.argv[3], "w")
for line in sys.stdin:
    if json.loads(line)["phase"] != "day":
        setup.write(line)
    elif n > 0:
        day.write(line)
        n -= 1' "$2" "$4" "$5"
}

# bench_apply_setup ROOT SETUP: apply the events of the file SETUP to
# PAYSTREAM_DATABASE_URL with two paystream-worker processes of PS_BIN_DIR on
# the stream bench:setup of the Redis on PS_REDIS_PORT (deleted after); fails
# unless all are done within 5 minutes.
bench_apply_setup() {
    local n pids=() p i done=0
    n=$(wc -l <"$2")
    python3 "$1/tests/events/stripe_events.py" resp --stream bench:setup "$2" |
        redis-cli -p "$PS_REDIS_PORT" --pipe >/dev/null
    for i in 1 2; do
        PAYSTREAM_STREAM=bench:setup "$PS_BIN_DIR/paystream-worker" 2>/dev/null &
        pids+=("$!")
    done
    for i in $(seq 1 1200); do
        done=$(psql -X -At "$PAYSTREAM_DATABASE_URL" -c "SELECT count(*) FROM paystream.webhook_events
            WHERE status IN ('applied', 'skipped', 'failed')")
        [ "$done" -ge "$n" ] && break
        sleep 0.25
    done
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    redis-cli -p "$PS_REDIS_PORT" DEL bench:setup >/dev/null
    [ "$done" -ge "$n" ] || { echo "only $done of $n set-up events applied" >&2 && return 1; }
}
