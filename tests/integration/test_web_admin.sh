#!/usr/bin/env bash
# amtacs-web's operate, administration and statistics endpoints over real
# HTTP, with a real PostgreSQL, simulator and daemon: resolve and rerun
# (linked both ways; the rerun runs to its end), Batch Users (a password set
# over HTTP is sealed with the public key and the daemon logs on with it),
# console users and API tokens, /stats against SQL counts, the time filters
# of GET /jobs, the connections' counts and settings, the client address
# behind a proxy (X-Forwarded-For / Forwarded, only with web.behind_proxy).
# Every endpoint for every role and a token: allowed where PostgreSQL grants
# it, else 403 with PostgreSQL's reason; audit rows name actor and address;
# hostile bodies get 400 naming the fault.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
h_sql -c "CREATE ROLE admin1 LOGIN IN ROLE acs_admin" >/dev/null
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null

# The simulator knows a second Batch User whose password only the test knows:
# it reaches the database only sealed by amtacs-web.
BU_PW='webbu-Secret-3!'
curl -fsS --max-time 5 -X POST "$H_SIM_URL/sim/users" \
    --data "{\"name\":\"webbu\",\"password\":\"$BU_PW\"}" >/dev/null

CFG="$H_TMP/amtacs.yaml"
H_CONN_EXTRA="    allow_kill: true
    retain_log_days: 9
  - name: WEBCONN
    url: $H_SIM_URL
    batch_user: webbu
    poll:
      initial_delay: 20ms
      interval: 50ms
      max_interval: 200ms" h_daemon_config "$CFG"
cat >>"$CFG" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "$(conn web1) application_name=amtacs-web"
  db_pool: 2
CONF
h_web_start "$CFG"
URL=$H_WEB_URL

pw=correct-horse-battery
for u in vera:viewer sam:scheduler olga:operator adam:admin; do
    printf '%s\n' "$pw" | ctl_as admin1 user add "${u%%:*}" --role "${u##*:}" >/dev/null
done
TOKEN=$(ctl_as admin1 token create --name robot --role scheduler 2>/dev/null)

