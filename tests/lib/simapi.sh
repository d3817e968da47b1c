# shellcheck shell=bash
# Helpers for tests that talk to the simulator's REST API directly.
# Source after harness.sh and h_sim_start.

TOKEN=""
# call METHOD PATH [JSON]: sets STATUS and BODY (STATUS 000 if no answer).
call() {
    local out args=(-sS -X "$1" -H 'Content-Type: application/json' -w '\n%{http_code}')
    [ -n "$TOKEN" ] && args+=(-H "X-AMT-LogonToken: $TOKEN")
    [ $# -ge 3 ] && args+=(--data-binary "$3")
    if out=$(curl "${args[@]}" "$H_SIM_URL$2" 2>/dev/null); then
        BODY=${out%$'\n'*}
        STATUS=${out##*$'\n'}
    else
        BODY=""
        STATUS=000
    fi
}
# logon: as the catalog's amtopcon; sets TOKEN.
logon() {
    call POST /api/logon '{"user":"amtopcon","password":"amtopcon-secret"}'
    TOKEN=$(jq -r .AmtLogonToken <<<"$BODY")
}
uuid() { cat /proc/sys/kernel/random/uuid; }
# start 'JSON MEMBERS' [APPLICATION]: a Start with the mandatory fields; sets ID.
start() {
    call POST /api/OpConJobAction "{\"action\":\"Start\",\"taskId\":\"$(uuid)\",\"applicationName\":\"${2:-DEMO2}\",\"amtSubmitUser\":\"BATCH\",\"amtStation\":\"OPCON\",$1}"
    ID=$(jq -r .BatchRequestId <<<"$BODY")
}
# code_of ID: the request's current code.
code_of() { curl -fsS -H "X-AMT-LogonToken: $TOKEN" "$H_SIM_URL/api/MonitorJob/$1" | jq -r .code; }
is_code() { [ "$(code_of "$1")" = "$2" ]; }
