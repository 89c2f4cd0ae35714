#!/usr/bin/env bash
# test_deploy_files.sh - the deploy/ recipes, checked without a container engine
# or a cluster. The built programs are installed (`cmake --install`) into a
# scratch root where the systemd units must verify with no warning and score
# a low exposure; check_deploy.py checks the env examples, the Dockerfile,
# compose.yaml and the Kubernetes manifests against the repository and the
# programs' own settings, and that no program connects as a superuser and the
# workers run in live mode (check_logins.py). Then a few files are broken on purpose, one at a
# time, and each break must be reported: the checks can fail.
# Needs PS_BUILD_DIR (a build tree) and PS_SOURCE_DIR (ctest sets both).
set -euo pipefail
: "${PS_BUILD_DIR:?}" "${PS_SOURCE_DIR:?}"
SRC=$(cd "$PS_SOURCE_DIR" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
MAX_EXPOSURE=15 # tenths: systemd-analyze security's "1.5"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL $*" >&2
    exit 1
}

# install_root ROOT: the programs as `cmake --install` lays them out, and the
# host's systemd units and the tools the units call, so verify finds them.
install_root() {
    local root=$1
    DESTDIR=$root cmake --install "$PS_BUILD_DIR" --prefix /usr/local >/dev/null
    mkdir -p "$root/usr/lib/systemd" "$root/usr/bin" "$root/etc/systemd/system"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    ln -s usr/bin "$root/bin"
    local exe
    sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\(\/[^ ]*\).*/\1/p' "$SRC"/deploy/systemd/*.service | sort -u |
        while read -r exe; do
            case $exe in /usr/local/*) continue ;; esac
            [ ! -e "$exe" ] || cp "$(readlink -f "$exe")" "$root/usr/bin/"
        done
}

# check_units UNIT_DIR ROOT: every unit (templates as instance 1) verifies
# without a single line of output, and its exposure is at most MAX_EXPOSURE.
check_units() {
    local dir=$1 root=$2 names=() timers=() f out
    rm -f "$root"/etc/systemd/system/paystream*
    cp "$dir"/*.service "$dir"/*.timer "$root/etc/systemd/system/"
    for f in "$dir"/*.service; do
        f=$(basename "$f")
        names+=("${f/@.service/@1.service}")
    done
    for f in "$dir"/*.timer; do timers+=("$(basename "$f")"); done
    out=$(cd / && systemd-analyze verify --root="$root" "${names[@]}" "${timers[@]}" 2>&1) || true
    [ -z "$out" ] || { echo "$out"; return 1; }
    for f in "${names[@]}"; do
        systemd-analyze security --offline=yes --root="$root" --threshold=$MAX_EXPOSURE "$f" \
            >"$work/security.out" 2>&1 || { tail -1 "$work/security.out"; return 1; }
    done
    out=$(systemd-sysusers --root="$root" "$dir/paystream.sysusers" 2>&1) || { echo "$out"; return 1; }
    grep -q '^paystream:' "$root/etc/passwd" || { echo "no paystream user created"; return 1; }
    echo "${#names[@]} units and ${#timers[@]} timer(s) verified, exposure <= $MAX_EXPOSURE/10"
}

root=$work/root
install_root "$root"
for p in paystream-ingest paystream-worker paystreamctl; do
    [ -x "$root/usr/local/bin/$p" ] || fail "cmake --install puts no $p in /usr/local/bin"
done
ls "$root"/usr/local/share/paystream/sql/migrations/*.sql >/dev/null || fail "no SQL migrations installed"
while read -r f _; do
    [ -f "$root/usr/local/share/paystream/sql/$f" ] || fail "code file $f of sql/code.list not installed"
done < <(grep '^[a-z_]*\.sql' "$SRC/sql/code.list")
[ -f "$root/usr/local/share/paystream/sql/code.list" ] || fail "sql/code.list not installed"
check_units "$SRC/deploy/systemd" "$root" || fail "systemd units"
check() { python3 "$HERE/check_deploy.py" --source "$1" --bin "$root/usr/local/bin" --cache "$work/linked.json"; }
check "$SRC" || fail "deploy recipes"

# ------------------------------------------------- the checks can fail --

# mutant FILE SED_EXPR: a copy of the repository (deploy/ copied, the rest
# linked) with one edit to deploy/FILE; prints the copy's path.
caught=0
mutant() {
    local m e
    m=$(mktemp -d "$work/mutant.XXXX")
    shopt -s nullglob
    for e in "$SRC"/* "$SRC"/.[!.]*; do
        [ "$(basename "$e")" = deploy ] || ln -s "$e" "$m/"
    done
    cp -r "$SRC/deploy" "$m/"
    sed -i "$2" "$m/deploy/$1"
    cmp -s "$SRC/deploy/$1" "$m/deploy/$1" && fail "mutation of $1 changed nothing: $2"
    echo "$m"
}

# expect_caught FILE SED_EXPR MESSAGE: check_deploy.py fails on the mutant, saying MESSAGE
expect_caught() {
    local m out
    m=$(mutant "$1" "$2")
    if out=$(check "$m" 2>&1); then
        fail "not caught: $1 with $2"
    fi
    grep -qF -- "$3" <<<"$out" || { echo "$out"; fail "$1 with $2: expected '$3'"; }
    echo "caught: $1: $3"
    caught=$((caught + 1))
}

# expect_units_caught FILE SED_EXPR: the systemd checks fail on the mutant
expect_units_caught() {
    local m
    m=$(mutant "$1" "$2")
    if check_units "$m/deploy/systemd" "$root" >"$work/units.out" 2>&1; then
        fail "not caught: $1 with $2"
    fi
    echo "caught: $1: $(head -1 "$work/units.out")"
    caught=$((caught + 1))
}

expect_units_caught systemd/paystream-worker@.service 's/^RestartSec=.*/&\nRestartSecs=2s/'
expect_units_caught systemd/paystream-ingest.service '/^\(Protect\|Private\|Restrict\)/d'
expect_units_caught systemd/paystream-worker@.service 's#/usr/local/bin/paystream-worker#/usr/local/bin/paystream-wrk#'
expect_caught systemd/paystream-ingest.service 's/^TimeoutStopSec=.*/TimeoutStopSec=5s/' "does not cover"
expect_caught systemd/paystream-backfill.service 's/--since 1h/--since 2h/' "does not cover the last hour"
expect_caught k8s/backfill-cronjob.yaml 's#"\*/15 \* \* \* \*"#"0 * * * *"#' "every 15 minutes"
expect_caught paystream.env.example 's/^PAYSTREAM_CONCURRENCY=.*/PAYSTREAM_CONCURRENCY=0/' "refuses the values"
expect_caught k8s/configmap.yaml 's/PAYSTREAM_CLAIM_IDLE_MS/PAYSTREAM_CLAIM_IDLE/' "no program has"
expect_caught k8s/configmap.yaml 's/"8"$/8/' "must be strings"
expect_caught k8s/ingest.yaml 's#path: /readyz#path: /ready#' "readinessProbe asks /ready"
expect_caught k8s/ingest.yaml 's/targetPort: http/targetPort: 8081/' "targets 8081"
expect_caught k8s/worker.yaml 's/key: database-url/key: db-url/' "no key db-url"
expect_caught k8s/secret.example.yaml 's/"CHANGE_ME"/"whsec_not_a_placeholder"/' "not a CHANGE_ME placeholder"
expect_caught container/compose.yaml '0,/service_completed_successfully/s//service_started/' "does not wait for the migration"
expect_caught container/compose.yaml 's#\.\./redis.conf:#../redis.cnf:#' "no Redis service runs with deploy/redis.conf"
expect_caught container/compose.yaml 's#postgresql://paystream_worker_login:#postgresql://postgres:#' "a superuser"
expect_caught container/postgres-init.sh 's/paystream_worker_login LOGIN/paystream_worker_login LOGIN SUPERUSER/' "not a superuser"
expect_caught container/compose.yaml 's/PAYSTREAM_LIVEMODE: live/PAYSTREAM_LIVEMODE: any/' "PAYSTREAM_LIVEMODE=live"
expect_caught k8s/secret.example.yaml 's#postgresql://paystream_worker_login:#postgresql://postgres:#' "a superuser"
expect_caught k8s/configmap.yaml 's/PAYSTREAM_LIVEMODE: "live"/PAYSTREAM_LIVEMODE: "any"/' "PAYSTREAM_LIVEMODE=live"
expect_caught paystream.env.example 's/^PAYSTREAM_LIVEMODE=live/PAYSTREAM_LIVEMODE=test/' "PAYSTREAM_LIVEMODE=live"
expect_caught container/Dockerfile 's/^USER .*/USER root/' "non-root USER"
expect_caught container/Dockerfile 's#^COPY sql/ sql/#COPY sqls/ sql/#' "COPY source sqls/ is not in the repository"
expect_caught container/Dockerfile 's/ libjansson4//' "runtime stage lacks libjansson"
expect_caught container/Dockerfile 's/ libpq-dev//' "build stage lacks libpq.pc"
expect_caught container/Dockerfile '\#^COPY ctl/#d' "does not copy ctl, which the build reads"
expect_caught container/Dockerfile 's/^FROM debian:12-slim$/FROM debian:11-slim/' "is not Debian 12"
echo "PASS deploy recipes ($caught breakages caught)"
