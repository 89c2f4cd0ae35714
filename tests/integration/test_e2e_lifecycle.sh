# test_e2e_lifecycle.sh - a subscriber's whole life, end to end, in both Stripe
# API shapes: events made from Stripe's fixtures are signed and posted to a
# running paystream-ingest, applied by two running workers, phase by phase,
# with the app's deductions in between. Every expected number is worked out
# here by hand from the plans file, by the rules of SPEC section 4.
. "$(dirname "$0")/e2e_lib.sh"

e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000

BASIC=$(plan_credits basic)
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000)) # charge.refunded: 500 of the pack's 1000 cents
posted=0

# phase FILE PHASE: post one phase's events and wait until they are applied
phase() {
    local n
    n=$(grep -c "\"phase\": \"$2\"" "$1")
    post "$1" "$2"
    posted=$((posted + n))
    wait_drain "$posted" 60
}

video() { printf '00000000-0000-4000-8000-%012d' "$1"; }

# check_sub USER NAME STATUS PLAN CREDITS_TOTAL: the subscription row
check_sub() {
    check "$2: status, plan, allowance" "$3 $4 $5" \
        "$(sql "SELECT status || ' ' || coalesce(plan, '-') || ' ' || credits_total FROM paystream.subscriptions WHERE user_id = '$1'")"
}

# check_events FILE NAME: every event recorded once, handled ones applied,
# the others skipped, none failed
check_events() {
    check "$2: every event recorded with the right status" "$(expected_statuses "$1")" \
        "$(recorded_statuses "$1")"
}

# ---------------------------------------------------------------------------
# 2025-03-31.basil: the refund is fully taken back, overage survives the end
U=a11ce000-0000-4000-8000-000000000001
F=$E2E_DIR/basil.jsonl
gen lifecycle --seed basil-life --user "$U" --api-version 2025-03-31.basil >"$F"
sub=0 over=0

phase "$F" signup
sub=$BASIC
check "basil signup: first invoice (paid + payment_succeeded) grants the plan once" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check_sub "$U" "basil signup: same-second incomplete/active tie goes to active" active basic "$BASIC"
check "basil signup: customer linked" "$U" \
    "$(sql "SELECT c.user_id FROM paystream.customers c JOIN paystream.subscriptions s ON s.stripe_customer_id = c.stripe_customer_id WHERE s.user_id = '$U'")"
check "basil: deduction of 20" t "$(deduct "$U" "$(video 1)" 20)"
sub=$((sub - 20))
check "basil: the same video again charges nothing" t "$(deduct "$U" "$(video 1)" 20)"
check "basil: a deduction above the total is refused" f "$(deduct "$U" "$(video 2)" 100000)"
check "basil: after deductions" "$sub $over $((sub + over))" "$(balance "$U")"

phase "$F" pack
over=$PACK
check "basil pack: pack credits go to overage" "$sub $over $((sub + over))" "$(balance "$U")"
check "basil: deduction of 20 spends overage first" t "$(deduct "$U" "$(video 3)" 20)"
over=$((over - 20))
check "basil: after the pack deduction" "$sub $over $((sub + over))" "$(balance "$U")"

phase "$F" upgrade
sub=$((sub + PRO - BASIC))
check "basil upgrade: proration invoice tops up to the pro allowance" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check_sub "$U" "basil upgrade" active pro "$PRO"

phase "$F" renewal
expired1=$sub
sub=$PRO
check "basil renewal: leftover expires, next period's credits granted" \
    "$sub $over $((sub + over))" "$(balance "$U")"

phase "$F" refund
take=$((REFUND_DUE < over ? REFUND_DUE : over))
over=$((over - take))
check "basil refund: half the pack taken back from overage" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check "basil refund: due, taken, uncollected" "$REFUND_DUE $take $((REFUND_DUE - take))" \
    "$(sql "SELECT due || ' ' || taken || ' ' || uncollected FROM paystream.payments WHERE user_id = '$U'")"

phase "$F" cancel
expired2=$sub
sub=0
check "basil cancel: subscription credits expire, overage stays" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check_sub "$U" "basil cancel" canceled pro "$PRO"
check "basil: ledger rows" \
    "subscription_grant subscription $BASIC, usage subscription -20, pack_grant overage $PACK, usage overage -20, subscription_upgrade subscription $((PRO - BASIC)), subscription_expire subscription -$expired1, subscription_grant subscription $PRO, pack_refund overage -$take, subscription_expire subscription -$expired2" \
    "$(ledger "$U")"
check_events "$F" basil

# ---------------------------------------------------------------------------
# 2024-06-20 (before basil): most of the pack is spent when the refund comes
U=b0b00000-0000-4000-8000-000000000002
F=$E2E_DIR/old.jsonl
gen lifecycle --seed old-life --user "$U" --api-version 2024-06-20 >"$F"
sub=0 over=0

phase "$F" signup
sub=$BASIC
check "2024-06-20 signup: first invoice grants the plan once" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check_sub "$U" "2024-06-20 signup: tie goes to active" active basic "$BASIC"

phase "$F" pack
over=$PACK
check "2024-06-20 pack" "$sub $over $((sub + over))" "$(balance "$U")"
check "2024-06-20: deduction of 40" t "$(deduct "$U" "$(video 11)" 40)"
over=$((over - 40))

phase "$F" upgrade
sub=$((sub + PRO - BASIC))
check "2024-06-20 upgrade: proration invoice (invoiceitem lines) tops up" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check_sub "$U" "2024-06-20 upgrade" active pro "$PRO"

phase "$F" renewal
expired1=$sub
sub=$PRO
check "2024-06-20 renewal" "$sub $over $((sub + over))" "$(balance "$U")"

phase "$F" refund
take=$((REFUND_DUE < over ? REFUND_DUE : over))
over=$((over - take))
check "2024-06-20 refund: only what is left is taken back, never below zero" \
    "$sub $over $((sub + over))" "$(balance "$U")"
check "2024-06-20 refund: due, taken, uncollected" "$REFUND_DUE $take $((REFUND_DUE - take))" \
    "$(sql "SELECT due || ' ' || taken || ' ' || uncollected FROM paystream.payments WHERE user_id = '$U'")"
check "2024-06-20: deduction of 30 from the subscription" t "$(deduct "$U" "$(video 12)" 30)"
sub=$((sub - 30))

phase "$F" cancel
expired2=$sub
sub=0
check "2024-06-20 cancel" "$sub $over $((sub + over))" "$(balance "$U")"
check_sub "$U" "2024-06-20 cancel" canceled pro "$PRO"
check "2024-06-20: ledger rows" \
    "subscription_grant subscription $BASIC, pack_grant overage $PACK, usage overage -40, subscription_upgrade subscription $((PRO - BASIC)), subscription_expire subscription -$expired1, subscription_grant subscription $PRO, pack_refund overage -$take, usage subscription -30, subscription_expire subscription -$expired2" \
    "$(ledger "$U")"
check_events "$F" 2024-06-20

# ---------------------------------------------------------------------------
check "every Stripe-made ledger row comes from an applied event" 0 \
    "$(sql "SELECT count(*) FROM paystream.credit_transactions t LEFT JOIN paystream.webhook_events w USING (event_id) WHERE t.kind <> 'usage' AND (w.status IS DISTINCT FROM 'applied')")"
check "nothing pending in the group" 0 "$(group_field pending)"
check "nothing dead-lettered" 0 "$(rcli XLEN "$STREAM:dead")"
reconcile_clean
stop_worker "$W1"
stop_worker "$W2"
done_testing
