#!/usr/bin/env bash
# amt-batch-sim, jobs end to end: the seed's three scenarios byte for byte,
# missing scripts, invalid AMT users, idempotent start, kill and stop, every
# final code of the catalog, children in MonitorJob and in the parent's
# messages, paging through 250 messages, operator-forced states, and what
# /sim/requests and /sim/tasks report about what the client sent.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

source "$(dirname "${BASH_SOURCE[0]}")/../lib/simapi.sh"

# --- helpers of this file -----------------------------------------------------
# wait_final ID: polls (up to 60 s) until the code is final; prints it.
wait_final() {
    local c end=$((SECONDS + 60))
    while :; do
        c=$(code_of "$1")
        case "$c" in 3|4|6|10|11|12|19|22|23|24|99) echo "$c"; return 0 ;; esac
        [ $SECONDS -lt $end ] || break
        sleep 0.05
    done
    echo "# wait ran out after 60 s: request $1 still at code $c" >&2
    echo "timeout($c)"
}
# messages ID: every message text as a JSON string, one a line (pages of 100).
messages() {
    local after=0 page
    while :; do
        page=$(curl -fsS -H "X-AMT-LogonToken: $TOKEN" "$H_SIM_URL/api/GetMessages/$1?after=$after&limit=100")
        jq -c '.messages[].text' <<<"$page"
        [ "$(jq -r .more <<<"$page")" = true ] || break
        after=$(jq -r .next <<<"$page")
    done
}
# The message lines of a seed job log (between "Job Log ---" and the last rule).
seed_messages() { sed -n '/^Job Log /,$p' "$1" | sed '1d;$d'; }
SEED="$AMTACS_SRC/tests/data/joblogs"
# ----------------------------------------------------------------------------

h_sim_start
logon

### scenario 1: REPORTTEST01 ####################################################

start '"jobName":"REPORTTEST01","taskValues":[]'
h_eq "200 4280" "$STATUS $ID" "the first Start gets BatchRequestId 4280"
h_eq 4 "$(wait_final 4280)" "REPORTTEST01 ends DONE (4)"
# (it runs 0.3 s: whether a poll sees it RUNNING depends on the machine; its history does not)
h_eq "1 2 4" "$(curl -fsS "$H_SIM_URL/sim/requests/4280" | jq -r '[.history[].code] | join(" ")')" \
    "REPORTTEST01 is RUNNING (2) before it ends"
call GET /api/MonitorJob/4280
h_eq "DONE|Job completed normally|10" "$(jq -r '"\(.status)|\(.description)|\(.messageCount)"' <<<"$BODY")" \
    "MonitorJob: status name, description, message count"
h_eq "$(seed_messages "$SEED/REPORTTEST01.DONE.log")" "$(messages 4280)" \
    "REPORTTEST01's messages equal the reference job log byte for byte"
call GET "/api/GetMessages/4280?after=0&limit=100"
h_eq "1 2 3 4 5 6 7 8 9 10|4280|10|false" \
    "$(jq -r '"\([.messages[].seq] | join(" "))|\([.messages[].BatchRequestId] | unique | join(","))|\(.next)|\(.more)"' <<<"$BODY")" \
    "GetMessages: seq 1..10, writer id, next, more"
h_match '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "$(jq -r '.messages[0].time' <<<"$BODY")" \
    "messages carry an ISO-8601 time"
t0=$(jq -r '.messages[4].time' <<<"$BODY")
t1=$(jq -r '.messages[5].time' <<<"$BODY")
h_eq 10 "$(( $(date -d "$t1" +%s) - $(date -d "$t0" +%s) ))" "message times are simulated (10 s apart)"

### scenario 2: the script whose pwsh is missing ##############################

start '"scriptName":"F:\\Amt\\Scripts\\DEMO2\\RUN_FILENAMETEST.ps1","scriptParameters":[]'
h_eq 11 "$(wait_final "$ID")" "RUN_FILENAMETEST.ps1 ends ERROR (11)"
h_eq "$(seed_messages "$SEED/RUN_FILENAMETEST.ERROR.log")" "$(messages "$ID")" \
    "its messages equal the reference job log byte for byte"
start '"scriptName":"run_filenametest.PS1"'
h_eq 11 "$(wait_final "$ID")" "a bare script name resolves in the script directory, case-insensitively"
h_eq 2 "$(messages "$ID" | wc -l)" "... and runs the same script"

