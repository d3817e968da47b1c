# shellcheck shell=bash
# The fault matrix (tests/integration/test_faults_*.sh): the same mixed
# workload run under one fault at a time, and its accounting.
#
# A scenario is
#
#   fm_begin SLUG "description"     a fresh simulator and a connection named SLUG; with
#                                   FM_ALT=1 a second simulator too, the connection SLUG_alt,
#                                   which every job lists as its alternate (Integration
#                                   Selection; started twice then also counts a taskId on
#                                   both servers, or on another than the job's connection)
#   fm_daemon [VAR=VALUE...]        one or more daemons (tracked: see "crashes")
#   fm_submit N                     the next N jobs of the workload, in one transaction
#   fm_during SECONDS TICK [N]      the rest of the workload in waves over SECONDS,
#                                   calling the function TICK about every 0.25 s
#   fm_finish                       wait for every job, stop the daemons, count, print a row
#
# or, for the common shape (a fault switched on for a while): fm_run SLUG DESC ON TICK OFF SECONDS.
#
# What is counted, per scenario:
#   enqueued      jobs submitted
#   finished      jobs that reached `finished` by the deadline
#   lost          enqueued - finished: never finished (in doubt, stuck) or vanished (must be 0)
#   started twice from the simulator's /sim/tasks: a taskId turned into more than one request,
#                 a job following a request other than the one its Start made, or a request
#                 whose taskId is no job's (must be 0). Starts sent again for a taskId the
#                 server already knows are NOT second starts: the server's Start is
#                 idempotent; they are shown as "Starts re-sent".
#   wrong result  a finished job whose code or result is not the catalog's, or whose job log
#                 lacks its header, its task's messages (each exactly once) or has extra lines
#                 (must be 0)
#   crashes       daemons that died without the test killing them, did not exit 0 on SIGTERM,
#                 or left a sanitizer report in their log (must be 0). Daemons the test kills
#                 (kill -9, AMTACS_CRASH_AT) are restarted and are not crashes.
#
# Every job's expected code, result and log content come from config/amt-catalog.yaml
# (the table fm.kinds below). Faults are transient (rates below 1, or a bounded time) and
# start_retry is generous, so the catalog's code is the only correct outcome under every fault.
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

FM_TIME_SCALE=${FM_TIME_SCALE:-0.02} # REPORTTEST01 (30 s) takes 0.6 s
FM_JOBS=${FM_JOBS:-252}              # jobs per scenario (9 rounds of the 28 kinds)
FM_WAVES=${FM_WAVES:-6}              # the workload arrives in this many waves
FM_LEASE=${FM_LEASE:-2}              # daemon.lease_seconds
FM_DEADLINE=${FM_DEADLINE:-90}       # seconds for every job to finish after the waves
FM_ROWS=()
FM_TABLE_DIR="${AMTACS_BIN}/fault-matrix"
FM_TABLE_FILE="$FM_TABLE_DIR/$(basename "$0" .sh).md"
FM_HEADER='| scenario | enqueued | finished | lost | started twice | wrong result | daemon crashes | Starts re-sent | back after (s) | seconds |'
FM_RULE='|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|'

# Daemons of the current scenario: pid -> config, log, and what the test expects of it.
declare -A FM_DCFG=() FM_DLOG=() FM_DARMED=()
FM_LIVE=()       # daemons that must be alive (stopped ones included)
FM_STOPPED=()    # daemons paused with SIGSTOP
FM_CRASHES=0
FM_CRASH_NOTES=()
FM_KILLED=0      # daemons the test killed (kill -9 or a crash point)

fm_log() { printf '# [%s] %s\n' "${FM_SCN:-setup}" "$*"; }

# ---------------------------------------------------------------- setup

