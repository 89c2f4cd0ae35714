# test_roles.sh - least privilege, role by role (SPEC 5), over the catalog:
#  1. the privilege table below names every function and table of the schema
#     with the roles that may use it; a function or table it does not name
#     fails the test (every new one needs a grant decision), and each role's
#     login is refused everything else, by trying;
#  2. the my_* functions take the user from request.jwt.claims' sub, as
#     PostgREST and Supabase set it: a missing or malformed claim is refused
#     with a clear error, other claims cannot name another user, and nothing
#     they do spends or grants;
#  3. an operator runs paystreamctl without being a superuser;
#  4. a real client, the pg npm package, calls the app functions and the my_*
#     functions at once as the app and as two users (tests/node/roles_client.js).
. "$(dirname "$0")/lib.sh"

NODE_DIR=$PS_SOURCE_DIR/tests/node
"$CTL" migrate >/dev/null
"$CTL" plans load "$PS_SOURCE_DIR/tests/events/plans.txt" >/dev/null
for r in app worker operator user; do
    sql "CREATE ROLE ${r}_login LOGIN IN ROLE paystream_$r" >/dev/null
done
url_of() { echo "${PAYSTREAM_DATABASE_URL/postgres@/$1_login@}"; }
# state_of LOGIN SQL: the SQLSTATE the statement fails with as LOGIN, "ok" if it does not
state_of() {
    local out
    out=$("${PSQL[@]}" "$(url_of "$1")" -c "\\set VERBOSITY sqlstate" -c "$2" 2>&1) && { echo ok; return; }
    echo "$out" | grep -oE '[0-9A-Z]{5}$' | tail -n1
}

# --------------------------------------------------- 1. the privilege table --
# function: the roles that may execute it ("-": internal, nobody)
FUNCTIONS="
check_credits app
deduct_credits app
drop_event operator
get_credit_balance app operator
get_credit_history app operator
get_subscription app
grant_credits operator
my_check_credits user
my_credit_balance user
my_credit_history user
my_subscription user
ps_apply_batch worker operator
ps_charge_dispute worker
ps_charge_refunded worker
ps_checkout_subscription worker
ps_event_failed worker operator
ps_event_wait worker
ps_invoice_paid worker
ps_invoice_payment_failed worker
ps_invoice_payment_paid worker
ps_pack_failed worker
ps_pack_paid worker
ps_subscription_state worker
ps_waiting_due worker
ps_waiting_failed worker
ps_waiting_summary worker operator
_account_lock -
_account_open -
_batch_packs -
_batch_rule -
_batch_write -
_charge_dispute -
_charge_refunded -
_checkout_subscription -
_customer_link -
_dispute_status -
_find_user -
_invoice_paid -
_invoice_payment -
_invoice_payment_failed -
_invoice_record -
_jwt_user -
_ledger_add -
_ledger_period -
_pack_failed -
_pack_find -
_pack_paid -
_packs_paid -
_payment_open -
_payment_settle -
_payment_source -
_payment_user -
_plan_lines -
_plan_price_remember -
_refuse_ledger_rewrite -
_spendable -
_status_final -
_status_rank -
_sub_credits -
_sub_record -
_sub_replaced_note -
_sub_show -
_sub_sync -
_subscription_state -
_wait_delay -
_wait_span -
"
# table: the operator's privileges (no other role has any)
TABLES="
credit_packs SELECT,INSERT,UPDATE
credit_transactions SELECT
credit_usages SELECT
customers SELECT
disputes SELECT
invoices SELECT
pack_purchases SELECT
payments SELECT
plan_prices SELECT,INSERT,UPDATE
plans SELECT,INSERT,UPDATE
schema_code -
schema_migrations -
subscription_history SELECT
subscriptions SELECT
waiting_events SELECT
webhook_events SELECT
"
catalog_functions=$(sql "SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'paystream'::regnamespace ORDER BY 1")
check "every function of the schema has a grant decision here, and no other" \
    "$(printf '%s\n' "$FUNCTIONS" | awk 'NF { print $1 }' | LC_ALL=C sort)" "$(printf '%s\n' "$catalog_functions" | LC_ALL=C sort)"
