# A Start whose answer is lost: against a server with idempotent Start the
# daemon simply sends it again and gets the same request; against one without,
# the job is never started twice -- it goes in doubt with an alert, and an
# operator resolves it with amtacsctl resolve.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
lose_start_answers() { # the Start takes effect but its answer never arrives
    curl -fsS -X PUT --data "{\"reset_after_rate\":1,\"routes\":[\"start\"],\"count\":$1}" \
        "$H_SIM_URL/sim/faults" >/dev/null
}
features() { curl -fsS -X PUT --data "{\"features\":$1}" "$H_SIM_URL/sim/config" >/dev/null; }

# Idempotent server: the retry returns the request the lost answer was about.
lose_start_answers 1
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_ctl wait "$id" --timeout 120 >/dev/null
h_eq "DONE|success" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id")" \
    "idempotent server: the job ends DONE after its Start answer was lost"
task=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id")
h_eq "1 2" "$(curl -fsS "$H_SIM_URL/sim/tasks" | jq -r "[.tasks[] | select(.taskId == \"$task\")] | \"\(length) \(.[0].startCalls)\"")" \
    "one request for its taskId, reached by two Start calls"

# A server without idempotent Start: the daemon learns it from the heartbeat.
features '["MonitorJobs"]'
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_until 30 grep -q "NOT idempotent" "$H_DAEMON_LOG" && h_ok "the daemon reads the server's features" ||
    h_not_ok "the daemon reads the server's features"
lose_start_answers 3
ids=()
# The second carries values the text[] literal must quote and escape: its
# log after resolve --fail lists them as they were submitted.
ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)")
ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT -v 'A=1' -v 'B=x, "y" {z}' -v 'C=back\slash' -v 'D=NULL')")
ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)")
h_wait_sql 60 3 "SELECT count(*) FROM acs.jobs WHERE id IN (${ids[0]}, ${ids[1]}, ${ids[2]}) AND state = 'in_doubt'" &&
    h_ok "each job whose Start answer was lost goes in doubt" || h_not_ok "each job whose Start answer was lost goes in doubt"
for id in "${ids[@]}"; do
    task=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id")
    h_eq 1 "$(curl -fsS "$H_SIM_URL/sim/tasks" | jq "[.tasks[] | select(.taskId == \"$task\")] | length")" \
        "job $id was started once and not again"
done
h_eq 3 "$(h_sql -c "SELECT count(*) FROM acs.alerts WHERE name = 'START_IN_DOUBT' AND acknowledged_at IS NULL")" \
    "an alert is raised for each"
h_match "may have started the job" "$(h_ctl show "${ids[0]}")" "amtacsctl show says why"

# The three ways out.
task=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = ${ids[0]}")
brid=$(curl -fsS "$H_SIM_URL/sim/tasks" | jq -r ".tasks[] | select(.taskId == \"$task\") | .BatchRequestId")
h_ctl resolve "${ids[0]}" --follow "$brid" >/dev/null
h_ctl wait "${ids[0]}" --timeout 120 >/dev/null
h_eq "DONE|$brid" "$(h_sql -c "SELECT completion_name, batch_request_id FROM acs.job_results r JOIN acs.jobs j USING (id) WHERE id = ${ids[0]}")" \
    "--follow: the daemon follows the request the operator found to DONE"

h_ctl resolve "${ids[1]}" --fail >/dev/null
h_eq "finished|UNDEFINED|failure" "$(h_sql -c "SELECT state, completion_name, result FROM acs.job_results WHERE id = ${ids[1]}")" \
    "--fail: the job ends as a failure"
h_match "Completion Code : UNDEFINED" "$(h_ctl log "${ids[1]}")" "with a job log in the reference layout"
h_eq 'Parameters      : A=1 B=x, "y" {z} C=back\slash D=NULL' "$(h_ctl log "${ids[1]}" | grep '^Parameters')" \
    "the log lists its task values as submitted (the text[] literal read by jobspec_array_parse)"

created=$(h_sim_counter .requests_created)
h_ctl resolve "${ids[2]}" --restart >/dev/null
h_ctl wait "${ids[2]}" --timeout 120 >/dev/null
h_eq "DONE" "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = ${ids[2]}")" \
    "--restart: the job is queued again and runs"
