#!/usr/bin/env bash
# amt-batch-sim, fault injection through /sim/faults: error statuses, resets
# before and after the call took effect, hangs (that hold up nobody else and
# end on shutdown), latency, malformed, oversized and mislabelled bodies,
# "down", the route filter, the count limit, seeded rates, and the counters.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

source "$(dirname "${BASH_SOURCE[0]}")/../lib/simapi.sh"

# --- helpers of this file -----------------------------------------------------
start_body() {
    echo "{\"action\":\"Start\",\"taskId\":\"$1\",\"applicationName\":\"DEMO2\",\"amtSubmitUser\":\"BATCH\",\"amtStation\":\"OPCON\",\"jobName\":\"${2:-INSTANT}\"}"
}
faults() { call PUT /sim/faults "$1"; [ "$STATUS" = 200 ] || echo "PUT /sim/faults $1 -> $STATUS $BODY" >&2; }
# curl exit status of a GET with the token (0 = an HTTP answer came back).
curl_rc() { local rc=0; curl -sS -o /dev/null -H "X-AMT-LogonToken: $TOKEN" "$@" 2>/dev/null || rc=$?; echo $rc; }
# ----------------------------------------------------------------------------

h_sim_start
logon
hb="$H_SIM_URL/api/heartbeat"

### error status ###############################################################

faults '{"error_rate":1,"error_status":503}'
call GET /api/heartbeat
h_eq "503 503" "$STATUS $(jq -r .errorCode <<<"$BODY")" "error_rate 1: every /api call answers the error status"
call GET /sim/counters
h_eq 200 "$STATUS" "/sim/* is never faulted"
call POST /api/OpConJobAction "$(start_body "$(uuid)")"
h_eq 503 "$STATUS" "an errored Start..."
call GET /sim/counters
h_eq 0 "$(jq -r .requests_created <<<"$BODY")" "... creates no request"
call GET /sim/faults
h_eq "1 503" "$(jq -r '"\(.error_rate) \(.error_status)"' <<<"$BODY")" "GET /sim/faults shows the settings"
call DELETE /sim/faults
call GET /api/heartbeat
h_eq 200 "$STATUS" "DELETE /sim/faults switches everything off"

### route filter and count #####################################################

faults '{"error_rate":1,"error_status":500,"routes":["start"]}'
call GET /api/heartbeat
h_eq 200 "$STATUS" "routes: other routes are untouched"
call POST /api/OpConJobAction "$(start_body "$(uuid)")"
h_eq 500 "$STATUS" "routes: the named route fails"
faults '{"error_rate":1,"error_status":502,"count":2}'
s=""
for _ in 1 2 3; do call GET /api/heartbeat; s="$s $STATUS"; done
h_eq " 502 502 200" "$s" "count 2: only the next two requests fail"
call GET /sim/faults
h_eq 0 "$(jq -r .error_rate <<<"$BODY")" "after the count is used up the faults are off"

### resets #####################################################################

faults '{"reset_rate":1}'
rc=$(curl_rc "$hb")
h_eq 52 "$rc" "reset_rate 1: the connection closes without an answer (curl: empty reply)"
faults '{"down":true}'
h_eq "52 52" "$(curl_rc "$hb") $(curl_rc "$H_SIM_URL/api/MonitorJob/1")" "down: every /api call is reset"
call GET /sim/counters
h_eq 200 "$STATUS" "down: /sim/* still answers"
call DELETE /sim/faults

tid=$(uuid)
faults '{"reset_after_rate":1,"routes":["start"]}'
rc=0
curl -sS -o /dev/null -H "X-AMT-LogonToken: $TOKEN" --data-binary "$(start_body "$tid" LONGRUNNINGREPORT)" \
    "$H_SIM_URL/api/OpConJobAction" 2>/dev/null || rc=$?
h_eq 52 "$rc" "reset_after_rate: the Start gets no answer..."
call GET /sim/counters
created=$(jq -r .requests_created <<<"$BODY")
h_eq 1 "$created" "... but the request was created"
call DELETE /sim/faults
call POST /api/OpConJobAction "$(start_body "$tid" LONGRUNNINGREPORT)"
lost=$(jq -r .BatchRequestId <<<"$BODY")
call GET /sim/tasks
h_eq "$lost 2" "$(jq -r --arg t "$tid" '.tasks[] | select(.taskId == $t) | "\(.BatchRequestId) \(.startCalls)"' <<<"$BODY")" \
    "the retried Start with the same taskId gets that request's id"

### hang #######################################################################

