# test_pg_read_only.sh - a PostgreSQL that stops taking writes under running
# workers (SPEC 9: read-only sessions are retryable), as a primary fenced by a
# failover tool would (default_transaction_read_only, reloaded).
#
# The workers' sessions get SQLSTATE 25006, some of them inside
# ps_apply_batch's savepoints: no event may count that as a failed attempt.
# While the server takes no writes, the worker's /readyz is 503 and the events
# wait in the stream; once it takes writes again, every event is applied once,
# none was retried or dead-lettered, and reconcile is clean.
. "$(dirname "$0")/e2e_lib.sh"

USERS=${PS_PG_READ_ONLY_USERS:-30}
ADMIN_RW=(env PGOPTIONS="-c default_transaction_read_only=off" "${PSQL[@]}" "$PS_PG_ADMIN_URL")

# read_only on|off: the server's default for every session, reloaded
read_only() {
    "${ADMIN_RW[@]}" -c "ALTER SYSTEM SET default_transaction_read_only = $1" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

e2e_setup
start_ingest
ADMIN=127.0.0.1:$(stack_free_port)
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_ADMIN_LISTEN="$ADMIN"
check "worker /readyz is 200" yes "$(wait_code "http://$ADMIN/readyz" 200 15 && echo yes || echo no)"

F=$E2E_DIR/many.jsonl
gen many --users "$USERS" --seed pg-read-only --api-version mixed >"$F"
TOTAL=$(distinct_ids "$F")
head -n 40 "$F" >"$E2E_DIR/first.jsonl"
tail -n +41 "$F" >"$E2E_DIR/rest.jsonl"
post "$E2E_DIR/first.jsonl"
wait_done "$(distinct_ids "$E2E_DIR/first.jsonl")" 60 || check "the first events applied" yes no

read_only on
before=$(done_events)
post "$E2E_DIR/rest.jsonl"
check "/readyz is 503 while the server takes no writes" yes \
    "$(wait_code "http://$ADMIN/readyz" 503 10 && echo yes || echo no)"
check "/readyz names PostgreSQL" '{"error":"postgres_unavailable"}' "$(curl -s -m 5 "http://$ADMIN/readyz")"
sleep 3 # several reconnection attempts, each refused
check "nothing applied meanwhile" "$before" "$(done_events)"
check "nothing dead-lettered meanwhile" 0 "$(rcli XLEN "$STREAM:dead")"
check "the worker says why it waits" yes \
    "$(grep -q 'takes no writes' "$E2E_DIR/worker-W1.log" && echo yes || echo no)"

grep -o 'PostgreSQL connection lost ([^)]*)' "$E2E_DIR/worker-W1.log" | sort | uniq -c | sed 's/^/# /'
read_only off
check "/readyz is 200 again" yes "$(wait_code "http://$ADMIN/readyz" 200 15 && echo yes || echo no)"
wait_drain "$TOTAL" 60
check "every event recorded exactly once, with the right status" \
    "$(expected_statuses "$F")" "$(recorded_statuses "$F")"
check "no event counted a failed attempt" 0 \
    "$(grep -c 'attempt [0-9]* of [0-9]* failed' "$E2E_DIR/worker-W1.log" || true)"
check "nothing pending, nothing dead" "0 0" "$(group_field pending) $(rcli XLEN "$STREAM:dead")"
reconcile_clean
stop_worker "$W1"
check "the worker's count: none retried, none dead" yes \
    "$(grep -q '[0-9]* retried, [0-9]* waited, 0 dead' "$E2E_DIR/worker-W1.log" &&
        grep -q ' 0 retried' "$E2E_DIR/worker-W1.log" && echo yes || echo no)"
done_testing
