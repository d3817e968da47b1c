# shellcheck shell=bash
# Private services for tests, the demo and benchmarks: a throwaway PostgreSQL
# cluster and the simulator. Sourced by tests/lib/harness.sh and scripts/demo.
#
# Every user gets its own temporary directory, its own PostgreSQL cluster (unix
# socket in that directory, no TCP) and its own simulator on a free loopback
# port, so tests run in parallel without colliding. Everything is torn down on
# exit, and a sanitizer report in any server log fails the test.
#
# Environment: AMTACS_BIN (the CMake build directory), AMTACS_SRC (the source tree).
set -euo pipefail

: "${AMTACS_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${AMTACS_BIN:=$AMTACS_SRC/build}"
SIM_BIN="$AMTACS_BIN/src/sim/amt-batch-sim"
CTL_BIN="$AMTACS_BIN/src/ctl/amtacsctl"
DAEMON_BIN="$AMTACS_BIN/src/daemon/amtacsd"
CATALOG="$AMTACS_SRC/config/amt-catalog.yaml"

H_TMP=$(mktemp -d /tmp/amtacs-test.XXXXXX)
chmod 755 "$H_TMP"
H_PASSED=0
H_FAILED=0
H_PIDS=()
H_PG_DATA=""
H_LOGS=()

h_log() { printf '# %s\n' "$*" >&2; }

# Runs a command as the unprivileged user PostgreSQL insists on when we are root.
h_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

h_pg_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    echo "harness: initdb not found (install postgresql)" >&2
    return 1
}

# An initdb'd data directory, with the empty database amtacs, that each
# test's cluster starts as a copy of:
# initdb takes ~3 s on the CI machine and a copy a tenth of that, and the
# suite starts a cluster ~140 times. Made once per build directory (per
# PostgreSQL version), under a lock, and moved into place whole, so that a
# test never copies a half-made one. Sets H_PG_TEMPLATE.
h_pg_template() {
    local bindir=$1 ver base tmp
    ver=$("$bindir/postgres" --version | awk '{print $3}')
    base=${AMTACS_BIN:-$H_TMP}
    H_PG_TEMPLATE="$base/pg-template-$ver"
    [ -f "$H_PG_TEMPLATE/PG_VERSION" ] && return 0
    (
        flock 9
        [ -f "$H_PG_TEMPLATE/PG_VERSION" ] && exit 0
        tmp=$(mktemp -d "$base/pg-template.XXXXXX")
        [ "$(id -u)" = 0 ] && chown postgres: "$tmp"
        h_as_pg "$bindir/initdb" -D "$tmp/data" -U postgres -A trust --no-sync -E UTF8 \
            --locale=C >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; rm -rf "$tmp"; exit 1; }
        # the database amtacs too (CREATE DATABASE takes ~0.5 s of each test)
        h_as_pg "$bindir/postgres" --single -D "$tmp/data" -F -c fsync=off postgres \
            <<<"CREATE DATABASE amtacs" >"$tmp/createdb.log" 2>&1 &&
            ! grep -q ERROR "$tmp/createdb.log" || { cat "$tmp/createdb.log" >&2; rm -rf "$tmp"; exit 1; }
        rm -rf "$H_PG_TEMPLATE"
        mv "$tmp/data" "$H_PG_TEMPLATE" && rm -rf "$tmp"
    ) 9>"$base/pg-template.lock"
}