catalog_tables=$(sql "SELECT relname FROM pg_class WHERE relnamespace = 'paystream'::regnamespace AND relkind IN ('r', 'v', 'm', 'p') ORDER BY 1")
check "every table of the schema has a grant decision here, and no other" \
    "$(printf '%s\n' "$TABLES" | awk 'NF { print $1 }' | LC_ALL=C sort)" "$(printf '%s\n' "$catalog_tables" | LC_ALL=C sort)"

for r in app worker operator user; do
    want=$(printf '%s\n' "$FUNCTIONS" | awk -v r="$r" 'NF { for (i = 2; i <= NF; i++) if ($i == r) print $1 }' | paste -sd,)
    got=$(sql "SELECT string_agg(DISTINCT p.proname, ',' ORDER BY p.proname) FROM pg_proc p
                WHERE p.pronamespace = 'paystream'::regnamespace
                  AND has_function_privilege('${r}_login', p.oid, 'EXECUTE')")
    check "$r may execute exactly its functions" "$want" "$got"
    # by trying: every other function refuses the login, whatever the arguments
    refused=0 total=0
    while IFS= read -r call; do
        [ -n "$call" ] || continue
        total=$((total + 1))
        st=$(state_of "$r" "$call")
        if [ "$st" = 42501 ]; then refused=$((refused + 1)); else echo "# $r may run: $call ($st)"; fi
    done < <(sql "SELECT format('SELECT %s(%s)', p.oid::regproc,
                    (SELECT coalesce(string_agg('NULL::' || format_type(t, NULL), ', '), '')
                       FROM unnest(p.proargtypes) t))
                   FROM pg_proc p WHERE p.pronamespace = 'paystream'::regnamespace
                    AND p.prorettype <> 'trigger'::regtype
                    AND NOT has_function_privilege('${r}_login', p.oid, 'EXECUTE') ORDER BY 1")
    check "$r is refused every other function when it tries ($total)" "$total" "$refused"
    want=$(printf '%s\n' "$TABLES" | awk -v r="$r" 'NF && $2 != "-" && r == "operator" { n = split($2, p, ","); for (i = 1; i <= n; i++) print $1 " " p[i] }' | LC_ALL=C sort | paste -sd,)
    got=$(sql "SELECT c.relname || ' ' || p FROM pg_class c
                 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                         'REFERENCES', 'TRIGGER']) p
                WHERE c.relnamespace = 'paystream'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
                  AND has_table_privilege('${r}_login', c.oid, p)" | LC_ALL=C sort | paste -sd,)
    check "$r has exactly its table privileges" "$want" "$got"
    check "$r cannot rewrite the ledger" 42501 \
        "$(state_of "$r" "DELETE FROM paystream.credit_transactions")"
    check "$r cannot create in the schema" 42501 \
        "$(state_of "$r" "CREATE TABLE paystream.t_$r (i int)")"
done

# ------------------------------------------------------ 2. the my_* functions --
A=00000000-0000-4000-8000-0000000000a1
B=00000000-0000-4000-8000-0000000000b2
sql "SELECT paystream.grant_credits('$A', 10, 'overage', 'grant for $A'),
            paystream.grant_credits('$B', 20, 'overage', 'grant for $B')" >/dev/null
# as_user CLAIMS SQL: SQL as user_login in a transaction whose claims are CLAIMS
as_user() {
    "${PSQL[@]}" "$(url_of user)" -c "\\set VERBOSITY sqlstate" -c "BEGIN" \
        -c "SELECT set_config('request.jwt.claims', '$1', true)" -c "$2" -c "COMMIT" 2>&1 |
        grep -v "^$1\$" || true
}
check "my_credit_balance: the user's own" "0|10|10" "$(as_user "{\"sub\":\"$A\"}" "SELECT * FROM paystream.my_credit_balance()")"
check "my_credit_history: the user's own rows only" "grant for $A" \
    "$(as_user "{\"sub\":\"$A\",\"role\":\"authenticated\"}" "SELECT description FROM paystream.my_credit_history(100)")"