start '"scriptName":"F:\\Amt\\Scripts\\DEMO2\\NOSUCH.ps1"'
h_eq 200 "$STATUS" "a Start of a missing script is accepted"
h_eq 11 "$(code_of "$ID")" "... and ends at once in ERROR (11)"
h_eq '"File not found"' "$(messages "$ID")" "... with the single message File not found"

### scenario 3: LONGRUNNINGREPORT killed ########################################

start '"jobName":"LONGRUNNINGREPORT"'
long=$ID
sleep 0.5
h_eq 2 "$(code_of "$long")" "LONGRUNNINGREPORT keeps running"
call POST /api/OpConJobAction "{\"action\":\"Kill\",\"BatchRequestId\":$long}"
h_eq '200 {"BatchRequestId":'"$long"',"accepted":true}' "$STATUS $BODY" "Kill is accepted"
h_eq 3 "$(code_of "$long")" "the killed job is KILLED (3) at once"
h_eq "" "$(messages "$long")" "... with no messages"
call POST /api/OpConJobAction "{\"action\":\"Kill\",\"BatchRequestId\":$long}"
h_eq "409 409" "$STATUS $(jq -r .errorCode <<<"$BODY")" "killing an ended job: 409"
call POST /api/OpConJobAction '{"action":"Kill","BatchRequestId":999999}'
h_eq 404 "$STATUS" "killing an unknown job: 404"
call POST /api/OpConJobAction '{"action":"Kill"}'
h_eq 400 "$STATUS" "Kill without a BatchRequestId: 400"
# WAITINGPARENT writes a message, then waits for children that never end
start '"jobName":"WAITINGPARENT"'
stopped=$ID
h_wait_for 60 '[ "$(messages "$stopped" | wc -l)" -ge 1 ]' || h_not_ok "WAITINGPARENT writes its message"
call POST /api/OpConJobAction "{\"action\":\"Stop\",\"BatchRequestId\":$ID}"
h_eq 200 "$STATUS" "Stop is accepted"
n=$(messages "$ID" | wc -l)
sleep 0.3
h_eq "3 $n" "$(code_of "$ID") $(messages "$ID" | wc -l)" "a stopped job is KILLED and writes nothing more"

### amtUser ####################################################################

start '"jobName":"REPORTTEST01","amtUser":"NOBODY"'
h_eq 200 "$STATUS" "a Start with an unknown amtUser is accepted"
h_eq 99 "$(code_of "$ID")" "... and ends at once in INVALID AMT USER (99)"
start '"scriptName":"RUN_FILENAMETEST.ps1","amtUser":"NOBODY"'
h_eq 99 "$(code_of "$ID")" "the same for a script"
start '"jobName":"ECHOPARAMS","amtUser":"jsmith","taskValues":["A=1","B two"]'
h_eq 4 "$(wait_final "$ID")" "a listed amtUser (any case) runs"
h_eq '"Request '"$ID"' job ECHOPARAMS of DEMO2 in queue [DEFAULT]"
"Submit user BATCH station OPCON AMT user jsmith"
"Parameters: [A=1 B two]"
"Done"' "$(messages "$ID")" "placeholders expand to what the client sent"
start '"jobName":"ECHOPARAMS"'
wait_final "$ID" >/dev/null
h_match 'AMT user DEMO2"' "$(messages "$ID" | sed -n 2p)" "without amtUser the application's user runs the job"

### idempotent start ##########################################################

h_sim_start
logon
tid=$(uuid)
body="{\"action\":\"Start\",\"taskId\":\"$tid\",\"applicationName\":\"DEMO2\",\"amtSubmitUser\":\"BATCH\",\"amtStation\":\"OPCON\",\"jobName\":\"LONGRUNNINGREPORT\"}"
call POST /api/OpConJobAction "$body"
first=$(jq -r .BatchRequestId <<<"$BODY")
call POST /api/OpConJobAction "$body"
h_eq "200 $first" "$STATUS $(jq -r .BatchRequestId <<<"$BODY")" "the same taskId again returns the same BatchRequestId"
call GET /sim/counters
h_eq "2 1 1 1" "$(jq -r '"\(.start_calls) \(.requests_created) \(.duplicate_starts) \(.live_requests)"' <<<"$BODY")" \
    "counters: 2 Start calls, 1 request created, 1 duplicate, 1 live"
