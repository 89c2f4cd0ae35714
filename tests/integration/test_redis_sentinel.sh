# test_redis_sentinel.sh - lose the Redis master, lose nothing (SPEC 9).
#
# A master, one replica and three sentinels (tests/harness/sentinel.sh); ingest
# with a redis-sentinel:// URL and PAYSTREAM_REDIS_MIN_REPLICAS=1, two workers
# with the same URL. While signed events (the official stripe package) are
# posted, the master is killed with SIGKILL, and so is one worker, holding
# entries; the sentinels promote the replica, the old master is started again
# and becomes a replica of the new one. Then: every event that got a 200 is in
# the new master's stream and applied exactly once, balances as SPEC 4 says,
# reconcile clean, the surviving worker took the dead one's entries over
# (XAUTOCLAIM), and no process of ours crashed. The time from the kill to the
# first 200 again and the 503s meanwhile are printed. Last, with the only
# replica stopped, ingest answers 503 within PAYSTREAM_REDIS_TIMEOUT_MS and
# never 200, and answers 200 again once the replica is back.
. "$(dirname "$0")/e2e_lib.sh"
# shellcheck source=../harness/sentinel.sh
. "$PS_SOURCE_DIR/tests/harness/sentinel.sh"
E2E_AFTER_STOP+=(sentinel_stop_all)

USERS=${PS_SENTINEL_USERS:-120}
TIMEOUT_MS=1500
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))
NODE=$PS_SOURCE_DIR/tests/node/post_events.js
now_ms() { date +%s%3N; }

# ---- before any sentinel runs: malformed URLs stop every program at start,
# in one line naming the setting, never showing the password
for prog in paystream-ingest paystream-worker paystreamctl; do
    args=()
    [ "$prog" = paystreamctl ] && args=(status)
    out=$(STRIPE_WEBHOOK_SECRET=$SECRET PAYSTREAM_REDIS_URL='redis-sentinel://:hunter2@127.0.0.1:1,127.0.0.1:2' \
        timeout 10 "$PS_BIN_DIR/$prog" "${args[@]}" 2>&1) && st=0 || st=$?
    check "$prog: a sentinel URL without #MASTER stops it at start, naming the setting, no password" \
        "stopped 1 1 0" "$([ "$st" != 0 ] && [ "$st" != 124 ] && echo stopped || echo "exit $st") \
$(wc -l <<<"$out") $(grep -c PAYSTREAM_REDIS_URL <<<"$out") $(grep -c hunter2 <<<"$out")"
done
# no sentinel answers: ingest runs, /readyz and webhooks answer 503 at once
port=$(stack_free_port)
dead="redis-sentinel://127.0.0.1:$(stack_free_port),127.0.0.1:$(stack_free_port)/0#$SENTINEL_NAME"
STRIPE_WEBHOOK_SECRET=$SECRET PAYSTREAM_LISTEN=127.0.0.1:$port PAYSTREAM_REDIS_URL=$dead \
    "$PS_BIN_DIR/paystream-ingest" >>"$E2E_DIR/ingest-nomaster.log" 2>&1 &
NOMASTER=$!
E2E_PIDS+=("$NOMASTER")
sentinel_wait 10 eval "curl -s -o /dev/null http://127.0.0.1:$port/healthz" ||
    check "ingest with no sentinel answering still runs" yes no
check "no master known: /readyz 503" 503 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")"
gen many --users 1 --seed sentinel-nomaster --api-version mixed --limit 1 >"$E2E_DIR/one.jsonl"
PS_POST_LOG=$E2E_DIR/nomaster.log PS_POST_ONCE=1 node "$NODE" "http://127.0.0.1:$port/webhooks/stripe" \
    "$SECRET" "$E2E_DIR/one.jsonl"
check "no master known: a webhook gets 503 within the timeout" "503 yes" \
    "$(awk '{ print $2, ($3 < 2000 ? "yes" : "no (" $3 " ms)") }' "$E2E_DIR/nomaster.log")"
check "the sentinels' failure is logged without a password" 1 \
    "$(grep -c 'no sentinel knows master' "$E2E_DIR/ingest-nomaster.log" | awk '{ print ($1 > 0) }')"
kill -TERM "$NOMASTER"
e2e_wait_exit "$NOMASTER" 10 || true
e2e_forget "$NOMASTER"

sentinel_start
echo "# master on ${NODE_PORT[0]}, replica on ${NODE_PORT[1]}, sentinels on ${SENTINEL_PORT[*]}"
export PAYSTREAM_REDIS_URL=$SENTINEL_URL PAYSTREAM_REDIS_TIMEOUT_MS=$TIMEOUT_MS
export PAYSTREAM_REDIS_MIN_REPLICAS=1
export PS_REDIS_PORT=${NODE_PORT[0]} # for e2e_lib's rcli

