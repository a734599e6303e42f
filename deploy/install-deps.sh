#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing the project need.
# Installs only what is missing; safe to run again. Needs root (or sudo).
#   deploy/install-deps.sh           build and run dependencies
#   deploy/install-deps.sh --test    also the test, fuzz and browser tooling
#   deploy/install-deps.sh --bench   also what tests/bench needs: nats-server and mosquitto
#                                    (the peers compared with), node and npm (then `npm ci`
#                                    in tests/bench/peers), the Python modules of the harness
set -euo pipefail

pkgs=(build-essential cmake pkg-config git ca-certificates
      libzmq3-dev libczmq-dev libsodium-dev libwebsockets-dev libmsgpack-dev libpq-dev libjansson-dev
      libssl-dev zlib1g-dev libcurl4-openssl-dev openssl postgresql-15 postgresql-client-15 curl)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev llvm clang-format clang-tidy cppcheck
           python3-websockets python3-zmq python3-msgpack python3-psycopg2 python3-yaml python3-pytest
           python3-pytest-xdist
           haproxy docker-compose fiu-utils chromium procps iproute2 util-linux nats-server
           mosquitto)
bench_pkgs=(python3-websockets python3-zmq python3-msgpack python3-psycopg2 procps util-linux
            nats-server mosquitto)

want=("${pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
    want+=("${test_pkgs[@]}")
    # Node.js may come from elsewhere on the machine; Debian's npm only when none is there.
    command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
elif [ "${1:-}" = "--bench" ]; then
    want+=("${bench_pkgs[@]}")
    command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
