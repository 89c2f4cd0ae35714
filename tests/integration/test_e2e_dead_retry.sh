# test_e2e_dead_retry.sh - dead letters sent back once their cause is fixed
# (SPEC 3, 6): events that name a price or pack no plan has are retried by a
# running worker, then dead-lettered with a reason naming what is missing;
# the operator loads the plan and `paystreamctl dead retry` applies them.
#
# 1. One dead letter: `dead list` names the missing pack; after `plans load`,
#    `dead retry ID` applies it (balance, event status, dead letter gone). The
#    same event delivered twice left two dead letters: retrying the second one
#    is a harmless skip, and retrying an id that is gone changes nothing.
# 2. `dead retry --all` over several dead letters, the first of which still
#    cannot be applied: the others are applied, that one stays dead with its
#    reason, and the exit status is 1 with an applied/skipped/failed summary.
# 3. `dead drop ID --reason`: the one that can never apply is recorded
#    dropped (reason, who) and leaves the dead letters; a stale dead letter of
#    an applied event is refused. `status` says what needs an operator.
. "$(dirname "$0")/e2e_lib.sh"

ATTEMPTS=3
BASIC=$(plan_credits basic)
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
PRO_PRICE=$(awk '$2 == "pro" { print $3 }' "$PLANS")
posted=0

# the plans the operator starts with: basic only (pro and pack50 missing)
"$CTL" migrate >"$E2E_DIR/migrate.log" 2>&1 || { cat "$E2E_DIR/migrate.log"; exit 1; }
grep -vE '^(plan|pack) +(pro|pack50) ' "$PLANS" >"$E2E_DIR/plans-basic.txt"
grep -vE '^plan +pro ' "$PLANS" >"$E2E_DIR/plans-pack.txt"
"$CTL" plans load "$E2E_DIR/plans-basic.txt" >/dev/null
check "only the basic plan is loaded" 1 \
    "$(sql "SELECT (SELECT count(*) FROM paystream.plans) + (SELECT count(*) FROM paystream.credit_packs)")"
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=$ATTEMPTS PAYSTREAM_CLAIM_IDLE_MS=2000

# send FILE PHASES: post those phases and wait until every event is finished
# (applied, skipped or dead) and nothing is pending
send() { post_drain "$1" "$2" 90; }

# run ARGS...: paystreamctl; sets out (stdout and stderr) and rc
run() {
    rc=0
    out=$("$CTL" "$@" 2>&1) || rc=$?
}

# has NAME TEXT PATTERN: TEXT matches the extended regex PATTERN
has() {
    if grep -Eq -- "$3" <<<"$2"; then check "$1" yes yes; else check "$1" "matches /$3/" "$2"; fi
}

# status on a fresh install: no stream and no group yet, then entries and still no group
rc=0
out=$(PAYSTREAM_STREAM=fresh:events "$CTL" status 2>&1) || rc=$?
check "status before any event: exit 0" 0 "$rc"
has "status before any event says ok" "$out" "^status: ok$"
has "status before any event: no group yet" "$out" "^group +[^ ]+: not created yet"
has "status before any event: an empty stream" "$out" "^stream +fresh:events \(0 entries\)$"
rcli XADD fresh:events '*' id evt_fresh >/dev/null
rc=0
out=$(PAYSTREAM_STREAM=fresh:events "$CTL" status 2>&1) || rc=$?
check "status with entries and no group: exit 1" 1 "$rc"
has "status with entries and no group says no worker ran" "$out" \
    "^NEEDS AN OPERATOR: events to apply and no worker seen$"

status_of() { sql "SELECT status || ' ' || attempts FROM paystream.webhook_events WHERE event_id = '$1'"; }
ledger_rows() { sql "SELECT count(*) FROM paystream.credit_transactions"; }
# dead_ids EVENT_ID: the dead letters' stream ids of that event, oldest first
dead_ids() {
    rcli --json XRANGE "$STREAM:dead" - + | python3 -c '
import json, sys
for sid, kv in json.load(sys.stdin):
    if dict(zip(kv[::2], kv[1::2])).get("id") == sys.argv[1]:
        print(sid)
' "$1"
}

# ---------------------------------------------------- one dead letter, by id --
U1=dead0000-0000-4000-8000-000000000001
F1=$E2E_DIR/u1.jsonl
gen lifecycle --seed dead-one --user "$U1" >"$F1"
EV_PACK=$(python3 -c 'import json,sys; print([json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["type"] == "checkout.session.completed" and json.loads(l)["phase"] == "pack"][0])' "$F1")
send "$F1" signup
check "signup applied on the basic plan" "$BASIC 0 $BASIC" "$(balance "$U1")"
# the pack checkout, delivered twice (Stripe may), on a pack no one loaded
send "$F1" pack
grep "$EV_PACK" "$F1" >"$E2E_DIR/u1-again.jsonl"
post "$E2E_DIR/u1-again.jsonl"
wait_drain "$posted" 90 # no new event id: waits for the stream to drain
mapfile -t DEAD1 < <(dead_ids "$EV_PACK")
check "the pack checkout, delivered twice, left two dead letters" 2 "${#DEAD1[@]}"
check "it was recorded failed after $ATTEMPTS attempts (twice)" "failed $((2 * ATTEMPTS))" "$(status_of "$EV_PACK")"
check "the failed pack changed no balance" "$BASIC 0 $BASIC" "$(balance "$U1")"