# The private PostgreSQL, the schema, a Batch User, and the workload table.
fm_init() {
    h_pg_start
    h_ctl migrate >/dev/null
    h_batch_user amtopcon amtopcon-secret
    mkdir -p "$FM_TABLE_DIR"
    : >"$FM_TABLE_FILE"
    # One row per kind of job: how it is submitted and what must come of it.
    # vals and must may use {n}, the job's number in the workload. nlines: the
    # messages its log must hold (each exactly once). The codes are the
    # catalog's: config/amt-catalog.yaml.
    h_sql <<'SQL' >/dev/null
CREATE SCHEMA fm;
CREATE TABLE fm.kinds (seq int PRIMARY KEY, label text NOT NULL, script bool NOT NULL DEFAULT false,
                       app text NOT NULL DEFAULT 'DEMO2', name text NOT NULL,
                       vals text[] NOT NULL DEFAULT '{}', queue text, amt_user text,
                       code int NOT NULL, nlines int NOT NULL, must text[] NOT NULL DEFAULT '{}');
CREATE TABLE fm.jobs (scenario text NOT NULL, id bigint PRIMARY KEY, seq int NOT NULL, n int NOT NULL);
CREATE TABLE fm.tasks (task_id uuid NOT NULL, brid int NOT NULL, start_calls int NOT NULL,
                       server text NOT NULL);
INSERT INTO fm.kinds (seq, label, script, app, name, vals, queue, amt_user, code, nlines, must) VALUES
 (0,  'instant',      false, 'DEMO2', 'INSTANT', '{}', NULL, NULL, 4, 0, '{}'),
 (1,  'instant',      false, 'DEMO2', 'INSTANT', '{}', NULL, NULL, 4, 0, '{}'),
 (2,  'instant',      false, 'DEMO2', 'INSTANT', '{}', NULL, NULL, 4, 0, '{}'),
 (3,  'instantmsg',   false, 'DEMO2', 'INSTANTMSG', '{}', NULL, NULL, 4, 1, '{"\"Instant report "}'),
 (4,  'instantmsg',   false, 'DEMO2', 'INSTANTMSG', '{}', NULL, NULL, 4, 1, '{"\"Instant report "}'),
 (5,  'echo-urgent',  false, 'DEMO2', 'ECHOPARAMS', '{"N={n}","MODE=x y"}', 'URGENT', NULL, 4, 4,
      '{"Parameters: [N={n} MODE=x y]","in queue [URGENT]","Submit user BATCH station OPCON AMT user DEMO2"}'),
 (6,  'echo-urgent',  false, 'DEMO2', 'ECHOPARAMS', '{"N={n}","MODE=x y"}', 'URGENT', NULL, 4, 4,
      '{"Parameters: [N={n} MODE=x y]","in queue [URGENT]"}'),
 (7,  'echo-user',    false, 'DEMO2', 'ECHOPARAMS', '{"N={n}"}', NULL, 'JSMITH', 4, 4,
      '{"AMT user JSMITH","Parameters: [N={n}]"}'),
 (8,  'bad-user',     false, 'DEMO2', 'ECHOPARAMS', '{"N={n}"}', NULL, 'NOBODY', 99, 0, '{}'),
 (9,  'report',       false, 'DEMO2', 'REPORTTEST01', '{"PERIOD=2026-{n}"}', NULL, NULL, 4, 10,
      '{"Report test 01 Value param [PERIOD=2026-{n}]","\"Report execution time: 00:00:30:229\"","\"Done\""}'),
 (10, 'parent',       false, 'DEMO2', 'PARENTJOB', '{}', NULL, NULL, 4, 7,
      '{"run ended, waiting for children","\"Child A ","\"Child B ","halfway"}'),
 (11, 'parent',       false, 'DEMO2', 'PARENTJOB', '{}', NULL, NULL, 4, 7, '{"\"Child A ","\"Child B "}'),
 (12, 'script-child', true,  'DEMO2', 'RUN_PARAMETERTEST.ps1', '{"P={n}"}', NULL, NULL, 4, 6,
      '{"Script Started","Value test param [P={n}]","RUN_PARAMETERTEST : Job finished"}'),
 (13, 'script-child', true,  'DEMO2', 'RUN_PARAMETERTEST.ps1', '{"P={n}","Q=1"}', NULL, NULL, 4, 6,
      '{"Value test param [P={n} Q=1]"}'),
 (14, 'script-pwsh',  true,  'DEMO2', 'F:\Amt\Scripts\DEMO2\RUN_FILENAMETEST.ps1', '{"F={n}"}', NULL, NULL, 11, 2,
      '{"Error starting job [F={n}]","pwsh"}'),
 (15, 'script-none',  true,  'DEMO2', 'NOSUCHSCRIPT.ps1', '{}', NULL, NULL, 11, 1, '{"\"File not found\""}'),
 (16, 'error',        false, 'DEMO2', 'ERRORJOB', '{}', NULL, NULL, 11, 2, '{"division by zero"}'),
 (17, 'abort',        false, 'DEMO2', 'ABORTJOB', '{}', NULL, NULL, 12, 2, '{"no input records"}'),
 (18, 'selfkill',     false, 'DEMO2', 'SELFKILL', '{}', NULL, NULL, 3, 1, '{"Job will be killed"}'),
 (19, 'recoverabort', false, 'DEMO2', 'RECOVERABORT', '{}', NULL, NULL, 22, 1, '{"critical point saved"}'),
 (20, 'undefined',    false, 'DEMO2', 'UNDEFINEDJOB', '{}', NULL, NULL, 19, 0, '{}'),
 (21, 'skipped',      false, 'DEMO2', 'SKIPPEDJOB', '{}', NULL, NULL, 6, 0, '{}'),
 (22, 'deleted',      false, 'DEMO2', 'DELETEDJOB', '{}', NULL, NULL, 10, 0, '{}'),
 (23, 'serial',       false, 'DEMO2', 'WAITFORFILE', '{}', 'SERIAL', NULL, 4, 1, '{"File arrived, processing"}'),
 (24, 'payroll',      false, 'PAYROLL', 'PAYRUN', '{"PERIOD=P{n}"}', NULL, NULL, 4, 2,
      '{"for period [PERIOD=P{n}]","Payroll run complete"}'),
 (25, 'paging',       false, 'DEMO2', 'MANYMESSAGES', '{}', NULL, NULL, 4, 250, '{"\"Line 1 of 250\"","\"Line 250 of 250\""}'),
 (26, 'killed',       false, 'DEMO2', 'LONGRUNNINGREPORT', '{}', NULL, NULL, 3, 0, '{}'),
 (27, 'allstates',    false, 'DEMO2', 'ALLSTATES', '{}', NULL, NULL, 4, 0, '{}');
-- What every job's log must contain besides its kind's lines: the header in
-- the reference layout (joblog.c) with the job's own values and final code.
CREATE FUNCTION fm.header(j acs.jobs, k fm.kinds) RETURNS text[] LANGUAGE sql AS $$
    SELECT ARRAY[
        rpad('Application', 16) || ': ' || j.application,
        rpad('Submit User', 16) || ': BATCH',
        rpad('Station', 16) || ': OPCON',
        rpad('Queue Name', 16) || ': ' || coalesce(j.queue_name, '') || E'\n',
        CASE WHEN k.script THEN rpad('Script Job', 16) || ': ' || j.script_name
             ELSE rpad('Batch Job', 16) || ': ' || j.job_name END || E'\n',
        rpad('Parameters', 16) || ':' || coalesce(' ' || nullif(array_to_string(
            CASE WHEN k.script THEN j.script_parameters ELSE j.task_values END, ' '), ''), '') || E'\n',
        rpad('Completion Code', 16) || ': ' || (SELECT c.name FROM acs.completion_codes c WHERE c.code = k.code) || E'\n',
        'Job Log ---']
$$;
SQL
}

