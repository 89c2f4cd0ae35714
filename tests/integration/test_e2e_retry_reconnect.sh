# test_e2e_retry_reconnect.sh - an event waiting for its retry keeps its
# backoff when the worker's Redis connections are cut (SPEC 3: retried with
# backoff, dead-lettered only after PAYSTREAM_MAX_ATTEMPTS deliveries).
#
# A refund whose credit-pack checkout has not come yet waits (SPEC 3) and is
# tried again on its schedule until the checkout arrives (Stripe may send it
# late). After a reconnect the
# worker re-reads the entries it holds: it must try each once, not again and
# again until the refund has used up its attempts in a few milliseconds and
# ends in the dead letters before its checkout could arrive.
. "$(dirname "$0")/e2e_lib.sh"

U=00000000-0000-4000-8000-0000000f1e01
ALL=$E2E_DIR/life.jsonl
REFUND=$E2E_DIR/refund.jsonl
REST=$E2E_DIR/rest.jsonl

e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=1 PAYSTREAM_MAX_ATTEMPTS=30 PAYSTREAM_CLAIM_IDLE_MS=60000
gen lifecycle --seed retry-reconnect --user "$U" >"$ALL"
grep '"charge.refunded"' "$ALL" >"$REFUND"
grep -v '"charge.refunded"' "$ALL" >"$REST"
REFUND_ID=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["id"])' "$REFUND")
attempts() { sql "SELECT coalesce((SELECT status || ' ' || attempts FROM paystream.webhook_events WHERE event_id = '$REFUND_ID'), 'none')"; }

post "$REFUND"
for _ in $(seq 1 100); do
    case $(attempts) in "waiting "[2-9]*) break ;; esac
    sleep 0.1
done
check "the refund before its checkout is waiting" "waiting" "$(attempts | cut -d' ' -f1)"
before=$(attempts | cut -d' ' -f2)

# cut the worker's Redis connections (ingest's too: it reconnects) three times
for _ in 1 2 3; do
    rcli CLIENT KILL TYPE normal >/dev/null
    sleep 1
done
after=$(attempts | cut -d' ' -f2)
check "after three reconnects in 3 s it is still waiting" "waiting" "$(attempts | cut -d' ' -f1)"
check "with backoff: at most 8 more attempts (was $before, now $after)" "yes" \
    "$([ "$after" -le $((before + 8)) ] && echo yes || echo no)"
check "nothing in the dead letters" "0" "$(rcli XLEN "$STREAM:dead")"

post "$REST"
wait_drain "$(distinct_ids "$ALL")" 60
check "the checkout came, and the refund then applied" "applied" "$(attempts | cut -d' ' -f1)"
check "the pack's credits less the refund's share stay in the overage bucket" \
    "$(($(plan_credits pack50) - $(plan_credits pack50) * 500 / 1000))" \
    "$(balance "$U" | cut -d' ' -f2)"
reconcile_clean

done_testing
