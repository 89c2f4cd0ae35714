#!/usr/bin/env bash
# install-deps.sh - install what paystream needs on Debian 12 (run as root).
# Only Debian packages and, for the tests' official Stripe client, the npm
# packages pinned in tests/node/package-lock.json. Installs nothing already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config git curl ca-certificates
    libhiredis-dev libevent-dev libpq-dev libssl-dev libjansson-dev libcurl4-openssl-dev libcmocka-dev clang libclang-rt-14-dev
    postgresql-15 postgresql-client-15 redis-server redis-tools nodejs npm python3 python3-yaml systemd iproute2 openssl prometheus)
# the failover tests: a master, a replica and three sentinels
packages+=(redis-sentinel)
[ "${1:-}" = "--bench" ] && packages+=(wrk)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# node may come from elsewhere than Debian's package: accept any node >= 18 on PATH
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs/}")
    missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # the tests start their own Prometheus on a free port: not the package's service on 9090
    if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
    # the failover tests start their own sentinels on free ports: not the package's on 26379
    if [[ " ${missing[*]} " == *" redis-sentinel "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now redis-sentinel >/dev/null 2>&1 || true
    fi
fi

# the tests' npm packages, again whenever the lock file is newer than what is installed
if [ -f tests/node/package-lock.json ] && { [ ! -f tests/node/node_modules/.package-lock.json ] ||
    [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; }; then
    npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
