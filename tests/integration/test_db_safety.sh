# test_db_safety.sh - the database under attack (SPEC 5: roles, SECURITY DEFINER).
#
#  1. A schema-hijack kit is planted where a careless function would find it:
#     a schema of the app's login on its and the worker login's search_path,
#     public (made writable, as on databases created before PostgreSQL 15) and
#     pg_temp. It holds look-alikes of every table, of the built-in functions
#     the SQL calls (with more specific argument types, which would win the
#     overload resolution) and of common operators; each raises HIJACKED.
#  2. Events whose every Stripe id and free text carries an SQL injection
#     string go through ingest to a worker that logs in as a member of
#     paystream_worker with that search_path: they apply exactly as plain
#     events, the strings stored as data; values that cannot be accepted
#     (metadata.user_id, price and pack ids, the event type) end with an error
#     that quotes them, or as skipped. Nothing is executed: no table lost, no
#     balance changed, no syntax error in the PostgreSQL log.
#  3. The app's login calls the API with the kit first on its own search_path
#     and in pg_temp: correct answers, no HIJACKED. It cannot call any function
#     outside the app API, create anything in the schema, or become another role.
# (Table privileges of both roles and the append-only ledger are in itest_ledger_roles.)
. "$(dirname "$0")/e2e_lib.sh"

INJ="$(dirname "$0")/injection_events.py"
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))
APP_URL=${PAYSTREAM_DATABASE_URL/postgres@/app_login@}
WORKER_URL=${PAYSTREAM_DATABASE_URL/postgres@/worker_login@}
OPERATOR_URL=${PAYSTREAM_DATABASE_URL/postgres@/operator_login@}
USER_OK=00000000-0000-4000-8000-00000000d801
USER_BAD=00000000-0000-4000-8000-00000000d802
CANARY=00000000-0000-4000-8000-00000000d803

as_app() { "${PSQL[@]}" "$APP_URL" "$@"; }
# sql_state URL SQL: the SQLSTATE the statement fails with ("ok" if it does not)
sql_state() {
    local out
    out=$("${PSQL[@]}" "$1" -v VERBOSITY=verbose -c "$2" 2>&1) && { echo ok; return; }
    sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' <<<"$out" | head -n1
}

e2e_setup
sql "CREATE ROLE app_login LOGIN IN ROLE paystream_app" >/dev/null
sql "CREATE ROLE worker_login LOGIN IN ROLE paystream_worker" >/dev/null
sql "CREATE ROLE operator_login LOGIN IN ROLE paystream_operator" >/dev/null
sql "SELECT paystream.grant_credits('$CANARY', 77, 'overage', 'canary before the attack')" >/dev/null

# ------------------------------------------------------------- the kit --
# kit SCHEMA: SQL that plants look-alikes in SCHEMA; each raises when used
kit() {
    local s=$1 t f fn
    echo "CREATE FUNCTION $s.trap(what text) RETURNS boolean LANGUAGE plpgsql AS
          \$\$BEGIN RAISE EXCEPTION 'HIJACKED: % in $s', what; END\$\$;"
    for f in "now() RETURNS timestamptz" "clock_timestamp() RETURNS timestamptz" \
        "gen_random_uuid() RETURNS uuid" "to_timestamp(bigint) RETURNS timestamptz" \
        "to_timestamp(integer) RETURNS timestamptz" "format(text) RETURNS text" \
        "format(text, text) RETURNS text" "format(text, integer) RETURNS text" \
        "format(text, bigint) RETURNS text" "format(text, text, text) RETURNS text" \
        "cardinality(text[]) RETURNS integer" "abs(integer) RETURNS integer" \
        "length(text) RETURNS integer" "lower(text) RETURNS text"; do
        echo "CREATE FUNCTION $s.$f LANGUAGE plpgsql AS
              \$\$BEGIN PERFORM $s.trap('${f%% RETURNS*}'); RETURN NULL; END\$\$;"
    done
    for t in plans credit_packs customers subscriptions credit_transactions credit_usages \
        pack_purchases webhook_events; do
        echo "CREATE VIEW $s.$t AS SELECT $s.trap('table $t') AS user_id;"
    done
    [ "$s" = pg_temp ] && return
    for t in "integer, integer" "bigint, bigint" "bigint, integer" "uuid, uuid" "text, text"; do
        fn="op_trap_$(echo "$t" | tr -d ' ,')"
        echo "CREATE FUNCTION $s.$fn(a ${t%%,*}, b ${t##*, }) RETURNS boolean LANGUAGE sql AS
              \$\$SELECT $s.trap('operator on ($t)')\$\$;"
        for op in '=' '<>' '<' '>' '<=' '>='; do
            echo "CREATE OPERATOR $s.$op (LEFTARG = ${t%%,*}, RIGHTARG = ${t##*, }, FUNCTION = $s.$fn);"
        done
    done
}

