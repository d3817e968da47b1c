# Admins and operators: Full Comm (enabled, limited, disabled) taking effect
# at once and surviving restarts, comm status, kill in every state with its
# outcome, alerts (row, NOTIFY, command), retention at its boundary, and a
# changed Batch User password used from the next logon without a restart.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start --time-scale 0.02
h_batch_user amtopcon amtopcon-secret
# The directory is written into the script: the command gets no variable of
# the daemon's but PATH, LANG, LC_ALL and TZ (test_alert_command.sh).
cat >"$H_TMP/alert.sh" <<SH
#!/bin/sh
env | grep '^AMTACS_' | sort > "$H_TMP/alert.\$AMTACS_JOB_ID"
SH
chmod +x "$H_TMP/alert.sh"
H_DAEMON_EXTRA="  purge_interval: 1s
  alert_command: $H_TMP/alert.sh" \
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
starts() { h_sim_counter .start_calls; }
state() { h_sql -c "SELECT state FROM acs.jobs WHERE id = $1"; }
# comm STATE [CONNECTION]: amtacsctl comm STATE, then waits until the daemon has
# taken it on (its conn.comm log line); what amtacsctl said is in COMM_OUT.
comm() {
    local phrase n
    case $1 in
        enable) phrase='Full Comm enabled' ;;
        limit) phrase='limited: no new starts' ;;
        disable) phrase='disabled: nothing is sent' ;;
    esac
    n=$(grep -c "event=conn.comm .*$phrase" "$H_DAEMON_LOG" || true)
    COMM_OUT=$(h_ctl comm "$1" "${2:-AMTDEMO}")
    h_wait_for 60 '[ "$(grep -c "event=conn.comm .*$phrase" "$H_DAEMON_LOG")" -gt "$n" ]' ||
        h_not_ok "the daemon takes on comm $1"
}
# end_on_server ID: the job's request ends DONE on the server (an operator there)
end_on_server() {
    curl -fsS -o /dev/null -X POST --data '{"code":4}' \
        "$H_SIM_URL/sim/requests/$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $1")/state"
}

# --- comm status ------------------------------------------------------------------
h_wait_sql 30 t "SELECT server_ok FROM acs.connections WHERE name = 'AMTDEMO'"
status=$(h_ctl comm status)
h_match "AMTDEMO +enabled +answers" "$status" "comm status: Full Comm enabled, the server answers its heartbeat"
h_eq "enabled true 0 0" "$(h_ctl comm status --json | jq -r '.[0] | "\(.comm_state) \(.server_ok) \(.queued) \(.in_flight)"')" \
    "comm status --json with queued and in-flight counts"
h_match "^20[0-9]{2}-" "$(h_ctl comm status --json | jq -r '.[0].last_contact')" "and the last contact"

# --- disabled: nothing is sent, nothing is lost, it starts when enabled -------------
comm disable
h_match "disabled: nothing is sent" "$COMM_OUT" "comm disable"
before=$(starts)
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
sleep 1.5 # and nothing happens
h_eq queued "$(state "$id")" "while disabled a new job stays queued"
h_eq "$before" "$(starts)" "and nothing is sent to the server"
h_match "AMTDEMO +disabled .* 1 +0 " "$(h_ctl comm status)" "comm status shows it queued"
comm enable
h_ctl wait "$id" --timeout 60 --quiet >/dev/null && h_ok "enabled again, the queued job starts and ends" ||
    h_not_ok "enabled again, the queued job starts and ends"

# disabled with a job running: no traffic at all, and it ends once enabled
# (LONGRUNNINGREPORT runs until it is ended on the server, here while disabled)
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = $id"
comm disable
sleep 0.5 # for the calls already out to come back
calls=$(curl -fsS "$H_SIM_URL/sim/counters" | jq '[.routes[]] | add')
end_on_server "$id"
sleep 1.5 # and nothing happens
h_eq "$calls" "$(curl -fsS "$H_SIM_URL/sim/counters" | jq '[.routes[]] | add')" \
    "while disabled not one call goes to the server, not even for a running job"
h_eq running "$(state "$id")" "the running job is not lost"
comm enable
h_ctl wait "$id" --timeout 60 --quiet >/dev/null
h_eq DONE "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = $id")" "enabled again, it is followed to DONE"

# limited: running jobs are followed to their end; new ones wait
run=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = $run"
comm limit
h_match "limited" "$COMM_OUT" "comm limit"
new=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
end_on_server "$run"
h_ctl wait "$run" --timeout 60 --quiet >/dev/null
h_eq DONE "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = $run")" "limited: the running job is followed to DONE"
h_eq queued "$(state "$new")" "limited: the new job waits"

