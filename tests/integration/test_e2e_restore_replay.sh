# test_e2e_restore_replay.sh - restore an older backup, then `paystreamctl
# replay` brings the ledger back to where it was (SPEC 3, 6).
#
# A realistic run: many users' lifecycles in both API shapes (every event kind
# the worker handles, plus unhandled ones), posted to a running ingest and
# applied by two running workers, with the app's deductions in between. While
# the workers are applying, the test notes a stream id N (every entry up to N
# is acknowledged, so committed), lets a few more events be applied, and takes
# a pg_dump (custom format). So events after N may be in the dump or not, and
# events in flight during the dump are either: that is what replay must make
# right. The run finishes; every user's state and ledger totals are recorded.
# Then the workers stop, the database is dropped and restored from the dump,
# and `replay --from N` must give the same balances, ledger totals and event
# statuses, with a clean reconcile and exactly the summary the restored
# database implies. Replaying an applied range, and the whole stream, must
# change nothing and report every entry as skipped.
# PS_E2E_RESTORE_USERS sets the number of users (12).
. "$(dirname "$0")/e2e_lib.sh"

PG_BIN=/usr/lib/postgresql/15/bin
USERS=${PS_E2E_RESTORE_USERS:-12}
DUMP=$E2E_DIR/paystream.dump

e2e_setup
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000

# add_kinds FILE: the lifecycles cover checkout (subscription and paid pack),
# subscription created/updated/deleted, invoice paid/payment_succeeded and
# charge.refunded; add the other handled kinds, made from the same users'
# events: an unpaid pack checkout then async_payment_succeeded (user 1), one
# then async_payment_failed (user 2), an invoice.payment_failed on the
# renewal invoice half an hour before it was paid (user 3). Sorted by time.
add_kinds() {
    python3 - "$1" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
users = list(dict.fromkeys(e["user"] for e in events if e["user"]))
n = 0

def derive(src, etype, created, change):
    global n
    n += 1
    body = json.loads(src["body"])
    body["id"] = "evt_1RestoreReplayExtra%04d" % n
    body["type"], body["created"] = etype, created
    change(body["data"]["object"])
    events.append(dict(src, id=body["id"], type=etype, created=created, body=json.dumps(body)))

def first(user, etype, phase):
    return next(e for e in events if e["user"] == user and e["type"] == etype and e["phase"] == phase)

def session(obj, k, status):
    obj["id"] = "cs_test_restoreReplayUnpaidSession%02d" % k
    obj["payment_intent"] = "pi_RestoreReplayAsync%02d" % k
    obj["payment_status"] = status

for k, outcome in ((0, "succeeded"), (1, "failed")):
    pack = first(users[k], "checkout.session.completed", "pack")
    t = pack["created"] + 3600
    derive(pack, "checkout.session.completed", t, lambda o, k=k: session(o, k, "unpaid"))
    derive(pack, "checkout.session.async_payment_" + outcome, t + 600,
           lambda o, k=k, s=outcome: session(o, k, "paid" if s == "succeeded" else "unpaid"))
paid = first(users[2], "invoice.paid", "renewal")
derive(paid, "invoice.payment_failed", paid["created"] - 1800,
       lambda o: o.update({"status": "open", "amount_paid": 0}, **({"paid": False} if "paid" in o else {})))
events.sort(key=lambda e: e["created"])
for e in events:
    print(json.dumps(e))
EOF
}

# watermark: the last stream entry that it and every entry before it are
# acknowledged (so committed): the one before the oldest pending entry, or
# the last delivered one when nothing is pending
watermark() {
    local oldest
    oldest=$(rcli XPENDING "$STREAM" "$GROUP" | awk 'NR == 2')
    if [ -n "$oldest" ]; then
        rcli XREVRANGE "$STREAM" "($oldest" - COUNT 1 | awk 'NR == 1'
    else
        group_field last-delivered-id
    fi
}

