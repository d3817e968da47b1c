# Nothing lost, nothing started twice: kill -9 and restarts, a graceful stop
# with jobs running, a second daemon, the AMT server going away, PostgreSQL
# restarting, and tokens expiring -- every job still ends exactly once.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
H_LEASE=2 h_daemon_config "$H_TMP/amtacs.yaml"
h_sql -c "SELECT acs.register_connection('AMTDEMO', 'enabled')" >/dev/null

unfinished() { h_sql -c "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'"; }
all_finished() { [ "$(unfinished)" = 0 ]; }
sim_state() { # sim_state JOB_ID CODE: the operator forces a state on the server
    local brid
    brid=$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $1")
    curl -fsS -X POST --data "{\"code\":$2}" "$H_SIM_URL/sim/requests/$brid/state" >/dev/null
}
# Every job of the database has exactly one taskId on the server, which was
# turned into exactly one request, and the job's BatchRequestId is that request.
exactly_once() {
    local tasks jobs bad
    tasks=$(curl -fsS "$H_SIM_URL/sim/tasks" | jq -r '.tasks[] | "\(.taskId) \(.BatchRequestId)"' | sort)
    jobs=$(h_sql -c "SELECT task_id || ' ' || batch_request_id FROM acs.jobs WHERE batch_request_id IS NOT NULL ORDER BY 1" | sort)
    if [ "$jobs" == "$tasks" ]; then
        h_ok "$1: every taskId the server saw belongs to one job and got one request"
    else
        h_not_ok "$1: every taskId the server saw belongs to one job and got one request"
        diff <(echo "$jobs") <(echo "$tasks") | head -20 | sed 's/^/#   /'
        diff <(echo "$jobs") <(echo "$tasks") | sed -n 's/^[<>] \([0-9a-f-]*\) .*/\1/p' | while read -r t; do
            h_sql -c "SELECT * FROM acs.jobs WHERE task_id = '$t'" | sed 's/^/#   job: /'
        done
    fi
    bad=$(h_sql -c "SELECT count(*) FROM acs.jobs j LEFT JOIN acs.job_logs l ON l.job_id = j.id WHERE j.state = 'finished' AND l.job_id IS NULL")
    h_eq 0 "$bad" "$1: every finished job has its log"
}

# --- kill -9 at random moments, restart, repeat -------------------------------
for i in $(seq 1 40); do
    case $((i % 4)) in
        0) h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT >/dev/null ;;
        1) h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01 >/dev/null ;;
        2) h_ctl submit batch -C AMTDEMO -a DEMO2 -j PARENTJOB >/dev/null ;;
        3) h_ctl submit script -C AMTDEMO -a DEMO2 -s RUN_PARAMETERTEST.ps1 -p P=1 >/dev/null ;;
    esac
done
for round in 1 2 3; do
    h_daemon_start "$H_TMP/amtacs.yaml"
    h_daemon_ready
    sleep "0.$((RANDOM % 5 + 1))"
    kill -9 "$H_DAEMON_PID"
    wait "$H_DAEMON_PID" 2>/dev/null || true
done
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_until 60 all_finished && h_ok "after three kill -9 and a restart every job ended" ||
    h_not_ok "jobs left unfinished: $(unfinished)"
h_eq 40 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state = 'finished' AND result = 'success'")" \
    "all 40 jobs succeeded"
exactly_once "kill -9"
h_match "job.resumed|job.claimed" "$(cat "$H_TMP"/daemon.*.log)" "restarted daemons took the jobs over"

# --- a graceful stop leaves running jobs running; a restart follows them -----
long=()
for i in 1 2 3; do long+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)"); done
h_wait_sql 15 3 "SELECT count(*) FROM acs.jobs WHERE job_name = 'LONGRUNNINGREPORT' AND state = 'running'"
created=$(h_sim_counter .requests_created)
t0=$SECONDS
kill -TERM "$H_DAEMON_PID"
h_wait_until 10 bash -c "! kill -0 $H_DAEMON_PID 2>/dev/null" && h_ok "SIGTERM: the daemon exits within a few seconds" ||
    h_not_ok "SIGTERM: the daemon still runs after $((SECONDS - t0)) s"
wait "$H_DAEMON_PID" 2>/dev/null && h_ok "SIGTERM: exit status 0" || h_not_ok "SIGTERM: exit status non-zero"
h_eq 3 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE job_name = 'LONGRUNNINGREPORT' AND state = 'running' AND lease_expires <= now()")" \
    "the running jobs stay running, their leases handed back"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_until 10 grep -q "event=job.resumed" "$H_DAEMON_LOG" && h_ok "a restarted daemon follows them again" ||
    h_not_ok "a restarted daemon follows them again"
for id in "${long[@]}"; do sim_state "$id" 3; done
h_wait_until 20 all_finished || true
h_eq 3 "$(h_sql -c "SELECT count(*) FROM acs.job_results WHERE name = 'LONGRUNNINGREPORT' AND completion_name = 'KILLED'")" \
    "they end KILLED from the server, with their logs"
h_eq "$created" "$(h_sim_counter .requests_created)" "nothing was started again after the restart"

