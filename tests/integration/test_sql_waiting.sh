# test_sql_waiting.sh - the waiting table's functions (sql/events.sql), called
# directly (SPEC 3, "Waiting is not failing"):
#  1. the schedule: 0.25 s doubling, at most every 30 min;
#  2. ps_event_wait keeps an event and records it waiting with its reason; a
#     second call keeps first_wait_at and counts the wait; the next attempt
#     never lies past the end of the wait; an event done meanwhile waits for
#     nothing;
#  3. the wait runs out: a refund or dispute is recorded skipped, anything
#     else is 'dead' until ps_event_failed(final) marks it failed and deletes
#     its row;
#  4. ps_waiting_due claims due rows with a lease, skipping rows another
#     session holds (SKIP LOCKED); ps_waiting_failed counts real failures;
#  5. ps_apply_batch deletes the waiting row of an event it applies.
. "$(dirname "$0")/lib.sh"

"$CTL" migrate >/dev/null
# wait_ev ID TYPE REASON [WAIT_MAX_S]: ps_event_wait's answer "outcome|detail|next_ms|waits"
# (NULLs left out)
wait_ev() {
    sql "SELECT concat_ws('|', outcome, detail, next_ms, n_waits) FROM paystream.ps_event_wait(
           '$1', '$2', false, '2024-06-20', 1700000000, '1-$1', '{\"id\": \"$1\"}', 1700000000000,
           '$3', ${4:-3600})"
}
row_of() { sql "SELECT concat_ws(' ', status, error, note) FROM paystream.webhook_events WHERE event_id = '$1'"; }
waiting_of() { sql "SELECT concat_ws(' ', waits, failures, reason) FROM paystream.waiting_events WHERE event_id = '$1'"; }

# ------------------------------------------------------------- 1. schedule --
check "the schedule: 0.25 s doubling, then every 30 min" \
    "0.25 0.5 1 2 4 8 16 32 64 128 256 512 1024 1800 1800 1800" \
    "$(sql "SELECT string_agg(extract(epoch FROM paystream._wait_delay(n))::float8::text, ' ' ORDER BY n)
              FROM generate_series(0, 15) n")"

# --------------------------------------------------------------- 2. waiting --
out=$(wait_ev evt_w1 invoice.paid "user not found: cus_w1")
check "a first wait: waiting, its reason, next attempt in about 0.25 s" "waiting|user not found: cus_w1|ok|0" \
    "$(echo "$out" | awk -F'|' '{ print $1 "|" $2 "|" ($3 >= 200 && $3 <= 300 ? "ok" : $3) "|" $4 }')"
check "recorded waiting with what it waits for" "waiting user not found: cus_w1" "$(row_of evt_w1)"
first=$(sql "SELECT first_wait_at FROM paystream.waiting_events WHERE event_id = 'evt_w1'")
sleep 0.1
out=$(wait_ev evt_w1 invoice.paid "user not found: cus_w1 (again)")
check "a second wait counts, waits longer" "waiting|1|ok" \
    "$(echo "$out" | awk -F'|' '{ print $1 "|" $4 "|" ($3 >= 400 && $3 <= 600 ? "ok" : $3) }')"
check "it keeps its first_wait_at, the newest reason" "$first 1 0 user not found: cus_w1 (again)" \
    "$(sql "SELECT first_wait_at FROM paystream.waiting_events WHERE event_id = 'evt_w1'") $(waiting_of evt_w1)"
sql "UPDATE paystream.waiting_events SET waits = 12, first_wait_at = now() - interval '55 s'
      WHERE event_id = 'evt_w1'" >/dev/null
out=$(wait_ev evt_w1 invoice.paid "user not found: cus_w1" 60)
check "the next attempt is never after the end of the wait" "waiting ok" \
    "$(echo "$out" | awk -F'|' '{ print $1 " " ($3 >= 4000 && $3 <= 5100 ? "ok" : $3) }')"
sql "INSERT INTO paystream.webhook_events (event_id, type, status) VALUES ('evt_w2', 'invoice.paid', 'applied')" >/dev/null
check "an event applied meanwhile waits for nothing" "done" "$(wait_ev evt_w2 invoice.paid "x")"
check "... and keeps its record, with no waiting row" "applied 0" \
    "$(row_of evt_w2) $(sql "SELECT count(*) FROM paystream.waiting_events WHERE event_id = 'evt_w2'")"

# ------------------------------------------------------- 3. the wait ends --
for id in evt_r1 evt_d1 evt_i1; do
    type=charge.refunded
    [ "$id" = evt_d1 ] && type=charge.dispute.created
    [ "$id" = evt_i1 ] && type=invoice.paid
    wait_ev "$id" "$type" "nothing for $id yet" >/dev/null
done
sql "UPDATE paystream.waiting_events SET first_wait_at = now() - interval '2 hours'" >/dev/null
check "a refund whose wait ran out is skipped" \
    "skipped|skipped: waited 1h0m for the payment it refunds or disputes, which paystream never granted anything for: nothing for evt_r1 yet|1" \
    "$(wait_ev evt_r1 charge.refunded "nothing for evt_r1 yet")"
