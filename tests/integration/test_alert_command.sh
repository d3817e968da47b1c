# daemon.alert_command starts clean and a few at a time: the command gets exactly
# the documented environment (PATH, TZ as the daemon has it, the AMTACS_*
# variables; nothing else of the daemon's), no blocked or ignored signal, and
# no descriptor but 0, 1 and 2; with alert_command_max 2, five alerts run two
# at a time, the others waiting in order, and all five run.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
D=$H_TMP/alerts
mkdir -p "$D"
# Inline, not a script file: a shell running a script holds the file open, and
# the descriptors looked at must be the ones the daemon handed over. The
# command first notes its signal mask as it got it, with the shell's builtins
# alone (/proc/PID/status read later may catch the shell forking one of its
# sleeps, when it blocks every signal for a moment). It holds until
# $D/release exists, so that the test sees it running.
cmd="while read -r l; do case \$l in Sig*) echo \$l;; esac; done </proc/\$\$/status >$D/sig.\$\$; echo \\\"\$AMTACS_JOB_ID \$\$\\\" >>$D/started; touch $D/run.\$\$; ls $D | grep -c '^run[.]' >>$D/conc; while [ ! -e $D/release ]; do sleep 0.05; done; rm $D/run.\$\$; echo \$AMTACS_JOB_ID >>$D/ended"
H_DAEMON_EXTRA="  alert_command: \"$cmd\"
  alert_command_max: 2" h_daemon_config "$H_TMP/amtacs.yaml"
# The daemon's environment holds what the command must not get.
(
    unset LANG LC_ALL
    export TZ=UTC SECRET_SENTINEL=leak PGPASSFILE=/nonexistent/pgpass AMTACS_SENTINEL=leak
    h_daemon_start "$H_TMP/amtacs.yaml"
    echo "$H_DAEMON_PID" >"$H_TMP/daemon.pid"
)
H_DAEMON_PID=$(cat "$H_TMP/daemon.pid")
H_PIDS+=("$H_DAEMON_PID")
H_DAEMON_LOG=$H_TMP/daemon.1.log
H_LOGS+=("$H_DAEMON_LOG")
H_DAEMON_CFG=$H_TMP/amtacs.yaml
h_daemon_ready

lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

id1=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ERRORJOB -r REF-1)
h_wait_until 60 grep -q "^$id1 " "$D/started" || h_not_ok "the alert command starts"
pid=$(awk -v id="$id1" '$1 == id {print $2}' "$D/started")

# --- what the command got -----------------------------------------------------------
names=$(tr '\0' '\n' <"/proc/$pid/environ" | cut -d= -f1 | sort | tr '\n' ' ')
h_eq "AMTACS_APPLICATION AMTACS_BATCH_REQUEST_ID AMTACS_CODE AMTACS_CODE_NAME AMTACS_CONNECTION AMTACS_ERROR AMTACS_JOB_ID AMTACS_JOB_KIND AMTACS_JOB_NAME AMTACS_SERVER PATH TZ " \
    "$names" "the environment is exactly the documented variables"
env1=$(tr '\0' '\n' <"/proc/$pid/environ")
# has_var REGEX DESCRIPTION: one variable of the command's environment matches REGEX whole.
has_var() {
    if grep -qxE "$1" <<<"$env1"; then h_ok "$2"; else h_not_ok "$2"; printf '#   %s\n' "$env1"; fi
}
has_var "PATH=/usr/local/bin:/usr/bin:/bin" "PATH is the fixed one"
has_var "TZ=UTC" "TZ is the daemon's"
has_var "AMTACS_SERVER=$H_SIM_URL" "AMTACS_SERVER is the connection's URL"
has_var "AMTACS_JOB_ID=$id1" "AMTACS_JOB_ID"
has_var "AMTACS_CODE=11" "AMTACS_CODE"
has_var "AMTACS_CODE_NAME=ERROR" "AMTACS_CODE_NAME"
has_var "AMTACS_JOB_NAME=ERRORJOB" "AMTACS_JOB_NAME"
has_var "AMTACS_CONNECTION=AMTDEMO" "AMTACS_CONNECTION"
has_var "AMTACS_BATCH_REQUEST_ID=[0-9]+" "AMTACS_BATCH_REQUEST_ID"
# SigIgn leaves out bits 32 and 33: glibc's own two signals (SIGCANCEL,
# SIGSETXID), which posix_spawn sets ignored in any child it starts and every
# glibc program takes back at its start; no signal a script knows of is ignored.
sigs=$(grep -E '^Sig(Blk|Ign):' "$D/sig.$pid" | tr -d ' \t')
h_eq "SigBlk:0000000000000000" "$(grep SigBlk <<<"$sigs")" \
    "no signal blocked (the daemon blocks TERM, INT and HUP)"
ign=$(grep SigIgn <<<"$sigs" | cut -d: -f2)
h_eq 0 "$(( 0x$ign & ~0x180000000 ))" "no signal ignored (the daemon ignores PIPE): SigIgn $ign"
h_eq "0 1 2" "$(ls "/proc/$pid/fd" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
    "only descriptors 0, 1 and 2 are open"
h_eq "/dev/null" "$(readlink "/proc/$pid/fd/0")" "standard input is /dev/null"

# --- at most two at once, the others in order, none dropped -------------------------
ids=("$id1")
for i in 2 3 4 5; do
    ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ERRORJOB)")
    h_ctl wait "${ids[-1]}" --timeout 60 --quiet >/dev/null || true # ends ERROR: exit 1
    if [ "$i" = 2 ]; then
        h_wait_until 60 grep -q "^${ids[1]} " "$D/started" ||
            h_not_ok "a second alert command runs beside the first"
    fi
done
h_wait_until 60 eval '[ "$(grep -c "event=alert.command_queued" "$H_DAEMON_LOG")" -ge 3 ]' ||
    h_not_ok "three alert commands wait their turn"
h_eq 3 "$(grep -c 'event=alert.command_queued' "$H_DAEMON_LOG")" "three alert commands wait their turn"
h_eq 2 "$(lines "$D/started")" "with alert_command_max 2 only two run while they hold"
touch "$D/release"
h_wait_until 120 eval '[ "$(lines "$D/ended")" -ge 5 ]' || h_not_ok "all five end"
h_eq "${ids[*]}" "$(cut -d' ' -f1 "$D/started" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
    "all five ran"
h_eq "${ids[*]}" "$(grep 'event=alert.command ' "$H_DAEMON_LOG" | grep -o ' job=[0-9]*' | cut -d= -f2 |
    tr '\n' ' ' | sed 's/ $//')" "started by the daemon in the order their jobs ended"
h_eq 2 "$(sort -n "$D/conc" | tail -1)" "never more than two at once"
h_eq 0 "$(grep -c 'event=alert.command_status\|event=alert.command_failed' "$H_DAEMON_LOG")" \
    "each ended with status 0"
