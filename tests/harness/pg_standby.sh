# pg_standby.sh - a PostgreSQL 15 primary with a synchronous streaming standby,
# for failover tests. Source it after stack.sh, inside a started stack.
#
# pg_pair_start makes both under $PS_STACK_DIR (primary: initdb; standby:
# pg_basebackup -R from it), each on a free loopback port, and returns once the
# standby streams as the synchronous one (synchronous_standby_names = '*' on the
# primary only: a promoted standby commits alone). It sets PS_PGP_PORT,
# PS_PGS_PORT (primary, standby), PS_PGP_URL, PS_PGS_URL (each server's
# postgres database, one host) and PS_PAIR_URL (the paystream database through
# both hosts, target_session_attrs=read-write), and creates that database.
# pg_pair_kill_primary is a crash of the primary's machine: the postmaster and
# every child get SIGKILL at once. pg_pair_promote turns the standby into the
# primary; pg_pair_rebuild then makes a new standby of it in the lost one's
# place (same port: the URL stays right), so that it can fail over again. The
# roles are kept in $PS_STACK_DIR/pair.primary and pair.standby (data
# directories). stack_stop stops both. A server that cannot start is a loud
# failure.

# pg_pair_ctl DIR ARGS...: pg_ctl on that data directory, as the postgres user
pg_pair_ctl() {
    local dir=$1
    shift
    stack_as_pg "$PS_PG_BIN/pg_ctl" -D "$dir" "$@"
}

# pg_pair_server NAME DIR [PORT]: start the server of DIR on PORT or a free
# port (NAME.port)
pg_pair_server() {
    local name=$1 dir=$2 port
    for _ in 1 2 3; do
        port=${3:-$(stack_free_port)}
        if pg_pair_ctl "$dir" -w -t 60 -l "$PS_STACK_DIR/$name.log" start \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $PS_STACK_DIR/sock -c max_connections=100" \
            >/dev/null 2>&1; then
            echo "$port" >"$PS_STACK_DIR/$name.port"
            return 0
        fi
    done
    cat "$PS_STACK_DIR/$name.log" >&2
    stack_die "PostgreSQL $name did not start"
}

