# test_e2e_waiting.sh - waiting is not failing (SPEC 3): an event that needs
# another event first waits, for up to PAYSTREAM_WAIT_MAX, whatever restarts.
#
# a. A refund of a credit pack posted before the pack's checkout, with
#    PAYSTREAM_MAX_ATTEMPTS=2 (failing, it would be dead within a second):
#    `events show` shows it waiting and why; the purchase comes 8 s later and
#    the refund applies. No dead letter.
# b. While a refund waits, ingest, the workers, Redis (AOF) and PostgreSQL
#    are all restarted; then its purchase comes: applied once, balances right.
# c. PAYSTREAM_WAIT_MAX=4s: a refund of a payment never seen is skipped; an
#    invoice whose user is never found becomes a dead letter naming what it
#    waited for, recorded failed, and `dead retry` starts a fresh wait.
. "$(dirname "$0")/e2e_lib.sh"

BASIC=$(plan_credits basic)
PACK=$(plan_credits pack50)
HALF=$((PACK / 2))
posted=0

e2e_setup
# Redis keeps its stream in an AOF (deploy/redis.conf) from now on: part b
# restarts it and expects the stream and group back
rcli CONFIG SET appendonly yes >/dev/null
export PS_REDIS_AOF=yes
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=2000

# id_of FILE TYPE PHASE: the event id of that type in that phase
id_of() { python3 -c 'import json,sys; print([json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["type"] == sys.argv[2] and json.loads(l)["phase"] == sys.argv[3]][0])' "$@"; }
status_of() { sql "SELECT coalesce((SELECT status FROM paystream.webhook_events WHERE event_id = '$1'), 'none')"; }
waiting_rows() { sql "SELECT count(*) FROM paystream.waiting_events"; }
# wait_status ID STATUS SECONDS: until the event is recorded with STATUS
wait_status() {
    local start=$SECONDS
    until [ "$(status_of "$1")" = "$2" ]; do
        if [ $((SECONDS - start)) -ge "$3" ]; then
            check "$1 becomes $2 within $3 s" "$2" "$(status_of "$1")"
            return 1
        fi
        sleep 0.2
    done
}
# has NAME TEXT PATTERN: TEXT matches the extended regex PATTERN
has() {
    if grep -Eq -- "$3" <<<"$2"; then check "$1" yes yes; else check "$1" "matches /$3/" "$2"; fi
}
overage() { sql "SELECT overage_credits FROM paystream.subscriptions WHERE user_id = '$1'"; }
pack_refunds() { sql "SELECT count(*) FROM paystream.credit_transactions WHERE user_id = '$1' AND kind = 'pack_refund'"; }

# ------------------------------------------ a. a refund before its purchase --
U1=0a170000-0000-4000-8000-000000000001
F1=$E2E_DIR/u1.jsonl
gen lifecycle --seed waiting-a --user "$U1" >"$F1"
EV_REFUND1=$(id_of "$F1" charge.refunded refund)
post_drain "$F1" signup 60
post "$F1" refund
posted=$((posted + 1))
wait_status "$EV_REFUND1" waiting 10
sleep 3 # past what PAYSTREAM_MAX_ATTEMPTS=2 of failures would have lasted
out=$("$CTL" events show "$EV_REFUND1" 2>&1)
has "events show: recorded waiting" "$out" "status +waiting"
has "events show: what it waits for" "$out" "waits_for +refund of charge ch_[A-Za-z0-9]+: waiting for the purchase payment pi_"
has "events show: since when, next attempt, waits" "$out" "waiting_since .*$(date -u +%Y)|next_attempt +[0-9]"
check "no dead letter while it waits" 0 "$(rcli XLEN "$STREAM:dead")"
check "its stream entry was acknowledged: nothing pending" 0 "$(group_field pending)"
sleep 5 # the purchase comes about 8 s after the refund
post_drain "$F1" pack 60
check "the refund applied once its purchase came" "applied" "$(status_of "$EV_REFUND1")"
check "the pack's credits less the refunded half" "$((PACK - HALF))" "$(overage "$U1")"
check "no dead letter, nothing waiting" "0 0" "$(rcli XLEN "$STREAM:dead") $(waiting_rows)"

