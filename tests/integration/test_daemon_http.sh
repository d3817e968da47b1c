# The daemon's HTTP endpoint as an operator and a Prometheus server meet it:
# the probes, /metrics in a format promtool accepts and with values that
# match what the test did, the bearer token, and clear refusals (a token file
# others can read, a port in use). JORS-style job retrieval has one home,
# amtacs-web: the daemon's old /v1/jobs routes answer 404 saying where it
# went, and the same retrieval is checked there (GET /api/v1/jobs/ID[/log]).
source "$(dirname "$0")/../lib/harness.sh"
source "$(dirname "$0")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start --time-scale 0.05
h_batch_user amtopcon amtopcon-secret
token='tok-3f9a1c7e5b2d4e6f8a0b'
printf '%s\n' "$token" >"$H_TMP/http.token"
chmod 600 "$H_TMP/http.token"
H_HTTP_EXTRA="  token_file: $H_TMP/http.token" H_CONN_EXTRA="    allow_kill: true" \
    h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
URL=$(h_daemon_http)
auth=(-H "Authorization: Bearer $token")
# amtacs-web, with a viewer's API token, serves the jobs
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
cp "$H_TMP/amtacs.yaml" "$H_TMP/web.yaml"
cat >>"$H_TMP/web.yaml" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "host=$PGHOST port=$PGPORT user=web1 dbname=$PGDATABASE application_name=amtacs-web"
CONF
h_web_start "$H_TMP/web.yaml"
wauth=(-H "Authorization: Bearer $(h_ctl token create --name grafana --role viewer 2>/dev/null)")
# wstatus ARGS...: status of a request to amtacs-web (body in $H_TMP/body)
wstatus() { local p=${*: -1}; h_web_req GET "$p" "${@:1:$#-1}"; }

# status LINE of a request: code and body
status() { curl -s -o "$H_TMP/body" -w '%{http_code}' "$@"; }
# the value of one series in a scrape: metric NAME{labels} [FILE]
metric() {
    awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print "absent" }' \
        "${2:-$H_TMP/metrics}"
}
scrape() { curl -fsS "${auth[@]}" "$URL/metrics" >"$H_TMP/metrics"; }

# --- probes ------------------------------------------------------------------------
h_eq 200 "$(status "$URL/healthz")" "/healthz answers 200 while the daemon runs"
h_eq ok "$(cat "$H_TMP/body")" "and says ok"
h_wait_until 30 curl -fs "$URL/readyz" || true
h_eq 200 "$(status "$URL/readyz")" "/readyz answers 200 with the database up"
h_match "database reachable" "$(cat "$H_TMP/body")" "and says why it is ready"

# --- the token -----------------------------------------------------------------------
h_eq 401 "$(status "$URL/metrics")" "/metrics without the token is refused (401)"
h_match 'WWW-Authenticate: Bearer' "$(curl -si "$URL/metrics")" "with a Bearer challenge"
h_eq 401 "$(status -H "Authorization: Bearer ${token}x" "$URL/metrics")" "a wrong token is refused"
h_eq 401 "$(status -H "Authorization: Basic $token" "$URL/metrics")" "another scheme is refused"
h_eq 200 "$(status "${auth[@]}" "$URL/metrics")" "the right token opens /metrics"

# --- a workload, then the figures ------------------------------------------------------
declare -A ids=()
for i in 1 2 3; do ids[ok$i]=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT); done
ids[err]=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ERRORJOB)
ids[abort]=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ABORTJOB)
# the long job runs until it is killed (never, here): it is in flight at the scrape
ids[long]=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished' AND id <> ${ids[long]}" ||
    h_not_ok "the short jobs finished"
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = ${ids[long]}" || h_not_ok "the long job runs"
c='connection="AMTDEMO"'
# The connection gauges are handed over once a second, a completion is counted
# once its result is written: scrape until both show (the figures are checked below).
completions() { awk '$1 ~ /^amtacs_job_completions_total/ { n += $2 } END { print n + 0 }' "$H_TMP/metrics"; }
h_wait_for 30 'scrape && [ "$(metric "amtacs_jobs_in_flight{$c}")" = 1 ] && [ "$(completions)" = 5 ]' ||
    h_not_ok "a scrape shows the long job in flight and the 5 others completed"
