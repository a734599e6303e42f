#!/usr/bin/env bash
# Runs the whole system on this machine: installs missing packages, builds, starts an embedded
# PostgreSQL (a private cluster under .adw/ unless DATABASE_URL is set), one adw-ingest, GATEWAYS
# adw-gateway processes (default 2) and, when haproxy is installed, haproxy as the front door on
# port 8000 (events and hooks to ingest, WebSocket, REST and dashboard to the gateways) and in
# front of the gateways on 8080. Without haproxy, ingest takes 8000 itself and the gateways
# 8080 and up. Prints the URLs. Ctrl-C stops everything and keeps the data.
#   deploy/local.sh            the stack
#   deploy/local.sh --demo     ... plus a stream of simulated ADW runs
# Environment: GATEWAYS (2), ADW_BIND (127.0.0.1), ADW_DOOR_PORT (8000: the front door),
# ADW_PORT (8080: dashboard / gateways), ADW_INGEST_PORT (8001; 8000 without haproxy),
# ADW_ZMQ_PORT (5555), ADW_PUB_PORT (5556), DATABASE_URL (external DB), ADW_INGEST_TOKEN /
# ADW_GATEWAY_TOKEN (optional auth), ADW_DATA (.adw), ADW_BIN (prebuilt programs: skips
# installing packages and building).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=0
for a in "$@"; do
    case "$a" in
    --demo) DEMO=1 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "local.sh: unknown argument '$a' (see --help)" >&2; exit 2 ;;
    esac
done

GATEWAYS=${GATEWAYS:-2}
BIND=${ADW_BIND:-127.0.0.1}
PORT=${ADW_PORT:-8080}
DOOR_PORT=${ADW_DOOR_PORT:-8000}
ZMQ_PORT=${ADW_ZMQ_PORT:-5555}
PUB_PORT=${ADW_PUB_PORT:-5556}
DATA=${ADW_DATA:-$ROOT/.adw}
BIN=${ADW_BIN:-$ROOT/build/bin}
HAPROXY=$(command -v haproxy || true)
if [ -n "$HAPROXY" ]; then
    INGEST_PORT=${ADW_INGEST_PORT:-8001}
else
    INGEST_PORT=${ADW_INGEST_PORT:-$DOOR_PORT}
    echo "local.sh: haproxy is not installed: no front door; ingest listens on port" \
        "$INGEST_PORT itself and the gateways on $PORT and up" >&2
fi

if [ -z "${ADW_BIN:-}" ]; then
    echo "local.sh: checking packages" >&2
    deploy/install-deps.sh
    echo "local.sh: building" >&2
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DADW_TESTS=OFF >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
fi

mkdir -p "$DATA/logs"
PIDS=()
cleanup() {
    trap - INT TERM EXIT
    echo >&2
    echo "local.sh: stopping" >&2
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${OWN_PG:-}" ]; then pg_stop "$DATA/pg" >/dev/null 2>&1 || true; fi
    if [ -n "${OWN_PG:-}" ]; then
        echo "local.sh: stopped; data kept in $DATA/pg" >&2
    else
        echo "local.sh: stopped; data kept in the external database" >&2
    fi
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ]; then
    # shellcheck source=../tests/lib/pg.sh
    source tests/lib/pg.sh
    pg_start "$DATA/pg" >/dev/null
    OWN_PG=1
    echo "local.sh: PostgreSQL on port $PG_PORT (data in $DATA/pg)" >&2
fi
export DATABASE_URL

start() { # name, command...
    local name=$1
    shift
    "$@" >>"$DATA/logs/$name.log" 2>&1 &
    PIDS+=($!)
}
wait_ready() { # url, name
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "local.sh: $2 did not become ready; see $DATA/logs/$2.log" >&2
    tail -5 "$DATA/logs/$2.log" >&2
    return 1
}

ADW_INGEST_HTTP=$BIND:$INGEST_PORT ADW_INGEST_ZMQ=tcp://$BIND:$ZMQ_PORT \
    ADW_INGEST_PUB=tcp://127.0.0.1:$PUB_PORT start ingest "$BIN/adw-ingest"
wait_ready "http://127.0.0.1:$INGEST_PORT/readyz" ingest

first_gw=$PORT
[ -n "$HAPROXY" ] && first_gw=$((PORT + 1))
ingest_host=$BIND # where the gateways hand approval decisions to ingest
[ "$BIND" = 0.0.0.0 ] && ingest_host=127.0.0.1
for ((g = 0; g < GATEWAYS; g++)); do
    gp=$((first_gw + g))
    ADW_GATEWAY_HTTP=$BIND:$gp ADW_GATEWAY_SUB=tcp://127.0.0.1:$PUB_PORT \
        ADW_GATEWAY_INGEST_URL=http://$ingest_host:$INGEST_PORT \
        ADW_GATEWAY_INGEST_TOKEN=${ADW_INGEST_TOKEN:-} \
        start "gateway$((g + 1))" "$BIN/adw-gateway"
done
for ((g = 0; g < GATEWAYS; g++)); do
    wait_ready "http://127.0.0.1:$((first_gw + g))/readyz" "gateway$((g + 1))"
done

if [ -n "$HAPROXY" ]; then
    # The compose configuration, rendered for loopback: the front door and the gateways' port.
    # shellcheck disable=SC2046 # one argument per gateway port
    deploy/render-haproxy.sh --door "$BIND:$DOOR_PORT" --ingest "$INGEST_PORT" "$BIND:$PORT" \
        $(seq "$first_gw" $((first_gw + GATEWAYS - 1))) >"$DATA/haproxy.cfg"
    start haproxy "$HAPROXY" -W -db -f "$DATA/haproxy.cfg"
    wait_ready "http://127.0.0.1:$PORT/readyz" haproxy
    wait_ready "http://127.0.0.1:$DOOR_PORT/readyz" haproxy
fi

if [ "$DEMO" = 1 ]; then
    start demo "$BIN/adw-bench" --demo --zmq "tcp://127.0.0.1:$ZMQ_PORT"
fi

if [ -n "$HAPROXY" ]; then
    cat <<MSG

  ADW event streaming is running.
    front door:     http://127.0.0.1:$DOOR_PORT/  (dashboard, POST /api/events/broadcast,
                    /api/hooks, /v1/logs; ws://127.0.0.1:$DOOR_PORT/ws/events)
    gateways:       $GATEWAYS behind haproxy on port $PORT (dashboard, WebSocket, REST)
    ingest (HTTP):  http://127.0.0.1:$INGEST_PORT/api/events
    ingest (ZMQ):   tcp://127.0.0.1:$ZMQ_PORT
    logs:           $DATA/logs/
  Ctrl-C stops everything; the data stays.

MSG
else
    cat <<MSG

  ADW event streaming is running (no haproxy: no front door).
    dashboard:      http://127.0.0.1:$PORT/  (ws://127.0.0.1:$PORT/ws/events)
    ingest (HTTP):  http://127.0.0.1:$INGEST_PORT/api/events
    ingest (ZMQ):   tcp://127.0.0.1:$ZMQ_PORT
    gateways:       $GATEWAYS on ports $PORT and up
    logs:           $DATA/logs/
  Ctrl-C stops everything; the data stays.

MSG
fi
wait -n "${PIDS[@]}" || true
echo "local.sh: a process exited; see $DATA/logs/" >&2
