# test_ingest_sigterm.sh - SIGTERM during a burst of concurrent webhooks: the
# listening socket closes, the requests already in hand (some of them held
# waiting for a paused Redis) are finished, the process exits 0, and every
# event that was answered 200 is in the stream. Also: SO_REUSEPORT lets a
# second process share the port and take over.
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

N=300
RESULTS="$ING_DIR/results"
: >"$RESULTS"
for i in $(seq 1 $N); do event_file "evt_burst_$i" >/dev/null; done

# post_one FILE: post one event, append "ID STATUS" to $RESULTS
post_one() {
    local id code
    id=$(basename "$1" .json)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 -H "Stripe-Signature: $(sign "$ING_SECRET" "$1")" \
        --data-binary "@$1" "$ING_URL/webhooks/stripe") || true
    echo "$id $code" >>"$RESULTS"
}
export -f post_one sign
export ING_SECRET RESULTS

# ids_in_stream: every event id in the stream, sorted
ids_in_stream() {
    rcli --raw EVAL "local out = {}
        for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
          local f = e[2]
          for i = 1, #f, 2 do if f[i] == 'id' then out[#out + 1] = f[i + 1] end end
        end
        return out" 1 "$ING_STREAM" | sort
}

ingest_start PAYSTREAM_REDIS_TIMEOUT_MS=3000
ingest_wait_ready || check "ready" ready "not ready"
export ING_URL

find "$ING_DIR" -name 'evt_burst_*.json' -print0 | xargs -0 -P 16 -n 1 bash -c 'post_one "$1"' _ &
burst=$!
for _ in $(seq 1 200); do [ "$(xlen)" -ge 60 ] && break; sleep 0.05; done
# hold the next XADDs in Redis so that requests are in flight at SIGTERM
rcli CLIENT PAUSE 800 WRITE >/dev/null
sleep 0.3
kill -TERM "$ING_PID"
wait "$burst" || true
ingest_wait_exit "$ING_PID" 30 && st=0 || st=timeout
[ "$st" = 0 ] && { wait "$ING_PID" || st=$?; }
check "SIGTERM during the burst: exit 0" 0 "$st"

log="$ING_DIR/ingest-0.log"
inflight=$(grep -o 'finishing [0-9]* requests in flight' "$log" | grep -o '[0-9]*' || echo 0)
check "some requests were in flight at SIGTERM ($inflight)" 1 $((inflight > 0))
ok=$(awk '$2 == 200' "$RESULTS" | wc -l)
check "every request got an answer or a refused connection" "$N" "$(wc -l <"$RESULTS")"
check "some were answered 200 ($ok)" 1 $((ok > 60))
awk '$2 == 200 { print $1 }' "$RESULTS" | sort >"$ING_DIR/ok.ids"
ids_in_stream >"$ING_DIR/stream.ids"
check "every event answered 200 is in the stream" "" "$(comm -23 "$ING_DIR/ok.ids" "$ING_DIR/stream.ids" | head -5 | tr '\n' ' ')"
check "only 200, 503 or no connection (000) as answers" "" \
    "$(awk '$2 != 200 && $2 != 503 && $2 != "000" { print }' "$RESULTS" | head -3 | tr '\n' ' ')"
check "nothing was answered 503: the paused XADDs were waited for" 0 "$(awk '$2 == 503' "$RESULTS" | wc -l)"

# ---- SO_REUSEPORT: two processes on one port; one drains, the other serves on
ingest_start
first=$ING_PID
ING_NEXT_PORT=$ING_PORT
ingest_start
check "a second process listens on the same port" 0 "$(kill -0 "$ING_PID" 2>/dev/null; echo $?)"
second=$ING_PID
ingest_wait_ready || true
ingest_stop "$first"
check "the first one drains and exits 0" 0 "$ING_EXIT"
check "the port is still served, by the second" '200 {"received":true}' "$(post_signed "$(event_file evt_reuseport)")"
ingest_stop "$second"
check "the second exits 0" 0 "$ING_EXIT"
done_testing
