#!/usr/bin/env bash
# What the web console stands on (sql/0012_web.sql), on a real PostgreSQL with
# the real amtacsctl: acs_viewer reads and changes nothing; the authenticator
# pattern (a NOINHERIT login in acs_web that SET LOCAL ROLEs per request) acts
# with exactly the user's role and records the user, never its own name;
# nobody else can pose as someone through acs.actor; console users and API
# tokens keep no secret in the database; sessions end when they must; login
# throttling counts per name and per address; the audit is admins' to read.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

H_PG_EXTRA_CONF="log_statement = 'all'" h_pg_start
h_ctl migrate >/dev/null
for r in scheduler operator admin viewer daemon; do
    h_sql -c "CREATE ROLE ${r}1 LOGIN IN ROLE acs_$r" >/dev/null
done
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
h_sql -c "SELECT acs.configure_connection('AMTDEMO', 'http://127.0.0.1:1', 'amtopcon', true, 30)" >/dev/null

as() { local who=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U "$who" "$@"; }
conn() { echo "host=$PGHOST port=$PGPORT user=$1 dbname=$PGDATABASE"; }
ctl_as() { local who=$1; shift; "$CTL_BIN" --db "$(conn "$who")" "$@"; }
# refused WHO DESCRIPTION SQL: PostgreSQL must say permission denied
refused() {
    local out
    if out=$(as "$1" -c "$3" 2>&1); then
        h_not_ok "$1 may not $2 (it could: $out)"
    elif [[ "$out" == *"permission denied"* ]]; then
        h_ok "$1 may not $2: $(head -1 <<<"$out" | sed 's/^ERROR: *//')"
    else
        h_not_ok "$1 may not $2 (refused, but not by permissions: $out)"
    fi
}
# web ROLE ACTOR ADDRESS SQL: one request of the web server, as web1 in one transaction
web() {
    as web1 -c "BEGIN" -c "SET LOCAL ROLE acs_$1" \
        -c "SELECT FROM set_config('acs.actor', '$2', true) AS a, set_config('acs.actor_address', '$3', true) AS b" \
        -c "$4" -c "COMMIT"
}
# websrv SQL: the web server's own work (login, sessions), as acs_web
websrv() { as web1 -c "SET ROLE acs_web" -c "$1"; }
last_audit() { h_sql -c "SELECT concat_ws('|', actor, coalesce(address, '-'), role, action, target)
                           FROM acs.audit ORDER BY id DESC LIMIT 1"; }
audit_count() { h_sql -c "SELECT count(*) FROM acs.audit"; }

j1=$(as scheduler1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'J1')")
j2=$(as scheduler1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'J2')")
j3=$(as scheduler1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'J3')")
h_eq "scheduler1|-|scheduler1|submit|$j3" "$(last_audit)" "a submit is audited with the login as actor and role"

# --- acs_viewer: reads, changes nothing ---------------------------------------------
h_eq queued "$(as viewer1 -c "SELECT state FROM acs.jobs WHERE id = $j1")" "viewer1 reads jobs"
h_eq J1 "$(as viewer1 -c "SELECT name FROM acs.job_results WHERE id = $j1")" "viewer1 reads job_results"
h_eq "AMTDEMO 3" "$(as viewer1 -c "SELECT name || ' ' || queued FROM acs.connection_status")" \
    "viewer1 reads connection_status"
h_eq 0 "$(as viewer1 -c "SELECT count(*) FROM acs.alerts")" "viewer1 reads alerts"
h_eq J1 "$(as viewer1 -c "SELECT acs.job_document($j1)->>'name'")" "viewer1 reads a job document"
refused viewer1 "enqueue" "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'X')"
refused viewer1 "kill a job" "SELECT acs.request_kill($j1)"
refused viewer1 "kill jobs in bulk" "SELECT * FROM acs.request_kills(ARRAY[$j1])"
refused viewer1 "change Full Comm" "SELECT acs.set_comm('AMTDEMO', 'disabled')"
refused viewer1 "read Batch Users" "SELECT name FROM acs.batch_users"
refused viewer1 "read the audit" "SELECT * FROM acs.audit"
refused viewer1 "read console users" "SELECT name FROM acs.web_users"
refused viewer1 "list console users" "SELECT name FROM acs.web_user_list"
refused viewer1 "read sessions" "SELECT user_name FROM acs.web_sessions"
refused viewer1 "read API tokens" "SELECT name FROM acs.api_tokens"
refused viewer1 "update a job" "UPDATE acs.jobs SET state = 'finished' WHERE id = $j1"
refused viewer1 "purge job logs" "SELECT acs.purge_job_logs(10)"

# --- the authenticator pattern --------------------------------------------------------
refused web1 "read jobs with its own rights (NOINHERIT)" "SELECT count(*) FROM acs.jobs"
refused web1 "read jobs as acs_web" "SET ROLE acs_web; SELECT count(*) FROM acs.jobs"
refused web1 "kill as acs_web" "SET ROLE acs_web; SELECT acs.request_kill($j1)"
out=$(web operator alice 10.0.0.7 "SELECT acs.request_kill($j1)")
h_eq queued "$out" "web1, SET LOCAL ROLE acs_operator, requests a kill for alice"
h_eq alice "$(h_sql -c "SELECT kill_requested_by FROM acs.jobs WHERE id = $j1")" \
    "kill_requested_by is the console user, not web1"
h_eq "alice|10.0.0.7|acs_operator|kill|$j1" "$(last_audit)" \
    "the audit row has the user, the address, the role set for the request and the action"
h_eq "$j2" "$(web operator alice 10.0.0.7 "SELECT job_id FROM acs.request_kills(ARRAY[$j2]) WHERE error IS NULL")" \
    "a bulk kill through the web works"
h_eq "alice|10.0.0.7|acs_operator|kill|$j2" "$(last_audit)" "and is audited job by job"
refused web1 "kill as a viewer's request" \
    "BEGIN; SET LOCAL ROLE acs_viewer; SELECT set_config('acs.actor', 'vic', true); SELECT acs.request_kill($j3)"
refused web1 "change Full Comm as an operator's request" \
    "BEGIN; SET LOCAL ROLE acs_operator; SELECT acs.set_comm('AMTDEMO', 'limited')"
# (an operator may enqueue since 0015: scheduler role or above; a viewer may not)
refused web1 "enqueue as a viewer's request" \
    "BEGIN; SET LOCAL ROLE acs_viewer; SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'X')"
out=$(as web1 -c "SET ROLE acs_daemon" 2>&1 || true)
h_match 'permission denied to set role "acs_daemon"' "$out" "web1 cannot SET ROLE acs_daemon"
out=$(as web1 -c "SET ROLE acs_owner" 2>&1 || true)
h_match 'permission denied to set role "acs_owner"' "$out" "web1 cannot SET ROLE acs_owner"
refused web1 "claim jobs in any role it can take" \
    "BEGIN; SET LOCAL ROLE acs_admin; SELECT * FROM acs.claim_jobs('x', 'AMTDEMO', 1, 30)"
h_eq "enabled" "$(web admin bob 10.0.0.8 "SELECT acs.set_comm('AMTDEMO', 'limited')")" \
    "web1 as an admin's request changes Full Comm"
h_eq "limited|bob" "$(h_sql -c "SELECT comm_state || '|' || comm_changed_by FROM acs.connections")" \
    "comm_changed_by is the console user"
h_eq "bob|10.0.0.8|acs_admin|comm|AMTDEMO" "$(last_audit)" "and the change is audited"
h_sql -c "SELECT acs.set_comm('AMTDEMO', 'enabled')" >/dev/null
j4=$(web scheduler carol 10.0.0.9 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'J4')")
h_eq "carol|10.0.0.9|acs_scheduler|submit|$j4" "$(last_audit)" "a submit through the web is carol's"
h_eq "" "$(as web1 -c "BEGIN; SET LOCAL ROLE acs_operator; COMMIT; SELECT current_user::text" |
           grep -v '^web1$' || true)" "SET LOCAL ROLE ends with the request's transaction"
