#!/usr/bin/env bash
# amtacs-web's server-sent events over real HTTP (curl -N), with a real
# PostgreSQL, simulator and daemon: GET /api/v1/events shows a job's states
# from submit to finished, alerts and Full Comm changes, to each role what it
# may read; Last-Event-ID replays exactly what was missed; 50 streams share
# one LISTENing database connection; a stream ends when its session does.
# GET /api/v1/jobs/{id}/log/stream shows a held job's messages as the daemon
# stores them, then the outcome; its text is the stored log's; Last-Event-ID
# resumes after a message.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
# a job that writes a message every 0.5 s (50 simulated s) until it is killed
sed 's/^      - name: LONGRUNNINGREPORT$/      - name: SSETICKER\n        duration: forever\n        messages:\n          - {at: 0, every: 50, count: 1000, text: "tick {n} \\"quoted\\" é"}\n&/' \
    "$AMTACS_SRC/config/amt-catalog.yaml" >"$H_TMP/catalog.yaml"
grep -q SSETICKER "$H_TMP/catalog.yaml" || { echo "catalog edit failed" >&2; exit 1; }
h_sim_start --catalog "$H_TMP/catalog.yaml"
h_batch_user amtopcon amtopcon-secret
h_sql -c "CREATE ROLE admin1 LOGIN IN ROLE acs_admin" >/dev/null
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null

CFG="$H_TMP/amtacs.yaml"
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$CFG"
cat >>"$CFG" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "$(conn web1) application_name=amtacs-web"
  max_connections: 300
  max_connections_per_client: 200
  db_pool: 4
CONF
h_daemon_start "$CFG"
h_daemon_ready
h_web_start "$CFG"
URL=$H_WEB_URL

pw=correct-horse-battery
for u in vera:viewer sam:scheduler olga:operator adam:admin; do
    printf '%s\n' "$pw" | ctl_as admin1 user add "${u%%:*}" --role "${u##*:}" >/dev/null
done
TOKEN=$(ctl_as admin1 token create --name robot --role scheduler 2>/dev/null)

req() { h_web_req "$@"; }
login() { # login USER [JAR]: a session in the jar, its CSRF token in JAR.csrf
    local jar=${2:-$H_TMP/jar.$1}
    req POST /api/v1/login -c "$jar" -H 'Content-Type: application/json' \
        --data "{\"user\":\"$1\",\"password\":\"$pw\"}" >/dev/null
    jq -r .csrf_token "$H_TMP/body" >"$jar.csrf"
}
as() { local jar=$1 m=$2 p=$3; shift 3; req "$m" "$p" -b "$jar" -H "X-CSRF-Token: $(cat "$jar.csrf")" "$@"; }
# stream NAME PATH [curl args]: curl -N in the background into $H_TMP/NAME.sse
stream() {
    local name=$1 path=$2
    shift 2
    curl -sS -N "$URL$path" "$@" >"$H_TMP/$name.sse" 2>"$H_TMP/$name.err" &
    eval "PID_$name=$!"
    H_PIDS+=("$!")
}
# events FILE: one line per event: EVENT<TAB>ID<TAB>DATA
events() {
    awk 'BEGIN {RS = ""; FS = "\n"}
         {ev = ""; id = ""; data = ""
          for (i = 1; i <= NF; i++) {
              if ($i ~ /^event: /) ev = substr($i, 8)
              else if ($i ~ /^id: /) id = substr($i, 5)
              else if ($i ~ /^data: /) data = substr($i, 7)
          }
          if (ev != "") print ev "\t" id "\t" data}' "$1"
}
has() { events "$H_TMP/$1.sse" | grep -q "$2"; }
# has_ev NAME EVENT JQ-CONDITION: the stream NAME holds such an event
# (not jq -e | grep -q: under pipefail jq -e fails when the LAST event does
# not match, and grep -q may leave jq a broken pipe)
has_ev() { [ -n "$(events "$H_TMP/$1.sse" | awk -F'\t' -v e="$2" '$1 == e' | cut -f3 | jq -c "select($3)" 2>/dev/null)" ]; }
has_job() { has_ev "$1" job ".id == $2 and .state == \"$3\""; }
job_states() { events "$H_TMP/$1.sse" | awk -F'\t' '$1 == "job"' | cut -f3 | jq -r "select(.id == $2) | .state" | paste -sd' '; }
gone() { ! kill -0 "$1" 2>/dev/null; }

login vera; login sam; login olga; login adam

