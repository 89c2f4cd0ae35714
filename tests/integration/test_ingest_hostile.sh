# test_ingest_hostile.sh - paystream-ingest under hostile input (SPEC 2).
#
# Malformed and oversized request lines, headers and bodies; invalid UTF-8 and
# invalid JSON carrying a valid signature; wrong secrets, old, future and absurd
# timestamps; header and log injection; request framing tricks; slow clients
# (headers and body trickled byte by byte); thousands of idle connections over
# the cap. Each gets its status (and its JSON reason where the ingest gives
# one), nothing of it reaches the stream, the process stays up, and its RSS
# after more rounds of abuse stays within RSS_BOUND_KIB of what it was after the
# first. Loopback only; every client is bounded in time (hostile_client.py).
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

HC="$(dirname "$0")/hostile_client.py"
TIMEOUT=3
CAP=400
RSS_BOUND_KIB=${PS_HOSTILE_RSS_BOUND_KIB:-8192}
export HOSTILE_SECRET=$ING_SECRET
# a small quarantine under AddressSanitizer, so that RSS shows what is kept, not
# what ASan holds back from reuse (no effect on a build without it)
ingest_start PAYSTREAM_TIMEOUT=$TIMEOUT PAYSTREAM_MAX_CONNECTIONS=$CAP PAYSTREAM_LOG=info \
    ASAN_OPTIONS="${ASAN_OPTIONS}:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
ingest_wait_ready || check "ingest ready" yes no
n=$(xlen)

raw() { python3 "$HC" raw "$ING_PORT" "${1:-10}"; }
first() { echo "${1%% *}"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$ING_PID/status"; }
fds() { find "/proc/$ING_PID/fd" -mindepth 1 | wc -l; }
alive() { kill -0 "$ING_PID" 2>/dev/null && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$ING_URL/healthz")" = 200 ]; }
ck() { check "round $R: $1" "$2" "$3"; }
now() { date +%s; }

# unchanged NAME: nothing new in the stream, and the process still serves
unchanged() {
    ck "$1: nothing reaches the stream" "$n" "$(xlen)"
    ck "$1: ingest still up" yes "$(alive && echo yes || echo no)"
}

# enqueued NAME: exactly one more entry in the stream
enqueued() {
    n=$((n + 1))
    ck "$1: in the stream" "$n" "$(xlen)"
}

# request FILE [SIGNATURE] [EXTRA HEADER LINES]: a raw POST of FILE's bytes,
# signed now with the test secret unless SIGNATURE is given ("" for none)
request() {
    local sig=${2-$(sign "$ING_SECRET" "$1")}
    printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
    [ -n "$sig" ] && printf 'Stripe-Signature: %s\r\n' "$sig"
    printf 'Content-Length: %d\r\n%s\r\n' "$(stat -c %s "$1")" "${3:-}"
    cat "$1"
}

# hostile NAME EXPECTED_STATUS: stdin sent as it is; only the status compared
hostile() {
    ck "$1" "$2" "$(first "$(raw 20)")"
    unchanged "$1"
}

# signed NAME EXPECTED BYTES: BYTES (printf format) posted with a valid signature
signed() {
    # shellcheck disable=SC2059
    printf "$3" >"$ING_DIR/signed.json"
    ck "$1" "$2" "$(request "$ING_DIR/signed.json" | raw)"
    unchanged "$1"
}

