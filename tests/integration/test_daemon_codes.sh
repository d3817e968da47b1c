# Every final completion code the server reports maps to the right result,
# and the connector's own failures (23, 24, a refused start) end the job with
# a log that says why, without any secret.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
h_batch_user opconbatch 'wrong-password-Xy7'   # refused by the server's logon
cat >"$H_TMP/amtacs.yaml" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
http: {listen: "127.0.0.1:0"}
log_level: debug
connections:
  - name: AMTDEMO
    url: $H_SIM_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
  - name: BADPASS
    url: $H_SIM_URL
    batch_user: opconbatch
    poll: {initial_delay: 20ms, interval: 50ms}
  - name: NOPASS
    url: $H_SIM_URL
    batch_user: ghost
  - name: NOSERVER
    url: http://127.0.0.1:1
    batch_user: amtopcon
    start_retry: {attempts: 3, delay: 50ms}
    http: {connect_timeout: 500ms, timeout: 1s}
CONF
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

declare -A expect=(
    [SELFKILL]=3 [INSTANT]=4 [SKIPPEDJOB]=6 [DELETEDJOB]=10 [ERRORJOB]=11 [ABORTJOB]=12
    [UNDEFINEDJOB]=19 [RECOVERABORT]=22 [WEBERRORJOB]=23 [AUTHERRORJOB]=24 [INVALIDUSERJOB]=99
    [ALLSTATES]=4 [WAITFORFILE]=4 [MANUALRUN]=4
)
declare -A ids=()
for job in "${!expect[@]}"; do
    ids[$job]=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j "$job")
done
nouser=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT -u NOBODY)
noscript=$(h_ctl submit script -C AMTDEMO -a DEMO2 -s 'F:\Amt\Scripts\DEMO2\MISSING.ps1')
noapp=$(h_ctl submit batch -C AMTDEMO -a NOAPP -j INSTANT)
badpass=$(h_ctl submit batch -C BADPASS -a DEMO2 -j INSTANT)
nopass=$(h_ctl submit batch -C NOPASS -a DEMO2 -j INSTANT)
noserver=$(h_ctl submit batch -C NOSERVER -a DEMO2 -j INSTANT)

all_done() { [ "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'")" = 0 ]; }
h_wait_until 120 all_done || h_not_ok "every job finished within 120 s"

for job in "${!expect[@]}"; do
    code=${expect[$job]}
    result=$([ "$code" = 4 ] && echo success || echo failure)
    h_eq "$code|$result" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = ${ids[$job]}")" \
        "$job ends with code $code ($result)"
    name=$(h_sql -c "SELECT name FROM acs.completion_codes WHERE code = $code")
    h_match "Completion Code : $name" "$(h_ctl log "${ids[$job]}")" "$job's log shows $name"
done

h_eq "99|failure" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = $nouser")" \
    "an unknown named AMT user ends INVALID AMT USER (99)"
h_eq "11|failure" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = $noscript")" \
    "a script that does not exist ends ERROR (11)"
h_match '"File not found"' "$(h_ctl log "$noscript")" "its log says File not found"

h_eq "11|failure" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = $noapp")" \
    "a start the server refuses (unknown application) ends ERROR (11)"
h_match 'amtacs: the Batch Server refused the start: HTTP 404' "$(h_ctl log "$noapp")" "its log says why"

h_eq "24|failure" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = $badpass")" \
    "a refused logon ends AUTHENTICATION_ERROR (24)"
h_match "logon of Batch User 'opconbatch' refused" "$(h_ctl log "$badpass")" "its log says the logon was refused"
h_eq "24|failure" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = $nopass")" \
    "a Batch User without a stored password ends AUTHENTICATION_ERROR (24)"
h_match "no password is stored for Batch User 'ghost'" "$(h_ctl log "$nopass")" "its log names the missing password"

h_eq "23|failure" "$(h_sql -c "SELECT completion_code, result FROM acs.jobs WHERE id = $noserver")" \
    "an unreachable server ends WEB_SERVER_ERROR (23) after the retries"
h_match 'could not be reached to start the job \(3 attempts\)' "$(h_ctl log "$noserver")" "its log says so"
h_match 'could not be reached' "$(h_sql -c "SELECT error FROM acs.job_results WHERE id = $noserver")" \
    "job_results carries the error text"

# No secret anywhere: not in job logs, not in the daemon's log.
for secret in amtopcon-secret wrong-password-Xy7; do
    n=$(h_sql -c "SELECT count(*) FROM acs.job_logs WHERE log LIKE '%$secret%'")
    h_eq 0 "$n" "no job log contains the password $secret"
    grep -q -- "$secret" "$H_DAEMON_LOG" && h_not_ok "the daemon log contains $secret" || h_ok "the daemon log does not contain $secret"
done
h_eq 1 "$(h_sim_counter .logons)" "one logon served every call of the connection (the token is reused)"
