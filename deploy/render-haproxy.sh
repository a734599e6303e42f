#!/usr/bin/env bash
# Renders deploy/haproxy.cfg (the compose configuration) for processes on this machine: the
# bind addresses and one `server` line per process replace the Docker resolver and templates.
#   deploy/render-haproxy.sh [--door BIND:PORT --ingest PORT] BIND:PORT GATEWAY_PORT... > haproxy.cfg
# BIND:PORT is the gateways' port (the dashboard). With --door and --ingest, the front door
# listens on the first and routes the POSTs of events, hooks and OpenTelemetry to the adw-ingest
# on 127.0.0.1:PORT, everything else to the gateways; without them the front door and the
# ingest backend are left out (a load balancer of gateways only).
set -euo pipefail
usage() { echo "usage: $0 [--door BIND:PORT --ingest PORT] BIND:PORT GATEWAY_PORT..." >&2; exit 2; }
door=""
ingest=""
while [ $# -gt 0 ]; do
    case "$1" in
    --door) [ $# -ge 2 ] || usage; door=$2; shift 2 ;;
    --ingest) [ $# -ge 2 ] || usage; ingest=$2; shift 2 ;;
    --*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || usage
{ [ -n "$door" ] && [ -n "$ingest" ]; } || { [ -z "$door" ] && [ -z "$ingest" ]; } || usage
bind=$1
shift
servers=""
n=0
for p in "$@"; do
    n=$((n + 1))
    servers+="    server gateway$n 127.0.0.1:$p check"$'\n'
done
# Two descriptors per proxied connection: fit maxconn under this shell's descriptor limit.
limit=$(ulimit -n)
maxconn=100000
if [ "$limit" != unlimited ] && [ $(((limit - 100) / 2)) -lt $maxconn ]; then
    maxconn=$(((limit - 100) / 2))
fi
awk -v servers="$servers" -v bind="$bind" -v maxconn="$maxconn" -v door="$door" \
    -v ingest="$ingest" '
    /^[^ #]/ { section = $0 }
    section ~ /^resolvers docker/ { next }
    door == "" && (section ~ /^frontend door/ || section ~ /^backend ingest/) { next }
    /# @servers@/ { printf "%s", servers; drop = 1; next }
    /# @ingest@/ { print "    server ingest 127.0.0.1:" ingest " check"; drop = 1; next }
    drop { drop = 0; next }
    /^    bind \*:8000/ { print "    bind " door; next }
    /^    bind \*:8080/ { print "    bind " bind; next }
    /^    maxconn / { print "    maxconn " maxconn; next }
    /^    log / { next }
    /^    option httplog/ { next }
    { print }' "$(dirname "$0")/haproxy.cfg"
