# test_ctl_backfill.sh - `paystreamctl backfill` closes the gaps webhooks left
# (SPEC 6), through a real ingest, real workers, Redis and PostgreSQL; only
# Stripe's Events API is faked (support/fake_stripe_events.py).
#
# Two sets of users live the same lives (stripe_events.py gen many, starting
# 38 days ago): the control set's events all come by webhook; the gap set's
# events older than Stripe's 30 days come by webhook, and of the newer ones only
# the refunds: the rest (upgrades, renewals, cancellations) only Stripe's API
# lists. The fake lists both sets, more than one page of 100 in the window.
# After `backfill --since 30d` and the workers, every gap user's balance and
# ledger equal a control user's, each event recorded once, each applied once.
# Then: a second run enqueues nothing, --dry-run enqueues nothing, --until is
# passed as created[lte], a 429 is waited out, Stripe-Should-Retry: false and a
# wrong key stop it (exit 1, the key never shown, not even at debug level),
# --since 31d and a missing STRIPE_API_KEY are refused.
. "$(dirname "$0")/e2e_lib.sh"

FAKE="$PS_SOURCE_DIR/tests/integration/support/fake_stripe_events.py"
KEY="rk_test_bf$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
DAY=86400
NOW=$(date +%s)
SINCE=$((NOW - 30 * DAY)) # no event lies within days of it (see the lives below)
USERS=20
FAKE_PID=
FAKE_MORE=() # more event files the fake lists
posted=0

e2e_setup
# backfill runs as an operator, as deployed (it reads webhook_events), not as a superuser
sql "CREATE ROLE backfill_login LOGIN IN ROLE paystream_operator" >/dev/null
OPERATOR_URL=${PAYSTREAM_DATABASE_URL/postgres@/backfill_login@}
start_ingest
start_worker W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000

# start_fake ARGS...: (re)start the fake API with these options; sets STRIPE_API_BASE
start_fake() {
    if [ -n "$FAKE_PID" ]; then
        kill -TERM "$FAKE_PID"
        e2e_wait_exit "$FAKE_PID" 10 || kill -KILL "$FAKE_PID"
        e2e_forget "$FAKE_PID"
    fi
    rm -f "$E2E_DIR/fake.port"
    : >"$E2E_DIR/fake-requests.jsonl"
    python3 "$FAKE" --key "$KEY" --port-file "$E2E_DIR/fake.port" --log "$E2E_DIR/fake-requests.jsonl" \
        "$@" "$GAP" "$CTL_EVENTS" "${FAKE_MORE[@]}" >>"$E2E_DIR/fake.log" 2>&1 &
    FAKE_PID=$!
    E2E_PIDS+=("$FAKE_PID")
    for _ in $(seq 100); do [ -s "$E2E_DIR/fake.port" ] && break; sleep 0.1; done
    STRIPE_API_BASE="http://127.0.0.1:$(cat "$E2E_DIR/fake.port")"
    export STRIPE_API_BASE
}

# run ARGS...: paystreamctl as the operator, with the key; out (stdout), err (stderr), rc
run() {
    rc=0
    STRIPE_API_KEY=$KEY PAYSTREAM_DATABASE_URL=$OPERATOR_URL "$CTL" "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || rc=$?
    out=$(cat "$E2E_DIR/out")
    err=$(cat "$E2E_DIR/err")
}

has() {
    if grep -Eq -- "$3" <<<"$2"; then check "$1" yes yes; else check "$1" "matches /$3/" "$2"; fi
}

# pick FILE EXPR: the lines of FILE whose event e makes the Python EXPR true
pick() {
    python3 -c 'import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if eval(sys.argv[2]): sys.stdout.write(l)' "$1" "$2"
}

# requests: the fake's request log as "status path query" lines
requests() { python3 -c 'import json, sys; [print(r["status"], r["method"], r["path"], r["query"]) for r in map(json.loads, open(sys.argv[1]))]' "$E2E_DIR/fake-requests.jsonl"; }

# balances FILE: each user of FILE's balance and subscription status and plan,
# sorted: what the README promises for any order. The ledger rows may differ (an
# upgrade applied after its period's renewal changes nothing), and so may a
# cancelled subscription's recorded allowance (credits_total)
balances() {
    local u
    for u in $(python3 -c 'import json, sys; print("\n".join(sorted({json.loads(l)["user"] for l in open(sys.argv[1])})))' "$1"); do
        echo "$(balance "$u") | $(sql "SELECT status || ' ' || plan FROM paystream.subscriptions WHERE user_id = '$u'")"
    done | sort
}

