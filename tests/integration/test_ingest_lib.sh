# test_ingest_lib.sh - helpers for the paystream-ingest tests (test_ingest_*.sh).
#
# Sourced, it gives: ingest_start/ingest_stop (a paystream-ingest of our own on
# a free loopback port, its stderr in $ING_DIR), sign (a Stripe-Signature made
# with openssl, independently of common/stripe_sig.c), post, xlen and
# stream_body (the body field of a stream entry, byte for byte). Every
# process started here is stopped on exit, and a sanitizer report in any log
# fails the test. Run on its own (ctest does), it checks these helpers.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../harness/stack.sh
. "$PS_SOURCE_DIR/tests/harness/stack.sh"

ING_SECRET="whsec_ingest_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
ING_STREAM=paystream:events
ING_DIR=$(mktemp -d "$PS_STACK_DIR/ingest.XXXXXX")
ING_PIDS=()
ING_PID=
ING_PORT=
ING_URL=
ING_EXIT=
export ING_EXIT # set by ingest_stop, read by the test scripts
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rcli() { redis-cli -p "$PS_REDIS_PORT" "$@"; }

ingest_cleanup() {
    local rc=$? pid
    for pid in "${ING_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${ING_PIDS[@]}"; do ingest_wait_exit "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true; done
    if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$ING_DIR"/*.log 2>/dev/null; then
        echo "not ok - sanitizer report in the logs above"
        grep -hE -A 30 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$ING_DIR"/*.log | head -80
        rc=1
    fi
    if [ "$rc" != 0 ]; then
        for f in "$ING_DIR"/*.log; do
            [ -f "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -n 20 "$f"; }
        done
    fi
    exit "$rc"
}
trap ingest_cleanup EXIT

# ingest_wait_exit PID SECONDS: 0 once the process has ended, 1 on time out
ingest_wait_exit() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# ingest_start [VAR=value...]: start paystream-ingest with the test secret on a
# free loopback port (overridable by the arguments); sets ING_PID, ING_PORT,
# ING_URL (https when ING_SCHEME=https) and waits until /healthz answers.
# ING_NEXT_PORT=P makes it listen on P (once); ING_ENV_SECRET=0 leaves
# STRIPE_WEBHOOK_SECRET unset. The log is $ING_DIR/ingest-N.log.
ingest_start() {
    local i log
    ING_PORT=${ING_NEXT_PORT:-$(stack_free_port)}
    ING_NEXT_PORT=
    ING_URL="${ING_SCHEME:-http}://127.0.0.1:$ING_PORT"
    log="$ING_DIR/ingest-${#ING_PIDS[@]}.log"
    local secret=(STRIPE_WEBHOOK_SECRET="$ING_SECRET")
    [ "${ING_ENV_SECRET:-1}" = 0 ] && secret=(-u STRIPE_WEBHOOK_SECRET)
    env "${secret[@]}" PAYSTREAM_LISTEN="127.0.0.1:$ING_PORT" \
        PAYSTREAM_STREAM="$ING_STREAM" PAYSTREAM_LOG=debug "$@" \
        "$PS_BIN_DIR/paystream-ingest" 2>"$log" &
    ING_PID=$!
    ING_PIDS+=("$ING_PID")
    for ((i = 0; i < 100; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -k "$ING_URL/healthz")" = 200 ] && return 0
        kill -0 "$ING_PID" 2>/dev/null || { cat "$log"; echo "paystream-ingest did not start"; exit 1; }
        sleep 0.1
    done
    echo "paystream-ingest did not answer /healthz"
    exit 1
}

# ingest_wait_ready: until /readyz says 200 (Redis connected), at most 10 s
ingest_wait_ready() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$ING_URL/readyz")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# ingest_stop [PID]: SIGTERM and wait; the exit status is left in ING_EXIT
# ("timeout" if it did not end). Not in a $(subshell): wait needs our child.
ingest_stop() {
    local pid=${1:-$ING_PID}
    ING_EXIT=0
    kill -TERM "$pid"
    ingest_wait_exit "$pid" 30 || { ING_EXIT=timeout; return; }
    wait "$pid" || ING_EXIT=$?
}

# sign SECRET FILE [T]: a Stripe-Signature header value for the file's bytes
sign() {
    local t=${3:-$(date +%s)} mac
    mac=$({ printf '%s.' "$t"; cat "$2"; } | openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1)
    echo "t=$t,v1=$mac"
}

# post FILE [HEADER]: POST the file's bytes with that Stripe-Signature (none
# when HEADER is empty); prints "STATUS BODY"
post() {
    local out="$ING_DIR/reply.$$" code
    local args=(-s -k -o "$out" -w '%{http_code}' --data-binary "@$1" -H 'Content-Type: application/json')
    [ -n "${2:-}" ] && args+=(-H "Stripe-Signature: $2")
    code=$(curl "${args[@]}" "$ING_URL/webhooks/stripe") || true
    echo "$code $(cat "$out" 2>/dev/null)"
    rm -f "$out"
}

# post_signed FILE: sign with the test secret and post
post_signed() { post "$1" "$(sign "$ING_SECRET" "$1")"; }

# post_status FILE [HEADER]: only the status code
post_status() { local r; r=$(post "$@"); echo "${r%% *}"; }

xlen() { rcli XLEN "$ING_STREAM"; }

# stream_body EVT_ID > FILE: the body field of the entry for that event id,
# exactly as stored (redis-cli --raw adds one newline, which is removed)
stream_body() {
    local lua="for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
        local f = e[2]; local m = {}
        for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
        if m['id'] == ARGV[1] then return m['body'] end
      end
      return false"
    rcli --raw EVAL "$lua" 1 "$ING_STREAM" "$1" | head -c -1
}

# stream_field EVT_ID FIELD: one field of the entry for that event id
stream_field() {
    local lua="for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
        local f = e[2]; local m = {}
        for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
        if m['id'] == ARGV[1] then return m[ARGV[2]] end
      end
      return false"
    rcli --raw EVAL "$lua" 1 "$ING_STREAM" "$1" "$2"
}

# event_file ID [TYPE]: a small event body in a new file; prints its path
event_file() {
    local f="$ING_DIR/$1.json"
    printf '{\n  "id": "%s",\n  "object": "event",\n  "api_version": "2025-03-31.basil",\n  "created": %s,\n  "data": {"object": {"id": "cs_test_%s", "object": "checkout.session", "name": "Zoë ✓"}},\n  "livemode": false,\n  "type": "%s"\n}\n' \
        "$1" "$(date +%s)" "$1" "${2:-checkout.session.completed}" >"$f"
    echo "$f"
}

# Run on its own: the helpers agree with paystreamctl verify-signature, and
# stream_body gives back exactly what was stored.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    f=$(event_file evt_lib_selftest)
    check "sign() verifies with paystreamctl" 0 \
        "$("$CTL" verify-signature --header "$(sign "$ING_SECRET" "$f")" --secret "$ING_SECRET" <"$f" >/dev/null 2>&1; echo $?)"
    check "sign() with another secret does not" 1 \
        "$("$CTL" verify-signature --header "$(sign whsec_other "$f")" --secret "$ING_SECRET" <"$f" >/dev/null 2>&1; echo $?)"
    printf 'a\nb\r\n\001 \xff end\n\n' >"$ING_DIR/raw"
    rcli XADD "$ING_STREAM" '*' id evt_raw body "$(cat "$ING_DIR/raw"; echo x)" >/dev/null
    stream_body evt_raw >"$ING_DIR/raw.back"
    printf 'x' >>"$ING_DIR/raw"
    check "stream_body is byte for byte" same "$(cmp -s "$ING_DIR/raw" "$ING_DIR/raw.back" && echo same || echo differ)"
    done_testing
fi
