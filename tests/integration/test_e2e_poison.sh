# test_e2e_poison.sh - events that can never apply end in <stream>:dead with a
# clear reason after PAYSTREAM_MAX_ATTEMPTS deliveries (or, when they wait
# for another event, after PAYSTREAM_WAIT_MAX), are recorded `failed` with
# their error, and never hold up the good events behind them (SPEC 3).
#
# Poison: a subscription on an unknown price, a pack checkout naming an unknown
# pack, an invoice whose user can never be found (posted through ingest, like
# Stripe would), and malformed JSON put on the stream directly (ingest would
# refuse it). One worker with one consumer, so that a blocked queue would show.
. "$(dirname "$0")/e2e_lib.sh"

ATTEMPTS=6 # the poison lives about 3 s (backoff 0.1, 0.2, ... 1.6 s): time for the good events
WAIT_MAX=3s # and the one that waits for its user, as long
BASIC=$(plan_credits basic)
PACK=$(plan_credits pack50)

e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=1 PAYSTREAM_MAX_ATTEMPTS=$ATTEMPTS PAYSTREAM_CLAIM_IDLE_MS=5000 \
    PAYSTREAM_WAIT_MAX=$WAIT_MAX

P=$E2E_DIR/poison.jsonl
gen poison --seed poison >"$P"
id_of() { python3 -c 'import json,sys; print([json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["phase"] == sys.argv[2]][0])' "$P" "$1"; }
EV_PRICE=$(id_of unknown_price)
EV_PACK=$(id_of unknown_pack)
EV_USER=$(id_of no_user)
EV_JSON=evt_1E2eMalformedJsonOnStream

# the good events are made now, so that they follow the poison at once
U=c0ffee00-0000-4000-8000-000000000003
G=$E2E_DIR/good.jsonl
gen lifecycle --seed poison-good --user "$U" >"$G"

# poison first: posted, and malformed JSON added straight to the stream
post "$P"
rcli XADD "$STREAM" '*' id "$EV_JSON" type invoice.paid \
    body '{"id": "evt_1E2eMalformedJsonOnStream", "type": "invoice.paid", "data": {"object": {"id": "in_1' \
    received "$(date +%s000)" >/dev/null
MISSING_ID=$(rcli XADD "$STREAM" '*' type charge.refunded body 'not json at all' received "$(date +%s000)")

# then good events for a good user
post "$G" signup,pack
good=$(grep -cE '"phase": "(signup|pack)"' "$G")
wait_drain $((good + 5)) 90

check "good events behind the poison are applied" "$BASIC $PACK $((BASIC + PACK))" "$(balance "$U")"
check "good events were not held up by the poison (applied before the last poison died)" t \
    "$(sql "SELECT (SELECT max(processed_at) FROM paystream.webhook_events WHERE user_id = '$U')
                 < (SELECT max(processed_at) FROM paystream.webhook_events WHERE status = 'failed')")"

# dead_field EVENT_ID FIELD: a field of the event's entry in <stream>:dead
dead_field() {
    rcli --json XRANGE "$STREAM:dead" - + | python3 -c '
import json, sys
for _, kv in json.load(sys.stdin):
    e = dict(zip(kv[::2], kv[1::2]))
    if sys.argv[1] in (e.get("id"), "stream:" + e.get("stream_id", "")):
        print(e.get(sys.argv[2], ""))
        break
' "$1" "$2"
}

# check_poison NAME EVENT_ID REASON: dead-lettered and recorded failed, with REASON
check_poison() {
    local name=$1 id=$2 reason=$3 err
    err=$(dead_field "$id" error)
    check "$name: in $STREAM:dead with a reason naming it" yes \
        "$(case "$err" in *"$reason"*) echo yes ;; *) echo "no: [$err]" ;; esac)"
    check "$name: dead-lettered after $ATTEMPTS deliveries" "$ATTEMPTS" "$(dead_field "$id" attempts)"
    check "$name: recorded failed, with its attempts" "failed $ATTEMPTS" \
        "$(sql "SELECT status || ' ' || attempts FROM paystream.webhook_events WHERE event_id = '$id'")"
    err=$(sql "SELECT error FROM paystream.webhook_events WHERE event_id = '$id'")
    check "$name: its error is recorded in webhook_events" yes \
        "$(case "$err" in *"$reason"*) echo yes ;; *) echo "no: [$err]" ;; esac)"
}

# check_waited NAME EVENT_ID REASON: waited PAYSTREAM_WAIT_MAX for what REASON
# names, then dead-lettered saying so, recorded failed, no longer waiting
check_waited() {
    local name=$1 id=$2 reason=$3 err
    err=$(dead_field "$id" error)
    check "$name: in $STREAM:dead, naming what it waited for" yes \
        "$(case "$err" in "waited $WAIT_MAX for: $reason"*) echo yes ;; *) echo "no: [$err]" ;; esac)"
    check "$name: recorded failed, with that error" "failed $err" \
        "$(sql "SELECT status || ' ' || error FROM paystream.webhook_events WHERE event_id = '$id'")"
    check "$name: waits no more" 0 \
        "$(sql "SELECT count(*) FROM paystream.waiting_events WHERE event_id = '$id'")"
}

check_poison "unknown price" "$EV_PRICE" "unknown price price_1PgafmB7WZ01zgkWNoSuchPr"
check_poison "unknown pack" "$EV_PACK" "unknown credit pack pack_nosuch"
check_waited "user never found" "$EV_USER" "user not found"
check_poison "malformed JSON" "$EV_JSON" "malformed JSON"
check_poison "entry without an event id" "stream:$MISSING_ID" "malformed JSON"

check "five dead letters, nothing else" 5 "$(rcli XLEN "$STREAM:dead")"
check "nothing left pending" 0 "$(group_field pending)"
check "poison changed no balance" 1 \
    "$(sql "SELECT count(*) FROM paystream.subscriptions WHERE credits_remaining + overage_credits > 0")"
grep -E '"phase": "(signup|pack)"' "$G" >"$E2E_DIR/good-posted.jsonl"
check "the good events: recorded with the right status" \
    "$(expected_statuses "$E2E_DIR/good-posted.jsonl")" "$(recorded_statuses "$E2E_DIR/good-posted.jsonl")"
reconcile_clean
stop_worker "$W1"
done_testing