# the state survives a restart of the daemon
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
sleep 1
h_eq queued "$(state "$new")" "after a daemon restart the connection is still limited"
comm enable
h_ctl wait "$new" --timeout 60 --quiet >/dev/null && h_ok "and enabling it starts the job" || h_not_ok "and enabling it starts the job"
h_run_fails "an unknown connection" h_ctl comm enable NOSUCH
h_match "connection 'NOSUCH' is not known" "$H_OUT" "is named in the error"

# --- kill -------------------------------------------------------------------------
# a queued job ends KILLED without being started
comm disable
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
before=$(starts)
h_match "ended KILLED" "$(h_ctl kill "$id")" "a queued job is killed at once"
h_eq "KILLED|failure" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id")" "it ends KILLED, failure"
h_eq "$before" "$(starts)" "without being started"
h_match "Completion Code : KILLED" "$(h_ctl log "$id")" "with its job log"
comm enable

# a Kill that fails: the operator sees why, the daemon retries, KILLED only when confirmed
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = $id"
curl -fsS -X PUT --data '{"error_rate":1,"error_status":503,"routes":["kill"],"count":3}' "$H_SIM_URL/sim/faults" >/dev/null
out=$(h_ctl kill "$id")
h_match "kill failed, still running: HTTP 503" "$out" "amtacsctl kill shows a failed Kill with the reason"
h_match "failed, still running" "$(h_ctl show "$id")" "amtacsctl show too"
h_ne_killed=$(h_sql -c "SELECT coalesce(completion_name, 'running') FROM acs.job_results WHERE id = $id")
h_eq running "$h_ne_killed" "the job is not shown KILLED while the server has not confirmed"
h_ctl wait "$id" --timeout 60 --quiet >/dev/null || true
h_eq KILLED "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = $id")" "the daemon retries until the server confirms"
h_eq 4 "$(curl -fsS "$H_SIM_URL/sim/counters" | jq .routes.kill)" "three failed Kill calls, then the one that worked"

# a kill while the daemon is busy reaches the server at once
for i in $(seq 1 200); do echo "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'REPORTTEST01');"; done | h_sql >/dev/null
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 120 running "SELECT state FROM acs.jobs WHERE id = $id"
kills=$(h_sim_counter .kills)
t0=$(date +%s%N)
h_sql -c "SELECT acs.request_kill($id)" >/dev/null
h_wait_for 60 '[ "$(h_sim_counter .kills)" -gt "$kills" ]' || true
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
h_eq $((kills + 1)) "$(h_sim_counter .kills)" "a kill requested while 200 jobs run reaches the server (after ${ms} ms)"
h_ctl wait "$id" --timeout 60 --quiet >/dev/null || true
h_wait_sql 180 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'"

# not allowed where Allow Kill Job is false
h_sql -c "SELECT acs.configure_connection('NOKILL', 'http://127.0.0.1:1', 'amtopcon', false, 30)" >/dev/null
id=$(h_ctl submit batch -C NOKILL -a DEMO2 -j INSTANT)
h_run_fails "a kill on a connection without Allow Kill Job is refused" h_ctl kill "$id"
h_match "kills are not allowed on connection NOKILL" "$H_OUT" "with a clear message"
h_run_fails "a finished job cannot be killed" h_ctl kill 1
h_match "has already finished" "$H_OUT" "and nothing changes"

# --- alerts -------------------------------------------------------------------------
# one session listens, submits, and waits until the job's alert is written
listen=$(psql -X -At -c "LISTEN acs_alerts" -c "SELECT 'id=' || acs.submit_batch_job('AMTDEMO', 'DEMO2', 'ERRORJOB')" \
    -c "DO \$\$ BEGIN FOR i IN 1..2400 LOOP
            EXIT WHEN EXISTS (SELECT FROM acs.alerts a JOIN acs.jobs j ON j.id = a.job_id WHERE j.job_name = 'ERRORJOB');
            PERFORM pg_sleep(0.05); END LOOP; END \$\$" -c "SELECT 1" 2>&1)
id=$(grep -o '^id=[0-9]*' <<<"$listen" | cut -d= -f2)
h_ctl wait "$id" --timeout 60 --quiet >/dev/null || true
h_match 'notification "acs_alerts"' "$listen" "a job ending ERROR (11) raises an alert NOTIFY"
h_eq "11|ERROR" "$(h_sql -c "SELECT code, name FROM acs.alerts WHERE job_id = $id")" "and an alerts row"
h_wait_until 60 test -s "$H_TMP/alert.$id"
h_match "AMTACS_CODE=11" "$(cat "$H_TMP/alert.$id" 2>/dev/null)" "the alert command ran with the job's details"
h_match "AMTACS_JOB_NAME=ERRORJOB" "$(cat "$H_TMP/alert.$id" 2>/dev/null)" "including the job name"
h_match "AMTACS_SERVER=$H_SIM_URL" "$(cat "$H_TMP/alert.$id" 2>/dev/null)" "and the server's URL"
ids=()
for j in ABORTJOB INSTANT SELFKILL; do ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j $j)"); done
for i in "${ids[@]}"; do h_ctl wait "$i" --timeout 60 --quiet >/dev/null || true; done
h_eq "12" "$(h_sql -c "SELECT string_agg(code::text, ',') FROM acs.alerts WHERE job_id IN (${ids[0]}, ${ids[1]}, ${ids[2]})")" \
    "ABORTED (12) raises one too; DONE and KILLED do not"
