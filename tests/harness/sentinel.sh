# sentinel.sh - a throwaway replicated Redis under Sentinel, for the failover
# tests: one master, PS_SENTINEL_REPLICAS replicas (1) and three sentinels.
#
# Source it after stack.sh (for stack_free_port, stack_die and PS_STACK_DIR),
# then `sentinel_start`: it sets SENTINEL_URL (redis-sentinel://...#NAME for
# PAYSTREAM_REDIS_URL), SENTINEL_NAME, NODE_PORT[i] (node 0 starts as the
# master) and SENTINEL_PORT[i]. Every server listens on 127.0.0.1 only, on a
# port of its own, keeps its files under $PS_STACK_DIR/sentinel, and is
# stopped by `sentinel_stop_all`. A server that cannot start is a loud
# failure. Short timeouts make a failover take seconds: down after 2 s (a
# sentinel PINGs once a second, so 1 s would let a fresh master whose first
# answer is a little late be failed over again).

SENTINEL_DIR=
SENTINEL_NAME=paystream
SENTINEL_URL=
NODE_PORT=()
SENTINEL_PORT=()

# node_conf I: the configuration file of data node I (written once)
sentinel_node_conf() {
    local i=$1 conf=$SENTINEL_DIR/node$1.conf
    [ -f "$conf" ] && { echo "$conf"; return; }
    mkdir -p "$SENTINEL_DIR/node$i"
    cat >"$conf" <<EOF
port ${NODE_PORT[$i]}
bind 127.0.0.1
dir $SENTINEL_DIR/node$i
pidfile $SENTINEL_DIR/node$i.pid
logfile $SENTINEL_DIR/node$i.log
daemonize yes
save ""
appendonly yes
appendfsync always
maxmemory-policy noeviction
repl-diskless-sync yes
repl-diskless-sync-delay 0
EOF
    [ "$i" = 0 ] || echo "replicaof 127.0.0.1 ${NODE_PORT[0]}" >>"$conf"
    echo "$conf"
}

# sentinel_node_start I: start (or restart, as it was configured last: the
# sentinels rewrite the file) data node I; waits until it answers PING
# (PS_REDIS_WAIT tenths of a second, 100 unless set: a big AOF takes a while)
sentinel_node_start() {
    local conf
    conf=$(sentinel_node_conf "$1")
    redis-server "$conf" >/dev/null 2>&1 || stack_die "redis-server node $1 did not start"
    for _ in $(seq 1 "${PS_REDIS_WAIT:-100}"); do
        redis-cli -p "${NODE_PORT[$1]}" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    tail -n 20 "$SENTINEL_DIR/node$1.log" >&2
    stack_die "redis-server node $1 not answering on port ${NODE_PORT[$1]}"
}

# sentinel_node_pid I: the pid of data node I (empty if none)
sentinel_node_pid() { cat "$SENTINEL_DIR/node$1.pid" 2>/dev/null || true; }

# sentinel_node_kill I: SIGKILL data node I (a lost machine); waits until gone
sentinel_node_kill() {
    local pid
    pid=$(sentinel_node_pid "$1")
    [ -n "$pid" ] || stack_die "node $1 has no pid"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$SENTINEL_DIR/node$1.pid"
}

# sentinel_node_stop I: stop data node I without saving
sentinel_node_stop() {
    redis-cli -p "${NODE_PORT[$1]}" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
        redis-cli -p "${NODE_PORT[$1]}" ping >/dev/null 2>&1 || break
        sleep 0.1
    done
    rm -f "$SENTINEL_DIR/node$1.pid"
}

sentinel_start_one() {
    local i=$1 conf=$SENTINEL_DIR/sentinel$1.conf
    cat >"$conf" <<EOF
port ${SENTINEL_PORT[$i]}
bind 127.0.0.1
dir $SENTINEL_DIR
pidfile $SENTINEL_DIR/sentinel$i.pid
logfile $SENTINEL_DIR/sentinel$i.log
daemonize yes
sentinel monitor $SENTINEL_NAME 127.0.0.1 ${NODE_PORT[0]} 2
sentinel down-after-milliseconds $SENTINEL_NAME 2000
sentinel failover-timeout $SENTINEL_NAME 5000
sentinel parallel-syncs $SENTINEL_NAME 1
EOF
    redis-sentinel "$conf" >/dev/null 2>&1 || stack_die "redis-sentinel $i did not start"
    for _ in $(seq 1 100); do
        redis-cli -p "${SENTINEL_PORT[$i]}" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    tail -n 20 "$SENTINEL_DIR/sentinel$i.log" >&2
    stack_die "redis-sentinel $i not answering on port ${SENTINEL_PORT[$i]}"
}

