#!/usr/bin/env bash
# amtacs-web over real HTTP (curl), with a real PostgreSQL, simulator and
# daemon: logins, sessions, CSRF, throttling, bearer tokens; every role on
# every endpoint, each refusal a 403 carrying PostgreSQL's own reason; the
# audit names the web user and its address; Idempotency-Key (50 racing
# requests make one job); a job submitted over HTTP runs to its end and its
# log is served; hostile requests get a 4xx with a reason and the server
# keeps serving; a plain-HTTP listen off loopback is refused.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"
WEB_BIN="$H_WEB_BIN"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
h_sql -c "CREATE ROLE admin1 LOGIN IN ROLE acs_admin" >/dev/null
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null

CFG="$H_TMP/amtacs.yaml"
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$CFG"
cat >>"$CFG" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "$(conn web1) application_name=amtacs-web"
  max_body: 4096
  header_timeout: 2s
  max_connections_per_client: 80
  db_pool: 4
CONF
h_daemon_start "$CFG"
h_daemon_ready

# --- amtacs-web checks its configuration --------------------------------------------
out=$("$WEB_BIN" -c "$CFG" -n 2>&1) && rc=0 || rc=$?
h_eq 0 "$rc" "amtacs-web -n accepts the configuration"
h_match 'conninfo: "host=.* user=web1' "$out" "and prints the web section with its defaults"
h_match 'session_idle: 30m' "$out" "(session_idle defaults to 30m)"
sed '/^web:/,$ s/listen: "127.0.0.1:0"/listen: "0.0.0.0:0"/' "$CFG" >"$H_TMP/open.yaml"
out=$("$WEB_BIN" -c "$H_TMP/open.yaml" 2>&1) && rc=0 || rc=$?
h_match "^2\|.*web.listen: '0.0.0.0:0' is not a loopback address .* neither HTTPS .* nor web.behind_proxy: true" \
    "$rc|$out" "a plain-HTTP listen off loopback is refused, saying why"
printf '  behind_proxy: true\n' >>"$H_TMP/open.yaml"
h_eq 0 "$("$WEB_BIN" -c "$H_TMP/open.yaml" -n >/dev/null 2>&1; echo $?)" \
    "and accepted with web.behind_proxy: true"
grep -v '  conninfo: "host=.*user=web1' "$CFG" >"$H_TMP/noconn.yaml"
out=$("$WEB_BIN" -c "$H_TMP/noconn.yaml" -n 2>&1) && rc=0 || rc=$?
h_match "^2\|.*web.conninfo is not set" "$rc|$out" "amtacs-web refuses to run without web.conninfo"
sed "s/user=web1/user=$PGUSER/" "$CFG" >"$H_TMP/super.yaml"
out=$("$WEB_BIN" -c "$H_TMP/super.yaml" 2>&1) && rc=0 || rc=$?
h_match "^1\|.*a superuser: PostgreSQL would refuse nothing" "$rc|$out" \
    "amtacs-web refuses a superuser login"

# --- start it ---------------------------------------------------------------------------
h_web_start "$CFG"
WEB_LOG="$H_TMP/web.log"
WEB_PID=$H_WEB_PID
URL=$H_WEB_URL

pw=correct-horse-battery
for u in vera:viewer sam:scheduler olga:operator adam:admin; do
    printf '%s\n' "$pw" | ctl_as admin1 user add "${u%%:*}" --role "${u##*:}" >/dev/null
done
TOKEN=$(ctl_as admin1 token create --name robot --role scheduler 2>/dev/null)