req() { h_web_req "$@"; }
login() {
    local st
    st=$(req POST /api/v1/login -c "$H_TMP/jar.$1" -H 'Content-Type: application/json' \
        --data "{\"user\":\"$1\",\"password\":\"${2:-$pw}\"}")
    if [ "$st" = 200 ]; then jq -r .csrf_token "$H_TMP/body" >"$H_TMP/csrf.$1"; fi
    echo "$st"
}
# as WHO METHOD PATH [curl args]: WHO's session with its CSRF token, or the
# bearer token for WHO=robot
as() {
    local u=$1 m=$2 p=$3
    shift 3
    if [ "$u" = robot ]; then
        req "$m" "$p" -H "Authorization: Bearer $TOKEN" "$@"
    else
        req "$m" "$p" -b "$H_TMP/jar.$u" -H "X-CSRF-Token: $(cat "$H_TMP/csrf.$u")" "$@"
    fi
}
J=(-H "Content-Type: application/json")
# (the daemon's own purge, a second after its start, is audited too: not ours)
last_audit() { h_sql -c "SELECT concat_ws('|', actor, coalesce(address, '-'), role, action, target)
                           FROM acs.audit WHERE action <> 'purge' ORDER BY id DESC LIMIT 1"; }
for u in vera sam olga adam; do h_eq 200 "$(login $u)" "$u logs in"; done

# refused METHOD PATH BODY REASON WHO...: each is refused by PostgreSQL (403,
# its "permission denied ..." as the detail)
refused() {
    local m=$1 p=$2 data=$3 reason=$4 u st d args=()
    shift 4
    [ -n "$data" ] && args=("${J[@]}" --data "$data")
    for u in "$@"; do
        st=$(as "$u" "$m" "$p" "${args[@]}")
        d=$(detail)
        if [ "$st" = 403 ] && [ "$d" = "$reason" ]; then
            h_ok "$u: $m $p refused by PostgreSQL: $d"
        else
            h_not_ok "$u: $m $p must be 403 '$reason', got $st $(body)"
        fi
    done
}

h_daemon_start "$CFG"
h_daemon_ready

# --- Batch Users: set over HTTP, sealed with the public key; the daemon opens it -------
refused PUT /api/v1/batch-users/webbu/password "{\"password\":\"$BU_PW\"}" \
    "permission denied for table batch_users" vera sam olga robot
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.batch_users WHERE name = 'webbu'")" \
    "no refused request stored anything"
h_eq 200 "$(as adam PUT /api/v1/batch-users/webbu/password "${J[@]}" --data "{\"password\":\"$BU_PW\"}")" \
    "adam sets Batch User webbu's password over HTTP"
keyid=$(h_sql -c "SELECT key_id FROM acs.batch_users WHERE name = 'amtopcon'")
h_eq "webbu|$keyid|true" "$(jq -r '"\(.name)|\(.key_id)|\(.created)"' "$H_TMP/body")" \
    "sealed with the key of the daemon's key_file.pub, as amtacsctl seals (a new Batch User)"
h_eq "adam|127.0.0.1|acs_admin|batch_user_set|webbu" "$(last_audit)" "audited as adam from 127.0.0.1"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.batch_users WHERE name = 'webbu'
                     AND octet_length(sealed_password) = 1585 AND get_byte(sealed_password, 0) = 2
                     AND position(convert_to('$BU_PW', 'UTF8') IN sealed_password) = 0")" \
    "the database holds it sealed (version 2, padded), never in clear"
h_eq 200 "$(as adam GET /api/v1/batch-users)" "adam lists the Batch Users"
h_eq "amtopcon:AMTDEMO webbu:WEBCONN" "$(jq -r '[.batch_users[] | "\(.name):\(.connections | join(","))"] | join(" ")' "$H_TMP/body")" \
    "names with the connections that use them"
h_eq "" "$(jq -r '.batch_users[] | keys[] | select(test("pass|seal"))' "$H_TMP/body")" \
    "and never a password or sealed bytes"
refused GET /api/v1/batch-users "" "permission denied for table batch_users" vera sam olga robot
wj=$(h_sql -c "SELECT acs.submit_batch_job('WEBCONN', 'DEMO2', 'INSTANT')")
h_wait_sql 60 "finished|4" "SELECT state || '|' || completion_code FROM acs.jobs WHERE id = $wj" &&
    h_ok "a job of WEBCONN runs to DONE: the daemon logged on as webbu with the password set over HTTP" ||
    h_not_ok "a job of WEBCONN runs to DONE (the daemon unseals webbu's password)"
h_eq 400 "$(as adam PUT /api/v1/batch-users/webbu/password "${J[@]}" --data '{"password":""}')" \
    "an empty password is 400"
h_eq 400 "$(as adam PUT /api/v1/batch-users/webbu/password "${J[@]}" --data '{"password":7}')" \
    "a password that is not a string is 400"
h_eq "field 'password' must be a string" "$(detail)" "naming the field"
h_eq 400 "$(as adam PUT /api/v1/batch-users/webbu/password "${J[@]}" --data '{"password":"x","user":"y"}')" \
    "an unknown field is 400"
h_eq "unknown field 'user'; the fields are password" "$(detail)" "naming it"

# --- resolve: jobs in doubt on a connection no daemon serves ---------------------------
h_sql -c "SELECT acs.register_connection('NODAEMON', 'enabled')" >/dev/null
doubt() { # a job of NODAEMON, claimed and put in doubt as a daemon would
    local id
    id=$(h_sql -c "SELECT acs.submit_batch_job('NODAEMON', 'DEMO2', 'INSTANT')")
    h_sql -c "SELECT count(*) FROM acs.claim_jobs('tester', 'NODAEMON', 1, 3600, false)" >/dev/null
    h_sql -c "SELECT acs.job_in_doubt($id, 'tester', 1, 'test: no answer to Start')" >/dev/null
    echo "$id"
}
d1=$(doubt)
h_eq in_doubt "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $d1")" "job $d1 is in doubt"
refused POST "/api/v1/jobs/$d1/resolve" '{"action":"fail"}' \
    "permission denied for function resolve_in_doubt" vera sam robot
h_eq 400 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":"zap"}')" \
    "an unknown action is 400"
h_eq "unknown action 'zap'; use restart, fail or follow" "$(detail)" "with the SQL function's message"
h_eq 400 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":"follow"}')" \
    "follow without a BatchRequestId is 400"
h_eq "follow needs the BatchRequestId the server gave the job" "$(detail)" "saying what it needs"
h_eq 400 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":"follow","batch_request_id":1.5}')" \
    "a batch_request_id that is not an integer is 400"
h_eq "field 'batch_request_id' must be an integer (32 bits) or null" "$(detail)" "naming the field"
h_eq 400 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":"fail","force":true}')" \
    "an unknown field is 400"
h_eq 400 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":["fail"]}')" \
    "a wrong type is 400"
h_eq 400 "$(as olga POST "/api/v1/jobs/$d1/resolve")" "no body is 400"
h_eq in_doubt "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $d1")" "none of them changed the job"
h_eq 200 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":"fail"}')" \
    "olga resolves job $d1 as failed"
