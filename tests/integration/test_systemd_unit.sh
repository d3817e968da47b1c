# config/amtacsd.service and config/amtacs-web.service: systemd accepts
# them, their sandbox exposure is low (systemd-analyze security), and each
# fits its program: the command line it runs is valid, the exit status it
# refuses to restart on is the one a broken configuration gives, no core
# dump, no new privileges, stop is SIGTERM (and the daemon's reload SIGHUP).
source "$(dirname "$0")/../lib/harness.sh"
source "$(dirname "$0")/../lib/web.sh"

UNIT="$AMTACS_SRC/config/amtacsd.service"
command -v systemd-analyze >/dev/null || { h_not_ok "systemd-analyze is installed (scripts/deps)"; exit 1; }
# the unit as installed, pointing at the binary under test
mkdir -p "$H_TMP/units"
sed "s|/usr/sbin/amtacsd|$DAEMON_BIN|" "$UNIT" >"$H_TMP/units/amtacsd.service"
out=$(systemd-analyze verify "$H_TMP/units/amtacsd.service" 2>&1) && [ -z "$out" ] &&
    h_ok "systemd-analyze verify accepts the unit" || { h_not_ok "systemd-analyze verify accepts the unit"; echo "$out" >&2; }
has() { grep -qxF -- "$1" "$UNIT" && h_ok "$2" || h_not_ok "$2 ($1)"; }
# exposure NAME: systemd's own rating of the sandbox, 0 (locked down) to 10
# (none); both units are at 1.4 "OK", and must not drift above 2.0.
exposure() {
    local out rc=0
    out=$(systemd-analyze security --offline=yes --threshold=20 "$H_TMP/units/$1" 2>&1) || rc=$?
    h_eq 0 "$rc" "systemd-analyze security: $1's exposure is at most 2.0 ($(
        grep -o 'exposure level for [^ ]*: [0-9.]* [A-Z]*' <<<"$out" | cut -d' ' -f5-))"
}
exposure amtacsd.service
has 'NoNewPrivileges=yes' "no new privileges (setuid binaries do not raise it)"
has 'CapabilityBoundingSet=' "no capabilities at all"
has 'User=amtacs' "it runs as its own unprivileged user"
has 'Restart=on-failure' "it restarts on failure"
has 'ExecReload=/bin/kill -HUP $MAINPID' "reload sends SIGHUP"
has 'KillSignal=SIGTERM' "stop sends SIGTERM (graceful)"
has 'LimitCORE=0' "no core dump (the daemon holds the password and the token)"

# what ExecStart runs is a valid command line of the daemon
exec_args=$(sed -n 's|^ExecStart=/usr/sbin/amtacsd ||p' "$UNIT")
h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
h_daemon_config "$H_TMP/amtacs.yaml"
# shellcheck disable=SC2086
"$DAEMON_BIN" ${exec_args/\/etc\/amtacs\/amtacs.yaml/$H_TMP/amtacs.yaml} --check >/dev/null &&
    h_ok "ExecStart's options are the daemon's" || h_not_ok "ExecStart's options are the daemon's"

# RestartPreventExitStatus is what a broken configuration exits with
prevent=$(sed -n 's/^RestartPreventExitStatus=//p' "$UNIT")
printf 'database: {conninfo: 1\n' >"$H_TMP/broken.yaml"
rc=0
"$DAEMON_BIN" --config "$H_TMP/broken.yaml" 2>/dev/null || rc=$?
h_eq "$prevent" "$rc" "a broken configuration exits $prevent, which the unit does not restart on"

# stop (SIGTERM) ends the daemon cleanly, within TimeoutStopSec
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_match '^Max core file size +0 +0 ' "$(grep '^Max core' "/proc/$H_DAEMON_PID/limits")" \
    "the daemon sets its own core file size limit to 0 (soft and hard)"
# under LimitCORE=0 the limit is already 0: the daemon leaves it alone (no
# setrlimit, which SystemCallFilter=~@resources would kill it for)
prlimit --core=0:0 "$DAEMON_BIN" --config "$H_TMP/amtacs.yaml" --check >/dev/null &&
    h_ok "it starts with LimitCORE=0" || h_not_ok "it starts with LimitCORE=0"
