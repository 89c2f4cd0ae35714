# test_e2e_restart.sh - Redis and PostgreSQL going away under running workers
# (SPEC 3: NOGROUP is recovered; lost connections are retried forever; never a
# lost event, never one applied twice).
#
#  1. XGROUP DESTROY while events are being applied: the workers re-create the
#     group (from the start of the stream) and go on; re-delivered events are
#     recognised as done.
#  2. Redis restarted without persistence while events are posted: the stream
#     and group are gone. Ingest answers 503 meanwhile (the poster retries, as
#     Stripe does); afterwards every event is delivered again.
#  3. PostgreSQL restarted with `pg_ctl restart -m immediate` mid-transaction.
# After each: every event recorded once, balances as SPEC 4 says, reconcile clean.
. "$(dirname "$0")/e2e_lib.sh"

USERS=${PS_E2E_RESTART_USERS:-40}
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))
users=0
total=0
POSTER=

e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=1500
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=1500

# post_bg FILE [OPTIONS...]: post in the background (pid in POSTER)
post_bg() {
    local f=$1
    shift
    post "$f" "" "$@" >"$E2E_DIR/post-$(basename "$f").log" 2>&1 &
    POSTER=$!
    E2E_PIDS+=("$POSTER")
}

# post_wait: the background post must succeed
post_wait() {
    local rc=0
    wait "$POSTER" || rc=$?
    e2e_forget "$POSTER"
    check "every event posted (ingest answered 200 in the end)" 0 "$rc"
    [ "$rc" = 0 ] || cat "$E2E_DIR"/post-*.log
}

# check_all NAME FILE...: the events of FILEs recorded once each, and the
# users' balances as SPEC 4 says (users i % 3 == 0 of each file cancel)
check_all() {
    local name=$1
    shift
    cat "$@" >"$E2E_DIR/check.jsonl"
    check "$name: every event recorded exactly once, with the right status" \
        "$(expected_statuses "$E2E_DIR/check.jsonl")" "$(recorded_statuses "$E2E_DIR/check.jsonl")"
    check "$name: no Stripe-made ledger row written twice" 0 \
        "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
                GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d")"
    local canceled=$(($# * ((USERS + 2) / 3)))
    check "$name: balances of all users" \
        "$((users - canceled)) active pro $PRO $((PACK - REFUND_DUE))
$canceled canceled pro 0 $((PACK - REFUND_DUE))" \
        "$(sql "SELECT count(*) || ' ' || status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
                  FROM paystream.subscriptions GROUP BY status, plan, credits_remaining, overage_credits
                  ORDER BY status")"
    check "$name: nothing pending, nothing dead" "0 0" "$(group_field pending) $(rcli XLEN "$STREAM:dead")"
    reconcile_clean
}

# next_set NAME: a file of USERS users' lives
next_set() {
    gen many --users "$USERS" --seed "restart-$1" --api-version mixed >"$E2E_DIR/$1.jsonl"
    users=$((users + USERS))
    total=$((total + $(distinct_ids "$E2E_DIR/$1.jsonl")))
}

# ------------------------------------------------------ 1. group destroyed --
next_set a
post_bg "$E2E_DIR/a.jsonl"
wait_done 150 120 || check "events applied before the group is destroyed" yes no
check "XGROUP DESTROY while workers apply events" 1 "$(rcli XGROUP DESTROY "$STREAM" "$GROUP")"
post_wait
wait_drain "$total" 180
check "the workers saw NOGROUP and re-created the group" yes \
    "$(grep -q 'lost (Redis restarted?)' "$E2E_DIR"/worker-W*.log && echo yes || echo no)"
check_all "group destroyed" "$E2E_DIR/a.jsonl"

# ------------------------------------------ 2. Redis restarted, data lost --
next_set b
before=$(done_events)
# at 200 events/s, so that posting goes on while Redis is down
post_bg "$E2E_DIR/b.jsonl" --rate 200
wait_done $((before + 100)) 120 || check "events applied before Redis restarts" yes no
rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
check "Redis is down" 1 "$(rcli PING >/dev/null 2>&1 && echo 0 || echo 1)"
sleep 2
redis-server --port "$PS_REDIS_PORT" --bind 127.0.0.1 --dir "$PS_STACK_DIR/redis" \
    --daemonize yes --pidfile "$PS_STACK_DIR/redis.pid" --logfile "$PS_STACK_DIR/redis.log" \
    --save '' --appendonly no --maxmemory-policy noeviction >/dev/null
for _ in $(seq 1 50); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
post_wait
check "ingest refused events while Redis was down (503), the poster's retries got through" yes \
    "$(grep -qE 'retried: .*(503|no-answer)' "$E2E_DIR/post-b.jsonl.log" && echo yes || echo no)"
# what was in the stream before the restart is gone: deliver everything again
post "$E2E_DIR/a.jsonl"
post "$E2E_DIR/b.jsonl"
wait_drain "$total" 180
check "the stream holds the events delivered again" yes \
    "$([ "$(rcli XLEN "$STREAM")" -ge "$(distinct_ids "$E2E_DIR/b.jsonl")" ] && echo yes || echo no)"
check_all "Redis restarted" "$E2E_DIR/a.jsonl" "$E2E_DIR/b.jsonl"

# ------------------------------------------------ 3. PostgreSQL restarted --
next_set c
before=$(done_events)
post_bg "$E2E_DIR/c.jsonl"
wait_done $((before + 150)) 120 || check "events applied before PostgreSQL restarts" yes no
rc=0
stack_as_pg "$PS_PG_BIN/pg_ctl" -D "$PS_STACK_DIR/pg" -m immediate -w -t 60 \
    -l "$PS_STACK_DIR/pg.log" restart >/dev/null 2>&1 || rc=$?
check "pg_ctl restart -m immediate while workers apply events" 0 "$rc"
post_wait
wait_drain "$total" 180
check "the workers lost PostgreSQL mid-event and reconnected" yes \
    "$(grep -q 'PostgreSQL connection lost' "$E2E_DIR"/worker-W*.log && echo yes || echo no)"
check_all "PostgreSQL restarted" "$E2E_DIR/a.jsonl" "$E2E_DIR/b.jsonl" "$E2E_DIR/c.jsonl"
stop_worker "$W1"
stop_worker "$W2"
done_testing