h_eq "$d1|fail|finished" "$(jq -r '"\(.id)|\(.action)|\(.state)"' "$H_TMP/body")" "the answer says what became of it"
h_eq "finished|19|failure" "$(h_sql -c "SELECT concat_ws('|', state, completion_code, result) FROM acs.jobs WHERE id = $d1")" \
    "the job ended with code 19, failure"
h_eq "olga|127.0.0.1|acs_operator|resolve|$d1" "$(last_audit)" "audited as olga from 127.0.0.1"
h_eq 200 "$(as vera GET "/api/v1/jobs/$d1/log")" "its log"
h_match "Completion Code : UNDEFINED" "$(body)" "is in the reference layout, as amtacsctl resolve --fail writes it"
h_match "amtacs: test: no answer to Start; the job was in doubt and olga resolved it as failed" "$(body)" \
    "and names who resolved it"
h_eq olga "$(h_sql -c "SELECT acknowledged_by FROM acs.alerts WHERE job_id = $d1 AND name = 'START_IN_DOUBT'")" \
    "and its START_IN_DOUBT alert is acknowledged by olga"
h_eq 409 "$(as olga POST "/api/v1/jobs/$d1/resolve" "${J[@]}" --data '{"action":"fail"}')" \
    "resolving it again is 409"
h_eq "job $d1 is finished, not in doubt; there is nothing to resolve" "$(detail)" "saying why"
h_eq 404 "$(as olga POST /api/v1/jobs/999999/resolve "${J[@]}" --data '{"action":"fail"}')" "an unknown job is 404"
d2=$(doubt)
h_eq 200 "$(as adam POST "/api/v1/jobs/$d2/resolve" "${J[@]}" --data '{"action":"restart"}')" \
    "adam resolves job $d2 with restart"
h_eq "queued" "$(jq -r .state "$H_TMP/body")" "and it is queued again"
h_eq "adam|127.0.0.1|acs_admin|resolve|$d2" "$(last_audit)" "audited as adam"

# --- rerun: linked both ways, runs to its end ------------------------------------------
orig=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT', '{}', NULL, NULL, 'order-9')")
h_wait_sql 60 finished "SELECT state FROM acs.jobs WHERE id = $orig" || h_not_ok "job $orig ends"
refused POST "/api/v1/jobs/$orig/rerun" "" "permission denied for function rerun_job" vera sam robot
h_eq 201 "$(as olga POST "/api/v1/jobs/$orig/rerun")" "olga reruns job $orig"
rr=$(jq -r .id "$H_TMP/body")
h_eq "$orig" "$(jq -r .rerun_of "$H_TMP/body")" "the answer names the original"
h_eq "/api/v1/jobs/$rr" "$(hdr Location)" "and the new job's Location"
h_eq "olga|127.0.0.1|acs_operator|rerun|$rr" "$(last_audit)" "audited as olga from 127.0.0.1"
h_eq "$orig" "$(h_sql -c "SELECT rerun_of FROM acs.jobs WHERE id = $rr")" "acs.jobs.rerun_of links the rerun to its original"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.jobs a JOIN acs.jobs b ON b.id = $rr
                     WHERE a.id = $orig AND a.connection = b.connection AND a.kind = b.kind
                       AND a.application = b.application AND a.job_name = b.job_name
                       AND a.task_values = b.task_values AND a.external_ref = b.external_ref
                       AND a.task_id <> b.task_id")" "with the same spec and a new taskId"
h_eq 200 "$(as vera GET "/api/v1/jobs/$rr")" "the rerun's document"
h_eq "$orig" "$(jq -r .rerun_of "$H_TMP/body")" "names its original"
h_eq 200 "$(as vera GET "/api/v1/jobs/$orig")" "the original's document"
h_eq "[$rr]" "$(jq -c .reruns "$H_TMP/body")" "lists its rerun"
h_wait_sql 60 "finished|4" "SELECT state || '|' || completion_code FROM acs.jobs WHERE id = $rr" &&
    h_ok "the rerun runs to its end on the simulator (DONE)" || h_not_ok "the rerun runs to its end"
h_eq 201 "$(as adam POST "/api/v1/jobs/$orig/rerun")" "adam reruns it too"
h_eq 200 "$(as vera GET "/api/v1/jobs/$orig")" "and the original"
h_eq 2 "$(jq '.reruns | length' "$H_TMP/body")" "lists both reruns"
long=$(h_sql -c "SELECT acs.submit_batch_job('NODAEMON', 'DEMO2', 'INSTANT')")
h_eq 409 "$(as olga POST "/api/v1/jobs/$long/rerun")" "a job that has not ended cannot be rerun (409)"
h_match "^job $long is queued; only a job that has ended can be rerun" "$(detail)" "saying why"
h_sql -c "CREATE ROLE operator1 LOGIN IN ROLE acs_operator" >/dev/null
cr=$(ctl_as operator1 rerun "$orig")
h_eq "$orig" "$(h_sql -c "SELECT rerun_of FROM acs.jobs WHERE id = ${cr:-0}")" \
    "amtacsctl rerun (as an operator's login) makes a rerun too"