e2e_setup
start_ingest
check "ingest found the master through the sentinels" yes \
    "$(grep -q "connected to 127.0.0.1:${NODE_PORT[0]}" "$E2E_DIR/ingest.log" && echo yes || echo no)"
WORKER_ENV=(PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=1500)
start_worker W1 "${WORKER_ENV[@]}"
start_worker W2 "${WORKER_ENV[@]}"

F=$E2E_DIR/many.jsonl
gen many --users "$USERS" --seed sentinel --api-version mixed >"$F"
TOTAL=$(distinct_ids "$F")
LOG=$E2E_DIR/post.log
: >"$LOG"
PS_POST_LOG=$LOG PS_POST_ATTEMPTS=2000 PS_POST_RETRY_MAX_MS=100 \
    node "$NODE" "$INGEST_URL" "$SECRET" "$F" >"$E2E_DIR/poster.log" 2>&1 &
POSTER=$!
E2E_PIDS+=("$POSTER")

# a quarter in: the master's machine is lost, and a worker with it. So that
# the master surely dies with entries delivered and not acknowledged, the
# workers pause a moment and a consumer of that machine reads a few entries
# (made sure to be on the replica by WAIT, as the workers' reads usually are).
sentinel_wait 60 eval '[ "$(grep -c " 200 " "$LOG")" -ge $((TOTAL / 4)) ]' ||
    check "a quarter of the events posted within 60 s" yes no
kill -STOP "$W1" "$W2"
sleep 0.5
LOST=lost-host:1:0
held=$(printf 'XREADGROUP GROUP %s %s COUNT 5 STREAMS %s >\nWAIT 1 1000\n' "$GROUP" "$LOST" "$STREAM" |
    redis-cli -p "${NODE_PORT[0]}" | grep -c '^evt_' || true)
sentinel_node_kill 0
T_KILL=$(now_ms)
kill -KILL "$W1"
kill -CONT "$W2"
e2e_wait_exit "$W1" 10 || true
e2e_forget "$W1"
echo "# master and worker W1 killed at $(grep -c " 200 " "$LOG") of $TOTAL events answered 200; $LOST held $held entries"
check "a consumer of the lost machine held entries" yes "$([ "$held" -gt 0 ] && echo yes || echo "no ($held)")"

sentinel_wait 30 eval '[ "$(sentinel_master_port)" = "${NODE_PORT[1]}" ]' ||
    check "the sentinels promoted the replica within 30 s" yes no
T_PROMOTED=$(now_ms)
echo "# promoted after $((T_PROMOTED - T_KILL)) ms"
export PS_REDIS_PORT=${NODE_PORT[1]}
check "the promoted replica says it is the master" master "$(node_role "${NODE_PORT[1]}")"

# the old master comes back: it must not be written to, and becomes a replica
sentinel_node_start 0
sentinel_wait 60 eval '[ "$(node_role "${NODE_PORT[0]}")" = slave ]' ||
    check "the old master became a replica within 60 s" yes no
T_DEMOTED=$(now_ms)
echo "# old master a replica again $((T_DEMOTED - T_KILL)) ms after the kill"
MASTER=$(sentinel_master_port)
check "the sentinels still name the promoted replica" "${NODE_PORT[1]}" "$MASTER"

e2e_wait_exit "$POSTER" 120 || check "every event answered 200 within 120 s" yes no
rc=0
wait "$POSTER" || rc=$?
e2e_forget "$POSTER"
check "the poster got a 200 for every event (retrying 503s as Stripe does)" 0 "$rc"

FIRST_200=$(awk -v t="$T_KILL" '$1 >= t && $2 == 200 { print $1; exit }' "$LOG")
N503=$(awk -v t="$T_KILL" '$1 >= t && $2 == 503' "$LOG" | wc -l)
OTHER=$(awk '$2 != 200 && $2 != 503 { print $2 }' "$LOG" | sort | uniq -c | tr -s ' \n' ' ')
echo "# failover: kill -> first 200 again $((FIRST_200 - T_KILL)) ms, $N503 answers 503 meanwhile"
echo "# (promotion $((T_PROMOTED - T_KILL)) ms, old master a replica $((T_DEMOTED - T_KILL)) ms)"
check "no answer but 200 and 503" "" "$OTHER"
check "ingest answered 200 again after the failover" yes "$([ -n "$FIRST_200" ] && echo yes || echo no)"
check "ingest followed the master to the promoted replica" yes \
    "$(grep -q "connected again to 127.0.0.1:${NODE_PORT[1]}" "$E2E_DIR/ingest.log" && echo yes || echo no)"
check "ingest never connected to the old master after the kill" no \
    "$(awk -v p="127.0.0.1:${NODE_PORT[0]}" 'index($0, "connected again to " p)' "$E2E_DIR/ingest.log" | grep -q . && echo yes || echo no)"