faults '{"hang_rate":1,"hang_ms":5000,"routes":["monitor"]}'
t0=$(date +%s%N)
rc=$(curl_rc --max-time 1 "$H_SIM_URL/api/MonitorJob/$lost")
t1=$(date +%s%N)
h_eq 28 "$rc" "hang: the client times out (curl --max-time 1)"
h_eq true "$([ $(( (t1 - t0) / 1000000 )) -ge 900 ] && echo true || echo false)" "... after waiting about its 1 s"
monitors=$(h_sim_counter .routes.monitor)
curl -sS -o /dev/null -H "X-AMT-LogonToken: $TOKEN" --max-time 30 "$H_SIM_URL/api/MonitorJob/$lost" 2>/dev/null &
hanging=$!
h_wait_for 30 '[ "$(h_sim_counter .routes.monitor)" -gt "$monitors" ]' || h_not_ok "the hanging request reached the server"
call GET /api/heartbeat
h_eq 200 "$STATUS" "another request answers while one hangs"
rc=0
wait "$hanging" || rc=$?
h_eq 52 "$rc" "after hang_ms the hanging request is reset"
call DELETE /sim/faults

### latency ####################################################################

faults '{"latency_ms":400}'
total=$(curl -sS -o /dev/null -w '%{time_total}' "$hb")
h_eq true "$(awk -v t="$total" 'BEGIN { print (t >= 0.4) ? "true" : "false" }')" "latency_ms 400 delays the answer by at least 0.4 s"
call GET /api/heartbeat
h_eq 200 "$STATUS" "... and then answers normally"
call DELETE /sim/faults

### bodies #####################################################################

faults '{"malformed_rate":1}'
call GET /api/heartbeat
h_eq 200 "$STATUS" "malformed_rate: the status is normal..."
rc=0
jq . <<<"$BODY" >/dev/null 2>&1 || rc=$?
h_eq true "$([ "$rc" -ne 0 ] && echo true || echo false)" "... but the body is not valid JSON"
faults '{"oversized_rate":1}'
h_eq true "$(curl -sS -o /dev/null -w '%{size_download}' "$hb" | awk '{ print ($1 >= 2097152) ? "true" : "false" }')" \
    "oversized_rate: the body is at least 2 MiB by default"
faults '{"oversized_rate":1,"oversized_bytes":100000}'
size=$(curl -sS -o /dev/null -w '%{size_download}' "$hb")
h_eq true "$([ "$size" -ge 100000 ] && [ "$size" -lt 200000 ] && echo true || echo "false ($size)")" \
    "oversized_bytes sets the size"
faults '{"wrong_content_type_rate":1}'
h_match '^text/html' "$(curl -sS -o /dev/null -w '%{content_type}' "$hb")" "wrong_content_type_rate: text/html"
call DELETE /sim/faults

### seeded rates ###############################################################

pattern() {
    local s="" _
    faults '{"error_rate":0.5}'
    for _ in $(seq 1 24); do call GET /api/heartbeat; s="$s${STATUS:0:1}"; done
    call DELETE /sim/faults
    echo "$s"
}
h_sim_start --seed 42
p1=$(pattern)
h_sim_start --seed 42
p2=$(pattern)
h_eq "$p1" "$p2" "the same --seed gives the same fault pattern"
h_match '2' "$p1" "rate 0.5: some calls pass"
h_match '5' "$p1" "rate 0.5: some calls fail"

### settings validation and counters ##########################################

call PUT /sim/faults '{"error_rate":2}'
h_eq 400 "$STATUS" "a rate above 1: 400"
call PUT /sim/faults '{"routes":["nosuch"]}'
h_eq 400 "$STATUS" "an unknown route name: 400"
call PUT /sim/faults '{"sparkle":1}'
h_eq 400 "$STATUS" "an unknown field: 400"
call GET /sim/counters
fails=${p2//[^5]/}
h_eq "${#fails}" "$(jq -r .faults_injected <<<"$BODY")" "faults_injected counts every faulted request"

### a hang ends on shutdown ####################################################

"$SIM_BIN" --listen 127.0.0.1:0 --port-file "$H_TMP/hang.port" --catalog "$CATALOG" \
    >/dev/null 2>&1 &
hs=$!
h_wait_until 30 test -s "$H_TMP/hang.port" || true
url="http://127.0.0.1:$(cat "$H_TMP/hang.port")"
curl -sS -X PUT --data '{"hang_rate":1,"hang_ms":600000}' "$url/sim/faults" >/dev/null
curl -sS -o /dev/null --max-time 30 "$url/api/heartbeat" 2>/dev/null &
client=$!
h_wait_for 30 '[ "$(curl -fsS "$url/sim/counters" | jq .routes.heartbeat)" -ge 1 ]' ||
    h_not_ok "the hanging request reached the server"
kill -TERM "$hs"
h_wait_until 30 bash -c "! kill -0 $hs 2>/dev/null"
rc=0
wait "$hs" || rc=$?
h_eq 0 "$rc" "SIGTERM ends a simulator with a hanging request promptly, exit 0"
rc=0
wait "$client" || rc=$?
h_eq 52 "$rc" "the hanging client sees the connection closed"
