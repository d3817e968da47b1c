#!/usr/bin/env bash
# Integration Selection (issue #15), bad input and the user's side: through
# SQL, amtacsctl and the HTTP API each, 4 alternates, an unknown name, a
# duplicate, a group together with a connection or alternates and an unknown
# group are refused with the database's message (the one acs.check_targets
# gives), and no job row is added; the command line refuses a group with a
# connection before it connects. Connection groups are admins' to set and
# delete: PostgreSQL refuses a scheduler and an operator (permission denied,
# 403 over HTTP); an admin's set/list/delete round trip; a delete is refused
# while a queued job names the group; the audit records group_set and
# group_delete. A job's choice (listed connections or group, the connection
# that holds it, each try) shows in amtacsctl show and GET /api/v1/jobs/{id}.
# No daemon runs: the jobs stay queued.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
for c in AMTDEMO ALT1 ALT2 ALT3 ALT4; do
    h_sql -c "SELECT acs.register_connection('$c', 'enabled')" >/dev/null
done
for r in scheduler operator admin; do
    h_sql -c "CREATE ROLE ${r}1 LOGIN IN ROLE acs_$r" >/dev/null
done
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
as() { local who=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U "$who" "$@"; }
jobs() { h_sql -c "SELECT count(*) FROM acs.jobs"; }

# --- the messages, once: what each refusal must say -------------------------------------
MSG_FOUR="at most 3 alternate connections may follow the primary (got 4)"
MSG_UNKNOWN="connection 'NOPE' is not known; known connections: ALT1, ALT2, ALT3, ALT4, AMTDEMO"
MSG_TWICE="connection 'ALT1' is listed twice; the primary and its alternates must differ"
MSG_BOTH_CONN="a job names either a connection (with up to 3 alternates) or a group, not both (got group 'G1' and connection 'AMTDEMO')"
MSG_BOTH_ALTS="a job names either a connection (with up to 3 alternates) or a group, not both (got group 'G1' and alternates)"
MSG_NOGROUP="group 'NOGROUP' is not known; known groups: G1"

h_eq created "$(as admin1 -c "SELECT acs.group_set('G1', ARRAY['ALT2', 'ALT1'])")" \
    "SQL: an admin defines group G1 (ALT2, ALT1)"

# --- SQL ------------------------------------------------------------------------------------
# sql_refused DESCRIPTION MESSAGE SQL: scheduler1's statement fails with MESSAGE, no job added
sql_refused() {
    local before out
    before=$(jobs)
    if out=$(as scheduler1 -c "$3" 2>&1); then
        h_not_ok "SQL: $1 is refused (it was accepted: $out)"
    else
        h_eq "ERROR:  $2" "$(head -1 <<<"$out")" "SQL: $1 is refused with its message"
    fi
    h_eq "$before" "$(jobs)" "SQL: and no job is added ($1)"
}
B="'DEMO2', 'INSTANTMSG'"
sql_refused "4 alternates" "$MSG_FOUR" \
    "SELECT acs.submit_batch_job('AMTDEMO', $B, alternates => ARRAY['ALT1','ALT2','ALT3','ALT4'])"
sql_refused "an unknown alternate" "$MSG_UNKNOWN" \
    "SELECT acs.submit_batch_job('AMTDEMO', $B, alternates => ARRAY['ALT1','NOPE'])"
sql_refused "an unknown primary" "$MSG_UNKNOWN" "SELECT acs.submit_script_job('NOPE', 'DEMO2', 'x.sh')"
sql_refused "a duplicate alternate" "$MSG_TWICE" \
    "SELECT acs.submit_batch_job('AMTDEMO', $B, alternates => ARRAY['ALT1','ALT1'])"
sql_refused "a group with a connection" "$MSG_BOTH_CONN" \
    "SELECT acs.submit_batch_job('AMTDEMO', $B, conn_group => 'G1')"
sql_refused "a group with alternates (submit_jobs)" "$MSG_BOTH_ALTS" \
    "SELECT * FROM acs.submit_jobs('[{\"kind\":\"batch\",\"group\":\"G1\",\"alternates\":[\"ALT1\"],\"application\":\"DEMO2\",\"name\":\"X\"}]')"
sql_refused "an unknown group" "$MSG_NOGROUP" \
    "SELECT acs.submit_batch_job(NULL, $B, conn_group => 'NOGROUP')"