call GET /sim/tasks
h_eq "[{\"taskId\":\"$tid\",\"BatchRequestId\":$first,\"startCalls\":2}]" "$(jq -c "[.tasks[] | del(.startedAtUs)]" <<<"$BODY")" \
    "/sim/tasks: the taskId, its BatchRequestId and 2 Start calls"
call GET "/sim/requests/$first"
h_eq "DEMO2|LONGRUNNINGREPORT|null|BATCH|OPCON|null|DEFAULT|[]|$tid|2" \
    "$(jq -r '"\(.applicationName)|\(.jobName)|\(.scriptName)|\(.amtSubmitUser)|\(.amtStation)|\(.amtUser)|\(.queue)|\(.taskValues|tojson)|\(.taskId)|\(.code)"' <<<"$BODY")" \
    "/sim/requests shows what the client sent and the state"
start '"scriptName":"RUN_PARAMETERTEST.ps1","scriptParameters":["P1","P 2"],"amtQueueName":"URGENT","amtUser":"OPERATOR1"'
call GET "/sim/requests/$ID"
h_eq 'RUN_PARAMETERTEST.ps1|["P1","P 2"]|URGENT|URGENT|OPERATOR1' \
    "$(jq -r '"\(.scriptName)|\(.scriptParameters|tojson)|\(.amtQueueName)|\(.queue)|\(.amtUser)"' <<<"$BODY")" \
    "/sim/requests shows script parameters, queue and amtUser"

### every final code ##########################################################

h_sim_start
logon
declare -A want=([SELFKILL]=3 [REPORTTEST01]=4 [SKIPPEDJOB]=6 [DELETEDJOB]=10 [ERRORJOB]=11
                 [ABORTJOB]=12 [UNDEFINEDJOB]=19 [RECOVERABORT]=22 [WEBERRORJOB]=23
                 [AUTHERRORJOB]=24 [INVALIDUSERJOB]=99)
declare -A ids=()
for job in "${!want[@]}"; do
    start "\"jobName\":\"$job\""
    ids[$job]=$ID
done
for job in "${!want[@]}"; do
    h_eq "${want[$job]}" "$(wait_final "${ids[$job]}")" "$job ends in ${want[$job]}"
done
call GET "/api/MonitorJob/${ids[ABORTJOB]}"
h_eq ABORTED "$(jq -r .status <<<"$BODY")" "final codes carry their published names"

### operator-forced states ####################################################

start '"jobName":"SUSPENDEDJOB"'
h_eq 5 "$(code_of "$ID")" "SUSPENDEDJOB waits as SUSPENDED (5)"
call POST "/sim/requests/$ID/state" '{"code":6}'
h_eq "200 6" "$STATUS $(jq -r .code <<<"$BODY")" "forcing 6 skips it"
h_eq 6 "$(code_of "$ID")" "... and it stays SKIPPED_BY_OPS"
call POST "/sim/requests/$ID/state" '{"code":10}'
h_eq 409 "$STATUS" "forcing an ended request: 409"
start '"jobName":"LONGRUNNINGREPORT"'
call POST "/sim/requests/$ID/state" '{"code":14}'
h_eq 14 "$(code_of "$ID")" "forcing a non-final code holds the request there"
call POST "/sim/requests/$ID/state" '{"code":17}'
h_eq 400 "$STATUS" "forcing an unpublished code: 400"
call POST "/sim/requests/$ID/state" '{"code":10}'
h_eq 10 "$(code_of "$ID")" "forcing 10 deletes it from the queue"

### children ##################################################################

start '"jobName":"PARENTJOB","taskValues":["x"]'
parent=$ID
h_eq 4 "$(wait_final "$parent")" "PARENTJOB ends DONE after its children"
call GET "/api/MonitorJob/$parent"
h_eq "CHILDA:4 CHILDB:4" "$(jq -r '[.children[] | "\(.name):\(.code)"] | join(" ")' <<<"$BODY")" \
    "MonitorJob lists the children with their codes"