h_eq $((created + 1)) "$(h_sim_counter .requests_created)" "with exactly one new Start"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.alerts WHERE name = 'START_IN_DOUBT' AND acknowledged_at IS NULL")" \
    "resolving acknowledges the alerts"
h_run_fails "a job not in doubt cannot be resolved" h_ctl resolve "${ids[2]}" --fail
h_match "not in doubt" "$H_OUT" "and the operator is told why"

# A taken-over job in 'starting' against such a server is not started again either.
h_sql -c "SELECT acs.register_connection('AMTDEMO', 'enabled')" >/dev/null
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
# as if a daemon had claimed it and died (it may or may not have sent Start)
h_sql -c "SELECT count(*) FROM acs.claim_jobs('dead-daemon', 'AMTDEMO', 10, 0)" >/dev/null
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_sql 60 in_doubt "SELECT state FROM acs.jobs WHERE id = $id" &&
    h_ok "a job taken over from a dead daemon before its BatchRequestId was recorded goes in doubt" ||
    h_not_ok "a job taken over from a dead daemon before its BatchRequestId was recorded goes in doubt"

# Before any heartbeat has answered, whether Start may be repeated is not known:
# a Start that may have reached the server is neither repeated nor put in doubt
# until a heartbeat says. This server does not promise an idempotent Start, so
# the job then goes in doubt (with an idempotent one it is sent again: the
# fault matrix, test_faults_server).
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
curl -fsS -X PUT --data '{"error_rate":1,"error_status":503,"routes":["heartbeat","start"]}' \
    "$H_SIM_URL/sim/faults" >/dev/null
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_wait_until 30 grep -q "job=$id .*sent again only if the server's heartbeat says" "$H_DAEMON_LOG" &&
    h_ok "a Start that failed after it was sent, before any heartbeat answered, waits for the features" ||
    h_not_ok "a Start that failed after it was sent, before any heartbeat answered, waits for the features"
sleep 0.5
h_eq starting "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $id")" "it is neither in doubt nor failed meanwhile"
curl -fsS -X DELETE "$H_SIM_URL/sim/faults" >/dev/null
h_wait_sql 60 in_doubt "SELECT state FROM acs.jobs WHERE id = $id" &&
    h_ok "once the heartbeat says Start is not idempotent, it goes in doubt" ||
    h_not_ok "once the heartbeat says Start is not idempotent, it goes in doubt"
task=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id")
h_eq 0 "$(curl -fsS "$H_SIM_URL/sim/tasks" | jq "[.tasks[] | select(.taskId == \"$task\")] | length")" \
    "and no further Start was sent"

# A job taken over from a holder that is gone, with a kill requested, on a
# server without idempotent Start: its Start may have been sent, so it goes
# in doubt rather than started again, and the daemon lives on (going in doubt
# used to free the kill requester's name and free it again with the job: a
# double free, which ASan reports and glibc may or may not catch).
h_ctl comm disable AMTDEMO >/dev/null
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_sql -c "UPDATE acs.jobs SET state = 'starting', owner = 'a-gone-daemon', attempt = 1,
                 claimed_at = now(), task_id = gen_random_uuid(),
                 lease_expires = now() - interval '1 minute', kill_requested_at = now(),
                 kill_requested_by = 'operator1' WHERE id = $id" >/dev/null
h_ctl comm enable AMTDEMO >/dev/null
h_wait_sql 60 in_doubt "SELECT state FROM acs.jobs WHERE id = $id" &&
    h_ok "a taken-over job with a kill request goes in doubt on a non-idempotent server" ||
    h_not_ok "a taken-over job with a kill request goes in doubt on a non-idempotent server"
id2=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_wait_sql 60 finished "SELECT state FROM acs.jobs WHERE id = $id2" &&
    h_ok "and the daemon goes on with the next job" || h_not_ok "and the daemon goes on with the next job"
kill -0 "$H_DAEMON_PID" 2>/dev/null && h_ok "the daemon is still running" ||
    h_not_ok "the daemon is still running"