run dead list
check "dead list: exit 0" 0 "$rc"
has "dead list shows the dead letter, its event, whose it is and its age" "$out" \
    "^${DEAD1[0]}  $EV_PACK  checkout.session.completed  user $U1  dead [0-9]+s ago  attempts $ATTEMPTS$"
has "dead list: the reason names the missing pack" "$out" "unknown credit pack pack50"
has "dead list counts them" "$out" "^2 dead letters in $STREAM:dead$"
run status
check "status with dead letters: exit 1" 1 "$rc"
has "status says what needs an operator" "$out" "^NEEDS AN OPERATOR: 2 dead letter\(s\): paystreamctl dead list$"
has "status shows the dead letters" "$out" "^dead letters +2 in $STREAM:dead"
has "status shows the group" "$out" "^group +[^ ]+: lag 0, pending 0$"
has "status shows the worker" "$out" "^workers \(consumers\) +[1-9][0-9]* seen in the last 60s"

run dead retry "${DEAD1[0]}"
check "dead retry before the cause is fixed: exit 1" 1 "$rc"
has "dead retry before the fix says why it stays dead" "$out" "${DEAD1[0]} .* failed, stays dead: .*unknown credit pack pack50"
has "dead retry before the fix: summary" "$out" "^dead retry: 0 applied, 0 skipped, 1 failed$"
check "the dead letter is still there" 2 "$(rcli XLEN "$STREAM:dead")"
check "the failed retry is recorded as one more attempt" "failed $((2 * ATTEMPTS + 1))" "$(status_of "$EV_PACK")"

# the operator adds the pack, then sends the dead letter back
"$CTL" plans load "$E2E_DIR/plans-pack.txt" >/dev/null
xlen=$(rcli XLEN "$STREAM")
run dead retry "${DEAD1[0]}"
check "dead retry ID after plans load: exit 0" 0 "$rc"
has "dead retry ID reports it applied" "$out" "^${DEAD1[0]}  $EV_PACK  checkout.session.completed  applied$"
has "dead retry ID: summary" "$out" "^dead retry: 1 applied, 0 skipped, 0 failed$"
check "the pack's credits are granted to overage" "$BASIC $PACK $((BASIC + PACK))" "$(balance "$U1")"
check "the event is recorded applied" applied "$(sql "SELECT status FROM paystream.webhook_events WHERE event_id = '$EV_PACK'")"
check "that dead letter is gone, its twin is left" "${DEAD1[1]}" "$(dead_ids "$EV_PACK")"
check "dead retry applies in place: nothing is re-added to the stream" "$xlen" "$(rcli XLEN "$STREAM")"

# the twin is a stale dead letter of an event applied since: drop refuses it
run dead drop "${DEAD1[1]}" --reason "not wanted"
check "dead drop of an event applied already: exit 1" 1 "$rc"
has "dead drop of an event applied already says why" "$out" "is applied already: nothing to drop"
check "it is still applied, its dead letter still there" "applied ${DEAD1[1]}" \
    "$(sql "SELECT status FROM paystream.webhook_events WHERE event_id = '$EV_PACK'") $(dead_ids "$EV_PACK")"
rows=$(ledger_rows)
run dead retry "${DEAD1[1]}"
check "dead retry of the twin (event already applied): exit 0" 0 "$rc"
has "the twin is reported skipped" "$out" "^dead retry: 0 applied, 1 skipped, 0 failed$"
check "the twin is removed" 0 "$(rcli XLEN "$STREAM:dead")"
run dead retry "${DEAD1[0]}"
check "dead retry of an id already retried: exit 1" 1 "$rc"
has "dead retry of an id already retried names it" "$out" "no dead letter ${DEAD1[0]} in $STREAM:dead"
check "the repeated retries changed no balance" "$BASIC $PACK $((BASIC + PACK))" "$(balance "$U1")"
check "the repeated retries wrote no ledger row" "$rows" "$(ledger_rows)"
check "the pack was granted exactly once" 1 \
    "$(sql "SELECT count(*) FROM paystream.credit_transactions WHERE user_id = '$U1' AND kind = 'pack_grant'")"
reconcile_clean

