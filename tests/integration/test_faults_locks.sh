#!/usr/bin/env bash
# The fault matrix, part 7: someone else holds row locks on running jobs. A
# scheduler's or operator's session takes SELECT ... FOR UPDATE on 10 running
# jobs and keeps its transaction open for FM_LOCK_SECONDS (60 s). The daemon
# never waits for those locks (sql/0009_lock_order.sql): every other job of the
# workload starts and finishes while they are held; the 10 finish once the
# lock is gone; the daemon says once per job that its row is locked, and for
# how long when it could write at last; no job fails for it.
# (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

LOCK_SECONDS=${FM_LOCK_SECONDS:-60}
fm_init
none() { :; }

# The 10 locked: running jobs that the workload does not kill (seq 26 is killed
# by the operator while it runs, and that kill would wait for the lock too).
lock_ten() {
    local try ids n
    for try in 1 2 3 4 5; do
        h_wait_for 60 '[ "$(candidates | wc -w)" -ge 10 ]' ||
            { h_not_ok "wait ran out: 10 running jobs to lock"; return 1; }
        ids=$(candidates | head -n 10 | paste -sd,)
        psql -X -q -At -v ON_ERROR_STOP=0 >"$H_TMP/holder.out" 2>&1 <<SQL &
SET application_name = 'row-lock-holder';
BEGIN;
SELECT count(*) FROM (SELECT id FROM acs.jobs WHERE id IN ($ids) ORDER BY id FOR UPDATE) AS l;
SELECT pg_sleep(3600);
COMMIT;
SQL
        HOLDER=$!
        h_wait_sql 30 1 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'row-lock-holder'
                         AND query LIKE 'SELECT pg_sleep%' AND state = 'active'" ||
            { h_not_ok "wait ran out: the lock holder holds its locks"; return 1; }
        # all 10 still running now that nobody but the holder can change them?
        n=$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($ids) AND state = 'running'")
        if [ "$n" = 10 ]; then
            LOCKED=$ids
            LOCKED_AT=$SECONDS
            return 0
        fi
        release
    done
    h_not_ok "could not lock 10 running jobs in 5 tries"
    return 1
}
candidates() {
    h_sql -c "SELECT j.id FROM acs.jobs j JOIN fm.jobs f ON f.id = j.id
              WHERE f.scenario = '$FM_SCN' AND f.seq <> 26 AND j.state = 'running' ORDER BY j.id"
}
release() {
    h_sql -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'row-lock-holder'" >/dev/null
    wait "$HOLDER" 2>/dev/null || true
}
others_left() {
    h_sql -c "SELECT count(*) FROM fm.jobs f JOIN acs.jobs j ON j.id = f.id
              WHERE f.scenario = '$FM_SCN' AND f.id NOT IN ($LOCKED) AND j.state <> 'finished'"
}

# A slower clock for this row: REPORTTEST01 runs 15 s, so ten jobs run at once.
FM_TIME_SCALE_BEFORE=$FM_TIME_SCALE
FM_TIME_SCALE=0.5
fm_begin row-locks "10 running jobs locked FOR UPDATE by another session for ${LOCK_SECONDS} s"
fm_daemon
fm_submit $((FM_JOBS / FM_WAVES))
fm_submit $((FM_JOBS / FM_WAVES))
lock_ten
fm_during 3 none
fm_submit $((FM_JOBS - FM_NEXT_N))
# every other job of the workload ends while the 10 stay locked
h_wait_for 300 '[ "$(others_left)" = 0 ]' || h_not_ok "wait ran out: the other jobs finish while 10 rows are locked ($(others_left) left)"
others_after=$((SECONDS - LOCKED_AT))
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($LOCKED) AND state = 'finished'")" \
    "row-locks: none of the 10 locked jobs could finish while locked"
h_log "row-locks: the other $(( $(h_sql -c "SELECT count(*) FROM fm.jobs WHERE scenario = '$FM_SCN'") - 10 )) jobs finished ${others_after} s after the lock was taken"
# hold on until the lock is as old as the scenario says
h_wait_for $((LOCK_SECONDS + 60)) '[ $((SECONDS - LOCKED_AT)) -ge '"$LOCK_SECONDS"' ]' || true
release
held_for=$((SECONDS - LOCKED_AT))
fm_finish
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($LOCKED) AND (state <> 'finished' OR result IS NULL)")" \
    "row-locks: the 10 finished once the lock was released (held ${held_for} s)"
logs=$(cat "${FM_DLOG[@]}")
said=$(grep 'event=job.row_locked' <<<"$logs" | grep -oE ' job=[0-9]+ ' | tr -dc '0-9\n' | sort -u)
h_eq 10 "$(tr ',' '\n' <<<"$LOCKED" | sort -u | comm -12 - <(echo "$said") | wc -l)" \
    "row-locks: the daemon said for each of the 10 that its row is locked"
h_eq 0 "$(grep 'event=job.row_locked' <<<"$logs" | grep -oE ' job=[0-9]+ ' | sort | uniq -d | wc -l)" \
    "row-locks: once per job"
grep 'event=job.row_unlocked' <<<"$logs" | head -n 2 | cut -c1-200 | sed 's/^/#   /'
h_eq 0 "$(grep -cE 'event=(job\.write_retry|lease\.renew_failed)' <<<"$logs" || true)" \
    "row-locks: no write failed and no renewal failed because of the locks"
FM_TIME_SCALE=$FM_TIME_SCALE_BEFORE

fm_table