ca=$(jq -r '.children[0].BatchRequestId' <<<"$BODY")
cb=$(jq -r '.children[1].BatchRequestId' <<<"$BODY")
h_eq 7 "$(jq -r .messageCount <<<"$BODY")" "the parent's message count includes its children's"
call GET "/api/GetMessages/$parent"
h_eq "$parent:Parent $parent started|$ca:Child A $ca started|$cb:Child B $cb started|$ca:Child A $ca done|$parent:Parent $parent run ended, waiting for children|$cb:Child B $cb halfway|$cb:Child B $cb done" \
    "$(jq -r '[.messages[] | "\(.BatchRequestId):\(.text)"] | join("|")' <<<"$BODY")" \
    "the parent's messages interleave its children's in time order, each with its writer's id"
h_eq "1 2 3 4 5 6 7" "$(jq -r '[.messages[].seq] | join(" ")' <<<"$BODY")" "... with increasing seq"
call GET "/api/GetMessages/$cb"
h_eq 3 "$(jq '.messages | length' <<<"$BODY")" "a child's own GetMessages has its messages only"
call GET "/sim/requests/$parent"
h_eq "1 2 15 4" "$(jq -r '[.history[].code] | join(" ")' <<<"$BODY")" \
    "the parent waits as WAIT FOR JOB (15) while a child still runs"
call GET "/sim/requests/$ca"
h_eq "$parent [\"x\"] null" "$(jq -c '"\(.parent) \(.taskValues|tojson) \(.taskId)"' -r <<<"$BODY")" \
    "a child knows its parent and inherits the task values"

start '"jobName":"WAITINGPARENT"'
parent=$ID
waiting() { is_code "$parent" 15; }
h_wait_until 60 waiting
h_eq 15 "$(code_of "$parent")" "a parent whose run is over waits as WAIT FOR JOB (15) for running children"
call POST /api/OpConJobAction "{\"action\":\"Kill\",\"BatchRequestId\":$parent}"
call GET "/api/MonitorJob/$parent"
h_eq "3|3,3" "$(jq -r '"\(.code)|\([.children[].code] | join(","))"' <<<"$BODY")" \
    "killing a parent kills its children"
h_eq 1 "$(jq -r .messageCount <<<"$BODY")" "... and nothing is written after the kill"

start '"scriptName":"RUN_PARAMETERTEST.ps1","scriptParameters":["PARAM"]'
wait_final "$ID" >/dev/null
h_match '"Value test param \[PARAM\]"' "$(messages "$ID")" "a script's child report gets the script parameters"

### paging ####################################################################

start '"jobName":"MANYMESSAGES"'
many=$ID
h_eq 4 "$(wait_final "$many")" "MANYMESSAGES ends DONE"
all=$(messages "$many")
h_eq 250 "$(wc -l <<<"$all")" "paging reads 250 messages"
h_eq "$(seq 1 250 | sed 's/.*/"Line & of 250"/')" "$all" "... each exactly once, in order"
call GET "/api/GetMessages/$many?after=240&limit=100"
h_eq "241 250 250 false" "$(jq -r '"\(.messages[0].seq) \(.messages[-1].seq) \(.next) \(.more)"' <<<"$BODY")" \
    "after/limit pick the tail; next is the last seq"
call GET "/api/GetMessages/$many?after=250"
h_eq "0 250 false" "$(jq -r '"\(.messages|length) \(.next) \(.more)"' <<<"$BODY")" "past the end: nothing, next = after"
call GET "/api/GetMessages/$many"
h_eq "100 100 true" "$(jq -r '"\(.messages|length) \(.next) \(.more)"' <<<"$BODY")" "the default page is 100"
call GET "/api/GetMessages/$many?limit=5000"
h_eq 250 "$(jq -r '.messages|length' <<<"$BODY")" "limit is capped at 1000"
call GET "/api/GetMessages/$many?after=-1"
h_eq 400 "$STATUS" "a negative after: 400"
call GET "/api/GetMessages/$many?limit=0"
h_eq 400 "$STATUS" "limit 0: 400"
# WAITINGPARENT writes a message, then waits (15) for children that never end
start '"jobName":"WAITINGPARENT"'
h_wait_for 60 '[ "$(messages "$ID" | wc -l)" -ge 1 ]' || true
call GET "/api/GetMessages/$ID?limit=1000"
n=$(jq -r '.messages|length' <<<"$BODY")
h_eq "true 15" "$([ "$n" -gt 0 ] && echo true || echo "false ($n)") $(code_of "$ID")" \
    "messages can be read while the job runs"
call POST /api/OpConJobAction "{\"action\":\"Kill\",\"BatchRequestId\":$ID}"
