# e2e_lib.sh - helpers for the end-to-end tests (test_e2e_*.sh), on top of lib.sh.
#
# The stack (PostgreSQL + Redis) is already running (tests/harness/with-stack).
# These start paystream-ingest and paystream-worker processes, post events made
# by tests/events/stripe_events.py through ingest (signed, like Stripe), wait
# until the workers have drained the stream, and read balances and ledger rows.
# Every process started here is stopped on exit (e2e_cleanup, set as the trap).
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../harness/stack.sh
. "$PS_SOURCE_DIR/tests/harness/stack.sh"

EVENTS="$PS_SOURCE_DIR/tests/events/stripe_events.py"
PLANS="$PS_SOURCE_DIR/tests/events/plans.txt"
SECRET="whsec_e2e_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
STREAM=${PAYSTREAM_STREAM:-paystream:events}
GROUP=${PAYSTREAM_GROUP:-paystream}
E2E_DIR=$(mktemp -d "$PS_STACK_DIR/e2e.XXXXXX")
E2E_PIDS=()
E2E_AFTER_STOP=() # commands e2e_cleanup runs once our processes are stopped (extra servers)
INGEST_PID=
INGEST_URL=
export PAYSTREAM_STREAM=$STREAM PAYSTREAM_GROUP=$GROUP
# the sanitizers: fail loudly, and leaks are failures too
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rcli() { redis-cli -p "$PS_REDIS_PORT" "$@"; }

# plan_credits ID: credits of a plan or pack in the plans file
plan_credits() { awk -v id="$1" '($1 == "plan" || $1 == "pack") && $2 == id { print $4 }' "$PLANS"; }

