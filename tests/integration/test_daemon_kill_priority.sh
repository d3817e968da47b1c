# A kill is immediate even when the server is slow and Starts queue up: the
# Kill call goes ahead of every waiting Start (the client's priority lane).
# Shown by order, not by time: when the Kill reaches the simulator, most of
# the Starts that were waiting when it was asked for have not.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start --time-scale 0.05 --verbose # the log shows when the late Kill is answered
h_batch_user amtopcon amtopcon-secret
H_DAEMON_EXTRA="  claim_batch: 1000" H_CONN_EXTRA="    allow_kill: true
    max_in_flight: 600" h_daemon_config "$H_TMP/amtacs.yaml"
# a timeout long enough that no queued call times out: the order is the client's
sed -i 's/^      timeout: 2s$/      timeout: 60s/' "$H_TMP/amtacs.yaml"
grep -q '      timeout: 60s' "$H_TMP/amtacs.yaml" || h_not_ok "the test sets a 60 s timeout"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

long=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $long" || h_not_ok "the long job runs"
# every Start now takes 150 ms: 8 connections carry about 50 a second, and
# without the priority lane the Kill would wait behind hundreds of them
curl -fsS -X PUT "$H_SIM_URL/sim/faults" -d '{"latency_ms":150,"routes":["start"]}' >/dev/null
h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT') FROM generate_series(1, 500)" >/dev/null
started() { [ "$(h_sim_counter .start_calls)" -ge 20 ]; }
h_wait_until 60 started || h_not_ok "Starts are under way"
h_ctl kill "$long" >/dev/null
at_request=$(h_sim_counter .start_calls)
h_wait_until 60 bash -c "[ \$(curl -fsS $H_SIM_URL/sim/counters | jq .kills) -ge 1 ]" ||
    h_not_ok "the Kill reached the server"
at_kill=$(h_sim_counter .start_calls)
# Behind the queue the Kill would come after all the Starts still waiting when
# it was asked for; ahead of it, after the few in flight and those sent while
# the daemon learnt of the kill (more on a busy machine, but not half of them).
waiting=$((501 - at_request))
[ $((at_kill - at_request)) -lt $((waiting / 2)) ] &&
    h_ok "the Kill went ahead of the queued Starts ($((at_kill - at_request)) of the $waiting waiting were sent before it)" ||
    h_not_ok "the Kill went ahead of the queued Starts ($((at_kill - at_request)) of the $waiting waiting were sent before it)"
h_wait_sql 120 "finished|KILLED" "SELECT state || '|' || completion_name FROM acs.job_results WHERE id = $long" &&
    h_ok "the job ends KILLED" || h_not_ok "the job ends KILLED"
curl -fsS -X DELETE "$H_SIM_URL/sim/faults" >/dev/null
h_wait_sql 180 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'" || h_not_ok "every job finished"
h_eq 500 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE completion_code = 4")" "the 500 queued jobs all ended DONE"
h_eq 501 "$(h_sim_counter .requests_created)" "none started twice"
h_eq 0 "$(h_sim_counter .duplicate_starts)" \
    "no Start was sent twice (a call waiting for a connection does not time out)"

# A job that ends while its Kill call is still out (the server holds every Kill
# 10 s, then answers 503 without acting on it; the test ends the job on the
# server as soon as the Kill has arrived): the daemon writes the job's end at
# once and, when the Kill call comes back, has nothing left to do with it. (It once freed
# the job there and then read it again in the Kill callback: a use after free
# that the ASan build turns into a crash.)
curl -fsS -X PUT "$H_SIM_URL/sim/faults" -d '{"latency_ms":10000,"error_rate":1,"error_status":503,"routes":["kill"]}' >/dev/null
kill_calls=$(h_sim_counter .routes.kill)
answered() { grep -c 'POST /api/OpConJobAction -> 503' "$H_TMP/sim.1.log" || true; }
answered_before=$(answered)
late=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $late" || h_not_ok "the report runs"
h_ctl kill "$late" >/dev/null
h_wait_for 30 '[ "$(h_sim_counter .routes.kill)" -gt "$kill_calls" ]' || h_not_ok "the late Kill reached the server"
brid=$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $late")
curl -fsS -X POST -d '{"code":4}' "$H_SIM_URL/sim/requests/$brid/state" >/dev/null
h_wait_sql 60 "finished|DONE" "SELECT state || '|' || completion_name FROM acs.job_results WHERE id = $late" &&
    h_ok "the job ended DONE while its Kill call was still out" ||
    h_not_ok "the job ended DONE while its Kill call was still out"
# the server answers the held Kill call, and the daemon gets the answer
h_wait_for 60 '[ "$(answered)" -gt "$answered_before" ]' || h_not_ok "the server answered the late Kill"
! grep -qE "event=job\.kill_(late|failed) .*job=$late( |$)" "$H_DAEMON_LOG" &&
    h_ok "the Kill call came back after the job had ended (the case under test)" ||
    h_not_ok "the Kill call came back after the job had ended (the case under test)"
kill -0 "$H_DAEMON_PID" 2>/dev/null && h_ok "the daemon is still up after the late Kill answer" ||
    h_not_ok "the daemon is still up after the late Kill answer"
id2=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_wait_sql 60 finished "SELECT state FROM acs.jobs WHERE id = $id2" && h_ok "and goes on working" ||
    h_not_ok "and goes on working"
h_daemons_stop
