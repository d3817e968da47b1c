# The command line and the credentials, as an operator meets them: wait shows
# messages as they arrive, --json output, clear errors, the job log size cap,
# the password never echoed, never in PostgreSQL (not even in its statement
# log), bound to its Batch User; the secret key refused when others can read it.
source "$(dirname "$0")/../lib/harness.sh"

H_PG_EXTRA_CONF="log_statement = 'all'" h_pg_start
h_ctl migrate >/dev/null
h_sim_start --time-scale 0.05
"$CTL_BIN" keygen --secret "$H_TMP/secret.key" >/dev/null

# --- the password: asked twice without echo on a terminal ----------------------
pw='S3cret-amtopcon-secret'
curl -fsS -X POST --data "{\"name\":\"amtopcon\",\"password\":\"$pw\"}" "$H_SIM_URL/sim/users" >/dev/null
# on_tty USER FIRST SECOND: batch-user set USER on a terminal; the two entries are
# typed once it has turned the echo off (typed earlier, they would be echoed and
# then flushed); prints what the terminal showed and returns its exit status.
echo_off() {
    local pid
    pid=$(pgrep -f "^$CTL_BIN --db .* batch-user set $1 ") &&
        stty -F "/proc/$pid/fd/0" -a 2>/dev/null | grep -q -- ' -echo '
}
on_tty() {
    local rc=0
    rm -f "$H_TMP/tty.in"
    mkfifo "$H_TMP/tty.in"
    script -qec "$CTL_BIN --db '$H_PGCONN' batch-user set $1 --public-key $H_TMP/secret.key.pub" /dev/null \
        <"$H_TMP/tty.in" >"$H_TMP/tty.out" 2>&1 &
    local term=$!
    exec 7>"$H_TMP/tty.in"
    h_wait_until 30 echo_off "$1" || h_not_ok "batch-user set $1 turns the echo off before reading"
    printf '%s\n%s\n' "$2" "$3" >&7
    exec 7>&-
    wait "$term" || rc=$?
    cat "$H_TMP/tty.out"
    return $rc
}
out=$(on_tty amtopcon "$pw" "$pw")
h_match "Password for Batch User amtopcon" "$out" "batch-user set asks for the password on a terminal"
h_match "stored, sealed with key" "$out" "and stores it"
[[ "$out" == *"$pw"* ]] && h_not_ok "the password is echoed on the terminal" || h_ok "the password is not echoed on the terminal"
out=$(on_tty other one two) || true
h_match "the two passwords differ" "$out" "two different entries are refused"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.batch_users WHERE name = 'other'")" "and nothing is stored"
# (the checks below grep in the shell, so that the password never goes into a statement)
sealed=$(h_sql -c "SELECT encode(sealed_password, 'hex') FROM acs.batch_users WHERE name = 'amtopcon'")
pw_hex=$(printf '%s' "$pw" | od -An -tx1 | tr -d ' \n')
[ -n "$sealed" ] && [[ "$sealed" != *"$pw_hex"* ]] && h_ok "the stored password is sealed (not in clear)" ||
    h_not_ok "the stored password is sealed (not in clear)"

# --- the daemon ------------------------------------------------------------------
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
chmod 640 "$H_TMP/secret.key"
h_run_fails "the daemon refuses a secret key that others can read" "$DAEMON_BIN" -c "$H_TMP/amtacs.yaml"
h_match "accessible by group or others" "$H_OUT" "and says why"
chmod 600 "$H_TMP/secret.key"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

# wait prints every message, then the outcome
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id" --timeout 120 >"$H_TMP/wait.out" && h_ok "wait exits 0 for a job that succeeds" ||
    h_not_ok "wait exits 0 for a job that succeeds"
h_eq "$(h_ctl log "$id" | sed -n '/^Job Log/,$p' | sed '1d;$d'; echo 'success DONE (4)')" "$(cat "$H_TMP/wait.out")" \
    "wait printed every message once, in order, then the outcome"

# wait shows the messages while the job runs: WAITINGPARENT writes one, then
# waits (15 WAIT FOR JOB) on children that never end, until it is killed
wp=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j WAITINGPARENT)
h_ctl wait "$wp" --timeout 120 >"$H_TMP/wait.wp.out" &
waiter=$!
h_wait_until 60 grep -q "Waiting parent .* started" "$H_TMP/wait.wp.out" ||
    h_not_ok "wait prints the message of a running job"
h_eq running "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $wp")" \
    "wait prints the first messages while the job still runs"
h_ctl kill "$wp" >/dev/null
wait "$waiter" && h_not_ok "wait exits non-zero for a job that fails (KILLED)" ||
    h_ok "wait exits non-zero for a job that fails (KILLED)"
h_match 'KILLED \(3\)' "$(tail -n 1 "$H_TMP/wait.wp.out")" "and ends with the outcome"

# --json
h_eq "4 DONE success REPORTTEST01 4280" "$(h_ctl show "$id" --json | jq -r '"\(.completion_code) \(.completion_name) \(.result) \(.name) \(.batch_request_id)"')" \
    "show --json"