sql "CREATE SCHEMA shared AUTHORIZATION app_login; GRANT USAGE ON SCHEMA shared TO PUBLIC;
     GRANT CREATE ON SCHEMA public TO PUBLIC" >/dev/null
kit shared | as_app -f - >/dev/null
kit public | as_app -f - >/dev/null
sql "ALTER ROLE app_login SET search_path = shared, public, paystream;
     ALTER ROLE worker_login SET search_path = shared, public, paystream;
     ALTER ROLE operator_login SET search_path = shared, public, paystream" >/dev/null
check "the kit is in place: shared.now() and public.subscriptions raise HIJACKED" "HIJACKED HIJACKED" \
    "$(as_app -c 'SELECT shared.now()' 2>&1 | grep -o HIJACKED | head -n1) $(as_app -c 'SELECT * FROM public.subscriptions' 2>&1 | grep -o HIJACKED | head -n1)"
check "and an unqualified call from the app's own session finds it" HIJACKED \
    "$(as_app -c 'SELECT to_timestamp(1::bigint)' 2>&1 | grep -o HIJACKED | head -n1)"
tables_before=$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'paystream'")

# ------------------------------------------ injections through the pipeline --
start_ingest
# one consumer: the lifecycle applies in the order it is posted, so that each of
# its invoices grants (with several, a later invoice may be applied first and
# the earlier ones rightly grant nothing: the checks below name every invoice)
start_worker W1 PAYSTREAM_DATABASE_URL="$WORKER_URL" PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=1000 \
    PAYSTREAM_CONCURRENCY=1
GOOD=$E2E_DIR/good.jsonl
BAD=$E2E_DIR/bad.jsonl
python3 "$INJ" lifecycle --user "$USER_OK" >"$GOOD"
python3 "$INJ" bad --user "$USER_BAD" >"$BAD"
cat "$GOOD" "$BAD" >"$E2E_DIR/all.jsonl"
t0=$SECONDS
post "$GOOD"
post "$BAD"
wait_drain "$(distinct_ids "$E2E_DIR/all.jsonl")" 120
drain_s=$((SECONDS - t0))
check "the worker logged in as worker_login" 1 \
    "$(sql "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = 'worker_login'" | sed 's/t/1/')"