# ------------------------------------------- b. every component restarted --
U2=0a170000-0000-4000-8000-000000000002
F2=$E2E_DIR/u2.jsonl
gen lifecycle --seed waiting-b --user "$U2" >"$F2"
EV_REFUND2=$(id_of "$F2" charge.refunded refund)
post_drain "$F2" signup 60
post "$F2" refund
posted=$((posted + 1))
wait_status "$EV_REFUND2" waiting 10
kill -TERM "$INGEST_PID"
e2e_wait_exit "$INGEST_PID" 30 || check "ingest stops on SIGTERM" stopped running
e2e_forget "$INGEST_PID"
stop_worker "$W1"
rcli SHUTDOWN >/dev/null 2>&1 || true
stack_restart_redis
stack_restart_pg fast
check "after the restarts it still waits" "waiting 1" "$(status_of "$EV_REFUND2") $(waiting_rows)"
start_ingest
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W3 PAYSTREAM_CONCURRENCY=1 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=2000
check "Redis kept the stream and its group (AOF)" yes \
    "$([ "$(rcli XLEN "$STREAM")" -gt 0 ] && [ -n "$(group_field pending)" ] && echo yes || echo no)"
sleep 2
post_drain "$F2" pack 60
check "the refund applied after the restarts" "applied" "$(status_of "$EV_REFUND2")"
check "once: one refund row, the pack less half" "1 $((PACK - HALF))" "$(pack_refunds "$U2") $(overage "$U2")"
check "both users: the basic plan and what is left of the pack" "$BASIC $((PACK - HALF)) $((BASIC + PACK - HALF))" \
    "$(balance "$U1")"
check "no dead letter, nothing waiting" "0 0" "$(rcli XLEN "$STREAM:dead") $(waiting_rows)"
reconcile_clean
stop_worker "$W2"
stop_worker "$W3"

# ----------------------------------------------- c. the wait runs out (4 s) --
start_worker W4 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=2000 \
    PAYSTREAM_WAIT_MAX=4s
U3=0a170000-0000-4000-8000-000000000003
F3=$E2E_DIR/u3.jsonl
gen lifecycle --seed waiting-c --user "$U3" >"$F3"
EV_REFUND3=$(id_of "$F3" charge.refunded refund)
P=$E2E_DIR/poison.jsonl
gen poison --seed waiting-c >"$P"
grep '"phase": "no_user"' "$P" >"$E2E_DIR/no-user.jsonl"
EV_NO_USER=$(id_of "$P" invoice.paid no_user)
post "$F3" refund
post "$E2E_DIR/no-user.jsonl"
wait_status "$EV_NO_USER" waiting 10
check "both wait at first" "waiting waiting" "$(status_of "$EV_REFUND3") $(status_of "$EV_NO_USER")"
wait_status "$EV_REFUND3" skipped 15
has "a refund of a payment never seen is skipped when its wait runs out, saying why" \
    "$(sql "SELECT note FROM paystream.webhook_events WHERE event_id = '$EV_REFUND3'")" \
    "^skipped: waited 4s for the payment it refunds or disputes, which paystream never granted anything for: refund of charge ch_[A-Za-z0-9]+: waiting for the purchase payment pi_"
wait_status "$EV_NO_USER" failed 15
dead_error=$(rcli --json XRANGE "$STREAM:dead" - + | python3 -c '
import json, sys
for _, kv in json.load(sys.stdin):
    e = dict(zip(kv[::2], kv[1::2]))
    if e.get("id") == sys.argv[1]:
        print(e.get("error", ""))
' "$EV_NO_USER")
has "an invoice whose user never comes is dead-lettered, naming what it waited for" "$dead_error" \
    "^waited 4s for: user not found: no metadata.user_id or client_reference_id, and no stored mapping for customer cus_"
check "... recorded failed with that error" "failed $dead_error" \
    "$(sql "SELECT status || ' ' || error FROM paystream.webhook_events WHERE event_id = '$EV_NO_USER'")"
check "one dead letter, nothing waiting" "1 0" "$(rcli XLEN "$STREAM:dead") $(waiting_rows)"
out=$("$CTL" dead list 2>&1)
has "dead list shows why: what it waited for" "$out" "^    waited 4s for: user not found"
DEAD_ID=$(rcli --json XRANGE "$STREAM:dead" - + | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][0])')
rc=0
out=$("$CTL" dead retry "$DEAD_ID" 2>&1) || rc=$?
check "dead retry of an event that still waits: exit 0" 0 "$rc"
has "dead retry: it waits again" "$out" "^dead retry: 0 applied, 0 skipped, 0 failed, 1 waiting again$"
check "its dead letter is gone" 0 "$(rcli XLEN "$STREAM:dead")"
wait_status "$EV_NO_USER" waiting 10
check "a fresh wait: one row, first_wait_at just now" "1 t" \
    "$(waiting_rows) $(sql "SELECT first_wait_at > now() - interval '3 s' FROM paystream.waiting_events")"
wait_status "$EV_NO_USER" failed 15
check "its fresh wait ran out: dead again" 1 "$(rcli XLEN "$STREAM:dead")"
stop_worker "$W4"
has "the worker counts the events that waited" "$(grep '"stopped: ' "$E2E_DIR/worker-W4.log" | tail -1)" \
    "3 waited"
reconcile_clean
done_testing