promtool check metrics <"$H_TMP/metrics" >"$H_TMP/promtool.out" 2>&1 &&
    h_ok "promtool check metrics accepts the scrape" ||
    { h_not_ok "promtool check metrics accepts the scrape"; cat "$H_TMP/promtool.out" >&2; }
h_eq 6 "$(metric "amtacs_job_starts_total{$c}")" "starts: the 6 jobs started"
h_eq 3 "$(metric "amtacs_job_completions_total{$c,code=\"4\",name=\"DONE\",result=\"success\"}")" \
    "completions by code: 3 DONE"
h_eq 1 "$(metric "amtacs_job_completions_total{$c,code=\"11\",name=\"ERROR\",result=\"failure\"}")" \
    "completions by code: 1 ERROR"
h_eq 1 "$(metric "amtacs_job_completions_total{$c,code=\"12\",name=\"ABORTED\",result=\"failure\"}")" \
    "completions by code: 1 ABORTED"
h_eq 1 "$(metric "amtacs_alerts_total{$c,code=\"11\",name=\"ERROR\"}")" "alerts raised: 11 once"
h_eq 1 "$(metric "amtacs_alerts_total{$c,code=\"12\",name=\"ABORTED\"}")" "alerts raised: 12 once"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.alerts")" \
    "$(awk '$1 ~ /^amtacs_alerts_total/ { n += $2 } END { print n + 0 }' "$H_TMP/metrics")" \
    "the alerts counted are the alerts in the database"
h_eq 1 "$(metric "amtacs_jobs_in_flight{$c}")" "jobs in flight: the long job"
h_eq 1 "$(metric "amtacs_queue_jobs{$c,state=\"running\"}")" "the queue gauge shows it running"
h_eq 1 "$(metric "amtacs_comm_state{$c,state=\"enabled\"}")" "comm state enabled"
h_eq 0 "$(metric "amtacs_comm_state{$c,state=\"disabled\"}")" "and not disabled"
h_eq 1 "$(metric "amtacs_server_up{$c}")" "the server answers heartbeats"
h_eq 1 "$(metric amtacs_database_up)" "the database is up"
starts_sim=$(h_sim_counter .start_calls)
h_eq "$starts_sim" "$(metric "amtacs_http_request_seconds_count{$c,call=\"start\"}")" \
    "the Start histogram counted every Start the simulator received"
h_eq "$starts_sim" "$(metric "amtacs_http_requests_total{$c,call=\"start\",outcome=\"ok\"}")" \
    "and all of them ok"
h_eq "$(metric "amtacs_http_request_seconds_count{$c,call=\"start\"}")" \
    "$(metric "amtacs_http_request_seconds_bucket{$c,call=\"start\",le=\"+Inf\"}")" \
    "the +Inf bucket holds every call"
n=$(metric amtacs_database_statement_seconds_count)
[ "$n" != absent ] && [ "$n" -gt 10 ] && h_ok "database statements are timed ($n)" ||
    h_not_ok "database statements are timed ($n)"

# a running job's document carries the state the server last reported
run=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 30 2 "SELECT last_code FROM acs.jobs WHERE id = $run" || h_not_ok "the running job's state is recorded"
wstatus "${wauth[@]}" "/api/v1/jobs/$run" >/dev/null
h_eq "running 2 RUNNING pending" "$(jq -r '"\(.state) \(.amt_code) \(.amt_state) \(.log)"' "$H_TMP/body")" \
    "amtacs-web's /api/v1/jobs/ID of a running job: the AMT state the server reported (RUNNING)"
h_sql -c "SELECT acs.request_kill($run)" >/dev/null
h_wait_sql 30 3 "SELECT completion_code FROM acs.jobs WHERE id = $run" || h_not_ok "the running job was killed"