# --- who may open a stream ------------------------------------------------------------
h_eq 401 "$(req GET /api/v1/events)" "without a session or token /events is 401"
h_eq application/problem+json "$(grep -i '^content-type:' "$H_TMP/hdr" | cut -d' ' -f2 | tr -d '\r')" \
    "as a JSON problem, before any stream starts"
h_eq 401 "$(req GET /api/v1/jobs/1/log/stream)" "and so is a log stream"
h_eq 404 "$(req GET /api/v1/jobs/999999/log/stream -b "$H_TMP/jar.vera")" "a log stream of no job is 404"
h_eq 400 "$(req GET /api/v1/events -b "$H_TMP/jar.vera" -H 'Last-Event-ID: nonsense' --max-time 5)" \
    "a malformed Last-Event-ID is 400"

# --- /events: job states, alerts, Full Comm ---------------------------------------------
stream vera /api/v1/events -b "$H_TMP/jar.vera"
stream sam /api/v1/events -b "$H_TMP/jar.sam"
stream robot /api/v1/events -H "Authorization: Bearer $TOKEN"
for s in vera sam robot; do
    h_wait_until 30 has "$s" '^ready' && h_ok "the $s stream starts" || h_not_ok "the $s stream starts"
done
h_match '"role":"viewer","alerts":true,"comm":true' "$(events "$H_TMP/vera.sse" | grep ^ready)" \
    "a viewer's stream carries jobs, alerts and Full Comm"
h_match '"role":"scheduler","alerts":false,"comm":false' "$(events "$H_TMP/sam.sse" | grep ^ready)" \
    "a scheduler's (PostgreSQL lets it read no alerts or connections) carries jobs only"
grep -qi '^content-type: text/event-stream' <(curl -sS -N -D - -o /dev/null --max-time 2 -b "$H_TMP/jar.vera" "$URL/api/v1/events" 2>/dev/null) &&
    h_ok "the stream is text/event-stream" || h_not_ok "the stream is text/event-stream"

h_eq 201 "$(as "$H_TMP/jar.sam" POST /api/v1/jobs -H 'Content-Type: application/json' --data '{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":"SSETICKER"}')" \
    "sam submits a job that runs until killed"
JOB=$(jq -r .id "$H_TMP/body")
h_wait_until 60 has_job vera "$JOB" running && h_ok "the viewer sees the job running" || h_not_ok "the viewer sees the job running"
h_wait_until 60 has_job sam "$JOB" running && h_ok "the scheduler sees it running" || h_not_ok "the scheduler sees it running"
h_wait_until 60 has_job robot "$JOB" running && h_ok "a token's stream sees it running" || h_not_ok "a token's stream sees it running"

# --- the live log --------------------------------------------------------------------------
stream log "/api/v1/jobs/$JOB/log/stream" -b "$H_TMP/jar.vera"
nmsg() { events "$H_TMP/log.sse" | awk -F'\t' '$1 == "message"' | wc -l; }
h_wait_for 60 '[ "$(nmsg)" -ge 2 ]' && h_ok "the log stream shows the first messages" || h_not_ok "the log stream shows the first messages"
first=$(nmsg)
h_wait_for 60 "[ \"\$(nmsg)\" -gt $((first + 1)) ]" && h_ok "the log stream grows" || h_not_ok "the log stream grows"
h_eq running "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $JOB")" \
    "the log grew while the job still runs (messages as the daemon stores them)"
h_eq 202 "$(as "$H_TMP/jar.olga" POST "/api/v1/jobs/$JOB/kill")" "olga kills it"
h_wait_until 60 gone "$PID_log" && h_ok "the log stream ends when the job has finished" || h_not_ok "the log stream ends when the job has finished"
endev=$(events "$H_TMP/log.sse" | awk -F'\t' '$1 == "end"' | cut -f3)
h_eq "finished 3 failure" "$(jq -r '"\(.state) \(.completion_code) \(.result)"' <<<"$endev")" \
    "its last event is the outcome, with the completion code (3 KILLED)"
h_eq end "$(events "$H_TMP/log.sse" | tail -n1 | cut -f1)" "and nothing follows it"
# the stored log: its message lines, each a JSON string
h_sql -c "SELECT log FROM acs.job_logs WHERE job_id = $JOB" |
    awk '/^Job Log/ {in_log = 1; next} in_log && /^"/ {print; next} in_log {exit}' | jq -r . >"$H_TMP/log.stored"
