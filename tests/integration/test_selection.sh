#!/usr/bin/env bash
# Integration Selection (issue 6/7): a job names a primary connection and up
# to 3 alternates; it runs on the first listed connection that is up, never on
# two AMT environments. One daemon serves five connections:
#   A, B, C  simulators (A's Starts can be made to lose their answers, and A
#            can be stopped with SIGSTOP and resumed);
#   D, E     addresses where nothing listens: every Start is refused before it
#            leaves, so a job goes on to its next connection, and ends 23
#            when none is left.
# Scenarios: primary disabled (1), primary's server silent past failover_after
# (2), a lost Start answer keeps the job on its server (3), every listed server
# down (4), kill -9 of the daemon while jobs go from one connection to the
# next (6). Each checks where each job ran on the simulators themselves:
# a taskId is never on two of them.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_batch_user amtopcon amtopcon-secret

# A at real time: its REPORTTEST01 runs 30 s, long enough to be held running.
h_sim_start --time-scale 1; A_URL=$H_SIM_URL; A_PID=$H_SIM_PID
h_sim_start; B_URL=$H_SIM_URL
h_sim_start; C_URL=$H_SIM_URL
# Two ports where nothing listens (bound, then closed again).
dead_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
D_PORT=$(dead_port)
D_URL="http://127.0.0.1:$D_PORT"
E_URL="http://127.0.0.1:$(dead_port)"
# A stopped simulator answers nothing, not even SIGTERM: resume it before the
# harness stops everything, whichever way the test ends.
trap 'rc=$?; kill -CONT "$A_PID" 2>/dev/null; (exit $rc); h_cleanup' EXIT

CFG=$H_TMP/amtacsd.yaml
conn() { # NAME URL
    cat <<CONN
  - name: $1
    url: $2
    batch_user: amtopcon
    failover_after: 2s
    poll:
      initial_delay: 20ms
      interval: 50ms
      max_interval: 200ms
    start_retry:
      attempts: 5
      delay: 50ms
    http:
      connect_timeout: 1s
      timeout: 5s
CONN
}
{
    cat <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
log_level: debug
daemon:
  lease_seconds: 3
  heartbeat_interval: 300ms
http:
  listen: "127.0.0.1:0"
connections:
CONF
    conn A "$A_URL"; conn B "$B_URL"; conn C "$C_URL"; conn D "$D_URL"; conn E "$E_URL"
} >"$CFG"
h_daemon_start "$CFG"
h_daemon_ready
h_wait_sql 30 "3" "SELECT count(*) FROM acs.connections WHERE server_ok AND name IN ('A','B','C')"

sim() { curl -fsS --max-time 5 -X "$2" "$1$3" ${4:+--data "$4"}; }
# The simulators that know a job's taskId, by connection name: "A", "B C", ...
ran_on() {
    local tid n url out=""
    tid=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $1")
    for n in A B C D; do
        url=${n}_URL
        [ "$n" != D ] || [ -n "${D_UP:-}" ] || continue
        if sim "${!url}" GET /sim/tasks | jq -e --arg t "$tid" '.tasks[] | select(.taskId == $t)' >/dev/null; then
            out="$out $n"
        fi
    done
    echo "${out# }"
}
submit() { # CONNECTION ALTERNATES(comma list) [JOB]
    h_sql -c "SELECT acs.submit_batch_job('$1', 'DEMO2', '${3:-INSTANT}', alternates => string_to_array('$2', ','))"
}
finished() { h_wait_sql "${2:-60}" "finished" "SELECT state FROM acs.jobs WHERE id = $1"; }
where() { h_sql -c "SELECT connection || ' ' || completion_code FROM acs.jobs WHERE id = $1"; }

