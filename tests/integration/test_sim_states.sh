#!/usr/bin/env bash
# amt-batch-sim, waiting and run states: a queue window (20 WAIT_FOR QUEUE with
# --clock), a concurrency-1 queue (1 QUEUED), controller slots and queue
# priority, the timed waits (0, 5, 13, 14, 16, 18, 21) and the run states
# (2, 7, 8, 9), default and named queues.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

source "$(dirname "${BASH_SOURCE[0]}")/../lib/simapi.sh"

# --- helpers of this file -----------------------------------------------------
history() { curl -fsS "$H_SIM_URL/sim/requests/$1" | jq -r '[.history[].code] | join(" ")'; }
kill_req() { call POST /api/OpConJobAction "{\"action\":\"Kill\",\"BatchRequestId\":$1}"; }
# ----------------------------------------------------------------------------

### queue window: 20 WAIT_FOR QUEUE until 22:00 ################################

# 21:55:00 simulated: the NIGHT queue (22:00-06:00) opens after 300 simulated
# seconds, 3 s of real time at scale 0.01 (the window is the one thing here
# that only time moves; 3 s leave room for a start on a busy machine).
h_sim_start --clock 21:55:00
logon
h_match '^21:5[5-9]:[0-5][0-9]$' "$(curl -fsS "$H_SIM_URL/sim/clock" | jq -r .timeOfDay)" "--clock sets the simulated time of day"
start '"jobName":"INSTANT","amtQueueName":"NIGHT"'
night=$ID
call GET "/api/MonitorJob/$night"
h_eq "20 WAIT_FOR QUEUE" "$(jq -r '"\(.code) \(.status)"' <<<"$BODY")" "a job in a closed queue waits as 20 WAIT_FOR QUEUE"
start '"jobName":"INSTANT"'
h_eq 4 "$(code_of "$ID")" "a job in the default queue runs meanwhile"
h_wait_until 60 is_code "$night" 4
h_eq 4 "$(code_of "$night")" "when the window opens at 22:00 the job runs and ends"
h_match '^22:0' "$(curl -fsS "$H_SIM_URL/sim/clock" | jq -r .timeOfDay)" "... at 22:00 simulated"
h_eq "20 1 2 4" "$(history "$night")" "its history: 20, then 1, 2, 4"

### concurrency 1: 1 QUEUED ####################################################

start '"jobName":"LONGRUNNINGREPORT","amtQueueName":"SERIAL"'
first=$ID
start '"jobName":"INSTANT","amtQueueName":"SERIAL"'
second=$ID
start '"jobName":"INSTANT","amtQueueName":"SERIAL"'
third=$ID
h_eq "2 1 1" "$(code_of "$first") $(code_of "$second") $(code_of "$third")" \
    "behind a running job a concurrency-1 queue holds the others as 1 QUEUED"
sleep 0.3
h_eq "1 1" "$(code_of "$second") $(code_of "$third")" "... for as long as it runs"
kill_req "$first"
h_eq "3 4 4" "$(code_of "$first") $(code_of "$second") $(code_of "$third")" \
    "when the slot frees the queued jobs run in order"
call GET "/sim/requests/$third"
h_eq SERIAL "$(jq -r .queue <<<"$BODY")" "the request records its queue"

start '"jobName":"INSTANT","amtQueueName":"PAYROLL_BATCH"'
h_eq "404 404" "$STATUS $(jq -r .errorCode <<<"$BODY")" "another application's queue: 404"
start '"jobName":"INSTANT","amtQueueName":"NOSUCHQUEUE"'
h_eq 404 "$STATUS" "an unknown queue: 404"
start '"jobName":"PAYRUN","taskValues":["2026-11"]' PAYROLL
call GET "/sim/requests/$ID"
h_eq "PAYROLL_BATCH null" "$(jq -r '"\(.queue) \(.amtQueueName)"' <<<"$BODY")" \
    "without amtQueueName a job goes to its application's default queue"

### controller slots and priority #############################################

cat >"$H_TMP/slots.yaml" <<'EOF'
first_request_id: 100
api_users: [{name: amtopcon, password: amtopcon-secret}]
controller: {slots: 1}
queues:
  - {name: LOWQ, priority: low, default: true}
  - {name: HIGHQ, priority: high}