kill -TERM "$H_DAEMON_PID"
start=$SECONDS
rc=0
wait "$H_DAEMON_PID" || rc=$?
h_eq 0 "$rc" "SIGTERM stops the daemon with status 0 (no restart)"
limit=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$UNIT")
[ $((SECONDS - start)) -lt "$limit" ] && h_ok "well within TimeoutStopSec ($limit s)" ||
    h_not_ok "well within TimeoutStopSec ($limit s)"
h_match 'event=daemon.stopped' "$(cat "$H_DAEMON_LOG")" "after a graceful stop"

# --- amtacs-web ------------------------------------------------------------------------
UNIT="$AMTACS_SRC/config/amtacs-web.service"
sed "s|/usr/sbin/amtacs-web|$H_WEB_BIN|" "$UNIT" >"$H_TMP/units/amtacs-web.service"
out=$(systemd-analyze verify "$H_TMP/units/amtacs-web.service" 2>&1) && [ -z "$out" ] &&
    h_ok "systemd-analyze verify accepts amtacs-web's unit" ||
    { h_not_ok "systemd-analyze verify accepts amtacs-web's unit"; echo "$out" >&2; }
exposure amtacs-web.service
has 'User=amtacs' "amtacs-web runs as the unprivileged amtacs user (it reads the daemon's configuration)"
has 'Restart=on-failure' "amtacs-web restarts on failure"
has 'KillSignal=SIGTERM' "amtacs-web is stopped with SIGTERM (graceful)"
has 'LimitCORE=0' "no core dump (passwords, session cookies and tokens pass through amtacs-web)"
has 'NoNewPrivileges=yes' "amtacs-web: no new privileges"
has 'CapabilityBoundingSet=' "amtacs-web: no capabilities at all"
# amtacs-web has no reload: SIGHUP would end it, so the unit must not send one
! grep -q '^ExecReload=' "$UNIT" && h_ok "no ExecReload (amtacs-web has none; a change is a restart)" ||
    h_not_ok "no ExecReload (amtacs-web has none; a change is a restart)"
# the daemon's secret key, where the example configuration puts it, is hidden
key=$(sed -n 's/^key_file: //p' "$AMTACS_SRC/config/amtacs.example.yaml")
has "InaccessiblePaths=-$key" "amtacs-web may not open the daemon's secret key ($key)"

h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
h_daemon_config "$H_TMP/web.yaml"
cat >>"$H_TMP/web.yaml" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "host=$PGHOST port=$PGPORT user=web1 dbname=$PGDATABASE application_name=amtacs-web"
CONF
exec_args=$(sed -n 's|^ExecStart=/usr/sbin/amtacs-web ||p' "$UNIT")
# shellcheck disable=SC2086
"$H_WEB_BIN" ${exec_args/\/etc\/amtacs\/amtacs.yaml/$H_TMP/web.yaml} --check >/dev/null &&
    h_ok "ExecStart's options are amtacs-web's" || h_not_ok "ExecStart's options are amtacs-web's"
prevent=$(sed -n 's/^RestartPreventExitStatus=//p' "$UNIT")
rc=0
"$H_WEB_BIN" --config "$H_TMP/broken.yaml" 2>/dev/null || rc=$?
h_eq "$prevent" "$rc" "a broken configuration stops amtacs-web with $prevent, which the unit does not restart on"
prlimit --core=0:0 "$H_WEB_BIN" --config "$H_TMP/web.yaml" --check >/dev/null &&
    h_ok "amtacs-web starts with LimitCORE=0" || h_not_ok "amtacs-web starts with LimitCORE=0"
h_web_start "$H_TMP/web.yaml"
h_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' "$H_WEB_URL/api/v1/me")" "amtacs-web serves"
h_match '^Max core file size +0 +0 ' "$(grep '^Max core' "/proc/$H_WEB_PID/limits")" \
    "amtacs-web sets its own core file size limit to 0 (soft and hard)"
kill -TERM "$H_WEB_PID"
start=$SECONDS
rc=0
wait "$H_WEB_PID" || rc=$?
h_eq 0 "$rc" "SIGTERM stops amtacs-web with status 0 (no restart)"
limit=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$UNIT")
[ $((SECONDS - start)) -lt "$limit" ] && h_ok "well within its TimeoutStopSec ($limit s)" ||
    h_not_ok "well within its TimeoutStopSec ($limit s)"
h_match 'event=web.stop' "$(cat "$H_TMP/web.log")" "after a graceful stop"
