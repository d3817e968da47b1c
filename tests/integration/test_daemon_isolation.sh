# Connections are isolated: one daemon serves three connections, each with its
# own Batch Server (a simulator each), Batch User and settings. Two servers go
# bad (one leaves every Start hanging, the other hangs every call, logon
# included); the healthy connection's jobs all finish DONE while the others'
# are still stuck. Once the faults are cleared, the stuck jobs' Starts are
# retried and they finish DONE too, each started exactly once.
#
# What a user should expect: a Start that times out (or whose logon times out)
# counts as one of start_retry.attempts and is sent again (the server promises
# an idempotent Start, and a Start that never left the daemon is always safe to
# send again); a server that stays stuck longer than the retry policy allows
# ends its jobs WEB_SERVER_ERROR (23, shown by test_daemon_codes.sh). Here the
# policies outlast the outage, so nothing ends 23.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null

# GOOD: a healthy server; Batch User amtopcon (from the catalog).
h_sim_start
GOOD_URL=$H_SIM_URL
# BAD: its Starts hang; a long http timeout keeps them in flight for a while.
h_sim_start
BAD_URL=$H_SIM_URL
# DEAD: every call hangs, logon and heartbeat included; a short http timeout,
# so its Starts fail fast and are retried (plenty of attempts).
h_sim_start
DEAD_URL=$H_SIM_URL

