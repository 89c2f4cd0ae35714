# test_sql_batch.sh - ps_apply_batch (sql/batch.sql), the one statement a worker
# sends for a batch, called directly:
#  1. one call of many rows: each event applies in its turn (a user found from
#     a mapping an earlier row stored, a refund after its pack), one that fails
#     rolls back alone and is reported with its SQLSTATE and message, an event
#     twice in the batch applies once, a 'record' row is written as given;
#  2. the same call again changes nothing: every event is a duplicate;
#  3. a refund before its pack in one batch fails (retried later), the pack
#     grants;
#  4. two sessions writing the same event: the second waits for the first's
#     COMMIT, then fails as a whole with PS001 and writes nothing;
#  5. malformed input and the app role are refused;
#  6. paid invoices (sql/invoices.sql): a new period expires the leftover then grants,
#     an upgrade grants the difference, each row with its balance after it;
#     an invoice's second event finds it granted without waiting for a busy
#     account; a replaced subscription's invoice is still skipped;
#  7. plans: once a session has called it, a call with one event
#     plans nothing, where the duplicate check used to be planned every time;
#  8. the row type's fields and the worker's (worker/ledger_row.c) agree;
#  9. consecutive pack purchases in a batch are applied together (one
#     _packs_paid call): each grants once with its balance after it in the
#     batch's order, an event twice is a duplicate, a session granted before
#     grants nothing, a refund after them in the batch finds them; with one
#     that cannot apply (an unknown pack, another user's customer) they run
#     one by one and only that one fails.
. "$(dirname "$0")/lib.sh"

"$CTL" migrate >/dev/null
"$CTL" plans load "$PS_SOURCE_DIR/tests/events/plans.txt" >/dev/null
PRICE=price_1PgafmB7WZ01zgkWPack050P
U1=00000000-0000-4000-8000-0000000000b1
U2=00000000-0000-4000-8000-0000000000b2
U3=00000000-0000-4000-8000-0000000000b3

# row RULE EVENT_ID [FIELD=VALUE...]: one paystream.batch_event by field name,
# the event's other fields set to test values (a later FIELD=VALUE wins); a
# VALUE starting with [ is a JSON array (prices); fields not named are NULL
row() {
    local json kv
    json="\"rule\":\"$1\",\"event_id\":\"$2\",\"type\":\"test.type\",\"livemode\":false"
    json+=",\"api_version\":\"2024-06-20\",\"created\":1700000000,\"stream_id\":\"1-0\""
    shift 2
    for kv in "$@"; do
        case ${kv#*=} in
        \[*) json+=",\"${kv%%=*}\":${kv#*=}" ;;
        *) json+=",\"${kv%%=*}\":\"${kv#*=}\"" ;;
        esac
    done
    echo "jsonb_populate_record(NULL::paystream.batch_event, '{$json}')"
}
# call ROW...: ps_apply_batch's answer, one "k status user note code message" per line
call() {
    local rows
    rows=$(IFS=,; echo "$*")
    sql "SELECT concat_ws(' | ', k, status, user_id, note, err_code, err_message)
           FROM paystream.ps_apply_batch(ARRAY[$rows])"
}
# hold SECONDS SQL: in the background, a transaction that runs SQL and keeps
# what it locked or wrote for SECONDS before its COMMIT; its pid in HOLDER
hold() {
    "${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "BEGIN" -c "$2" -c "SELECT pg_sleep($1)" \
        -c "COMMIT" >/dev/null &
    HOLDER=$!
    sleep 0.5
}
overage() { sql "SELECT overage_credits FROM paystream.subscriptions WHERE user_id = '$1'"; }
status_of() { sql "SELECT coalesce((SELECT status FROM paystream.webhook_events WHERE event_id = '$1'), 'none')"; }

# ------------------------------------------------------------ 1. one call --
PACK_U1=$(row pack_paid evt_b1 user_id="$U1" session=cs_b1 pack_id=pack50 payment_intent=pi_b1 customer=cus_b1)
REFUND_U1=$(row charge_refunded evt_b2 charge=ch_b2 payment_intent=pi_b1 amount=1000 amount_refunded=500)
BAD_PRICE=$(row subscription_state evt_b3 user_id="$U1" subscription=sub_b3 customer=cus_b1 sub_status=active \
    'prices=["price_nope"]' period_start=1 period_end=2 cancel_at_period_end=false sub_created=1 created=1)