e2e_log_tails() {
    local f
    for f in "$E2E_DIR"/*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of $(basename "$f")"
        tail -n 15 "$f"
    done
}

# Stop everything we started; print logs when the test failed; fail on
# sanitizer reports in any log.
e2e_cleanup() {
    local rc=$? pid
    for pid in "${E2E_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${E2E_PIDS[@]}"; do
        e2e_wait_exit "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${E2E_AFTER_STOP[@]}"; do
        $pid || true
    done
    if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$E2E_DIR"/*.log 2>/dev/null; then
        echo "not ok - sanitizer report in the logs above"
        grep -hE -A 30 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$E2E_DIR"/*.log | head -80
        rc=1
    fi
    [ "$rc" = 0 ] || e2e_log_tails
    exit "$rc"
}
trap e2e_cleanup EXIT

# e2e_wait_exit PID SECONDS: wait for a process of ours to end (0) or time out (1)
e2e_wait_exit() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    return 1
}

# e2e_forget PID: drop a process that has ended from the cleanup list
e2e_forget() {
    local keep=() p
    for p in "${E2E_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    E2E_PIDS=("${keep[@]}")
}

# e2e_setup: migrate, load the plans
e2e_setup() {
    "$CTL" migrate >"$E2E_DIR/migrate.log" 2>&1 || { cat "$E2E_DIR/migrate.log"; exit 1; }
    "$CTL" plans load "$PLANS" >"$E2E_DIR/plans.log" 2>&1 || { cat "$E2E_DIR/plans.log"; exit 1; }
}

# start_ingest: on a free loopback port, with a test secret (PAYSTREAM_TOLERANCE
# left at its default); sets INGEST_URL once /readyz answers 200. A port that
# looked free may be taken by the time ingest binds it: then another is tried.
start_ingest() {
    local port i try
    for try in 1 2 3 4 5; do
        port=$(stack_free_port)
        STRIPE_WEBHOOK_SECRET=$SECRET PAYSTREAM_LISTEN=127.0.0.1:$port \
            "$PS_BIN_DIR/paystream-ingest" >>"$E2E_DIR/ingest.log" 2>&1 &
        INGEST_PID=$!
        E2E_PIDS+=("$INGEST_PID")
        INGEST_URL="http://127.0.0.1:$port/webhooks/stripe"
        for ((i = 0; i < 100; i++)); do
            if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
                "http://127.0.0.1:$port/readyz" 2>/dev/null; then
                return 0
            fi
            kill -0 "$INGEST_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$INGEST_PID" 2>/dev/null || ! tail -n 1 "$E2E_DIR/ingest.log" | grep -q "Address already in use"; then
            break
        fi
        e2e_wait_exit "$INGEST_PID" 5 || true
        e2e_forget "$INGEST_PID"
    done
    echo "not ok - paystream-ingest not ready on port $port within 10 s"
    exit 1
}

# start_worker NAME [VAR=VALUE...]: a worker process with extra settings;
# its pid goes to the variable named NAME and to the cleanup list
start_worker() {
    local name=$1
    shift
    env "$@" "$PS_BIN_DIR/paystream-worker" >>"$E2E_DIR/worker-$name.log" 2>&1 &
    printf -v "$name" '%s' "$!"
    E2E_PIDS+=("$!")
}

# stop_worker PID: SIGTERM, and it must exit 0 within 30 s
stop_worker() {
    local rc=0
    kill -TERM "$1"
    if ! e2e_wait_exit "$1" 30; then
        check "worker $1 stops on SIGTERM within 30 s" "stopped" "still running"
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || rc=$?
    check "worker $1 exits 0 on SIGTERM" 0 "$rc"
    e2e_forget "$1"
}

# gen ARGS...: stripe_events.py gen
gen() { python3 "$EVENTS" gen --plans "$PLANS" "$@"; }

# post FILE [PHASES [OPTIONS...]]: sign and POST the events of FILE (only
# PHASES, if given and not ""; OPTIONS go to stripe_events.py post)
post() {
    local args=(post --url "$INGEST_URL" --secret "$SECRET") file=$1
    [ -n "${2:-}" ] && args+=(--phase "$2")
    shift $(($# < 2 ? $# : 2))
    python3 "$EVENTS" "${args[@]}" "$@" "$file"
}

# post_drain FILE PHASES SECONDS: post those phases (comma-separated) of FILE,
# add their events to the caller's $posted, and wait_drain that many
post_drain() {
    local n
    n=$(grep -cE "\"phase\": \"(${2//,/|})\"" "$1" || true)
    post "$1" "$2"
    posted=$((posted + n))
    wait_drain "$posted" "$3"
}

# distinct_ids FILE: how many distinct event ids FILE holds
distinct_ids() { python3 -c 'import json,sys; print(len({json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip()}))' "$1"; }

# post_cases CASES_PY USER_FORMAT ORDERS CASE...: each case of CASES_PY
# (subscription_cases.py, payment_cases.py) generated for a fresh user
# (printf USER_FORMAT CASE_INDEX ORDER), delivered in order and in ORDERS
# random orders with duplicates, alternating the API shapes (2025-03-31.basil,
# 2024-06-20), signed by the official stripe package; fills
# WANT[user]="label|expectation" (declare -A WANT first) and adds the distinct
# events posted to $posted.
post_cases() {
    local cases_py=$1 fmt=$2 orders=$3 c k user f shape
    local shapes=(2025-03-31.basil 2024-06-20) node_dir=$PS_SOURCE_DIR/tests/node
    shift 3
    local cases=("$@")
    for c in "${!cases[@]}"; do
        for ((k = 0; k <= orders; k++)); do
            # shellcheck disable=SC2059 # the format is the caller's
            user=$(printf "$fmt" "$c" "$k")
            shape=${shapes[$((k % 2))]}
            f=$E2E_DIR/${cases[$c]}-$k.jsonl
            python3 "$cases_py" gen "${cases[$c]}" --user "$user" --seed "$k" \
                --api-version "$shape" --expect "$f.want" >"$f.events"
            if [ "$k" = 0 ]; then
                cp "$f.events" "$f"
            else
                python3 "$EVENTS" shuffle --seed "${cases[$c]}-$k" --dups 0.4 "$f.events" >"$f"
            fi
            WANT[$user]="${cases[$c]} $k ($shape)|$(cat "$f.want")"
            node "$node_dir/post_events.js" "$INGEST_URL" "$SECRET" "$f" ||
                { check "${cases[$c]} order $k: every event posted" yes no; exit 1; }
            posted=$((posted + $(distinct_ids "$f.events")))
        done
    done
}

# group_field NAME: a field of our group in XINFO GROUPS ("" if no group)
group_field() {
    rcli XINFO GROUPS "$STREAM" 2>/dev/null |
        awk -v g="$GROUP" -v f="$1" 'prev == "name" { cur = $0 } cur == g && prev == f { print; exit } { prev = $0 }'
}

# drained: the group has delivered every entry and none is pending
drained() {
    local last delivered pending
    last=$(rcli XINFO STREAM "$STREAM" 2>/dev/null | awk 'prev == "last-generated-id" { print; exit } { prev = $0 }')
    delivered=$(group_field last-delivered-id)
    pending=$(group_field pending)
    [ -n "$last" ] && [ "$last" = "$delivered" ] && [ "$pending" = 0 ]
}

# done_events: events recorded as finished (applied, skipped or failed)
# (0 while the database cannot be reached, e.g. during a restart)
done_events() {
    sql "SELECT count(*) FROM paystream.webhook_events WHERE status IN ('applied', 'skipped', 'failed')" \
        2>/dev/null || echo 0
}

# wait_done N SECONDS: until at least N events are finished (1 on timeout)
wait_done() {
    local start=$SECONDS
    until [ "$(done_events)" -ge "$1" ]; do
        [ $((SECONDS - start)) -lt "$2" ] || return 1
        sleep 0.05
    done
}

# wait_drain N SECONDS: until at least N events are finished in the database
# and the stream has nothing left to deliver or acknowledge
wait_drain() {
    local want=$1 secs=$2 start=$SECONDS n
    while :; do
        n=$(done_events)
        if [ "$n" -ge "$want" ] && drained; then
            return 0
        fi
        if [ $((SECONDS - start)) -ge "$secs" ]; then
            check "drained within ${secs}s ($n of $want events done, pending $(group_field pending))" yes no
            return 1
        fi
        sleep 0.2
    done
}

# balance USER: "subscription overage total"
# http_code URL: the HTTP status of a GET of URL ("000" when nothing answered)
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true; }

# wait_code URL CODE SECONDS: until a GET of URL answers CODE (1 on timeout)
wait_code() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        [ "$(http_code "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

balance() { sql "SELECT subscription_credits || ' ' || overage_credits || ' ' || total FROM paystream.get_credit_balance('$1')"; }

# deduct USER VIDEO CREDITS: deduct_credits' result (t/f)
deduct() { sql "SELECT paystream.deduct_credits('$1', '$2', $3, 'e2e video')"; }

# ledger USER: the user's ledger rows as "kind bucket amount", in order
ledger() { sql "SELECT string_agg(kind || ' ' || bucket || ' ' || amount, ', ' ORDER BY id) FROM paystream.credit_transactions WHERE user_id = '$1'"; }

# expected_statuses FILE: "event_id status" lines, sorted, as the worker must
# record the events of FILE (handled types applied, the others skipped)
expected_statuses() {
    python3 - "$1" <<'EOF'
import json, sys
handled = {"checkout.session.completed", "checkout.session.async_payment_succeeded",
           "checkout.session.async_payment_failed", "customer.subscription.created",
           "customer.subscription.updated", "customer.subscription.deleted",
           "customer.subscription.paused", "customer.subscription.resumed", "invoice.paid",
           "invoice.payment_succeeded", "invoice.payment_failed", "charge.refunded"}
seen = {}
for line in open(sys.argv[1]):
    if line.strip():
        ev = json.loads(line)
        seen[ev["id"]] = "applied" if ev["type"] in handled else "skipped"
for i in sorted(seen):
    print(i, seen[i])
EOF
}

# recorded_statuses FILE: "event_id status" of FILE's events in the database
recorded_statuses() {
    python3 -c 'import json,sys; [print(json.loads(l)["id"]) for l in open(sys.argv[1]) if l.strip()]' "$1" |
        sort -u >"$E2E_DIR/ids.txt"
    "${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "CREATE TEMP TABLE ids (id text)" \
        -c "\\copy ids FROM '$E2E_DIR/ids.txt'" \
        -c "SELECT ids.id || ' ' || coalesce(w.status, 'missing') FROM ids
            LEFT JOIN paystream.webhook_events w ON w.event_id = ids.id ORDER BY 1"
}

# reconcile_clean: paystreamctl reconcile exits 0
reconcile_clean() {
    local out rc=0
    out=$("$CTL" reconcile 2>&1) || rc=$?
    check "paystreamctl reconcile is clean" 0 "$rc"
    [ "$rc" = 0 ] || echo "$out"
}
