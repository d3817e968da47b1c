# amtacsd over HTTPS: a connection that trusts the server's CA (tls.ca_file)
# runs jobs and gets no plain-http warning; a connection that does not trust
# it is refused before anything reaches the server (23 WEB_SERVER_ERROR, the
# certificate problem in the job log); a plain http:// connection works and is
# warned about exactly once, at start; tls.verify: false works (testing only).
source "$(dirname "$0")/../lib/harness.sh"

command -v openssl >/dev/null 2>&1 || { h_log "openssl not installed"; exit 1; }

### A throwaway CA and a server certificate for 127.0.0.1 and localhost ##########

pki=$H_TMP/pki
mkdir -p "$pki"
openssl_q() { openssl "$@" >"$pki/openssl.log" 2>&1 || { cat "$pki/openssl.log" >&2; return 1; }; }
openssl_q req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 2 -subj "/CN=amtacs test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl_q req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=127.0.0.1"
cat >"$pki/server.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EXT
openssl_q x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/server.ext" -out "$pki/server.pem"
openssl_q verify -CAfile "$pki/ca.pem" "$pki/server.pem"

### Services: one simulator over HTTPS, one over plain HTTP ######################

h_pg_start
h_ctl migrate >/dev/null
h_sim_start --tls-cert "$pki/server.pem" --tls-key "$pki/server.key"
TLS_SIM=$H_SIM_URL                        # printed as http://; the server speaks https
TLS_URL="https://127.0.0.1:${TLS_SIM##*:}"
h_sim_start
PLAIN_URL=$H_SIM_URL
h_batch_user amtopcon amtopcon-secret

h_eq ok "$(curl -fsS --cacert "$pki/ca.pem" "$TLS_URL/api/heartbeat" | jq -r .status)" \
    "the simulator serves HTTPS with the test CA's certificate for 127.0.0.1"
curl -fsS --max-time 5 "http://127.0.0.1:${TLS_SIM##*:}/api/heartbeat" >/dev/null 2>&1 &&
    h_not_ok "the HTTPS simulator also answers plain http" ||
    h_ok "the HTTPS simulator does not answer plain http"

# Counters and tasks of the HTTPS simulator (the /sim routes are https too).
tls_sim() { curl -fsS --cacert "$pki/ca.pem" "$TLS_URL$1"; }

cat >"$H_TMP/amtacs.yaml" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
http: {listen: "127.0.0.1:0"}
log_level: debug
connections:
  # The http timeouts are bounds, not waits: a TLS handshake with the ASan
  # simulator beside stress-ng took over 2 s, and a timeout would hide the
  # certificate error NOCA must report.
  # Trusts the server through the test CA.
  - name: TLSCA
    url: $TLS_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    http: {connect_timeout: 30s, timeout: 30s}
    tls: {ca_file: $pki/ca.pem}
  # Same server, verification on (the default) against the system store,
  # which does not know the test CA.
  - name: NOCA
    url: $TLS_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    start_retry: {attempts: 2, delay: 50ms}
    http: {connect_timeout: 30s, timeout: 30s}
  # Plain http: works, but the daemon warns.
  - name: PLAIN
    url: $PLAIN_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    http: {connect_timeout: 30s, timeout: 30s}
  # verify: false accepts any certificate: for testing only, never in
  # production (anyone in the middle could read the Batch User's password).
  - name: NOVERIFY
    url: $TLS_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    http: {connect_timeout: 30s, timeout: 30s}
    tls: {verify: false}
CONF
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

reference() { # the reference log with a given Server URL
    sed "s|^Server          : .*|Server          : $2|" "$AMTACS_SRC/tests/data/joblogs/$1"
}
result() { h_sql -c "SELECT state, completion_code, completion_name, result FROM acs.job_results WHERE id = $1"; }

### (a) https with the CA file ####################################################