# req METHOD PATH [curl args]: prints the status; body in $H_TMP/body, headers in $H_TMP/hdr
req() { h_web_req "$@"; }
# login USER [PASSWORD]: a session in the cookie jar $H_TMP/jar.USER, its CSRF
# token in $H_TMP/csrf.USER; prints the status
login() {
    local st
    st=$(req POST /api/v1/login -c "$H_TMP/jar.$1" -H 'Content-Type: application/json' \
        --data "{\"user\":\"$1\",\"password\":\"${2:-$pw}\"}")
    if [ "$st" = 200 ]; then jq -r .csrf_token "$H_TMP/body" >"$H_TMP/csrf.$1"; fi
    echo "$st"
}
csrf() { cat "$H_TMP/csrf.$1" 2>/dev/null || true; }
# as USER METHOD PATH [curl args]: a request in USER's session, with its CSRF token
as() {
    local u=$1 m=$2 p=$3
    shift 3
    req "$m" "$p" -b "$H_TMP/jar.$u" -H "X-CSRF-Token: $(csrf "$u")" "$@"
}
json() { printf '%s' "-H" "Content-Type: application/json" "--data" "$1"; }
last_audit() { h_sql -c "SELECT concat_ws('|', actor, coalesce(address, '-'), role, action, target)
                           FROM acs.audit ORDER BY id DESC LIMIT 1"; }

# --- logins, sessions, cookies ----------------------------------------------------------
h_eq 200 "$(login vera)" "vera logs in"
h_match '"role":"viewer"' "$(body)" "the answer names her role"
h_match '^[A-Za-z0-9_-]{43}$' "$(csrf vera)" "and carries a CSRF token"
cookie=$(hdr Set-Cookie)
h_match '^amtacs_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200$' \
    "$cookie" "the session cookie is HttpOnly, SameSite=Strict, Path=/ (no Secure over plain HTTP)"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.web_sessions WHERE user_name = 'vera'")" \
    "the session is stored in PostgreSQL"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.web_sessions
                     WHERE position(convert_to('${cookie:15:43}', 'UTF8') IN token_hash) > 0
                        OR encode(token_hash, 'escape') LIKE '%${cookie:15:20}%'")" \
    "only a hash of the cookie is stored"
h_eq 200 "$(as vera GET /api/v1/me)" "GET /me answers in the session"
h_eq "vera|viewer|session|127.0.0.1" "$(jq -r '[.user, .role, .by, .address] | join("|")' "$H_TMP/body")" \
    "/me names the user, role and address"
for h in "X-Content-Type-Options: nosniff" "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'" \
    "Referrer-Policy: no-referrer" "Cache-Control: no-store"; do
    h_eq "${h#*: }" "$(hdr "${h%%:*}")" "answers carry $h"
done
h_eq 401 "$(req GET /api/v1/me)" "without a session /me is 401"
h_match "not logged in" "$(detail)" "saying how to log in"
h_eq "application/problem+json" "$(hdr Content-Type)" "errors are application/problem+json"
h_eq "401|Unauthorized" "$(jq -r '"\(.status)|\(.title)"' "$H_TMP/body")" "with status and title (RFC 9457)"
h_eq 401 "$(req GET /api/v1/me -H "Cookie: amtacs_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")" \
    "a made-up session cookie is 401"

h_eq 401 "$(login sam wrong-password-1)" "a wrong password is 401"
h_eq "wrong user name or password" "$(detail)" "saying 'wrong user name or password'"
h_eq 401 "$(login nosuchuser "$pw")" "an unknown user is 401"
h_eq "wrong user name or password" "$(detail)" "with the same message"

# throttling: 5 failures of a name, then 429 with Retry-After
for i in 2 3 4 5; do login sam "wrong-password-$i" >/dev/null; done
h_eq 429 "$(login sam)" "after 5 failures even the right password waits (429)"
h_match '^[0-9]+$' "$(hdr Retry-After)" "with Retry-After"
h_match "too many failed logins .* try again in [0-9]+ seconds?" "$(detail)" "and a clear message"
h_wait_for 30 '[ "$(login sam)" = 200 ]' || h_not_ok "sam can log in once the wait is over"
h_eq sam "$(jq -r .user "$H_TMP/body")" "sam logs in once the wait is over"
h_eq 200 "$(login olga)" "olga logs in"
h_eq 200 "$(login adam)" "adam logs in"

# CSRF: unsafe methods of a session need the token
h_eq 403 "$(req POST /api/v1/logout -b "$H_TMP/jar.vera")" "POST without X-CSRF-Token is 403"
h_match "X-CSRF-Token header is missing or does not match" "$(detail)" "saying the CSRF token is missing"
h_eq 403 "$(req POST /api/v1/logout -b "$H_TMP/jar.vera" -H "X-CSRF-Token: $(csrf adam)")" \
    "another session's CSRF token is refused"

# --- bearer tokens ----------------------------------------------------------------------
h_eq 200 "$(req GET /api/v1/me -H "Authorization: Bearer $TOKEN")" "a bearer token is accepted"
h_eq "token:robot|scheduler|token" "$(jq -r '[.user, .role, .by] | join("|")' "$H_TMP/body")" \
    "as the token's name and role"
h_eq 401 "$(req GET /api/v1/me -H "Authorization: Bearer amtacs_nope")" "a malformed token is 401"
h_eq 401 "$(req GET /api/v1/me -H "Authorization: Basic dXNlcjpwYXNz")" "Basic authentication is 401"

# --- every role on every endpoint -------------------------------------------------------
job=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'LONGRUNNINGREPORT')")
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $job" || h_not_ok "job $job runs"
alert=$(h_sql -c "INSERT INTO acs.alerts (connection, name, message) VALUES ('AMTDEMO', 'TEST', 'x') RETURNING id")
SUBMIT='{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":"INSTANT"}'
COMM='{"state":"enabled"}'
# check METHOD PATH BODY MAY [WHO]: each of WHO (default: all four) asks; those in MAY
# must succeed, the others must be refused by PostgreSQL
check() {
    local m=$1 p=$2 data=$3 may=$4 who=${5:-vera sam olga adam} u st args=()
    [ -n "$data" ] && args=(-H "Content-Type: application/json" --data "$data")
    for u in $who; do
        st=$(as $u "$m" "$p" "${args[@]}")
        if [[ " $may " == *" $u "* ]]; then
            if [[ "$st" == 2?? ]]; then h_ok "$u: $m $p -> $st"; else h_not_ok "$u: $m $p -> $st $(body)"; fi
        elif [ "$st" = 403 ] && [[ "$(detail)" == "permission denied"* ]]; then
            h_ok "$u: $m $p refused by PostgreSQL: $(detail)"
        else
            h_not_ok "$u: $m $p must be 403 'permission denied...', got $st $(body)"
        fi
    done
}
check GET /api/v1/jobs "" "vera sam olga adam"
check GET "/api/v1/jobs/$job" "" "vera sam olga adam"
check POST /api/v1/jobs "$SUBMIT" "sam olga adam"
check GET /api/v1/connections "" "vera olga adam"
check GET /api/v1/alerts "" "vera olga adam"
check POST "/api/v1/alerts/$alert/ack" "" "olga adam"
check PUT /api/v1/connections/AMTDEMO/comm "$COMM" "adam"
# a kill ends the job: olga and adam each kill a job of their own
check POST "/api/v1/jobs/$job/kill" "" "olga" "vera sam olga"
h_eq "olga|127.0.0.1|acs_operator|kill|$job" "$(last_audit)" "olga's kill is audited as olga from 127.0.0.1"
h_eq olga "$(h_sql -c "SELECT kill_requested_by FROM acs.jobs WHERE id = $job")" \
    "and the job says olga asked for the kill"
