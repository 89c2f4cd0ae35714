# test_metrics.sh - seeing it run (SPEC 8): ingest and two workers, each
# with its own PAYSTREAM_ADMIN_LISTEN, scraped every second by a real
# Prometheus on a free loopback port that loads deploy/monitoring/alerts.yml
# (a copy with every `for:` cut to 1s, so that the alerts can fire within the
# test). Signed events are posted through ingest, one of them poison (an
# unknown price; PAYSTREAM_MAX_ATTEMPTS=2 dead-letters it fast); then, through
# Prometheus's HTTP API: the applied count is the good events posted, one
# dead letter, the dead-letter alert fires, and every query of
# deploy/monitoring/grafana-dashboard.json evaluates. Ingest's main listener
# answers 404 for /metrics, /healthz and /readyz once the admin one is set.
# Skipped (77) without the prometheus binary (deploy/install-deps.sh).
. "$(dirname "$0")/e2e_lib.sh"

command -v prometheus >/dev/null || { echo "skip: prometheus not installed"; exit 77; }
MON=$PS_SOURCE_DIR/deploy/monitoring
PROM=

# http_code URL: the HTTP status of a GET (000: no answer)
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true; }

# wait_200 URL SECONDS: until URL answers 200 (1 on timeout)
wait_200() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ "$(http_code "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# start_ingest_admin: ingest on a free port, its admin listener on another;
# sets INGEST_URL and INGEST_ADMIN (host:port)
start_ingest_admin() {
    local port admin
    for _ in 1 2 3 4 5; do
        port=$(stack_free_port)
        admin=$(stack_free_port)
        STRIPE_WEBHOOK_SECRET=$SECRET PAYSTREAM_LISTEN=127.0.0.1:$port \
            PAYSTREAM_ADMIN_LISTEN=127.0.0.1:$admin \
            "$PS_BIN_DIR/paystream-ingest" >>"$E2E_DIR/ingest.log" 2>&1 &
        INGEST_PID=$!
        E2E_PIDS+=("$INGEST_PID")
        INGEST_URL="http://127.0.0.1:$port/webhooks/stripe"
        INGEST_ADMIN=127.0.0.1:$admin
        wait_200 "http://$INGEST_ADMIN/readyz" 10 && return 0
        kill -0 "$INGEST_PID" 2>/dev/null && break
        e2e_forget "$INGEST_PID"
    done
    echo "not ok - paystream-ingest not ready on its admin port within 10 s"
    exit 1
}

# start_worker_admin NAME [VAR=VALUE...]: a worker with its own admin port,
# in the variable NAME_ADMIN (host:port); ready once /readyz answers 200
start_worker_admin() {
    local name=$1 admin
    shift
    for _ in 1 2 3 4 5; do
        admin=$(stack_free_port)
        start_worker "$name" PAYSTREAM_ADMIN_LISTEN="127.0.0.1:$admin" "$@"
        printf -v "${name}_ADMIN" '%s' "127.0.0.1:$admin"
        wait_200 "http://127.0.0.1:$admin/readyz" 15 && return 0
        kill -0 "${!name}" 2>/dev/null && break
        e2e_forget "${!name}"
    done
    echo "not ok - worker $name not ready on its admin port within 15 s"
    exit 1
}

# start_prometheus TARGETS...: scrape ingest (first target) and the workers
# every second, alerts.yml loaded with its `for:` cut to 1s; sets PROM
start_prometheus() {
    local port ingest=$1 i
    shift
    sed -E 's/^( *for:) .*/\1 1s/' "$MON/alerts.yml" >"$E2E_DIR/alerts.yml"
    for _ in 1 2 3; do
        port=$(stack_free_port)
        cat >"$E2E_DIR/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [alerts.yml]
scrape_configs:
  - job_name: paystream-ingest
    static_configs: [{targets: ["$ingest"]}]
  - job_name: paystream-worker
    static_configs: [{targets: [$(printf '"%s",' "$@" | sed 's/,$//')]}]
EOF
        prometheus --config.file="$E2E_DIR/prometheus.yml" --storage.tsdb.path="$E2E_DIR/prom" \
            --web.listen-address="127.0.0.1:$port" >>"$E2E_DIR/prometheus.out" 2>&1 &
        E2E_PIDS+=("$!")
        PROM=http://127.0.0.1:$port
        for ((i = 0; i < 150; i++)); do
            [ "$(http_code "$PROM/-/ready")" = 200 ] && return 0
            kill -0 "$!" 2>/dev/null || break
            sleep 0.2
        done
        e2e_forget "$!"
    done
    tail -n 20 "$E2E_DIR/prometheus.out"
    echo "not ok - prometheus not ready within 30 s"
    exit 1
}

