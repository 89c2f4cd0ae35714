#!/usr/bin/env bash
# local.sh - the README's run command: the whole of paystream on this machine.
#
#   deploy/local.sh up     install what is missing, build, start a private
#                          PostgreSQL and Redis under .stack/, migrate, load the
#                          example plans, start ingest and two workers, run the
#                          demo purchase, print the balance; leaves it running
#   deploy/local.sh down   stop exactly what `up` started, keep the data
#   deploy/local.sh status what is running
#
# Everything lives under .stack/ in the project folder (data, logs, pids).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STACK=$ROOT/.stack
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=${PAYSTREAM_LOCAL_PG_PORT:-55432}
REDIS_PORT=${PAYSTREAM_LOCAL_REDIS_PORT:-56379}
INGEST_PORT=${PAYSTREAM_LOCAL_INGEST_PORT:-8080}
SECRET_FILE=$STACK/webhook-secret
BIN=$ROOT/build-release/bin

# the private cluster's superuser migrates; the workers and the operator's
# commands log in under their own roles (made by logins() below); test mode only
export PAYSTREAM_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/paystream"
WORKER_URL="postgresql://paystream_worker_login@127.0.0.1:$PG_PORT/paystream"
OPERATOR_URL="postgresql://paystream_operator_login@127.0.0.1:$PG_PORT/paystream"
export PAYSTREAM_LIVEMODE=test
export PAYSTREAM_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
say() { printf '==> %s\n' "$*"; }

# PostgreSQL runs as `postgres` (it refuses root): it must be able to reach .stack/
open_path_for_postgres() {
    [ "$(id -u)" = 0 ] || return 0
    local d=$STACK
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        if ! runuser -u postgres -- test -x "$d"; then
            chmod o+x "$d"
            say "gave others traverse (o+x) permission on $d so PostgreSQL can reach .stack/"
        fi
    done
}

start_pg() {
    mkdir -p "$STACK/pg" "$STACK/run" "$STACK/log"
    if [ "$(id -u)" = 0 ]; then chown postgres "$STACK/pg" "$STACK/run" "$STACK/log"; fi
    if [ ! -f "$STACK/pg/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$STACK/pg" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$STACK/pg" status >/dev/null 2>&1; then
        as_pg "$PG_BIN/pg_ctl" -D "$STACK/pg" -w -l "$STACK/log/postgresql.log" start \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $STACK/run" >/dev/null
    fi
    "$PG_BIN/psql" -X -q -At "postgresql://postgres@127.0.0.1:$PG_PORT/postgres" \
        -c "SELECT 1 FROM pg_database WHERE datname = 'paystream'" | grep -q 1 ||
        "$PG_BIN/psql" -X -q "postgresql://postgres@127.0.0.1:$PG_PORT/postgres" \
            -c "CREATE DATABASE paystream"
    say "PostgreSQL 15 on 127.0.0.1:$PG_PORT (data in .stack/pg)"
}

start_redis() {
    mkdir -p "$STACK/redis"
    if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        redis-server "$ROOT/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 \
            --dir "$STACK/redis" --daemonize yes --pidfile "$STACK/redis.pid" \
            --logfile "$STACK/log/redis.log"
        for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    say "Redis on 127.0.0.1:$REDIS_PORT (AOF, appendfsync always; data in .stack/redis)"
}

# logins: one per program, in its group (the cluster trusts loopback, no password)
logins() {
    "$PG_BIN/psql" -X -q "$PAYSTREAM_DATABASE_URL" -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'paystream_worker_login') THEN
            CREATE ROLE paystream_worker_login LOGIN IN ROLE paystream_worker; END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'paystream_operator_login') THEN
            CREATE ROLE paystream_operator_login LOGIN IN ROLE paystream_operator; END IF;
        END \$\$"
}

# start NAME COMMAND...: a background process with its pid in .stack/NAME.pid
start() {
    local name=$1
    shift
    if [ -f "$STACK/$name.pid" ] && kill -0 "$(cat "$STACK/$name.pid")" 2>/dev/null; then return 0; fi
    nohup "$@" >>"$STACK/log/$name.log" 2>&1 &
    echo $! >"$STACK/$name.pid"
}

