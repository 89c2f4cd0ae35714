# test_ctl_trigger.sh - `paystreamctl trigger` end to end: every scenario is
# sent to a running paystream-ingest and applied by two running workers, with
# deploy/plans.example loaded. The balances are worked out here from the plans
# file by the rules of SPEC section 4: `lifecycle` in both API shapes, then
# each single scenario in sequence for another user (separate runs must refer
# to the same customer, subscription and pack), then the billing scenarios (seats,
# trial, second-subscription, pause) each for a user of its own, then refunds and disputes
# (refund-subscription, dispute-lost, dispute-won) in both shapes. Then the usage errors (exit 2,
# one line) and an unreachable URL (exit 1).
. "$(dirname "$0")/e2e_lib.sh"

PLANS="$PS_SOURCE_DIR/deploy/plans.example" # what trigger uses by default
e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000

# the first two plans and the first pack of the file, as trigger picks them
PLAN1=$(awk '$1 == "plan" { print $2; exit }' "$PLANS")
PLAN2=$(awk '$1 == "plan" { n++ } $1 == "plan" && n == 2 { print $2; exit }' "$PLANS")
PACKID=$(awk '$1 == "pack" { print $2; exit }' "$PLANS")
C1=$(plan_credits "$PLAN1")
C2=$(plan_credits "$PLAN2")
PACK=$(plan_credits "$PACKID")
REFUND=$((PACK / 2)) # refund: half of the pack's price
posted=0
unset STRIPE_WEBHOOK_SECRET

# trig SCENARIO ARGS...: send, check every event got 200, wait until applied
trig() {
    local out rc=0 n
    out=$("$CTL" trigger "$@" --url "$INGEST_URL" --secret "$SECRET" 2>"$E2E_DIR/trigger.err") || rc=$?
    check "trigger $1: exit 0" 0 "$rc"
    [ "$rc" = 0 ] || { echo "$out"; cat "$E2E_DIR/trigger.err"; }
    n=$(printf '%s\n' "$out" | grep -c ' 200$' || true)
    check "trigger $1: one line per event, each answered 200" "$(printf '%s\n' "$out" | wc -l)" "$n"
    printf '%s\n' "$out" >>"$E2E_DIR/sent.txt"
    posted=$((posted + n))
    wait_drain "$posted" 60
}

# bal USER NAME SUB OVER: the balance
bal() { check "$2: balance" "$3 $4 $(($3 + $4))" "$(balance "$1")"; }

# sub_row USER NAME STATUS PLAN ALLOWANCE
sub_row() {
    check "$2: status, plan, allowance" "$3 $4 $5" \
        "$(sql "SELECT status || ' ' || coalesce(plan, '-') || ' ' || credits_total FROM paystream.subscriptions WHERE user_id = '$1'")"
}

# sorted_ledger USER: "kind bucket amount" rows, sorted (workers apply in any order)
sorted_ledger() {
    sql "SELECT kind || ' ' || bucket || ' ' || amount FROM paystream.credit_transactions WHERE user_id = '$1'" |
        LC_ALL=C sort | paste -sd ';'
}

LIFE_LEDGER=$(printf '%s\n' "subscription_grant subscription $C1" "pack_grant overage $PACK" \
    "subscription_expire subscription -$C1" "subscription_grant subscription $C1" \
    "subscription_upgrade subscription $((C2 - C1))" "pack_refund overage -$REFUND" \
    "subscription_expire subscription -$C2" | LC_ALL=C sort | paste -sd ';')

# ---------------------------------------------------------------------------
# lifecycle, in both shapes
for api in 2025-03-31.basil 2024-06-20; do
    if [ "$api" = 2024-06-20 ]; then U=7419e000-0000-4000-8000-000000000002; else U=7419e000-0000-4000-8000-000000000001; fi
    trig lifecycle --user "$U" --api-version "$api"
    bal "$U" "$api lifecycle" 0 $((PACK - REFUND))
    # lifecycle posts all its events at once and the workers apply them in any
    # order: the rows may differ (e.g. the cancellation first makes the later
    # invoices grant nothing), the balances may not (SPEC 4)
    check "$api lifecycle: status, plan" "canceled $PLAN2" \
        "$(sql "SELECT status || ' ' || plan FROM paystream.subscriptions WHERE user_id = '$U'")"
    check "$api lifecycle: the rows of each bucket add up to its balance" "0 $((PACK - REFUND))" \
        "$(sql "SELECT coalesce(sum(amount) FILTER (WHERE bucket = 'subscription'), 0) || ' ' || coalesce(sum(amount) FILTER (WHERE bucket = 'overage'), 0) FROM paystream.credit_transactions WHERE user_id = '$U'")"
    check "$api lifecycle: pack refund due, taken, uncollected" "$REFUND $REFUND 0" \
        "$(sql "SELECT due || ' ' || taken || ' ' || uncollected FROM paystream.payments WHERE user_id = '$U'")"
