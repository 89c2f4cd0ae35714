# test_ingest_limits.sh - what keeps paystream-ingest up under abuse, and how it
# listens: the connection cap (PAYSTREAM_MAX_CONNECTIONS), the per-request
# deadline against clients that trickle or idle (PAYSTREAM_TIMEOUT), the
# header size cap, HTTPS with PAYSTREAM_TLS_CERT/KEY, and IPv4 + IPv6 at once.
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

ms() { date +%s%3N; }
code_of() { curl -s -k -o /dev/null -w '%{http_code}' "$@" || true; }

# ---- connection cap: at the cap nothing more is accepted; one closing frees a slot
ingest_start PAYSTREAM_MAX_CONNECTIONS=3 PAYSTREAM_TIMEOUT=5
ingest_wait_ready || true
exec 3<>"/dev/tcp/127.0.0.1/$ING_PORT" 4<>"/dev/tcp/127.0.0.1/$ING_PORT" 5<>"/dev/tcp/127.0.0.1/$ING_PORT"
sleep 0.3
check "at the cap: a fourth client is not served" 000 "$(code_of --max-time 1 "$ING_URL/healthz")"
exec 3>&- 3<&-
sleep 0.2
check "one closed: served again" 200 "$(code_of --max-time 2 "$ING_URL/healthz")"
exec 4>&- 4<&- 5>&- 5<&-
check "log: the cap is named" 1 "$(grep -c 'PAYSTREAM_MAX_CONNECTIONS' "$ING_DIR/ingest-0.log" | awk '{print ($1 > 0)}')"
ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"

# ---- deadline: a silent client and a trickling client are both cut off
ingest_start PAYSTREAM_TIMEOUT=2
t0=$(ms)
timeout 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ING_PORT; cat <&3 >/dev/null" || true
elapsed=$(($(ms) - t0))
check "idle connection closed after PAYSTREAM_TIMEOUT ($elapsed ms)" 1 $((elapsed >= 1500 && elapsed < 5000))
t0=$(ms)
# one header byte every 0.3 s: never silent, never complete
timeout 20 bash -c "trap '' PIPE; exec 3<>/dev/tcp/127.0.0.1/$ING_PORT
    printf 'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n' >&3 || exit 0
    while printf 'X' >&3 2>/dev/null; do sleep 0.3; done" || true
elapsed=$(($(ms) - t0))
check "trickling client cut off near PAYSTREAM_TIMEOUT ($elapsed ms)" 1 $((elapsed >= 1500 && elapsed < 6000))
check "a normal client is still served" 200 "$(code_of "$ING_URL/healthz")"
huge=$(head -c 20000 /dev/zero | tr '\0' 'h')
f=$(event_file evt_limits_hdr)
check "headers over 16 KiB: 400" 400 "$(code_of -H "X-Big: $huge" -H "Stripe-Signature: $(sign "$ING_SECRET" "$f")" --data-binary "@$f" "$ING_URL/webhooks/stripe")"
check "headers over 16 KiB: nothing enqueued" 0 "$(xlen)"
ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"

# ---- HTTPS
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ING_DIR/key.pem" -out "$ING_DIR/cert.pem" \
    -days 2 -subj /CN=localhost >/dev/null 2>&1
out=$(STRIPE_WEBHOOK_SECRET=x PAYSTREAM_TLS_CERT="$ING_DIR/key.pem" PAYSTREAM_TLS_KEY="$ING_DIR/key.pem" \
    PAYSTREAM_LISTEN="127.0.0.1:$(stack_free_port)" "$PS_BIN_DIR/paystream-ingest" 2>&1) && st=0 || st=$?
check "a key given as the certificate: refused naming PAYSTREAM_TLS_CERT" "1 1" "$((st != 0)) $(grep -c PAYSTREAM_TLS_CERT <<<"$out")"
ING_SCHEME=https ingest_start PAYSTREAM_TLS_CERT="$ING_DIR/cert.pem" PAYSTREAM_TLS_KEY="$ING_DIR/key.pem"
f=$(event_file evt_limits_tls)
check "HTTPS: signed event 200" '200 {"received":true}' "$(post_signed "$f")"
stream_body evt_limits_tls >"$ING_DIR/tls.back"
check "HTTPS: byte for byte in the stream" same "$(cmp -s "$f" "$ING_DIR/tls.back" && echo same || echo differ)"
check "HTTPS: bad signature 400" 400 "$(post_status "$f" "t=1,v1=00")"
check "HTTPS: TLS 1.2 or newer only" 000 "$(code_of --tlsv1.1 --tls-max 1.1 "$ING_URL/healthz")"
check "HTTPS port does not speak plain HTTP" 1 "$(c=$(code_of --max-time 3 "http://127.0.0.1:$ING_PORT/healthz"); [ "$c" != 200 ] && echo 1 || echo 0)"
head -c 1100000 /dev/zero | tr '\0' x >"$ING_DIR/tls.big"
check "HTTPS: a body over PAYSTREAM_MAX_BODY: 413 with its JSON reason" '413 {"error":"body_too_large"}' \
    "$(post "$ING_DIR/tls.big" "$(sign "$ING_SECRET" "$ING_DIR/tls.big")")"
f=$(event_file evt_limits_tls_chunked)
check "HTTPS: a chunked signed event 200, byte for byte in the stream" "200 same" \
    "$(curl -s -k -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
        -H "Stripe-Signature: $(sign "$ING_SECRET" "$f")" --data-binary "@$f" "$ING_URL/webhooks/stripe") $(
        stream_body evt_limits_tls_chunked | cmp -s "$f" - && echo same || echo differ)"
check "HTTPS: keep-alive serves several requests" "200200200" \
    "$(curl -s -k -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}' "$ING_URL/healthz" "$ING_URL/healthz" "$ING_URL/readyz")"
ingest_stop
check "HTTPS: SIGTERM exit 0" 0 "$ING_EXIT"

# ---- IPv4 and IPv6 at once
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    port=$(stack_free_port)
    ING_NEXT_PORT=$port ingest_start PAYSTREAM_LISTEN="127.0.0.1:$port,[::1]:$port"
    check "IPv4 address served" 200 "$(code_of "http://127.0.0.1:$port/healthz")"
    check "IPv6 address served" 200 "$(code_of -g "http://[::1]:$port/healthz")"
    f=$(event_file evt_limits_v6)
    check "IPv6: signed event 200" 200 \
        "$(code_of -g -H "Stripe-Signature: $(sign "$ING_SECRET" "$f")" --data-binary "@$f" "http://[::1]:$port/webhooks/stripe")"
    ingest_stop
    check "IPv6: SIGTERM exit 0" 0 "$ING_EXIT"
else
    check "IPv6 loopback available on this machine" yes no
fi
done_testing