# ------------------------------------------------------------ the two sets --
GAP=$E2E_DIR/gap.jsonl
CTL_EVENTS=$E2E_DIR/control.jsonl
gen many --seed backfill-gap --users "$USERS" --spread-days 1 --t0 $((NOW - 38 * DAY)) >"$GAP"
gen many --seed backfill-control --users "$USERS" --spread-days 1 --t0 $((NOW - 38 * DAY)) >"$CTL_EVENTS"
# by webhook: the gap set's events Stripe no longer lists, and its refunds
pick "$GAP" "e['created'] < $SINCE or e['phase'] == 'refund'" >"$E2E_DIR/gap-webhook.jsonl"
IN_WINDOW=$(cat "$GAP" "$CTL_EVENTS" | python3 -c "import json, sys; print(len({e['id'] for e in map(json.loads, sys.stdin) if e['created'] >= $SINCE}))")
KNOWN=$(($(pick "$CTL_EVENTS" "e['created'] >= $SINCE" | wc -l) + $(pick "$GAP" "e['created'] >= $SINCE and e['phase'] == 'refund'" | wc -l)))
MISSING=$((IN_WINDOW - KNOWN))
check "the window holds more than one page of events ($IN_WINDOW)" yes "$([ "$IN_WINDOW" -gt 100 ] && echo yes)"
check "no event lies within a day of the window's start" 0 \
    "$(cat "$GAP" "$CTL_EVENTS" | python3 -c "import json, sys; print(sum(abs(e['created'] - $SINCE) < $DAY for e in map(json.loads, sys.stdin)))")"

post "$CTL_EVENTS"
post "$E2E_DIR/gap-webhook.jsonl"
posted=$(($(distinct_ids "$CTL_EVENTS") + $(distinct_ids "$E2E_DIR/gap-webhook.jsonl")))
wait_drain "$posted" 120
start_fake

# ---------------------------------------------------------------- dry run --
xlen=$(rcli XLEN "$STREAM")
run backfill --since 30d --dry-run
check "dry run: exit 0" 0 "$rc"
check "dry run: the summary (nothing enqueued)" "$IN_WINDOW listed, 0 enqueued, $KNOWN already known" "$(tail -n 1 <<<"$out")"
check "dry run: one line per event it would enqueue" "$MISSING" "$(grep -c '^would enqueue evt_' <<<"$out" || true)"
check "dry run: the stream is untouched" "$xlen" "$(rcli XLEN "$STREAM")"
check "dry run: no progress line off a terminal" "" "$err"

# --------------------------------------------------------------- backfill --
: >"$E2E_DIR/fake-requests.jsonl"
run backfill --since 30d
check "backfill: exit 0" 0 "$rc"
echo "# paystreamctl backfill --since 30d: $out"
check "backfill: one line, the summary" "$IN_WINDOW listed, $MISSING enqueued, $KNOWN already known" "$out"
check "backfill: the missing events are appended" $((xlen + MISSING)) "$(rcli XLEN "$STREAM")"
requests >"$E2E_DIR/requests.txt"
pages=$(((IN_WINDOW + 99) / 100))
check "backfill: one request a page, only GET /v1/events, all answered 200" \
    "$pages" "$(grep -c "^200 GET /v1/events limit=100&created\[gte\]=" "$E2E_DIR/requests.txt")"
check "backfill: no other request" "$pages" "$(grep -c '' "$E2E_DIR/requests.txt")"
gte=$(sed -n '1s/.*created\[gte\]=\([0-9]*\).*/\1/p' "$E2E_DIR/requests.txt")
check "backfill: created[gte] is 30 days back from now" yes "$([ $((gte - SINCE)) -ge 0 ] && [ $((gte - SINCE)) -lt 120 ] && echo yes)"
first_page_last=$(curl -s -H "Authorization: Bearer $KEY" "$STRIPE_API_BASE/v1/events?limit=100&created%5Bgte%5D=$gte" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][-1]["id"])')
has "backfill: page 2 starts after page 1's last event" "$(sed -n 2p "$E2E_DIR/requests.txt")" \
    "created\[gte\]=$gte&starting_after=$first_page_last$"
check "backfill: no created[lte] without --until" 0 "$(grep -c 'created\[lte\]' "$E2E_DIR/requests.txt" || true)"
# the entries look like ingest's, with where they came from
rcli --json XREVRANGE "$STREAM" + - COUNT "$MISSING" >"$E2E_DIR/tail.json"
check "backfill entries: id, type, body, received, source backfill" "$MISSING" \
    "$(python3 -c 'import json, sys