out=$(ctl_as operator1 rerun "$long" 2>&1) && rc=0 || rc=$?
h_match "^1\|.*only a job that has ended can be rerun" "$rc|$out" "and refuses one that has not ended, saying why"
h_eq 400 "$(as olga POST "/api/v1/jobs/$orig/rerun" "${J[@]}" --data '{"id":1}')" "a rerun takes no fields (400)"
h_eq 404 "$(as olga POST /api/v1/jobs/999999/rerun)" "an unknown job is 404"

# --- submit: the scheduler role and above ----------------------------------------------
SUBMIT='{"kind":"batch","connection":"NODAEMON","application":"DEMO2","name":"INSTANT"}'
for u in sam olga adam robot; do
    h_eq 201 "$(as $u POST /api/v1/jobs "${J[@]}" --data "$SUBMIT")" "$u may submit"
done
refused POST /api/v1/jobs "$SUBMIT" "permission denied for function submit_jobs" vera

# --- console users ------------------------------------------------------------------------
refused GET /api/v1/users "" "permission denied for view web_user_list" vera sam olga robot
h_eq 200 "$(as adam GET /api/v1/users)" "adam lists the users"
h_eq "adam:admin olga:operator sam:scheduler vera:viewer" \
    "$(jq -r '[.users[] | "\(.name):\(.role)"] | join(" ")' "$H_TMP/body")" "with their roles"
h_eq "" "$(jq -r '.users[] | keys[] | select(test("hash|^password$"))' "$H_TMP/body")" "and no password hash"
NEWPW='tr0ub4dor&3-long'
refused POST /api/v1/users "{\"name\":\"nina\",\"role\":\"viewer\",\"password\":\"$NEWPW\"}" \
    "permission denied for function web_user_add" vera sam olga robot
h_eq 400 "$(as adam POST /api/v1/users "${J[@]}" --data '{"name":"nina","role":"viewer","password":"short"}')" \
    "a short password is 400"
h_match "at least 12 characters" "$(detail)" "saying how long it must be"
h_eq 400 "$(as adam POST /api/v1/users "${J[@]}" --data "{\"name\":\"nina\",\"role\":\"boss\",\"password\":\"$NEWPW\"}")" \
    "an unknown role is 400"
h_eq "role 'boss' is not one of viewer, scheduler, operator, admin" "$(detail)" "with the SQL function's message"
h_eq 400 "$(as adam POST /api/v1/users "${J[@]}" --data "{\"name\":\"nina\",\"role\":\"viewer\",\"password\":\"$NEWPW\",\"admin\":true}")" \
    "an unknown field is 400"
h_eq 400 "$(as adam POST /api/v1/users "${J[@]}" --data '{"name":"nina","role":"viewer","password":123456789012}')" \
    "a password that is not a string is 400"
h_eq 201 "$(as adam POST /api/v1/users "${J[@]}" --data "{\"name\":\"nina\",\"role\":\"viewer\",\"password\":\"$NEWPW\"}")" \
    "adam adds user nina"
h_eq "adam|127.0.0.1|acs_admin|user_add|nina" "$(last_audit)" "audited as adam"
h_eq 409 "$(as adam POST /api/v1/users "${J[@]}" --data "{\"name\":\"nina\",\"role\":\"viewer\",\"password\":\"$NEWPW\"}")" \
    "adding her again is 409"
h_eq "user nina exists already" "$(detail)" "saying so"
h_eq 200 "$(login nina "$NEWPW")" "nina logs in with the password set over HTTP"
h_match '^\$argon2id\$' "$(h_sql -c "SELECT password_hash FROM acs.web_users WHERE name = 'nina'")" \
    "only its argon2id hash is stored"
refused PUT /api/v1/users/nina/role '{"role":"operator"}' \
    "permission denied for function web_user_set_role" vera sam olga robot
h_eq 200 "$(as adam PUT /api/v1/users/nina/role "${J[@]}" --data '{"role":"operator"}')" "adam makes nina an operator"
h_eq "nina|viewer|operator" "$(jq -r '"\(.name)|\(.from)|\(.to)"' "$H_TMP/body")" "the answer says from and to"
h_eq 200 "$(as nina GET /api/v1/me)" "nina's session"
h_eq operator "$(jq -r .role "$H_TMP/body")" "takes the new role at once"
refused PUT /api/v1/users/nina/password "{\"password\":\"$NEWPW-2\"}" \
    "permission denied for function web_user_set_password" vera sam olga robot
