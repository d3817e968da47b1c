#!/usr/bin/env bash
# amt-batch-sim, bad input and load: malformed JSON, wrong types, missing or
# invalid Start fields, unknown routes, wrong methods, oversized bodies, bad
# UTF-8 — every one a 4xx JSON error whose errorCode is the status — then 300
# concurrent connections, and the server still answering at the end.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

source "$(dirname "${BASH_SOURCE[0]}")/../lib/simapi.sh"

# --- helpers of this file -----------------------------------------------------
# ----------------------------------------------------------------------------

# expect_error STATUS DESCRIPTION METHOD PATH [BODY]: the call answers STATUS
# with a JSON error whose errorCode is the status.
expect_error() {
    local want=$1 desc=$2
    shift 2
    call "$@"
    h_eq "$want $want" "$STATUS $(jq -r .errorCode <<<"$BODY" 2>/dev/null)" "$desc"
    h_match '.' "$(jq -r .errorDescription <<<"$BODY" 2>/dev/null)" "... with an errorDescription"
}
# start_json 'EXTRA MEMBERS' [OMIT-KEY]: a Start body; OMIT-KEY drops a mandatory field.
start_json() {
    jq -nc --arg t "$(uuid)" --argjson extra "{${1}}" --arg omit "${2:-}" \
        '{action:"Start",taskId:$t,applicationName:"DEMO2",amtSubmitUser:"BATCH",amtStation:"OPCON"}
         + $extra | del(.[$omit])'
}

h_sim_start
logon

### malformed bodies ###########################################################

expect_error 400 "malformed JSON: 400" POST /api/OpConJobAction '{"action":"Start",'
expect_error 400 "a JSON array instead of an object: 400" POST /api/OpConJobAction '[1,2]'
expect_error 400 "an empty body: 400" POST /api/OpConJobAction ''
expect_error 400 "malformed JSON at logon: 400" POST /api/logon 'user=amtopcon'
expect_error 400 "invalid UTF-8: 400" POST /api/OpConJobAction "$(printf '{"action":"Start","taskId":"\xff\xfe"}')"
expect_error 400 "no action: 400" POST /api/OpConJobAction '{}'
expect_error 400 "an unknown action: 400" POST /api/OpConJobAction '{"action":"Explode"}'
expect_error 400 "action of the wrong type: 400" POST /api/OpConJobAction '{"action":7}'

### Start validation ###########################################################

expect_error 400 "Start without taskId: 400" POST /api/OpConJobAction "$(start_json '"jobName":"INSTANT"' taskId)"
expect_error 400 "taskId that is not a UUID: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","taskId":"not-a-uuid"')"
expect_error 400 "taskId of the wrong type: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","taskId":42')"
expect_error 400 "Start without applicationName: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT"' applicationName)"
expect_error 404 "an unknown application: 404" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","applicationName":"NOAPP"')"
expect_error 400 "amtSubmitUser other than BATCH: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","amtSubmitUser":"OPCON"')"
expect_error 400 "amtSubmitUser missing: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT"' amtSubmitUser)"
expect_error 400 "amtStation other than OPCON: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","amtStation":"BATCH"')"
expect_error 400 "both jobName and scriptName: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","scriptName":"X.ps1"')"
expect_error 400 "neither jobName nor scriptName: 400" POST /api/OpConJobAction "$(start_json '')"
expect_error 400 "jobName of the wrong type: 400" POST /api/OpConJobAction "$(start_json '"jobName":["INSTANT"]')"
expect_error 404 "an unknown jobName: 404" POST /api/OpConJobAction "$(start_json '"jobName":"NOSUCHJOB"')"
values21=$(seq 1 21 | jq -R . | jq -sc .)
values20=$(seq 1 20 | jq -R . | jq -sc .)
expect_error 400 "21 task values: 400" POST /api/OpConJobAction \
    "$(start_json "\"jobName\":\"INSTANT\",\"taskValues\":$values21")"
call POST /api/OpConJobAction "$(start_json "\"jobName\":\"INSTANT\",\"taskValues\":$values20")"
h_eq 200 "$STATUS" "20 task values are fine"
expect_error 400 "task values that are not strings: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","taskValues":[1,2]')"
expect_error 400 "taskValues that is not an array: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","taskValues":"A B"')"
expect_error 400 "21 script parameters: 400" POST /api/OpConJobAction \
    "$(start_json "\"scriptName\":\"RUN_FILENAMETEST.ps1\",\"scriptParameters\":$values21")"