sql_refused "4 alternates among 2 jobs of submit_jobs (all or none)" "$MSG_FOUR" \
    "SELECT * FROM acs.submit_jobs('[{\"kind\":\"batch\",\"connection\":\"AMTDEMO\",\"application\":\"DEMO2\",\"name\":\"OK\"},
      {\"kind\":\"batch\",\"connection\":\"AMTDEMO\",\"alternates\":[\"ALT1\",\"ALT2\",\"ALT3\",\"ALT4\"],\"application\":\"DEMO2\",\"name\":\"X\"}]')"

# --- amtacsctl ------------------------------------------------------------------------------
# ctl_refused DESCRIPTION MESSAGE ARGS...: amtacsctl submit as scheduler1 fails with MESSAGE
ctl_refused() {
    local what=$1 msg=$2 before rc out
    shift 2
    before=$(jobs)
    set +e
    out=$(ctl_as scheduler1 submit "$@" 2>&1 >/dev/null)
    rc=$?
    set -e
    h_eq "1|amtacsctl submit: $msg" "$rc|$out" "amtacsctl: $what is refused with its message"
    h_eq "$before" "$(jobs)" "amtacsctl: and no job is added ($what)"
}
S=(-a DEMO2 -j INSTANTMSG)
ctl_refused "4 alternates" "$MSG_FOUR" batch -C AMTDEMO -A ALT1 -A ALT2 -A ALT3 -A ALT4 "${S[@]}"
ctl_refused "an unknown alternate" "$MSG_UNKNOWN" batch -C AMTDEMO --alternate NOPE "${S[@]}"
ctl_refused "a duplicate alternate" "$MSG_TWICE" batch -C AMTDEMO -A ALT1 -A ALT1 "${S[@]}"
ctl_refused "the primary again as an alternate" \
    "connection 'AMTDEMO' is listed twice; the primary and its alternates must differ" \
    batch -C AMTDEMO -A AMTDEMO "${S[@]}"
ctl_refused "an unknown group" "$MSG_NOGROUP" script --group NOGROUP -a DEMO2 -s x.sh
# purely a matter of the command line: refused before connecting (no database here)
nowhere="host=$H_TMP/nowhere"
for opt in "-C AMTDEMO" "-A ALT1" "--connection AMTDEMO --alternate ALT1"; do
    set +e
    # shellcheck disable=SC2086 # the words are the options
    out=$("$CTL_BIN" --db "$nowhere" submit batch -g G1 $opt "${S[@]}" 2>&1)
    rc=$?
    set -e
    h_match "^2\|amtacsctl submit: --group cannot go with --(connection|alternate): a job names either a connection \(with up to 3 alternates\) or a group, not both$" \
        "$rc|$out" "amtacsctl: --group with $opt is a usage error, said without a database"
done
set +e
out=$("$CTL_BIN" --db "$nowhere" submit batch -A ALT1 "${S[@]}" 2>&1)
rc=$?
set -e
h_eq "2|amtacsctl submit: --alternate needs --connection, the primary the alternates follow" \
    "$rc|$out" "amtacsctl: --alternate without --connection is a usage error"

# --- HTTP -----------------------------------------------------------------------------------
CFG="$H_TMP/amtacs.yaml"
h_daemon_config "$CFG" AMTDEMO "http://127.0.0.1:9"
cat >>"$CFG" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "$(conn web1) application_name=amtacs-web"
  db_pool: 2
CONF
h_web_start "$CFG"
pw=correct-horse-battery
for u in vera:viewer sam:scheduler olga:operator adam:admin; do
    printf '%s\n' "$pw" | ctl_as admin1 user add "${u%%:*}" --role "${u##*:}" >/dev/null
done
TOKEN=$(ctl_as admin1 token create --name robot --role scheduler 2>/dev/null)
login() {
    h_web_req POST /api/v1/login -c "$H_TMP/jar.$1" -H 'Content-Type: application/json' \
        --data "{\"user\":\"$1\",\"password\":\"$pw\"}" >/dev/null
    jq -r .csrf_token "$H_TMP/body" >"$H_TMP/csrf.$1"
}
for u in vera sam olga adam; do login $u; done
# as WHO METHOD PATH [curl args]: WHO's session with its CSRF token, or the token (robot)
as_web() {
    local u=$1 m=$2 p=$3
    shift 3
    if [ "$u" = robot ]; then
        h_web_req "$m" "$p" -H "Authorization: Bearer $TOKEN" "$@"
    else
        h_web_req "$m" "$p" -b "$H_TMP/jar.$u" -H "X-CSRF-Token: $(cat "$H_TMP/csrf.$u")" "$@"
    fi
}
J=(-H "Content-Type: application/json")
# web_refused DESCRIPTION MESSAGE TARGETS: POST /jobs with TARGETS (JSON members) is 400 MESSAGE
web_refused() {
    local before who
    for who in sam robot; do
        before=$(jobs)
        h_eq "400|$2" "$(as_web $who POST /api/v1/jobs "${J[@]}" \
            --data "{\"kind\":\"batch\",$3,\"application\":\"DEMO2\",\"name\":\"INSTANTMSG\"}")|$(detail)" \
            "HTTP ($who): $1 is 400 with its message"
        h_eq "$before" "$(jobs)" "HTTP ($who): and no job is added ($1)"
    done
}
web_refused "4 alternates" "$MSG_FOUR" '"connection":"AMTDEMO","alternates":["ALT1","ALT2","ALT3","ALT4"]'
web_refused "an unknown alternate" "$MSG_UNKNOWN" '"connection":"AMTDEMO","alternates":["NOPE"]'
web_refused "a duplicate alternate" "$MSG_TWICE" '"connection":"AMTDEMO","alternates":["ALT1","ALT1"]'
web_refused "a group with a connection" "$MSG_BOTH_CONN" '"connection":"AMTDEMO","group":"G1"'
web_refused "a group with alternates" "$MSG_BOTH_ALTS" '"group":"G1","alternates":["ALT1"]'
web_refused "an unknown group" "$MSG_NOGROUP" '"group":"NOGROUP"'
web_refused "alternates that are not names" "field 'alternates' must be an array of strings" \
    '"connection":"AMTDEMO","alternates":["ALT1",2]'
web_refused "neither a connection nor a group" "connection is required" '"alternates":[]'

# --- groups: admins' alone, refused by PostgreSQL ----------------------------------------------
for who in scheduler1 operator1; do
    for stmt in "acs.group_set('G2', ARRAY['ALT1'])" "acs.group_delete('G1')"; do
        if out=$(as $who -c "SELECT $stmt" 2>&1); then
            h_not_ok "SQL: $who may not call $stmt (it could: $out)"
        else
            h_match "permission denied for function group_(set|delete)" "$out" \
                "SQL: $who may not call ${stmt%%(*}: PostgreSQL says $(head -1 <<<"$out")"
        fi
    done
    set +e
    out=$(ctl_as $who group set G2 ALT1 2>&1)
    rc=$?
    set -e
    h_eq "1|amtacsctl group set: permission denied for function group_set" "$rc|$out" \
        "amtacsctl: $who may not group set"
    set +e
    out=$(ctl_as $who group delete G1 2>&1)
    rc=$?
    set -e
    h_eq "1|amtacsctl group delete: permission denied for function group_delete" "$rc|$out" \
        "amtacsctl: $who may not group delete"
done
for who in sam olga robot vera; do
    h_eq "403|permission denied for function group_set" \
        "$(as_web $who PUT /api/v1/groups/G2 "${J[@]}" --data '{"connections":["ALT1"]}')|$(detail)" \
        "HTTP: $who may not PUT a group (403, PostgreSQL's reason)"
    h_eq "403|permission denied for function group_delete" \
        "$(as_web $who DELETE /api/v1/groups/G1)|$(detail)" "HTTP: $who may not DELETE a group"
done
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.connection_groups WHERE name = 'G2'")" \
    "no refused set made a group"

# --- an admin's round trip -------------------------------------------------------------------
h_eq "group G3 created" "$(ctl_as admin1 group set G3 ALT3 AMTDEMO ALT1)" "amtacsctl: admin sets G3"
h_eq "group G3 unchanged" "$(ctl_as admin1 group set G3 ALT3 AMTDEMO ALT1)" "the same members again: unchanged"
h_eq "group G3 changed" "$(ctl_as admin1 group set G3 ALT3 ALT1 AMTDEMO)" "another order: changed"
set +e
out=$(ctl_as admin1 group set G3 ALT1 NOPE 2>&1)
rc=$?
set -e
h_eq "1|amtacsctl group set: $MSG_UNKNOWN" "$rc|$out" "a member that is not a connection: the database's message"
h_match "^G3 +0  ALT3 ALT1 AMTDEMO$" "$(ctl_as admin1 group list | grep '^G3 ')" \
    "group list: G3's members in order, no unfinished job"
h_eq '["ALT3","ALT1","AMTDEMO"]' "$(ctl_as scheduler1 group list --json | jq -c '.[] | select(.name == "G3") | .connections')" \
    "group list --json (as a scheduler): the same members"
h_eq 201 "$(as_web adam PUT /api/v1/groups/G4 "${J[@]}" --data '{"connections":["ALT4","ALT2"]}')" \
    "HTTP: admin PUTs G4: 201"
h_eq 'created ["ALT4","ALT2"]' "$(jq -r '"\(.result) \(.connections | tojson)"' "$H_TMP/body")" "it was created"
h_eq "200|unchanged" "$(as_web adam PUT /api/v1/groups/G4 "${J[@]}" --data '{"connections":["ALT4","ALT2"]}')|$(jq -r .result "$H_TMP/body")" \
    "HTTP: the same again: 200 unchanged"
h_eq "400|connection 'ALT2' is listed twice in group 'G4'" \
    "$(as_web adam PUT /api/v1/groups/G4 "${J[@]}" --data '{"connections":["ALT2","ALT2"]}')|$(detail)" \
    "HTTP: a member twice: 400 with the database's message"
h_eq "400|group 'G4' needs at least one member connection" \
    "$(as_web adam PUT /api/v1/groups/G4 "${J[@]}" --data '{"connections":[]}')|$(detail)" \
    "HTTP: no member: 400 with the database's message"
h_eq 200 "$(as_web vera GET /api/v1/groups)" "HTTP: a viewer reads the groups"
h_eq 'G1:ALT2,ALT1:0 G3:ALT3,ALT1,AMTDEMO:0 G4:ALT4,ALT2:0' \
    "$(jq -r '[.groups[] | "\(.name):\(.connections | join(",")):\(.unfinished_jobs)"] | join(" ")' "$H_TMP/body")" \
    "the groups, by name, members in order"
h_eq "200|true" "$(as_web adam DELETE /api/v1/groups/G4)|$(jq -r .deleted "$H_TMP/body")" "HTTP: admin deletes G4"
h_eq "404|no group G4" "$(as_web adam DELETE /api/v1/groups/G4)|$(detail)" "HTTP: again: 404"
h_eq "group G3 deleted" "$(ctl_as admin1 group delete G3)" "amtacsctl: admin deletes G3"
set +e
out=$(ctl_as admin1 group delete G3 2>&1)
rc=$?
set -e
h_eq "1|amtacsctl group delete: no group G3" "$rc|$out" "amtacsctl: again: no group, exit 1"
h_eq "group_set:G3 group_set:G3 group_set:G4 group_delete:G4 group_delete:G3" \
    "$(h_sql -c "SELECT string_agg(action || ':' || target, ' ' ORDER BY id) FROM acs.audit
                  WHERE action IN ('group_set', 'group_delete') AND target IN ('G3', 'G4')")" \
    "the audit records each change (an unchanged set is no change)"
h_eq "adam admin1" "$(h_sql -c "SELECT string_agg(DISTINCT actor, ' ') FROM acs.audit
                                WHERE action IN ('group_set', 'group_delete') AND target IN ('G3', 'G4')")" \
    "naming who made them"

# --- a group with a queued job cannot be deleted ---------------------------------------------
gid=$(ctl_as scheduler1 submit batch -g G1 -a DEMO2 -j INSTANTMSG)
h_match '^[0-9]+$' "$gid" "amtacsctl: a job submitted to group G1 ($gid)"
set +e
out=$(ctl_as admin1 group delete G1 2>&1)
rc=$?
set -e
h_eq "1|amtacsctl group delete: group 'G1' has 1 unfinished job(s); it can be deleted once they end" \
    "$rc|$out" "amtacsctl: G1 is not deleted while a queued job names it"
h_eq "409|group 'G1' has 1 unfinished job(s); it can be deleted once they end" \
    "$(as_web adam DELETE /api/v1/groups/G1)|$(detail)" "HTTP: 409 with the database's message"
h_match "^G1 +1  ALT2 ALT1$" "$(ctl_as admin1 group list | grep '^G1 ')" "group list counts the job"
h_eq "1" "$(h_sql -c "SELECT count(*) FROM acs.connection_groups WHERE name = 'G1'")" "G1 is still there"

# --- the choice, shown -----------------------------------------------------------------------
aid=$(ctl_as scheduler1 submit batch -C AMTDEMO -A ALT1 --alternate ALT2 -a DEMO2 -j INSTANTMSG)
h_match '^[0-9]+$' "$aid" "amtacsctl: a job with 2 alternates ($aid)"
show=$(ctl_as scheduler1 show "$aid")
h_match "^connection +AMTDEMO$" "$(grep '^connection ' <<<"$show")" "show: the connection that holds it"
h_eq "listed            AMTDEMO, ALT1, ALT2" "$(grep '^listed ' <<<"$show")" "show: the listed connections in order"
h_eq "" "$(grep -E '^(group|tried) ' <<<"$show")" "show: no group, no try yet"
h_eq 200 "$(as_web vera GET "/api/v1/jobs/$aid")" "HTTP: a viewer reads the job"
h_eq '["AMTDEMO","ALT1","ALT2"]|null|[]|AMTDEMO' \
    "$(jq -r '"\(.listed | tojson)|\(.group)|\(.tried | tojson)|\(.connection)"' "$H_TMP/body")" \
    "GET /api/v1/jobs/{id}: listed in order, no group, no try, the connection that holds it"
h_eq "$(ctl_as scheduler1 show "$aid" --json | jq -S .)" "$(jq -S . "$H_TMP/body")" \
    "amtacsctl show --json is the same document"
h_eq "G1|ALT2|[]" "$(ctl_as scheduler1 show "$gid" --json | jq -r '"\(.group)|\(.connection)|\(.listed | tojson)"')" \
    "a group job: its group, its first member holds it, nothing listed"
h_eq "group             G1" "$(ctl_as scheduler1 show "$gid" | grep '^group ')" "show: the group"
# The daemon records each connection that could not start the job (acs.jobs_fail_over,
# the lead's tests); written here as it writes it, to see how it is shown.
h_sql -c "UPDATE acs.jobs SET connection = 'ALT1', tried = jsonb_build_array(jsonb_build_object(
            'connection', 'AMTDEMO', 'error', 'connect: Connection refused', 'at', now()))
          WHERE id = $aid" >/dev/null