id_ca=$(h_ctl submit batch -C TLSCA -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id_ca" --timeout 120 >/dev/null || true
h_eq "finished|4|DONE|success" "$(result "$id_ca")" "TLSCA (tls.ca_file): REPORTTEST01 ends DONE over https"
h_eq "4280" "$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $id_ca")" \
    "it is the first request the HTTPS simulator made"
h_eq "$(reference REPORTTEST01.DONE.log "$TLS_URL")" "$(h_ctl log "$id_ca")" \
    "its job log equals the reference, Server $TLS_URL"
task_ca=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id_ca")
h_eq 1 "$(tls_sim /sim/tasks | jq --arg t "$task_ca" '[.tasks[] | select(.taskId == $t)] | length')" \
    "the HTTPS simulator received its Start"
grep -E 'event=conn\.plain_http' "$H_DAEMON_LOG" | grep -qE 'connection="?TLSCA"?( |$)' &&
    h_not_ok "no conn.plain_http warning for TLSCA" || h_ok "no conn.plain_http warning for TLSCA"

### (b) https, verification on, CA unknown: refused ###############################

starts_before=$(tls_sim /sim/counters | jq -r .routes.start)
logons_before=$(tls_sim /sim/counters | jq -r .routes.logon)
tasks_before=$(tls_sim /sim/tasks | jq '.tasks | length')
id_noca=$(h_ctl submit batch -C NOCA -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id_noca" --timeout 120 >/dev/null && h_not_ok "wait exits non-zero for NOCA's job" ||
    h_ok "wait exits non-zero for NOCA's job"
h_eq "finished|23|WEB_SERVER_ERROR|failure" "$(result "$id_noca")" \
    "NOCA (CA not trusted): the job ends WEB_SERVER_ERROR (23) after its 2 attempts"
log_noca=$(h_ctl log "$id_noca" || true)
# the last line of the Job Log section (before the closing rule)
last_noca=$(sed -n '/^Job Log/,$p' <<<"$log_noca" | sed '1d;$d' | tail -n 1)
h_match '^"?amtacs: the Batch Server could not be reached to start the job \(2 attempts\)' "$last_noca" \
    "its job log's last message is the reason, as \"amtacs: …\""
h_match '[Cc]ertificate' "$last_noca" "the reason names the certificate problem"
h_match "Server          : $TLS_URL" "$log_noca" "its log names the server"
h_match '[Cc]ertificate' "$(h_sql -c "SELECT error FROM acs.job_results WHERE id = $id_noca")" \
    "job_results.error names the certificate problem"
h_eq "$starts_before" "$(tls_sim /sim/counters | jq -r .routes.start)" \
    "no Start reached the simulator for NOCA (routes.start unchanged)"
h_eq "$logons_before" "$(tls_sim /sim/counters | jq -r .routes.logon)" \
    "no logon reached it either: the Batch User's password never went to an untrusted server"
h_eq "$tasks_before" "$(tls_sim /sim/tasks | jq '.tasks | length')" "the simulator knows no new task"
task_noca=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id_noca")
h_eq 0 "$(tls_sim /sim/tasks | jq --arg t "$task_noca" '[.tasks[] | select(.taskId == $t)] | length')" \
    "NOCA's taskId is unknown to the simulator"
h_eq "" "$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $id_noca")" \
    "NOCA's job has no BatchRequestId"

### (c) plain http: works, warned about once at start #############################

