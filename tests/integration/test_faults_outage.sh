#!/usr/bin/env bash
# The fault matrix, part 6: a long AMT server outage while jobs run, scaled for
# the test: the server is down 12 s (six HTTP timeouts, dozens of status
# checks, a dozen heartbeats) while dozens of the 252 jobs run. No running job
# may fail because of it: following backs off and resumes when the server is
# back. Jobs not yet started wait too: start_retry (40 tries, 100 ms growing
# to 1 s: about 36 s) outlasts the outage, as it should in production (with
# fewer tries, a job whose Start cannot reach the server ends 23
# WEB_SERVER_ERROR, as documented). Kills requested meanwhile fail, are
# retried and carried out once the server is back.
# (tests/lib/faults.sh has the workload and the accounting.)
FM_TIME_SCALE=0.05 # REPORTTEST01 runs 1.5 s, the SERIAL queue takes 7 s: jobs are running when it goes
FM_POLL_MAX=1s
FM_MAX_IN_FLIGHT=400 # the jobs enqueued during the outage are claimed and try to start
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
running_now() {
    h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND state = 'running'"
}

fm_begin outage "server down 12 s while jobs run (start_retry outlasts it)"
fm_daemon
fm_submit $((FM_JOBS / 2))
starting_now() {
    h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND state = 'starting'"
}
h_wait_for 60 '[ "$(running_now)" -ge 30 ]' || true
mark=$(cat "${FM_DLOG[@]}" | wc -l)
fm_faults '{"down":true}'
# once the daemon finds the server gone, what it had in hand before is written
h_wait_for 60 '[ "$(cat "${FM_DLOG[@]}" | tail -n +"$((mark + 1))" | grep -c "event=job.follow_retry")" -gt 0 ]' ||
    h_not_ok "wait ran out: the daemon finds the server gone"
# These run while the server is away: none may end before it is back.
running=$(h_sql -c "SELECT string_agg(id::text, ',') FROM acs.jobs WHERE connection = '$FM_SCN' AND state = 'running'")
nrunning=$(tr ',' '\n' <<<"$running" | grep -c . || true)
fm_submit $((FM_JOBS - FM_NEXT_N)) # the other half arrives during the outage
h_wait_for 10 '[ "$(starting_now)" -ge 30 ]' || true
starting=$(starting_now)
t_end=$((SECONDS + 12))
while [ $SECONDS -lt $t_end ]; do
    fm_kill_long
    fm_watch
    sleep 0.25
done
finished_during=$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($running) AND state = 'finished'")
fm_faults_fired
fm_faults_off
fm_finish
h_eq true "$([ "$nrunning" -ge 10 ] && echo true || echo "false ($nrunning)")" \
    "outage: $nrunning jobs were running while the server was away"
h_eq 0 "$finished_during" "outage: none of them was ended while the server was away"
h_eq true "$([ "$starting" -ge 10 ] && echo true || echo "false ($starting)")" \
    "outage: $starting jobs enqueued meanwhile were trying to start (and waited: they are not lost)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs j JOIN fm.jobs f ON f.id = j.id JOIN fm.kinds k ON k.seq = f.seq
                    WHERE j.id IN ($running) AND j.completion_code IS DISTINCT FROM k.code")" \
    "outage: each ended with its own code after the outage, none failed because of it"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND completion_code IN (23, 24)")" \
    "outage: no job ended WEB_SERVER_ERROR or AUTHENTICATION_ERROR"
log=$(cat "${FM_DLOG[@]}")
h_match "event=job.follow_retry" "$log" "outage: the daemon logged the failed checks"
h_match "event=job.follow_resumed" "$log" "outage: and that the server answers again"

fm_table
