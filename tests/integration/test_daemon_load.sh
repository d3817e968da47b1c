# 1,000 jobs enqueued at once, of mixed kinds: every one finishes once, with
# the right result and its log, and nothing is started twice.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
H_LOG_LEVEL=info h_daemon_config "$H_TMP/amtacs.yaml"
h_sql -c "SELECT acs.register_connection('AMTDEMO', 'enabled')" >/dev/null

# Enqueued in one transaction before the daemon starts: all at once.
{
    echo "BEGIN;"
    for i in $(seq 1 1000); do
        case $((i % 5)) in
            0) echo "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT', external_ref => 'i$i');" ;;
            1) echo "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'ECHOPARAMS', ARRAY['N=$i', 'MODE=x y'], external_ref => 'e$i');" ;;
            2) echo "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'ERRORJOB', external_ref => 'r$i');" ;;
            3) echo "SELECT acs.submit_script_job('AMTDEMO', 'DEMO2', 'F:\\Amt\\Scripts\\DEMO2\\RUN_FILENAMETEST.ps1', external_ref => 's$i');" ;;
            4) echo "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANTMSG', external_ref => 'm$i');" ;;
        esac
    done
    echo "COMMIT;"
} | h_sql >/dev/null
h_eq 1000 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state = 'queued'")" "1,000 jobs are queued"

h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_sql 300 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'" &&
    h_ok "all 1,000 jobs finished" || h_not_ok "jobs left: $(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'")"

h_eq "e|success|200
i|success|200
m|success|200
r|failure|200
s|failure|200" "$(h_sql -c "SELECT left(external_ref, 1), result, count(*) FROM acs.jobs GROUP BY 1, 2 ORDER BY 1")" \
    "every kind has the right result"
h_eq 1000 "$(h_sql -c "SELECT count(*) FROM acs.job_logs")" "every job has its log"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.job_logs l JOIN acs.jobs j ON j.id = l.job_id WHERE j.external_ref LIKE 's%' AND l.log NOT LIKE '%pwsh%'")" \
    "the script jobs' logs carry their messages"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.job_logs l JOIN acs.jobs j ON j.id = l.job_id WHERE j.external_ref LIKE 'e%' AND l.log NOT LIKE '%Parameters      : N=' || substr(j.external_ref, 2) || ' MODE=x y' || chr(10) || '%'")" \
    "each batch job's log lists its own task values"
h_eq 1000 "$(curl -fsS "$H_SIM_URL/sim/tasks" | jq '[.tasks[].taskId] | unique | length')" "the server saw 1,000 distinct taskIds"
h_eq 0 "$(h_sim_counter .duplicate_starts)" "and no Start was sent twice"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.job_messages")" "no running messages are left behind"
calls=$(curl -fsS "$H_SIM_URL/sim/counters" | jq '[.routes[]] | add')
conns=$(h_sim_counter .connections)
h_eq 1 "$([ "$conns" -le 16 ] && [ "$calls" -ge 1000 ] && echo 1 || echo 0)" \
    "HTTP connections are kept alive and reused ($calls calls over $conns connections)"

# NOTIFY is a hint: with the notification trigger off, the slow rescan still finds work.
h_sql -c "ALTER TABLE acs.jobs DISABLE TRIGGER jobs_notify_queued_insert" >/dev/null
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_sql -c "ALTER TABLE acs.jobs ENABLE TRIGGER jobs_notify_queued_insert" >/dev/null
h_ctl wait "$id" --timeout 60 --quiet >/dev/null && h_ok "a job whose NOTIFY never came is found by the rescan" ||
    h_not_ok "a job whose NOTIFY never came is found by the rescan"
