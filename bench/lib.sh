# shellcheck shell=bash
# lib.sh - what bench/run, bench/e2e/run and bench/deduct/run share: logging, the
# Release build, and the private PostgreSQL 15 + Redis they measure against.
#
# Source it after setting BENCH_NAME. The stack is tests/harness/stack.sh's, with
# fsync, synchronous_commit and track_commit_timestamp on (and track_wal_io_timing,
# for the time WAL flushes take), and WAL segments ready for reuse, as on a
# server in service (bench_wal_warm). A script started by
# bench/run finds BENCH_STACK_SHARED=1 and the stack's variables in its
# environment and uses that stack instead of starting its own; only the script
# that started a stack stops it.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PG_OPTS="-c fsync=on -c synchronous_commit=on -c track_commit_timestamp=on -c track_wal_io_timing=on -c min_wal_size=2GB -c max_wal_size=4GB"
# shellcheck source=../tests/harness/stack.sh
. "$BENCH_ROOT/tests/harness/stack.sh"
# shellcheck source=events.sh
. "$BENCH_ROOT/bench/events.sh"

bench_log() { printf '[%s %s] %s\n' "${BENCH_NAME:-bench}" "$(date +%T)" "$*" >&2; }
bench_die() {
    bench_log "error: $*"
    exit 1
}

# bench_build DIR: paystream-ingest, -worker and paystreamctl in Release into DIR,
# unless PS_BIN_DIR already names a directory holding them; sets PS_BIN_DIR
bench_build() {
    local dir=$1 p
    if [ -n "${PS_BIN_DIR:-}" ]; then
        for p in paystream-ingest paystream-worker paystreamctl; do
            [ -x "$PS_BIN_DIR/$p" ] || bench_die "PS_BIN_DIR=$PS_BIN_DIR has no $p"
        done
        return 0
    fi
    mkdir -p "$dir"
    bench_log "building paystream (Release) in $dir"
    if ! { cmake -S "$BENCH_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DPAYSTREAM_TESTS=OFF &&
        cmake --build "$dir" -j"$(nproc)" --target paystream-ingest paystream-worker paystreamctl; } \
        >"$dir/bench-build.log" 2>&1; then
        tail -20 "$dir/bench-build.log" >&2
        bench_die "build failed (log: $dir/bench-build.log)"
    fi
    export PS_BIN_DIR=$dir/bin
}

# bench_stack: use the stack of an outer bench/run, or start one; stack_start
# sets traps that stop it at exit, and a script's own cleanup calls bench_stack_stop
bench_stack() {
    [ "${BENCH_STACK_SHARED:-}" = 1 ] && [ -n "${PS_PG_PORT:-}" ] && [ -n "${PS_REDIS_PORT:-}" ] && return 0
    PS_PG_OPTS=$BENCH_PG_OPTS stack_start
    BENCH_OWN_STACK=1
    export BENCH_STACK_SHARED=1
    bench_wal_warm
}

# bench_wal_warm: a fresh cluster has no WAL segments to reuse. Each new 16 MB
# segment is then written full of zeros and fsynced by the backend that needs
# it, while every committing session waits: a 20-60 ms stall every 2-3 s at
# 6,000 events/s, which a server in service, recycling its segments, does not
# have. So write 1 GB of WAL once and checkpoint: min_wal_size keeps the
# segments for reuse (about 6 s).
bench_wal_warm() {
    "$PS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PS_PG_ADMIN_URL" \
        -c "CREATE TABLE bench_wal_warm AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 4000000) g" \
        -c "DROP TABLE bench_wal_warm" -c "CHECKPOINT" >/dev/null || bench_die "WAL warm-up failed"
}
bench_stack_stop() { [ "${BENCH_OWN_STACK:-}" != 1 ] || stack_stop; }

# bench_database NAME: a fresh database NAME on the stack, migrated, with the test
# plans loaded; exports PAYSTREAM_DATABASE_URL for it
bench_database() {
    local psql=("$PS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PS_PG_ADMIN_URL")
    PGOPTIONS="-c client_min_messages=warning" "${psql[@]}" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null ||
        bench_die "cannot create database $1"
    export PAYSTREAM_DATABASE_URL="postgresql://postgres@127.0.0.1:$PS_PG_PORT/$1"
    export PAYSTREAM_SQL_DIR=$BENCH_ROOT/sql
    "$PS_BIN_DIR/paystreamctl" migrate >/dev/null || bench_die "paystreamctl migrate failed on $1"
    "$PS_BIN_DIR/paystreamctl" plans load "$BENCH_ROOT/tests/events/plans.txt" >/dev/null ||
        bench_die "paystreamctl plans load failed on $1"
}