h_wait_sql 60 finished "SELECT state FROM acs.jobs WHERE id = $job" || h_not_ok "job $job ends"
h_eq 409 "$(as adam POST "/api/v1/jobs/$job/kill")" "killing a finished job is 409"
h_eq "job $job has already finished; there is nothing to kill" "$(detail)" "with the SQL function's message"
job2=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'LONGRUNNINGREPORT')")
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $job2" || h_not_ok "job $job2 runs"
h_eq 202 "$(as adam POST "/api/v1/jobs/$job2/kill")" "adam kills a job"
h_eq "adam|127.0.0.1|acs_admin|kill|$job2" "$(last_audit)" "audited as adam from 127.0.0.1"
as adam PUT /api/v1/connections/AMTDEMO/comm -H "Content-Type: application/json" --data "$COMM" >/dev/null
h_eq "adam|127.0.0.1|acs_admin|comm|AMTDEMO" "$(last_audit)" "a comm change is audited as adam from 127.0.0.1"
h_eq 403 "$(as olga PUT /api/v1/connections/AMTDEMO/comm -H "Content-Type: application/json" --data "$COMM")" \
    "olga may not change Full Comm"
h_match "^permission denied for function set_comm" "$(detail)" "PostgreSQL's reason is the detail"
h_eq 400 "$(as adam PUT /api/v1/connections/AMTDEMO/comm -H "Content-Type: application/json" --data '{"state":"sideways"}')" \
    "an unknown comm state is 400"
