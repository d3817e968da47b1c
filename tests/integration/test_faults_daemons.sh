#!/usr/bin/env bash
# The fault matrix, part 5: several daemons share the queue while a mixed
# workload of 252 jobs runs -- two daemons, one killed with kill -9 for good
# (the other takes its jobs over once their leases expire); and one paused with
# SIGSTOP until its leases expired and the other took its jobs over, then
# resumed with SIGCONT: it must write nothing for the jobs it lost (fenced by
# owner and attempt) and say so in its log. Every job must end once, none
# started twice, with the catalog's result.
# (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
none() { :; }
owned_by() { # owned_by PID: jobs of the scenario that daemon holds now
    h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND owner LIKE '%:$1:%'
              AND state IN ('starting', 'running')"
}

# --- two daemons, one killed with kill -9 (not restarted) -----------------------
# (the second daemon starts once the first holds jobs: both claim on the same
# NOTIFY, and one of them could otherwise win every race)
fm_begin two-kill9 "two daemons, one killed with kill -9 mid-run"
fm_daemon; a=$FM_PID
fm_submit $((FM_JOBS / FM_WAVES))
fm_submit $((FM_JOBS / FM_WAVES))
h_wait_for 10 '[ "$(owned_by "$a")" -gt 5 ]' || true
fm_daemon; b=$FM_PID
held=$(owned_by "$a")
fm_kill9 "$a" no-restart
fm_during 3 none
fm_finish
h_eq true "$([ "$held" -gt 0 ] && echo true || echo "false ($held)")" "two-kill9: the killed daemon held jobs ($held)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND owner LIKE '%:$a:%'
                    AND state <> 'finished'")" "two-kill9: the survivor took every job of the killed daemon over"
h_match "event=job.resumed" "$(cat "${FM_DLOG[$b]}")" "two-kill9: the survivor followed taken-over jobs again"

# --- one daemon paused past its leases, then resumed ------------------------------
fm_begin pause "two daemons, one paused with SIGSTOP past its leases, then resumed"
fm_daemon; a=$FM_PID
fm_submit $((FM_JOBS / FM_WAVES))
fm_submit $((FM_JOBS / FM_WAVES))
h_wait_for 10 '[ "$(owned_by "$a")" -gt 5 ]' || true
fm_daemon; b=$FM_PID
fm_pause "$a"
lost=$(h_sql -c "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '0') FROM acs.jobs
                 WHERE connection = '$FM_SCN' AND owner LIKE '%:$a:%' AND state IN ('starting', 'running')")
nlost=$(tr ',' '\n' <<<"$lost" | grep -vc '^0$' || true)
fm_during 3 none
# until the other daemon has taken every one of them over (leases of 2 s, rescans every 5 s)
h_wait_for 25 '[ "$(owned_by "$a")" = 0 ]' &&
    h_ok "pause: the other daemon took over all $nlost jobs of the paused one" ||
    h_not_ok "pause: the paused daemon still holds $(owned_by "$a") jobs"
mark=$(wc -l <"${FM_DLOG[$a]}")
fm_resume "$a"
# it wakes up and finds out (what it writes until it is stopped is checked below)
since_resume() { tail -n +"$((mark + 1))" "${FM_DLOG[$a]}"; }
h_wait_for 20 'since_resume | grep -qE "event=job\.lease_(lost|unsure)"' || true
fm_finish
after=$(since_resume)
h_eq true "$([ "$nlost" -gt 0 ] && echo true || echo "false ($nlost)")" "pause: the paused daemon held jobs when it was stopped ($nlost)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($lost) AND (owner LIKE '%:$a:%' OR attempt < 2
                    OR state <> 'finished')")" \
    "pause: each of them was finished by the other daemon (owner and attempt are the taker's)"
h_eq "$nlost" "$(h_sql -c "SELECT count(*) FROM acs.job_logs WHERE job_id IN ($lost)")" "pause: and has exactly one job log"
wrote=$(grep -E 'event=job\.(started|finished|kill_sent|in_doubt)' <<<"$after" |
    grep -Ec " job=($(tr ',' '|' <<<"$lost")) " || true)
h_eq 0 "$wrote" "pause: after SIGCONT the resumed daemon started, killed and finished none of the jobs it lost"
h_match "event=job.lease_(lost|unsure)" "$after" "pause: its log says it lost the leases and dropped the jobs"
grep -E 'event=job\.lease_' <<<"$after" | head -n 3 | cut -c1-220 | sed 's/^/#   /'

# --- takeover as soon as PostgreSQL knows the daemon is dead ---------------------------
# With leases of 30 s, a dead daemon's jobs are followed again once its session
# has ended (sql/0010_liveness.sql), by a restarted daemon or by another one;
# the leases would have made that wait 30 s. (lease_held_at_takeover: the
# first job taken over came before the killed daemon's leases could expire.)
taken_before_lease() { # the takeover figure is a number below the lease
    [ "$FM_BACK" != - ] && awk -v t="$FM_BACK" -v l="$FM_LEASE" 'BEGIN { exit !(t < l) }'
}
long_held_by() { # long_held_by PID: running jobs of the scenario that daemon holds
    h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND owner LIKE '%:$1:%'
              AND state = 'running'"
}
FM_LEASE_BEFORE=$FM_LEASE
FM_LEASE=30

fm_begin kill9-restart "kill -9 with leases of 30 s, restarted at once"
fm_daemon; a=$FM_PID
fm_submit $((FM_JOBS / FM_WAVES))
h_wait_for 30 '[ "$(long_held_by "$a")" -gt 0 ]' || h_not_ok "wait ran out: the daemon follows running jobs"
fm_kill9 "$a" restart
fm_during 3 none
fm_finish
taken_before_lease && h_ok "kill9-restart: the restarted daemon followed the dead one's jobs after $FM_BACK s, before the 30 s leases ran out" ||
    h_not_ok "kill9-restart: taken over after $FM_BACK s (lease 30 s)"

fm_begin kill9-other "two daemons, leases of 30 s, one killed with kill -9"
fm_daemon; a=$FM_PID
fm_submit $((FM_JOBS / FM_WAVES))
h_wait_for 30 '[ "$(long_held_by "$a")" -gt 0 ]' || h_not_ok "wait ran out: the first daemon follows running jobs"
fm_daemon; b=$FM_PID
fm_submit $((FM_JOBS / FM_WAVES))
held=$(owned_by "$a")
fm_kill9 "$a" no-restart
fm_during 3 none
fm_finish
taken_before_lease && h_ok "kill9-other: the other daemon followed the dead one's $held jobs after $FM_BACK s, before the 30 s leases ran out" ||
    h_not_ok "kill9-other: taken over after $FM_BACK s (lease 30 s)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$FM_SCN' AND owner LIKE '%:$a:%'
                    AND state <> 'finished'")" "kill9-other: every job of the killed daemon was taken over"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.daemons WHERE owner LIKE '%:$a:%'")" \
    "kill9-other: the dead daemon's entry is gone once it holds no job"
FM_LEASE=$FM_LEASE_BEFORE

fm_table