[ -s "$H_TMP/log.stored" ] || h_not_ok "the stored log has messages"
events "$H_TMP/log.sse" | awk -F'\t' '$1 == "message"' | cut -f3 | jq -r .text >"$H_TMP/log.streamed"
h_match '^tick 1 "quoted" é$' "$(head -n1 "$H_TMP/log.streamed")" "messages arrive as written"
h_eq "$(cat "$H_TMP/log.stored")" "$(cat "$H_TMP/log.streamed")" \
    "the stream's messages are the stored log's, in order, none twice, none missing"
n=$(wc -l <"$H_TMP/log.streamed")
h_eq "$(seq 1 "$n" | paste -sd,)" "$(events "$H_TMP/log.sse" | awk -F'\t' '$1 == "message" {print $2}' | paste -sd,)" \
    "message ids are 1 to $n"
# resume
curl -sS -N --max-time 30 -b "$H_TMP/jar.sam" -H 'Last-Event-ID: 2' "$URL/api/v1/jobs/$JOB/log/stream" >"$H_TMP/resume.sse"
h_eq "$(tail -n +3 "$H_TMP/log.stored")" \
    "$(events "$H_TMP/resume.sse" | awk -F'\t' '$1 == "message"' | cut -f3 | jq -r .text)" \
    "Last-Event-ID: 2 on the finished job gives exactly messages 3 to $n"
h_eq "$(seq 3 "$n" | paste -sd,)" "$(events "$H_TMP/resume.sse" | awk -F'\t' '$1 == "message" {print $2}' | paste -sd,)" \
    "with their ids"
h_eq "$endev" "$(events "$H_TMP/resume.sse" | awk -F'\t' '$1 == "end"' | cut -f3)" "then the same outcome"

# --- the job's states, an alert, a Full Comm change -------------------------------------
h_wait_until 60 has_job vera "$JOB" finished && h_ok "the viewer sees the job finished" || h_not_ok "the viewer sees the job finished"
h_match "^(queued )?(starting )?running finished$" "$(job_states vera "$JOB")" \
    "the viewer saw the job's states in order: running, finished (queued/starting when not folded)"
has_ev vera job ".id == $JOB and .state == \"finished\" and .completion_code == 3 and .result == \"failure\"" &&
    h_ok "the finished event carries the code and result" || h_not_ok "the finished event carries the code and result"
h_wait_until 60 has_job sam "$JOB" finished && h_ok "so does the scheduler" || h_not_ok "so does the scheduler"
ALERT=$(h_sql -c "INSERT INTO acs.alerts (connection, name, message) VALUES ('AMTDEMO', 'SSE_TEST', 'an alert for the stream') RETURNING id")
h_wait_until 30 has_ev vera alert ".id == $ALERT and .name == \"SSE_TEST\"" && h_ok "the viewer sees the alert" || h_not_ok "the viewer sees the alert"
h_eq 200 "$(as "$H_TMP/jar.adam" PUT /api/v1/connections/AMTDEMO/comm -H 'Content-Type: application/json' --data '{"state":"limited"}')" \
    "adam limits Full Comm"
h_wait_until 30 has_ev vera comm '.connection == "AMTDEMO" and .comm_state == "limited"' && h_ok "the viewer sees the Full Comm change" || h_not_ok "the viewer sees the Full Comm change"
h_eq adam "$(events "$H_TMP/vera.sse" | awk -F'\t' '$1 == "comm"' | cut -f3 | jq -r .changed_by | tail -n1)" "naming who changed it"
! has sam '^alert' && ! has sam '^comm' && h_ok "the scheduler's stream shows no alert and no Full Comm change" ||
    h_not_ok "the scheduler's stream shows no alert and no Full Comm change"

# --- Last-Event-ID on /events ---------------------------------------------------------------
from=$(events "$H_TMP/vera.sse" | awk -F'\t' '$1 == "job" {print $2 "\t" $3}' | while IFS=$'\t' read -r id data; do
    if [ "$(jq -r "select(.id == $JOB) | .state" <<<"$data")" = running ]; then echo "$id"; fi; done | tail -n1)
h_match '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' "$from" "events carry ids (XID.JOB.AXID.ALERT)"
events "$H_TMP/vera.sse" | awk -F'\t' -v id="$from" 'seen && ($1 == "job" || $1 == "alert") {print $1 "\t" $3} $2 == id {seen = 1}' >"$H_TMP/rest.live"
stream resume /api/v1/events -b "$H_TMP/jar.vera" -H "Last-Event-ID: $from"
h_wait_until 30 has resume '^ready' && h_ok "a stream resumes with Last-Event-ID" || h_not_ok "a stream resumes with Last-Event-ID"
events "$H_TMP/resume.sse" | awk -F'\t' '$1 == "job" || $1 == "alert" {print $1 "\t" $3}' >"$H_TMP/rest.replayed"
h_eq "$(cat "$H_TMP/rest.live")" "$(cat "$H_TMP/rest.replayed")" \
    "and gets exactly the job and alert events after that id, then goes on live"