# field JSONL EXPR: one value from the events, by a Python expression on ev/body
field() { python3 -c 'import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line); body = json.loads(ev["body"]); o = body["data"]["object"]
    v = eval(sys.argv[2])
    if v: print(v); break' "$1" "$2"; }

# (the whole table: these are the only events of this database)
check "every event recorded under its exact id, as expected (applied, skipped, failed)" \
    "$(python3 -c 'import json, sys
for k in sorted({(e["id"], e["expect"]) for e in map(json.loads, open(sys.argv[1]))}):
    print(*k)' "$E2E_DIR/all.jsonl")" \
    "$(sql "SELECT event_id || ' ' || status FROM paystream.webhook_events ORDER BY event_id COLLATE \"C\"")"
check "injected ids and texts change nothing: canceled pro, overage minus the refund" \
    "canceled pro 0 $((PACK - REFUND_DUE))" \
    "$(sql "SELECT status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
              FROM paystream.subscriptions WHERE user_id = '$USER_OK'")"
cus=$(field "$GOOD" 'o.get("customer") if ev["type"] == "customer.subscription.created" else None')
subid=$(field "$GOOD" 'o["id"] if ev["type"] == "customer.subscription.created" else None')
check "the customer id is stored as data, byte for byte" "$cus" \
    "$(sql "SELECT stripe_customer_id FROM paystream.subscriptions WHERE user_id = '$USER_OK'")"
check "the subscription id is stored as data, byte for byte" "$subid" \
    "$(sql "SELECT stripe_subscription_id FROM paystream.subscriptions WHERE user_id = '$USER_OK'")"
pi=$(field "$GOOD" 'o.get("payment_intent") if ev["type"] == "checkout.session.completed" and o["mode"] == "payment" else None')
check "the payment_intent is stored as data and the refund matched it" "$pi $REFUND_DUE" \
    "$(sql "SELECT payment || ' ' || taken FROM paystream.payments WHERE user_id = '$USER_OK'")"
# a period's grant references its invoice; the upgrade, the invoice or the
# subscription event that showed it first (SPEC 4): each injected id byte for byte
refs=$(sql "SELECT reference FROM paystream.credit_transactions WHERE user_id = '$USER_OK'
              AND kind IN ('subscription_grant', 'subscription_upgrade') ORDER BY id")
check "subscription grants and the upgrade reference injected Stripe ids as data" "3 3" \
    "$(printf '%s\n' "$refs" | wc -l) $(python3 -c 'import json, sys
ids = set()
for l in open(sys.argv[1]):
    ev = json.loads(l)
    ids.add(ev["id"])
    if ev["type"] == "invoice.paid":
        ids.add(json.loads(ev["body"])["data"]["object"]["id"])
print(sum(1 for r in sys.stdin.read().split("\n") if r in ids))' "$GOOD" <<<"$refs")"

# error EVENT_PHASE: the recorded error of the bad event of that phase
error_of() {
    sql "SELECT error FROM paystream.webhook_events WHERE event_id =
         '$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["phase"] == sys.argv[2]: print(e["id"].replace("'"'"'", "'"'"''"'"'"))' "$BAD" "$1")'"
}
mapfile -t INJECTIONS < <(python3 "$INJ" ids)
check "metadata.user_id that is no uuid: failed, the error says so" yes \
    "$(grep -qi 'user_id' <<<"$(error_of user_id)" && echo yes || echo "no: $(error_of user_id)")"
check "an injected price id: failed, the error quotes it as data" yes \
    "$(grep -qF "${INJECTIONS[1]}" <<<"$(error_of price)" && echo yes || echo "no: $(error_of price)")"
check "an injected metadata.credit_pack: failed, the error quotes it as data" yes \
    "$(grep -qF "${INJECTIONS[2]}" <<<"$(error_of credit_pack)" && echo yes || echo "no: $(error_of credit_pack)")"
check "an injected metadata.price_id: failed, the error quotes it as data" yes \
    "$(grep -qF "${INJECTIONS[3]}" <<<"$(error_of price_id)" && echo yes || echo "no: $(error_of price_id)")"
check "an injected event type: skipped, stored as data" "invoice.paid${INJECTIONS[4]} skipped" \
    "$(sql "SELECT type || ' ' || status FROM paystream.webhook_events WHERE type LIKE 'invoice.paid_%'")"
check "the dead letters are the four refused events" 4 "$(rcli XLEN "$STREAM:dead")"
check "no table lost" "$tables_before" "$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'paystream'")"
check "the canary's balance is untouched, nobody got 999999" "77 0" \
    "$(sql "SELECT overage_credits || ' ' || count(*) FILTER (WHERE overage_credits = 999999) OVER ()
              FROM paystream.subscriptions WHERE user_id = '$CANARY'")"
check "nothing slept: drained in under 30 s (pg_sleep(30) never ran)" yes \
    "$([ "$drain_s" -lt 30 ] && echo yes || echo "no ($drain_s s)")"