# queued jobs with Full Comm disabled are in the queue gauge, not started
h_ctl comm disable AMTDEMO >/dev/null
h_wait_until 30 bash -c "curl -fs -H 'Authorization: Bearer $token' $URL/metrics |
    grep -qx 'amtacs_comm_state{$c,state=\"disabled\"} 1'" ||
    h_not_ok "comm disabled shows at once"
q1=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
q2=$(h_ctl submit script -C AMTDEMO -a DEMO2 -s 'F:\Amt\Scripts\DEMO2\HELLO.ps1')
sleep 0.5
scrape
h_eq 2 "$(metric "amtacs_queue_jobs{$c,state=\"queued\"}")" "2 jobs wait in the queue while comm is disabled"
h_eq 1 "$(metric "amtacs_comm_state{$c,state=\"disabled\"}")" "comm state disabled"

# --- JORS-style retrieval: amtacs-web's, not the daemon's ----------------------------------
id=${ids[ok1]}
for p in "/v1/jobs/$id" "/v1/jobs/$id/log" /v1/jobs /v1/jobs/abc; do
    h_eq 404 "$(status "${auth[@]}" "$URL$p")" "the daemon's $p: 404"
    h_match "amtacs-web does, at GET /api/v1/jobs/ID and GET /api/v1/jobs/ID/log" \
        "$(jq -r .error "$H_TMP/body")" "saying where jobs are served now"
done
h_eq 404 "$(status "$URL/v1/jobs/$id")" "without the token too (it reveals nothing)"
h_eq 404 "$(status "${auth[@]}" "$URL/nope")" "an unknown path: 404"
h_eq "no such path; there are /healthz, /readyz and /metrics (jobs: amtacs-web's /api/v1/jobs)" \
    "$(jq -r .error "$H_TMP/body")" "naming the daemon's paths"
h_eq 405 "$(status -X POST "${auth[@]}" "$URL/metrics")" "POST: 405"
h_match 'Allow: GET, HEAD' "$(curl -si -X DELETE "$URL/metrics")" "with the methods allowed"

h_eq 401 "$(wstatus "/api/v1/jobs/$id")" "amtacs-web: a job without a session or token is refused"
h_eq 200 "$(wstatus "${wauth[@]}" "/api/v1/jobs/$id")" "amtacs-web: /api/v1/jobs/ID answers 200"
h_eq "4 DONE success INSTANT finished available" \
    "$(jq -r '"\(.completion_code) \(.completion_name) \(.result) \(.name) \(.state) \(.log)"' "$H_TMP/body")" \
    "with the job's outcome"
h_eq "$(h_ctl show "$id" --json | jq -S .)" "$(jq -S . "$H_TMP/body")" \
    "the same document as amtacsctl show --json"
h_match '^application/json' "$(grep -i '^content-type:' "$H_TMP/hdr" | cut -d' ' -f2- | tr -d '\r')" \
    "served as application/json"
h_eq 200 "$(wstatus "${wauth[@]}" "/api/v1/jobs/$id/log")" "/api/v1/jobs/ID/log answers 200"
h_eq "$(h_ctl log "$id")" "$(cat "$H_TMP/body")" "with the merged job log, byte for byte as amtacsctl log"
h_eq 409 "$(wstatus "${wauth[@]}" "/api/v1/jobs/$q1/log")" "a queued job's log: 409"
h_match "is queued; its log is written when it ends" "$(jq -r .detail "$H_TMP/body")" "saying why"
h_sql -c "DELETE FROM acs.job_logs WHERE job_id = ${ids[ok2]}" >/dev/null
h_eq 410 "$(wstatus "${wauth[@]}" "/api/v1/jobs/${ids[ok2]}/log")" "a purged log: 410 Gone"
wstatus "${wauth[@]}" "/api/v1/jobs/${ids[ok2]}" >/dev/null
h_eq purged "$(jq -r .log "$H_TMP/body")" "and the document says purged"
h_eq 404 "$(wstatus "${wauth[@]}" /api/v1/jobs/987654)" "an unknown job: 404"
h_eq "no job 987654" "$(jq -r .detail "$H_TMP/body")" "saying so"
for bad in /api/v1/jobs/abc /api/v1/jobs/-1 /api/v1/jobs/0 /api/v1/jobs/1/logs \
    /api/v1/jobs/99999999999999999999; do
    h_eq 404 "$(wstatus "${wauth[@]}" "$bad")" "$bad: 404"
