#!/usr/bin/env bash
# An operator's bulk kill meets two daemons renewing their leases: no deadlock.
#
# 1,000 jobs run (LONGRUNNINGREPORT: until killed) under two daemons whose
# leases are renewed every 300 ms (leases of 10 s: on a loaded machine under
# ASan a 3 s lease could run out, which is a takeover, not this test's point).
# Twenty times, an operator kills 500 of them in ONE statement, in descending id order -- the order in which a hash join or
# a careless operator locks rows -- and 500 new ones replace them. Every kill
# must be carried out, no job dropped by a daemon, and PostgreSQL must never
# have had to break a deadlock. A daemon's multi-row statements lock in id
# order and skip rows someone else holds; it never waits on an operator.
source "$(dirname "$0")/../lib/harness.sh"

JOBS=${LOCK_JOBS:-1000}
KILLS=${LOCK_KILLS:-500}
ROUNDS=${LOCK_ROUNDS:-20}

H_PG_EXTRA_CONF="deadlock_timeout = 100ms
log_lock_waits = on
max_connections = 60
${LOCK_PG_CONF:-}" h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
H_LEASE=10 H_DAEMON_EXTRA="  renew_interval: 300ms" H_LOG_LEVEL=info H_CONN_EXTRA="    allow_kill: true
    max_in_flight: $JOBS" h_daemon_config "$H_TMP/amtacs.yaml"

submit() { # submit N: N jobs that run until killed, in one statement
    h_sql -c "SELECT count(acs.submit_batch_job('AMTDEMO', 'DEMO2', 'LONGRUNNINGREPORT'))
                FROM generate_series(1, $1)" >/dev/null
}
running() { h_sql -c "SELECT count(*) FROM acs.jobs WHERE state = 'running'"; }

h_daemon_start "$H_TMP/amtacs.yaml"; a=$H_DAEMON_LOG
h_daemon_ready
submit $((JOBS / 2))
h_wait_for 60 '[ "$(running)" = $((JOBS / 2)) ]' || h_not_ok "wait ran out: $((JOBS / 2)) jobs running under the first daemon"
h_daemon_start "$H_TMP/amtacs.yaml"; b=$H_DAEMON_LOG
h_daemon_ready
submit $((JOBS / 2))
h_wait_for 60 '[ "$(running)" = "$JOBS" ]' || h_not_ok "wait ran out: $JOBS jobs running (now $(running))"
h_eq 2 "$(h_sql -c "SELECT count(DISTINCT owner) FROM acs.jobs WHERE state = 'running'")" \
    "both daemons hold running jobs"

killed_total=0
bad_rounds=0
for round in $(seq 1 "$ROUNDS"); do
    n=$(h_sql -c "SELECT count(acs.request_kill(k.id))
                    FROM (SELECT j.id FROM acs.jobs AS j WHERE j.state = 'running'
                             AND j.kill_requested_at IS NULL
                           ORDER BY j.id DESC LIMIT $KILLS) AS k" 2>&1) || true
    [ "$n" = "$KILLS" ] || { bad_rounds=$((bad_rounds + 1)); h_log "round $round: the kill statement said: $n"; }
    killed_total=$((killed_total + KILLS))
    h_wait_sql 60 0 "SELECT count(*) FROM acs.jobs WHERE kill_requested_at IS NOT NULL AND state <> 'finished'" ||
        { h_not_ok "wait ran out: round $round's kills carried out"; break; }
    submit "$KILLS"
    h_wait_for 60 '[ "$(running)" = "$JOBS" ]' ||
        { h_not_ok "wait ran out: round $round: $JOBS jobs running again (now $(running))"; break; }
done

h_eq 0 "$bad_rounds" "every kill statement went through ($ROUNDS rounds of $KILLS, descending id order)"
h_eq 0 "$(grep -c 'deadlock detected' "$H_PG_DATA/server.log" || true)" \
    "PostgreSQL detected no deadlock"
grep -m3 -A3 'deadlock detected' "$H_PG_DATA/server.log" | sed 's/^/#   /' >&2 || true
h_eq "$killed_total" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state = 'finished' AND completion_code = 3
                                   AND kill_sent_at IS NOT NULL")" \
    "every kill was carried out: $killed_total jobs KILLED after a Kill call"
h_eq "$killed_total" "$(h_sim_counter .kills)" "the server received $killed_total Kill calls"
h_eq "$JOBS" "$(running)" "the other $JOBS jobs still run"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE attempt <> 1")" "no job changed hands"
h_eq 0 "$(cat "$a" "$b" | grep -cE 'event=(job\.lease_(lost|unsure)|lease\.renew_failed)' || true)" \
    "no daemon dropped a job or doubted a lease"
cat "$a" "$b" | grep -E 'event=(job\.lease_|lease\.renew_failed)' | head -n 5 | cut -c1-240 | sed 's/^/#   /' >&2 || true