done

# ---------------------------------------------------------------------------
# each scenario on its own, in sequence, for another user
U=7419e000-0000-4000-8000-000000000003
trig subscription --user "$U"
bal "$U" "subscription" "$C1" 0
sub_row "$U" "subscription" active "$PLAN1" "$C1"

# the secret from the environment this time: the first of a comma list signs
out=$(STRIPE_WEBHOOK_SECRET="$SECRET,whsec_other" "$CTL" trigger credit-pack --user "$U" \
    --url "$INGEST_URL" 2>/dev/null) || true
n=$(printf '%s\n' "$out" | grep -c ' 200$' || true)
check "credit-pack with STRIPE_WEBHOOK_SECRET: 3 events answered 200" 3 "$n"
posted=$((posted + n))
wait_drain "$posted" 60
bal "$U" "credit-pack" "$C1" "$PACK"

trig renewal --user "$U"
bal "$U" "renewal (the leftover expires, the plan is granted again)" "$C1" "$PACK"
trig renewal --user "$U"
bal "$U" "renewal sent again (same period): nothing changes" "$C1" "$PACK"

trig upgrade --user "$U"
bal "$U" "upgrade (tops up to the second plan)" "$C2" "$PACK"
sub_row "$U" "upgrade" active "$PLAN2" "$C2"

trig refund --user "$U"
bal "$U" "refund (half the pack taken back)" "$C2" $((PACK - REFUND))

trig cancel --user "$U"
bal "$U" "cancel (subscription credits expire, overage stays)" 0 $((PACK - REFUND))
sub_row "$U" "cancel" canceled "$PLAN2" "$C2"
check "single scenarios: one customer, one subscription, one pack purchase" "1 1 1" \
    "$(sql "SELECT (SELECT count(DISTINCT stripe_customer_id) FROM paystream.customers WHERE user_id = '$U') || ' ' || (SELECT count(*) FROM paystream.subscriptions WHERE user_id = '$U') || ' ' || (SELECT count(*) FROM paystream.pack_purchases WHERE user_id = '$U')")"
check "single scenarios: ledger rows" "$LIFE_LEDGER" "$(sorted_ledger "$U")"

# every event was recorded: handled types applied, the others skipped
awk '{ print $1 }' "$E2E_DIR/sent.txt" | sort -u >"$E2E_DIR/ids.txt"
check "every event sent is recorded once, none failed" \
    "$(wc -l <"$E2E_DIR/ids.txt") 0" \
    "$("${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "CREATE TEMP TABLE ids (id text)" \
        -c "\\copy ids FROM '$E2E_DIR/ids.txt'" \
        -c "SELECT count(w.event_id) || ' ' || count(*) FILTER (WHERE w.status NOT IN ('applied', 'skipped')) FROM ids JOIN paystream.webhook_events w ON w.event_id = ids.id")"
check "nothing dead-lettered" 0 "$(rcli XLEN "$STREAM:dead")"
reconcile_clean

# ---------------------------------------------------------------------------
# the billing scenarios, each for a user of its own
U=7419e000-0000-4000-8000-000000000010
trig seats --user "$U"
bal "$U" "seats (5 seats of the first plan)" $((5 * C1)) 0
sub_row "$U" "seats" active "$PLAN1" $((5 * C1))
U=7419e000-0000-4000-8000-000000000011
trig trial --user "$U"
bal "$U" "trial (the plan's trial credits, none set: not its allowance)" 0 0
sub_row "$U" "trial" trialing "$PLAN1" 0
U=7419e000-0000-4000-8000-000000000012
trig subscription --user "$U"
trig second-subscription --user "$U"
bal "$U" "second-subscription (it never went live: the first keeps its credits)" "$C1" 0
check "second-subscription: get_subscription is still the first" "$PLAN1 active" \
    "$(sql "SELECT plan || ' ' || status FROM paystream.get_subscription('$U')")"