PACK_U2=$(row pack_paid evt_b4 user_id="$U2" session=cs_b4 price="$PRICE" payment_intent=pi_b4 customer=cus_b4)
PACK_BY_MAPPING=$(row pack_paid evt_b5 customer=cus_b4 session=cs_b5 pack_id=pack50 payment_intent=pi_b5)
NOBODY=$(row pack_paid evt_b6 customer=cus_nobody subscription=sub_nobody session=cs_b6 pack_id=pack50 payment_intent=pi_b6)
RECORD=$(row record evt_b7 status=skipped "note=unhandled type" user_id="$U1")
out=$(call "$PACK_U1" "$REFUND_U1" "$BAD_PRICE" "$PACK_U2" "$PACK_U1" "$PACK_BY_MAPPING" "$NOBODY" "$RECORD")
check "one row per event, in order: applied, failed alone, duplicate, user from the mapping" \
    "1 | applied | $U1 | granted 50
2 | applied | $U1 | refund: took back 25 of 25 credits (25 of 50 owed back)
3 | failed | $U1 | P0002 | unknown price price_nope: no plan has this stripe_price_id (add it with paystreamctl plans load, then replay)
4 | applied | $U2 | granted 50
5 | duplicate
6 | applied | $U2 | granted 50
7 | failed | 55000 | user not found: no metadata.user_id or client_reference_id, and no stored mapping for customer cus_nobody / subscription sub_nobody
8 | skipped | $U1 | unhandled type" "$out"
check "balances: U1 the pack less the refund, U2 two packs" "25 100" "$(overage "$U1") $(overage "$U2")"
check "the event rows: applied ones, the record as given, none for the failed ones" \
    "evt_b1 applied $U1 granted 50|evt_b2 applied $U1 refund: took back 25 of 25 credits (25 of 50 owed back)|evt_b4 applied $U2 granted 50|evt_b5 applied $U2 granted 50|evt_b7 skipped $U1 unhandled type" \
    "$(sql "SELECT string_agg(concat_ws(' ', event_id, status, user_id::text, note), '|' ORDER BY event_id)
              FROM paystream.webhook_events")"
check "one ledger row per change, each with its event" "evt_b1 50|evt_b2 -25|evt_b4 50|evt_b5 50" \
    "$(sql "SELECT string_agg(event_id || ' ' || amount, '|' ORDER BY event_id) FROM paystream.credit_transactions")"
check "the failed rule left nothing behind" "none 0" \
    "$(status_of evt_b3) $(sql "SELECT count(*) FROM paystream.subscription_history")"

# ------------------------------------------------------------- 2. again --
out=$(call "$PACK_U1" "$REFUND_U1" "$PACK_U2" "$PACK_BY_MAPPING" "$RECORD")
check "the same events again: all duplicates" \
    "1 | duplicate|2 | duplicate|3 | duplicate|4 | duplicate|5 | duplicate" "$(echo "$out" | paste -sd'|')"
check "and nothing changed" "25 100 4" \
    "$(overage "$U1") $(overage "$U2") $(sql "SELECT count(*) FROM paystream.credit_transactions")"

# ------------------------------------------ 3. a refund before its pack --
refund() { row charge_refunded "$1" charge="$2" payment_intent="$3" amount=1000 amount_refunded=1000 ${4:+invoice=$4}; }
out=$(call "$(refund evt_c1 ch_c1 pi_c2)" \
    "$(row pack_paid evt_c2 user_id="$U3" session=cs_c2 pack_id=pack50 payment_intent=pi_c2 customer=cus_c2)" \
    "$(refund evt_c3 ch_c3 pi_none in_c3)")
check "a refund before its pack waits, the pack grants, a refund of an invoice not applied waits" \
    "1 | failed | 55000 | refund of charge ch_c1: waiting for the purchase payment pi_c2 paid for (no granted credit-pack checkout or applied subscription invoice has it yet)