h_eq "comm state 'sideways' is not one of enabled, limited, disabled" "$(detail)" "with the SQL function's message"
h_eq 400 "$(as adam PUT /api/v1/connections/NOSUCH/comm -H "Content-Type: application/json" --data "$COMM")" \
    "an unknown connection is 400"
h_match "^connection 'NOSUCH' is not known" "$(detail)" "with the SQL function's message"
h_eq 400 "$(as olga POST /api/v1/jobs/999999/kill -H "Content-Type: application/json" --data '{"force":true}')" \
    "a kill with a field is 400"
h_eq "unknown field 'force'; this request takes no fields" "$(detail)" "naming the field"
h_eq 404 "$(as olga POST /api/v1/jobs/999999/kill)" "killing an unknown job is 404"
h_eq "job 999999 does not exist" "$(detail)" "with the SQL function's message"
h_eq 404 "$(as vera GET /api/v1/jobs/999999)" "an unknown job is 404"
h_eq 201 "$(req POST /api/v1/jobs -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" --data "$SUBMIT")" \
    "the scheduler token submits without a CSRF token"
tokjob=$(jq -r .id "$H_TMP/body")
h_eq "token:robot|127.0.0.1|acs_scheduler|submit|$tokjob" "$(last_audit)" "audited as the token"

# --- listing jobs -------------------------------------------------------------------------
h_eq 200 "$(as vera GET "/api/v1/jobs?limit=2")" "GET /jobs?limit=2"
h_eq 2 "$(jq '.jobs | length' "$H_TMP/body")" "gives 2 jobs"
first=$(jq '.jobs[0].id' "$H_TMP/body")
next=$(jq '.next' "$H_TMP/body")
h_eq "$(h_sql -c "SELECT max(id) FROM acs.jobs")" "$first" "newest first"
h_eq 200 "$(as vera GET "/api/v1/jobs?limit=2&before=$next")" "the next page"
h_eq "$(h_sql -c "SELECT string_agg(id::text, ',' ORDER BY id DESC) FROM (SELECT id FROM acs.jobs WHERE id < $next ORDER BY id DESC LIMIT 2) x")" \
    "$(jq -r '[.jobs[].id] | map(tostring) | join(",")' "$H_TMP/body")" "continues below the cursor"
h_eq 200 "$(as vera GET "/api/v1/jobs?q=longrunning&connection=AMTDEMO")" "filters by name substring and connection"
h_eq "$job2,$job" "$(jq -r '[.jobs[].id] | map(tostring) | join(",")' "$H_TMP/body")" "finding the two jobs"
h_eq null "$(jq -r .next "$H_TMP/body")" "with no next page"
h_eq 400 "$(as vera GET "/api/v1/jobs?colour=red")" "an unknown filter is 400"
h_match "unknown query parameter 'colour'" "$(detail)" "naming it"
h_eq 400 "$(as vera GET "/api/v1/jobs?limit=0")" "limit 0 is 400"

# --- submit and idempotency ---------------------------------------------------------------
n0=$(h_sql -c "SELECT count(*) FROM acs.jobs")
h_eq 201 "$(as sam POST /api/v1/jobs -H "Content-Type: application/json" -H "Idempotency-Key: k1" --data "$SUBMIT")" \
    "a submit with an Idempotency-Key"
k1=$(jq -r .id "$H_TMP/body")
h_eq 200 "$(as sam POST /api/v1/jobs -H "Content-Type: application/json" -H "Idempotency-Key: k1" --data "$SUBMIT")" \
    "the same key and body again"
