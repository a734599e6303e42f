#!/usr/bin/env bash
# Renders deploy/haproxy.cfg (the compose configuration) for gateways on this machine:
# the bind address and one `server` line per gateway replace the Docker resolver and template.
#   deploy/render-haproxy.sh BIND:PORT GATEWAY_PORT... > haproxy.cfg
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIND:PORT GATEWAY_PORT..." >&2; exit 2; }
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
awk -v servers="$servers" -v bind="$bind" -v maxconn="$maxconn" '
    /^resolvers docker/ { skip = 1; next }
    skip && /^[^ ]/ { skip = 0 }
    skip { next }
    /# @servers@/ { printf "%s", servers; drop = 1; next }
    drop { drop = 0; next }
    /^    bind \*:8080/ { print "    bind " bind; next }
    /^    maxconn / { print "    maxconn " maxconn; next }
    /^    log / { next }
    /^    option httplog/ { next }
    { print }' "$(dirname "$0")/haproxy.cfg"
