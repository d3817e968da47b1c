#!/usr/bin/env bash
# amt-batch-sim, the REST basics and the process: command line (--check, bad
# arguments, --help, port file, startup line, SIGTERM), heartbeat, logon,
# tokens (missing, unknown, expired, /sim/tokens/expire, lifetime), API users
# added at run time, MonitorJobs and its feature switch.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

source "$(dirname "${BASH_SOURCE[0]}")/../lib/simapi.sh"

# --- helpers of this file -----------------------------------------------------
# ----------------------------------------------------------------------------

### command line ###############################################################

out=$("$SIM_BIN" --check --catalog "$CATALOG" 2>&1)
h_match '^catalog OK' "$out" "--check accepts the shipped catalog"

cat >"$H_TMP/bad.yaml" <<'EOF'
first_request_id: 10
api_users:
  - {name: u, password: p}
applications:
  - name: APP
    user: U
    colour: blue
    jobs:
      - name: J
        duration: 5
        final: 2
        messages:
          - {at: 1, text: "{nosuch}"}
EOF
rc=0
out=$("$SIM_BIN" --check --catalog "$H_TMP/bad.yaml" 2>&1) || rc=$?
h_eq 1 "$rc" "--check of a bad catalog exits 1"
h_match "bad\\.yaml:7:5: unknown key 'colour'" "$out" "--check names file:line:column of an unknown key"
h_match "bad\\.yaml:11:16: final must be a final code" "$out" "--check reports a non-final 'final'"
h_match "bad\\.yaml:13:27: unknown placeholder '\\{nosuch\\}'" "$out" "--check reports an unknown placeholder"

rc=0
out=$("$SIM_BIN" --listen 127.0.0.1:0 --catalog "$CATALOG" --time-scale -1 2>&1) || rc=$?
h_eq 2 "$rc" "a bad --time-scale exits 2"
h_match 'time-scale' "$out" "... and says which option is wrong"
rc=0
"$SIM_BIN" --catalog "$CATALOG" >/dev/null 2>&1 || rc=$?
h_eq 2 "$rc" "a missing --listen exits 2"
rc=0
"$SIM_BIN" --listen 127.0.0.1:0 --catalog "$CATALOG" --clock 25:00:00 >/dev/null 2>&1 || rc=$?
h_eq 2 "$rc" "a bad --clock exits 2"
rc=0
"$SIM_BIN" --listen nonsense --catalog "$CATALOG" >/dev/null 2>&1 || rc=$?
h_eq 2 "$rc" "--listen without a port exits 2"
rc=0
"$SIM_BIN" --frobnicate >/dev/null 2>&1 || rc=$?
h_eq 2 "$rc" "an unknown option exits 2"
out=$("$SIM_BIN" --help)
h_match '--time-scale F' "$out" "--help lists the options"

# Own instance to check the startup line, the port file and a clean SIGTERM.
"$SIM_BIN" --listen 127.0.0.1:0 --port-file "$H_TMP/own.port" --catalog "$CATALOG" \
    >"$H_TMP/own.out" 2>"$H_TMP/own.err" &
own=$!
h_wait_until 30 test -s "$H_TMP/own.port" || true
port=$(cat "$H_TMP/own.port")
h_match '^[0-9]+$' "$port" "the port file holds the bound port"
h_wait_until 30 grep -q listening "$H_TMP/own.out" || true
h_eq "amt-batch-sim listening on http://127.0.0.1:$port" "$(head -n 1 "$H_TMP/own.out")" \
    "startup line names the URL"
h_eq ok "$(curl -fsS "http://127.0.0.1:$port/api/heartbeat" | jq -r .status)" "it answers on that port"
kill -TERM "$own"
rc=0
wait "$own" || rc=$?
h_eq 0 "$rc" "SIGTERM stops it with exit status 0"

### heartbeat and logon ########################################################

h_sim_start --verbose
call GET /api/heartbeat
h_eq 200 "$STATUS" "heartbeat needs no token"
h_eq '{"status":"ok","amtVersion":"8.0.24223.0","features":["MonitorJobs","IdempotentStart"]}' "$(jq -c . <<<"$BODY")" \
    "heartbeat answer"
h_match 'application/json' "$(curl -sS -o /dev/null -w '%{content_type}' "$H_SIM_URL/api/heartbeat")" \
    "answers are application/json"