h_eq 200 "$(as adam PUT /api/v1/users/nina/password "${J[@]}" --data "{\"password\":\"$NEWPW-2\"}")" \
    "adam sets nina's password"
h_eq 1 "$(jq -r .sessions_ended "$H_TMP/body")" "which ends her session"
h_eq 401 "$(as nina GET /api/v1/me)" "her old session is 401"
h_eq 401 "$(login nina "$NEWPW")" "the old password no longer logs in"
h_eq 200 "$(login nina "$NEWPW-2")" "the new one does"
refused POST /api/v1/users/nina/disable "" "permission denied for function web_user_disable" vera sam olga robot
h_eq 200 "$(as adam POST /api/v1/users/nina/disable)" "adam disables nina"
h_eq "true|1" "$(jq -r '"\(.disabled)|\(.sessions_ended)"' "$H_TMP/body")" "ending her session"
h_eq 401 "$(login nina "$NEWPW-2")" "she cannot log in"
refused POST /api/v1/users/nina/enable "" "permission denied for function web_user_enable" vera sam olga robot
h_eq 200 "$(as adam POST /api/v1/users/nina/enable)" "adam enables her again"
h_eq "adam|127.0.0.1|acs_admin|user_enable|nina" "$(last_audit)" "audited as adam"
h_eq 200 "$(login nina "$NEWPW-2")" "she logs in again"
h_eq 404 "$(as adam POST /api/v1/users/nobody/disable)" "an unknown user is 404"
h_eq "no user 'nobody'" "$(detail)" "saying so"

# --- API tokens ---------------------------------------------------------------------------
refused GET /api/v1/tokens "" "permission denied for view api_token_list" vera sam olga robot
refused POST /api/v1/tokens '{"name":"ci","role":"viewer"}' \
    "permission denied for function api_token_create" vera sam olga robot