# promql QUERY: the value of an instant query's one sample ("" when no
# sample, "error: ..." when the query fails)
promql() {
    curl -s -m 10 -G "$PROM/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if r["status"] != "success":
    print("error: " + r.get("error", "?"))
elif r["data"]["result"]:
    v = r["data"]["result"][0]["value"][1]
    print(int(float(v)) if float(v).is_integer() else v)
'
}

# wait_promql NAME EXPECTED QUERY SECONDS: until the query gives EXPECTED
wait_promql() {
    local got="" i
    for ((i = 0; i < $4 * 2; i++)); do
        got=$(promql "$3")
        [ "$got" = "$2" ] && break
        sleep 0.5
    done
    check "$1" "$2" "$got"
}

e2e_setup
start_ingest_admin
start_worker_admin W1 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=2000
start_worker_admin W2 PAYSTREAM_CONCURRENCY=2 PAYSTREAM_MAX_ATTEMPTS=2 PAYSTREAM_CLAIM_IDLE_MS=2000

MAIN=${INGEST_URL%/webhooks/stripe}
check "ingest main listener: /metrics is 404 with an admin listener" 404 "$(http_code "$MAIN/metrics")"
check "ingest main listener: /healthz is 404 with an admin listener" 404 "$(http_code "$MAIN/healthz")"
check "ingest admin listener: /metrics" 200 "$(http_code "http://$INGEST_ADMIN/metrics")"
check "ingest admin listener: the webhook path is 404" 404 \
    "$(http_code "http://$INGEST_ADMIN/webhooks/stripe")"
check "worker admin listener: /healthz" 200 "$(http_code "http://$W1_ADMIN/healthz")"
check "worker admin listener: unknown path is 404" 404 "$(http_code "http://$W2_ADMIN/nothing")"

start_prometheus "$INGEST_ADMIN" "$W1_ADMIN" "$W2_ADMIN"
wait_promql "Prometheus scrapes ingest and both workers" 3 'sum(up{job=~"paystream-.*"})' 30

U=c0ffee00-0000-4000-8000-000000000019
G=$E2E_DIR/good.jsonl
P=$E2E_DIR/poison.jsonl
gen lifecycle --seed metrics --user "$U" >"$G"
gen poison --seed metrics >"$P"
post "$G" signup,pack
post "$P" unknown_price
good=$(grep -cE '"phase": "(signup|pack)"' "$G")
wait_drain $((good + 1)) 90

applied=$(sql "SELECT count(*) FROM paystream.webhook_events WHERE status = 'applied'")
check "the good events are applied or skipped, the poison failed" "$good 1" \
    "$(sql "SELECT count(*) FILTER (WHERE status IN ('applied', 'skipped')) || ' ' ||
                   count(*) FILTER (WHERE status = 'failed') FROM paystream.webhook_events")"
wait_promql "events_total: applied over both workers = applied in the ledger" "$applied" \
    'sum(paystream_worker_events_total{outcome="applied"})' 20
wait_promql "events_total: applied + skipped = the good events posted" "$good" \
    'sum(paystream_worker_events_total{outcome=~"applied|skipped"})' 20
wait_promql "events_total: the poison dead-lettered once, as customer.subscription.created" 1 \
    'sum(paystream_worker_events_total{outcome="dead",type="customer.subscription.created"})' 20
wait_promql "events_total: the poison failed twice (PAYSTREAM_MAX_ATTEMPTS=2)" 2 \
    'sum(paystream_worker_events_total{outcome="failed"})' 20
wait_promql "retries_total: one retry before the dead letter" 1 \
    'sum(paystream_worker_retries_total)' 20
wait_promql "dead_letters: 1, as both workers say" 2 'count(paystream_worker_dead_letters == 1)' 20
wait_promql "group pending: 0 once drained" 0 'max(paystream_worker_group_pending)' 20
wait_promql "group lag: 0 once drained" 0 'max(paystream_worker_group_lag)' 20
wait_promql "waiting events: none" 0 'max(paystream_worker_waiting_events)' 20
wait_promql "apply_seconds: transactions observed = batch_events count" 1 \
    'sum(paystream_worker_apply_seconds_count) == bool sum(paystream_worker_batch_events_count)' 20