call POST /api/logon '{"user":"amtopcon","password":"amtopcon-secret"}'
h_eq 200 "$STATUS" "logon with the right password"
h_match '^[0-9a-f]{64}$' "$(jq -r .AmtLogonToken <<<"$BODY")" "logon returns a random token"
h_eq 3600 "$(jq -r .expiresIn <<<"$BODY")" "expiresIn is the token lifetime"
TOKEN=$(jq -r .AmtLogonToken <<<"$BODY")
call POST /api/logon '{"user":"amtopcon","password":"amtopcon-secret"}'
h_eq false "$([ "$(jq -r .AmtLogonToken <<<"$BODY")" = "$TOKEN" ] && echo true || echo false)" \
    "every logon gets a new token"
call POST /api/logon '{"user":"amtopcon","password":"wrong"}'
h_eq "401 24" "$STATUS $(jq -r .errorCode <<<"$BODY")" "wrong password: 401, errorCode 24"
call POST /api/logon '{"user":"nobody","password":"amtopcon-secret"}'
h_eq "401 24" "$STATUS $(jq -r .errorCode <<<"$BODY")" "unknown user: 401, errorCode 24"
call POST /api/logon '{"user":"amtopcon"}'
h_eq 400 "$STATUS" "logon without a password: 400"
call POST /api/logon '{"user":"opconbatch","password":"opconbatch-secret"}'
h_eq 200 "$STATUS" "the second API user logs on"
! grep -q -- "$TOKEN" "$H_TMP"/sim.*.log
h_eq 0 $? "tokens never appear in the log"

### tokens #####################################################################

logon
saved=$TOKEN
TOKEN=""
call GET /api/MonitorJob/4280
h_eq "401 24" "$STATUS $(jq -r .errorCode <<<"$BODY")" "missing token: 401, errorCode 24"
TOKEN=0000000000000000000000000000000000000000000000000000000000000000
call GET /api/MonitorJob/4280
h_eq "401 24" "$STATUS $(jq -r .errorCode <<<"$BODY")" "unknown token: 401, errorCode 24"
TOKEN=$saved
call GET /api/MonitorJob/4280
h_eq 404 "$STATUS" "a valid token gets past authentication (unknown id: 404)"
call POST /sim/tokens/expire
h_match '^200 [1-9]' "$STATUS $(jq -r .expired <<<"$BODY")" "/sim/tokens/expire expires every token"
call GET /api/MonitorJob/4280
h_eq "401 24" "$STATUS $(jq -r .errorCode <<<"$BODY")" "expired token: 401, errorCode 24"
logon
call GET /api/MonitorJob/4280
h_eq 404 "$STATUS" "a new logon works after the expiry"

# 3 s: long enough for the next call to come in time on a busy machine; the
# expiry is then waited for
call PUT /sim/config '{"token_lifetime":3}'
h_eq "200 3" "$STATUS $(jq -r .token_lifetime <<<"$BODY")" "PUT /sim/config sets the token lifetime"
logon
h_eq 3 "$(curl -sS -X POST --data '{"user":"amtopcon","password":"amtopcon-secret"}' "$H_SIM_URL/api/logon" | jq .expiresIn)" \
    "new tokens carry the new lifetime"
call GET /api/MonitorJob/4280
h_eq 404 "$STATUS" "the short-lived token works at first"
refused_now() { call GET /api/MonitorJob/4280; [ "$STATUS" = 401 ]; }
h_wait_until 30 refused_now || true
h_eq "401 24" "$STATUS $(jq -r .errorCode <<<"$BODY")" "... and is refused once its lifetime has passed"
call PUT /sim/config '{"token_lifetime":3600}'
call PUT /sim/config '{"token_lifetime":"long"}'
h_eq 400 "$STATUS" "PUT /sim/config refuses a bad lifetime"

### API users at run time ######################################################

call POST /sim/users '{"name":"newuser","password":"s3cret"}'
h_eq "200 true" "$STATUS $(jq -r .created <<<"$BODY")" "POST /sim/users adds a user"
call POST /api/logon '{"user":"newuser","password":"s3cret"}'
h_eq 200 "$STATUS" "the new user logs on"
call POST /sim/users '{"name":"amtopcon","password":"changed"}'
h_eq "200 false" "$STATUS $(jq -r .created <<<"$BODY")" "POST /sim/users changes a password"
call POST /api/logon '{"user":"amtopcon","password":"amtopcon-secret"}'
h_eq 401 "$STATUS" "the old password is refused"
call POST /api/logon '{"user":"amtopcon","password":"changed"}'
h_eq 200 "$STATUS" "the new password works"
TOKEN=$(jq -r .AmtLogonToken <<<"$BODY")