check "ingest is connected to the master the sentinels name" "127.0.0.1:$MASTER" \
    "$(grep -o 'connected again to [0-9.:]*' "$E2E_DIR/ingest.log" | tail -n 1 | awk '{ print $4 }')"

# every event that got a 200 is in the new master's stream
awk '$2 == 200 { print $4 }' "$LOG" | sort -u >"$E2E_DIR/acked.txt"
rcli --json XRANGE "$STREAM" - + | python3 -c '
import json, sys
for _id, f in json.load(sys.stdin):
    f = dict(zip(f[::2], f[1::2])) if isinstance(f, list) else f
    print(f["id"])' | sort -u >"$E2E_DIR/in-stream.txt"
check "every event answered 200 is in the new master's stream" "" \
    "$(comm -23 "$E2E_DIR/acked.txt" "$E2E_DIR/in-stream.txt" | head -5 | tr '\n' ' ')"

wait_drain "$TOTAL" 120
check "every event recorded exactly once, with the right status" \
    "$(expected_statuses "$F")" "$(recorded_statuses "$F")"
check "no Stripe-made ledger row was written twice" 0 \
    "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
            GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d")"
canceled=$(((USERS + 2) / 3)) # users i with i % 3 == 0 cancel (stripe_events.py gen many)
check "balances of all $USERS users as SPEC 4 says" \
    "$(printf 'active pro %s %s\ncanceled pro 0 %s' "$PRO" "$((PACK - REFUND_DUE))" "$((PACK - REFUND_DUE))" |
        awk -v c="$canceled" -v a="$((USERS - canceled))" 'NR == 1 { print a, $0 } NR == 2 { print c, $0 }')" \
    "$(sql "SELECT count(*) || ' ' || status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
              FROM paystream.subscriptions GROUP BY status, plan, credits_remaining, overage_credits ORDER BY status")"
check "nothing pending, nothing dead-lettered" "0 0" "$(group_field pending) $(rcli XLEN "$STREAM:dead")"
check "the surviving worker took entries over with XAUTOCLAIM" yes \
    "$(grep -q 'took over' "$E2E_DIR/worker-W2.log" && echo yes || echo no)"
check "nothing left pending for the lost machine's consumer" 0 \
    "$(rcli XPENDING "$STREAM" "$GROUP" - + 100 "$LOST" | grep -c . || true)"
check "the worker found the new master" yes \
    "$(grep -q 'Redis is back' "$E2E_DIR/worker-W2.log" && echo yes || echo no)"
reconcile_clean
check "paystreamctl status reaches the master through the sentinels" yes \
    "$("$CTL" status 2>&1 | grep -qi 'stream' && echo yes || echo no)"
check "ingest still running" yes "$(kill -0 "$INGEST_PID" 2>/dev/null && echo yes || echo no)"
check "worker W2 still running" yes "$(kill -0 "$W2" 2>/dev/null && echo yes || echo no)"

# the only replica gone: durability before availability, 503 and never 200
sentinel_node_stop 0
gen many --users 1 --seed sentinel-noreplica --api-version mixed --limit 8 >"$E2E_DIR/late.jsonl"
LATE=$E2E_DIR/late.log
PS_POST_LOG=$LATE PS_POST_ONCE=1 node "$NODE" "$INGEST_URL" "$SECRET" "$E2E_DIR/late.jsonl"
check "with no replica, no 200" 0 "$(awk '$2 == 200' "$LATE" | wc -l)"
check "with no replica, every answer 503" "$(wc -l <"$LATE")" "$(awk '$2 == 503' "$LATE" | wc -l)"
slowest=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$LATE")
echo "# with no replica: $(wc -l <"$LATE") answers 503, the slowest in $slowest ms"
check "each 503 within PAYSTREAM_REDIS_TIMEOUT_MS" yes "$([ "$slowest" -le "$TIMEOUT_MS" ] && echo yes || echo no)"
check "ingest counts the shortfalls in /metrics" yes \
    "$(curl -sf "${INGEST_URL%/webhooks/stripe}/metrics" |
        awk '$1 == "paystream_ingest_redis_wait_shortfalls_total" && $2 > 0 { print "yes" }')"

# the replica back: 200 again, without restarting anything
sentinel_node_start 0
sentinel_wait 30 eval '[ "$(node_online_replicas "${NODE_PORT[1]}")" = 1 ]' ||
    check "the replica streams again within 30 s" yes no
PS_POST_LOG=$E2E_DIR/back.log PS_POST_ATTEMPTS=50 PS_POST_RETRY_MAX_MS=200 \
    node "$NODE" "$INGEST_URL" "$SECRET" "$E2E_DIR/late.jsonl"
check "with the replica back, 200 again" yes "$(grep -q ' 200 ' "$E2E_DIR/back.log" && echo yes || echo no)"

stop_worker "$W2"
done_testing
