# SIGHUP reloads the configuration while jobs run: connections added, changed
# (URL, Batch User, limits, poll timing) and removed take effect, and no job
# is dropped, failed or started twice. A broken file, or a change that takes
# a restart, is refused with the reason and the running configuration stays.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start --time-scale 0.1
SIM_A=$H_SIM_URL
h_sim_start --time-scale 0.1
SIM_B=$H_SIM_URL
h_batch_user amtopcon amtopcon-secret
h_batch_user opconbatch opconbatch-secret
CFG="$H_TMP/amtacs.yaml"

# write_config [SECOND_CONNECTION_YAML] with $A_URL, $A_USER, $A_EXTRA for AMTDEMO
write_config() {
    cat >"$CFG" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
log_level: ${LEVEL:-debug}
http: {listen: "127.0.0.1:0"}
daemon: {lease_seconds: 3, heartbeat_interval: 300ms}
connections:
  - name: AMTDEMO
    url: $A_URL
    batch_user: $A_USER
    poll: {initial_delay: 20ms, interval: ${A_POLL:-50ms}, max_interval: 200ms}
${A_EXTRA:-}
${1:-}
CONF
}
A_URL=$SIM_A A_USER=amtopcon write_config
h_daemon_start "$CFG"
h_daemon_ready
URL=$(h_daemon_http)
reloads() { grep -c "event=config.reloaded" "$H_DAEMON_LOG" || true; }
refusals() { grep -c 'event=config.reload_refused msg=".*stays in force' "$H_DAEMON_LOG" || true; }
hup() { kill -HUP "$H_DAEMON_PID"; }
reloaded() { [ "$(reloads)" = "$1" ]; }
refused() { [ "$(refusals)" = "$1" ]; }
# The jobs that must run across a reload are LONGRUNNINGREPORT, which runs until
# told: end_on_server CONNECTION URL ends the ones the server runs, DONE, as
# an operator on the server would; all_ended does it until none is left.
end_on_server() {
    local brid
    for brid in $(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE connection = '$1'
                            AND state = 'running' AND batch_request_id IS NOT NULL"); do
        curl -s -o /dev/null -X POST --data '{"code":4}' "$2/sim/requests/$brid/state" || true
    done
}
all_ended() {
    end_on_server AMTDEMO "$SIM_A"
    end_on_server SECOND "$SIM_B"
    [ "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'")" = 0 ]
}

# --- 1: add a connection, change limits and poll timing, while jobs run ----------
long1=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
long2=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 30 2 "SELECT count(*) FROM acs.jobs WHERE state = 'running'" || h_not_ok "two jobs run"
h_ctl submit batch -C SECOND -a DEMO2 -j INSTANT >/dev/null 2>&1 &&
    h_not_ok "a job for an unknown connection is refused" || h_ok "a job for an unknown connection is refused"
A_URL=$SIM_A A_USER=amtopcon A_POLL=80ms A_EXTRA="    max_in_flight: 7" write_config "  - name: SECOND
    url: $SIM_B
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms}"
hup
h_wait_until 30 reloaded 1 && h_ok "SIGHUP reloads the configuration" ||
    h_not_ok "SIGHUP reloads the configuration"
h_match "1 connection\\(s\\) added, 1 changed, 0 removed; no job dropped" \
    "$(grep event=config.reloaded "$H_DAEMON_LOG")" "and says what changed"
h_wait_sql 30 1 "SELECT count(*) FROM acs.connections WHERE name = 'SECOND'" ||
    h_not_ok "the new connection is registered in the database"
second=$(h_ctl submit batch -C SECOND -a DEMO2 -j INSTANT)
h_wait_sql 60 "finished|success" "SELECT state || '|' || result FROM acs.jobs WHERE id = $second" &&
    h_ok "a job on the added connection runs" || h_not_ok "a job on the added connection runs"
h_eq 1 "$(curl -fs "$SIM_B/sim/counters" | jq .start_calls)" "on the added connection's server"
h_eq "running|running" "$(h_sql -c "SELECT string_agg(state, '|') FROM acs.jobs WHERE id IN ($long1, $long2)")" \
    "the jobs running at the reload are still followed"
end_on_server AMTDEMO "$SIM_A"
h_wait_sql 60 "finished|success|finished|success" \
    "SELECT string_agg(state || '|' || result, '|' ORDER BY id) FROM acs.jobs WHERE id IN ($long1, $long2)" &&
    h_ok "the jobs running across the reload finish DONE" ||
    h_not_ok "the jobs running across the reload finish DONE"
many=()
for i in $(seq 1 12); do many+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)"); done
h_wait_sql 60 7 "SELECT count(*) FROM acs.jobs WHERE state IN ('starting', 'running') AND connection = 'AMTDEMO'" ||
    h_not_ok "7 of the 12 jobs are taken"
sleep 1 # and no more
h_eq 7 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state IN ('starting', 'running') AND connection = 'AMTDEMO'")" \
    "the new max_in_flight (7) holds"