check "no syntax error in the PostgreSQL log (nothing was parsed as SQL)" 0 \
    "$(grep -c 'syntax error' "$PS_STACK_DIR/pg.log" || true)"
check "the worker never met the kit" 0 "$(grep -c HIJACKED "$E2E_DIR"/worker-W1.log || true)"
reconcile_clean
stop_worker "$W1"

# ------------------------------------------- the app's own hijacking session --
USER_APP=00000000-0000-4000-8000-00000000d804
V1=00000000-0000-4000-8000-0000000a0001
granted=$("${PSQL[@]}" "$OPERATOR_URL" 2>&1 <<SQL
SET search_path = pg_temp, shared, public, paystream;
$(kit pg_temp)
SELECT paystream.grant_credits('$USER_APP', 10, 'overage', 'promo');
SQL
) || true
check "an operator's grant under a hijacking search_path and pg_temp: right answer" 10 "$granted"
out=$(as_app 2>&1 <<SQL
SET search_path = pg_temp, shared, public, paystream;
$(kit pg_temp)
SELECT paystream.check_credits('$USER_APP', 10), paystream.check_credits('$USER_APP', 11);
SELECT paystream.deduct_credits('$USER_APP', '$V1', 3, 'render');
SELECT paystream.deduct_credits('$USER_APP', '$V1', 3, 'render again: charged once');
SELECT * FROM paystream.get_credit_balance('$USER_APP');
SELECT count(*) FROM paystream.get_credit_history('$USER_APP', 10, NULL);
SELECT paystream.deduct_credits('$USER_APP', gen_random_uuid(), 100, 'too much');
SQL
) || true
check "the API under the app's hijacking search_path and pg_temp: right answers, kit unused" \
    "$(printf 't|f\nt\nt\n0|7|7\n2\nf')" "$out"
check "the kit in pg_temp was there (the session's own unqualified now() hit it)" HIJACKED \
    "$(as_app -c "$(kit pg_temp)" -c 'SET search_path = pg_temp, public' -c 'SELECT * FROM subscriptions' 2>&1 |
        grep -o HIJACKED | head -n1)"

# every function that is not the app API refuses the app, whatever the arguments
calls=$(sql "SELECT format('SELECT %s(%s)', p.oid::regproc,
                (SELECT coalesce(string_agg('NULL::' || format_type(t, NULL), ', '), '')
                   FROM unnest(p.proargtypes) t))
               FROM pg_proc p
              WHERE p.pronamespace = 'paystream'::regnamespace AND p.prorettype <> 'trigger'::regtype
                AND p.proname NOT IN ('check_credits', 'deduct_credits', 'get_credit_balance',
                                      'get_credit_history', 'get_subscription')
              ORDER BY 1")
denied=0
total=0
while IFS= read -r call; do
    [ -n "$call" ] || continue
    total=$((total + 1))
    st=$(sql_state "$APP_URL" "$call")
    if [ "$st" = 42501 ]; then denied=$((denied + 1)); else echo "# app may run: $call ($st)"; fi
done <<<"$calls"
check "the app login is refused every worker-only and internal function ($total)" "$total" "$denied"
check "there are worker-only functions to refuse" yes "$([ "$total" -ge 10 ] && echo yes || echo no)"
check "the app cannot create a table in the paystream schema" 42501 \
    "$(sql_state "$APP_URL" "CREATE TABLE paystream.subscriptions_copy (i int)")"
check "the app cannot create a function in the paystream schema" 42501 \
    "$(sql_state "$APP_URL" "CREATE FUNCTION paystream.now() RETURNS int LANGUAGE sql AS 'SELECT 1'")"
check "the app cannot become the worker role" 42501 "$(sql_state "$APP_URL" "SET ROLE paystream_worker")"
check "the app cannot become the owner" 42501 "$(sql_state "$APP_URL" "SET ROLE postgres")"
check "the worker login cannot create in the paystream schema either" 42501 \
    "$(sql_state "$WORKER_URL" "CREATE VIEW paystream.v AS SELECT 1")"
done_testing
