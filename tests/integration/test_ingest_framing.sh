# test_ingest_framing.sh - paystream-ingest's own HTTP/1.1 connection layer
# (ingest/http_conn.c, http_parse.c, http_io.c) seen from the wire.
#
# ingest frames HTTP itself (it used to be libevent's evhttp), and curl
# cannot show most of it. So, on raw connections: pipelined
# events answered in order on one connection; a half-closed client still
# answered, then closed; Expect: 100-continue (and a 413 instead of the 100);
# JSON 413s counted in /metrics; framing errors answered with a JSON 400 and
# Connection: close, then closed (a bare LF at once, not at the timeout);
# HTTP/1.0 with and without keep-alive; HEAD without body bytes; a Date on
# every answer; a chunked body with extensions and a trailer stored byte for
# byte; a client that pipelines without reading holds ingest's answers back
# (and its reading) rather than its memory. The stream holds exactly the events
# accepted, in order. Every client is bounded in time (hostile_client.py).
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

HC="$(dirname "$0")/hostile_client.py"
MAX=4096
TIMEOUT=8 # PAYSTREAM_TIMEOUT: longer than a talk's 5 s, so a wait for it shows
ingest_start PAYSTREAM_MAX_BODY=$MAX PAYSTREAM_TIMEOUT=$TIMEOUT
ingest_wait_ready || check "ingest ready" yes no
check "the stream starts empty" 0 "$(xlen)"
ids=() # the event ids the stream must hold, in order
: >"$ING_DIR/dates"

# talk STEP...: one raw connection (steps: hostile_client.py cmd_talk); prints
# what each step saw, joined by " | "; its "dated D of N" line goes to dates
talk() {
    local out
    out=$(python3 "$HC" talk "$ING_PORT" 5 "$@")
    tail -n 1 <<<"$out" >>"$ING_DIR/dates"
    head -n 1 <<<"$out"
}

# bytes NAME: stdin into a file; prints its path
bytes() { cat >"$ING_DIR/$1.req" && echo "$ING_DIR/$1.req"; }

# webhook_head FILE [EXTRA HEADER LINES]: the head of a POST of FILE,
# signed now with the test secret
webhook_head() {
    printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
    printf 'Stripe-Signature: %s\r\nContent-Length: %d\r\n%b\r\n' \
        "$(sign "$ING_SECRET" "$1")" "$(stat -c %s "$1")" "${2:-}"
}
webhook() { webhook_head "$@" && cat "$1"; }

# stream_ids: the id field of every stream entry, in stream order, on one line
stream_ids() {
    local lua="local r = {}
      for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
        local f = e[2]
        for i = 1, #f, 2 do if f[i] == 'id' then r[#r + 1] = f[i + 1] end end
      end
      return r"
    rcli --raw EVAL "$lua" 1 "$ING_STREAM" | paste -sd' '
}

# landed NAME [ID...]: those events were just added; the stream holds exactly
# the events accepted so far, in order, and nothing else
landed() {
    local name=$1
    shift
    ids+=("$@")
    check "$name: the stream is exactly [${ids[*]}]" "${ids[*]}" "$(stream_ids)"
}

same_body() { # ID FILE: the stream entry's body is the file, byte for byte
    stream_body "$1" >"$ING_DIR/$1.back"
    cmp -s "$2" "$ING_DIR/$1.back" && echo same || echo differ
}

OK='200 {"received":true}'
HEALTH='200 {"status":"ok"}'
GET_HEALTH=$'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
get=$(printf '%s' "$GET_HEALTH" | bytes get)

# ---- 1. two signed events pipelined in one write
a=$(event_file evt_frame_pipe_a)
b=$(event_file evt_frame_pipe_b)
f=$({ webhook "$a" && webhook "$b" && printf '%s' "$GET_HEALTH"; } | bytes pipelined)
check "two events and a GET pipelined in one write: answered in order on one connection" \
    "$OK | no Connection | $OK | no Connection | $HEALTH" \
    "$(talk "send:$f" read hdr:Connection read hdr:Connection read)"
landed "pipelined" evt_frame_pipe_a evt_frame_pipe_b