h_eq "$k1|true" "$(jq -r '"\(.id)|\(.repeated)"' "$H_TMP/body")" "gives the same job"
h_eq $((n0 + 1)) "$(h_sql -c "SELECT count(*) FROM acs.jobs")" "and enqueues nothing more"
h_eq 409 "$(as sam POST /api/v1/jobs -H "Content-Type: application/json" -H "Idempotency-Key: k1" \
    --data '{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":"OTHER"}')" \
    "the same key with another body is 409"
h_match "was used for job $k1 with a different body" "$(detail)" "saying so"
python3 - "$URL" "$(csrf sam)" "$(grep amtacs_session "$H_TMP/jar.sam" | awk '{print $7}')" "$SUBMIT" \
    >"$H_TMP/par.out" <<'PY'
import sys, threading, urllib.request, json
url, csrf, cookie, body = sys.argv[1:5]
res, lock = [], threading.Lock()
def one():
    r = urllib.request.Request(url + "/api/v1/jobs", data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "X-CSRF-Token": csrf,
        "Cookie": "amtacs_session=" + cookie, "Idempotency-Key": "parallel-50"})
    try:
        with urllib.request.urlopen(r, timeout=60) as a:
            out = (a.status, json.load(a)["id"])
    except urllib.error.HTTPError as e:
        out = (e.code, e.read().decode())
    except Exception as e:
        out = (0, str(e))
    with lock:
        res.append(out)
ts = [threading.Thread(target=one) for _ in range(50)]
[t.start() for t in ts]
[t.join() for t in ts]
print(len(res), sorted(set(s for s, _ in res)), len(set(i for s, i in res if s in (200, 201))))
PY
h_eq "50 [200, 201] 1" "$(cat "$H_TMP/par.out")" "50 parallel submits with one key: all answered, one job id"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.web_idempotency WHERE key = 'parallel-50'")" "one key recorded"
h_eq $((n0 + 2)) "$(h_sql -c "SELECT count(*) FROM acs.jobs")" "and exactly one job made for them"

# --- a job submitted over HTTP runs through the daemon; its log is served -----------------
h_eq 201 "$(as sam POST /api/v1/jobs -H "Content-Type: application/json" \
    --data '{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":"REPORTTEST01","parameters":[],"external_ref":"web-1"}')" \
    "sam submits REPORTTEST01"
rj=$(jq -r .id "$H_TMP/body")
h_eq "/api/v1/jobs/$rj" "$(hdr Location)" "Location names the new job"
h_wait_sql 120 finished "SELECT state FROM acs.jobs WHERE id = $rj" || h_not_ok "job $rj finishes"
h_eq success "$(h_sql -c "SELECT result FROM acs.jobs WHERE id = $rj")" "it ends in success"
h_eq 200 "$(as vera GET "/api/v1/jobs/$rj")" "its document is served"
h_eq "$rj" "$(jq -r .id "$H_TMP/body" 2>/dev/null || body)" "for the job"
h_eq 200 "$(as vera GET "/api/v1/jobs/$rj/log")" "its log is served"
h_match "^text/plain" "$(hdr Content-Type)" "as text/plain"
h_eq "$(h_sql -c "SELECT log FROM acs.job_log_text($rj)")" "$(body)" "the JORS log, as stored"

