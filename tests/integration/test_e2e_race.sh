# test_e2e_race.sh - two workers applying the same events at once apply each
# of them once (sql/batch.sql: the event's row is written once, at its finish; the
# second worker's write finds the first one's committed row, its savepoint is
# rolled back with all it did, and it counts a duplicate):
#
#  1. Rounds of one subscriber's life, each delivered twice: worker A takes
#     the first copy and waits mid-batch on a lock the test holds on the
#     accounts, worker B takes the second copy and waits behind it. Both
#     checked the first event before either wrote anything (B's statement
#     started while A could not commit); once the lock is released, one
#     applies it and the other one finds it applied only at its finish.
#  2. Many users' events, each 64-entry chunk (one read) of the stream twice
#     in a row, two worker processes reading them: every event applied once,
#     no ledger row twice, the balances as SPEC 4 says.
. "$(dirname "$0")/e2e_lib.sh"

PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))
ROUNDS=4

e2e_setup

# waiting_workers: worker backends waiting on a lock
waiting_workers() {
    sql "SELECT count(*) FROM pg_stat_activity WHERE datname = 'paystream' AND pid <> pg_backend_pid()
          AND wait_event_type = 'Lock' AND query LIKE '%paystream.ps_%'"
}

# wait_waiting N: until N worker backends wait on a lock (1 after 20 s)
wait_waiting() {
    for _ in $(seq 1 200); do
        [ "$(waiting_workers)" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

no_ledger_row_twice() {
    sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
          GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d"
}

# -------------------------------------- 1. both workers mid-batch, one lock --
start_worker WA PAYSTREAM_CONCURRENCY=1 PAYSTREAM_CLAIM_IDLE_MS=60000
start_worker WB PAYSTREAM_CONCURRENCY=1 PAYSTREAM_CLAIM_IDLE_MS=60000
LIFE=$E2E_DIR/life.jsonl
: >"$LIFE"
mkfifo "$E2E_DIR/locker"
for r in $(seq 1 "$ROUNDS"); do
    F=$E2E_DIR/round$r.jsonl
    gen lifecycle --seed "race-$r" --user "c0ffee00-0000-4000-8000-00000000ace$r" >"$F"
    cat "$F" >>"$LIFE"
    "${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" <"$E2E_DIR/locker" >/dev/null &
    locker=$!
    exec 3>"$E2E_DIR/locker"
    echo "BEGIN; LOCK TABLE paystream.subscriptions IN EXCLUSIVE MODE;" >&3
    sleep 0.3
    python3 "$EVENTS" resp --stream "$STREAM" "$F" | rcli --pipe >/dev/null
    wait_waiting 1 || check "round $r: a worker waits mid-batch" yes no
    python3 "$EVENTS" resp --stream "$STREAM" "$F" | rcli --pipe >/dev/null
    wait_waiting 2 || check "round $r: the other worker waits mid-batch too" yes no
    echo "COMMIT;" >&3
    exec 3>&-
    wait "$locker"
done
wait_drain "$(distinct_ids "$LIFE")" 60
check "each raced event recorded once, applied in its first attempt" \
    "$(expected_statuses "$LIFE")" "$(recorded_statuses "$LIFE")"
check "no raced event counted two attempts" 0 \
    "$(sql "SELECT count(*) FROM paystream.webhook_events WHERE attempts <> 1")"
check "no ledger row written twice" 0 "$(no_ledger_row_twice)"
check "the raced subscribers' balances equal one application's" \
    "$(for r in $(seq 1 "$ROUNDS"); do echo "0 $((PACK - REFUND_DUE)) $((PACK - REFUND_DUE))"; done)" \
    "$(for r in $(seq 1 "$ROUNDS"); do balance "c0ffee00-0000-4000-8000-00000000ace$r"; done)"
stop_worker "$WA"
stop_worker "$WB"
dups=$(cat "$E2E_DIR"/worker-W[AB].log | sed -n 's/.*stopped: [0-9]* applied, [0-9]* skipped, \([0-9]*\) duplicates.*/\1/p' |
    awk '{ s += $1 } END { print s + 0 }')
check "the second copy of every event was counted as a duplicate" "$(distinct_ids "$LIFE")" "$dups"

# ------------------------------------- 2. every chunk delivered twice at once --
USERS=${PS_E2E_RACE_USERS:-120}
M=$E2E_DIR/many.jsonl
gen many --users "$USERS" --seed race-many --api-version mixed >"$M"
before=$(done_events)
total=$((before + $(distinct_ids "$M")))
python3 "$EVENTS" resp --stream "$STREAM" <(python3 - "$M" <<'EOF'
import sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
for i in range(0, len(lines), 64):
    print("\n".join(lines[i:i + 64] * 2))
EOF
) | rcli --pipe >/dev/null
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
wait_drain "$total" 180
check "every event recorded exactly once, with the right status" \
    "$(expected_statuses "$M")" "$(recorded_statuses "$M")"
check "no Stripe-made ledger row written twice" 0 "$(no_ledger_row_twice)"
canceled=$(((USERS + 2) / 3))
check "balances of all $USERS users as SPEC 4 says" \
    "$((USERS - canceled)) active pro $PRO $((PACK - REFUND_DUE))
$canceled canceled pro 0 $((PACK - REFUND_DUE))" \
    "$(sql "SELECT count(*) || ' ' || status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
              FROM paystream.subscriptions WHERE user_id::text NOT LIKE 'c0ffee00-%'
             GROUP BY status, plan, credits_remaining, overage_credits ORDER BY status")"
check "nothing pending, no dead letter" "0 0" "$(group_field pending) $(rcli XLEN "$STREAM:dead")"
reconcile_clean
stop_worker "$W1"
stop_worker "$W2"
done_testing
