# test_ingest_redis_outage.sh - Redis down or stalled: paystream-ingest answers
# 503 within PAYSTREAM_REDIS_TIMEOUT_MS (never 200), /readyz says 503, and
# once Redis is back the same process answers 200 again without a restart.
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

ms() { date +%s%3N; }

ingest_start PAYSTREAM_REDIS_TIMEOUT_MS=1000
ingest_wait_ready || check "ready at start" ready "not ready"
pid=$ING_PID

check "Redis up: 200" '200 {"received":true}' "$(post_signed "$(event_file evt_outage_1)")"

# ---- Redis stopped
rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
for _ in $(seq 1 50); do rcli PING >/dev/null 2>&1 || break; sleep 0.1; done
t0=$(ms)
check "Redis stopped: 503" '503 {"error":"redis_unavailable"}' "$(post_signed "$(event_file evt_outage_2)")"
check "Redis stopped: answered within the timeout" 1 $(($(ms) - t0 < 1500))
check "Redis stopped: /readyz 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$ING_URL/readyz")"
check "Redis stopped: /healthz still 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$ING_URL/healthz")"
check "Redis stopped: bad signatures are still 400" 400 "$(post_status "$(event_file evt_outage_x)" "t=1,v1=00")"
check "metrics: redis_connected 0" 1 "$(curl -s "$ING_URL/metrics" | grep -c '^paystream_ingest_redis_connected 0$')"

# ---- Redis back: the same process recovers by itself
stack_restart_redis
ingest_wait_ready && r=ready || r="not ready"
check "Redis back: /readyz 200 again" ready "$r"
check "Redis back: 200 again" '200 {"received":true}' "$(post_signed "$(event_file evt_outage_3)")"
check "Redis back: the entry is there" 1 "$(rcli XLEN "$ING_STREAM")"
check "Redis back: the event answered 503 is not there" "" "$(stream_field evt_outage_2 type)"
check "same ingest process throughout" "$pid" "$ING_PID"
check "ingest still running" 0 "$(kill -0 "$pid" 2>/dev/null; echo $?)"

# ---- Redis stalled (every client paused): 503 within the timeout, then back
rcli CLIENT PAUSE 3000 ALL >/dev/null
t0=$(ms)
check "Redis stalled: 503 redis_timeout" '503 {"error":"redis_timeout"}' "$(post_signed "$(event_file evt_outage_4)")"
elapsed=$(($(ms) - t0))
check "Redis stalled: answered after the timeout, not much later ($elapsed ms)" 1 \
    $((elapsed >= 900 && elapsed < 2500))
check "Redis stalled: /readyz 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$ING_URL/readyz")"
sleep 3
ingest_wait_ready && r=ready || r="not ready"
check "stall over: ready again" ready "$r"
check "stall over: 200 again" '200 {"received":true}' "$(post_signed "$(event_file evt_outage_5)")"
check "stall over: in the stream" checkout.session.completed "$(stream_field evt_outage_5 type)"

m=$(curl -s "$ING_URL/metrics")
check "metrics: timeouts counted" 1 "$(grep -c '^paystream_ingest_redis_errors_total{kind="timeout"} [1-9]' <<<"$m")"
check "metrics: reconnects counted" 1 "$(grep -c '^paystream_ingest_redis_connects_total [3-9]' <<<"$m")"
log="$ING_DIR/ingest-0.log"
check "log: the stall is explained" 1 "$(grep -c 'no reply within 1000 ms' "$log" | awk '{print ($1 > 0)}')"
check "log: reconnection is logged" 1 "$(grep -c 'connected again' "$log" | awk '{print ($1 > 0)}')"

ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"
done_testing
