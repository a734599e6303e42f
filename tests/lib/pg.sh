# shellcheck shell=bash
# A private PostgreSQL 15 cluster for scripts: deploy/local.sh, benchmarks, shell tests.
# Source it; it defines functions only and changes no shell option of the caller.
#
#   source tests/lib/pg.sh
#   pg_start .adw/pg          # create if absent, start, export PG_DIR PG_PORT DATABASE_URL
#   psql "$DATABASE_URL" -c 'select 1'
#   pg_crash .adw/pg          # pg_ctl stop -m immediate
#   pg_start .adw/pg          # same port and data again (recovery runs)
#   pg_stop .adw/pg           # fast shutdown, data kept
#   pg_destroy .adw/pg        # stop and remove everything
#
#   pg_tmp_start [PORT]       # a throwaway cluster under /tmp, destroyed when the shell exits
#
# Layout of DIR: data/ (the cluster), sock/ (its unix socket), postgres.log, port.
# PostgreSQL refuses to run as root: as root every server-side command runs as the `postgres`
# user through runuser, and DIR is handed to that user. As another user, it runs as that user.
# Listens on 127.0.0.1 only, trust authentication for local and 127.0.0.1, database `adw`.
# Every command is bounded in time (PG_TIMEOUT seconds, default 60).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_TIMEOUT=${PG_TIMEOUT:-60}
PG_DB=${PG_DB:-adw}

