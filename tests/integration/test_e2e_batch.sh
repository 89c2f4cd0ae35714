# test_e2e_batch.sh - a worker applies what one read returns in one
# transaction, a savepoint per event (SPEC 3 with worker/batch.c):
#
#  1. One batch holding a subscriber's whole life, poison events in between
#     (unknown price, unknown pack, a user never found, malformed JSON) and one
#     event twice: the good events commit together in one transaction, in
#     their first attempt; each poison event is retried and dead-lettered
#     alone (the one whose user is never found after PAYSTREAM_WAIT_MAX); the
#     repeated event is applied once.
#  2. The workers' PostgreSQL connections are cut again and again while they
#     apply a few thousand events: nothing of a cut batch is acknowledged,
#     all of it is applied again, nothing is lost and nothing applied twice.
#  3. Consumers of worker processes that are gone (no pending entries, idle
#     past twice PAYSTREAM_CLAIM_IDLE_MS, no alive key) are removed from the
#     group; a live consumer keeps its alive key until its worker stops.
. "$(dirname "$0")/e2e_lib.sh"

ATTEMPTS=3
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))

e2e_setup

# ---------------------------------------------- 1. poison inside a batch --
U=c0ffee00-0000-4000-8000-00000000ba7c
G=$E2E_DIR/good.jsonl
P=$E2E_DIR/poison.jsonl
B=$E2E_DIR/batch.jsonl
gen lifecycle --seed batch-good --user "$U" >"$G"
gen poison --seed batch-poison >"$P"
# good and poison events interleaved, and the third good event twice in a row
python3 - "$G" "$P" >"$B" <<'EOF'
import sys
good = open(sys.argv[1]).read().splitlines()
poison = open(sys.argv[2]).read().splitlines()
out = []
for i, line in enumerate(good):
    out.append(line)
    if i == 2:
        out.append(line)
    if i % 5 == 4 and poison:
        out.append(poison.pop(0))
print("\n".join(out + poison))
EOF
python3 "$EVENTS" resp --stream "$STREAM" "$B" | rcli --pipe >/dev/null
rcli XADD "$STREAM" '*' id evt_1BatchMalformedJson type invoice.paid body '{"id": "evt_1Batch' \
    received "$(date +%s000)" >/dev/null
entries=$(rcli XLEN "$STREAM")
check "one read's worth of entries in the stream" yes "$([ "$entries" -le 32 ] && echo yes || echo "no: $entries")"
good=$(distinct_ids "$G")

start_worker W1 PAYSTREAM_CONCURRENCY=1 PAYSTREAM_MAX_ATTEMPTS=$ATTEMPTS PAYSTREAM_CLAIM_IDLE_MS=5000 \
    PAYSTREAM_WAIT_MAX=2s
wait_drain $((good + 4)) 90

check "the subscriber's balances, poison and all" "0 $((PACK - REFUND_DUE)) $((PACK - REFUND_DUE))" "$(balance "$U")"
check "the good events were recorded once each, with the right status" \
    "$(expected_statuses "$G")" "$(recorded_statuses "$G")"
check "the good events were applied in their first attempt" 0 \
    "$(sql "SELECT count(*) FROM paystream.webhook_events WHERE user_id = '$U' AND attempts <> 1")"
# now() is the transaction's start: one value for the whole batch
check "the good events were committed in one transaction" 1 \
    "$(sql "SELECT count(DISTINCT processed_at) FROM paystream.webhook_events WHERE user_id = '$U'")"
check "the repeated event was applied once (no ledger row twice)" 0 \
    "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
            GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d")"