# The simulator of a scenario: fresh, so its counters and tasks are the scenario's alone.
fm_sim() {
    if [ -n "${H_SIM_PID:-}" ] && kill -0 "$H_SIM_PID" 2>/dev/null; then
        kill -TERM "$H_SIM_PID" 2>/dev/null || true
        wait "$H_SIM_PID" 2>/dev/null || true
    fi
    h_sim_start --time-scale "$FM_TIME_SCALE" --seed "$(printf '%s' "$FM_SCN" | cksum | cut -d' ' -f1)" "$@"
}

# The daemon configuration of the scenario. start_retry outlasts every fault
# of the matrix (about 40 s of tries), so a job that has not started when a
# fault begins waits for the server instead of ending 23 WEB_SERVER_ERROR.
fm_config() {
    local file=$1
    cat >"$file" <<CONF
database:
  conninfo: "${FM_CONNINFO:-host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE application_name=amtacsd}"
key_file: $H_TMP/secret.key
http: {listen: "127.0.0.1:0"}
log_level: ${FM_LOG_LEVEL:-info}
daemon:
  lease_seconds: $FM_LEASE
  heartbeat_interval: 300ms
connections:
CONF
    fm_conn "$FM_SCN" "$H_SIM_URL" >>"$file"
    printf '%s\n' "${FM_CONN_EXTRA:-}" >>"$file"
    if [ -n "${FM_ALT_NAME:-}" ]; then
        fm_conn "$FM_ALT_NAME" "$FM_ALT_URL" >>"$file"
    fi
}
# One connection of the scenario's configuration: fm_conn NAME URL. With an
# alternate (FM_ALT=1) both have failover_after.
fm_conn() {
    cat <<CONN
  - name: $1
    url: $2
    batch_user: amtopcon
    allow_kill: true
    max_in_flight: ${FM_MAX_IN_FLIGHT:-150}
${FM_ALT_NAME:+    failover_after: ${FM_FAILOVER_AFTER:-1s}}
    poll:
      initial_delay: 20ms
      interval: 50ms
      max_interval: ${FM_POLL_MAX:-250ms}
    start_retry:
      attempts: ${FM_START_ATTEMPTS:-40}
      delay: 100ms
      backoff: 1.5
      max_delay: 1s
    http:
      connect_timeout: 1s
      timeout: 2s
CONN
}

