# config/amtacsd.service: systemd accepts it, and it fits the daemon: the
# command line it runs is valid, the exit status it refuses to restart on is
# the one a broken configuration gives, reload is SIGHUP and stop is SIGTERM.
source "$(dirname "$0")/../lib/harness.sh"

UNIT="$AMTACS_SRC/config/amtacsd.service"
command -v systemd-analyze >/dev/null || { h_not_ok "systemd-analyze is installed (scripts/deps)"; exit 1; }
# the unit as installed, pointing at the binary under test
mkdir -p "$H_TMP/units"
sed "s|/usr/local/sbin/amtacsd|$DAEMON_BIN|" "$UNIT" >"$H_TMP/units/amtacsd.service"
out=$(systemd-analyze verify "$H_TMP/units/amtacsd.service" 2>&1) && [ -z "$out" ] &&
    h_ok "systemd-analyze verify accepts the unit" || { h_not_ok "systemd-analyze verify accepts the unit"; echo "$out" >&2; }
has() { grep -qxF -- "$1" "$UNIT" && h_ok "$2" || h_not_ok "$2 ($1)"; }
has 'User=amtacs' "it runs as its own unprivileged user"
has 'Restart=on-failure' "it restarts on failure"
has 'ExecReload=/bin/kill -HUP $MAINPID' "reload sends SIGHUP"
has 'KillSignal=SIGTERM' "stop sends SIGTERM (graceful)"
has 'LimitCORE=0' "no core dump (the daemon holds the password and the token)"

# what ExecStart runs is a valid command line of the daemon
exec_args=$(sed -n 's|^ExecStart=/usr/local/sbin/amtacsd ||p' "$UNIT")
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