# Starts a throwaway cluster; exports PGHOST/PGPORT/PGUSER/PGDATABASE and H_PGCONN.
h_pg_start() {
    local bindir
    bindir=$(h_pg_bindir)
    H_PG_DATA="$H_TMP/pgdata"
    mkdir -p "$H_PG_DATA" "$H_TMP/pgsock"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$H_PG_DATA" "$H_TMP/pgsock"
    fi
    H_PG_BINDIR="$bindir"
    # psql and the other client programs straight from the server's version:
    # Debian's /usr/bin/psql is a Perl wrapper that picks the version first,
    # ~0.07 s of CPU more a call (0.12 s against 0.05 s for psql --version,
    # measured here), and a test's h_wait_sql runs psql every 0.05 s.
    case ":$PATH:" in *":$bindir:"*) ;; *) export PATH="$bindir:$PATH" ;; esac
    h_pg_template "$bindir" || return 1
    cp -a "$H_PG_TEMPLATE/." "$H_PG_DATA/" && chmod 700 "$H_PG_DATA" ||
        { echo "harness: copying $H_PG_TEMPLATE failed" >&2; return 1; }
    cat >>"$H_PG_DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$H_TMP/pgsock'
port = 5432
fsync = off
synchronous_commit = on
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
${H_PG_EXTRA_CONF:-}
CONF
    h_as_pg "$bindir/pg_ctl" -D "$H_PG_DATA" -l "$H_PG_DATA/server.log" -w -t 60 start \
        >/dev/null || { cat "$H_PG_DATA/server.log" >&2; return 1; }
    H_LOGS+=("$H_PG_DATA/server.log")
    export PGHOST="$H_TMP/pgsock" PGPORT=5432 PGUSER=postgres PGDATABASE=amtacs
    export H_PGCONN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
}

h_pg_stop() {
    [ -n "$H_PG_DATA" ] || return 0
    h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
    H_PG_DATA=""
}

# psql that fails on error and prints bare values.
h_sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# Restarts the cluster at once (as after a crash); clients must reconnect.
h_pg_restart() {
    h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -m immediate -w stop >/dev/null
    h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -l "$H_PG_DATA/server.log" -w -t 60 start \
        >/dev/null
}

# Starts the simulator: h_sim_start [extra args...]; exports H_SIM_URL and H_SIM_PID.
# Default time scale 0.01 (a 30 s job takes 0.3 s); pass --time-scale to change it.
h_sim_start() {
    H_SIMS=$((${H_SIMS:-0} + 1))
    local portfile="$H_TMP/sim.port.$H_SIMS" log="$H_TMP/sim.$H_SIMS.log" i
    local args=(--listen 127.0.0.1:0 --port-file "$portfile")
    local has_catalog=0 has_scale=0 a
    for a in "$@"; do
        [ "$a" = --catalog ] && has_catalog=1
        [ "$a" = --time-scale ] && has_scale=1
    done
    [ $has_catalog = 1 ] || args+=(--catalog "$CATALOG")
    [ $has_scale = 1 ] || args+=(--time-scale 0.01)
    "$SIM_BIN" "${args[@]}" "$@" >>"$log" 2>&1 &
    H_SIM_PID=$!
    H_PIDS+=("$H_SIM_PID")
    H_LOGS+=("$log")
    for i in $(seq 1 1200); do
        if [ -s "$portfile" ]; then
            H_SIM_URL="http://127.0.0.1:$(cat "$portfile")"
            export H_SIM_URL H_SIM_PID
            return 0
        fi
        kill -0 "$H_SIM_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "harness: simulator did not start:" >&2
    cat "$log" >&2
    return 1
}

# Makes a key pair in $H_TMP and stores the password of a Batch User, sealed:
# h_batch_user NAME PASSWORD (after h_pg_start and a migrate).
h_batch_user() {
    if [ ! -f "$H_TMP/secret.key" ]; then
        "$CTL_BIN" keygen --secret "$H_TMP/secret.key" >/dev/null
    fi
    printf '%s\n' "$2" | "$CTL_BIN" --db "$H_PGCONN" batch-user set "$1" \
        --public-key "$H_TMP/secret.key.pub" >/dev/null
}