# fm_begin SLUG DESCRIPTION: a new scenario (connection SLUG, a fresh simulator).
fm_begin() {
    FM_SCN=$1
    FM_DESC=$2
    FM_T0=$SECONDS
    FM_NEXT_N=0
    FM_CRASHES=0
    FM_CRASH_NOTES=()
    FM_KILLED=0
    FM_KILL_AT=()
    FM_BACK=-
    FM_BACK_AT=""
    FM_BACK_EVENT=""
    FM_LIVE=()
    FM_STOPPED=()
    FM_DCFG=()
    FM_DLOG=()
    FM_DARMED=()
    fm_sim
    h_sql -c "SELECT acs.register_connection('$FM_SCN', 'enabled')" >/dev/null
    FM_ALT_NAME=""
    if [ -n "${FM_ALT_PID:-}" ]; then
        kill -TERM "$FM_ALT_PID" 2>/dev/null || true
        wait "$FM_ALT_PID" 2>/dev/null || true
        FM_ALT_PID=""
    fi
    if [ "${FM_ALT:-0}" = 1 ]; then
        local url=$H_SIM_URL pid=$H_SIM_PID
        h_sim_start --time-scale "$FM_TIME_SCALE"
        FM_ALT_URL=$H_SIM_URL FM_ALT_PID=$H_SIM_PID FM_ALT_NAME="${FM_SCN}_alt"
        H_SIM_URL=$url H_SIM_PID=$pid
        export H_SIM_URL H_SIM_PID
        h_sql -c "SELECT acs.register_connection('$FM_ALT_NAME', 'enabled')" >/dev/null
    fi
    FM_CFG="$H_TMP/$FM_SCN.yaml"
    fm_config "$FM_CFG"
    fm_log "$FM_DESC"
}

# ---------------------------------------------------------------- daemons

fm_in() { local x=$1; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }
fm_without() { # fm_without PID ARRAY-NAME: removes PID from the array
    local -n arr=$2
    local keep=() p
    for p in "${arr[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    arr=("${keep[@]}")
}