# state: per user, the subscription state, balances and ledger sums by bucket
# (the allowance of a canceled subscription depends on delivery order: left out)
state() {
    sql "SELECT s.user_id || ' ' || s.status || ' ' || coalesce(s.plan, '-') || ' '
                || s.credits_remaining || ' ' || s.overage_credits || ' '
                || CASE WHEN s.status = 'canceled' THEN '-' ELSE s.credits_total::text END || ' '
                || coalesce(l.sub, 0) || ' ' || coalesce(l.over, 0)
           FROM paystream.subscriptions s LEFT JOIN (
                SELECT user_id, sum(amount) FILTER (WHERE bucket = 'subscription') AS sub,
                       sum(amount) FILTER (WHERE bucket = 'overage') AS over
                  FROM paystream.credit_transactions GROUP BY user_id) l USING (user_id)
          ORDER BY 1"
}
statuses() { sql "SELECT event_id || ' ' || status FROM paystream.webhook_events ORDER BY 1"; }
# fingerprint: every ledger row and every webhook_events row, whole
fingerprint() {
    sql "SELECT (SELECT count(*) FROM paystream.credit_transactions) || ' ledger rows, '
                || (SELECT count(*) FROM paystream.webhook_events) || ' events, '
                || (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM paystream.credit_transactions t) || ' '
                || (SELECT md5(coalesce(string_agg(w::text, '|' ORDER BY event_id), '')) FROM paystream.webhook_events w) || ' '
                || (SELECT md5(coalesce(string_agg(s::text, '|' ORDER BY user_id), '')) FROM paystream.subscriptions s)"
}

# replay_summary ARGS...: run replay; its exit status and summary line
replay_summary() {
    local rc=0
    "$CTL" replay "$@" >"$E2E_DIR/replay.out" 2>&1 || rc=$?
    echo "$rc $(tail -n 1 "$E2E_DIR/replay.out")"
}

# expected_replay FROM [TO]: "applied skipped held" for a replay of FROM..TO in
# the database as it is now, given the statuses of the finished run (held:
# entries whose event the database already has, which a dry run skips)
expected_replay() {
    statuses >"$E2E_DIR/done-now.txt"
    rcli --json XRANGE "$STREAM" "$1" "${2:-+}" | python3 -c '
import json, sys
done = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] in ("applied", "skipped")}
final = dict(l.split() for l in open(sys.argv[2]))
applied = skipped = held = 0
for _, kv in json.load(sys.stdin):
    eid = dict(zip(kv[::2], kv[1::2]))["id"]
    if eid in done:
        skipped += 1
        held += 1
    else:
        done.add(eid)
        applied += final.get(eid) == "applied"
        skipped += final.get(eid) != "applied"
print(applied, skipped, held)
' "$E2E_DIR/done-now.txt" "$E2E_DIR/statuses-before.txt"
}

# ------------------------------------------------------------------ the run --
gen many --users "$USERS" --api-version mixed --seed restore-replay >"$E2E_DIR/many.jsonl"
add_kinds "$E2E_DIR/many.jsonl" >"$E2E_DIR/run.jsonl"
TOTAL=$(distinct_ids "$E2E_DIR/run.jsonl")
check "the run has every handled event kind" 10 \
    "$(python3 -c 'import json,sys; print(len({json.loads(l)["type"] for l in open(sys.argv[1])} & {"checkout.session.completed", "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed", "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "charge.refunded"}))' "$E2E_DIR/run.jsonl")"
FIRST=$((TOTAL / 4))
head -n "$FIRST" "$E2E_DIR/run.jsonl" >"$E2E_DIR/part1.jsonl"
tail -n +"$((FIRST + 1))" "$E2E_DIR/run.jsonl" >"$E2E_DIR/part2.jsonl"

post "$E2E_DIR/part1.jsonl"
wait_drain "$FIRST" 120
# the app spends credits before the backup: these deductions are in the dump
spent=0
# (spendable credits: a subscription still incomplete keeps its credits unspent, SPEC 4)
for u in $(sql "SELECT user_id FROM paystream.subscriptions WHERE paystream.check_credits(user_id, 10) ORDER BY user_id LIMIT 4"); do
    [ "$(deduct "$u" "$(printf '00000000-0000-4000-8000-%012d' "$spent")" 7)" = t ] && spent=$((spent + 1))
done
check "the app spent credits of 4 users before the backup" 4 "$spent"