# Each of BAD's and DEAD's servers accepts only its own Batch User: the
# catalog's users get passwords nobody knows there, and a new user is added.
sim() { # URL METHOD PATH [BODY]
    local args=(-fsS --max-time 5 -X "$2" "$1$3")
    [ $# -ge 4 ] && args+=(--data "$4")
    curl "${args[@]}"
}
for url in "$BAD_URL" "$DEAD_URL"; do
    for u in amtopcon opconbatch; do
        sim "$url" POST /sim/users "{\"name\":\"$u\",\"password\":\"locked-$RANDOM$RANDOM\"}" >/dev/null
    done
done
sim "$BAD_URL" POST /sim/users '{"name":"isobad","password":"isobad-Secret-1"}' >/dev/null
sim "$DEAD_URL" POST /sim/users '{"name":"isodead","password":"isodead-Secret-2"}' >/dev/null
h_batch_user amtopcon amtopcon-secret
h_batch_user isobad isobad-Secret-1
h_batch_user isodead isodead-Secret-2
logon_status() { # URL USER PASSWORD -> HTTP status of a logon
    curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$1/api/logon" \
        --data "{\"user\":\"$2\",\"password\":\"$3\"}"
}
h_eq "401 200" "$(logon_status "$BAD_URL" amtopcon amtopcon-secret) $(logon_status "$BAD_URL" isobad isobad-Secret-1)" \
    "BAD's server refuses amtopcon and accepts only its own Batch User isobad"
h_eq "401" "$(logon_status "$GOOD_URL" isobad isobad-Secret-1)" "GOOD's server does not know isobad"
h_eq "401 200" "$(logon_status "$DEAD_URL" amtopcon amtopcon-secret) $(logon_status "$DEAD_URL" isodead isodead-Secret-2)" \
    "DEAD's server accepts only its own Batch User isodead"
sim "$BAD_URL" PUT /sim/faults '{"hang_rate":1,"hang_ms":60000,"routes":["start"]}' >/dev/null
sim "$DEAD_URL" PUT /sim/faults '{"hang_rate":1,"hang_ms":60000}' >/dev/null
counters() { curl -fsS --max-time 5 "$1/sim/counters"; }
# Baselines, taken after the probes above (which made one refused logon each).
# shellcheck disable=SC2034 # read through ${!base_var} below
base_good=$(counters "$GOOD_URL")
base_bad=$(counters "$BAD_URL")
base_dead=$(counters "$DEAD_URL")

cat >"$H_TMP/amtacs.yaml" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
http: {listen: "127.0.0.1:0"}
log_level: debug
connections:
  - name: GOOD
    url: $GOOD_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    start_retry: {attempts: 3, delay: 50ms}
    http: {connect_timeout: 1s, timeout: 5s}
  - name: BAD
    url: $BAD_URL
    batch_user: isobad
    max_in_flight: 50
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    start_retry: {attempts: 3, delay: 100ms}
    http: {connect_timeout: 1s, timeout: 8s}
  - name: DEAD
    url: $DEAD_URL
    batch_user: isodead
    max_in_flight: 30
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    start_retry: {attempts: 100, delay: 100ms, backoff: 2, max_delay: 400ms}
    http: {connect_timeout: 1s, timeout: 500ms}
CONF
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_sql 60 3 "SELECT count(*) FROM acs.connections WHERE name IN ('GOOD', 'BAD', 'DEAD')" ||
    h_not_ok "the daemon registered its three connections"

# 20 jobs on each connection, the troubled ones first; half INSTANT, half the
# 0.3 s REPORTTEST01.
h_sql -c "SELECT count(acs.submit_batch_job(c, 'DEMO2', CASE WHEN i % 2 = 0 THEN 'INSTANT' ELSE 'REPORTTEST01' END))
          FROM unnest(ARRAY['BAD', 'DEAD', 'GOOD']) c, generate_series(1, 20) i" >/dev/null
t0=$SECONDS
count() { h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = '$1' AND $2"; }

### The healthy connection is not held up ##########################################

h_wait_sql 60 20 "SELECT count(*) FROM acs.jobs WHERE connection = 'GOOD' AND state = 'finished'" ||
    h_not_ok "GOOD's 20 jobs finished"
good_secs=$((SECONDS - t0))
h_eq 20 "$(count GOOD "completion_code = 4 AND result = 'success'")" "all 20 GOOD jobs ended DONE (in about ${good_secs} s)"
h_eq 0 "$(count BAD "state = 'finished'")" "meanwhile none of BAD's jobs has finished"
h_eq 0 "$(count BAD "batch_request_id IS NOT NULL")" "and none of them has been started"
h_eq 0 "$(count DEAD "state = 'finished'")" "none of DEAD's jobs has finished"
h_eq 0 "$(count DEAD "batch_request_id IS NOT NULL")" "and none of them has been started"
h_eq 20 "$(count BAD "state = 'starting'")" "BAD's 20 jobs are claimed and starting"
h_eq 20 "$(count DEAD "state = 'starting'")" "DEAD's 20 jobs are claimed and starting"

bad_start_calls() { echo $(( $(counters "$BAD_URL" | jq .routes.start) - $(jq .routes.start <<<"$base_bad") )); }
h_wait_for 30 '[ "$(bad_start_calls)" -gt 0 ]' || true
now_bad=$(counters "$BAD_URL")
now_dead=$(counters "$DEAD_URL")
bad_starts=$(( $(jq .routes.start <<<"$now_bad") - $(jq .routes.start <<<"$base_bad") ))
h_match '^[1-9]' "$bad_starts" "BAD's Start calls reached its server and hang there ($bad_starts so far)"
# (only while BAD's 8 s http timeout has not run out: a slow machine may take
# longer for GOOD's jobs, and BAD's Starts then time out and hang again)
if [ $((SECONDS - t0)) -lt 7 ]; then
    h_eq 0 "$(grep -E 'event=job\.start_retry' "$H_DAEMON_LOG" | grep -cE 'connection="?BAD"?( |$)' || true)" \
        "none of BAD's Starts has timed out yet: with an 8 s http timeout they sit in flight"
else
    h_log "GOOD took $((SECONDS - t0)) s, past BAD's 8 s http timeout: its Starts timed out and hang again (not checked)"
fi
h_eq 0 "$(( $(jq .routes.start <<<"$now_dead") - $(jq .routes.start <<<"$base_dead") ))" \
    "no Start reached DEAD's server: its logons hang, the Starts wait for a token"
h_match '^[1-9]' "$(( $(jq .routes.logon <<<"$now_dead") - $(jq .routes.logon <<<"$base_dead") ))" \
    "DEAD's logons were tried"
dead_retries() { [ "$(grep -E 'event=job\.start_retry' "$H_DAEMON_LOG" | grep -cE 'connection="?DEAD"?( |$)' || true)" -gt 0 ]; }
h_wait_until 30 dead_retries && h_ok "DEAD's Starts time out fast (500 ms) and are retried" ||
    h_not_ok "DEAD's Starts time out fast (500 ms) and are retried"
h_eq 0 "$(( $(jq .logon_failures <<<"$now_bad") - $(jq .logon_failures <<<"$base_bad") ))" \
    "BAD's server refused no logon: the daemon logged on to it as isobad"

### The faults are cleared: the stuck jobs finish too ##############################

sim "$BAD_URL" DELETE /sim/faults >/dev/null
sim "$DEAD_URL" DELETE /sim/faults >/dev/null
t1=$SECONDS
h_wait_sql 60 20 "SELECT count(*) FROM acs.jobs WHERE connection = 'DEAD' AND state = 'finished'" ||
    h_not_ok "DEAD's jobs finished once the faults were cleared"
h_wait_sql 60 20 "SELECT count(*) FROM acs.jobs WHERE connection = 'BAD' AND state = 'finished'" ||
    h_not_ok "BAD's jobs finished once the faults were cleared"
h_log "BAD and DEAD finished $((SECONDS - t1)) s after the faults were cleared"
h_eq 20 "$(count DEAD "completion_code = 4 AND result = 'success'")" \
    "once its server answers again, all 20 DEAD jobs end DONE (their Starts were retried)"
h_eq 20 "$(count BAD "completion_code = 4 AND result = 'success'")" \
    "all 20 BAD jobs end DONE: the hung Starts timed out and were sent again"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state = 'in_doubt'")" "no job went in doubt"
h_match '^[1-9]' "$(grep -E 'event=job\.start_retry' "$H_DAEMON_LOG" | grep -E 'connection="?BAD"?( |$)' | grep -ciE 'tim(ed|e)' || true)" \
    "the daemon logged BAD's retries after a timeout"
h_eq 0 "$(grep -E 'event=job\.start_retry' "$H_DAEMON_LOG" | grep -cE 'connection="?GOOD"?( |$)' || true)" \
    "GOOD never needed a retry"

# Each started exactly once on its own server.
for c in BAD DEAD GOOD; do
    url_var=${c}_URL
    url=${!url_var}
    tasks=$(curl -fsS "$url/sim/tasks")
    ours=$(h_sql -c "SELECT string_agg(task_id::text || ':' || batch_request_id, ' ' ORDER BY task_id) FROM acs.jobs WHERE connection = '$c'")
    theirs=$(jq -r '[.tasks[] | "\(.taskId):\(.BatchRequestId)"] | sort | join(" ")' <<<"$tasks")
    h_eq "$ours" "$theirs" "$c's server made exactly its 20 requests, with the taskIds and BatchRequestIds the daemon recorded"
    # (A Start the server took but whose answer came too late is sent again and
    # answered with the same request: more than one Start call per request is
    # fine; more than one request per taskId is not -- checked just above.)
    if [ "$c" = GOOD ]; then
        h_eq 0 "$(jq '[.tasks[] | select(.startCalls != 1)] | length' <<<"$tasks")" \
            "every one of $c's requests was started by a single Start"
    fi
    base_var=base_${c,,}
    h_eq 0 "$(( $(counters "$url" | jq .logon_failures) - $(jq .logon_failures <<<"${!base_var}") ))" \
        "$c's server refused no logon (each connection used its own Batch User)"
    id=$(h_sql -c "SELECT min(id) FROM acs.jobs WHERE connection = '$c' AND job_name = 'REPORTTEST01'")
    h_match $'\nServer          : '"$url"$'\n' "$(h_ctl log "$id")" "$c's job log names its own server $url"
    h_eq 20 "$(h_sql -c "SELECT count(*) FROM acs.job_logs l JOIN acs.jobs j ON j.id = l.job_id
                          WHERE j.connection = '$c' AND l.log LIKE '%Server          : $url' || chr(10) || '%'")" \
        "all 20 of $c's job logs name $url"
done
h_match '^[1-9]' "$(( $(counters "$BAD_URL" | jq .logons) - $(jq .logons <<<"$base_bad") ))" \
    "BAD's server saw the daemon's logons (as isobad, the only user it accepts)"
for secret in amtopcon-secret isobad-Secret-1 isodead-Secret-2; do
    grep -q -- "$secret" "$H_DAEMON_LOG" && h_not_ok "the daemon log contains $secret" ||
        h_ok "the daemon log does not contain $secret"
done