# --- 1. Primary disabled: the first alternate runs it; with the first
#        alternate disabled too, the second does.
h_sql -c "SELECT acs.set_comm('A', 'disabled')" >/dev/null
j1=$(submit A B,C)
finished "$j1"
h_eq "B 4" "$(where "$j1")" "1: primary A disabled: the job ran on its first alternate B, DONE"
h_eq "B" "$(ran_on "$j1")" "1: its taskId is on B's simulator alone"
h_match "Server +: $B_URL" "$(h_ctl log "$j1" | grep -m1 '^Server')" "1: the log's Server line names B's server"
h_eq '{A,B,C}' "$(h_sql -c "SELECT listed FROM acs.jobs WHERE id = $j1")" "1: the job keeps the connections listed"
h_sql -c "SELECT acs.set_comm('B', 'disabled')" >/dev/null
j2=$(submit A B,C)
finished "$j2"
h_eq "C 4" "$(where "$j2")" "1: A and B disabled: the job ran on its second alternate C"
h_eq "C" "$(ran_on "$j2")" "1: its taskId is on C's simulator alone"
h_sql -c "SELECT acs.set_comm('A', 'enabled'), acs.set_comm('B', 'enabled')" >/dev/null
j3=$(submit A B,C)
finished "$j3"
h_eq "A 4" "$(where "$j3")" "1: A enabled again: the next job runs on its primary"
rerun=$(h_sql -c "SELECT acs.rerun_job($j1)")
finished "$rerun"
h_eq "A 4 {A,B,C}" "$(where "$rerun") $(h_sql -c "SELECT listed FROM acs.jobs WHERE id = $rerun")" \
    "1: a rerun of the job B ran names what it named: it runs on its primary A, alternates kept"

# --- 2. Primary's server stopped: a job already running on A stays A's and
#        is followed to its end when A returns; queued jobs go to B once A has
#        not answered for failover_after (2 s).
held=$(submit A B REPORTTEST01)
h_wait_sql 30 "running" "SELECT state FROM acs.jobs WHERE id = $held"
brid=$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $held")
sim "$A_URL" POST "/sim/requests/$brid/state" '{"code":2}' >/dev/null # held running
kill -STOP "$A_PID"
h_wait_sql 30 "f" "SELECT server_ok FROM acs.connections WHERE name = 'A'"
q1=$(submit A B); q2=$(submit A B)
finished "$q1"; finished "$q2"
h_eq "B 4|B 4" "$(where "$q1")|$(where "$q2")" "2: A silent: the queued jobs ran on B"
h_eq "t" "$(h_sql -c "SELECT bool_and(j.claimed_at >= c.last_contact + c.failover_after)
                        FROM acs.jobs AS j, acs.connections AS c
                       WHERE c.name = 'A' AND j.id IN ($q1, $q2)")" \
    "2: B took them only after A had not answered for its failover_after"
h_eq "running A" "$(h_sql -c "SELECT state || ' ' || connection FROM acs.jobs WHERE id = $held")" \
    "2: the job running on A stays A's while A is silent"
kill -CONT "$A_PID"
sim "$A_URL" POST "/sim/requests/$brid/state" '{"code":4}' >/dev/null
finished "$held"
h_eq "A 4" "$(where "$held")" "2: A back: the job that ran there was followed to its end, DONE"
h_eq "A" "$(ran_on "$held")" "2: and it never reached B"

# --- 3. A Start whose answer is lost on A: the job may be on A's server, so
#        it stays A's (sent again there under its taskId); it never reaches B.
h_wait_sql 30 "t" "SELECT server_ok FROM acs.connections WHERE name = 'A'"
sim "$A_URL" PUT /sim/faults '{"reset_after_rate":1,"routes":["start"],"count":1}' >/dev/null
lost=$(submit A B)
finished "$lost"
h_eq "A 4" "$(where "$lost")" "3: the job whose Start answer was lost ran on A, DONE"
h_eq "A" "$(ran_on "$lost")" "3: its taskId is on A's simulator alone, never on B's"
tid=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $lost")
h_eq "1 t" "$(sim "$A_URL" GET /sim/tasks | jq -r --arg t "$tid" '[.tasks[] | select(.taskId == $t)] | "\(length) \(if .[0].startCalls >= 2 then "t" else "f" end)"')" \
    "3: A got its Start again under the same taskId after the lost answer: one request"
h_eq "" "$(h_sql -c "SELECT tried FROM acs.jobs WHERE id = $lost")" "3: no connection is recorded as tried"
sim "$A_URL" DELETE /sim/faults >/dev/null

# --- 4. Every listed server down: each is tried in turn, then 23, and the
#        last log line names each server tried and why.
down=$(submit D E)
finished "$down"
h_eq "E 23" "$(where "$down")" "4: D and E unreachable: WEB_SERVER_ERROR (23) after trying both"
h_eq "D E" "$(h_sql -c "SELECT string_agg(t->>'connection', ' ' ORDER BY n) FROM acs.jobs,
                        jsonb_array_elements(tried) WITH ORDINALITY AS x(t, n) WHERE id = $down")" \
    "4: the job record lists each connection tried, in order"