applications:
  - name: APP
    user: U
    jobs:
      - {name: FOREVER, duration: forever}
      - {name: QUICK, duration: 0}
EOF
h_sim_start --catalog "$H_TMP/slots.yaml"
logon
start '"jobName":"FOREVER"' APP
h_eq 100 "$ID" "first_request_id numbers the requests"
blocker=$ID
start '"jobName":"FOREVER"' APP
low=$ID
start '"jobName":"FOREVER","amtQueueName":"HIGHQ"' APP
high=$ID
h_eq "2 1 1" "$(code_of "$blocker") $(code_of "$low") $(code_of "$high")" \
    "with one controller slot taken, everything else is QUEUED"
kill_req "$blocker"
h_eq "1 2" "$(code_of "$low") $(code_of "$high")" "the freed slot goes to the high-priority queue first"
kill_req "$high"
h_eq 2 "$(code_of "$low")" "then to the low-priority one"

### timed waits and run states #################################################

# The waits and run states are timed and pass while nobody looks, so what each
# job went through is read from its history (GET /sim/requests/ID), which keeps
# every state however slow the polling; MonitorJob shows the state of a job
# held there (SUSPENDEDJOB for an hour, and a run state forced by the operator).
h_sim_start --time-scale 0.1
logon
declare -A first_code=([IDLEJOB]=0 [SUSPENDEDJOB]=5 [WAITFORFILE]=13 [WAITFORINPUT]=14
                       [WAITFORREPORT]=16 [RECOVERJOB]=18 [DEBUGREPORT]=21 [REPORTTEST01]=2
                       [MANUALRUN]=7 [FORCEDRUN]=8)
declare -A ids=()
for job in "${!first_code[@]}"; do
    start "\"jobName\":\"$job\""
    ids[$job]=$ID
    h_eq "${first_code[$job]}" "$(history "$ID" | cut -d' ' -f2)" "$job shows ${first_code[$job]} first"
done
h_eq "5 SUSPENDED" "$(call GET "/api/MonitorJob/${ids[SUSPENDEDJOB]}"; jq -r '"\(.code) \(.status)"' <<<"$BODY")" \
    "MonitorJob shows SUSPENDEDJOB as 5 SUSPENDED while it waits"
kill_req "${ids[SUSPENDEDJOB]}"
h_wait_until 60 is_code "${ids[WAITFORFILE]}" 4
h_eq "1 13 2 4" "$(history "${ids[WAITFORFILE]}")" "WAITFORFILE runs (2) once its wait is over"
h_wait_until 60 is_code "${ids[DEBUGREPORT]}" 4
h_match ' 21 9 ' " $(history "${ids[DEBUGREPORT]}") " "DEBUGREPORT runs as RUN_DEBUG (9) after WAIT_FOR_DEBUGGER"
start '"jobName":"LONGRUNNINGREPORT"'
call POST "/sim/requests/$ID/state" '{"code":9}'
call GET "/api/MonitorJob/$ID"
h_eq "9 RUN_DEBUG" "$(jq -r '"\(.code) \(.status)"' <<<"$BODY")" "MonitorJob shows a job held in RUN_DEBUG as 9 RUN_DEBUG"
kill_req "$ID"
declare -A path=([IDLEJOB]="1 0 2 4" [WAITFORINPUT]="1 14 2 4" [WAITFORREPORT]="1 16 2 4"
                 [RECOVERJOB]="1 18 2 4" [DEBUGREPORT]="1 21 9 4" [MANUALRUN]="1 7 4"
                 [FORCEDRUN]="1 8 4" [REPORTTEST01]="1 2 4")
for job in "${!path[@]}"; do
    h_wait_until 60 is_code "${ids[$job]}" 4
    h_eq "${path[$job]}" "$(history "${ids[$job]}")" "$job's history: ${path[$job]}"
done

h_sim_start
logon
start '"jobName":"ALLSTATES"'
h_wait_until 60 is_code "$ID" 4
h_eq "1 0 13 14 16 18 21 5 15 9 4" "$(history "$ID")" \
    "ALLSTATES passes through every timed waiting state, then RUN_DEBUG, then DONE"
