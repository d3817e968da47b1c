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
h_eq true "$([ "$held" -gt 5 ] && echo true || echo "false ($held)")" "two-kill9: the killed daemon held jobs ($held)"
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
sleep 2 # it wakes up, finds out
after=$(tail -n +"$((mark + 1))" "${FM_DLOG[$a]}")
fm_finish
h_eq true "$([ "$nlost" -gt 5 ] && echo true || echo "false ($nlost)")" "pause: the paused daemon held jobs when it was stopped ($nlost)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($lost) AND (owner LIKE '%:$a:%' OR attempt < 2
                    OR state <> 'finished')")" \
    "pause: each of them was finished by the other daemon (owner and attempt are the taker's)"
h_eq "$nlost" "$(h_sql -c "SELECT count(*) FROM acs.job_logs WHERE job_id IN ($lost)")" "pause: and has exactly one job log"
wrote=$(grep -E 'event=job\.(started|finished|kill_sent|in_doubt)' <<<"$after" |
    grep -Ec " job=($(tr ',' '|' <<<"$lost")) " || true)
h_eq 0 "$wrote" "pause: after SIGCONT the resumed daemon started, killed and finished none of the jobs it lost"
h_match "event=job.lease_(lost|unsure)" "$after" "pause: its log says it lost the leases and dropped the jobs"
grep -E 'event=job\.lease_' <<<"$after" | head -n 3 | cut -c1-220 | sed 's/^/#   /'

fm_table
