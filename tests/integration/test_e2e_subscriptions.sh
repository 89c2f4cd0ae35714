# test_e2e_subscriptions.sh - subscriptions as real Stripe billing delivers them
# (SPEC 4): a second subscription that never goes live or whose trial is
# cancelled, a grandfathered price after the plan got a new one, a metered
# add-on as the first item, seats and several plan lines, an upgrade billed on
# the next invoice, failed payments (incomplete; a renewal failing in the
# second of the period change), a trial's $0 invoice, a pause.
#
# Each case is one user's events, built from Stripe's fixtures
# (tests/events/subscription_cases.py), signed by the official stripe package
# (tests/node/post_events.js) and posted to ingest; two workers apply them.
# Every case (PS_E2E_SUB_CASES: some of them) is delivered in order and in
# PS_E2E_SUB_ORDERS random orders with duplicates, alternating the API shapes
# (2025-03-31.basil and 2024-06-20), each to a fresh user; each must end in the
# balances, spendability and get_subscription row SPEC 4 gives, with no dead
# letter and reconcile clean.
. "$(dirname "$0")/e2e_lib.sh"

ORDERS=${PS_E2E_SUB_ORDERS:-3}
CASES_PY=$PS_SOURCE_DIR/tests/events/subscription_cases.py
NODE_DIR=$PS_SOURCE_DIR/tests/node
command -v node >/dev/null || { echo "not ok - node is not on PATH (apt-get install nodejs)"; exit 1; }
[ -f "$NODE_DIR/node_modules/stripe/package.json" ] ||
    { echo "not ok - the stripe npm package is missing: npm ci --prefix tests/node"; exit 1; }

e2e_setup
# the operator gives pro a new price for new customers (and adds two plans):
# pro's price in plans.txt keeps mapping to pro for existing subscriptions
"$CTL" plans load "$PS_SOURCE_DIR/tests/events/plans_cases.txt" >"$E2E_DIR/plans-cases.log" 2>&1 ||
    { cat "$E2E_DIR/plans-cases.log"; exit 1; }
start_ingest
start_worker W1 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CLAIM_IDLE_MS=2000 PAYSTREAM_CONCURRENCY=2

# state USER: what the app sees: "SUB OVERAGE SPENDABLE|PLAN STATUS SUBSCRIPTION PERIOD_END CANCEL"
state() {
    sql "SELECT (SELECT subscription_credits || ' ' || overage_credits FROM paystream.get_credit_balance('$1'))
                || CASE WHEN paystream.check_credits('$1', 1) THEN ' t' ELSE ' f' END || '|'
                || coalesce((SELECT concat_ws(' ', plan, status, stripe_subscription_id,
                                              extract(epoch FROM current_period_end)::bigint,
                                              CASE WHEN cancel_at_period_end THEN 't' ELSE 'f' END)
                               FROM paystream.get_subscription('$1')), 'none')"
}

read -r -a CASES <<<"${PS_E2E_SUB_CASES:-$(python3 "$CASES_PY" list)}"
posted=0
declare -A WANT
post_cases "$CASES_PY" 'cafe%04x-0000-4000-8000-%012d' "$ORDERS" "${CASES[@]}"
wait_drain "$posted" 180

for user in $(printf '%s\n' "${!WANT[@]}" | sort); do
    label=${WANT[$user]%%|*}
    check "$label: balances, spendable, get_subscription" "${WANT[$user]#*|}" "$(state "$user")"
done
check "no dead letter, no failed event" "0 0" \
    "$(rcli XLEN "$STREAM:dead") $(sql "SELECT count(*) FROM paystream.webhook_events WHERE status NOT IN ('applied', 'skipped')")"
# a paused subscription's credits are kept but not spent
for c in "${!CASES[@]}"; do
    [ "${CASES[$c]}" = pause ] || continue
    paused=$(printf 'cafe%04x-0000-4000-8000-%012d' "$c" 0)
    check "a paused user cannot spend subscription credits" "f 300" \
        "$(deduct "$paused" 00000000-0000-4000-8000-00000000d1ce 1) $(balance "$paused" | cut -d' ' -f1)"
done
reconcile_clean

done_testing