trig pause --user "$U"
check "pause: paused, the credits kept but not spendable" "paused $C1 f" \
    "$(sql "SELECT s.status || ' ' || s.plan_credits FROM (SELECT status, (SELECT subscription_credits FROM paystream.get_credit_balance('$U')) AS plan_credits FROM paystream.get_subscription('$U')) s") $(sql "SELECT paystream.check_credits('$U', 1)")"
check "billing scenarios: nothing dead-lettered" 0 "$(rcli XLEN "$STREAM:dead")"
reconcile_clean

# ---------------------------------------------------------------------------
# refunds and disputes, in both shapes (before basil an invoice names its
# payment; from basil on invoice_payment.paid does)
n=0
for api in 2025-03-31.basil 2024-06-20; do
    n=$((n + 1))
    U=7419e000-0000-4000-8000-00000000002$n
    trig subscription --user "$U" --api-version "$api"
    trig credit-pack --user "$U" --api-version "$api"
    trig dispute-lost --user "$U" --api-version "$api"
    bal "$U" "$api dispute-lost (the pack's credits taken back)" "$C1" 0
    trig refund-subscription --user "$U" --api-version "$api"
    bal "$U" "$api refund-subscription (the period's credits taken back)" 0 0
    check "$api: each payment's credits owed back, taken back, not collectable" \
        "$C1 $C1 0|$PACK $PACK 0" \
        "$(sql "SELECT string_agg(due || ' ' || taken || ' ' || uncollected, '|' ORDER BY source) FROM paystream.payments WHERE user_id = '$U'")"
    U=7419e000-0000-4000-8000-00000000003$n
    trig credit-pack --user "$U" --api-version "$api"
    trig dispute-won --user "$U" --api-version "$api"
    bal "$U" "$api dispute-won (whatever the dispute took came back)" 0 "$PACK"
done
check "refunds and disputes: recorded with their user, nothing dead-lettered" "0 0" \
    "$(sql "SELECT count(*) FROM paystream.webhook_events WHERE (type LIKE 'charge.dispute.%' OR type = 'charge.refunded') AND user_id IS NULL") $(rcli XLEN "$STREAM:dead")"
reconcile_clean

# ---------------------------------------------------------------------------
# usage errors: exit 2 and one line on stderr; unreachable: exit 1
# usage NAME WANT ARGS...: exit status and the stderr line of trigger ARGS
usage() {
    local name=$1 want=$2 rc=0
    shift 2
    "$CTL" trigger "$@" >"$E2E_DIR/u.out" 2>"$E2E_DIR/u.err" || rc=$?
    check "$name: exit $want" "$want" "$rc"
    check "$name: one error line" 1 "$(grep -c '^paystreamctl: trigger: ' "$E2E_DIR/u.err")"
    [ "$want" != 2 ] || check "$name: nothing else on stderr or stdout" "1 0" \
        "$(wc -l <"$E2E_DIR/u.err") $(wc -c <"$E2E_DIR/u.out")"
}
U=7419e000-0000-4000-8000-000000000004
usage "unknown scenario" 2 nosuch --user "$U" --url "$INGEST_URL" --secret "$SECRET"
usage "bad UUID" 2 subscription --user not-a-uuid --url "$INGEST_URL" --secret "$SECRET"
usage "missing secret" 2 subscription --user "$U" --url "$INGEST_URL"
usage "missing --url" 2 subscription --user "$U" --secret "$SECRET"
usage "https URL" 2 subscription --user "$U" --url https://127.0.0.1/webhooks/stripe --secret "$SECRET"
usage "bad --period" 2 renewal --user "$U" --period 0 --url "$INGEST_URL" --secret "$SECRET"
usage "unknown --plan" 2 renewal --user "$U" --plan nosuch --url "$INGEST_URL" --secret "$SECRET"
usage "unreachable URL" 1 subscription --user "$U" --url "http://127.0.0.1:$(stack_free_port)/webhooks/stripe" --secret "$SECRET"
check "unreachable URL: the event's line says why" 1 "$(grep -c 'failed after 3 tries: cannot connect' "$E2E_DIR/u.out")"
rc=0
"$CTL" trigger subscription --user "$U" --url "$INGEST_URL" --secret whsec_wrong >"$E2E_DIR/u.out" 2>&1 || rc=$?
check "wrong secret: ingest answers 400, exit 1" "1 1" "$rc $(grep -c ' 400 ' "$E2E_DIR/u.out")"
check "wrong secret: nothing recorded for that user" 0 \
    "$(sql "SELECT count(*) FROM paystream.subscriptions WHERE user_id = '$U'")"

stop_worker "$W1"
stop_worker "$W2"
done_testing
