# stack.sh - start and stop a throwaway PostgreSQL 15 and redis-server for tests.
#
# Source it, then call `stack_start` (sets PS_STACK_DIR, PS_PG_PORT, PS_REDIS_PORT,
# PAYSTREAM_DATABASE_URL, PAYSTREAM_REDIS_URL, PS_PG_ADMIN_URL) and `stack_stop`.
# Both servers listen on 127.0.0.1 only, on ports of their own, with their data
# under one temporary folder that stack_stop removes. A server that cannot start
# is a loud failure, never a skip. PostgreSQL refuses to run as root, so as root
# its commands run as the `postgres` user that Debian's package creates.
# PS_REDIS_CONF=FILE starts redis-server with that configuration file first (the
# flags given here still win over it: set PS_REDIS_AOF=yes too for its AOF).

PS_PG_BIN=${PS_PG_BIN:-/usr/lib/postgresql/15/bin}

stack_die() {
    echo "stack: $*" >&2
    exit 1
}

stack_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stack_free_port() {
    # a port no socket on this machine uses locally, listening or connected;
    # the caller still retries, since another process may take it meanwhile
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] &&
            ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    stack_die "no free loopback port found"
}

stack_start_pg() {
    [ -x "$PS_PG_BIN/initdb" ] || stack_die "PostgreSQL 15 not found in $PS_PG_BIN (apt-get install postgresql-15)"
    local pgdata=$PS_STACK_DIR/pg
    mkdir -p "$pgdata" "$PS_STACK_DIR/sock"
    [ "$(id -u)" = 0 ] && chown postgres "$PS_STACK_DIR" "$pgdata" "$PS_STACK_DIR/sock"
    stack_as_pg "$PS_PG_BIN/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-locale \
        >"$PS_STACK_DIR/initdb.log" 2>&1 || { cat "$PS_STACK_DIR/initdb.log" >&2; stack_die "initdb failed"; }
    for _ in 1 2 3; do
        PS_PG_PORT=$(stack_free_port)
        if stack_as_pg "$PS_PG_BIN/pg_ctl" -D "$pgdata" -w -t 60 -l "$PS_STACK_DIR/pg.log" start \
            -o "-p $PS_PG_PORT -c listen_addresses=127.0.0.1 -k $PS_STACK_DIR/sock -c max_connections=200 ${PS_PG_OPTS:-}" \
            >/dev/null 2>&1; then
            break
        fi
        PS_PG_PORT=
    done
    [ -n "$PS_PG_PORT" ] || { cat "$PS_STACK_DIR/pg.log" >&2; stack_die "PostgreSQL did not start"; }
    export PS_PG_PORT
    export PS_PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$PS_PG_PORT/postgres"
    export PAYSTREAM_DATABASE_URL="postgresql://postgres@127.0.0.1:$PS_PG_PORT/paystream"
    "$PS_PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$PS_PG_ADMIN_URL" -c "CREATE DATABASE paystream" \
        >/dev/null || stack_die "cannot create database"
}

stack_start_redis() {
    command -v redis-server >/dev/null || stack_die "redis-server not found (apt-get install redis-server)"
    mkdir -p "$PS_STACK_DIR/redis"
    for _ in 1 2 3; do
        PS_REDIS_PORT=$(stack_free_port)
        redis-server ${PS_REDIS_CONF:+"$PS_REDIS_CONF"} --port "$PS_REDIS_PORT" --bind 127.0.0.1 --dir "$PS_STACK_DIR/redis" \
            --daemonize yes --pidfile "$PS_STACK_DIR/redis.pid" --logfile "$PS_STACK_DIR/redis.log" \
            --save '' --appendonly "${PS_REDIS_AOF:-no}" --appendfsync always \
            --maxmemory-policy noeviction >/dev/null 2>&1
        for _ in $(seq 1 50); do
            redis-cli -p "$PS_REDIS_PORT" ping >/dev/null 2>&1 && break 2
            sleep 0.1
        done
        PS_REDIS_PORT=
    done
    [ -n "$PS_REDIS_PORT" ] || stack_die "redis-server did not start"
    export PS_REDIS_PORT
    export PAYSTREAM_REDIS_URL="redis://127.0.0.1:$PS_REDIS_PORT/0"
}

# stack_restart_redis: start redis-server again on PS_REDIS_PORT, exactly as
# stack_start_redis did (after a test stopped it, e.g. with SHUTDOWN NOSAVE).
stack_restart_redis() {
    redis-server ${PS_REDIS_CONF:+"$PS_REDIS_CONF"} --port "$PS_REDIS_PORT" --bind 127.0.0.1 --dir "$PS_STACK_DIR/redis" \
        --daemonize yes --pidfile "$PS_STACK_DIR/redis.pid" --logfile "$PS_STACK_DIR/redis.log" \
        --save '' --appendonly "${PS_REDIS_AOF:-no}" --appendfsync always \
        --maxmemory-policy noeviction >/dev/null 2>&1
    # PS_REDIS_WAIT: tenths of a second to wait for it (a big AOF takes a while to load)
    for _ in $(seq 1 "${PS_REDIS_WAIT:-50}"); do
        redis-cli -p "$PS_REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    stack_die "redis-server did not restart on port $PS_REDIS_PORT"
}

# stack_restart_pg MODE: pg_ctl restart -m MODE (e.g. immediate: a crash and
# recovery) with the options it was started with; waits until it accepts again.
stack_restart_pg() {
    stack_as_pg "$PS_PG_BIN/pg_ctl" -D "$PS_STACK_DIR/pg" -m "$1" -w -t 60 \
        -l "$PS_STACK_DIR/pg.log" restart >/dev/null 2>&1 || stack_die "PostgreSQL did not restart"
}

stack_start() {
    PS_STACK_DIR=$(mktemp -d /tmp/paystream-test.XXXXXX) || stack_die "mktemp failed"
    chmod 755 "$PS_STACK_DIR"
    export PS_STACK_DIR
    trap stack_stop EXIT
    trap 'exit 130' INT TERM
    stack_start_pg
    stack_start_redis
}

stack_stop() {
    [ -n "${PS_STACK_DIR:-}" ] && [ -d "$PS_STACK_DIR" ] || return 0
    if [ -f "$PS_STACK_DIR/redis.pid" ]; then
        kill "$(cat "$PS_STACK_DIR/redis.pid")" 2>/dev/null
    fi
    # the stack's server, and any a test made beside it (pg_standby.sh)
    local pidfile
    for pidfile in "$PS_STACK_DIR"/*/postmaster.pid; do
        [ -f "$pidfile" ] || continue
        stack_as_pg "$PS_PG_BIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1
    done
    # servers of tests/harness/sentinel.sh, sentinels first
    local pid
    for pidfile in "$PS_STACK_DIR"/sentinel/sentinel*.pid "$PS_STACK_DIR"/sentinel/node*.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    for _ in $(seq 1 50); do
        [ -f "$PS_STACK_DIR/redis.pid" ] && kill -0 "$(cat "$PS_STACK_DIR/redis.pid")" 2>/dev/null || break
        sleep 0.1
    done
    rm -rf "$PS_STACK_DIR"
}