h_eq "$id" "$(h_ctl list --json | jq ".[] | select(.id == $id) | .id")" "list --json"
h_eq '"success"' "$(h_ctl wait "$id" --json | jq .result)" "wait --json"

# clear errors
h_run_fails "a job id must be a number" h_ctl show abc
h_match "'abc' is not a job id" "$H_OUT" "and the error says so"
h_run_fails "an unknown job" h_ctl log 999999
h_match "no job 999999" "$H_OUT" "is named"
h_run_fails "21 task values are refused" h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT $(for i in $(seq 1 21); do echo "-v K$i=v"; done)
h_match "at most 20 are allowed" "$H_OUT" "with the limit"
h_run_fails "a task value that is not NAME=VALUE is refused" h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT -v justtext
h_match "task value 1 \('justtext'\) is not name=value" "$H_OUT" "with its position and text"
set +e
out=$("$CTL_BIN" --db "host=$H_TMP/nowhere" submit batch -C AMTDEMO -a DEMO2 -j INSTANT -v A=1 -v $'B=x\ty' 2>&1)
rc=$?
set -e
h_eq "2 amtacsctl submit: bad --value: task value 2 contains a control character (U+0009) at position 4; only printable characters are allowed" \
    "$rc $out" "a bad task value is a usage error (exit 2) named by amtacsctl before it connects"
h_run_fails "an unknown connection is refused" h_ctl submit batch -C NOSUCH -a DEMO2 -j INSTANT
h_match "connection 'NOSUCH' is not known" "$H_OUT" "and named"
h_run_fails "a script option on a batch job is refused" h_ctl submit batch -C AMTDEMO -a DEMO2 -s x.ps1
h_run_fails "missing fields give the usage" h_ctl submit batch -C AMTDEMO
h_match "are required" "$H_OUT" "naming what is required"

# MonitorJobs: offered, used
h_match '^[1-9]' "$(h_sim_counter .routes.monitor_jobs)" "jobs are followed with MonitorJobs when the server offers it"
h_eq 0 "$(h_sim_counter .routes.monitor)" "and not one MonitorJob call each"

# --- a password copied onto another Batch User's row does not open ---------------
h_sql -c "INSERT INTO acs.batch_users (name, key_id, sealed_password) SELECT 'opconbatch', key_id, sealed_password FROM acs.batch_users WHERE name = 'amtopcon'" >/dev/null
h_daemons_stop
cat >"$H_TMP/two.yaml" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
http: {listen: "127.0.0.1:0"}
daemon:
  max_log_bytes: 4096
connections:
  - name: AMTDEMO
    url: $H_SIM_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms}
  - name: COPIED
    url: $H_SIM_URL
    batch_user: opconbatch
CONF
curl -fsS -X PUT --data '{"features":["IdempotentStart"]}' "$H_SIM_URL/sim/config" >/dev/null
monitor_before=$(h_sim_counter .routes.monitor)
h_daemon_start "$H_TMP/two.yaml"
h_daemon_ready
id=$(h_ctl submit batch -C COPIED -a DEMO2 -j INSTANT)
h_ctl wait "$id" --timeout 120 >/dev/null || true
h_eq "24" "$(h_sql -c "SELECT completion_code FROM acs.jobs WHERE id = $id")" \
    "a sealed password copied onto another Batch User ends AUTHENTICATION_ERROR (24)"
h_match "sealed for another user" "$(h_ctl log "$id")" "and the log says why"

# --- the log size cap -------------------------------------------------------------
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j MANYMESSAGES)
h_ctl wait "$id" --timeout 120 --quiet >/dev/null
log=$(h_ctl log "$id")
h_eq 1 "$([ "$(h_ctl log "$id" | wc -c)" -le 4096 ] && echo 1 || echo 0)" "a chatty job's log stays within daemon.max_log_bytes"
h_match 'amtacs: log cut at 4096 bytes \(daemon.max_log_bytes\): [0-9]+ of 250 messages kept' "$log" \
    "with a marker saying what was left out"
h_match 'Completion Code : DONE' "$log" "and its outcome intact"
h_match '^[1-9]' "$(( $(h_sim_counter .routes.monitor) - monitor_before ))" \
    "without MonitorJobs on the server, jobs are followed one MonitorJob call at a time"

# --- no secret in PostgreSQL's statement log, the daemon's log or any job log ------
for f in "$H_PG_DATA/server.log" "$H_TMP"/daemon.*.log; do
    grep -q -- "$pw" "$f" && h_not_ok "$(basename "$f") contains the password" || h_ok "$(basename "$f") does not contain the password"
done
h_match "batch_users" "$(cat "$H_PG_DATA/server.log")" "(the statement log did record the Batch User statements)"
h_sql -c "SELECT log FROM acs.job_logs" | grep -q -- "$pw" && h_not_ok "a job log contains the password" ||
    h_ok "no job log contains the password"
