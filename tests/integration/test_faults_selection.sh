#!/usr/bin/env bash
# The fault matrix, Integration Selection: every job of the mixed workload (252
# jobs) lists an alternate connection with a server of its own (FM_ALT=1), and
# the primary goes away for a while: disabled by an admin, its server stopped
# (SIGSTOP, 6 s: Starts in flight time out and may have arrived), and both again
# with the daemon killed (kill -9) at random moments. Queued jobs go to the
# alternate once the primary is disabled or silent past failover_after (1 s);
# a job whose Start may have reached the primary stays there. Every job must
# end once, with the catalog's result, and none may be started twice: no
# taskId on both servers, and each job's request on the server its record
# names. (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
FM_ALT=1
none() { :; }

# The primary's outage, for FM_FAULT_SECONDS from ON; both hooks are idempotent.
OUTAGE_UNTIL=""
outage_end() {
    [ -n "$OUTAGE_UNTIL" ] || return 0
    OUTAGE_UNTIL=""
    case "$OUTAGE" in
        disable) h_sql -c "SELECT acs.set_comm('$FM_SCN', 'enabled')" >/dev/null ;;
        stop) kill -CONT "$H_SIM_PID" ;;
    esac
}
outage_begin() {
    OUTAGE_UNTIL=$((SECONDS + ${FM_FAULT_SECONDS:-3}))
    case "$OUTAGE" in
        disable) h_sql -c "SELECT acs.set_comm('$FM_SCN', 'disabled')" >/dev/null ;;
        stop) kill -STOP "$H_SIM_PID" ;;
    esac
}
outage_tick() {
    if [ -n "$OUTAGE_UNTIL" ] && [ $SECONDS -ge "$OUTAGE_UNTIL" ]; then
        outage_end
    fi
}
# A stopped simulator answers nothing, not even SIGTERM.
trap 'rc=$?; kill -CONT "$H_SIM_PID" 2>/dev/null; (exit $rc); h_cleanup' EXIT

alt_ran() { h_sql -c "SELECT count(*) FROM fm.jobs f JOIN acs.jobs j ON j.id = f.id
                       WHERE f.scenario = '$FM_SCN' AND j.connection = '${FM_SCN}_alt'"; }

OUTAGE=disable
fm_run alt-disabled "primary disabled 3 s mid-run, an alternate listed" \
    outage_begin outage_tick outage_end 5
h_eq true "$([ "$(alt_ran)" -gt 0 ] && echo true || echo false)" \
    "alt-disabled: jobs ran on the alternate while the primary was disabled"

# The daemon learns that the server is silent when a heartbeat times out
# (http.timeout, 2 s); the outage lasts long enough for queued jobs to see it.
OUTAGE=stop
FM_FAULT_SECONDS=6
fm_run alt-stopped "primary's server stopped (SIGSTOP) 6 s mid-run, an alternate listed" \
    outage_begin outage_tick outage_end 7
FM_FAULT_SECONDS=3
h_eq true "$([ "$(alt_ran)" -gt 0 ] && echo true || echo false)" \
    "alt-stopped: jobs ran on the alternate while the primary's server was silent"

# Both outages again, the daemon killed at random moments and restarted.
RANDOM=11
kill_tick() {
    outage_tick
    if [ $((RANDOM % 4)) = 0 ] && [ ${#FM_LIVE[@]} -gt 0 ]; then
        fm_kill9 "${FM_LIVE[0]}" # and restart it
    fi
}
OUTAGE=disable
fm_run alt-kill9 "primary disabled 3 s, kill -9 at random moments, an alternate listed" \
    outage_begin kill_tick outage_end 5
h_eq true "$([ "$FM_KILLED" -ge 2 ] && echo true || echo "false ($FM_KILLED)")" \
    "alt-kill9: the daemon was killed at least twice during the failover"

fm_table