# pg_pair_sql URL QUERY: one value
pg_pair_sql() { "$PS_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }

# pg_pair_role primary|standby: that server's data directory
pg_pair_role() { cat "$PS_STACK_DIR/pair.$1"; }

# pg_pair_url DIR: the postgres database of the server of DIR
pg_pair_url() { echo "postgresql://postgres@127.0.0.1:$(cat "$PS_STACK_DIR/$(basename "$1").port")/postgres"; }

# pg_pair_standby FROM_DIR DIR [PORT]: DIR becomes a standby of the primary
# of FROM_DIR, waited for until it streams as the synchronous one
pg_pair_standby() {
    local from=$1 dir=$2 state=
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    stack_as_pg "$PS_PG_BIN/pg_basebackup" -D "$dir" -h 127.0.0.1 \
        -p "$(cat "$PS_STACK_DIR/$(basename "$from").port")" -U postgres -R -X stream -c fast \
        >"$PS_STACK_DIR/$(basename "$dir")-basebackup.log" 2>&1 ||
        { cat "$PS_STACK_DIR/$(basename "$dir")-basebackup.log" >&2; stack_die "pg_basebackup failed"; }
    # the primary's own file, after the copy: only it waits for a standby
    echo "synchronous_standby_names = '*'" >>"$from/postgresql.conf"
    pg_pair_ctl "$from" reload >/dev/null || stack_die "cannot reload the primary"
    pg_pair_server "$(basename "$dir")" "$dir" "${3:-}"
    for _ in $(seq 1 100); do
        state=$(pg_pair_sql "$(pg_pair_url "$from")" "SELECT string_agg(sync_state, ',') FROM pg_stat_replication" 2>/dev/null || true)
        [ "$state" = sync ] && break
        sleep 0.1
    done
    [ "$state" = sync ] || stack_die "the standby is not streaming synchronously ($state)"
    echo "$from" >"$PS_STACK_DIR/pair.primary"
    echo "$dir" >"$PS_STACK_DIR/pair.standby"
}

pg_pair_start() {
    local p=$PS_STACK_DIR/pgp s=$PS_STACK_DIR/pgs
    mkdir -p "$p" "$PS_STACK_DIR/sock"
    [ "$(id -u)" = 0 ] && chown postgres "$PS_STACK_DIR" "$p" "$PS_STACK_DIR/sock"
    stack_as_pg "$PS_PG_BIN/initdb" -D "$p" -U postgres -A trust -E UTF8 --no-locale \
        >"$PS_STACK_DIR/pgp-initdb.log" 2>&1 ||
        { cat "$PS_STACK_DIR/pgp-initdb.log" >&2; stack_die "initdb of the primary failed"; }
    pg_pair_server pgp "$p"
    pg_pair_standby "$p" "$s"
    PS_PGP_PORT=$(cat "$PS_STACK_DIR/pgp.port")
    PS_PGS_PORT=$(cat "$PS_STACK_DIR/pgs.port")
    PS_PGP_URL=$(pg_pair_url "$p")
    PS_PGS_URL=$(pg_pair_url "$s")
    pg_pair_sql "$PS_PGP_URL" "CREATE DATABASE paystream" >/dev/null || stack_die "cannot create database"
    PS_PAIR_URL="postgresql://postgres@127.0.0.1:$PS_PGP_PORT,127.0.0.1:$PS_PGS_PORT/paystream?target_session_attrs=read-write"
    export PS_PGP_PORT PS_PGS_PORT PS_PGP_URL PS_PGS_URL PS_PAIR_URL
}

# pg_pair_start_print: pg_pair_start, then PS_PAIR_URL on stdout (for callers
# that are not shell scripts)
pg_pair_start_print() {
    pg_pair_start >&2
    echo "$PS_PAIR_URL"
}

# pg_pair_kill_primary: SIGKILL the primary's postmaster and all its children
pg_pair_kill_primary() {
    local pm pids dir
    dir=$(pg_pair_role primary)
    pm=$(head -n 1 "$dir/postmaster.pid")
    pids=$(ps -o pid= --ppid "$pm" | tr -s ' \n' ' ')
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL "$pm" $pids
    for _ in $(seq 1 50); do
        case $(ps -o stat= -p "$pm") in
        "" | Z*) # gone, or a zombie: its pid file must not outlive it (stack_stop
            # would signal whatever process gets that pid next)
            rm -f "$dir/postmaster.pid"
            return 0
            ;;
        esac
        sleep 0.1
    done
    stack_die "the primary's postmaster ($pm) survived SIGKILL"
}

# pg_pair_promote: the standby becomes the primary (waits until it is); the
# lost primary's directory is the standby's place now (pg_pair_rebuild)
pg_pair_promote() {
    local p s
    p=$(pg_pair_role primary)
    s=$(pg_pair_role standby)
    pg_pair_ctl "$s" -w -t 60 promote >/dev/null || stack_die "pg_ctl promote failed"
    echo "$s" >"$PS_STACK_DIR/pair.primary"
    echo "$p" >"$PS_STACK_DIR/pair.standby"
}

# pg_pair_rebuild: after pg_pair_promote, a new standby of the new primary in
# the lost primary's directory and on its port
pg_pair_rebuild() {
    local dir
    dir=$(pg_pair_role standby)
    rm -rf "$dir"
    pg_pair_standby "$(pg_pair_role primary)" "$dir" "$(cat "$PS_STACK_DIR/$(basename "$dir").port")"
}

# pg_pair_restart_primary MODE: pg_ctl restart -m MODE of the primary (with
# the options it was started with); waits until it accepts again
pg_pair_restart_primary() {
    local p
    p=$(pg_pair_role primary)
    pg_pair_ctl "$p" -m "$1" -w -t 60 -l "$PS_STACK_DIR/$(basename "$p").log" restart >/dev/null 2>&1 ||
        stack_die "the primary did not restart"
}

# pg_pair_stop: stop whichever of the two still runs (stack_stop does too)
pg_pair_stop() {
    local d
    for d in "$PS_STACK_DIR/pgp" "$PS_STACK_DIR/pgs"; do
        [ -f "$d/postmaster.pid" ] && pg_pair_ctl "$d" -m immediate -w stop >/dev/null 2>&1
    done
    return 0
}