# --- its timeline (migration 0019): claimed, started, each state the server reported ------
h_eq 200 "$(as vera GET "/api/v1/jobs/$rj")" "the document again"
tl=$(python3 - "$H_TMP/body" <<'PY'
import json, sys
from datetime import datetime
d = json.load(open(sys.argv[1]))
t = lambda s: datetime.fromisoformat(s)
st = d["states"]
bad = []
if not (t(d["enqueued_at"]) < t(d["claimed_at"]) <= t(d["started_at"])):
    bad.append("enqueued < claimed <= started")
if any(not (t(d["started_at"]) <= t(s["at"]) <= t(d["finished_at"])) for s in st):
    bad.append("started <= each state <= ended")
if any(t(a["at"]) > t(b["at"]) for a, b in zip(st, st[1:])):
    bad.append("states in time order")
if any(a["code"] == b["code"] for a, b in zip(st, st[1:])):
    bad.append("one state per change")
if not st or st[-1]["code"] != d["completion_code"] or t(st[-1]["at"]) != t(d["finished_at"]):
    bad.append("the last state is the completion code, at finished_at")
print(" ".join(bad) or "ok", d["batch_request_id"], d["attempt"], bool(d["owner"]),
      st[-1]["name"] if st else "-", d["alert"])
PY
)
h_eq "ok $(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $rj") 1 True DONE None" "$tl" \
    "enqueued < claimed (attempt 1, by a daemon) <= started (with its BatchRequestId) <= each state <= ended at DONE; no alert"
h_eq "$(h_sql -c "SELECT string_agg(code::text, ' ' ORDER BY n) FROM acs.job_states WHERE job_id = $rj")" \
    "$(jq -r '[.states[].code | tostring] | join(" ")' "$H_TMP/body")" "the states are acs.job_states' rows"
polls=$(h_sql -c "SELECT count(*) FROM acs.job_states")
h_sql -c "UPDATE acs.jobs SET last_code = last_code WHERE id = $rj" >/dev/null
h_eq "$polls" "$(h_sql -c "SELECT count(*) FROM acs.job_states")" "a code stored again unchanged records nothing"
# retention: the states go with the log
h_sql -c "UPDATE acs.job_logs SET written_at = now() - interval '10 years' WHERE job_id = $rj" >/dev/null
h_sql -c "SELECT acs.purge_job_logs()" >/dev/null
h_eq "0|purged" "$(h_sql -c "SELECT count(*) || '|' || (acs.job_document($rj)->>'log') FROM acs.job_states WHERE job_id = $rj")" \
    "purging the job's log (retention) purges its states"
h_eq 200 "$(as vera GET "/api/v1/jobs/$rj")" "its document"
h_eq "[]" "$(jq -c .states "$H_TMP/body")" "shows no states"
# the job's alert, with who acknowledged it
ja=$(h_sql -c "INSERT INTO acs.alerts (job_id, connection, code, name, message)
                VALUES ($rj, 'AMTDEMO', 4, 'DONE', 'job $rj: a test alert') RETURNING id")
h_eq 200 "$(as olga POST "/api/v1/alerts/$ja/ack")" "olga acknowledges alert $ja of job $rj"
h_eq 200 "$(as vera GET "/api/v1/jobs/$rj")" "the job's document"
h_eq "$ja|4|DONE|job $rj: a test alert|olga|true" \
    "$(jq -r '.alert | "\(.id)|\(.code)|\(.name)|\(.message)|\(.acknowledged_by)|\(.acknowledged_at != null)"' "$H_TMP/body")" \
    "shows its alert, acknowledged by olga"
# the alerts, open ones apart (the console lists them first)
h_eq 200 "$(as olga GET "/api/v1/alerts?open=true&limit=500")" "GET /alerts?open=true"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.alerts WHERE acknowledged_at IS NULL")|0|0" \
    "$(jq -r "\"\\(.alerts | length)|\\([.alerts[] | select(.acknowledged_at != null)] | length)|\\([.alerts[] | select(.id == $ja)] | length)\"" "$H_TMP/body")" \
    "gives every unacknowledged alert and no other"
h_eq 200 "$(as olga GET "/api/v1/alerts?open=false&limit=500")" "GET /alerts?open=false"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.alerts WHERE acknowledged_at IS NOT NULL")|0|1" \
    "$(jq -r "\"\\(.alerts | length)|\\([.alerts[] | select(.acknowledged_at == null)] | length)|\\([.alerts[] | select(.id == $ja)] | length)\"" "$H_TMP/body")" \
    "gives the acknowledged ones, alert $ja among them"
h_eq 400 "$(as olga GET "/api/v1/alerts?open=yes")" "open=yes is 400"
h_eq "open must be true (unacknowledged alerts) or false (acknowledged)" "$(detail)" "saying what it takes"

