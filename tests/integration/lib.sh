# lib.sh - helpers for integration test scripts (sourced by test_*.sh).
# The stack (PostgreSQL + Redis) is already running: see tests/harness/with-stack.
# PS_BIN_DIR holds paystreamctl, paystream-ingest, paystream-worker.
set -euo pipefail

PSQL=(/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -At)
CTL="$PS_BIN_DIR/paystreamctl"
ps_failures=0
ps_checks=0

# sql QUERY: run as the superuser on the paystream database, print the result
sql() { "${PSQL[@]}" "$PAYSTREAM_DATABASE_URL" -c "$1"; }

# check NAME EXPECTED ACTUAL
check() {
    ps_checks=$((ps_checks + 1))
    if [ "$2" = "$3" ]; then
        echo "ok - $1"
    else
        echo "not ok - $1: expected [$2], got [$3]"
        ps_failures=$((ps_failures + 1))
    fi
}

# check_exit NAME EXPECTED_STATUS COMMAND...
check_exit() {
    local name=$1 want=$2 got=0
    shift 2
    "$@" >/dev/null 2>&1 || got=$?
    check "$name (exit status)" "$want" "$got"
}

# done_testing: the closing line and exit status
done_testing() {
    echo "$((ps_checks - ps_failures)) passed, $ps_failures failed"
    [ "$ps_failures" = 0 ]
}