h_eq 400 "$(as adam POST /api/v1/tokens "${J[@]}" --data '{"name":["ci"],"role":"viewer"}')" "a wrong type is 400"
h_eq "field 'name' must be a string" "$(detail)" "naming the field"
h_eq 201 "$(as adam POST /api/v1/tokens "${J[@]}" --data '{"name":"ci","role":"operator"}')" "adam creates token ci"
CI=$(jq -r .token "$H_TMP/body")
h_match '^amtacs_[A-Za-z0-9_-]{43}$' "$CI" "shown once in the answer"
h_eq "adam|127.0.0.1|acs_admin|token_create|ci" "$(last_audit)" "audited as adam"
h_eq 200 "$(req GET /api/v1/me -H "Authorization: Bearer $CI")" "the new token works"
h_eq "token:ci|operator" "$(jq -r '"\(.user)|\(.role)"' "$H_TMP/body")" "with its role"
h_eq 200 "$(as adam GET /api/v1/tokens)" "adam lists the tokens"
h_eq "ci:operator robot:scheduler" "$(jq -r '[.tokens[] | "\(.name):\(.role)"] | join(" ")' "$H_TMP/body")" "by name and role"
h_eq 0 "$(grep -c "${CI#amtacs_}" "$H_TMP/body")" "without the token itself"
refused DELETE /api/v1/tokens/ci "" "permission denied for function api_token_revoke" vera sam olga robot
h_eq 200 "$(as adam DELETE /api/v1/tokens/ci)" "adam revokes it"
h_eq "true|false" "$(jq -r '"\(.revoked)|\(.already)"' "$H_TMP/body")" "the answer says so"
h_eq "adam|127.0.0.1|acs_admin|token_revoke|ci" "$(last_audit)" "audited as adam"
h_eq 401 "$(req GET /api/v1/me -H "Authorization: Bearer $CI")" "the revoked token is 401"
h_eq 200 "$(as adam DELETE /api/v1/tokens/ci)" "revoking it again"
h_eq true "$(jq -r .already "$H_TMP/body")" "says it was revoked already"
h_eq 404 "$(as adam DELETE /api/v1/tokens/nosuch)" "an unknown token is 404"
h_eq 0 "$(cat "$H_TMP/web.log" "$H_DAEMON_LOG" | grep -c -e "$BU_PW" -e "$NEWPW" -e "${CI#amtacs_}")" \
    "no password or token in amtacs-web's or the daemon's log"

# --- connections --------------------------------------------------------------------------
h_sql -c "SELECT acs.submit_batch_job('NODAEMON', 'DEMO2', 'INSTANT')" >/dev/null
h_eq 200 "$(as olga GET /api/v1/connections)" "olga lists the connections"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'NODAEMON' AND state = 'queued'")|0|0" \
    "$(jq -r '.connections[] | select(.name == "NODAEMON") | "\(.queued)|\(.in_flight)|\(.in_doubt)"' "$H_TMP/body")" \
    "NODAEMON: queued, in flight and in doubt as SQL counts them"
h_eq "true|9|true|amtopcon|enabled" \
    "$(jq -r '.connections[] | select(.name == "AMTDEMO") | "\(.allow_kill)|\(.retain_log_days)|\(.server_ok)|\(.batch_user)|\(.comm_state)"' "$H_TMP/body")" \
    "AMTDEMO: allow_kill, retention, whether the server answers, its Batch User, comm state"
h_match '^20[0-9-]+T' "$(jq -r '.connections[] | select(.name == "AMTDEMO") | .last_contact' "$H_TMP/body")" \
    "and its last contact"
h_eq "false|30" "$(jq -r '.connections[] | select(.name == "WEBCONN") | "\(.allow_kill)|\(.retain_log_days)"' "$H_TMP/body")" \
    "WEBCONN: the defaults"
h_eq "null" "$(jq -r '.connections[] | select(.name == "AMTDEMO") | .last_error' "$H_TMP/body")" \
    "last_error is there (null: none)"

# --- stats ----------------------------------------------------------------------------------
h_wait_sql 60 0 "SELECT count(*) FROM acs.jobs WHERE connection <> 'NODAEMON' AND state <> 'finished'" ||
    h_not_ok "the jobs of the daemon's connections end"
for u in vera sam olga adam robot; do h_eq 200 "$(as $u GET /api/v1/stats)" "$u reads /stats"; done
sql_states=$(h_sql -c "SELECT concat_ws('|', count(*) FILTER (WHERE state = 'queued'),
                                              count(*) FILTER (WHERE state IN ('starting', 'running')),
                                              count(*) FILTER (WHERE state = 'in_doubt'),
                                              count(*) FILTER (WHERE state = 'finished' AND finished_at >= now() - interval '24 hours'),
                                              count(*) FILTER (WHERE result = 'failure' AND finished_at >= now() - interval '24 hours'))
                         FROM acs.jobs")
h_eq "$sql_states" "$(jq -r '.states | "\(.queued)|\(.starting + .running)|\(.in_doubt)|\(.finished_24h)|\(.failed_24h)"' "$H_TMP/body")" \
    "/stats counts by state as SQL does ($sql_states)"
h_eq "$(h_sql -c "SELECT string_agg(connection || ':' || n, ' ' ORDER BY connection) FROM
                   (SELECT connection, count(*) AS n FROM acs.jobs WHERE state <> 'finished' OR finished_at >= now() - interval '24 hours' GROUP BY 1) x")" \
    "$(jq -r '[.connections[] | "\(.connection):\(.queued + .starting + .running + .in_doubt + .finished_24h)"] | join(" ")' "$H_TMP/body")" \
    "and by connection"
h_eq "$(h_sql -c "SELECT string_agg(f || '/' || x, ' ' ORDER BY m) FROM
                   (SELECT date_trunc('minute', finished_at) AS m, count(*) AS f,
                           count(*) FILTER (WHERE result = 'failure') AS x
                      FROM acs.jobs WHERE state = 'finished' AND finished_at >= now() - interval '24 hours' GROUP BY 1) y")" \
    "$(jq -r '[.per_minute[] | "\(.finished)/\(.failed)"] | join(" ")' "$H_TMP/body")" \
    "and per minute (the non-empty minutes), finished and failed"
h_eq 1 "$(jq '[.per_minute[] | select(.failed > 0)] | length' "$H_TMP/body")" "one minute with a failure (job $d1)"
h_eq 400 "$(as vera GET '/api/v1/stats?window=1h')" "an unknown query parameter is 400"

# --- GET /jobs: time filters ------------------------------------------------------------
t=$(h_sql -c "SELECT to_char(enqueued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM acs.jobs WHERE id = $rr")
h_eq 200 "$(as vera GET "/api/v1/jobs?since=$t&limit=500")" "since=$t"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE enqueued_at >= '$t'")" "$(jq '.jobs | length' "$H_TMP/body")" \
    "returns the jobs enqueued since then"
h_eq "$rr" "$(jq -r '.jobs[-1].id' "$H_TMP/body")" "the oldest of them is job $rr"
h_eq 200 "$(as vera GET "/api/v1/jobs?until=$t&limit=500")" "until=$t"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE enqueued_at < '$t'")" "$(jq '.jobs | length' "$H_TMP/body")" \
    "returns those enqueued before (until is exclusive)"
h_eq 0 "$(jq "[.jobs[] | select(.id == $rr)] | length" "$H_TMP/body")" "without job $rr"
# pages of 2 with a time filter, each continuing at the previous one's next
ids=""; next=""
for i in $(seq 1 40); do
    h_web_req GET "/api/v1/jobs?since=$t&limit=2${next:+&before=$next}" -H "Authorization: Bearer $TOKEN" >/dev/null
    ids="$ids $(jq -r '[.jobs[].id] | join(" ")' "$H_TMP/body")"
    next=$(jq -r '.next // empty' "$H_TMP/body")
    [ -n "$next" ] || break
done
h_eq "$(h_sql -c "SELECT string_agg(id::text, ' ' ORDER BY enqueued_at DESC, id DESC) FROM acs.jobs WHERE enqueued_at >= '$t'")" \
    "$(echo $ids)" "paging through a time filter (next as before) gives every job once, newest enqueued first"
h_eq 200 "$(as vera GET "/api/v1/jobs?since=$t&until=$t")" "since = until"
h_eq 0 "$(jq '.jobs | length' "$H_TMP/body")" "is empty"
h_eq 200 "$(as vera GET "/api/v1/jobs?since=2026-01-01T00:00:00%2B01:00&connection=AMTDEMO&limit=1")" \
    "an offset and another filter are taken"
for bad in yesterday 2026-13-01T00:00:00Z 2026-11-30 "2026-11-30T25:00:00Z" "2026-11-30T02:15:00" \
    "2026-11-30T02:15:00.Z" "2026-11-30T02:15:00%2B1"; do
    h_eq 400 "$(as vera GET "/api/v1/jobs?since=$bad")" "since=$bad is 400"
done
h_match "^since must be an RFC 3339 time such as" "$(detail)" "saying what it must be"
h_eq 400 "$(as vera GET "/api/v1/jobs?until=later")" "until=later is 400"
h_match "^until must be an RFC 3339 time" "$(detail)" "naming until"

# --- the audit log (migration 0019): admins only, paged, filtered -------------------------
refused GET /api/v1/audit "" "permission denied for function audit_page" vera sam olga robot
h_eq 200 "$(as adam GET /api/v1/audit)" "adam reads the audit log"
h_eq "$(h_sql -c "SELECT concat_ws('|', id, actor, coalesce(address, '-'), role, action, coalesce(target, '-'))
                   FROM acs.audit ORDER BY id DESC LIMIT 1")" \
    "$(jq -r '.audit[0] | [.id, .actor, (.address // "-"), .role, .action, (.target // "-")] | map(tostring) | join("|")' "$H_TMP/body")" \
    "newest first: the latest row, with actor, address, role, action and target"
ids=""; next=""
for i in $(seq 1 200); do
    as adam GET "/api/v1/audit?limit=7${next:+&before=$next}" >/dev/null
    ids="$ids $(jq -r '[.audit[].id] | join(" ")' "$H_TMP/body")"
    next=$(jq -r '.next // empty' "$H_TMP/body")
    [ -n "$next" ] || break
done
h_eq "$(h_sql -c "SELECT string_agg(id::text, ' ' ORDER BY id DESC) FROM acs.audit")" "$(echo $ids)" \
    "paging by 7 (next as before) gives every row once, newest first"
h_eq 200 "$(as adam GET "/api/v1/audit?actor=adam&action=rerun&limit=500")" "filtered by actor and action"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.audit WHERE actor = 'adam' AND action = 'rerun'")|rerun|adam" \
    "$(jq -r '"\(.audit | length)|\([.audit[].action] | unique | join(","))|\([.audit[].actor] | unique | join(","))"' "$H_TMP/body")" \
    "gives exactly adam's reruns"
t=$(h_sql -c "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM acs.audit
               ORDER BY id DESC OFFSET 3 LIMIT 1")
h_eq 200 "$(as adam GET "/api/v1/audit?since=$t&limit=500")" "since=$t"
h_eq "$(h_sql -c "SELECT count(*) FROM acs.audit WHERE at >= '$t'")" "$(jq '.audit | length' "$H_TMP/body")" \
    "gives the rows at or after it"
h_eq 200 "$(as adam GET "/api/v1/audit?until=$t&limit=500")" "until=$t"
h_eq "$(h_sql -c "SELECT least(count(*), 500) FROM acs.audit WHERE at < '$t'")" "$(jq '.audit | length' "$H_TMP/body")" \
    "gives the rows before it"
h_eq 400 "$(as adam GET "/api/v1/audit?since=yesterday")" "a bad since is 400"
h_match "^since must be an RFC 3339 time" "$(detail)" "saying what it must be"
h_eq 400 "$(as adam GET "/api/v1/audit?before=x")" "a bad before is 400"
h_eq 400 "$(as adam GET "/api/v1/audit?limit=501")" "a limit over 500 is 400"
h_eq 400 "$(as adam GET "/api/v1/audit?who=adam")" "an unknown parameter is 400"
h_eq "unknown query parameter 'who'; there are before, limit, actor, action, since, until" "$(detail)" \
    "naming the known ones"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM information_schema.role_routine_grants
                     WHERE routine_name = 'audit_page' AND grantee <> 'acs_admin'
                       AND grantee <> (SELECT r.rolname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
                                        WHERE p.proname = 'audit_page')")" \
    "acs.audit_page is granted to acs_admin alone"

# --- the client address: forwarded headers only behind a proxy ---------------------------
h_eq 200 "$(as adam GET /api/v1/me -H 'X-Forwarded-For: 203.0.113.9')" "X-Forwarded-For without behind_proxy"
h_eq 127.0.0.1 "$(jq -r .address "$H_TMP/body")" "is ignored: the address is the peer's"
as adam POST "/api/v1/jobs/$orig/rerun" -H 'X-Forwarded-For: 203.0.113.9' >/dev/null
h_eq "adam|127.0.0.1|acs_admin|rerun" "$(last_audit | cut -d'|' -f1-4)" "and the audit records the peer's"

sed 's/^web:$/web:\n  behind_proxy: true/' "$CFG" >"$H_TMP/proxy.yaml"
PLOG="$H_TMP/web-proxy.log"
"$H_WEB_BIN" -c "$H_TMP/proxy.yaml" >>"$PLOG" 2>&1 &
H_PIDS+=("$!")
H_LOGS+=("$PLOG")
h_wait_until 60 grep -q 'event=web.listening' "$PLOG" || { cat "$PLOG" >&2; exit 1; }
H_WEB_URL="http://127.0.0.1:$(grep 'event=web.listening' "$PLOG" | tail -1 | grep -o '(port [0-9]*' | tr -dc 0-9)"
h_eq 200 "$(login adam)" "behind a proxy adam logs in"
h_eq 200 "$(as adam GET /api/v1/me -H 'X-Forwarded-For: 10.9.9.9, 203.0.113.9')" "X-Forwarded-For behind_proxy"
h_eq 203.0.113.9 "$(jq -r .address "$H_TMP/body")" "names the rightmost address (the one the proxy saw)"
h_eq 201 "$(as adam POST "/api/v1/jobs/$orig/rerun" -H 'X-Forwarded-For: 10.9.9.9, 203.0.113.9')" "a rerun through the proxy"
h_eq "adam|203.0.113.9|acs_admin|rerun" "$(last_audit | cut -d'|' -f1-4)" "is audited with the forwarded address"
h_eq 200 "$(as adam GET /api/v1/me -H 'X-Forwarded-For: 10.9.9.9' -H 'X-Forwarded-For: [2001:db8::7]:4711')" \
    "of two X-Forwarded-For headers"
h_eq 2001:db8::7 "$(jq -r .address "$H_TMP/body")" "the last one counts (an IPv6 address with its port)"
h_eq 200 "$(as adam GET /api/v1/me -H 'Forwarded: for=10.1.1.1, for="[2001:db8::9]";proto=https')" "Forwarded"
h_eq 2001:db8::9 "$(jq -r .address "$H_TMP/body")" "gives the for= of its last element"
h_eq 200 "$(as adam GET /api/v1/me)" "without a forwarded header"
h_eq 127.0.0.1 "$(jq -r .address "$H_TMP/body")" "the address is the proxy's"
h_eq 400 "$(as adam GET /api/v1/me -H 'X-Forwarded-For: 203.0.113.9, evil')" "a forwarded value that is not an address"
h_match "X-Forwarded-For header does not end with a client address" "$(detail)" "is 400, saying so"
h_eq 400 "$(as adam GET /api/v1/me -H 'Forwarded: proto=https')" "a Forwarded without for= is 400"
h_eq 401 "$(req POST /api/v1/login -H 'X-Forwarded-For: 198.51.100.77' "${J[@]}" \
    --data '{"user":"sam","password":"wrong-password-x"}')" "a failed login through the proxy"
h_eq 1 "$(h_sql -c "SELECT failures FROM acs.web_login_failures WHERE kind = 'address' AND key = '198.51.100.77'")" \
    "is counted for the forwarded address (login throttling)"

# every answer received above validates against the OpenAPI document
h_web_check_answers
h_daemons_stop