done

# --- the database away: not ready, still alive --------------------------------------------
h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -m immediate -w stop >/dev/null
h_wait_until 30 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $URL/readyz) = 503 ]" &&
    h_ok "/readyz answers 503 while the database is down" ||
    h_not_ok "/readyz answers 503 while the database is down"
h_match "database is not reachable" "$(curl -s "$URL/readyz")" "and says why"
h_eq 200 "$(status "$URL/healthz")" "/healthz still answers 200 (the daemon is alive)"
h_eq 503 "$(wstatus "${wauth[@]}" "/api/v1/jobs/$id")" "amtacs-web's /api/v1/jobs answers 503 without the database"
h_web_check_answers
scrape
h_eq 0 "$(metric amtacs_queue_scrape_success)" "/metrics still answers, saying the queue was not read"
h_eq 0 "$(metric amtacs_database_up)" "and that the database is down"
h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -l "$H_PG_DATA/server.log" -w -t 60 start >/dev/null
h_wait_until 60 curl -fs "$URL/readyz" && h_ok "ready again once the database is back" ||
    h_not_ok "ready again once the database is back"

# --- secrets and refusals ------------------------------------------------------------------
! grep -q -- "$token" "$H_DAEMON_LOG" && h_ok "the token is never logged" || h_not_ok "the token is never logged"
h_daemons_stop
chmod 644 "$H_TMP/http.token"
h_run_fails "a token file others can read is refused" "$DAEMON_BIN" -c "$H_TMP/amtacs.yaml"
h_match "accessible by group or others" "$H_OUT" "and says why"
chmod 600 "$H_TMP/http.token"
printf 'short\n' >"$H_TMP/short.token"
chmod 600 "$H_TMP/short.token"
H_HTTP_EXTRA="  token_file: $H_TMP/short.token" h_daemon_config "$H_TMP/short.yaml"
h_run_fails "a token shorter than 16 characters is refused" "$DAEMON_BIN" -c "$H_TMP/short.yaml"
h_match "16 to" "$H_OUT" "and says what a token must be"
python3 -c "import socket,sys,time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1]); sys.stdout.flush()
time.sleep(60)" >"$H_TMP/blocker.port" &
blocker=$!
H_PIDS+=("$blocker")
h_wait_until 30 test -s "$H_TMP/blocker.port"
port=$(cat "$H_TMP/blocker.port")
H_HTTP_LISTEN="127.0.0.1:$port" h_daemon_config "$H_TMP/busy.yaml"
h_run_fails "a port in use is refused at start" "$DAEMON_BIN" -c "$H_TMP/busy.yaml"
h_match "cannot serve HTTP on 127.0.0.1:$port" "$H_OUT" "naming the address"
H_HTTP_LISTEN="127.0.0.1:99999" h_daemon_config "$H_TMP/badport.yaml"
h_run_fails "a bad listen address is refused" "$DAEMON_BIN" -c "$H_TMP/badport.yaml"
h_match "port 0-65535" "$H_OUT" "saying what is wrong"
kill "$blocker" 2>/dev/null || true

# HTTP off: no port, the daemon runs
H_HTTP_LISTEN="" h_daemon_config "$H_TMP/off.yaml"
h_daemon_start "$H_TMP/off.yaml"
h_daemon_ready
! grep -q 'event=http.listening' "$H_DAEMON_LOG" && h_ok "http.listen \"\" serves no HTTP" ||
    h_not_ok "http.listen \"\" serves no HTTP"
h_daemons_stop