2 | applied | $U3 | granted 50
3 | failed | 55000 | refund of charge ch_c3: waiting for the purchase payment pi_none paid for (no granted credit-pack checkout or applied subscription invoice has it yet)" "$out"
check "U3 keeps the pack until the refund comes again" "50" "$(overage "$U3")"

# ------------------------------------------------ 4. two sessions, one event --
RACE=$(row record evt_r1 status=applied note=first user_id="$U3")
hold 2 "SELECT count(*) FROM paystream.ps_apply_batch(ARRAY[$RACE])"
second=$("${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "\\set VERBOSITY sqlstate" \
    -c "SELECT count(*) FROM paystream.ps_apply_batch(ARRAY[$(row record evt_r2 status=applied note=second user_id="$U3"),$(row record evt_r1 status=applied note=second user_id="$U3")])" 2>&1 || true)
wait "$HOLDER"
check "the second session waited for the first's COMMIT and failed as a whole" "ERROR:  PS001" "$second"
check "the first session's row stands, the second wrote nothing" "applied first none" \
    "$(sql "SELECT status || ' ' || note FROM paystream.webhook_events WHERE event_id = 'evt_r1'") $(status_of evt_r2)"

# ------------------------------------------------------------- 5. refused --
check "an empty batch is refused" "ERROR:  22023" \
    "$("${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "\\set VERBOSITY sqlstate" \
        -c "SELECT * FROM paystream.ps_apply_batch('{}')" 2>&1 || true)"
check "a batch of 65 events is refused" "ERROR:  22023" \
    "$("${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "\\set VERBOSITY sqlstate" \
        -c "SELECT * FROM paystream.ps_apply_batch(array_fill($RECORD, ARRAY[65]))" 2>&1 || true)"
check "the app role may not call it" "ERROR:  42501" \
    "$("${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "\\set VERBOSITY sqlstate" -c "SET ROLE paystream_app" \
        -c "SELECT * FROM paystream.ps_apply_batch(ARRAY[$RECORD])" 2>&1 || true)"

# ---------------------------------------------------- 6. paid invoices --
U4=00000000-0000-4000-8000-0000000000b4
BASIC=price_1PgafmB7WZ01zgkWBasicMo
PRO=price_1PgafmB7WZ01zgkWProMonth
state() { # state EVENT SUB STATUS PRICE PERIOD_END SUB_CREATED EVENT_CREATED
    row subscription_state "$1" user_id="$U4" subscription="$2" customer=cus_i sub_status="$3" \
        "prices=[\"$4\"]" period_start=1000 period_end="$5" cancel_at_period_end=false sub_created="$6" created="$7"
}
paid() { row invoice_paid "$1" user_id="$U4" subscription="$2" customer=cus_i invoice="$3" "prices=[\"$4\"]" period_end="$5"; }
ledger_u4() {
    sql "SELECT string_agg(concat_ws(' ', kind, reference, amount, balance_after), '|' ORDER BY id)
           FROM paystream.credit_transactions WHERE user_id = '$U4'"
}
out=$(call "$(state evt_i0 sub_i active "$BASIC" 2000 900 950)" "$(paid evt_i1 sub_i in_1 "$BASIC" 2000)")
check "the first period grants the plan's credits" \
    "1 | applied | $U4 | status active|2 | applied | $U4 | granted 100" "$(echo "$out" | paste -sd'|')"
sql "SELECT paystream.deduct_credits('$U4', gen_random_uuid(), 30, 'test')" >/dev/null
out=$(call "$(paid evt_i2 sub_i in_2 "$BASIC" 3000)" "$(paid evt_i3 sub_i in_3 "$PRO" 3000)")
check "a new period, then an upgrade within it" \
    "1 | applied | $U4 | granted 100|2 | applied | $U4 | upgraded by 200" "$(echo "$out" | paste -sd'|')"
check "the leftover expires before the grant; each row has its balance after it" \
    "subscription_grant in_1 100 100|usage $(sql "SELECT reference FROM paystream.credit_transactions WHERE kind = 'usage' AND user_id = '$U4'") -30 70|subscription_expire in_2 -70 0|subscription_grant in_2 100 100|subscription_upgrade in_3 200 300" \
    "$(ledger_u4)"
check "the period and its allowance are stored with the balance" "3000 300 300" \
    "$(sql "SELECT concat_ws(' ', credit_period_end, credits_total, credits_remaining)
              FROM paystream.subscriptions WHERE user_id = '$U4'")"
hold 3 "SELECT 1 FROM paystream.subscriptions WHERE user_id = '$U4' FOR UPDATE"
out=$("${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "SET statement_timeout = '1s'" \
    -c "SELECT concat_ws(' | ', k, status, note) FROM paystream.ps_apply_batch(ARRAY[$(paid evt_i4 sub_i in_3 "$PRO" 3000),$(paid evt_i5 sub_i in_1 "$BASIC" 2000)])" 2>&1 || true)
wait "$HOLDER"
check "an invoice's second event finds it granted without waiting for the busy account" \
    "1 | applied | nothing: period already granted|2 | applied | nothing: period already granted" \
    "$(echo "$out" | paste -sd'|')"
out=$(call "$(state evt_i6 sub_j active "$BASIC" 4000 1900 1950)" "$(paid evt_i7 sub_i in_3 "$PRO" 3000)")
check "once replaced, the subscription's granted invoice is skipped as before" \
    "1 | applied | $U4 | status active|2 | skipped | $U4 | skipped: subscription sub_i was replaced by sub_j: invoice in_3 grants nothing (its record: nothing: period already granted)" \
    "$(echo "$out" | paste -sd'|')"
check "and the ledger holds one grant per invoice" "in_1 1|in_2 1|in_3 1" \
    "$(sql "SELECT string_agg(reference || ' ' || n, '|' ORDER BY reference) FROM (
              SELECT reference, count(*) AS n FROM paystream.credit_transactions
               WHERE kind IN ('subscription_grant', 'subscription_upgrade') AND user_id = '$U4'
               GROUP BY 1) g")"

# ---------------------------------------------------------------- 7. plans --
# planned SESSION: one psql session calls ps_apply_batch six times with one new
# event each, then six more with log_planner_stats on; prints how many times
# the planner ran inside ps_apply_batch in those six (its SQL statements'
# CONTEXT names it)
planned() {
    local loop
    loop="DO \$\$ BEGIN FOR i IN 1..6 LOOP PERFORM count(*) FROM paystream.ps_apply_batch(
            ARRAY[jsonb_populate_record(NULL::paystream.batch_event, jsonb_build_object(
                'rule', 'record', 'event_id', 'evt_plan_$1_%s' || i, 'type', 'customer.created',
                'livemode', false, 'api_version', '2024-06-20', 'created', 1, 'stream_id', '1-0',
                'status', 'skipped', 'note', 'x'))]); END LOOP; END \$\$"
    # shellcheck disable=SC2059 # the loop is the format: %s is the round
    printf "\\set SHOW_CONTEXT always\nSET client_min_messages = log;\n$loop;\nSET log_planner_stats = on;\n$loop;\n" a b |
        "${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" 2>&1 |
        awk '/PLANNER STATISTICS/ { n++ } /PL\/pgSQL function paystream\.ps_apply_batch/ { inside++ }
             END { print inside + 0 " of " n + 0 }'
}
out=$(planned s1)
check "a session's later calls plan nothing inside ps_apply_batch" "0" "${out%% of *}"
check "(the count sees the planner: the DO block's own statements were planned)" "yes" \
    "$([ "${out##* of }" -gt 0 ] && echo yes || echo "no: $out")"

# ------------------------------------------------------ 8. the row's fields --
check "paystream.batch_event's fields are worker/ledger_row.c's, in order" \
    "$(grep -o '^    {"[a-z_]*", F_' "$PS_SOURCE_DIR/worker/ledger_row.c" | cut -d'"' -f2 | paste -sd,)" \
    "$(sql "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
             WHERE attrelid = 'paystream.batch_event'::regclass AND attnum > 0 AND NOT attisdropped")"

# ---------------------------------------------- 9. pack purchases at once --
U4=00000000-0000-4000-8000-0000000000c4
U5=00000000-0000-4000-8000-0000000000c5
pack() { # pack EVENT USER SESSION [FIELD=VALUE...]
    local ev=$1 usr=$2 cs=$3
    shift 3
    row pack_paid "$ev" user_id="$usr" session="$cs" pack_id=pack50 payment_intent="pi_${cs#cs_}" \
        customer="cus_$usr" "$@"
}
check "a session granted alone first" "1 | applied | $U4 | granted 50" \
    "$(call "$(pack evt_p0 "$U4" cs_p0)")"
# calls_of FUNCTION BATCH...: the batch's answer, then how often FUNCTION ran for it
calls_of() {
    local f=$1 rows
    shift
    rows=$(IFS=,; echo "$*")
    "${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "SET track_functions = 'all'" -c "
        SELECT concat_ws(' | ', k, status, user_id, note, err_code, err_message)
          FROM paystream.ps_apply_batch(ARRAY[$rows])" -c "SELECT pg_stat_force_next_flush()" \
        -c "SELECT 'calls ' || coalesce((SELECT calls FROM pg_stat_user_functions
                                          WHERE funcname = '$f'), 0)" | grep -v '^$'
}
sql "SELECT pg_stat_reset()" >/dev/null
out=$(calls_of _packs_paid "$(pack evt_p1 "$U4" cs_p1)" "$(pack evt_p2 "$U5" cs_p2)" \
    "$(pack evt_p3 "$U4" cs_p3)" "$(pack evt_p1 "$U4" cs_p1)" "$(pack evt_p4 "$U4" cs_p0)" \
    "$(row record evt_p5 status=skipped note=x user_id="$U5")")
check "five pack events in one call: granted in order, a duplicate, a session granted before" \
    "1 | applied | $U4 | granted 50
2 | applied | $U5 | granted 50
3 | applied | $U4 | granted 50
4 | duplicate
5 | applied | $U4 | nothing: session already granted
6 | skipped | $U5 | x
calls 1" "$out"
check "each grant a ledger row with the balance after it, in the batch's order" \
    "$U4 cs_p0 50 50|$U4 cs_p1 50 100|$U4 cs_p3 50 150|$U5 cs_p2 50 50" \
    "$(sql "SELECT string_agg(concat_ws(' ', user_id, reference, amount, balance_after), '|'
                              ORDER BY user_id, id)
              FROM paystream.credit_transactions WHERE user_id IN ('$U4', '$U5')")"
check "the balances, and each session's purchase with its event" "150 50 cs_p0:evt_p0,cs_p1:evt_p1,cs_p2:evt_p2,cs_p3:evt_p3" \
    "$(overage "$U4") $(overage "$U5") $(sql "SELECT string_agg(checkout_session_id || ':' || event_id, ','
        ORDER BY 1) FROM paystream.pack_purchases WHERE user_id IN ('$U4', '$U5')")"
out=$(call "$(pack evt_p6 "$U4" cs_p6)" "$(pack evt_p7 "$U5" cs_p7 pack_id=pack_nosuch)" \
    "$(pack evt_p8 "$U5" cs_p8 customer="cus_$U4")" "$(pack evt_p9 "$U5" cs_p9)")
check "an unknown pack and another user's customer fail alone, the others grant one by one" \
    "1 | applied | $U4 | granted 50
2 | failed | $U5 | P0002 | unknown credit pack pack_nosuch: add it with paystreamctl plans load, then replay
3 | failed | $U5 | 23505 | customer cus_$U4 belongs to user $U4, but this event names user $U5
4 | applied | $U5 | granted 50" "$out"
check "and the balances moved by those two only" "200 100" "$(overage "$U4") $(overage "$U5")"
out=$(calls_of _packs_paid "$(pack evt_q1 "$U4" cs_q1)" "$(pack evt_q2 "$U4" cs_q2)" \
    "$(row charge_refunded evt_q3 charge=ch_q1 payment_intent=pi_q1 amount=1000 amount_refunded=1000)")
check "two packs at once, then a refund of the first in the same batch" \
    "1 | applied | $U4 | granted 50
2 | applied | $U4 | granted 50
3 | applied | $U4 | refund: took back 50 of 50 credits (50 of 50 owed back)
calls 2" "$out"
check "the refund took back that pack's credits only" 250 "$(overage "$U4")"
check "reconcile is clean" 0 "$("$CTL" reconcile >/dev/null 2>&1; echo $?)"

done_testing