# sentinel_ask I COMMAND...: a command to sentinel I
sentinel_ask() {
    local i=$1
    shift
    redis-cli -p "${SENTINEL_PORT[$i]}" "$@" 2>/dev/null
}

# sentinel_master_port: the master's port as the first sentinel that answers says
sentinel_master_port() {
    local i out
    for i in "${!SENTINEL_PORT[@]}"; do
        out=$(sentinel_ask "$i" SENTINEL get-master-addr-by-name "$SENTINEL_NAME" | sed -n 2p)
        [ -n "$out" ] && { echo "$out"; return 0; }
    done
    return 1
}

# sentinel_field I FIELD: a field of SENTINEL MASTER as sentinel I sees it
sentinel_field() {
    sentinel_ask "$1" SENTINEL MASTER "$SENTINEL_NAME" | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'
}

# node_role PORT: "master" or "slave" (empty when it does not answer)
node_role() { redis-cli -p "$1" ROLE 2>/dev/null | head -n 1; }

# node_online_replicas PORT: replicas the node at PORT streams to
node_online_replicas() {
    redis-cli -p "$1" INFO replication 2>/dev/null | grep -c '^slave[0-9]*:.*state=online' || true
}

# sentinel_wait SECONDS COMMAND...: until COMMAND succeeds (1 on timeout)
sentinel_wait() {
    local secs=$1 start=$SECONDS
    shift
    until "$@"; do
        [ $((SECONDS - start)) -lt "$secs" ] || return 1
        sleep 0.1
    done
}

sentinels_know_all() {
    local i want=$((${#SENTINEL_PORT[@]} - 1)) replicas=$((${#NODE_PORT[@]} - 1))
    for i in "${!SENTINEL_PORT[@]}"; do
        [ "$(sentinel_field "$i" num-other-sentinels)" = "$want" ] || return 1
        [ "$(sentinel_field "$i" num-slaves)" = "$replicas" ] || return 1
    done
}

# sentinel_start: master, replicas and three sentinels that know each other
sentinel_start() {
    local i n=$((1 + ${PS_SENTINEL_REPLICAS:-1}))
    command -v redis-sentinel >/dev/null || stack_die "redis-sentinel not found (apt-get install redis-sentinel)"
    SENTINEL_DIR=$PS_STACK_DIR/sentinel
    mkdir -p "$SENTINEL_DIR"
    for ((i = 0; i < n; i++)); do
        NODE_PORT[i]=$(stack_free_port)
        sentinel_node_start "$i"
    done
    sentinel_wait 30 eval '[ "$(node_online_replicas "${NODE_PORT[0]}")" = $((n - 1)) ]' ||
        stack_die "the replicas did not sync with the master within 30 s"
    for i in 0 1 2; do
        SENTINEL_PORT[i]=$(stack_free_port)
        sentinel_start_one "$i"
    done
    # hello messages go every 2 s: wait until each sentinel knows the others
    sentinel_wait 30 sentinels_know_all || stack_die "the sentinels did not find each other within 30 s"
    SENTINEL_URL="redis-sentinel://127.0.0.1:${SENTINEL_PORT[0]},127.0.0.1:${SENTINEL_PORT[1]},127.0.0.1:${SENTINEL_PORT[2]}/0#$SENTINEL_NAME"
    export SENTINEL_URL
    printf '%s\n%s\n%s\n' "$SENTINEL_URL" "${NODE_PORT[*]}" "${SENTINEL_PORT[*]}" >"$SENTINEL_DIR/ports"
}

# sentinel_start_print: sentinel_start, then the URL, the nodes' ports and
# the sentinels' ports on three lines (for callers that are not shell scripts)
sentinel_start_print() {
    sentinel_start >&2
    cat "$SENTINEL_DIR/ports"
}

# sentinel_attach: the variables of the servers sentinel_start made, in
# another shell of the same stack (so that its helpers can be called there)
sentinel_attach() {
    SENTINEL_DIR=$PS_STACK_DIR/sentinel
    [ -f "$SENTINEL_DIR/ports" ] || stack_die "no sentinel.sh servers in $PS_STACK_DIR"
    { read -r SENTINEL_URL; read -ra NODE_PORT; read -ra SENTINEL_PORT; } <"$SENTINEL_DIR/ports"
}

# sentinel_stop_all: every server started here, sentinels first
sentinel_stop_all() {
    local f pid
    [ -n "$SENTINEL_DIR" ] && [ -d "$SENTINEL_DIR" ] || return 0
    for f in "$SENTINEL_DIR"/sentinel*.pid "$SENTINEL_DIR"/node*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