# a transaction's events include the ones that failed alone in it (the poison's attempts)
wait_promql "batch_events: its sum counts at least every event committed" 1 \
    "sum(paystream_worker_batch_events_sum) >= bool $good" 20
wait_promql "apply_seconds: +Inf bucket = count" 1 \
    'sum(paystream_worker_apply_seconds_bucket{le="+Inf"}) == bool sum(paystream_worker_apply_seconds_count)' 20
wait_promql "apply_seconds: buckets are cumulative" 0 \
    'count(paystream_worker_apply_seconds_bucket{le="0.01"} > on(instance) paystream_worker_apply_seconds_bucket{le="0.1"}) or vector(0)' 20
wait_promql "consumers: 2 per worker" 4 'sum(paystream_worker_consumers)' 20
wait_promql "redis_up and postgres_up on both workers" 4 \
    'sum(paystream_worker_redis_up) + sum(paystream_worker_postgres_up)' 20
wait_promql "start_time_seconds of ingest and both workers" 3 \
    'count(paystream_worker_start_time_seconds > 1.7e9) + count(paystream_ingest_start_time_seconds > 1.7e9)' 20
wait_promql "ingest: 200s for every event posted (scrapes of the admin listener not counted)" \
    "$((good + 1))" 'sum(paystream_ingest_requests_total{code="200"})' 20

# the dead-letter alert fires (its `for:` cut to 1s in the test's copy)
state=""
for ((i = 0; i < 60; i++)); do
    state=$(curl -s -m 5 "$PROM/api/v1/alerts" | python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin)["data"]["alerts"] if x["labels"]["alertname"] == "PaystreamDeadLetters"]
print(a[0]["state"] if a else "none")')
    [ "$state" = firing ] && break
    sleep 0.5
done
check "alert PaystreamDeadLetters fires" firing "$state"
check "no target-down or Redis/PostgreSQL-down alert" "" "$(curl -s -m 5 "$PROM/api/v1/alerts" | python3 -c '
import json, sys
print(" ".join(sorted({x["labels"]["alertname"] for x in json.load(sys.stdin)["data"]["alerts"]
                       if x["labels"]["alertname"] in ("PaystreamTargetDown", "PaystreamRedisDown",
                                                       "PaystreamPostgresDown")})))')"

# every query of the dashboard evaluates without error, and most have data
bad=$(python3 - "$MON/grafana-dashboard.json" "$PROM" <<'PY'
import json, sys, urllib.parse, urllib.request
d = json.load(open(sys.argv[1]))
bad = []
for p in d["panels"]:
    for t in p.get("targets", []):
        q = t["expr"].replace("$__rate_interval", "1m").replace("$__interval", "1m")
        url = sys.argv[2] + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            r = json.load(urllib.request.urlopen(url, timeout=10))
            if r["status"] != "success":
                bad.append("%s: %s" % (q, r.get("error")))
        except Exception as e:  # a 400 for a query that does not parse
            bad.append("%s: %s" % (q, e))
print("; ".join(bad))
PY
)
check "every query of grafana-dashboard.json evaluates" "" "$bad"

# a worker under the least-privilege login (paystream_worker) reads the
# waiting table's summary through ps_waiting_summary, and PostgreSQL as up
sql "CREATE ROLE metrics_worker_login LOGIN IN ROLE paystream_worker" >/dev/null
start_worker_admin W3 PAYSTREAM_CONCURRENCY=1 \
    PAYSTREAM_DATABASE_URL="${PAYSTREAM_DATABASE_URL/postgres@/metrics_worker_login@}"
W3_TEXT=$(curl -s -m 5 "http://$W3_ADMIN/metrics")
check "least-privilege worker: postgres_up 1" yes \
    "$(grep -qx 'paystream_worker_postgres_up 1' <<<"$W3_TEXT" && echo yes || echo no)"
check "least-privilege worker: the waiting count and the oldest age, from the database" "yes yes" \
    "$(grep -qx 'paystream_worker_waiting_events 0' <<<"$W3_TEXT" && echo yes || echo no) $(
        grep -q oldest_waiting_age <<<"$W3_TEXT" && echo yes || echo no)"
stop_worker "$W3"

# a sample of a worker's /metrics, for the log
echo "--- GET http://$W1_ADMIN/metrics (counters at 0 left out)"
curl -s -m 5 "http://$W1_ADMIN/metrics" | grep -vE '^# HELP|_total\{.*\} 0$' | head -80

stop_worker "$W1"
stop_worker "$W2"
done_testing