h_match "^tried +AMTDEMO at [0-9-]+T[0-9:.]+\+00:00: connect: Connection refused$" \
    "$(ctl_as scheduler1 show "$aid" | grep '^tried ')" "show: each try, when and why"
h_match "^connection +ALT1$" "$(ctl_as scheduler1 show "$aid" | grep '^connection ')" \
    "show: the connection that holds it now"
as_web vera GET "/api/v1/jobs/$aid" >/dev/null
h_eq "ALT1|AMTDEMO|connect: Connection refused" \
    "$(jq -r '"\(.connection)|\(.tried[0].connection)|\(.tried[0].error)"' "$H_TMP/body")" \
    "GET /api/v1/jobs/{id}: the try"
h_eq 200 "$(as_web vera GET "/api/v1/jobs?limit=5")" "HTTP: the job list"
h_eq '["AMTDEMO","ALT1","ALT2"]|AMTDEMO|G1' \
    "$(jq -r --argjson a "$aid" --argjson g "$gid" '"\(.jobs[] | select(.id == $a) | .listed | tojson)|\(.jobs[] | select(.id == $a) | .tried[0].connection)|\(.jobs[] | select(.id == $g) | .group)"' "$H_TMP/body")" \
    "list items carry listed, tried and group"
h_eq "$gid" "$(ctl_as scheduler1 list --group G1 --json | jq -r '[.[].id] | join(" ")')" \
    "amtacsctl list --group G1: the group's job alone"
h_eq "201" "$(as_web robot POST /api/v1/jobs "${J[@]}" \
    --data '{"kind":"script","connection":"ALT4","alternates":["ALT3"],"application":"DEMO2","name":"x.sh"}')" \
    "HTTP: a submit with an alternate is accepted"
wid=$(jq -r .id "$H_TMP/body")
h_eq '{ALT4,ALT3}|ALT4' "$(h_sql -c "SELECT listed::text || '|' || connection FROM acs.jobs WHERE id = $wid")" \
    "and stored with its alternate"
h_eq "201" "$(as_web sam POST /api/v1/jobs "${J[@]}" \
    --data '{"kind":"batch","group":"G1","application":"DEMO2","name":"INSTANTMSG"}')" \
    "HTTP: a submit to a group is accepted"
h_eq "G1" "$(h_sql -c "SELECT conn_group FROM acs.jobs WHERE id = $(jq -r .id "$H_TMP/body")")" \
    "and stored with its group"

h_web_check_answers
