# test_e2e_order.sh - the result does not depend on delivery order (SPEC 3, 4).
#
# One set of events per user pair (a whole lifecycle, and a lifecycle that
# stops before cancellation, no deductions) is first applied strictly in order
# by one single-consumer worker: that gives the baseline, checked against the
# numbers SPEC 4 gives. Then the same kind of set, for fresh users, is delivered
# in random orders (fixed seeds) with random duplicates to three worker
# processes at once, and each order must end exactly like the baseline.
# PS_E2E_ORDERS sets the number of orders (10 here; the long run uses more).
. "$(dirname "$0")/e2e_lib.sh"

ORDERS=${PS_E2E_ORDERS:-10}
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000)) # half of the pack's 1000 cents refunded
SHAPES=(2025-03-31.basil 2024-06-20)
posted=0

e2e_setup
start_ingest

user_id() { printf '%08x-0000-4000-8000-%012d' "$1" "$2"; } # user_id ORDER KIND

# canceled subscriptions: only status, plan and the balances matter (the
# allowance of a canceled subscription depends on what came before the end)
state_full() {
    sql "SELECT status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
           FROM paystream.subscriptions WHERE user_id = '$1'"
}
# live subscriptions: the whole state the period rule keeps
state_live() {
    sql "SELECT status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits || ' ' ||
                credits_total || ' ' || credit_period_end || ' ' || extract(epoch FROM current_period_end)::bigint
                || ' ' || cancel_at_period_end
           FROM paystream.subscriptions WHERE user_id = '$1'"
}
refund_state() {
    sql "SELECT due || ' ' || taken || ' ' || uncollected FROM paystream.payments WHERE user_id = '$1'"
}

# make_set ORDER SHAPE FILE: the events of both users of one order
make_set() {
    gen lifecycle --seed "order-$1-full" --user "$(user_id "$1" 1)" --api-version "$2" >"$3"
    gen lifecycle --seed "order-$1-live" --user "$(user_id "$1" 2)" --api-version "$2" --no-cancel >>"$3"
}

# --------------------------------------------------------------- baseline --
start_worker W0 PAYSTREAM_CONCURRENCY=1 PAYSTREAM_CLAIM_IDLE_MS=2000
declare -A BASE_FULL BASE_LIVE
for s in 0 1; do
    shape=${SHAPES[$s]}
    F=$E2E_DIR/base-$s.jsonl
    make_set "$s" "$shape" "$F"
    post "$F"
    posted=$((posted + $(distinct_ids "$F")))
    wait_drain "$posted" 60
    BASE_FULL[$s]=$(state_full "$(user_id "$s" 1)")
    BASE_LIVE[$s]=$(state_live "$(user_id "$s" 2)")
    check "$shape in order, whole life: canceled, overage minus the refund" \
        "canceled pro 0 $((PACK - REFUND_DUE))" "${BASE_FULL[$s]}"
    check "$shape in order, no cancellation: pro allowance, overage minus the refund" \
        "active pro $PRO $((PACK - REFUND_DUE)) $PRO" "$(echo "${BASE_LIVE[$s]}" | cut -d' ' -f1-5)"
    check "$shape in order: events recorded" "$(expected_statuses "$F")" "$(recorded_statuses "$F")"
done
check "in order: the two shapes give the same state" "${BASE_LIVE[0]}" "${BASE_LIVE[1]}"
stop_worker "$W0"

# ----------------------------------------------------------- random orders --
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W3 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
ALL=$E2E_DIR/all-orders.jsonl
: >"$ALL"
bad=0
for ((k = 2; k < ORDERS + 2; k++)); do
    s=$((k % 2))
    make_set "$k" "${SHAPES[$s]}" "$E2E_DIR/set-$k.jsonl"
    python3 "$EVENTS" shuffle --seed "$k" --dups 0.3 "$E2E_DIR/set-$k.jsonl" >"$E2E_DIR/order-$k.jsonl"
    cat "$E2E_DIR/set-$k.jsonl" >>"$ALL"
    post "$E2E_DIR/order-$k.jsonl"
    posted=$((posted + $(distinct_ids "$E2E_DIR/set-$k.jsonl")))
    wait_drain "$posted" 120 || break
    full=$(state_full "$(user_id "$k" 1)")
    live=$(state_live "$(user_id "$k" 2)")
    if [ "$full" != "${BASE_FULL[$s]}" ] || [ "$live" != "${BASE_LIVE[$s]}" ]; then
        bad=$((bad + 1))
        echo "# order $k (${SHAPES[$s]}): whole life [$full], no cancellation [$live]"
        echo "#   delivery order: $(python3 -c 'import json,sys; print(" ".join(json.loads(l)["type"] + "/" + json.loads(l)["user"][-1] for l in open(sys.argv[1])))' "$E2E_DIR/order-$k.jsonl")"
    fi
    for kind in 1 2; do
        r=$(refund_state "$(user_id "$k" "$kind")")
        [ "$r" = "$REFUND_DUE $REFUND_DUE 0" ] || { bad=$((bad + 1)); echo "# order $k user $kind: refund state [$r]"; }
    done
done
check "$ORDERS random orders with duplicates end exactly like the in-order run" 0 "$bad"
check "random orders: every event recorded once with the right status" \
    "$(expected_statuses "$ALL")" "$(recorded_statuses "$ALL")"
check "no event failed or is still retrying" 0 \
    "$(sql "SELECT count(*) FROM paystream.webhook_events WHERE status IN ('failed', 'retrying')")"
check "duplicates were delivered and changed nothing" yes \
    "$([ "$(rcli XLEN "$STREAM")" -gt "$posted" ] && echo yes || echo no)"
check "nothing dead-lettered" 0 "$(rcli XLEN "$STREAM:dead")"
reconcile_clean
stop_worker "$W1"
stop_worker "$W2"
stop_worker "$W3"
done_testing