# fm_daemon [--no-wait] [VAR=VALUE...]: starts a daemon with the scenario's
# configuration (and these variables in its environment); waits until it is
# connected and has read the server's features unless --no-wait. FM_PID is its pid.
fm_daemon() {
    local wait=1
    [ "${1:-}" = --no-wait ] && { wait=0; shift; }
    local envs=("$@") v
    # As exported locals, the variables reach this daemon and vanish on return.
    for v in "${envs[@]}"; do local -x "$v"; done
    # h_daemon_start runs in this shell, so that `wait` can collect the exit status.
    h_daemon_start "${FM_DAEMON_CFG:-$FM_CFG}"
    FM_PID=$H_DAEMON_PID
    FM_DCFG[$FM_PID]=${FM_DAEMON_CFG:-$FM_CFG}
    FM_DLOG[$FM_PID]=$H_DAEMON_LOG
    FM_DARMED[$FM_PID]=""
    for v in "${envs[@]}"; do
        if [ "${v%%=*}" = AMTACS_CRASH_AT ]; then FM_DARMED[$FM_PID]=${v#*=}; fi
    done
    FM_LIVE+=("$FM_PID")
    [ $wait = 1 ] || return 0
    local log=$H_DAEMON_LOG
    if ! h_wait_until 20 grep -q 'event=conn.features' "$log"; then
        fm_log "daemon $FM_PID did not come up"
        tail -n 20 "$log" | sed 's/^/#   /'
    fi
}

# The exit status of a daemon that is gone, in FM_ST (not in a subshell: only
# this shell, its parent, can wait for it).
fm_reap() { FM_ST=0; wait "$1" 2>/dev/null || FM_ST=$?; }

fm_crash() { # fm_crash PID WHY: an unexpected death (or exit status) of a daemon
    FM_CRASHES=$((FM_CRASHES + 1))
    FM_CRASH_NOTES+=("daemon $1 (${FM_DLOG[$1]}): $2")
    fm_log "CRASH: daemon $1: $2"
    grep -E 'level=error|Sanitizer|runtime error' "${FM_DLOG[$1]}" | tail -n 5 | sed 's/^/#   /' || true
}

# kill -9 a daemon on purpose (not a crash); restart it unless --no-restart.
fm_kill9() {
    local pid=$1 restart=${2:-restart}
    fm_without "$pid" FM_LIVE
    fm_without "$pid" FM_STOPPED
    FM_KILL_AT+=("$(date +%s.%N) $pid")
    kill -KILL "$pid" 2>/dev/null || true
    fm_reap "$pid"
    FM_KILLED=$((FM_KILLED + 1))
    [ "$restart" = restart ] && fm_daemon --no-wait
    return 0
}

# Looks at every daemon that must be alive. A daemon armed with AMTACS_CRASH_AT
# that died by SIGKILL after logging its crash point was killed by the test:
# it is replaced by an unarmed one. Any other death is a crash; the daemon is
# replaced too, so that the rest of the scenario still measures something.
fm_watch() {
    local pid st
    for pid in "${FM_LIVE[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        fm_without "$pid" FM_LIVE
        fm_reap "$pid"
        st=$FM_ST
        if [ -n "${FM_DARMED[$pid]}" ] && [ "$st" = 137 ] &&
            grep -q 'event=daemon.crash_point' "${FM_DLOG[$pid]}"; then
            fm_log "daemon $pid died at its crash point ${FM_DARMED[$pid]}; restarting"
            FM_KILLED=$((FM_KILLED + 1))
            FM_CRASHPOINTS_HIT=$((${FM_CRASHPOINTS_HIT:-0} + 1))
        else
            fm_crash "$pid" "died with status $st"
        fi
        FM_DAEMON_CFG=${FM_DCFG[$pid]} fm_daemon --no-wait
    done
}

fm_pause() { kill -STOP "$1"; FM_STOPPED+=("$1"); }
fm_resume() { kill -CONT "$1"; fm_without "$1" FM_STOPPED; }

# Stops every daemon of the scenario with SIGTERM: each must exit 0 within 15 s.
fm_stop_daemons() {
    local pid st end
    fm_watch
    for pid in "${FM_STOPPED[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
    FM_STOPPED=()
    for pid in "${FM_LIVE[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${FM_LIVE[@]}"; do
        end=$((SECONDS + 15))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
        if kill -0 "$pid" 2>/dev/null; then
            fm_crash "$pid" "still running 15 s after SIGTERM"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        fm_reap "$pid"
        st=$FM_ST
        if [ "$st" != 0 ]; then
            fm_crash "$pid" "exit status $st after SIGTERM"
        fi
        if [ -n "${FM_DARMED[$pid]}" ]; then
            fm_log "daemon $pid never reached its crash point ${FM_DARMED[$pid]}"
        fi
    done
    FM_LIVE=()
    # A sanitizer report in any daemon log of the scenario is a crash too.
    for pid in "${!FM_DLOG[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "${FM_DLOG[$pid]}"; then
            fm_crash "$pid" "sanitizer report in its log"
        fi
    done
}

# ---------------------------------------------------------------- workload

# fm_submit N: the next N jobs of the workload, in one transaction.
fm_submit() {
    local n=$1 from=$((FM_NEXT_N + 1)) to=$((FM_NEXT_N + $1))
    [ "$n" -gt 0 ] || return 0
    FM_NEXT_N=$to
    # (the workload numbers also go to a file: a failover may lose the rows
    # themselves, and a promoted replica may hand their ids out again)
    h_sql -v scn="$FM_SCN" -v from="$from" -v to="$to" -v alt="${FM_ALT_NAME:-}" \
        >>"$H_TMP/$FM_SCN.submitted" <<'SQL'
INSERT INTO fm.jobs (scenario, id, seq, n)
SELECT :'scn',
       CASE WHEN k.script
            THEN acs.submit_script_job(:'scn', k.app, k.name, v.vals, k.queue, k.amt_user, 'fm-' || g.n,
                                       alternates => string_to_array(nullif(:'alt', ''), ','))
            ELSE acs.submit_batch_job(:'scn', k.app, k.name, v.vals, k.queue, k.amt_user, 'fm-' || g.n,
                                      alternates => string_to_array(nullif(:'alt', ''), ',')) END,
       k.seq, g.n
  FROM generate_series(:from::int, :to::int) AS g(n)
  JOIN fm.kinds AS k ON k.seq = g.n % 28
 CROSS JOIN LATERAL (SELECT coalesce(array_agg(replace(x, '{n}', g.n::text)), '{}') AS vals
                       FROM unnest(k.vals) AS x) AS v
 ORDER BY g.n
RETURNING n;
SQL
}

# The test plays the operator: LONGRUNNINGREPORT runs until killed. Each is
# killed once it runs (or, with FM_KILL_ALL=1, whatever its state: a queued
# one then ends KILLED without being started). Either way it must end 3 KILLED.
fm_kill_long() {
    local cond="j.state = 'running'"
    [ "${FM_KILL_ALL:-0}" = 1 ] && cond="true"
    h_sql -v scn="$FM_SCN" >/dev/null 2>&1 <<SQL || true
SELECT count(acs.request_kill(j.id)) FROM acs.jobs j JOIN fm.jobs f ON f.id = j.id
 WHERE f.scenario = :'scn' AND f.seq = 26 AND j.state <> 'finished' AND j.kill_requested_at IS NULL
   AND ($cond);
SQL
}

# Jobs of the scenario not yet finished (with FM_DOUBT_OK=1, a job in doubt
# counts as settled: it waits for an operator, by design).
fm_unfinished() {
    local settled="'finished'"
    [ "${FM_DOUBT_OK:-0}" = 1 ] && settled="'finished', 'in_doubt'"
    h_sql -c "SELECT count(*) FROM fm.jobs f LEFT JOIN acs.jobs j ON j.id = f.id
              WHERE f.scenario = '$FM_SCN' AND (j.state IS NULL OR j.state NOT IN ($settled))"
}

# fm_during SECONDS TICK [WAVES]: the rest of the workload arrives in waves
# over SECONDS while TICK runs about every 0.25 s (":" for nothing).
fm_during() {
    local secs=$1 tick=$2 waves=${3:-$((FM_WAVES - 1))}
    local left=$((FM_JOBS - FM_NEXT_N)) steps _fm_i per wave_every next_wave
    steps=$(awk -v s="$secs" 'BEGIN { printf "%d", s / 0.25 }')
    [ "$steps" -ge 1 ] || steps=1
    [ "$waves" -ge 1 ] || waves=1
    per=$(((left + waves - 1) / waves))
    wave_every=$((steps / waves))
    [ "$wave_every" -ge 1 ] || wave_every=1
    next_wave=0
    for ((_fm_i = 0; _fm_i < steps; _fm_i++)); do
        if [ "$_fm_i" -ge "$next_wave" ] && [ "$FM_NEXT_N" -lt "$FM_JOBS" ]; then
            left=$((FM_JOBS - FM_NEXT_N))
            fm_submit $((per < left ? per : left))
            next_wave=$((next_wave + wave_every))
        fi
        "$tick"
        fm_kill_long
        fm_watch
        sleep 0.25
    done
    fm_submit $((FM_JOBS - FM_NEXT_N))
}

# ---------------------------------------------------------------- accounting

# fm_finish [DEADLINE]: waits for every job of the scenario, stops the
# daemons, counts, prints the row and asserts.
fm_finish() {
    local deadline=$((SECONDS + ${1:-$FM_DEADLINE})) left
    # The operator kills each LONGRUNNINGREPORT once it runs: the faults are
    # off, so the queued ones start soon. One killed while still queued would
    # end KILLED with a line of its own in its log, which its kind does not
    # expect (a busy machine starts them late); only in the last third of the
    # deadline are the queued ones killed too, so that nothing is left.
    local all_from=$((deadline - ${1:-$FM_DEADLINE} / 3))
    fm_kill_long
    while :; do
        left=$(fm_unfinished)
        [ "$left" = 0 ] && break
        [ $SECONDS -ge $deadline ] && break
        if [ $SECONDS -ge $all_from ]; then FM_KILL_ALL=1 fm_kill_long; else fm_kill_long; fi
        fm_watch
        sleep 0.2
    done
    fm_account
}

fm_account() {
    local enq fin lost twice wrong resent secs row
    fm_stop_daemons
    h_sql -c "TRUNCATE fm.tasks" >/dev/null
    local server url
    for server in "$FM_SCN" ${FM_ALT_NAME:+"$FM_ALT_NAME"}; do
        url=$H_SIM_URL
        [ "$server" = "$FM_SCN" ] || url=$FM_ALT_URL
        curl -fsS "$url/sim/tasks" |
            jq -r --arg s "$server" '.tasks[] | [.taskId, .BatchRequestId, .startCalls, $s] | @tsv' |
            h_sql -c "COPY fm.tasks (task_id, brid, start_calls, server) FROM STDIN"
    done
    resent=$(h_sim_counter .duplicate_starts)
    if [ -n "${FM_ALT_NAME:-}" ]; then
        resent=$((resent + $(curl -fsS "$FM_ALT_URL/sim/counters" | jq .duplicate_starts)))
        FM_DESC="$FM_DESC; $(h_sql -c "SELECT count(*) FROM fm.jobs f JOIN acs.jobs j ON j.id = f.id
                                        WHERE f.scenario = '$FM_SCN' AND j.connection = '$FM_ALT_NAME'") ran on the alternate"
    fi
    kill -0 "$H_SIM_PID" 2>/dev/null || h_not_ok "$FM_SCN: the simulator died"
    read -r enq fin twice wrong < <(h_sql -F ' ' -v scn="$FM_SCN" -v orphans_ok="${FM_ORPHANS_OK:-0}" <<'SQL'
WITH mine AS (
    SELECT f.*, j.state, j.task_id, j.batch_request_id, j.completion_code, j.result, j.connection,
           fm.header(j, k) AS header, k.code, k.nlines, k.must, l.log
      FROM fm.jobs f JOIN fm.kinds k ON k.seq = f.seq
      LEFT JOIN acs.jobs j ON j.id = f.id
      LEFT JOIN acs.job_logs l ON l.job_id = f.id
     WHERE f.scenario = :'scn'
)
SELECT (SELECT count(*) FROM mine),
       (SELECT count(*) FROM mine WHERE state = 'finished'),
       -- a taskId the server turned into more than one request
       (SELECT count(*) FROM (SELECT task_id FROM fm.tasks GROUP BY task_id HAVING count(*) > 1) d)
       -- a job that follows a request other than the one its taskId made
     + (SELECT count(*) FROM mine m JOIN fm.tasks t ON t.task_id = m.task_id
         WHERE m.batch_request_id IS NOT NULL AND m.batch_request_id <> t.brid)
       -- a job whose request is on another server than the one it names
     + (SELECT count(*) FROM mine m JOIN fm.tasks t ON t.task_id = m.task_id
         WHERE t.server <> m.connection)
       -- a request whose taskId belongs to no job (unless the scenario lost
       -- enqueues with their commits: FM_ORPHANS_OK, counted apart)
     + CASE WHEN :'orphans_ok' = '1' THEN 0 ELSE
       (SELECT count(*) FROM fm.tasks t WHERE NOT EXISTS (SELECT 1 FROM acs.jobs j WHERE j.task_id = t.task_id))
       END,
       (SELECT count(*) FROM mine WHERE state = 'finished' AND (
            completion_code <> code
         OR result <> CASE WHEN code = 4 THEN 'success' ELSE 'failure' END
         OR log IS NULL
         OR (SELECT count(*) FROM unnest(string_to_array(log, E'\n')) AS x WHERE x LIKE '"%') <> nlines
         OR EXISTS (SELECT 1 FROM unnest(header || must) AS p WHERE strpos(log, replace(p, '{n}', n::text)) = 0)
         OR right(log, 76) <> repeat('-', 75) || E'\n'));
SQL
    )
    lost=$((enq - fin))
    if [ "${FM_DOUBT_OK:-0}" = 1 ]; then
        FM_DOUBT=$(h_sql -c "SELECT count(*) FROM fm.jobs f JOIN acs.jobs j ON j.id = f.id
                             WHERE f.scenario = '$FM_SCN' AND j.state = 'in_doubt'")
        lost=$((lost - FM_DOUBT))
        FM_DESC="$FM_DESC ($FM_DOUBT in doubt)"
    fi
    if [ "${FM_ORPHANS_OK:-0}" = 1 ]; then
        FM_ORPHANS=$(h_sql -c "SELECT count(*) FROM fm.tasks t
                               WHERE NOT EXISTS (SELECT 1 FROM acs.jobs j WHERE j.task_id = t.task_id)")
    fi
    secs=$((SECONDS - FM_T0))
    fm_takeover
    row=$(printf '| %s | %d | %d | %d | %d | %d | %d | %d | %s | %d |' "$FM_DESC" "$enq" "$fin" "$lost" \
        "$twice" "$wrong" "$FM_CRASHES" "$resent" "$FM_BACK" "$secs")
    FM_ROWS+=("$row")
    echo "$row" >>"$FM_TABLE_FILE"
    printf '# %s\n' "$FM_HEADER" "$row"
    if [ "$lost" = 0 ] && [ "$twice" = 0 ] && [ "$wrong" = 0 ] && [ "$FM_CRASHES" = 0 ] && [ "$enq" -ge 200 ]; then
        h_ok "$FM_SCN: $enq jobs, none lost, none started twice, no wrong result, no daemon crash"
    else
        h_not_ok "$FM_SCN: $enq jobs: lost $lost, started twice $twice, wrong $wrong, crashes $FM_CRASHES"
        fm_explain
    fi
}

# The "back after" figure of a scenario, FM_BACK: seconds from its disruption
# to the first sign that jobs move again, from the daemons' own log
# timestamps; "-" when there was no disruption or nothing moved. By default
# the disruption is the first kill -9 and the sign the first job another
# daemon process followed again (job.resumed) or claimed from its earlier
# holder (attempt 2 or more). A scenario may set FM_BACK_AT (epoch seconds)
# and FM_BACK_EVENT (an extended regex of the log line) instead.
fm_back_after() { # fm_back_after EPOCH REGEX [LOG TO LEAVE OUT]
    local at=$1 re=$2 skip=${3:-} f first="" t
    for f in "${FM_DLOG[@]}"; do
        [ "$f" = "$skip" ] && continue
        t=$(grep -hE "$re" "$f" | sed -n 's/^time=\([^ ]*\) .*/\1/p' | while read -r ts; do
                e=$(date -d "$ts" +%s.%N)
                awk -v e="$e" -v a="$at" 'BEGIN { if (e > a) { print e; exit 0 } exit 1 }' && break
            done) || true
        [ -n "$t" ] || continue
        if [ -z "$first" ] || awk -v t="$t" -v f="$first" 'BEGIN { exit !(t < f) }'; then first=$t; fi
    done
    if [ -n "$first" ]; then
        awk -v t="$first" -v a="$at" 'BEGIN { printf "%.2f", t - a }'
    else
        echo -
    fi
}
fm_takeover() {
    local at pid
    FM_BACK=-
    if [ -n "${FM_BACK_AT:-}" ]; then
        FM_BACK=$(fm_back_after "$FM_BACK_AT" "$FM_BACK_EVENT")
    elif [ ${#FM_KILL_AT[@]} -gt 0 ]; then
        read -r at pid <<<"${FM_KILL_AT[0]}"
        FM_BACK=$(fm_back_after "$at" \
            'event=job\.resumed|event=job\.claimed .*\(attempt ([2-9]|[1-9][0-9]+)\)' "${FM_DLOG[$pid]}")
    fi
    return 0
}

# Why a scenario failed: the jobs that were lost or ended wrong, and the crashes.
fm_explain() {
    local n
    for n in "${FM_CRASH_NOTES[@]}"; do echo "#   $n"; done
    h_sql -v scn="$FM_SCN" <<'SQL' | sed 's/^/#   /'
SELECT 'not finished: ' || coalesce(j.state, 'vanished') || ' ' || k.label || ' x' || count(*)
  FROM fm.jobs f JOIN fm.kinds k ON k.seq = f.seq LEFT JOIN acs.jobs j ON j.id = f.id
 WHERE f.scenario = :'scn' AND j.state IS DISTINCT FROM 'finished'
 GROUP BY j.state, k.label;
SELECT 'wrong: job ' || j.id || ' ' || k.label || ' code ' || j.completion_code || ' (expected ' || k.code
       || ') error: ' || coalesce(j.error, '-')
  FROM fm.jobs f JOIN fm.kinds k ON k.seq = f.seq JOIN acs.jobs j ON j.id = f.id
  LEFT JOIN acs.job_logs l ON l.job_id = f.id
 WHERE f.scenario = :'scn' AND j.state = 'finished'
   AND (j.completion_code <> k.code OR l.log IS NULL
        OR (SELECT count(*) FROM unnest(string_to_array(l.log, E'\n')) AS x WHERE x LIKE '"%') <> k.nlines
        OR EXISTS (SELECT 1 FROM unnest(fm.header(j, k) || k.must) AS p
                    WHERE strpos(l.log, replace(p, '{n}', f.n::text)) = 0))
 LIMIT 10;
SQL
}

# fm_run SLUG DESCRIPTION ON TICK OFF SECONDS: one daemon, the first wave, the
# fault switched on (function ON), the rest of the workload over SECONDS while
# TICK runs, the fault switched off (function OFF), then the accounting.
fm_run() {
    local slug=$1 desc=$2 on=$3 tick=$4 off=$5 secs=$6
    fm_begin "$slug" "$desc"
    fm_daemon
    fm_submit $((FM_JOBS / FM_WAVES))
    "$on"
    fm_during "$secs" "$tick"
    "$off"
    fm_finish
}

# The whole table of this test file, at its end.
fm_table() {
    local r
    echo "# fault matrix ($(basename "$0" .sh), time scale $FM_TIME_SCALE, lease ${FM_LEASE}s):"
    echo "# $FM_HEADER"
    echo "# $FM_RULE"
    for r in "${FM_ROWS[@]}"; do echo "# $r"; done
}

# Helpers for the simulator's controls.
fm_faults() { curl -fsS -X PUT --data "$1" "$H_SIM_URL/sim/faults" >/dev/null; }
fm_faults_off() { curl -fsS -X DELETE "$H_SIM_URL/sim/faults" >/dev/null; }

# Asserts that the simulator injected faults in this scenario (or it proves nothing).
fm_faults_fired() {
    local n
    n=$(h_sim_counter .faults_injected)
    if [ "$n" -gt 0 ]; then
        h_ok "$FM_SCN: the simulator injected $n faults"
    else
        h_not_ok "$FM_SCN: the simulator injected no fault"
    fi
}

# A fault switched on for FM_FAULT_SECONDS from fm_fault_on, then off by fm_fault_tick.
fm_timed_on() { FM_FAULT_UNTIL=$((SECONDS + ${FM_FAULT_SECONDS:-3})); fm_faults "$FM_FAULT"; }
fm_timed_tick() {
    if [ -n "${FM_FAULT_UNTIL:-}" ] && [ $SECONDS -ge "$FM_FAULT_UNTIL" ]; then
        fm_faults_fired
        fm_faults_off
        FM_FAULT_UNTIL=""
    fi
}
fm_timed_off() {
    if [ -n "${FM_FAULT_UNTIL:-}" ]; then
        fm_faults_fired
        fm_faults_off
        FM_FAULT_UNTIL=""
    fi
}
# fm_fault SLUG DESCRIPTION JSON SECONDS [WINDOW]: the simulator's /sim/faults set to JSON
# for SECONDS while the workload arrives over WINDOW seconds (default SECONDS + 1).
fm_fault() {
    FM_FAULT=$3 FM_FAULT_SECONDS=$4
    fm_run "$1" "$2" fm_timed_on fm_timed_tick fm_timed_off "${5:-$(($4 + 1))}"
}