# ---- 2. half-close: the client's FIN after its request
e=$(event_file evt_frame_half)
f=$(webhook "$e" | bytes half)
# (whether that 200 says Connection: close depends on whether the FIN is read
# before Redis answers: both are right, so only the close itself is checked)
check "a signed event, then SHUT_WR: still 200, then closed by the server" \
    "$OK | closed" "$(talk "send:$f" shut read eof)"
landed "half-close" evt_frame_half

# ---- 3. Expect: 100-continue
e=$(event_file evt_frame_expect)
f=$(webhook_head "$e" 'Expect: 100-continue\r\n' | bytes expect_head)
check "Expect: 100-continue: 100 Continue for the head alone, then 200 for the body" \
    "100 | HTTP/1.1 100 Continue | $OK | no Connection" \
    "$(talk "send:$f" read status "send:$e" read hdr:Connection)"
landed "Expect: 100-continue" evt_frame_expect
over="$ING_DIR/over.json" # one byte over PAYSTREAM_MAX_BODY
prefix='{"id":"evt_frame_over","type":"invoice.paid","pad":"'
{
    printf '%s' "$prefix"
    head -c $((MAX + 1 - ${#prefix} - 2)) /dev/zero | tr '\0' p
    printf '"}'
} >"$over"
check "the oversized body is PAYSTREAM_MAX_BODY + 1 bytes" $((MAX + 1)) "$(stat -c %s "$over")"
f=$(webhook_head "$over" 'Expect: 100-continue\r\n' | bytes expect_over)
check "Expect: 100-continue with Content-Length over the limit: 413 at once, no 100, closed" \
    '413 {"error":"body_too_large"} | HTTP/1.1 413 Content Too Large | Content-Type: application/json | Connection: close | closed' \
    "$(talk "send:$f" read status hdr:Content-Type hdr:Connection eof)"

# ---- 4. 413 is JSON, and counted
f=$(webhook "$over" | bytes over)
check "one byte over PAYSTREAM_MAX_BODY: JSON 413, Connection: close, closed" \
    '413 {"error":"body_too_large"} | Content-Type: application/json | Connection: close | closed' \
    "$(talk "send:$f" read hdr:Content-Type hdr:Connection eof)"
check "metrics count both 413s" 2 \
    "$(curl -s "$ING_URL/metrics" | awk '$1 == "paystream_ingest_requests_total{code=\"413\"}" { print $2 }')"
landed "413s" # nothing added

# ---- 5. framing errors: JSON 400, Connection: close, closed (nothing after it answered)
e=$(event_file evt_frame_two_cl)
len=$(stat -c %s "$e")
f=$({ webhook_head "$e" "Content-Length: $len\\r\\n" && cat "$e" && printf '%s' "$GET_HEALTH"; } | bytes two_cl)
check "two Content-Length headers: JSON 400, Connection: close, closed, the GET behind it unanswered" \
    '400 {"error":"ambiguous_content_length"} | Content-Type: application/json | Connection: close | closed' \
    "$(talk "send:$f" read hdr:Content-Type hdr:Connection eof)"
f=$(printf 'GET / HTTP/1.1\n\n' | bytes bare_lf)
t0=$(date +%s%3N)
check "a bare-LF head: JSON 400, Connection: close, closed" \
    '400 {"error":"bad_request"} | Content-Type: application/json | Connection: close | closed' \
    "$(talk "send:$f" read hdr:Content-Type hdr:Connection eof)"
ms=$(($(date +%s%3N) - t0))
check "a bare-LF head is refused at once, not at PAYSTREAM_TIMEOUT (${ms} ms)" yes \
    "$([ "$ms" -lt 2000 ] && echo yes || echo no)"
f=$({ webhook_head "$e" 'Transfer-Encoding: chunked\r\n' | grep -av '^Content-Length' && printf 'zz\r\n{}\r\n0\r\n\r\n'; } | bytes bad_chunk)
check "a chunk size that is not hex: JSON 400, Connection: close, closed" \
    '400 {"error":"bad_chunked_body"} | Connection: close | closed' \
    "$(talk "send:$f" read hdr:Connection eof)"
landed "framing errors" # nothing added

# ---- 6. HTTP/1.0
f=$(printf 'GET /healthz HTTP/1.0\r\n\r\n' | bytes http10)
check "HTTP/1.0 without keep-alive: answered with Connection: close, then closed" \
    "$HEALTH | Connection: close | closed" "$(talk "send:$f" read hdr:Connection eof)"
f=$(printf 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' | bytes http10_ka)
check "HTTP/1.0 keep-alive: Connection: keep-alive, a second request answered on it" \
    "$HEALTH | Connection: keep-alive | $HEALTH | Connection: keep-alive" \
    "$(talk "send:$f" read hdr:Connection "send:$f" read hdr:Connection)"

# ---- 7. HEAD: the GET's Content-Length, no body bytes
f=$({ printf 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n' && printf '%s' "$GET_HEALTH"; } | bytes head_get)
check "HEAD then GET pipelined: HEAD has the GET's length and no body; the GET parses" \
    "200 | Content-Length: 15 | $HEALTH | Content-Length: 15" \
    "$(talk "send:$f" readhead hdr:Content-Length read hdr:Content-Length)"

f=$(printf 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\n\n' | bytes head_then_bad)
check "a framing error after a HEAD: the 400 still has its body" \
    '200 | 400 {"error":"bad_request"} | closed' "$(talk "send:$f" readhead read eof)"

# ---- 9. a chunked body: several chunks, extensions, a trailer
e=$(event_file evt_frame_chunked)
len=$(stat -c %s "$e")
c1=$((len / 3)) c2=$((len / 3 + 7)) # cuts through "Zoë ✓" or wherever they fall
c3=$((len - c1 - c2))
f=$({
    webhook_head "$e" 'Transfer-Encoding: chunked\r\n' | grep -av '^Content-Length'
    printf '%x;ext=1\r\n' "$c1" && head -c "$c1" "$e" && printf '\r\n'
    printf '%X ; name="a b";x\r\n' "$c2" && tail -c +$((c1 + 1)) "$e" | head -c "$c2" && printf '\r\n'
    printf '%x\r\n' "$c3" && tail -c "$c3" "$e" && printf '\r\n'
    printf '0\r\nX-Trailer: done\r\n\r\n'
} | bytes chunked)
check "a chunked signed event in 3 chunks, extensions, a trailer: 200; the next request parses" \
    "$OK | $HEALTH" "$(talk "send:$f" read "send:$get" read)"
check "the chunked event's stream body is the decoded body, byte for byte" same \
    "$(same_body evt_frame_chunked "$e")"
landed "chunked" evt_frame_chunked
check "the pipelined events' bodies, byte for byte" "same same" \
    "$(same_body evt_frame_pipe_a "$a") $(same_body evt_frame_pipe_b "$b")"

# ---- 8. a Date on every final answer read above
check "every final answer above carried one current Date header" "dated 19 of 19" \
    "$(awk '{ d += $2; n += $4 } END { print "dated", d, "of", n }' "$ING_DIR/dates")"

# ---- 11. a client that pipelines and does not read: past 64 KiB of unread
# answers, ingest answers (and reads) no more until it does; then all come
out=$(python3 "$HC" flood "$ING_PORT" 100000 1.5)
held=$(awk '{ print $2 }' <<<"$out")
check "100,000 pipelined GETs, none read: fewer than 60,000 answered meanwhile ($held)" 1 \
    "$((${held:-100000} < 60000))"
check "then read: every answer comes" "read 100000 of 100000" "$(grep -o 'read [0-9]* of [0-9]*' <<<"$out")"

# ---- 10. the process: still serving, no secret, clean exit, no sanitizer report
check "still serving" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$ING_URL/healthz")"
check "stream length, exactly" "${#ids[@]}" "$(xlen)"
log="$ING_DIR/ingest-0.log"
ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"
check "no secret in the log" 0 "$(grep -c "$ING_SECRET" "$log" || true)"
check "no sanitizer report in the log" 0 \
    "$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" || true)"
done_testing