# --- hostile requests ---------------------------------------------------------------------
bad() { # bad STATUS DESCRIPTION PATTERN DATA [curl args]
    local want=$1 what=$2 pat=$3 data=$4 st
    shift 4
    st=$(as sam POST /api/v1/jobs -H "Content-Type: application/json" --data-binary "$data" "$@")
    if [ "$st" = "$want" ] && [[ "$(detail 2>/dev/null || body)$(body)" =~ $pat ]]; then
        h_ok "$what: $st $(detail)"
    else
        h_not_ok "$what: wanted $want /$pat/, got $st $(body)"
    fi
}
bad 400 "malformed JSON" "not a JSON object: .*json\\.syntax" '{"kind" "batch"}'
bad 400 "truncated JSON" "json\\.truncated" '{"kind": "batch"'
bad 400 "a duplicate key" "json\\.duplicate_key" '{"kind":"batch","kind":"script"}'
bad 400 "a JSON array" "json\\.not_object" '[1,2]'
bad 400 "an unknown field" "unknown field 'colour'" '{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":"X","colour":"red"}'
bad 400 "a wrong type" "field 'name' must be a string" '{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":7}'
bad 400 "parameters not strings" "field 'parameters' must be an array of strings" '{"kind":"batch","connection":"AMTDEMO","application":"DEMO2","name":"X","parameters":[1]}'
bad 400 "a missing field" "field 'application' is required" '{"kind":"batch","connection":"AMTDEMO","name":"X"}'
bad 400 "an unknown kind" "field 'kind' must be" '{"kind":"rocket","connection":"AMTDEMO","application":"DEMO2","name":"X"}'
bad 400 "an SQL check" "application is 129 characters long" \
    "{\"kind\":\"batch\",\"connection\":\"AMTDEMO\",\"application\":\"$(printf 'A%.0s' $(seq 129))\",\"name\":\"X\"}"
bad 413 "an oversized body" "larger than 4096 bytes \\(web.max_body\\)" "{\"kind\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}"
st=$(head -c 6000 /dev/zero | tr '\0' a | as sam POST /api/v1/jobs -H "Content-Type: application/json" \
    -H "Transfer-Encoding: chunked" --data-binary @-)
h_eq 413 "$st" "an oversized chunked body (no Content-Length) is 413 too"
h_eq 415 "$(as sam POST /api/v1/jobs -H "Content-Type: text/plain" --data "$SUBMIT")" "a body that is not JSON is 415"
h_eq 405 "$(as sam DELETE /api/v1/jobs)" "an unknown method is 405"
h_eq "GET, HEAD, POST" "$(hdr Allow)" "with Allow"
h_eq 404 "$(as sam GET /api/v1/jobs/0)" "job 0 is no resource (404)"
h_eq 404 "$(as sam GET /api/v1/jobs/99999999999999999999999)" "an id past bigint is 404, not a crash"
h_eq 404 "$(as sam GET /api/v1/nothing)" "an unknown path is 404"
bad 400 "invalid UTF-8" "utf8\\.invalid" $'{"kind":"\xff"}'
st=$(req POST /api/v1/login -H 'Content-Type: application/json' \
    --data "{\"user\":\"sam\",\"password\":\"$(head -c 2000 /dev/zero | tr '\0' p)\"}")
h_eq 400 "$st" "a 2000-byte password is refused before it is hashed"
h_match "password at most 1024" "$(detail)" "saying the limit"
# a request whose headers never end is closed at web.header_timeout (2 s), not kept
out=$(python3 - "${URL#http://}" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
t = time.time()
s.settimeout(30)
try:
    while True:
        s.sendall(b"X-Slow: 1\r\n")
        s.settimeout(0.5)
        try:
            if s.recv(100) == b"":
                break
        except socket.timeout:
            pass
        if time.time() - t > 30:
            break
except (BrokenPipeError, ConnectionResetError):
    pass
print("closed after %.0f s" % (time.time() - t))
PY
)
h_match "^closed after [1-9] s$" "$out" "a slow sender is closed at the header deadline ($out)"
h_eq 200 "$(as vera GET /api/v1/me)" "the server keeps serving"