n = 0
for sid, kv in json.load(open(sys.argv[1])):
    f = dict(zip(kv[::2], kv[1::2]))
    body = json.loads(f["body"])
    n += (kv[::2] == ["id", "type", "body", "received", "source"] and f["source"] == "backfill"
          and body["id"] == f["id"] and body["type"] == f["type"] and int(f["received"]) > 0)
print(n)' "$E2E_DIR/tail.json")"
wait_drain $((posted + MISSING)) 120
EV_API=$(python3 -c 'import json, sys; print([e["id"] for e in map(json.loads, open(sys.argv[1])) if e["phase"] == "cancel"][0])' "$GAP")
run events show "$EV_API"
has "events show: a backfilled event's entry says where it came from" "$out" "^  source +backfill$"
has "events show: and it was applied" "$out" "applied"

check "every gap user's balance and subscription equal a control user's" "$(balances "$CTL_EVENTS")" "$(balances "$GAP")"
PRO=$(plan_credits pro)
PACK=$(plan_credits pack50)
LEFT=$((PACK - PACK * 500 / 1000)) # half of the pack's 1000 cents refunded
CANCELLED=$(((USERS + 2) / 3))     # stripe_events.py: every third user cancels
check "the users ended as their lives say: cancelled, or on pro; half the pack refunded" \
    "$CANCELLED 0 $LEFT $LEFT, $((USERS - CANCELLED)) $PRO $LEFT $((PRO + LEFT))" \
    "$(balances "$GAP" | cut -d'|' -f1 | sort | uniq -c | awk '{print $1, $2, $3, $4}' | paste -sd, | sed 's/,/, /g')"
cat "$GAP" "$CTL_EVENTS" >"$E2E_DIR/all.jsonl"
check "every event recorded once, with the right status" "$(expected_statuses "$E2E_DIR/all.jsonl")" \
    "$(recorded_statuses "$E2E_DIR/all.jsonl")"
check "each event applied once: no event made the same ledger row twice" 0 \
    "$(sql "SELECT count(*) FROM (SELECT 1 FROM paystream.credit_transactions WHERE event_id IS NOT NULL GROUP BY event_id, kind, bucket HAVING count(*) > 1) d")"
check "nothing dead-lettered" 0 "$(rcli XLEN "$STREAM:dead")"
reconcile_clean

# ------------------------------------------------------- a second run: none --
xlen=$(rcli XLEN "$STREAM")
run backfill --since 30d
check "second backfill: exit 0" 0 "$rc"
check "second backfill: everything already known" "$IN_WINDOW listed, 0 enqueued, $IN_WINDOW already known" "$out"
check "second backfill: the stream is untouched" "$xlen" "$(rcli XLEN "$STREAM")"

# an event in the stream that no worker has applied yet is known too: with the
# worker stopped, a new user's signup comes by webhook; the fake lists it and
# the pack bought since, which only the API has
stop_worker "$W1"
X=$E2E_DIR/late.jsonl
UX=ba7e0000-0000-4000-8000-000000000001
gen lifecycle --seed backfill-late --user "$UX" --t0 $((NOW - 5 * DAY)) | pick /dev/stdin "e['phase'] in ('signup', 'pack')" >"$X"
n_signup=$(grep -c '"phase": "signup"' "$X")
n_pack=$(grep -c '"phase": "pack"' "$X")
post "$X" signup
posted=$((posted + MISSING + n_signup))
FAKE_MORE=("$X")
start_fake
IN_WINDOW=$((IN_WINDOW + n_signup + n_pack))
run backfill --since 30d
check "with the worker stopped: entries not yet applied are known" \
    "$IN_WINDOW listed, $n_pack enqueued, $((IN_WINDOW - n_pack)) already known" "$out"
start_worker W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_CLAIM_IDLE_MS=2000
wait_drain $((posted + n_pack)) 60
BASIC=$(plan_credits basic)
check "the late user's signup and pack applied once each" "$BASIC $PACK $((BASIC + PACK))" "$(balance "$UX")"
check "the late user's events recorded once, with the right status" "$(expected_statuses "$X")" "$(recorded_statuses "$X")"

# --until: unix times go unchanged to created[gte] and created[lte]
S2=$((SINCE + 3600)) # SINCE itself is more than 30 days ago by now: refused
run backfill --since "$S2" --until $((NOW - 7 * DAY)) --dry-run
check "--until: exit 0" 0 "$rc"
IN_UNTIL=$(cat "$GAP" "$CTL_EVENTS" | python3 -c "import json, sys; print(len({e['id'] for e in map(json.loads, sys.stdin) if $S2 <= e['created'] <= $((NOW - 7 * DAY))}))")
check "--until: only the events created up to then are listed, all known" \
    "$IN_UNTIL listed, 0 enqueued, $IN_UNTIL already known" "$(tail -n 1 <<<"$out")"
