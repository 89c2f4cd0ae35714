# test_e2e_payments.sh - refunds and disputes as Stripe delivers them (SPEC 4):
# partial refunds (cumulative), disputes lost, won, or only inquiries, a
# refund and a dispute of one payment (never more than it granted), and
# refunds and disputes of subscription invoices, in both API shapes (before
# 2025-03-31.basil a charge names its invoice; from basil on
# invoice_payment.paid names an invoice's payment), including a refund that
# comes after the invoice's period ended.
#
# Each case is one user's events, built from Stripe's fixtures
# (tests/events/payment_cases.py), signed by the official stripe package
# (tests/node/post_events.js) and posted to ingest; two workers apply them.
# Every case (PS_E2E_PAY_CASES: some of them) is delivered in order and in
# PS_E2E_PAY_ORDERS random orders with duplicates (so refunds and disputes
# often come before their purchase and wait for it), alternating the API
# shapes, each to a fresh user; each must end in the balances and payment
# records SPEC 4 gives, every event with its user, with no dead letter and
# reconcile clean.
. "$(dirname "$0")/e2e_lib.sh"

ORDERS=${PS_E2E_PAY_ORDERS:-3}
CASES_PY=$PS_SOURCE_DIR/tests/events/payment_cases.py
NODE_DIR=$PS_SOURCE_DIR/tests/node
command -v node >/dev/null || { echo "not ok - node is not on PATH (apt-get install nodejs)"; exit 1; }
[ -f "$NODE_DIR/node_modules/stripe/package.json" ] ||
    { echo "not ok - the stripe npm package is missing: npm ci --prefix tests/node"; exit 1; }

e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CLAIM_IDLE_MS=2000 PAYSTREAM_CONCURRENCY=2

# state USER: "SUB OVERAGE|DUE TAKEN UNCOLLECTED,..." (each payment's record, by payment id)
state() {
    sql "SELECT (SELECT subscription_credits || ' ' || overage_credits FROM paystream.get_credit_balance('$1'))
                || '|' || coalesce((SELECT string_agg(concat_ws(' ', due, taken, uncollected), ',' ORDER BY payment)
                                      FROM paystream.payments WHERE user_id = '$1'), '')"
}

read -r -a CASES <<<"${PS_E2E_PAY_CASES:-$(python3 "$CASES_PY" list)}"
posted=0
declare -A WANT
post_cases "$CASES_PY" 'feed%04x-0000-4000-8000-%012d' "$ORDERS" "${CASES[@]}"
wait_drain "$posted" 240

for user in $(printf '%s\n' "${!WANT[@]}" | sort); do
    label=${WANT[$user]%%|*}
    want=${WANT[$user]#*|}
    got=$(state "$user")
    # shellcheck disable=SC2053 # the expectation is a pattern: * is a figure that depends on the order
    if [[ $got == $want ]]; then want=$got; fi
    check "$label: balances and payment records" "$want" "$got"
done
check "no dead letter, no event failed or still waiting" "0 0" \
    "$(rcli XLEN "$STREAM:dead") $(sql "SELECT count(*) FROM paystream.webhook_events WHERE status NOT IN ('applied', 'skipped')")"
check "every refund and dispute is recorded with its user" "0" \
    "$(sql "SELECT count(*) FROM paystream.webhook_events
             WHERE (type = 'charge.refunded' OR type LIKE 'charge.dispute.%') AND user_id IS NULL")"
check "no payment owes back more than it granted" "0" \
    "$(sql "SELECT count(*) FROM paystream.payments WHERE taken + uncollected > granted OR due > granted")"
reconcile_clean

done_testing