check "other claims cannot name another user (user_id, app_metadata, a second sub inside)" "0|10|10" \
    "$(as_user "{\"sub\":\"$A\",\"user_id\":\"$B\",\"app_metadata\":{\"sub\":\"$B\"}}" "SELECT * FROM paystream.my_credit_balance()")"
check "my_check_credits reads the claim's user" "t f" \
    "$(as_user "{\"sub\":\"$A\"}" "SELECT paystream.my_check_credits(10)") $(as_user "{\"sub\":\"$A\"}" "SELECT paystream.my_check_credits(11)")"
check "my_subscription: none" "" "$(as_user "{\"sub\":\"$A\"}" "SELECT * FROM paystream.my_subscription()")"
for bad in '' '{}' 'not json' '{"sub":"nobody"}' '{"sub":42}' "{\"sub\":\"$A' OR 1=1\"}"; do
    out=$("${PSQL[@]}" "$(url_of user)" -c "\\set VERBOSITY default" -c "BEGIN" \
        -c "SELECT set_config('request.jwt.claims', \$\$${bad}\$\$, true)" \
        -c "SELECT * FROM paystream.my_credit_balance()" 2>&1 || true)
    check "claims [$bad] are refused with a clear error" yes \
        "$(grep -qE 'no signed-in user|not JSON|sub claim must be' <<<"$out" && echo yes || echo "no: $out")"
done
check "without claims at all: refused (28000)" 28000 \
    "$(state_of user "SELECT * FROM paystream.my_credit_history()")"
check "the user role cannot spend or grant for anyone" "42501 42501" \
    "$(state_of user "SELECT paystream.deduct_credits('$A', gen_random_uuid(), 1, 'x')") $(state_of user "SELECT paystream.grant_credits('$A', 1, 'overage', 'x')")"
check "the app cannot grant" 42501 "$(state_of app "SELECT paystream.grant_credits('$A', 1, 'overage', 'x')")"
check "nothing the user did changed the ledger" "2 10 20" \
    "$(sql "SELECT count(*) || ' ' || sum(amount) FILTER (WHERE user_id = '$A') || ' ' || sum(amount) FILTER (WHERE user_id = '$B') FROM paystream.credit_transactions")"

# ---------------------------------------------- 3. paystreamctl as an operator --
OP=(--database-url "$(url_of operator)")
check_exit "an operator loads plans" 0 "$CTL" "${OP[@]}" plans load "$PS_SOURCE_DIR/tests/events/plans.txt"
check_exit "an operator lists plans" 0 "$CTL" "${OP[@]}" plans list
check_exit "an operator reads a balance" 0 "$CTL" "${OP[@]}" balance "$A" --history 5
check_exit "an operator reconciles" 0 "$CTL" "${OP[@]}" reconcile
check "an operator grants" 15 "$("${PSQL[@]}" "$(url_of operator)" -c "SELECT paystream.grant_credits('$A', 5, 'overage', 'support: grant for $A', 'ticket-1')")"
check "an operator may not migrate" 1 "$("$CTL" "${OP[@]}" migrate >/dev/null 2>&1; echo $?)"

# ------------------------------------------------- 4. a real client, at once --
[ -f "$NODE_DIR/node_modules/pg/package.json" ] ||
    { echo "not ok - the pg npm package is missing: npm ci --prefix tests/node"; exit 1; }
sql "SELECT paystream.grant_credits('$A', 300, 'overage', 'grant for $A'),
            paystream.grant_credits('$B', 300, 'overage', 'grant for $B')" >/dev/null
out=$(APP_URL=$(url_of app) USER_URL=$(url_of user) USER_A=$A USER_B=$B ROUNDS=150 \
    NODE_PATH="$NODE_DIR/node_modules" node "$NODE_DIR/roles_client.js" 2>&1) || true
check "the app and two users at once through pg: each sees only their own" '{"spent":150,"problems":[]}' "$out"
check "and the balances: every deduction a ledger row" "$((10 + 5 + 300 - 75)) $((20 + 300 - 75))" \
    "$(sql "SELECT total FROM paystream.get_credit_balance('$A')") $(sql "SELECT total FROM paystream.get_credit_balance('$B')")"

done_testing