expect_error 400 "taskValues on a script: 400" POST /api/OpConJobAction \
    "$(start_json '"scriptName":"RUN_FILENAMETEST.ps1","taskValues":["a"]')"
expect_error 400 "amtUser of the wrong type: 400" POST /api/OpConJobAction \
    "$(start_json '"jobName":"INSTANT","amtUser":5')"
expect_error 400 "Kill with a non-integer id: 400" POST /api/OpConJobAction '{"action":"Kill","BatchRequestId":"4280"}'
call GET /sim/counters
h_eq 1 "$(jq -r .requests_created <<<"$BODY")" "no rejected Start created a request"

### routes and methods #########################################################

expect_error 404 "an unknown /api route: 404" GET /api/NoSuchThing
expect_error 404 "an unknown path: 404" GET /index.html
expect_error 405 "GET on a POST route: 405" GET /api/logon
expect_error 405 "DELETE on heartbeat: 405" DELETE /api/heartbeat
h_match 'Allow: POST' "$(curl -sS -D - -o /dev/null "$H_SIM_URL/api/OpConJobAction" | tr -d '\r')" \
    "405 carries an Allow header"
expect_error 400 "a non-numeric BatchRequestId in the path: 400" GET /api/MonitorJob/abc
expect_error 404 "an unknown BatchRequestId: 404" GET /api/MonitorJob/99999999
expect_error 404 "an unknown BatchRequestId for messages: 404" GET /api/GetMessages/99999999
expect_error 400 "a bad 'after': 400" GET "/api/GetMessages/4280?after=x"
expect_error 400 "/sim/faults with malformed JSON: 400" PUT /sim/faults '{'
expect_error 400 "/sim/users without a password: 400" POST /sim/users '{"name":"x"}'

### oversized requests #########################################################

head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$H_TMP/big"
out=$(curl -sS -w '\n%{http_code}' -H "X-AMT-LogonToken: $TOKEN" --data-binary @"$H_TMP/big" \
    "$H_SIM_URL/api/OpConJobAction" 2>/dev/null || true)
h_eq "413 413" "${out##*$'\n'} $(jq -r .errorCode <<<"${out%$'\n'*}")" "a 2 MiB body: 413 JSON"
out=$(curl -sS -w '\n%{http_code}' -H "X-AMT-LogonToken: $TOKEN" -H 'Transfer-Encoding: chunked' \
    --data-binary @"$H_TMP/big" "$H_SIM_URL/api/OpConJobAction" 2>/dev/null || true)
h_eq "413 413" "${out##*$'\n'} $(jq -r .errorCode <<<"${out%$'\n'*}")" "a 2 MiB chunked body: 413 JSON"
call GET /api/heartbeat
h_eq 200 "$STATUS" "the server still answers after the bad requests"

### keep-alive and 300 concurrent connections ##################################

n=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\n' "$H_SIM_URL/api/heartbeat" "$H_SIM_URL/api/heartbeat" | awk '{s += $1} END {print s}')
h_eq 1 "$n" "two requests on one curl reuse the connection (keep-alive)"

# Each call held 300 ms by injected latency, so all 300 are open at once.
call PUT /sim/faults '{"latency_ms":300,"routes":["monitor"]}'
: >"$H_TMP/parallel.cfg"
for _ in $(seq 1 300); do
    printf 'url = "%s/api/MonitorJob/4280"\noutput = "/dev/null"\n' "$H_SIM_URL" >>"$H_TMP/parallel.cfg"
done
codes=$(curl -sS --parallel --parallel-immediate --parallel-max 300 -H "X-AMT-LogonToken: $TOKEN" \
    -w '%{http_code}\n' -K "$H_TMP/parallel.cfg" 2>/dev/null | sort | uniq -c | awk '{print $2 ":" $1}' | paste -sd' ')
h_eq "200:300" "$codes" "300 concurrent connections are all answered"
call DELETE /sim/faults
call GET /sim/counters
h_eq true "$(jq -r '.routes.monitor >= 300' <<<"$BODY")" "the counters saw them all"
call GET /api/heartbeat
h_eq 200 "$STATUS" "the server still answers at the end"