# Writes a daemon configuration for one connection to the simulator:
# h_daemon_config FILE [CONNECTION [URL [BATCH_USER]]]; extra YAML for the
# connection can be given in $H_CONN_EXTRA (indented by 4 spaces), for the
# daemon section in $H_DAEMON_EXTRA (indented by 2).
h_daemon_config() {
    local file=$1 name=${2:-AMTDEMO} url=${3:-$H_SIM_URL} user=${4:-amtopcon}
    cat >"$file" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
log_level: ${H_LOG_LEVEL:-debug}
daemon:
  lease_seconds: ${H_LEASE:-3}
  heartbeat_interval: ${H_HEARTBEAT:-300ms}
${H_DAEMON_EXTRA:-}
http:
  listen: "${H_HTTP_LISTEN-127.0.0.1:0}"
${H_HTTP_EXTRA:-}
connections:
  - name: $name
    url: $url
    batch_user: $user
    poll:
      initial_delay: 20ms
      interval: 50ms
      max_interval: 200ms
    start_retry:
      attempts: 3
      delay: 50ms
    http:
      connect_timeout: 1s
      timeout: 2s
${H_CONN_EXTRA:-}
CONF
}

# Starts amtacsd with a configuration file; exports H_DAEMON_PID. Its log is
# $H_TMP/daemon.N.log (N counts the daemons started by this test).
H_DAEMONS=0
H_DAEMON_PIDS=()
h_daemon_start() {
    local cfg=$1
    H_DAEMONS=$((H_DAEMONS + 1))
    H_DAEMON_LOG="$H_TMP/daemon.$H_DAEMONS.log"
    H_DAEMON_CFG=$cfg
    "$DAEMON_BIN" -c "$cfg" >>"$H_DAEMON_LOG" 2>&1 &
    H_DAEMON_PID=$!
    H_PIDS+=("$H_DAEMON_PID")
    H_DAEMON_PIDS+=("$H_DAEMON_PID")
    H_LOGS+=("$H_DAEMON_LOG")
    export H_DAEMON_PID H_DAEMON_LOG H_DAEMON_CFG
}

# The base URL of the HTTP endpoint of the last daemon started (its port is
# chosen by the system and logged at start): h_daemon_http [SECONDS].
h_daemon_http() {
    h_wait_until "${1:-60}" grep -q 'event=http.listening' "$H_DAEMON_LOG" || {
        echo "harness: daemon did not serve HTTP:" >&2
        cat "$H_DAEMON_LOG" >&2
        return 1
    }
    local port
    port=$(grep -m1 'event=http.listening' "$H_DAEMON_LOG" | grep -o '(port [0-9]*' | tr -dc 0-9)
    echo "http://127.0.0.1:$port"
}

# amtacsctl against the test database.
h_ctl() { "$CTL_BIN" --db "$H_PGCONN" "$@"; }

# Waits until the last daemon started is connected to PostgreSQL.
# Ready means more than connected: a submit names a connection, and the daemon
# registers its connections just after it connects, so a test that submits at
# once would race the registration. Each connection logs conn.comm once its
# Full Comm state is read, which is after its registration.
h_daemon_ready() {
    h_wait_until "${1:-60}" grep -q 'event=db.up' "$H_DAEMON_LOG" || {
        echo "harness: daemon did not connect:" >&2
        cat "$H_DAEMON_LOG" >&2
        return 1
    }
    h_wait_until "${1:-60}" h_daemon_conns_known || {
        echo "harness: daemon did not register its connections:" >&2
        cat "$H_DAEMON_LOG" >&2
        return 1
    }
}

# True when every connection of the last daemon's configuration has logged
# its Full Comm state (or that its registration failed).
h_daemon_conns_known() {
    local want got
    want=$(grep -c '^  - name:' "$H_DAEMON_CFG" || true)
    got=$(grep -E 'event=conn\.(comm|register_failed) ' "$H_DAEMON_LOG" |
        grep -o 'connection=[^ ]*' | sort -u | wc -l)
    [ "$got" -ge "$want" ]
}

