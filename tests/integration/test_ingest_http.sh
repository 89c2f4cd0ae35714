# test_ingest_http.sh - paystream-ingest's HTTP surface (SPEC section 2): a
# signed event is answered 200 and lands in the stream byte for byte; every
# bad input gets its status and error code and adds nothing; 404, 405, 413,
# /healthz, /readyz, /metrics; start-up refusals that name the setting; no
# secret in any output.
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

ING=$PS_BIN_DIR/paystream-ingest

# ---- settings: one line naming the setting, exit 2; secrets never shown
out=$(env -u STRIPE_WEBHOOK_SECRET -u PAYSTREAM_SECRET_FILE "$ING" 2>&1) && st=0 || st=$?
check "no secret: exit 2" 2 "$st"
check "no secret: names STRIPE_WEBHOOK_SECRET" 1 "$(grep -c 'STRIPE_WEBHOOK_SECRET' <<<"$out")"
out=$(STRIPE_WEBHOOK_SECRET=$ING_SECRET "$ING" --tolerance 0 2>&1) && st=0 || st=$?
check "tolerance 0: exit 2" 2 "$st"
check "tolerance 0: names PAYSTREAM_TOLERANCE" 1 "$(grep -c 'PAYSTREAM_TOLERANCE' <<<"$out")"
out=$(STRIPE_WEBHOOK_SECRET=$ING_SECRET PAYSTREAM_TLS_CERT=/nonexistent "$ING" 2>&1) && st=0 || st=$?
check "TLS cert without key: exit 2 naming PAYSTREAM_TLS_KEY" "2 1" "$st $(grep -c PAYSTREAM_TLS_KEY <<<"$out")"
out=$(STRIPE_WEBHOOK_SECRET=$ING_SECRET PAYSTREAM_SECRET_FILE=/nonexistent "$ING" 2>&1) && st=0 || st=$?
check "unreadable secret file: exit 2 naming it" "2 1" "$st $(grep -c PAYSTREAM_SECRET_FILE <<<"$out")"
out=$(STRIPE_WEBHOOK_SECRET=$ING_SECRET PAYSTREAM_REDIS_URL=http://x "$ING" 2>&1) && st=0 || st=$?
check "bad Redis URL: refused naming PAYSTREAM_REDIS_URL" "1 1" "$((st != 0)) $(grep -c PAYSTREAM_REDIS_URL <<<"$out")"
out=$(STRIPE_WEBHOOK_SECRET=$ING_SECRET "$ING" --show-config 2>&1) && st=0 || st=$?
check "--show-config: exit 0, secret masked" "0 0 1" \
    "$st $(grep -c "$ING_SECRET" <<<"$out") $(grep -c '^STRIPE_WEBHOOK_SECRET=(set, hidden)$' <<<"$out")"
out=$(STRIPE_WEBHOOK_SECRET=$ING_SECRET "$ING" --help 2>&1) && st=0 || st=$?
check "--help: exit 0, lists PAYSTREAM_MAX_BODY, no secret" "0 1 0" \
    "$st $(grep -c PAYSTREAM_MAX_BODY <<<"$out") $(grep -c "$ING_SECRET" <<<"$out")"
check "--version" "paystream-ingest" "$("$ING" --version | cut -d' ' -f1)"
check_exit "unknown argument: exit 2" 2 env STRIPE_WEBHOOK_SECRET="$ING_SECRET" "$ING" --bogus

ingest_start PAYSTREAM_MAX_BODY=4096
ingest_wait_ready || check "ready" 200 "not ready"

# ---- the good path: 200 only with the entry in the stream, byte for byte
ev=$(event_file evt_http_ok)
check "signed event: 200 {\"received\":true}" '200 {"received":true}' "$(post_signed "$ev")"
check "signed event: one stream entry" 1 "$(xlen)"
stream_body evt_http_ok >"$ING_DIR/back.json"
check "stream body is the posted body, byte for byte" same \
    "$(cmp -s "$ev" "$ING_DIR/back.json" && echo same || echo differ)"
check "stream entry type" checkout.session.completed "$(stream_field evt_http_ok type)"
received=$(stream_field evt_http_ok received)
now_ms=$(($(date +%s) * 1000))
check "stream entry received is the time in ms" 1 $((received > now_ms - 60000 && received <= now_ms + 1000))
check "a second delivery is enqueued again (the worker deduplicates)" \
    '200 {"received":true} 2' "$(post_signed "$ev") $(xlen)"

# a body of exactly PAYSTREAM_MAX_BODY bytes is accepted
big="$ING_DIR/big.json"
prefix='{"id":"evt_http_big","type":"invoice.paid","pad":"'
{
    printf '%s' "$prefix"
    head -c $((4096 - ${#prefix} - 2)) /dev/zero | tr '\0' 'p'
    printf '"}'
} >"$big"
check "body of exactly PAYSTREAM_MAX_BODY bytes" "4096 200" \
    "$(stat -c %s "$big") $(post_status "$big" "$(sign "$ING_SECRET" "$big")")"
n=$(xlen)

# ---- every bad input: its status and code, nothing added
bad() { # NAME EXPECTED FILE [HEADER]
    check "$1" "$2" "$(post "$3" "${4:-}")"
    check "$1: stream unchanged" "$n" "$(xlen)"
}
t=$(date +%s)
bad "no Stripe-Signature" '400 {"error":"missing_header"}' "$ev"
bad "unparseable header" '400 {"error":"unparseable_header"}' "$ev" "garbage"
bad "no timestamp" '400 {"error":"unparseable_header"}' "$ev" "v1=$(sign "$ING_SECRET" "$ev" | sed 's/.*v1=//')"
bad "no v1 (v0 only)" '400 {"error":"no_v1_signature"}' "$ev" "t=$t,v0=$(sign "$ING_SECRET" "$ev" | sed 's/.*v1=//')"
bad "wrong secret" '400 {"error":"no_matching_signature"}' "$ev" "$(sign whsec_wrong "$ev")"
bad "too old" '400 {"error":"timestamp_outside_tolerance"}' "$ev" "$(sign "$ING_SECRET" "$ev" $((t - 400)))"
cp "$ev" "$ING_DIR/changed.json"
printf ' ' >>"$ING_DIR/changed.json"
bad "body changed after signing" '400 {"error":"no_matching_signature"}' "$ING_DIR/changed.json" "$(sign "$ING_SECRET" "$ev")"
printf 'not json at all' >"$ING_DIR/notjson"
bad "not JSON" '400 {"error":"invalid_json"}' "$ING_DIR/notjson" "$(sign "$ING_SECRET" "$ING_DIR/notjson")"
printf '[1,2]' >"$ING_DIR/array"
bad "JSON but not an object" '400 {"error":"not_an_object"}' "$ING_DIR/array" "$(sign "$ING_SECRET" "$ING_DIR/array")"
printf '{"type":"invoice.paid"}' >"$ING_DIR/noid"
bad "no id" '400 {"error":"missing_id"}' "$ING_DIR/noid" "$(sign "$ING_SECRET" "$ING_DIR/noid")"
printf '{"id":"in_123","type":"invoice.paid"}' >"$ING_DIR/badid"
bad "id not evt_" '400 {"error":"invalid_id"}' "$ING_DIR/badid" "$(sign "$ING_SECRET" "$ING_DIR/badid")"
printf '{"id":"evt_123"}' >"$ING_DIR/notype"
bad "no type" '400 {"error":"missing_type"}' "$ING_DIR/notype" "$(sign "$ING_SECRET" "$ING_DIR/notype")"
: >"$ING_DIR/empty"
bad "empty body" '400 {"error":"invalid_json"}' "$ING_DIR/empty" "$(sign "$ING_SECRET" "$ING_DIR/empty")"
printf 'x' >>"$big"
check "over PAYSTREAM_MAX_BODY: 413" 413 "$(post_status "$big" "$(sign "$ING_SECRET" "$big")")"
check "over PAYSTREAM_MAX_BODY: stream unchanged" "$n" "$(xlen)"
check "over PAYSTREAM_MAX_BODY, chunked: 413" 413 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H "Stripe-Signature: $(sign "$ING_SECRET" "$big")" --data-binary "@$big" "$ING_URL/webhooks/stripe")"

# ---- methods and paths
req() { curl -s -w ' %{http_code}' "$@"; }
check "GET on the webhook path: 405" '{"error":"method_not_allowed"} 405' "$(req "$ING_URL/webhooks/stripe")"
check "PUT on the webhook path: 405" '{"error":"method_not_allowed"} 405' "$(req -X PUT --data-binary "@$ev" "$ING_URL/webhooks/stripe")"
check "PATCH on the webhook path: 405" '{"error":"method_not_allowed"} 405' "$(req -X PATCH "$ING_URL/webhooks/stripe")"
check "405 says Allow: POST" 1 "$(curl -s -D - -o /dev/null "$ING_URL/webhooks/stripe" | grep -ci '^Allow: POST')"
check "other path: 404" '{"error":"not_found"} 404' "$(req -X POST --data-binary "@$ev" -H "Stripe-Signature: $(sign "$ING_SECRET" "$ev")" "$ING_URL/webhooks/other")"
check "query string on the webhook path is still the webhook" '{"error":"missing_header"} 400' "$(req --data-binary "@$ev" "$ING_URL/webhooks/stripe?x=1")"
check "POST /healthz: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ING_URL/healthz")"
check "/healthz" '{"status":"ok"} 200' "$(req "$ING_URL/healthz")"
check "/readyz" '{"status":"ready"} 200' "$(req "$ING_URL/readyz")"
check "JSON content type" 1 "$(curl -s -D - -o /dev/null "$ING_URL/healthz" | grep -ci '^Content-Type: application/json')"
check "stream unchanged by all of that" "$n" "$(xlen)"

# ---- metrics
m=$(curl -s "$ING_URL/metrics")
metric() { awk -v k="$1" '$1 == k { print $2 }' <<<"$m"; }
check "metrics: events enqueued" 3 "$(metric 'paystream_ingest_events_enqueued_total')"
check "metrics: 400s" 14 "$(metric 'paystream_ingest_requests_total{code="400"}')"
check "metrics: 404s" 1 "$(metric 'paystream_ingest_requests_total{code="404"}')"
check "metrics: missing_header failures" 2 "$(metric 'paystream_ingest_verify_failures_total{reason="missing_header"}')"
check "metrics: too old" 1 "$(metric 'paystream_ingest_verify_failures_total{reason="timestamp_outside_tolerance"}')"
check "metrics: envelope missing_id" 1 "$(metric 'paystream_ingest_envelope_failures_total{reason="missing_id"}')"
check "metrics: enqueue latency count" 3 "$(metric 'paystream_ingest_enqueue_seconds_count')"
check "metrics: redis connected" 1 "$(metric 'paystream_ingest_redis_connected')"
check "metrics: histogram +Inf bucket" 3 "$(metric 'paystream_ingest_enqueue_seconds_bucket{le="+Inf"}')"

# ---- logs: JSON lines that help, never a secret
log="$ING_DIR/ingest-0.log"
check "log says why a signature failed" 1 "$(grep -c 'rejected (timestamp_outside_tolerance)' "$log")"
check "accepted events are logged at debug with their ids" 1 \
    "$(grep -c '"level":"debug".*"event_id":"evt_http_big".*"msg":"enqueued"' "$log")"
check "no secret in the log" 0 "$(grep -c "$ING_SECRET" "$log")"
check "every log line is JSON" 0 "$(grep -vc '^{.*}$' "$log")"

ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"
done_testing