id_plain=$(h_ctl submit batch -C PLAIN -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id_plain" --timeout 120 >/dev/null || true
h_eq "finished|4|DONE|success" "$(result "$id_plain")" "PLAIN (http://): REPORTTEST01 ends DONE"
h_eq "$(reference REPORTTEST01.DONE.log "$PLAIN_URL")" "$(h_ctl log "$id_plain")" \
    "its job log equals the reference, Server $PLAIN_URL"
warnings=$(grep -E 'event=conn\.plain_http' "$H_DAEMON_LOG" || true)
h_eq 1 "$(grep -c . <<<"$warnings")" "the daemon logged conn.plain_http exactly once (after a job ran on it)"
h_match 'connection="?PLAIN"?( |$)' "$warnings" "the warning names connection PLAIN"
h_match 'level="?warn' "$warnings" "at level warn"
h_match "$PLAIN_URL" "$warnings" "and its URL"
warn_line=$(grep -nE 'event=conn\.plain_http' "$H_DAEMON_LOG" | head -n 1 | cut -d: -f1)
claim_line=$(grep -nE 'event=job\.claimed' "$H_DAEMON_LOG" | head -n 1 | cut -d: -f1)
if [ -n "$warn_line" ] && [ -n "$claim_line" ] && [ "$warn_line" -lt "$claim_line" ]; then
    h_ok "the warning comes at start, before the first job was claimed"
else
    h_not_ok "the warning comes at start, before the first job was claimed (line ${warn_line:-?} vs ${claim_line:-?})"
fi

### (d) verify: false (testing only) ##############################################

id_nv=$(h_ctl submit batch -C NOVERIFY -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id_nv" --timeout 120 >/dev/null || true
h_eq "finished|4|DONE|success" "$(result "$id_nv")" "NOVERIFY (tls.verify: false): REPORTTEST01 ends DONE over https"
h_match "Server          : $TLS_URL" "$(h_ctl log "$id_nv")" "its log names the https server"
task_nv=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id_nv")
h_eq 1 "$(tls_sim /sim/tasks | jq --arg t "$task_nv" '[.tasks[] | select(.taskId == $t)] | length')" \
    "the HTTPS simulator received its Start"

h_eq 1 "$(grep -cE 'event=conn\.plain_http' "$H_DAEMON_LOG")" "still exactly one conn.plain_http warning at the end"
grep -q 'amtopcon-secret' "$H_DAEMON_LOG" && h_not_ok "the daemon log contains the password" ||
    h_ok "the daemon log does not contain the password"

### (e) TLS 1.1 is refused, even where the system's OpenSSL policy allows it ######

# OpenSSL's policy for the daemon's process lowered to TLS 1.0 and security
# level 0, so that only the daemon's own minimum (TLS 1.2) stands between it
# and a TLS 1.1 server (Debian's default policy would refuse too).
cat >"$pki/weak.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
CNF
old_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OPENSSL_CONF=$pki/weak.cnf openssl s_server -quiet -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
    -accept "127.0.0.1:$old_port" -cert "$pki/server.pem" -key "$pki/server.key" -www \
    >"$H_TMP/s_server.log" 2>&1 &
H_PIDS+=("$!")
h_wait_until 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$old_port" ||
    h_not_ok "the TLS 1.1 server listens on $old_port"
h_eq 200 "$(OPENSSL_CONF=$pki/weak.cnf curl -sS -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" \
    "https://127.0.0.1:$old_port/" 2>&1)" "under that policy a client without a minimum talks TLS 1.1 to it"
cat >"$H_TMP/tls11.yaml" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
log_level: debug
connections:
  - name: TLS11
    url: https://127.0.0.1:$old_port
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
    start_retry: {attempts: 2, delay: 50ms}
    http: {connect_timeout: 30s, timeout: 30s}
    tls: {ca_file: $pki/ca.pem}
CONF
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
OPENSSL_CONF=$pki/weak.cnf h_daemon_start "$H_TMP/tls11.yaml"
h_daemon_ready
id_old=$(h_ctl submit batch -C TLS11 -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id_old" --timeout 120 >/dev/null || true
h_eq "finished|23|WEB_SERVER_ERROR|failure" "$(result "$id_old")" \
    "TLS11 (a server offering TLS 1.1 only): the job ends WEB_SERVER_ERROR (23)"
h_match 'protocol version|unsupported protocol' "$(h_sql -c "SELECT error FROM acs.job_results WHERE id = $id_old")" \
    "its error names the TLS version refused, before any HTTP (no logon went to it)"