has "--until: unix times are passed unchanged as created[gte] and created[lte]" \
    "$(tail -n 1 "$E2E_DIR/fake-requests.jsonl")" "created\\[gte\\]=$S2&created\\[lte\\]=$((NOW - 7 * DAY))"

# ------------------------------------------------------------ 429, then 200 --
start_fake --fail 1 --retry-after 1
t0=$(date +%s%N)
run backfill --since 30d
t1=$(date +%s%N)
check "after a 429: exit 0" 0 "$rc"
check "after a 429: the same summary" "$IN_WINDOW listed, 0 enqueued, $IN_WINDOW already known" "$out"
has "after a 429: it was answered 429, then asked again" "$(requests | sed -n '1,2p' | cut -d' ' -f1 | tr '\n' ' ')" "^429 200 $"
check "after a 429: Retry-After: 1 was honoured" yes "$([ $(((t1 - t0) / 1000000)) -ge 1000 ] && echo yes)"

# ------------------------------------------- 503 with Stripe-Should-Retry: false --
start_fake --fail 1 --fail-status 503 --should-retry false
run backfill --since 30d
check "Stripe-Should-Retry: false: exit 1" 1 "$rc"
has "Stripe-Should-Retry: false: says so" "$err" "503.*Stripe-Should-Retry: false"
check "Stripe-Should-Retry: false: not retried" 1 "$(requests | grep -c '')"
stop_worker "$W2"

# ----------------------------------------------------------------- wrong key --
start_fake
WRONG="rk_test_WRONG$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
rc=0
STRIPE_API_KEY=$WRONG PAYSTREAM_LOG=debug "$CTL" backfill --since 1h >"$E2E_DIR/out" 2>"$E2E_DIR/err" || rc=$?
check "wrong key: exit 1" 1 "$rc"
has "wrong key: names the 401 and the key" "$(cat "$E2E_DIR/err")" "401: STRIPE_API_KEY is wrong, or the key lacks read access to events"
check "wrong key: the key (or its tail) is never shown, even at debug level" 0 \
    "$(cat "$E2E_DIR/out" "$E2E_DIR/err" | grep -c -e "$WRONG" -e "${WRONG: -4}" || true)"
check "--show-config hides the key" 0 "$(STRIPE_API_KEY=$WRONG "$CTL" --show-config | grep -c "$WRONG" || true)"
check "--help never shows the key" 0 "$(STRIPE_API_KEY=$WRONG "$CTL" --help | grep -c "$WRONG" || true)"
has "--show-config shows the base" "$(STRIPE_API_KEY=$WRONG "$CTL" --show-config)" "^STRIPE_API_KEY=\(set, hidden\)$"

# -------------------------------------- TLS: a certificate nobody signed --
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$E2E_DIR/tls.key" -out "$E2E_DIR/tls.crt" >/dev/null 2>&1
start_fake --tls-cert "$E2E_DIR/tls.crt" --tls-key "$E2E_DIR/tls.key"
STRIPE_API_BASE=${STRIPE_API_BASE/http:/https:}
t0=$SECONDS
run backfill --since 1h
check "a self-signed certificate: exit 1" 1 "$rc"
has "a self-signed certificate: TLS verification refuses it" "$err" "SSL certificate|certificate verify"
check "a self-signed certificate: not retried, no request reached the fake" "0 yes" \
    "$(requests | grep -c '' || true) $([ $((SECONDS - t0)) -lt 5 ] && echo yes)"
start_fake

# -------------------------------------------------------------- usage errors --
run backfill --since 31d
check "--since 31d: exit 2" 2 "$rc"
has "--since 31d: says Stripe keeps 30 days" "$err" "beyond the 30 days of events Stripe keeps"
run backfill --since $((NOW - 31 * DAY))
check "--since a unix time 31 days back: exit 2" 2 "$rc"
run backfill
check "no --since: exit 2" 2 "$rc"
rc=0
env -u STRIPE_API_KEY "$CTL" backfill --since 1h >/dev/null 2>"$E2E_DIR/err" || rc=$?
check "missing STRIPE_API_KEY: exit 2" 2 "$rc"
has "missing STRIPE_API_KEY: names the setting" "$(cat "$E2E_DIR/err")" "STRIPE_API_KEY is not set"
check "the fake saw only GET /v1/events" 0 "$(requests | grep -vc ' GET /v1/events ' || true)"
done_testing