start_paystream() {
    [ -f "$SECRET_FILE" ] || { echo "whsec_local_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$SECRET_FILE"; chmod 600 "$SECRET_FILE"; }
    start ingest env PAYSTREAM_SECRET_FILE="$SECRET_FILE" PAYSTREAM_LISTEN="127.0.0.1:$INGEST_PORT" "$BIN/paystream-ingest"
    start worker1 env PAYSTREAM_DATABASE_URL="$WORKER_URL" "$BIN/paystream-worker"
    start worker2 env PAYSTREAM_DATABASE_URL="$WORKER_URL" "$BIN/paystream-worker"
    for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fs "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null || { tail -5 "$STACK/log/ingest.log"; echo "ingest did not become ready" >&2; exit 1; }
    say "paystream-ingest on http://127.0.0.1:$INGEST_PORT/webhooks/stripe, two workers"
}

demo() {
    local user=$1
    "$BIN/paystreamctl" trigger lifecycle --url "http://127.0.0.1:$INGEST_PORT/webhooks/stripe" \
        --user "$user" --secret "$(cat "$SECRET_FILE")"
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" XPENDING paystream:events paystream | head -1)" = 0 ] &&
            [ "$(redis-cli -p "$REDIS_PORT" XINFO GROUPS paystream:events | grep -A1 '^lag$' | tail -1)" = 0 ] && break
        sleep 0.2
    done
}

up() {
    deploy/install-deps.sh
    say "building (release) into build-release/"
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPAYSTREAM_TESTS=OFF >/dev/null
    cmake --build build-release -j"$(nproc)" >/dev/null
    mkdir -p "$STACK/log"
    open_path_for_postgres
    start_pg
    start_redis
    "$BIN/paystreamctl" migrate
    "$BIN/paystreamctl" plans load deploy/plans.example
    logins
    start_paystream
    local user=${PAYSTREAM_DEMO_USER:-$(cat /proc/sys/kernel/random/uuid)}
    say "demo: the lifecycle of user $user (subscription, credit pack, renewal, upgrade, refund, cancellation)"
    demo "$user"
    "$BIN/paystreamctl" --database-url "$OPERATOR_URL" balance "$user" --history 20
    "$BIN/paystreamctl" --database-url "$OPERATOR_URL" reconcile
    echo
    say "paystream is running. Logs: .stack/log/. Stop it with: deploy/local.sh down"
}

down() {
    for name in worker1 worker2 ingest; do
        if [ -f "$STACK/$name.pid" ]; then
            kill -TERM "$(cat "$STACK/$name.pid")" 2>/dev/null || true
        fi
    done
    for name in worker1 worker2 ingest; do
        if [ -f "$STACK/$name.pid" ]; then
            for _ in $(seq 1 100); do kill -0 "$(cat "$STACK/$name.pid")" 2>/dev/null || break; sleep 0.1; done
            rm -f "$STACK/$name.pid"
        fi
    done
    if [ -f "$STACK/redis.pid" ]; then
        redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill "$(cat "$STACK/redis.pid")" 2>/dev/null || true
        rm -f "$STACK/redis.pid"
    fi
    if [ -f "$STACK/pg/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$STACK/pg" -w -m fast stop >/dev/null
    fi
    say "stopped; data kept in .stack/ (rm -rf .stack to start afresh)"
}

status() {
    for name in ingest worker1 worker2 redis; do
        if [ -f "$STACK/$name.pid" ] && kill -0 "$(cat "$STACK/$name.pid")" 2>/dev/null; then
            echo "$name: running (pid $(cat "$STACK/$name.pid"))"
        else
            echo "$name: stopped"
        fi
    done
    as_pg "$PG_BIN/pg_ctl" -D "$STACK/pg" status >/dev/null 2>&1 && echo "postgresql: running" || echo "postgresql: stopped"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*) echo "usage: deploy/local.sh up|down|status" >&2; exit 2 ;;
esac