# --- 2: a broken file is refused; the running configuration stays --------------------
cp "$CFG" "$H_TMP/good.yaml"
sed -i 's/interval: 80ms/interval: soon/' "$CFG"
hup
h_wait_until 30 refused 1 && h_ok "a broken file is refused" || h_not_ok "a broken file is refused"
h_match 'connections\[0\].poll.interval' "$(grep event=config.reload_refused "$H_DAEMON_LOG")" \
    "naming the key"
h_match "$CFG:[0-9]+" "$(grep event=config.reload_refused "$H_DAEMON_LOG")" "and the line"
still=$(h_ctl submit batch -C SECOND -a DEMO2 -j INSTANT)
h_wait_sql 60 "finished|success" "SELECT state || '|' || result FROM acs.jobs WHERE id = $still" &&
    h_ok "the running configuration stays in force" || h_not_ok "the running configuration stays in force"
cp "$H_TMP/good.yaml" "$CFG"
sed -i 's|^key_file: .*|key_file: /elsewhere/secret.key|' "$CFG"
hup
h_wait_until 30 refused 2 && h_ok "a change that takes a restart is refused" ||
    h_not_ok "a change that takes a restart is refused"
h_match "key_file changed: that takes a restart" "$(grep event=config.reload_refused "$H_DAEMON_LOG")" \
    "naming the setting"
h_match 'amtacs_config_reloads_total\{result="refused"\} 2' "$(curl -fs "$URL/metrics")" \
    "/metrics counts the refusals"

# --- 3: change URL and Batch User while jobs run; remove a connection ------------------
h_wait_until 120 all_ended || h_not_ok "the 12 jobs finished"
run1=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
run2=$(h_ctl submit batch -C SECOND -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 30 2 "SELECT count(*) FROM acs.jobs WHERE state = 'running'" || h_not_ok "two jobs run"
# the same server under another name, as after a DNS or proxy change
A_URL=${SIM_A/127.0.0.1/localhost} A_USER=opconbatch LEVEL=info write_config
hup
h_wait_until 30 reloaded 2 && h_ok "a reload changes URL and Batch User, removes SECOND" ||
    h_not_ok "a reload changes URL and Batch User, removes SECOND"
h_match "0 connection\\(s\\) added, 1 changed, 1 removed" "$(grep event=config.reloaded "$H_DAEMON_LOG" | tail -1)" \
    "and says so"
h_match "connection=SECOND msg=\"no new claims; the 1 job\(s\) in hand are followed to their end" \
    "$(grep event=config.connection_removed "$H_DAEMON_LOG")" "the removed connection's job is kept"
late=$(h_ctl submit batch -C SECOND -a DEMO2 -j INSTANT)
after=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
end_on_server AMTDEMO "$SIM_A"
end_on_server SECOND "$SIM_B"
h_wait_sql 60 "finished|success|finished|success" \
    "SELECT string_agg(state || '|' || result, '|' ORDER BY id) FROM acs.jobs WHERE id IN ($run1, $run2)" &&
    h_ok "jobs running across the change (and on the removed connection) finish DONE" ||
    h_not_ok "jobs running across the change (and on the removed connection) finish DONE"
h_wait_sql 60 "finished|success" "SELECT state || '|' || result FROM acs.jobs WHERE id = $after" &&
    h_ok "a new job starts with the new URL and Batch User" ||
    h_not_ok "a new job starts with the new URL and Batch User"
sleep 0.5
h_eq queued "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $late")" \
    "a job for the removed connection waits in the queue (no claim)"
metrics=$(curl -fs "$URL/metrics")
h_match 'amtacs_connection_configured\{connection="SECOND"\} 0' "$metrics" "/metrics shows SECOND removed"
h_match 'amtacs_config_reloads_total\{result="applied"\} 2' "$metrics" "and the reloads applied"
n=$(grep -c 'level=debug' "$H_DAEMON_LOG")
sleep 0.5
h_eq "$n" "$(grep -c 'level=debug' "$H_DAEMON_LOG")" "log_level info takes effect: no more debug lines"

# --- nothing started twice, nothing lost --------------------------------------------------
h_eq 0 "$(( $(curl -fs "$SIM_A/sim/counters" | jq .duplicate_starts) + $(curl -fs "$SIM_B/sim/counters" | jq .duplicate_starts) ))" \
    "no job was started twice"
total=$(( $(curl -fs "$SIM_A/sim/counters" | jq .requests_created) + $(curl -fs "$SIM_B/sim/counters" | jq .requests_created) ))
h_eq "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE batch_request_id IS NOT NULL")" "$total" \
    "every request the servers created belongs to exactly one job"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state = 'finished' AND result <> 'success'")" \
    "no job failed because of a reload"
kill -0 "$H_DAEMON_PID" && h_ok "the daemon runs on" || h_not_ok "the daemon runs on"
h_daemons_stop