# --- logout and revocation -------------------------------------------------------------------
h_eq 200 "$(as vera POST /api/v1/logout)" "vera logs out (with her CSRF token)"
h_match 'amtacs_session=; .*Max-Age=0' "$(hdr Set-Cookie)" "the cookie is cleared"
h_eq 401 "$(as vera GET /api/v1/me)" "her session no longer works"
h_match "the session has ended" "$(detail)" "saying it ended"
ctl_as admin1 token revoke robot >/dev/null
h_eq 401 "$(req GET /api/v1/me -H "Authorization: Bearer $TOKEN")" "a revoked token is 401"
h_eq "unknown or revoked API token" "$(detail)" "saying so"

# --- the database restarts: every worker's connection is dead; each is made anew when next
# used and the request is tried once more (nothing was changed yet), so no request fails -------
h_pg_restart
st=""
for i in 1 2 3 4 5 6; do st="$st $(as olga GET /api/v1/jobs)"; done
h_eq " 200 200 200 200 200 200" "$st" "after a database restart every request succeeds (workers reconnect)"
h_match "event=web.db_reconnect" "$(cat "$WEB_LOG")" "and the reconnections are logged"
h_eq 200 "$(as olga GET /api/v1/me)" "the session survives the restart"

# --- HTTPS: the cookie is Secure ---------------------------------------------------------------
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$H_TMP/web.key" -out "$H_TMP/web.pem" >"$H_TMP/openssl.log" 2>&1
chmod 600 "$H_TMP/web.key"
sed '/^web:/,$ s/^  db_pool: 4$/  db_pool: 1\n  tls_cert_file: web.pem\n  tls_key_file: web.key/' "$CFG" >"$H_TMP/tls.yaml"
TLS_LOG="$H_TMP/web-tls.log"
"$WEB_BIN" -c "$H_TMP/tls.yaml" >>"$TLS_LOG" 2>&1 &
TLS_PID=$!
H_PIDS+=("$TLS_PID")
H_LOGS+=("$TLS_LOG")
h_wait_until 60 grep -q 'event=web.listening' "$TLS_LOG" || { cat "$TLS_LOG" >&2; exit 1; }
TLS_URL="https://127.0.0.1:$(grep -m1 'event=web.listening' "$TLS_LOG" | grep -o '(port [0-9]*' | tr -dc 0-9)"
h_match "over HTTPS" "$(cat "$TLS_LOG")" "a second amtacs-web serves HTTPS"
st=$(curl -sS -o "$H_TMP/body" -D "$H_TMP/hdr" -w '%{http_code}' --cacert "$H_TMP/web.pem" \
    -H 'Content-Type: application/json' --data "{\"user\":\"olga\",\"password\":\"$pw\"}" "$TLS_URL/api/v1/login")
h_eq 200 "$st" "olga logs in over HTTPS"
h_match '^amtacs_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200; Secure$' \
    "$(hdr Set-Cookie)" "the cookie is marked Secure under HTTPS"
h_eq 000 "$(curl -s -o /dev/null -w '%{http_code}' "${TLS_URL/https/http}/api/v1/me" || true)" \
    "plain HTTP gets no answer there"
kill -TERM "$TLS_PID"
wait "$TLS_PID" && rc=0 || rc=$?
h_eq 0 "$rc" "the HTTPS amtacs-web stops cleanly"

# --- secrets never in the log; a clean stop --------------------------------------------------
h_eq 0 "$(grep -c -e "$pw" -e "${TOKEN#amtacs_}" -e "$(csrf sam)" "$WEB_LOG" || true)" \
    "no password, token or CSRF token in amtacs-web's log"
kill -TERM "$WEB_PID"
wait "$WEB_PID" && rc=0 || rc=$?
h_eq 0 "$rc" "amtacs-web stops cleanly on SIGTERM"
h_match "event=web.stop" "$(cat "$WEB_LOG")" "and says so"

# --- every answer received above validates against the OpenAPI document ----------------------
h_web_check_answers

h_daemons_stop