# ------------------------------------------------ request line and headers --
section_headers() {
    printf 'GARBAGE\r\n\r\n' | hostile "request line garbage: 400" 400
    printf 'POST /webhooks/stripe HTTP/9.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' |
        hostile "unknown HTTP version: 400" 400
    printf 'POST /webhooks/stripe HTTP/1.1\r\nHost x\r\n\r\n' | hostile "header without a colon: 400" 400
    printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX: a\0b\r\nContent-Length: 2\r\n\r\n{}' |
        hostile "NUL in a header: 400" 400
    {
        printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n'
        for i in $(seq 1 1200); do printf 'X-Filler-%d: vvvvvvvvvvvv\r\n' "$i"; done
        printf 'Content-Length: 2\r\n\r\n{}'
    } | hostile "1,200 headers, over the 16 KiB cap: 400" 400
    request "$EV" "t=$(now),v1=$(head -c 17000 /dev/zero | tr '\0' a)" |
        hostile "a 17 KB Stripe-Signature: 400" 400
    {
        printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Long: '
        head -c 1048576 /dev/zero | tr '\0' L
        printf '\r\n\r\n'
    } | hostile "a 1 MiB header line: 400" 400
    local t mac wrong
    t=$(now)
    mac=$(sign "$ING_SECRET" "$EV" "$t" | sed 's/.*v1=//')
    wrong=$(printf ',v1=%064d' $(seq 1 64) | cut -c2-)
    ck "64 wrong v1 and the right one (65 items): unparseable_header" '400 {"error":"unparseable_header"}' \
        "$(request "$EV" "t=$t,$wrong,v1=$mac" | raw)"
    unchanged "65 signature items"
    wrong=$(printf ',v1=%064d' $(seq 1 62) | cut -c2-)
    ck "62 wrong v1 and the right one: 200 (any v1 may match)" '200 {"received":true}' \
        "$(request "$EV" "t=$t,$wrong,v1=$mac" | raw)"
    enqueued "62 wrong v1 and the right one"
}

# ------------------------------------------------------------ body framing --
section_framing() {
    local cl t0 elapsed out len
    for cl in -5 abc 1x 0x10 "2, 3"; do
        printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n{}' "$cl" |
            hostile "Content-Length '$cl': 400" 400
    done
    t0=$(date +%s%3N)
    out=$(printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\n' | raw 20)
    elapsed=$(($(date +%s%3N) - t0))
    ck "10 GiB announced, nothing sent: 413 or closed by the deadline" yes \
        "$({ [ "$(first "$out")" = 413 ] || [ "$out" = closed ]; } &&
            [ "$elapsed" -lt $((TIMEOUT * 1000 + 3000)) ] && echo yes || echo "no ($out after $elapsed ms)")"
    unchanged "10 GiB announced"
    request "$EV" "$(sign "$ING_SECRET" "$EV")" "Transfer-Encoding: chunked"$'\r\n' |
        hostile "Content-Length and Transfer-Encoding together: 400" 400
    # two Content-Length values (RFC 9112 6.3): 400 and the connection closed,
    # so neither the signed body nor the request smuggled behind it lands
    len=$(stat -c %s "$EV")
    {
        printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: %s\r\n' "$(sign "$ING_SECRET" "$EV")"
        printf 'Content-Length: %d\r\nContent-Length: %d\r\n\r\n' "$len" $((len + 33))
        cat "$EV"
        printf 'POST /webhooks/stripe HTTP/1.1\r\n\r\n'
    } | hostile "two Content-Length values: 400" 400
}