h_match "ERRORJOB" "$(h_ctl alerts)" "amtacsctl alerts lists them"
aid=$(h_sql -c "SELECT id FROM acs.alerts WHERE job_id = $id")
h_match "acknowledged" "$(h_ctl alerts ack "$aid")" "alerts ack"
[[ "$(h_ctl alerts)" == *"job $id "* ]] && h_not_ok "an acknowledged alert leaves the open list" || h_ok "an acknowledged alert leaves the open list"

# --- retention ------------------------------------------------------------------------
a=$(h_sql -c "SELECT min(job_id) FROM acs.job_logs")
b=$(h_sql -c "SELECT max(job_id) FROM acs.job_logs")
h_sql -c "UPDATE acs.connections SET retain_log_days = 30 WHERE name = 'AMTDEMO'" >/dev/null
kill -STOP "$H_DAEMON_PID"   # hold the daemon's own purge while the rows are set up
h_sql -c "UPDATE acs.job_logs SET written_at = now() - interval '30 days' + interval '1 minute' WHERE job_id = $a" >/dev/null
h_sql -c "UPDATE acs.job_logs SET written_at = now() - interval '30 days' - interval '1 minute' WHERE job_id = $b" >/dev/null
h_match "^1 job log" "$(h_ctl purge)" "amtacsctl purge deletes the one log past 30 days"
h_eq "1|0" "$(h_sql -c "SELECT count(*) FILTER (WHERE job_id = $a), count(*) FILTER (WHERE job_id = $b) FROM acs.job_logs")" \
    "the log one minute short of 30 days stays"
h_eq "finished" "$(state "$b")" "the purged job's outcome remains"
h_match "was purged" "$(h_ctl log "$b" 2>&1 || true)" "amtacsctl log says its log was purged"
kill -CONT "$H_DAEMON_PID"
c=$(h_sql -c "SELECT max(job_id) FROM acs.job_logs")
h_sql -c "UPDATE acs.job_logs SET written_at = now() - interval '31 days' WHERE job_id = $c" >/dev/null
h_wait_sql 60 0 "SELECT count(*) FROM acs.job_logs WHERE job_id = $c" && h_ok "the daemon purges by itself (purge_interval)" ||
    h_not_ok "the daemon purges by itself (purge_interval)"

# --- a changed password is used from the next logon, without a restart ----------------
curl -fsS -X POST --data '{"name":"amtopcon","password":"a-new-password-9"}' "$H_SIM_URL/sim/users" >/dev/null
curl -fsS -X POST "$H_SIM_URL/sim/tokens/expire" >/dev/null
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_ctl wait "$id" --timeout 60 --quiet >/dev/null || true
h_eq "24" "$(h_sql -c "SELECT completion_code FROM acs.jobs WHERE id = $id")" "with the old password the logon is refused (24)"
printf 'a-new-password-9\n' | h_ctl batch-user set amtopcon --public-key "$H_TMP/secret.key.pub" >/dev/null
sleep 2 # the daemon reloads the password on a NOTIFY and says nothing: no state to wait for
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_ctl wait "$id" --timeout 60 --quiet >/dev/null && h_ok "after batch-user set the daemon logs on with the new password, no restart" ||
    h_not_ok "after batch-user set the daemon logs on with the new password, no restart"

# --- comm status when the server stops answering -----------------------------------------
curl -fsS -X PUT --data '{"down":true}' "$H_SIM_URL/sim/faults" >/dev/null
h_wait_sql 60 f "SELECT server_ok FROM acs.connections WHERE name = 'AMTDEMO'" || true
status=$(h_ctl comm status)
h_match "AMTDEMO +enabled +no answer" "$status" "comm status shows that the server does not answer its heartbeat"
h_match "cannot reach http://127.0.0.1:[0-9]+" "$status" "with the last error and when it happened"
curl -fsS -X DELETE "$H_SIM_URL/sim/faults" >/dev/null
h_wait_sql 60 t "SELECT server_ok FROM acs.connections WHERE name = 'AMTDEMO'" &&
    h_ok "and that it answers again once it is back" || h_not_ok "and that it answers again once it is back"