# ------------------------------------- dead retry --all, one still failing --
P=$E2E_DIR/poison.jsonl
gen poison --seed dead-poison >"$P"
EV_NOSUCH=$(python3 -c 'import json,sys; print([json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["phase"] == "unknown_pack"][0])' "$P")
send "$P" unknown_pack # a pack nobody will ever load: dead first, so --all meets it first
U2=dead0000-0000-4000-8000-000000000002
F2=$E2E_DIR/u2.jsonl
gen lifecycle --seed dead-all --user "$U2" --api-version 2024-06-20 >"$F2"
send "$F2" signup
send "$F2" upgrade,renewal # on the pro plan, which is not loaded yet
n_pro=$(grep -cE '"phase": "(upgrade|renewal)"' "$F2")
check "the upgrade and renewal events are all dead, behind the unknown pack" $((n_pro + 1)) \
    "$(rcli XLEN "$STREAM:dead")"
run dead list
check "every pro event's reason names the missing price" "$n_pro" \
    "$(grep -c "unknown price $PRO_PRICE" <<<"$out" || true)"
check "U2 is still on the basic allowance" "$BASIC 0 $BASIC" "$(balance "$U2")"
nosuch_before=$(status_of "$EV_NOSUCH")
check "the unknown pack is recorded failed" "failed $ATTEMPTS" "$nosuch_before"

"$CTL" plans load "$PLANS" >/dev/null
run dead retry --all
check "dead retry --all with one still failing: exit 1" 1 "$rc"
has "dead retry --all reports the failure and its reason" "$out" \
    "  $EV_NOSUCH  checkout.session.completed  failed, stays dead: .*unknown credit pack pack_nosuch"
has "dead retry --all went on after the failure: summary" "$out" "^dead retry: $n_pro applied, 0 skipped, 1 failed$"
check "dead retry --all: one line per dead letter, then the summary" $((n_pro + 2)) "$(grep -c '' <<<"$out")"
check "the others are applied: upgrade topped up, renewal granted the pro allowance" "$PRO 0 $PRO" \
    "$(balance "$U2")"
check "U2 is on pro, active" "active pro $PRO" \
    "$(sql "SELECT status || ' ' || plan || ' ' || credits_total FROM paystream.subscriptions WHERE user_id = '$U2'")"
check "every upgrade and renewal event is applied" "$n_pro" \
    "$(sql "SELECT count(*) FROM paystream.webhook_events w WHERE status = 'applied' AND event_id IN
            ($(python3 -c 'import json,sys; print(",".join("'"'"'%s'"'"'" % json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["phase"] in ("upgrade", "renewal")))' "$F2"))")"
check "only the unknown pack is left in the dead letters" "$EV_NOSUCH" \
    "$(rcli --json XRANGE "$STREAM:dead" - + | python3 -c 'import json,sys; print(" ".join(dict(zip(kv[::2], kv[1::2]))["id"] for _, kv in json.load(sys.stdin)))')"
run dead list
has "dead list still gives its reason" "$out" "unknown credit pack pack_nosuch"
check "its failed retry is recorded as one more attempt" "failed $((ATTEMPTS + 1))" "$(status_of "$EV_NOSUCH")"
run dead retry --all
check "dead retry --all again: exit 1" 1 "$rc"
has "dead retry --all again: summary" "$out" "^dead retry: 0 applied, 0 skipped, 1 failed$"
check "the unknown pack is still the one dead letter" 1 "$(rcli XLEN "$STREAM:dead")"
check "nothing pending in the group" 0 "$(group_field pending)"
reconcile_clean

# ------------------------------------------------------------ dead drop --
# the pack nobody will ever load: dropped, by its event id
run dead drop "$EV_NOSUCH" --reason "a test pack sent to the live endpoint"
check "dead drop by event id: exit 0" 0 "$rc"
has "dead drop says it is recorded and removed" "$out" "^dead drop: [0-9]+-[0-9]+ removed from $STREAM:dead$"
check "recorded dropped, with the reason and who" "dropped|a test pack sent to the live endpoint|$(id -un) (database login" \
    "$(sql "SELECT status || '|' || note || '|' || split_part(dropped_by, ' ', 1) || ' ' || split_part(dropped_by, ' ', 2) || ' ' || split_part(dropped_by, ' ', 3) FROM paystream.webhook_events WHERE event_id = '$EV_NOSUCH'")"
check "no dead letter is left" 0 "$(rcli XLEN "$STREAM:dead")"
run dead drop "$EV_NOSUCH" --reason "again"
check "dead drop of a dead letter gone: exit 1" 1 "$rc"
has "dead drop of a dead letter gone names it" "$out" "no dead letter $EV_NOSUCH in $STREAM:dead"
run dead drop "$EV_NOSUCH"
check "dead drop without --reason: usage error" 2 "$rc"
run dead drop nope --reason x
check "dead drop of a bad id: usage error" 2 "$rc"
run status
check "status with nothing to do: exit 0" 0 "$rc"
has "status says ok" "$out" "^status: ok$"
has "status shows no dead letter" "$out" "^dead letters +0 in $STREAM:dead \(0 recorded failed\)$"
has "status shows the last event applied" "$out" "^last applied +20[0-9]{2}-"

run dead retry nope
check "dead retry of a bad id: usage error" 2 "$rc"
run dead retry
check "dead retry without an id: usage error" 2 "$rc"
stop_worker "$W1"
done_testing