alert=$(h_sql -c "INSERT INTO acs.alerts (job_id, connection, name, message)
                  VALUES ($j3, 'AMTDEMO', 'ERROR', 'test') RETURNING id")
h_eq t "$(web operator dave 10.0.0.10 "SELECT acs.acknowledge_alert($alert)")" "an alert is acknowledged through the web"
h_eq dave "$(h_sql -c "SELECT acknowledged_by FROM acs.alerts WHERE id = $alert")" "acknowledged_by is the console user"
h_eq "dave|10.0.0.10|acs_operator|ack|$alert" "$(last_audit)" "and the ack is audited"

# --- nobody else can pose as someone ------------------------------------------------
h_eq queued "$(as operator1 -c "SELECT FROM set_config('acs.actor', 'mallory', false) AS a,
                                             set_config('acs.actor_address', '6.6.6.6', false) AS b" \
                            -c "SELECT acs.request_kill($j3)")" \
    "operator1 (direct SQL) sets acs.actor to mallory and requests a kill"
h_eq operator1 "$(h_sql -c "SELECT kill_requested_by FROM acs.jobs WHERE id = $j3")" \
    "kill_requested_by is still operator1: acs.actor is believed only from acs_web's members"
h_eq "operator1|-|operator1|kill|$j3" "$(last_audit)" "the audit row is operator1's, with no address"
as admin1 -c "SELECT set_config('acs.actor', 'mallory', false)" -c "SELECT acs.set_comm('AMTDEMO', 'disabled')" >/dev/null
h_eq admin1 "$(h_sql -c "SELECT comm_changed_by FROM acs.connections")" "the same for admin1 and Full Comm"
h_sql -c "SELECT acs.set_comm('AMTDEMO', 'enabled')" >/dev/null

# --- Batch Users and purge are audited; the daemon's own work is not ------------------
as admin1 -c "INSERT INTO acs.batch_users (name, key_id, sealed_password) VALUES ('bu1', 'k1', '\\x01')"
h_eq "admin1|-|admin1|batch_user_set|bu1" "$(last_audit)" "setting a Batch User's password is audited"
as admin1 -c "DELETE FROM acs.batch_users WHERE name = 'bu1'"
h_eq "admin1|-|admin1|batch_user_delete|bu1" "$(last_audit)" "deleting a Batch User is audited"
as operator1 -c "SELECT acs.purge_job_logs(10)" >/dev/null
h_eq "operator1|-|operator1|purge" "$(last_audit)" "an operator's purge is audited"
n=$(audit_count)
as daemon1 -c "SELECT acs.purge_job_logs(10)" >/dev/null
as daemon1 -c "SELECT count(*) FROM acs.claim_jobs('d1', 'AMTDEMO', 10, 30)" >/dev/null
h_eq "$n" "$(audit_count)" "the daemon's purge and claims write no audit row"

# --- console users through amtacsctl ---------------------------------------------------
pw='Correct-Horse-Battery-7'
out=$(printf '%s\n' "$pw" | ctl_as admin1 user add alice --role operator 2>&1)
h_eq "user alice added with role operator" "$out" "admin1 adds a console user (password from stdin)"
hash=$(h_sql -c "SELECT password_hash FROM acs.web_users WHERE name = 'alice'")
h_match '^\$argon2id\$' "$hash" "the stored hash is argon2id"
# libsodium itself says whether the hash verifies the password (and only it)
verify() {
    python3 - "$1" "$2" <<'PY'
import ctypes, ctypes.util, sys
so = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
so.sodium_init()
h, p = sys.argv[1].encode(), sys.argv[2].encode()
print("yes" if so.crypto_pwhash_str_verify(h, p, ctypes.c_ulonglong(len(p))) == 0 else "no")
PY
}
h_eq "yes no" "$(verify "$hash" "$pw") $(verify "$hash" "${pw}x")" "the hash verifies the password and no other"
# on a terminal: asked twice, without echo (typed once the echo is off)
echo_off() {
    local pid
    pid=$(pgrep -f "^$CTL_BIN --db .* user add $1 ") &&
        stty -F "/proc/$pid/fd/0" -a 2>/dev/null | grep -q -- ' -echo '
}
on_tty() {
    local rc=0
    rm -f "$H_TMP/tty.in"
    mkfifo "$H_TMP/tty.in"
    script -qec "$CTL_BIN --db '$(conn admin1)' user add $1 --role viewer" /dev/null \
        <"$H_TMP/tty.in" >"$H_TMP/tty.out" 2>&1 &
    local term=$!
    exec 7>"$H_TMP/tty.in"
    h_wait_until 30 echo_off "$1" || h_not_ok "user add $1 turns the echo off before reading"
    printf '%s\n%s\n' "$2" "$3" >&7
    exec 7>&-
    wait "$term" || rc=$?
    cat "$H_TMP/tty.out"
    return $rc
}
out=$(on_tty carol "$pw" "$pw")
h_match "Password for console user carol:.*Again:.*user carol added with role viewer" "$(tr '\r\n' '  ' <<<"$out")" \
    "user add asks twice on a terminal and adds the user"
[[ "$out" == *"$pw"* ]] && h_not_ok "the password is echoed on the terminal" || h_ok "the password is not echoed on the terminal"
out=$(on_tty dave "$pw" "${pw}x") || true
h_match "the two passwords differ" "$out" "two different entries are refused"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.web_users WHERE name = 'dave'")" "and nothing is stored"
out=$(printf 'short-pw\n' | ctl_as admin1 user add bob --role viewer 2>&1) && rc=0 || rc=$?
h_eq "1|amtacsctl user add: the password has 8 characters; at least 12 are needed" "$rc|$out" \
    "a password under 12 characters is refused, clearly"
out=$(printf '%s\n' "$pw" | ctl_as admin1 user add bob --role boss 2>&1) && rc=0 || rc=$?
h_eq "2|amtacsctl user add: role 'boss' is not one of viewer, scheduler, operator, admin" "$rc|$out" \
    "an unknown role is a usage error"
out=$(printf '%s\n' "$pw" | ctl_as admin1 user add alice --role viewer 2>&1) && rc=0 || rc=$?
h_eq "1|amtacsctl user add: user alice exists already" "$rc|$out" "a second alice is refused"
out=$(printf '%s\n' "$pw" | ctl_as admin1 user add 'bad name' --role viewer 2>&1) && rc=0 || rc=$?
h_match "^1\|amtacsctl user add: name 'bad name' is not valid" "$rc|$out" "a name with a space is refused"
out=$(printf '%s\n' "$pw" | ctl_as operator1 user add eve --role admin 2>&1) && rc=0 || rc=$?
h_match "^1\|amtacsctl user add: permission denied for function web_user_add.*acs_admin" "$rc|$(tr '\n' ' ' <<<"$out")" \
    "operator1 may not add a user: PostgreSQL's permission denied, and who may"
out=$(ctl_as viewer1 user list 2>&1) && rc=0 || rc=$?
h_match "^1\|amtacsctl user list: permission denied" "$rc|$out" "viewer1 may not list users"
pw2='Another-Long-Passphrase-9'
out=$(printf '%s\n' "$pw2" | ctl_as admin1 user passwd alice 2>&1)
h_eq "password of user alice changed; 0 open session(s) ended" "$out" "admin1 changes alice's password"
hash2=$(h_sql -c "SELECT password_hash FROM acs.web_users WHERE name = 'alice'")
h_eq "yes no" "$(verify "$hash2" "$pw2") $(verify "$hash2" "$pw")" "the new hash verifies the new password only"
h_eq "user alice: role admin, was operator" "$(ctl_as admin1 user role alice admin 2>&1)" "admin1 changes alice's role"
h_eq "user alice disabled; 0 open session(s) ended" "$(ctl_as admin1 user disable alice 2>&1)" "admin1 disables alice"
h_match "^alice +admin +disabled " "$(ctl_as admin1 user list | tail -n +2)" "user list shows her disabled"
h_eq "user alice enabled" "$(ctl_as admin1 user enable alice 2>&1)" "admin1 enables alice"
h_eq "alice admin null" "$(ctl_as admin1 user list --json | jq -r '.[] | select(.name == "alice") | "\(.name) \(.role) \(.disabled_at)"')" \
    "user list --json: alice, admin, enabled"
h_eq 0 "$( (ctl_as admin1 user list; ctl_as admin1 user list --json) | grep -c 'argon2' || true)" \
    "user list shows no hash"
out=$(ctl_as admin1 user passwd nobody </dev/null 2>&1) && rc=0 || rc=$?
h_eq "1|amtacsctl user passwd: no password given" "$rc|$out" "no password on stdin: said so"
out=$(printf '%s\n' "$pw" | ctl_as admin1 user passwd nobody 2>&1) && rc=0 || rc=$?
h_eq "1|amtacsctl user passwd: no user 'nobody'" "$rc|$out" "an unknown user: said so"
h_eq 0 "$(pg_dump --data-only --schema=acs "$PGDATABASE" | grep -cF -e "$pw" -e "$pw2" || true)" \
    "neither password appears anywhere in the database (pg_dump of acs)"
h_eq 0 "$(grep -cF -e "$pw" -e "$pw2" "$H_PG_DATA/server.log" || true)" \
    "neither password is in PostgreSQL's log of every statement (only the hash travels)"
for a in user_add user_passwd user_role user_disable user_enable; do
    h_eq "admin1|-|admin1|$a|alice" \
        "$(h_sql -c "SELECT concat_ws('|', actor, coalesce(address, '-'), role, action, target)
                       FROM acs.audit WHERE action = '$a' AND target = 'alice'")" "$a is audited"
done
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.audit WHERE detail::text LIKE '%argon2%'")" "no audit row holds a hash"

# --- login: the hash only for acs_web -----------------------------------------------
for who in admin1 operator1 viewer1 scheduler1; do
    refused $who "read a login hash" "SELECT * FROM acs.web_user_for_login('alice')"
done
refused web1 "read a login hash with its own rights" "SELECT * FROM acs.web_user_for_login('alice')"
refused web1 "read a login hash in an admin's request" \
    "BEGIN; SET LOCAL ROLE acs_admin; SELECT * FROM acs.web_user_for_login('alice')"
h_eq "$hash2|admin|f" "$(websrv "SELECT * FROM acs.web_user_for_login('alice')")" \
    "web1 as acs_web gets alice's hash, role and disabled flag"
h_eq "" "$(websrv "SELECT * FROM acs.web_user_for_login('nobody')")" "an unknown user: no row"
refused web1 "add a user as acs_web" "SET ROLE acs_web; SELECT acs.web_user_add('x', 'admin', '\$argon2id\$x')"

# --- sessions --------------------------------------------------------------------------
printf '%s\n' "$pw" | ctl_as admin1 user add bob --role viewer >/dev/null
tok() { echo "decode(repeat('$1', 32), 'hex')"; }   # a fake SHA-256
start() { websrv "SELECT acs.web_session_start('$1', $(tok "$2"), 'csrf-$2-0123456789abcdef', '10.0.0.7', ${3:-600}, ${4:-3600}) > now()"; }
get() { websrv "SELECT concat_ws('|', user_name, role, csrf_token) FROM acs.web_session_get($(tok "$1"))"; }
h_eq t "$(start alice 01)" "a session starts for alice"
h_eq "alice|admin|csrf-01-0123456789abcdef" "$(get 01)" "web_session_get gives user, role and CSRF token"
h_eq "web1|-|acs_web|login|alice" "$(last_audit)" "a login is audited (target: the user; actor: the server's setting, here none)"
h_sql -c "UPDATE acs.web_sessions SET last_seen_at = now() - interval '30 seconds' WHERE token_hash = $(tok 01)"
get 01 >/dev/null
h_eq t "$(h_sql -c "SELECT last_seen_at > now() - interval '5 seconds' FROM acs.web_sessions WHERE token_hash = $(tok 01)")" \
    "a request moves last_seen_at"
h_sql -c "UPDATE acs.web_sessions SET last_seen_at = now() - interval '2 seconds' WHERE token_hash = $(tok 01)"
seen=$(h_sql -c "SELECT last_seen_at FROM acs.web_sessions WHERE token_hash = $(tok 01)")
get 01 >/dev/null
h_eq "$seen" "$(h_sql -c "SELECT last_seen_at FROM acs.web_sessions WHERE token_hash = $(tok 01)")" \
    "but not within 5 seconds of the last move (no write per request)"
h_sql -c "UPDATE acs.web_sessions SET last_seen_at = now() - interval '601 seconds' WHERE token_hash = $(tok 01)"
h_eq "" "$(get 01)" "idle longer than idle_seconds: no session"
h_eq t "$(start alice 02 600 3600)" "another session"
h_sql -c "UPDATE acs.web_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $(tok 02)"
h_eq "" "$(get 02)" "past its absolute lifetime, however active: no session"
h_eq t "$(start alice 03)" "a third"
h_eq t "$(websrv "SELECT acs.web_session_end($(tok 03))")" "logout ends it"
h_eq "" "$(get 03)" "an ended session is no session"
h_eq f "$(websrv "SELECT acs.web_session_end($(tok 03))")" "a second logout changes nothing"
h_eq t "$(start bob 04)" "a session of bob's"
h_sql -c "UPDATE acs.web_users SET disabled_at = now() WHERE name = 'bob'"
h_eq "" "$(get 04)" "a disabled user's session is no session"
h_sql -c "UPDATE acs.web_users SET disabled_at = NULL WHERE name = 'bob'"
h_eq "bob|viewer|csrf-04-0123456789abcdef" "$(get 04)" "(and is again once the user is enabled)"
ctl_as admin1 user role bob operator >/dev/null
h_eq "bob|operator|csrf-04-0123456789abcdef" "$(get 04)" "a role change holds from the next request"
out=$(printf '%s\n' "$pw2" | ctl_as admin1 user passwd bob 2>&1)
h_eq "password of user bob changed; 1 open session(s) ended" "$out" "a new password ends bob's session"
h_eq "" "$(get 04)" "his old session is no session"
h_eq t "$(start bob 05)" "a new one"
h_eq "user bob disabled; 1 open session(s) ended" "$(ctl_as admin1 user disable bob 2>&1)" "disabling ends it too"
h_eq "" "$(get 05)" "it is no session"
out=$(start bob 06 2>&1) && rc=0 || rc=$?
h_match "^[^0].*user 'bob' does not exist or is disabled" "$rc $out" "a disabled user gets no session"
ctl_as admin1 user enable bob >/dev/null
out=$(websrv "SELECT acs.web_session_start('bob', '\\x0102', 'csrf-0123456789abcdef', NULL, 60, 60)" 2>&1) && rc=0 || rc=$?
h_match "^[^0].*token_hash must be a SHA-256" "$rc $out" "a token hash that is not 32 bytes is refused"
h_eq t "$(start alice 07)" "one more, valid"
h_eq "alice|07070707" "$(h_sql -c "SELECT string_agg(user_name || '|' || left(encode(token_hash, 'hex'), 8), ',')
                                     FROM acs.web_sessions")" \
    "session_start purged the ended, expired and idle ones; the valid one stays"
h_eq t "$(start alice 0a)" "and another"
h_sql -c "UPDATE acs.web_sessions SET last_seen_at = now() - interval '1 hour' WHERE token_hash = $(tok 0a)"
h_eq 1 "$(websrv "SELECT acs.web_sessions_purge()")" "web_sessions_purge deletes the idle one"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.web_sessions")" "and only it"
refused operator1 "read a session" "SELECT * FROM acs.web_session_get($(tok 07))"
refused admin1 "start a session" "SELECT acs.web_session_start('alice', $(tok 08), 'csrf-0123456789abcdef', NULL, 60, 60)"
refused web1 "read a session in an admin's request" \
    "BEGIN; SET LOCAL ROLE acs_admin; SELECT * FROM acs.web_session_get($(tok 07))"

# --- API tokens ------------------------------------------------------------------------
tok1=$(ctl_as admin1 token create --name ci --role scheduler 2>"$H_TMP/tok.err")
h_match '^amtacs_[A-Za-z0-9_-]{43}$' "$tok1" "token create prints amtacs_ + 43 base64url characters"
h_match "shown this once" "$(cat "$H_TMP/tok.err")" "and says it is shown once"
sha=$(python3 -c 'import base64, hashlib, sys
t = sys.argv[1][len("amtacs_"):]
print(hashlib.sha256(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))).hexdigest())' "$tok1")
h_eq "$sha" "$(h_sql -c "SELECT encode(token_hash, 'hex') FROM acs.api_tokens WHERE name = 'ci'")" \
    "the row holds the SHA-256 of the token's 32 bytes"