# --- the AMT server goes away while a job runs: the job does not fail ---------
# (a job that runs until told: it is still running when the server goes)
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 10 running "SELECT state FROM acs.jobs WHERE id = $id" || h_not_ok "wait ran out: job $id running"
mark=$(wc -l <"$H_DAEMON_LOG")
curl -fsS -X PUT --data '{"down":true}' "$H_SIM_URL/sim/faults" >/dev/null
sim_state "$id" 4   # the job ends DONE on the server meanwhile; the daemon cannot see it
h_wait_for 20 'tail -n +"$((mark + 1))" "$H_DAEMON_LOG" | grep -q "event=job.follow_retry.* job=$id "' ||
    h_not_ok "wait ran out: the daemon fails to reach the server for job $id"
h_eq running "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $id")" "while the server is down the job stays running"
curl -fsS -X DELETE "$H_SIM_URL/sim/faults" >/dev/null
h_ctl wait "$id" --timeout 20 >/dev/null
h_eq "DONE|success" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id")" \
    "after the outage it is followed to DONE"
h_match "job.follow_retry" "$(cat "$H_DAEMON_LOG")" "the daemon logged the failed checks"

# --- PostgreSQL restarts and a backend is terminated mid-run ------------------
ids=()
for i in $(seq 1 10); do ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)"); done
sleep 0.2
h_pg_restart
# once the daemon has reconnected (its backoff after a restart can pass 0.3 s on a slow machine)
h_wait_for 20 '[ "$(h_sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"'amtacsd'"'")" -gt 0 ]' ||
    h_not_ok "the daemon reconnected after the restart"
h_sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'amtacsd' AND pid <> pg_backend_pid()" | grep -q t || h_not_ok "a backend of the daemon was terminated"
for i in $(seq 1 10); do ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)"); done
h_wait_until 60 all_finished && h_ok "after a PostgreSQL restart and a terminated backend every job ended" ||
    h_not_ok "jobs left unfinished: $(unfinished)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id IN ($(IFS=,; echo "${ids[*]}")) AND result <> 'success'")" \
    "and none failed because of it"
h_match "event=db.down" "$(cat "$H_DAEMON_LOG")" "the daemon saw the database go"

# --- tokens expire mid-run: one re-logon, no failure --------------------------
# (a job that runs until killed: it is still running when the token goes)
logons=$(h_sim_counter .logons)
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 10 running "SELECT state FROM acs.jobs WHERE id = $id" || h_not_ok "wait ran out: job $id running"
curl -fsS -X POST "$H_SIM_URL/sim/tokens/expire" >/dev/null
h_wait_for 20 '[ "$(h_sim_counter .logons)" -gt "$logons" ]' ||
    h_not_ok "wait ran out: the daemon logs on again after its token expired"
sim_state "$id" 4
h_ctl wait "$id" --timeout 20 >/dev/null || true
h_eq "DONE" "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = $id")" \
    "a job survives its token expiring (followed on to its end)"
h_eq $((logons + 1)) "$(h_sim_counter .logons)" "the daemon logged on again exactly once"

# --- a second daemon: both share the queue, no job starts twice ----------------
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
for i in $(seq 1 100); do echo "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT');"; done | h_sql >/dev/null
h_wait_until 60 all_finished && h_ok "two daemons finished 100 more jobs" || h_not_ok "left: $(unfinished)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE job_name = 'INSTANT' AND result <> 'success'")" \
    "none of them failed"
exactly_once "two daemons"

# --- a daemon paused past its lease writes nothing and sends nothing after ------
h_daemons_stop
H_CONN_EXTRA="    allow_kill: true" H_LEASE=2 h_daemon_config "$H_TMP/kill.yaml"
h_daemon_start "$H_TMP/kill.yaml"
h_daemon_ready
a_pid=$H_DAEMON_PID a_log=$H_DAEMON_LOG
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 10 running "SELECT state FROM acs.jobs WHERE id = $id"
owner_a=$(h_sql -c "SELECT owner FROM acs.jobs WHERE id = $id")
kills=$(h_sim_counter .kills)
kill -STOP "$a_pid"
h_daemon_start "$H_TMP/kill.yaml"
h_daemon_ready
h_wait_sql 15 t "SELECT owner <> '$owner_a' FROM acs.jobs WHERE id = $id" &&
    h_ok "a second daemon took over the paused daemon's job after its lease expired" ||
    h_not_ok "a second daemon took over the paused daemon's job after its lease expired"
h_ctl kill "$id" >/dev/null
h_ctl wait "$id" --timeout 20 >/dev/null || true
kill -CONT "$a_pid"
sleep 1.5
h_eq "KILLED" "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = $id")" "the new holder killed and finished it"
h_eq $((kills + 1)) "$(h_sim_counter .kills)" "exactly one Kill reached the server: none from the paused daemon"
h_eq "f" "$(h_sql -c "SELECT owner = '$owner_a' FROM acs.jobs WHERE id = $id")" "the paused daemon wrote nothing for the job it lost"
kill -0 "$a_pid" 2>/dev/null && h_ok "the resumed daemon runs on" || h_not_ok "the resumed daemon runs on"