check "each poison event dead-lettered alone, after $ATTEMPTS attempts" "failed $ATTEMPTS
failed $ATTEMPTS
failed $ATTEMPTS" \
    "$(sql "SELECT status || ' ' || attempts FROM paystream.webhook_events WHERE status <> 'applied' AND status <> 'skipped'
              AND error NOT LIKE 'waited %'")"
check "the invoice whose user is never found waited 2 s, then was dead-lettered alone" \
    "failed waited 2s for: user not found" \
    "$(sql "SELECT status || ' ' || left(error, 29) FROM paystream.webhook_events WHERE error LIKE 'waited %'")"
check "four dead letters" 4 "$(rcli XLEN "$STREAM:dead")"
check "nothing left pending" 0 "$(group_field pending)"
reconcile_clean
stop_worker "$W1"
check "the worker counted the repeated event as a duplicate" yes \
    "$(grep -q '"stopped: [0-9]* applied, [0-9]* skipped, 1 duplicates' "$E2E_DIR/worker-W1.log" && echo yes || echo no)"

# ------------------------------- 2. connections cut in the middle of batches --
USERS=${PS_E2E_BATCH_USERS:-300}
M=$E2E_DIR/many.jsonl
gen many --users "$USERS" --seed batch-cut --api-version mixed >"$M"
before=$(done_events)
total=$((before + $(distinct_ids "$M")))
python3 "$EVENTS" resp --stream "$STREAM" "$M" | rcli --pipe >/dev/null
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W3 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
wait_done $((before + 50)) 120 || check "events applied before the first cut" yes no
cuts=0
mid_run=0
for _ in 1 2 3 4 5 6 7 8; do
    done_now=$(done_events)
    n=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = 'paystream' AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
    cuts=$((cuts + n))
    # a cut counts as mid-run when events were still left to apply just before it
    [ "$n" -gt 0 ] && [ "$done_now" -lt "$total" ] && mid_run=$((mid_run + 1))
    sleep 0.1
done
echo "# $cuts worker connections cut, $mid_run of the 8 rounds while events were left to apply"
check "the connections were cut while events were being applied" yes \
    "$([ "$mid_run" -gt 0 ] && echo yes || echo "no: all $total done before the first cut")"
wait_drain "$total" 180
check "the workers lost PostgreSQL mid-batch and reconnected" yes \
    "$(grep -q 'PostgreSQL connection lost' "$E2E_DIR"/worker-W[23].log && echo yes || echo no)"
check "every event recorded exactly once, with the right status" \
    "$(expected_statuses "$M")" "$(recorded_statuses "$M")"
check "no Stripe-made ledger row written twice" 0 \
    "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
            GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d")"
canceled=$(((USERS + 2) / 3))
check "balances of all $USERS users as SPEC 4 says" \
    "$((USERS - canceled)) active pro $PRO $((PACK - REFUND_DUE))
$canceled canceled pro 0 $((PACK - REFUND_DUE))" \
    "$(sql "SELECT count(*) || ' ' || status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
              FROM paystream.subscriptions WHERE user_id <> '$U'
             GROUP BY status, plan, credits_remaining, overage_credits ORDER BY status")"
check "nothing pending, no new dead letter" "0 4" "$(group_field pending) $(rcli XLEN "$STREAM:dead")"
reconcile_clean
stop_worker "$W2"
stop_worker "$W3"

# --------------------------------------------- 3. consumers that are gone --
consumers() { rcli XINFO CONSUMERS "$STREAM" "$GROUP" | awk 'prev == "name" { print } { prev = $0 }' | sort | tr '\n' ' '; }
rcli XGROUP CREATECONSUMER "$STREAM" "$GROUP" gone-host:1:0 >/dev/null
sleep 0.5
start_worker W4 PAYSTREAM_CONCURRENCY=1 PAYSTREAM_CLAIM_IDLE_MS=100
for _ in $(seq 1 50); do
    case "$(consumers)" in *gone-host*) sleep 0.1 ;; *) break ;; esac
done
check "idle consumers without pending entries were removed; the live one stays" "$(hostname):$W4:0 " \
    "$(consumers)"
# a live consumer keeps its alive key (Redis 7.0 reports it idle on a quiet
# stream, so that key is what keeps other workers from removing it)
ALIVE="$STREAM:alive:$(hostname):$W4:0"
check "the live consumer has its alive key" 1 "$(rcli EXISTS "$ALIVE")"
ttl=$(rcli PTTL "$ALIVE")
check "its alive key lapses within 30 s" yes "$([ "$ttl" -gt 0 ] && [ "$ttl" -le 30000 ] && echo yes || echo "no: $ttl")"
stop_worker "$W4"
check "a worker stopped cleanly removes its alive key" 0 "$(rcli EXISTS "$ALIVE")"
done_testing