# ------------------------------------------------------------------- bodies --
section_bodies() {
    local max=1048576 prefix f
    prefix='{"id":"evt_hostile_max","object":"event","type":"invoice.paid","livemode":false,"data":{"object":{"pad":"'
    f="$ING_DIR/max.json"
    {
        printf '%s' "$prefix"
        head -c $((max - ${#prefix} - 4)) /dev/zero | tr '\0' p
        printf '"}}}'
    } >"$f"
    ck "a body of exactly PAYSTREAM_MAX_BODY ($max bytes): 200" "$max 200" \
        "$(stat -c %s "$f") $(first "$(request "$f" | raw)")"
    enqueued "a body of exactly PAYSTREAM_MAX_BODY"
    printf ' ' >>"$f"
    request "$f" | hostile "one byte over PAYSTREAM_MAX_BODY: 413" 413
    head -c $((10 * max)) /dev/zero | tr '\0' x >"$ING_DIR/10m"
    request "$ING_DIR/10m" | hostile "a 10 MiB body: 413" 413
    {
        printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: %s\r\n' "$(sign "$ING_SECRET" "$ING_DIR/10m")"
        printf 'Transfer-Encoding: chunked\r\n\r\n'
        for _ in $(seq 1 10); do printf '100000\r\n'; head -c "$max" "$ING_DIR/10m"; printf '\r\n'; done
        printf '0\r\n\r\n'
    } | hostile "a 10 MiB chunked body: 413" 413
}

# ----------------------------------- signed, but not UTF-8 or not JSON at all --
section_json() {
    local e='{"id":"evt_hostile_json","object":"event","type":"invoice.paid","livemode":false,"data":{"object":{"name":"%s"}}}'
    local bad='400 {"error":"invalid_json"}' what
    for what in '\xff' '\xc0\xaf' '\xed\xa0\x80' 'ab\xe2\x82' '\xf8\x88\x80\x80\x80' 'a\x01b'; do
        # shellcheck disable=SC2059 # $e is the format; $what stays text until signed()
        signed "invalid UTF-8 or a control character ($what) in a string: invalid_json" "$bad" \
            "$(printf "$e" "$what" | sed 's/%/%%/g')"
    done
    signed "invalid UTF-8 in the id: invalid_json" "$bad" '{"id":"evt_\xff","type":"invoice.paid"}'
    signed "a byte-order mark: invalid_json" "$bad" '\xef\xbb\xbf{"id":"evt_bom","type":"invoice.paid"}'
    signed "truncated: invalid_json" "$bad" '{"id":"evt_a","type":"invoice.paid"'
    signed "trailing garbage: invalid_json" "$bad" '{"id":"evt_a","type":"invoice.paid"} x'
    signed "single quotes: invalid_json" "$bad" "{'id':'evt_a','type':'invoice.paid'}"
    signed "NaN: invalid_json" "$bad" '{"id":"evt_a","type":"invoice.paid","n":NaN}'
    signed "the id twice: invalid_json" "$bad" '{"id":"evt_a","type":"invoice.paid","id":"evt_b"}'
    signed "NUL escaped in the id: invalid_json" "$bad" '{"id":"evt_a\\u0000b","type":"invoice.paid"}'
    { printf '{"id":"evt_deep","type":"invoice.paid","data":'; head -c 200000 /dev/zero | tr '\0' '['; } >"$ING_DIR/deep.json"
    request "$ING_DIR/deep.json" | hostile "200,000 nested arrays: 400" 400
    { printf '{"id":"evt_deep","type":"invoice.paid","data":'; for _ in $(seq 1 20000); do printf '{"a":'; done; printf '1'; head -c 20000 /dev/zero | tr '\0' '}'; printf '}'; } >"$ING_DIR/deep2.json"
    ck "20,000 nested objects, well formed: 200 or 400, never a crash" yes \
        "$(r=$(request "$ING_DIR/deep2.json" | raw); case $(first "$r") in 200) echo yes; n=$((n + 1)) ;; 400) echo yes ;; *) echo "$r" ;; esac)"
    n=$(xlen)
    ck "still up after deep nesting" yes "$(alive && echo yes || echo no)"
}

# ------------------------------------------------ signatures and timestamps --
section_signatures() {
    local t
    t=$(now)
    ck "wrong secret: no_matching_signature" '400 {"error":"no_matching_signature"}' \
        "$(request "$EV" "$(sign whsec_wrong_secret "$EV")" | raw)"
    unchanged "wrong secret"
    ck "signed 301 s ago: timestamp_outside_tolerance" '400 {"error":"timestamp_outside_tolerance"}' \
        "$(request "$EV" "$(sign "$ING_SECRET" "$EV" $((t - 301)))" | raw)"
    ck "t=0: timestamp_outside_tolerance" '400 {"error":"timestamp_outside_tolerance"}' \
        "$(request "$EV" "$(sign "$ING_SECRET" "$EV" 0)" | raw)"
    ck "t of 20 digits: unparseable_header" '400 {"error":"unparseable_header"}' \
        "$(request "$EV" "$(sign "$ING_SECRET" "$EV" 99999999999999999999)" | raw)"
    ck "t=-5: unparseable_header" '400 {"error":"unparseable_header"}' "$(request "$EV" "t=-5,v1=00" | raw)"
    ck "empty Stripe-Signature: missing_header" '400 {"error":"missing_header"}' \
        "$(printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: \r\nContent-Length: 2\r\n\r\n{}' | raw)"
    unchanged "bad timestamps"
    # Stripe's SDKs refuse only timestamps older than the tolerance; so does ingest
    ck "signed 1 day in the future: 200, as Stripe's SDKs do" '200 {"received":true}' \
        "$(request "$EV" "$(sign "$ING_SECRET" "$EV" $((t + 86400)))" | raw)"
    enqueued "signed in the future"
}

# ----------------------------------------------------- injection attempts --
section_injection() {
    local head
    head=$(curl -s -D - -o /dev/null "$ING_URL/webhooks/stripe%0d%0aSet-Cookie:%20x=1%0d%0a")
    ck "CR LF in the path: 404, no header of ours added" "404 0" \
        "$(echo "$head" | head -n1 | cut -d' ' -f2) $(grep -ci '^Set-Cookie' <<<"$head")"
    signed "CR LF escaped in the id: invalid_id" '400 {"error":"invalid_id"}' \
        '{"id":"evt_a\\r\\nX-Injected: 1","type":"invoice.paid"}'
    signed "CR LF escaped in the type: invalid_type" '400 {"error":"invalid_type"}' \
        '{"id":"evt_a","type":"invoice.paid\\r\\nX-Injected: 1"}'
    printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1\x1b[31m\xff\xfe"\\n{"level":"error"},v1=00\r\nContent-Length: 2\r\n\r\n{}' |
        hostile "escape codes, quotes and bytes over 0x7f in the signature: 400" 400
}

# ------------------------------------------------------------- slow clients --
section_slow() {
    local out ms
    for what in headers body; do
        out=$(python3 "$HC" trickle "$ING_PORT" "$what" 0.2)
        ms=$(echo "$out" | awk '{ print $3 }')
        ck "$what trickled byte by byte: closed near PAYSTREAM_TIMEOUT, never answered 200" yes \
            "$([ "$ms" -ge $((TIMEOUT * 1000 - 500)) ] && [ "$ms" -lt $((TIMEOUT * 1000 + 4000)) ] &&
                ! grep -q 'status 200' <<<"$out" && echo yes || echo "no ($out)")"
    done
    out=$(python3 "$HC" slowloris "$ING_PORT" 150 4)
    ck "150 trickling clients: a normal client is served within 2 s each time" yes \
        "$(awk '{ split($4, a, "/"); print (a[1] == a[2] && a[1] > 0 && $6 < 2000) ? "yes" : "no (" $0 ")" }' <<<"$out")"
    unchanged "slow clients"
}

# -------------------------------------------------- idle connections, the cap --
section_idle() {
    local base most=0 f out
    base=$(fds)
    python3 "$HC" idle "$ING_PORT" 2000 30 >"$ING_DIR/idle.out" &
    local idler=$!
    for _ in $(seq 1 30); do
        f=$(fds)
        [ "$f" -gt "$most" ] && most=$f
        kill -0 "$idler" 2>/dev/null || break
        sleep 0.2
    done
    wait "$idler" || true
    out=$(cat "$ING_DIR/idle.out")
    # the cap counts client connections; a few more descriptors come and go
    # (a Redis reconnect, /healthz polls)
    ck "2,000 idle connections: at most $CAP open in ingest at once (peak +$((most - base)) descriptors)" yes \
        "$([ $((most - base)) -le $((CAP + 8)) ] && [ $((most - base)) -ge $((CAP / 2)) ] && echo yes || echo no)"
    ck "2,000 idle connections: every one closed by the deadline" "opened 2000 closed 2000" "$out"
    ck "served again after them" yes "$(alive && echo yes || echo no)"
}

hostile_round() {
    section_headers
    section_framing
    section_bodies
    section_json
    section_signatures
    section_injection
    section_slow
    section_idle
}

EV=$(event_file evt_hostile_ok)
R=1
hostile_round
rss1=$(rss_kib)
for R in 2 3; do hostile_round; done
rss2=$(rss_kib)
echo "# RSS after round 1: $rss1 KiB, after round 3: $rss2 KiB (peak $(awk '/^VmHWM:/ { print $2 }' "/proc/$ING_PID/status") KiB)"
check "RSS grew at most $RSS_BOUND_KIB KiB over two more rounds of abuse" yes \
    "$([ $((rss2 - rss1)) -le "$RSS_BOUND_KIB" ] && echo yes || echo "no (+$((rss2 - rss1)) KiB)")"
check "every log line is one JSON object" 0 "$(python3 -c '
import json, sys
bad = 0
for line in open(sys.argv[1], "rb"):
    try:
        bad += not isinstance(json.loads(line), dict)
    except ValueError:
        bad += 1
print(bad)' "$ING_DIR/ingest-0.log")"
check "no secret in the log" 0 "$(grep -c "$ING_SECRET" "$ING_DIR/ingest-0.log" || true)"
ingest_stop
check "SIGTERM after all that: exit 0" 0 "$ING_EXIT"
done_testing