h_eq 0 "$(pg_dump --data-only --schema=acs "$PGDATABASE" | grep -cF -- "${tok1#amtacs_}" || true)" \
    "the token itself is nowhere in the database"
h_eq "ci|scheduler" "$(websrv "SELECT concat_ws('|', name, role) FROM acs.api_token_get(decode('$sha', 'hex'))")" \
    "acs_web finds the token's name and role by its hash"
h_eq t "$(h_sql -c "SELECT last_used_at IS NOT NULL FROM acs.api_tokens WHERE name = 'ci'")" "and its use is stamped"
h_eq "" "$(websrv "SELECT name FROM acs.api_token_get($(tok 09))")" "an unknown hash: no row"
h_match "^ci +scheduler +active " "$(ctl_as admin1 token list | tail -n +2)" "token list shows it active"
h_eq 0 "$( (ctl_as admin1 token list; ctl_as admin1 token list --json) | grep -ciF -e "$sha" -e hash || true)" \
    "token list shows no hash"
out=$(ctl_as admin1 token create --name ci --role admin 2>&1) && rc=0 || rc=$?
h_match "^1\|amtacsctl token create: token ci exists already" "$rc|$out" "a second token ci is refused"
h_eq 0 "$(grep -c '^amtacs_' <<<"$out" || true)" "and no token is printed for it"
out=$(ctl_as operator1 token create --name op --role admin 2>&1) && rc=0 || rc=$?
h_match "^1\|amtacsctl token create: permission denied" "$rc|$out" "operator1 may not create a token"
h_eq 0 "$(grep -c '^amtacs_' <<<"$out" || true)" "and no token is printed"
refused admin1 "look a token up" "SELECT * FROM acs.api_token_get(decode('$sha', 'hex'))"
refused operator1 "list tokens" "SELECT * FROM acs.api_token_list"
h_eq "token ci revoked" "$(ctl_as admin1 token revoke ci 2>&1)" "admin1 revokes it"
h_eq "" "$(websrv "SELECT name FROM acs.api_token_get(decode('$sha', 'hex'))")" "a revoked token: no row"
h_match "^ci +scheduler +revoked " "$(ctl_as admin1 token list | tail -n +2)" "token list shows it revoked"
h_eq "token_create token_revoke" "$(h_sql -c "SELECT string_agg(action, ' ' ORDER BY id) FROM acs.audit
                                               WHERE action LIKE 'token%' AND actor = 'admin1'")" \
    "creation and revocation are audited"

# --- login throttling ------------------------------------------------------------------
fail() { websrv "SELECT acs.web_login_record('$1', '$2', false)" >/dev/null; }
# one statement: the wait right after the failure (now() is the same)
fail_wait() {
    websrv "SELECT acs.web_login_record('$1', '$2', false); SELECT acs.web_login_wait('$1', '$2')" | sed '/^$/d'
}
wait_s() { websrv "SELECT acs.web_login_wait('$1', '$2')"; }
for i in 1 2 3 4; do fail alice 10.0.1.1; done
h_eq 0 "$(wait_s alice 10.0.1.1)" "four failures: no wait"
h_eq "1 2 4 8" "$(for i in 1 2 3 4; do fail_wait alice 10.0.1.1; done | tr '\n' ' ' | sed 's/ $//')" \
    "from the fifth failure: 1 s, doubling per failure"
h_match '^[1-8]$' "$(wait_s alice 10.0.2.2)" "the name's wait holds from any address"
websrv "SELECT acs.web_login_record('alice', '10.0.1.1', true)" >/dev/null
h_eq 0 "$(wait_s alice 10.0.1.1)" "a success clears the name's count"
for i in 1 2 3 4; do fail nosuchuser 10.0.3.3; done
h_eq 1 "$(fail_wait nosuchuser 10.0.3.3)" "an unknown name is counted like a known one"
h_sql -c "UPDATE acs.web_login_failures SET failures = 100 WHERE key = 'nosuchuser'"
h_match '^(899|900)$' "$(wait_s nosuchuser 10.0.9.9)" "the wait stops growing at 15 minutes"
h_sql -c "UPDATE acs.web_login_failures SET last_at = now() - interval '16 minutes' WHERE key = 'nosuchuser'"
h_eq 0 "$(wait_s nosuchuser 10.0.9.9)" "failures 15 minutes old no longer count"
fail nosuchuser 10.0.9.9
h_eq 1 "$(h_sql -c "SELECT failures FROM acs.web_login_failures WHERE kind = 'user' AND key = 'nosuchuser'")" \
    "and the next failure starts the count again"
for i in $(seq 1 19); do fail "u$i" 10.0.4.4; done
h_eq 0 "$(wait_s newcomer 10.0.4.4)" "19 failures from one address (one per name): no wait"
h_eq 1 "$(fail_wait u20 10.0.4.4)" "the 20th from that address: a wait"
h_match '^1$' "$(wait_s newcomer 10.0.4.4)" "for every name tried from there"
h_eq 0 "$(wait_s newcomer 10.0.4.5)" "not for another address"
refused operator1 "read the throttle" "SELECT acs.web_login_wait('alice', '10.0.0.1')"
refused admin1 "record a login" "SELECT acs.web_login_record('alice', '10.0.0.1', true)"
refused admin1 "read login failures" "SELECT * FROM acs.web_login_failures"

# --- the audit: admins read it, nobody writes it -------------------------------------
h_match '^[0-9]+$' "$(as admin1 -c "SELECT count(*) FROM acs.audit")" "admin1 reads the audit"
for who in operator1 scheduler1 viewer1 daemon1; do
    refused $who "read the audit" "SELECT count(*) FROM acs.audit"
done
refused web1 "read the audit as acs_web" "SET ROLE acs_web; SELECT count(*) FROM acs.audit"
refused admin1 "write the audit" "INSERT INTO acs.audit (actor, role, action) VALUES ('x', 'x', 'x')"
refused admin1 "rewrite the audit" "UPDATE acs.audit SET actor = 'x'"
refused admin1 "erase the audit" "DELETE FROM acs.audit"
refused admin1 "call the audit writer" "SELECT acs.audit_record('kill', '1', NULL)"
refused web1 "call the audit writer as acs_web" "SET ROLE acs_web; SELECT acs.audit_record('kill', '1', NULL)"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'acs'::regnamespace
                       AND proname IN ('request_kill', 'request_kills', 'set_comm', 'acknowledge_alert',
                                       'resolve_in_doubt', 'purge_job_logs', 'submit_batch_job',
                                       'submit_script_job', 'audit_record', 'batch_users_audit')
                       AND NOT prosecdef")" "every function that audits runs as SECURITY DEFINER"
