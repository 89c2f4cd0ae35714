# test_pg_failover.sh - PostgreSQL fails over under load (SPEC 9): nothing
# committed is lost, nothing applied twice, the workers follow on their own.
#
# A primary with a synchronous streaming standby (tests/harness/pg_standby.sh);
# every program has the URL naming both hosts with
# target_session_attrs=read-write. Signed events (the stripe npm package) are
# posted to ingest while two workers apply them. Part-way, the primary's
# postmaster and all its children are SIGKILLed (a lost machine); once a
# worker's /readyz says PostgreSQL is unavailable, the standby is promoted.
# Then: every event that got 200 recorded exactly once, balances as SPEC 4
# says, nothing pending or dead, reconcile clean on the new primary, both
# workers still running (and exiting 0 on SIGTERM), paystreamctl working
# through the same URL, and no source file lowering synchronous_commit.
# Prints the failover time: kill to the first commit on the new primary.
. "$(dirname "$0")/e2e_lib.sh"
# shellcheck source=../harness/pg_standby.sh
. "$PS_SOURCE_DIR/tests/harness/pg_standby.sh"

USERS=${PS_PG_FAILOVER_USERS:-100}
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
REFUND_DUE=$((PACK * 500 / 1000))
WORKER_ENV=(PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=1500)
POSTER=

[ -d "$PS_SOURCE_DIR/tests/node/node_modules/stripe" ] ||
    { echo "not ok - the stripe npm package is missing: npm ci --prefix tests/node"; exit 1; }

check "no source file changes synchronous_commit" "" \
    "$(grep -rIl synchronous_commit "$PS_SOURCE_DIR"/{common,worker,ctl,ingest,sql} || true)"

pg_pair_start # stopped by with-stack (stack_stop), after the workers
export PAYSTREAM_DATABASE_URL=$PS_PAIR_URL
NEW_PRIMARY="postgresql://postgres@127.0.0.1:$PS_PGS_PORT/paystream"
check "the standby is synchronous, synchronous_commit on" "sync on" \
    "$(pg_pair_sql "$PS_PGP_URL" "SELECT sync_state FROM pg_stat_replication") $(sql "SHOW synchronous_commit")"

e2e_setup
start_ingest
ADMIN=127.0.0.1:$(stack_free_port)
start_worker W1 "${WORKER_ENV[@]}" PAYSTREAM_ADMIN_LISTEN="$ADMIN"
start_worker W2 "${WORKER_ENV[@]}"
check "worker W1 /readyz is 200" yes "$(wait_code "http://$ADMIN/readyz" 200 15 && echo yes || echo no)"

F=$E2E_DIR/many.jsonl
gen many --users "$USERS" --seed pg-failover --api-version mixed >"$F"
TOTAL=$(distinct_ids "$F")
node "$PS_SOURCE_DIR/tests/node/post_events.js" "$INGEST_URL" "$SECRET" "$F" \
    >"$E2E_DIR/post.log" 2>&1 &
POSTER=$!
E2E_PIDS+=("$POSTER")

# ------------------------------------------------------------- failover --
wait_done $((TOTAL / 4)) 60 || check "a quarter of the events applied before the kill" yes no
before=$(done_events)
pg_pair_kill_primary
kill_at=$(date +%s.%N) # when it is gone: no commit on it after this
echo "# primary killed at $before of $TOTAL events done"
check "/readyz is 503 without a primary" yes "$(wait_code "http://$ADMIN/readyz" 503 10 && echo yes || echo no)"
check "/readyz names PostgreSQL" '{"error":"postgres_unavailable"}' "$(curl -s -m 5 "http://$ADMIN/readyz")"
promote_at=$(date +%s.%N)
pg_pair_promote
promoted_at=$(date +%s.%N)
check "/readyz is 200 again after the promotion" yes "$(wait_code "http://$ADMIN/readyz" 200 15 && echo yes || echo no)"

rc=0
wait "$POSTER" || rc=$?
e2e_forget "$POSTER"
check "every event posted got 200" 0 "$rc"
[ "$rc" = 0 ] || cat "$E2E_DIR/post.log"
wait_drain "$TOTAL" 60

first_commit=$("${PSQL[@]}" "$NEW_PRIMARY" -c "SELECT extract(epoch FROM min(processed_at))
    FROM paystream.webhook_events WHERE processed_at > to_timestamp($kill_at)")
awk -v k="$kill_at" -v p="$promote_at" -v d="$promoted_at" -v c="${first_commit:-0}" 'BEGIN {
    printf "# failover: kill to promote %.2f s (waiting for /readyz 503), pg_ctl promote %.2f s, ", p - k, d - p
    printf "kill to first commit on the new primary %.2f s, promoted to first commit %.2f s\n", c - k, c - d }'
check "a commit on the new primary after the kill" yes "$([ -n "$first_commit" ] && echo yes || echo no)"

# --------------------------------------------------------------- checks --
check "the URL leads to the promoted standby" "$PS_PGS_PORT primary" \
    "$(sql "SELECT current_setting('port') || CASE WHEN pg_is_in_recovery() THEN ' standby' ELSE ' primary' END")"
check "the workers lost the primary and reconnected" yes \
    "$(grep -q 'PostgreSQL connection lost' "$E2E_DIR"/worker-W*.log && echo yes || echo no)"
check "every event recorded exactly once, with the right status" \
    "$(expected_statuses "$F")" "$(recorded_statuses "$F")"
check "no Stripe-made ledger row written twice" 0 \
    "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL
            GROUP BY event_id, kind, bucket, reference HAVING count(*) > 1) d")"
canceled=$(((USERS + 2) / 3))
check "balances of all $USERS users as SPEC 4 says" \
    "$((USERS - canceled)) active pro $PRO $((PACK - REFUND_DUE))
$canceled canceled pro 0 $((PACK - REFUND_DUE))" \
    "$(sql "SELECT count(*) || ' ' || status || ' ' || plan || ' ' || credits_remaining || ' ' || overage_credits
              FROM paystream.subscriptions GROUP BY status, plan, credits_remaining, overage_credits
              ORDER BY status")"
check "nothing pending, nothing dead" "0 0" "$(group_field pending) $(rcli XLEN "$STREAM:dead")"
reconcile_clean

# paystreamctl through the URL of both hosts: the first one refuses now
user=$(sql "SELECT user_id FROM paystream.subscriptions ORDER BY user_id LIMIT 1")
ev=$(sql "SELECT event_id FROM paystream.webhook_events ORDER BY event_id LIMIT 1")
check_exit "paystreamctl balance after the failover" 0 "$CTL" balance "$user"
check_exit "paystreamctl events show after the failover" 0 "$CTL" events show "$ev"
check_exit "paystreamctl status after the failover" 0 "$CTL" status
check_exit "paystreamctl migrate after the failover (nothing to do)" 0 "$CTL" migrate

for w in W1 W2; do
    check "worker $w still running" yes "$(kill -0 "${!w}" 2>/dev/null && echo yes || echo no)"
done
stop_worker "$W1"
stop_worker "$W2"
done_testing