### MonitorJobs ################################################################

start '"jobName":"LONGRUNNINGREPORT"'
a=$ID
start '"jobName":"INSTANT"'
b=$ID
call POST /api/MonitorJobs "{\"ids\":[$a,$b,99999]}"
h_eq 200 "$STATUS" "MonitorJobs answers"
h_eq "$a:2 $b:4" "$(jq -r '[.jobs[] | "\(.BatchRequestId):\(.code)"] | join(" ")' <<<"$BODY")" \
    "MonitorJobs reports each known id"
h_eq '[99999]' "$(jq -c .unknown <<<"$BODY")" "MonitorJobs lists unknown ids"
call POST /api/MonitorJobs '{"ids":"all"}'
h_eq 400 "$STATUS" "MonitorJobs with a non-array: 400"
call POST /api/MonitorJobs "{\"ids\":[$(seq -s, 1 10001)]}"
h_eq 400 "$STATUS" "MonitorJobs with more than 10000 ids: 400"

call PUT /sim/config '{"features":[]}'
h_eq '[]' "$(curl -fsS "$H_SIM_URL/api/heartbeat" | jq -c .features)" "features can be switched off"
call POST /api/MonitorJobs "{\"ids\":[$a]}"
h_eq 404 "$STATUS" "without the feature MonitorJobs is 404"
call PUT /sim/config '{"features":["MonitorJobs"]}'
call POST /api/MonitorJobs "{\"ids\":[$a]}"
h_eq 200 "$STATUS" "switched back on it answers again"

# Without IdempotentStart the server behaves like one that starts a repeated taskId again.
tid=$(uuid)
body="{\"action\":\"Start\",\"taskId\":\"$tid\",\"applicationName\":\"DEMO2\",\"amtSubmitUser\":\"BATCH\",\"amtStation\":\"OPCON\",\"jobName\":\"INSTANT\"}"
call POST /api/OpConJobAction "$body"; first=$(jq -r .BatchRequestId <<<"$BODY")
call POST /api/OpConJobAction "$body"; second=$(jq -r .BatchRequestId <<<"$BODY")
h_eq 1 "$([ "$first" != "$second" ] && echo 1 || echo 0)" "without IdempotentStart a repeated taskId starts a second request ($first, $second)"
h_eq 2 "$(curl -fsS "$H_SIM_URL/sim/tasks" | jq "[.tasks[] | select(.taskId == \"$tid\")] | length")" \
    "/sim/tasks shows the taskId twice"
call PUT /sim/config '{"features":["MonitorJobs","IdempotentStart"]}'
call POST /api/OpConJobAction "$body"
h_eq "$first" "$(jq -r .BatchRequestId <<<"$BODY")" "with IdempotentStart back on, the taskId returns its first request"

call GET /sim/counters
h_eq 1 "$(jq -r .routes.monitor_jobs <<<"$BODY" | awk '{print ($1 >= 1)}')" "counters count requests per route"
h_match '^[1-9]' "$(jq -r .logon_failures <<<"$BODY")" "counters count logon failures"

### TLS ########################################################################

if command -v openssl >/dev/null 2>&1; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$H_TMP/key.pem" -out "$H_TMP/cert.pem" \
        -days 1 -subj /CN=localhost >/dev/null 2>&1
    "$SIM_BIN" --listen 127.0.0.1:0 --port-file "$H_TMP/tls.port" --catalog "$CATALOG" \
        --tls-cert "$H_TMP/cert.pem" --tls-key "$H_TMP/key.pem" >"$H_TMP/tls.out" 2>/dev/null &
    H_PIDS+=($!)
    h_wait_until 30 test -s "$H_TMP/tls.port" || true
    h_wait_until 30 grep -q listening "$H_TMP/tls.out" || true
    h_match '^amt-batch-sim listening on https://' "$(head -n 1 "$H_TMP/tls.out")" "--tls-cert/--tls-key serve HTTPS"
    h_eq ok "$(curl -fsS --cacert "$H_TMP/cert.pem" --resolve "localhost:$(cat "$H_TMP/tls.port"):127.0.0.1" \
        "https://localhost:$(cat "$H_TMP/tls.port")/api/heartbeat" | jq -r .status)" "heartbeat over HTTPS"
fi
rc=0
"$SIM_BIN" --listen 127.0.0.1:0 --catalog "$CATALOG" --tls-cert "$H_TMP/cert.pem" >/dev/null 2>&1 || rc=$?
h_eq 2 "$rc" "--tls-cert without --tls-key exits 2"