# the rest arrives while the dump is taken
post "$E2E_DIR/part2.jsonl" "" --rate 30 &
POSTER=$!
E2E_PIDS+=("$POSTER")
start=$SECONDS
until [ "$(rcli XLEN "$STREAM")" -ge $((FIRST + 30)) ] || [ $((SECONDS - start)) -ge 60 ]; do sleep 0.05; done
NOTED=$(watermark)
done_at_note=$(done_events)
# a few more are applied before the dump starts, so the dump holds events after NOTED
until [ "$(done_events)" -ge $((done_at_note + 3)) ] || [ $((SECONDS - start)) -ge 60 ]; do sleep 0.02; done
"$PG_BIN/pg_dump" -Fc -f "$DUMP" "$PAYSTREAM_DATABASE_URL"
echo "# pg_dump taken with $(rcli XLEN "$STREAM") of $TOTAL events posted, $(done_events) applied"
rc=0
wait "$POSTER" || rc=$?
e2e_forget "$POSTER"
check "every event of the run posted (200)" 0 "$rc"
wait_drain "$TOTAL" 120
check "the run: nothing failed, nothing dead" "0 0" \
    "$(sql "SELECT count(*) FROM paystream.webhook_events WHERE status NOT IN ('applied', 'skipped')") $(rcli XLEN "$STREAM:dead")"
reconcile_clean
state >"$E2E_DIR/state-before.txt"
statuses >"$E2E_DIR/statuses-before.txt"
check "every event of the run recorded" "$TOTAL" "$(grep -c '' "$E2E_DIR/statuses-before.txt")"
check "every user has a subscription row" "$USERS" "$(grep -c '' "$E2E_DIR/state-before.txt")"

# ------------------------------------------------------------------ restore --
stop_worker "$W1"
stop_worker "$W2"
"${PSQL[@]}" "$PS_PG_ADMIN_URL" -c "DROP DATABASE paystream" -c "CREATE DATABASE paystream"
"$PG_BIN/pg_restore" --exit-on-error -d "$PAYSTREAM_DATABASE_URL" "$DUMP"
check "the restored database is older: it lacks events" yes \
    "$([ "$(sql "SELECT count(*) FROM paystream.webhook_events")" -lt "$TOTAL" ] && echo yes || echo no)"
check "the restored balances differ from the finished run's" yes \
    "$([ "$(state)" != "$(cat "$E2E_DIR/state-before.txt")" ] && echo yes || echo no)"
check "every entry up to the noted id $NOTED is in the dump" 0 \
    "$(rcli --json XRANGE "$STREAM" - "$NOTED" | python3 -c 'import json,sys; [print(dict(zip(kv[::2], kv[1::2]))["id"]) for _, kv in json.load(sys.stdin)]' |
        grep -cvxF -f <(sql "SELECT event_id FROM paystream.webhook_events WHERE status IN ('applied', 'skipped')") || true)"
read -r want_applied want_skipped held <<<"$(expected_replay "$NOTED")"
echo "# noted $NOTED; from it on: $held entries whose events the dump holds, $want_applied to apply"
check "the dump holds events after the noted id (applied after it was noted)" yes \
    "$([ "$held" -ge 4 ] && echo yes || echo "no: $held")"

check "the replayed range holds unhandled events too (skipped without being in the dump)" yes \
    "$([ "$want_skipped" -gt "$held" ] && echo yes || echo no)"
check "replay --dry-run: exit 0 and what it would do" \
    "0 replay (dry run): $((want_applied + want_skipped - held)) to apply, $held skipped, 0 failed" \
    "$(replay_summary --from "$NOTED" --dry-run)"
check "replay --dry-run changed nothing" 0 \
    "$(sql "SELECT count(*) FROM paystream.webhook_events WHERE status NOT IN ('applied', 'skipped')")"
check "replay --from the noted id: exit 0, summary" \
    "0 replay: $want_applied applied, $want_skipped skipped, 0 failed" "$(replay_summary --from "$NOTED")"
check "after replay: every user's state, balances and ledger totals as before the restore" \
    "$(cat "$E2E_DIR/state-before.txt")" "$(state)"
check "after replay: every event recorded with its status from before the restore" \
    "$(cat "$E2E_DIR/statuses-before.txt")" "$(statuses)"
reconcile_clean

# ------------------------------------------------- replays that change nothing --
before=$(fingerprint)
n=$(rcli --json XRANGE "$STREAM" - "$NOTED" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "replay of an applied range (up to the noted id): all skipped" "0 replay: 0 applied, $n skipped, 0 failed" \
    "$(replay_summary --from - --to "$NOTED")"
check "replay of an applied range changed nothing" "$before" "$(fingerprint)"
check "replay of the whole stream: all skipped" "0 replay: 0 applied, $(rcli XLEN "$STREAM") skipped, 0 failed" \
    "$(replay_summary --from 0)"
check "replay of the whole stream changed nothing" "$before" "$(fingerprint)"
check "and the balances are still those of the run" "$(cat "$E2E_DIR/state-before.txt")" "$(state)"
reconcile_clean
done_testing
