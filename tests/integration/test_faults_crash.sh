#!/usr/bin/env bash
# The fault matrix, part 4: the daemon dies while a mixed workload of 252 jobs
# runs -- kill -9 at random moments, and at each named crash point
# (AMTACS_CRASH_AT, src/lib/engine.c): after a claim, after the server accepted
# Start (BatchRequestId not yet recorded), after the BatchRequestId was recorded
# (the taskId is fixed at enqueue, so this is also "after the taskId was
# recorded"), and before the final write. Each time it is restarted; the new
# daemon takes the jobs over once their leases expire. Every job must end once,
# none started twice, with the catalog's result.
# (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
none() { :; }

# --- kill -9 at random moments, and a restart right away ----------------------
RANDOM=7 # the same moments on every run
random_tick() {
    if [ $((RANDOM % 4)) = 0 ] && [ ${#FM_LIVE[@]} -gt 0 ]; then
        fm_kill9 "${FM_LIVE[0]}" # and restart it
    fi
}
fm_run kill9 "kill -9 at random moments (every ~1 s), restarted" none random_tick none 5
h_eq true "$([ "$FM_KILLED" -ge 3 ] && echo true || echo "false ($FM_KILLED)")" \
    "kill9: the daemon was killed at least three times"

# --- each named crash point ---------------------------------------------------
crash_at() { # crash_at POINT:N DESCRIPTION
    local slug=${1%%:*}
    fm_begin "$slug" "$2"
    FM_CRASHPOINTS_HIT=0
    fm_daemon AMTACS_CRASH_AT="$1"
    fm_submit $((FM_JOBS / FM_WAVES))
    fm_during 4 none
    fm_finish
    h_eq 1 "$FM_CRASHPOINTS_HIT" "$slug: the daemon died at its crash point ($1) and was restarted"
}
crash_at after-claim:3 "crash after a claim (3rd), restarted"
crash_at after-start-sent:80 "crash after Start was accepted, before its BatchRequestId is recorded (80th)"
h_eq true "$([ "$(h_sim_counter .duplicate_starts)" -ge 1 ] && echo true || echo false)" \
    "after-start-sent: the restarted daemon sent that Start again and got the same request back"
crash_at after-start-recorded:80 "crash after the BatchRequestId (and taskId) is recorded (80th)"
crash_at before-final-write:80 "crash before the final write (80th)"

fm_table