check "... recorded skipped with that note, its row gone" \
    "skipped skipped: waited 1h0m for the payment it refunds or disputes, which paystream never granted anything for: nothing for evt_r1 yet|0" \
    "$(row_of evt_r1)|$(sql "SELECT count(*) FROM paystream.waiting_events WHERE event_id = 'evt_r1'")"
check "a dispute too" "skipped" "$(wait_ev evt_d1 charge.dispute.created "nothing for evt_d1 yet" | cut -d'|' -f1)"
check "an invoice whose wait ran out is dead, naming what it waited for" \
    "dead|waited 1h0m for: nothing for evt_i1 yet|1" "$(wait_ev evt_i1 invoice.paid "nothing for evt_i1 yet")"
check "... still waiting until its dead letter is written" "waiting 1" \
    "$(sql "SELECT status FROM paystream.webhook_events WHERE event_id = 'evt_i1'") $(sql "SELECT count(*) FROM paystream.waiting_events WHERE event_id = 'evt_i1'")"
sql "SELECT paystream.ps_event_failed('evt_i1', 'invoice.paid', NULL, NULL, NULL, '1-evt_i1',
        'waited 1h0m for: nothing for evt_i1 yet', 1, true, NULL)" >/dev/null
check "then failed with that error, and no longer waiting" "failed waited 1h0m for: nothing for evt_i1 yet|0" \
    "$(row_of evt_i1)|$(sql "SELECT count(*) FROM paystream.waiting_events WHERE event_id = 'evt_i1'")"
check "durations for people" "72h0m 1m30s 4s" \
    "$(sql "SELECT paystream._wait_span(259200) || ' ' || paystream._wait_span(90) || ' ' || paystream._wait_span(4)")"

# --------------------------------------------------- 4. claims and leases --
sql "DELETE FROM paystream.waiting_events" >/dev/null
for i in 1 2 3; do wait_ev "evt_q$i" invoice.paid "q$i" >/dev/null; done
sql "UPDATE paystream.waiting_events SET next_attempt_at = now() - CASE event_id WHEN 'evt_q1' THEN interval '3 s' WHEN 'evt_q2' THEN interval '2 s' ELSE interval '1 s' END" >/dev/null
"${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "BEGIN" \
    -c "SELECT count(*) FROM paystream.ps_waiting_due(2, 60)" -c "SELECT pg_sleep(2)" -c "COMMIT" \
    >"$PS_STACK_DIR/holder.out" &
HOLDER=$!
sleep 0.7
check "a second session skips the rows the first holds, takes the third" "evt_q3 1-evt_q3 invoice.paid 0" \
    "$(sql "SELECT concat_ws(' ', event_id, stream_id, type, failures) FROM paystream.ps_waiting_due(10, 60)")"
wait "$HOLDER"
check "the first took the two most overdue" "2" "$(sed -n 1p "$PS_STACK_DIR/holder.out")"
check "claimed rows are leased: none is due now" "" "$(sql "SELECT event_id FROM paystream.ps_waiting_due(10, 60)")"
check "the lease: next attempt a minute ahead" "3" \
    "$(sql "SELECT count(*) FROM paystream.waiting_events WHERE next_attempt_at BETWEEN now() + interval '55 s' AND now() + interval '61 s'")"
check "a real failure of a waiting event counts" "1 2" \
    "$(sql "SELECT paystream.ps_waiting_failed('evt_q1', 'boom', 100)") $(sql "SELECT paystream.ps_waiting_failed('evt_q1', 'boom', 100)")"
check "... recorded retrying, kept waiting, due in 0.1 s" "retrying boom|0 2 q1|t" \
    "$(row_of evt_q1)|$(waiting_of evt_q1)|$(sql "SELECT next_attempt_at < now() + interval '1 s' FROM paystream.waiting_events WHERE event_id = 'evt_q1'")"

# --------------------------------------------- 5. applied: no longer waiting --
sql "SELECT count(*) FROM paystream.ps_apply_batch(ARRAY[
       jsonb_populate_record(NULL::paystream.batch_event, '{\"rule\": \"record\", \"event_id\": \"evt_q2\",
         \"type\": \"invoice.paid\", \"stream_id\": \"1-evt_q2\", \"status\": \"applied\", \"note\": \"n\"}')])" >/dev/null
check "an event applied by ps_apply_batch leaves the waiting table in the same transaction" "applied n|evt_q1 evt_q3" \
    "$(sql "SELECT status || ' ' || note FROM paystream.webhook_events WHERE event_id = 'evt_q2'")|$(sql "SELECT string_agg(event_id, ' ' ORDER BY event_id) FROM paystream.waiting_events")"
check "the operator reads the waiting table; the worker may not" "t f" \
    "$(sql "SELECT has_table_privilege('paystream_operator', 'paystream.waiting_events', 'SELECT') || ' ' || has_table_privilege('paystream_worker', 'paystream.waiting_events', 'SELECT')" | sed 's/true/t/g; s/false/f/g')"
done_testing
