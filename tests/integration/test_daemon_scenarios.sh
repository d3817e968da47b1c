# The seed's scenarios end to end: the scheduler enqueues with SQL or amtacsctl,
# amtacsd runs the jobs on the simulator, and the merged job logs equal the
# vendor's reference logs byte for byte (but for the Server line, which is the
# connection's URL).
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

reference() { # the reference log with our Server URL
    sed "s|^Server          : .*|Server          : $H_SIM_URL|" "$AMTACS_SRC/tests/data/joblogs/$1"
}

# Scenario 1, through SQL as a scheduler would do it. It is the first request
# the simulator sees, so its BatchRequestId is 4280 as in the reference.
id1=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'REPORTTEST01')")
h_ctl wait "$id1" --timeout 120 >/dev/null
h_eq "finished|4|DONE|success" "$(h_sql -c "SELECT state, completion_code, completion_name, result FROM acs.job_results WHERE id = $id1")" \
    "REPORTTEST01 ends DONE (4), success"
h_eq "4280" "$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $id1")" "its BatchRequestId is 4280"
h_eq "$(reference REPORTTEST01.DONE.log)" "$(h_ctl log "$id1")" "REPORTTEST01's job log equals the reference"
reference REPORTTEST01.DONE.log >"$H_TMP/ref.log"
h_ctl log "$id1" >"$H_TMP/got.log"
cmp -s "$H_TMP/ref.log" "$H_TMP/got.log" && h_ok "the stored log is byte for byte the reference (trailing newline included)" ||
    h_not_ok "the stored log is byte for byte the reference: $(cmp "$H_TMP/ref.log" "$H_TMP/got.log")"

# Scenario 2, through amtacsctl.
id2=$(h_ctl submit script -C AMTDEMO -a DEMO2 -s 'F:\Amt\Scripts\DEMO2\RUN_FILENAMETEST.ps1')
h_ctl wait "$id2" --timeout 120 >/dev/null && h_not_ok "wait exits 0 for a failed job" || h_ok "wait exits non-zero for a failed job"
h_eq "finished|11|ERROR|failure" "$(h_sql -c "SELECT state, completion_code, completion_name, result FROM acs.job_results WHERE id = $id2")" \
    "the script without pwsh ends ERROR (11), failure"
h_eq "$(reference RUN_FILENAMETEST.ERROR.log)" "$(h_ctl log "$id2")" "its job log equals the reference"

# Scenario 3: LONGRUNNINGREPORT runs until an operator kills it with
# amtacsctl kill; it ends KILLED with no messages.
id3=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $id3"
sleep 0.3
h_eq "running" "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $id3")" "LONGRUNNINGREPORT keeps running"
h_match "ended KILLED|accepted the kill" "$(h_ctl kill "$id3")" "amtacsctl kill reports that the server took the kill"
h_ctl wait "$id3" --timeout 120 >/dev/null || true
h_eq "KILLED|failure" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id3")" "it ends KILLED (3), failure"
h_eq 1 "$(h_sim_counter .kills)" "one Kill request reached the server"
h_eq "$(reference LONGRUNNINGREPORT.KILLED.log)" "$(h_ctl log "$id3")" "its job log equals the reference"
h_run_fails "a finished job cannot be killed" h_ctl kill "$id3"
h_match "has already finished" "$H_OUT" "and the operator is told why"

# What the daemon sent: Submit User BATCH from Station OPCON, task values as given.
id4=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ECHOPARAMS -v 'PERIOD=2026-11' -v 'MODE=full run' -q URGENT -u JSMITH -r sched-42)
h_ctl wait "$id4" --timeout 120 >/dev/null
brid=$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $id4")
req=$(curl -fsS "$H_SIM_URL/sim/requests/$brid")
h_eq "BATCH OPCON" "$(jq -r '"\(.amtSubmitUser) \(.amtStation)"' <<<"$req")" "Start carried Submit User BATCH and Station OPCON"
h_eq '["PERIOD=2026-11","MODE=full run"]' "$(jq -c .taskValues <<<"$req")" "Start carried the task values in order"
h_eq "URGENT JSMITH" "$(jq -r '"\(.amtQueueName) \(.amtUser)"' <<<"$req")" "Start carried the queue and the AMT user"
log4=$(h_ctl log "$id4")
h_match $'Queue Name      : URGENT\n' "$log4" "the log shows the queue"
h_match $'Parameters      : PERIOD=2026-11 MODE=full run\n' "$log4" "the log lists the task values"
h_eq "sched-42|success" "$(h_sql -c "SELECT external_ref, result FROM acs.job_results WHERE id = $id4")" "the scheduler's reference is kept"

# Children: the parent's log holds its own and its children's messages.
id5=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j PARENTJOB)
h_ctl wait "$id5" --timeout 120 >/dev/null
brid=$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $id5")
all=$(curl -fsS -H "X-AMT-LogonToken: $(curl -fsS -X POST --data '{"user":"amtopcon","password":"amtopcon-secret"}' "$H_SIM_URL/api/logon" | jq -r .AmtLogonToken)" \
      "$H_SIM_URL/api/GetMessages/$brid?limit=1000" | jq '.messages[].text')
h_eq "$all" "$(h_ctl log "$id5" | sed -n '/^Job Log/,$p' | sed '1d;$d')" "the parent's log has every message of the task and its children, in order"
h_match "[1-9]" "$(curl -fsS "$H_SIM_URL/sim/requests/$brid" | jq '.children | length')" "the parent had children"

# 250 messages are read across pages, each exactly once.
id6=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j MANYMESSAGES)
h_ctl wait "$id6" --timeout 120 >/dev/null
h_eq 250 "$(h_ctl log "$id6" | grep -c '^"')" "all 250 messages are in the log"
h_eq 250 "$(h_ctl log "$id6" | grep '^"' | sort -u | wc -l)" "none of them twice"

# The scheduler learns outcomes from NOTIFY acs_job_finished.
got=$(psql -X -At -c "LISTEN acs_job_finished" -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')" \
      -c "DO \$\$ BEGIN FOR i IN 1..2400 LOOP
              EXIT WHEN NOT EXISTS (SELECT FROM acs.jobs WHERE state <> 'finished');
              PERFORM pg_sleep(0.05); END LOOP; END \$\$" -c "SELECT 1" 2>&1)
h_match 'Asynchronous notification "acs_job_finished" with payload "[0-9]+"' "$got" "a NOTIFY on acs_job_finished tells the job ended"
