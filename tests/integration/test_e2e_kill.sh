# test_e2e_kill.sh - a worker killed with SIGKILL in the middle of its batches
# loses nothing and applies nothing twice (SPEC 3).
#
# The stream is prefilled through ingest with a few thousand events of many
# users (both API shapes). A worker is started and SIGKILLed part-way, with
# entries in hand; a new worker process (so new consumer names) must take the
# dead consumers' pending entries over with XAUTOCLAIM. That one is killed too,
# and a third one finishes. Then: every event recorded exactly once, balances
# as SPEC 4 says for every user, nothing pending, reconcile clean.
. "$(dirname "$0")/e2e_lib.sh"

USERS=${PS_E2E_KILL_USERS:-200}
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))
WORKER_ENV=(PAYSTREAM_CONCURRENCY=4 PAYSTREAM_CLAIM_IDLE_MS=1500)

e2e_setup
start_ingest
F=$E2E_DIR/many.jsonl
gen many --users "$USERS" --seed kill --api-version mixed >"$F"
TOTAL=$(distinct_ids "$F")
post "$F"
check "stream prefilled" "$TOTAL" "$(rcli XLEN "$STREAM")"

# consumers_pending PID: entries pending for the consumers of worker PID
consumers_pending() {
    rcli --json XINFO CONSUMERS "$STREAM" "$GROUP" | python3 -c '
import json, sys
n = 0
for c in json.load(sys.stdin):
    c = dict(zip(c[::2], c[1::2])) if isinstance(c, list) else c
    if c["name"].split(":")[-2] == sys.argv[1]:
        n += c["pending"]
print(n)' "$1"
}

# kill_midway PID FRACTION: SIGKILL the worker once FRACTION of the events are done
kill_midway() {
    wait_done $((TOTAL * $2 / 100)) 120 || check "worker reached $2% of the events" yes no
    kill -KILL "$1"
    e2e_wait_exit "$1" 10 || true
    e2e_forget "$1"
}

start_worker W1 "${WORKER_ENV[@]}"
kill_midway "$W1" 30
held1=$(consumers_pending "$W1")
echo "# first worker killed at $(done_events) of $TOTAL events, holding $held1 entries"
check "the killed worker held entries" yes "$([ "$held1" -gt 0 ] && echo yes || echo "no ($held1)")"

start_worker W2 "${WORKER_ENV[@]}"
kill_midway "$W2" 65
held2=$(consumers_pending "$W2")
echo "# second worker killed at $(done_events) of $TOTAL events, holding $held2 entries"

start_worker W3 "${WORKER_ENV[@]}"
wait_drain "$TOTAL" 240
check "the killed workers' entries were taken over" "0 0" \
    "$(consumers_pending "$W1") $(consumers_pending "$W2")"
check "a new worker took over idle entries with XAUTOCLAIM" yes \
    "$(grep -q 'took over' "$E2E_DIR"/worker-W2.log "$E2E_DIR"/worker-W3.log && echo yes || echo no)"

check "every event recorded exactly once, with the right status" \
    "$(expected_statuses "$F")" "$(recorded_statuses "$F")"
check "no Stripe-made ledger row was written twice" 0 \
    "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
            GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d")"
# users i with i % 3 == 0 cancel (see stripe_events.py gen many)
canceled=$(((USERS + 2) / 3))
check "balances of all $USERS users as SPEC 4 says" \
    "$(printf 'active pro %s %s\ncanceled pro 0 %s' "$PRO" "$((PACK - REFUND_DUE))" "$((PACK - REFUND_DUE))" |
        awk -v c="$canceled" -v a="$((USERS - canceled))" 'NR == 1 { print a, $0 } NR == 2 { print c, $0 }')" \
    "$(sql "SELECT count(*) || ' ' || status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
              FROM paystream.subscriptions GROUP BY status, plan, credits_remaining, overage_credits ORDER BY status")"
check "nothing pending" 0 "$(group_field pending)"
check "nothing dead-lettered" 0 "$(rcli XLEN "$STREAM:dead")"
reconcile_clean
stop_worker "$W3"
done_testing