_pg_log() { echo "pg.sh: $*" >&2; }

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_free_port: prints a TCP port on 127.0.0.1 that nothing listens on right now.
pg_free_port() {
    if [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local i p
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        # A refused connection means no listener on that port.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
        : "$i"
    done
    _pg_log "no free port found"
    return 1
}

# Resolves DIR to the absolute directory that holds the cluster, creating it owned by the
# cluster's user. When that user cannot reach DIR (a parent such as /root is closed to it),
# the cluster lives under /var/tmp and DIR becomes a symlink to it. Prints the real path.
_pg_dir() {
    local dir=$1 abs parent real
    [ -n "$dir" ] || { _pg_log "missing DIR"; return 1; }
    if [ -L "$dir" ]; then
        readlink -f "$dir"
        return
    fi
    mkdir -p "$dir" || return 1
    abs=$(cd "$dir" && pwd -P) || return 1
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$abs"
    if _pg_as test -w "$abs" 2>/dev/null; then
        chmod 700 "$abs"
        echo "$abs"
        return
    fi
    parent=$(dirname "$abs")
    real=/var/tmp/adw-pg-$(printf %s "$abs" | sha1sum | cut -c1-12)
    _pg_log "postgres cannot reach $abs; keeping the cluster in $real (symlinked)"
    mkdir -p "$real" && chown postgres:postgres "$real" && chmod 700 "$real" || return 1
    rmdir "$abs" 2>/dev/null || { _pg_log "$abs is not empty"; return 1; }
    ln -s "$real" "$parent/$(basename "$abs")" || return 1
    echo "$real"
}

# The unix socket directory: DIR/sock, or a short one under /tmp when DIR's path is too long
# for a socket address (107 bytes, and PostgreSQL appends /.s.PGSQL.PORT).
_pg_sockdir() {
    local dir=$1
    if [ ${#dir} -le 80 ]; then
        echo "$dir/sock"
    else
        echo "/tmp/adw-pgsock-$(printf %s "$dir" | sha1sum | cut -c1-12)"
    fi
}

# pg_status DIR: 0 when the cluster in DIR is running.
pg_status() {
    local dir
    [ -d "${1:-}/data" ] || return 1
    dir=$(readlink -f "$1") || return 1
    _pg_as timeout "$PG_TIMEOUT" "$PG_BIN/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

# pg_url DIR: prints the DATABASE_URL of the cluster in DIR (which need not be running).
pg_url() {
    local port
    port=$(cat "${1:-}/port" 2>/dev/null) || { _pg_log "no cluster in ${1:-}"; return 1; }
    echo "postgresql://postgres@127.0.0.1:$port/$PG_DB"
}

# pg_start DIR [PORT]: creates the cluster in DIR if absent, starts it, creates the database,
# and exports PG_DIR, PG_PORT and DATABASE_URL. PORT: the given one, else the one DIR used
# last, else a free one. Already running: only exports. Returns non-zero with a reason.
pg_start() {
    local dir port sock
    dir=$(_pg_dir "${1:-}") || return 1
    port=${2:-$(cat "$dir/port" 2>/dev/null || true)}
    if pg_status "$dir"; then
        if [ -n "${2:-}" ] && [ "$2" != "$(cat "$dir/port")" ]; then
            _pg_log "$dir is running on port $(cat "$dir/port"), not $2"
            return 1
        fi
        port=$(cat "$dir/port")
    else
        [ -n "$port" ] || port=$(pg_free_port) || return 1
        sock=$(_pg_sockdir "$dir")
        _pg_as mkdir -p "$sock" || return 1
        if [ ! -f "$dir/data/PG_VERSION" ]; then
            _pg_as timeout "$PG_TIMEOUT" "$PG_BIN/initdb" -D "$dir/data" -U postgres \
                --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
                { _pg_log "initdb failed:"; cat "$dir/initdb.log" >&2; return 1; }
            _pg_as sh -c "cat >'$dir/data/pg_hba.conf'" <<'EOF'
local all all trust
host all all 127.0.0.1/32 trust
EOF
            _pg_as sh -c "echo \"include_if_exists 'adw.conf'\" >>'$dir/data/postgresql.conf'"
        fi
        _pg_as sh -c "cat >'$dir/data/adw.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
EOF
        echo "$port" >"$dir/port.tmp" && mv "$dir/port.tmp" "$dir/port"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/port"
        if ! _pg_as timeout $((PG_TIMEOUT + 5)) "$PG_BIN/pg_ctl" start -D "$dir/data" -w \
            -t "$PG_TIMEOUT" -l "$dir/postgres.log" >/dev/null 2>&1; then
            _pg_log "PostgreSQL did not start; the end of $dir/postgres.log:"
            tail -n 20 "$dir/postgres.log" >&2
            return 1
        fi
    fi
    if ! PGCONNECT_TIMEOUT=5 timeout "$PG_TIMEOUT" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
        PGCONNECT_TIMEOUT=5 timeout "$PG_TIMEOUT" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
            -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE $PG_DB" ||
            { _pg_log "could not create database $PG_DB"; return 1; }
    fi
    export PG_DIR=$dir PG_PORT=$port
    DATABASE_URL=$(pg_url "$dir") || return 1
    export DATABASE_URL
    _pg_log "PostgreSQL running in $dir, $DATABASE_URL"
}

# pg_stop DIR [MODE]: stops the cluster (MODE fast by default, or smart/immediate); the data
# stays. Not running: nothing to do.
pg_stop() {
    local dir mode=${2:-fast}
    [ -d "${1:-}/data" ] || return 0
    dir=$(readlink -f "$1") || return 1
    pg_status "$dir" || return 0
    _pg_as timeout $((PG_TIMEOUT + 5)) "$PG_BIN/pg_ctl" stop -D "$dir/data" -m "$mode" -w \
        -t "$PG_TIMEOUT" >/dev/null 2>&1 || { _pg_log "pg_ctl stop failed in $dir"; return 1; }
}

# pg_crash DIR: stops the cluster the way a crash would (immediate: no checkpoint; the next
# start runs recovery).
pg_crash() {
    pg_stop "${1:-}" immediate
}

# pg_restart DIR: stops (fast) and starts again on the same port with the same data.
pg_restart() {
    pg_stop "${1:-}" && pg_start "${1:-}"
}

# pg_destroy DIR: stops the cluster (immediately) and removes DIR with everything in it.
pg_destroy() {
    local dir=${1:-} real
    [ -n "$dir" ] && [ -e "$dir" ] || return 0
    real=$(readlink -f "$dir") || return 1
    pg_stop "$real" immediate || true
    [ -d "$(_pg_sockdir "$real")" ] && rm -rf "$(_pg_sockdir "$real")"
    [ -L "$dir" ] && rm -f "$dir"
    rm -rf "$real"
}

# pg_tmp_start [PORT]: starts a throwaway cluster in a new directory under /tmp, exports as
# pg_start does, and adds its removal to the shell's EXIT trap (keeping what was there).
pg_tmp_start() {
    local dir prev port=${1:-}
    dir=$(mktemp -d /tmp/adw-pg-XXXXXXXX) || return 1
    echo $$ >"$dir/owner.pid"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    prev=$(trap -p EXIT)
    if [ -n "$prev" ]; then
        eval "set -- $prev"
        # shellcheck disable=SC2064
        trap -- "$3
pg_destroy '$dir'" EXIT
    else
        # shellcheck disable=SC2064
        trap -- "pg_destroy '$dir'" EXIT
    fi
    pg_start "$dir" "$port"
}