# The value of a simulator counter: h_sim_counter NAME (jq path, e.g. .kills).
h_sim_counter() { curl -fsS "$H_SIM_URL/sim/counters" | jq -r "$1"; }

# Stops every daemon this test started (SIGTERM) and waits for them.
h_daemons_stop() {
    local pid
    for pid in "${H_DAEMON_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${H_DAEMON_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    H_DAEMON_PIDS=()
}

# A wait that runs out prints "# wait ran out after N s: WHAT" to stderr and
# returns 1. The caller decides what that means (most write an h_not_ok); if it
# does not, and the test stops on it (set -e), h_cleanup counts the wait as a
# failed assertion. H_WAIT_RANOUT holds the last wait that ran out until the
# next assertion or wait.
H_WAIT_RANOUT=""
h_wait_ranout() {
    H_WAIT_RANOUT="wait ran out after $1 s: $2"
    printf '# %s\n' "$H_WAIT_RANOUT" >&2
}

# Polls until a query returns the expected value: h_wait_sql SECONDS EXPECTED SQL.
h_wait_sql() {
    local timeout=$1 want=$2 sql=$3 got
    local end=$((SECONDS + timeout))
    H_WAIT_RANOUT=""
    while [ "$(h_sql -c "$sql" 2>/dev/null)" != "$want" ]; do
        if [ $SECONDS -ge $end ]; then
            got=$(h_sql -c "$sql" 2>&1) || true
            h_wait_ranout "$timeout" "$sql (wanted '$want', last got '$got')"
            return 1
        fi
        sleep 0.05
    done
}

# Polls a shell condition, evaluated afresh each time, until it holds or the
# deadline (seconds) passes: h_wait_for 20 '[ "$(running_now)" -ge 30 ]'.
# (h_wait_until 20 test "$(f)" -ge 30 would expand $(f) once and poll a constant.)
h_wait_for() {
    local timeout=$1 cond=$2
    local end=$((SECONDS + timeout))
    H_WAIT_RANOUT=""
    until eval "$cond" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then
            h_wait_ranout "$timeout" "$cond"
            return 1
        fi
        sleep 0.05
    done
}

# Polls a command until it succeeds or the deadline (seconds) passes.
h_wait_until() {
    local timeout=$1; shift
    local end=$((SECONDS + timeout))
    H_WAIT_RANOUT=""
    while ! "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then
            h_wait_ranout "$timeout" "$*"
            return 1
        fi
        sleep 0.05
    done
}

h_cleanup() {
    local rc=$? pid f
    if [ $rc -ne 0 ] && [ -n "$H_WAIT_RANOUT" ]; then
        # the test stopped on a wait it did not check itself
        H_FAILED=$((H_FAILED + 1))
        printf 'not ok - %s\n' "$H_WAIT_RANOUT"
    elif [ $rc -ne 0 ]; then
        printf '# the test stopped early (exit status %s)\n' "$rc" >&2
    fi
    for pid in "${H_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${H_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    h_pg_stop
    for f in "${H_LOGS[@]}"; do
        if [ -f "$f" ] && grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
            echo "harness: sanitizer report in $f:" >&2
            cat "$f" >&2
            H_FAILED=$((H_FAILED + 1))
        fi
    done
    if [ $H_FAILED -gt 0 ] || [ $rc -ne 0 ]; then
        for f in "${H_LOGS[@]}"; do
            [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 40 "$f" >&2; }
        done
    fi
    if [ "${H_KEEP:-0}" = 1 ]; then
        echo "harness: kept $H_TMP" >&2
    else
        rm -rf "$H_TMP"
    fi
    [ "${H_REPORT:-1}" = 1 ] && echo "$H_PASSED passed, $H_FAILED failed"
    if [ $H_FAILED -gt 0 ] && [ $rc -eq 0 ]; then
        rc=1
    fi
    exit $rc
}
trap h_cleanup EXIT