h_eq 2 "$(grep -c . "$H_TMP/rest.replayed")" "(the job's end and the alert)"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.connections")" "$(events "$H_TMP/resume.sse" | awk -F'\t' '$1 == "comm"' | grep -c .)" \
    "and the Full Comm state of every connection (a change while away is not lost)"
h_wait_until 30 has_ev resume comm '.connection == "AMTDEMO" and .comm_state == "limited" and .changed_by == "adam"' &&
    h_ok "AMTDEMO's is limited, by adam" || h_not_ok "AMTDEMO's is limited, by adam"
kill "$PID_resume" 2>/dev/null || true

# --- an alert that commits after a newer one is not skipped ------------------------------------
# Alert ids are taken when the row is made: the open transaction's alert has
# the lower id but ends last. The stream shows both, in the order their
# transactions ended, and so does a stream resumed from before them.
before_late=$(events "$H_TMP/vera.sse" | awk -F'\t' '$2 != "" {id = $2} END {print id}')
coproc HOLD { psql -X -q -At -v ON_ERROR_STOP=1 2>&1; }
echo "BEGIN; INSERT INTO acs.alerts (connection, name, message) VALUES ('AMTDEMO', 'SSE_LATE', 'raised first, committed last') RETURNING id;" >&"${HOLD[1]}"
read -r LATE <&"${HOLD[0]}"
EARLY=$(h_sql -c "INSERT INTO acs.alerts (connection, name, message) VALUES ('AMTDEMO', 'SSE_EARLY', 'raised second, committed first') RETURNING id")
[ "$LATE" -lt "$EARLY" ] && h_ok "the open transaction's alert $LATE has the lower id ($EARLY committed first)" ||
    h_not_ok "the open transaction's alert $LATE has the lower id ($EARLY committed first)"
echo "COMMIT;" >&"${HOLD[1]}"
echo "\\q" >&"${HOLD[1]}"
wait "$HOLD_PID" 2>/dev/null || true
h_wait_until 30 has_ev vera alert ".id == $EARLY" && h_wait_until 30 has_ev vera alert ".id == $LATE" &&
    h_ok "the live stream shows both alerts" || h_not_ok "the live stream shows both alerts"
h_eq "SSE_LATE SSE_EARLY" "$(events "$H_TMP/vera.sse" | awk -F'\t' '$1 == "alert"' | cut -f3 | jq -r 'select(.name | startswith("SSE_") and . != "SSE_TEST") | .name' | tail -n2 | paste -sd' ')" \
    "in the order their transactions ended"
stream resume2 /api/v1/events -b "$H_TMP/jar.vera" -H "Last-Event-ID: $before_late"
h_wait_until 30 has resume2 '^ready' && h_ok "a stream resumed from before them starts" || h_not_ok "a stream resumed from before them starts"
h_eq "$LATE $EARLY" "$(events "$H_TMP/resume2.sse" | awk -F'\t' '$1 == "alert"' | cut -f3 | jq -r .id | paste -sd' ')" \
    "and replays both alerts, neither skipped"
kill "$PID_resume2" 2>/dev/null || true
h_eq 400 "$(h_web_req GET /api/v1/events -b "$H_TMP/jar.vera" -H 'Last-Event-ID: 1.2.3.4.5')" "an id of five numbers is 400"

# --- 50 streams, one LISTENing connection ----------------------------------------------------
for i in $(seq 1 50); do stream "many$i" /api/v1/events -b "$H_TMP/jar.vera"; done
for i in $(seq 1 50); do h_wait_until 60 has "many$i" '^ready' || { h_not_ok "stream $i starts"; break; }; done
h_eq 1 "$(h_sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'amtacs-web events'")" \
    "with 55 streams open, amtacs-web has exactly one event connection (it LISTENs)"
h_match '^[1-5]$' "$(h_sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'amtacs-web%'")" \
    "and at most db_pool + 1 connections in all: no connection per stream"
h_eq 200 "$(as "$H_TMP/jar.adam" PUT /api/v1/connections/AMTDEMO/comm -H 'Content-Type: application/json' --data '{"state":"enabled"}')" \
    "adam enables Full Comm again"
for i in $(seq 1 50); do
    h_wait_until 30 has_ev "many$i" comm '.comm_state == "enabled"' || { h_not_ok "stream $i sees the change"; break; }