last=$(h_ctl log "$down" | grep -v -e '^$' -e '^-*$' | tail -n 1) # the last line above the footer
h_match "D \\($D_URL\\): .+; E \\($E_URL\\): .+" "$last" "4: the log's last line names each server tried, with its error"
h_eq "" "$(ran_on "$down")" "4: no simulator got it"
h_match 'amtacs_job_failovers_total\{connection="E"\} [1-9]' \
    "$(curl -fsS "$(h_daemon_http)/metrics")" "4: metrics count the job E took from D"

# --- 6. kill -9 of the daemon while jobs go from one connection to the next:
#        D refuses every Start, so its jobs move on to B (disabled for now, so
#        they wait there queued); some of A's Starts are in flight (slow) when
#        A is disabled and the daemon is killed. Nothing runs on two servers.
h_sql -c "SELECT acs.set_comm('B', 'disabled')" >/dev/null
sim "$A_URL" PUT /sim/faults '{"latency_ms":1500,"routes":["start"]}' >/dev/null # under http.timeout
first=$(h_sql -c "SELECT coalesce(max(id), 0) + 1 FROM acs.jobs")
for i in $(seq 1 10); do submit D B >/dev/null; submit A B >/dev/null; done
h_wait_sql 60 "t" "SELECT count(*) FILTER (WHERE tried <> '[]') > 0
                          AND count(*) FILTER (WHERE connection = 'A' AND state = 'starting') > 0
                     FROM acs.jobs WHERE id >= $first"
h_sql -c "SELECT acs.set_comm('A', 'disabled')" >/dev/null
kill -9 "$H_DAEMON_PID"
wait "$H_DAEMON_PID" 2>/dev/null || true
h_daemon_start "$CFG"
h_daemon_ready
# A job of D's that was between two tries of its Start when the daemon died
# may have reached D, for all the new daemon knows: it stays D's, and waits
# for D's server to say whether Start may be sent again. D's server comes up.
"$SIM_BIN" --listen "127.0.0.1:$D_PORT" --catalog "$CATALOG" --time-scale 0.01 \
    >>"$H_TMP/sim.D.log" 2>&1 &
H_PIDS+=("$!")
D_UP=1
sim "$A_URL" DELETE /sim/faults >/dev/null
h_sql -c "SELECT acs.set_comm('A', 'enabled'), acs.set_comm('B', 'enabled')" >/dev/null
h_wait_sql 120 "0" "SELECT count(*) FROM acs.jobs WHERE id >= $first AND state <> 'finished'" || {
    h_sql -c "SELECT id, connection, state, tried FROM acs.jobs WHERE id >= $first AND state <> 'finished'" >&2
    exit 1
}
h_eq "20" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE id >= $first AND completion_code = 4")" \
    "6: after kill -9 mid-failover all 20 jobs ended DONE"
# Every simulator's requests, once: "taskId server" lines, against each job's
# "taskId connection".
for n in A B C D; do
    url=${n}_URL
    sim "${!url}" GET /sim/tasks | jq -r --arg n "$n" '.tasks[] | "\(.taskId) \($n)"'
done | sort >"$H_TMP/tasks"
h_sql -c "SELECT task_id || ' ' || connection FROM acs.jobs WHERE id >= $first" | sort >"$H_TMP/jobs"
twice=$(cut -d' ' -f1 "$H_TMP/tasks" | sort | uniq -d | grep -c -f <(cut -d' ' -f1 "$H_TMP/jobs") || true)
nowhere=$(join -v 1 "$H_TMP/jobs" "$H_TMP/tasks" | wc -l)
elsewhere=$(join "$H_TMP/jobs" "$H_TMP/tasks" | awk '$2 != $3' | wc -l)
twice=$((twice + elsewhere))
h_eq "0 0" "$twice $nowhere" "6: each job's taskId is on exactly one simulator, the one its record names"
h_eq "t" "$(h_sql -c "SELECT count(*) FILTER (WHERE connection = 'B') > 0
                         AND count(*) FILTER (WHERE connection NOT IN ('B', 'D')) = 0
                        FROM acs.jobs WHERE id >= $first AND listed[1] = 'D'")" \
    "6: the jobs whose primary D refused their Start ran on their alternate B (or, taken over, on D)"
h_eq "0" "$(sim "$B_URL" GET /sim/counters | jq .duplicate_starts)" "6: B never got a Start twice"