done
[ "$i" = 50 ] && h_ok "each of the 50 streams gets the change"
for i in $(seq 1 50); do kill "$(eval echo "\$PID_many$i")" 2>/dev/null || true; done

# --- the hub's connection breaks: it connects again and misses nothing ------------------------
h_sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'amtacs-web events'" >/dev/null
ALERT2=$(h_sql -c "INSERT INTO acs.alerts (connection, name, message) VALUES ('AMTDEMO', 'SSE_AFTER', 'raised while the hub was cut off') RETURNING id")
h_wait_until 60 has_ev vera alert ".id == $ALERT2" && h_ok "after its connection was cut, the hub connects again and the stream gets what happened meanwhile" || h_not_ok "after its connection was cut, the hub connects again and the stream gets what happened meanwhile"
h_wait_sql 30 1 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'amtacs-web events'" ||
    h_not_ok "one event connection again"

# --- a stream ends with its session -----------------------------------------------------------
login vera "$H_TMP/jar.vera2"
stream bye /api/v1/events -b "$H_TMP/jar.vera2"
stream byelog "/api/v1/jobs/$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'LONGRUNNINGREPORT')")/log/stream" -b "$H_TMP/jar.vera2"
h_wait_until 30 has bye '^ready' && h_ok "a second session's stream starts" || h_not_ok "a second session's stream starts"
h_eq 200 "$(as "$H_TMP/jar.vera2" POST /api/v1/logout)" "that session logs out"
h_wait_until 30 gone "$PID_bye" && h_ok "its event stream ends" || h_not_ok "its event stream ends"
h_wait_until 30 gone "$PID_byelog" && h_ok "and its log stream ends" || h_not_ok "and its log stream ends"
h_match 'session or token has ended' "$(events "$H_TMP/bye.sse" | tail -n1)" "saying why"
kill -0 "$PID_vera" 2>/dev/null && h_ok "the first session's stream goes on" || h_not_ok "the first session's stream goes on"
ctl_as admin1 token revoke robot >/dev/null
h_wait_until 30 gone "$PID_robot" && h_ok "a revoked token's stream ends" || h_not_ok "a revoked token's stream ends"

# --- the database is down a while: the hub tries again every second, saying so once ------------
warns() { grep -c 'level=warn event=web.events_db msg="the event hub cannot reach the database' "$H_TMP/web.log" || true; }
w0=$(warns)
l0=$(grep -c 'event=web.events_listening' "$H_TMP/web.log" || true)
h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -m immediate -w stop >/dev/null
h_wait_until 60 eval '[ "$(warns)" -gt "$w0" ]' && h_ok "with the database down, the hub says it cannot reach it" ||
    h_not_ok "with the database down, the hub says it cannot reach it"
# (the log is at debug level here: the tries after the first are there as debug lines)
retries() { grep -c 'level=debug event=web.events_db msg="the event hub cannot reach the database' "$H_TMP/web.log" || true; }
h_wait_until 60 eval '[ "$(retries)" -ge 2 ]' && h_ok "it tries again while the database is down" ||
    h_not_ok "it tries again while the database is down"
h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -l "$H_PG_DATA/server.log" -w -t 60 start >/dev/null
h_wait_until 60 eval '[ "$(grep -c "event=web.events_listening" "$H_TMP/web.log")" -gt "$l0" ]' &&
    h_ok "once it is back, the hub listens again" || h_not_ok "once it is back, the hub listens again"
h_eq 1 "$(($(warns) - w0))" "having said so once, not at every turn of its loop (it spun, a line each time)"
ALERT3=$(h_sql -c "INSERT INTO acs.alerts (connection, name, message) VALUES ('AMTDEMO', 'SSE_BACK', 'after the restart') RETURNING id")
h_wait_until 60 has_ev vera alert ".id == $ALERT3" && h_ok "and the stream goes on" || h_not_ok "and the stream goes on"

# --- the server stops: streams end --------------------------------------------------------------
kill -TERM "$H_WEB_PID"
h_wait_until 30 gone "$PID_vera" && h_ok "streams end when amtacs-web stops" || h_not_ok "streams end when amtacs-web stops"
h_wait_until 30 gone "$H_WEB_PID" && h_ok "amtacs-web stops with streams open" || h_not_ok "amtacs-web stops with streams open"
wait "$H_WEB_PID" && h_ok "and exits 0" || h_not_ok "and exits 0"

# every plain answer above (401, 404, 400, logins, submits) is as the OpenAPI document says
h_web_check_answers
h_daemons_stop
