#!/usr/bin/env bash
# amtacs-web's OpenAPI 3.1 document over HTTP: GET /api/v1/openapi.json is
# served without authentication, is the document of the source tree, and is
# valid OpenAPI 3.1 as far as python3-jsonschema can tell (every $ref
# resolves, every schema is valid Draft 2020-12). Every operation it lists is
# routed by the server (never the router's 404 "no such resource" nor 405),
# paths it does not list are 404 "no such resource", and every answer
# received validates against the document.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sql -c "CREATE ROLE admin1 LOGIN IN ROLE acs_admin" >/dev/null
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
CFG="$H_TMP/amtacs.yaml"
h_daemon_config "$CFG" AMTDEMO "http://127.0.0.1:9"
cat >>"$CFG" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "$(conn web1) application_name=amtacs-web"
  db_pool: 2
CONF
h_web_start "$CFG"
TOKEN=$("$CTL_BIN" --db "$(conn admin1)" token create --name looker --role viewer 2>/dev/null)
req() { h_web_req "$@"; }
PY=$(h_web_python) || exit 1
DOC="$H_TMP/openapi.json"

# --- the document, to anyone -----------------------------------------------------------------
h_eq 200 "$(req GET /api/v1/openapi.json)" "GET /api/v1/openapi.json without authentication is 200"
h_eq application/json "$(hdr Content-Type)" "as application/json"
cp "$H_TMP/body" "$DOC"
if jq -e . "$DOC" >/dev/null 2>&1; then h_ok "it is JSON"; else h_not_ok "it is JSON: $(head -c 300 "$DOC")"; fi
if cmp -s "$DOC" "$H_WEB_OPENAPI"; then
    h_ok "it is src/web/openapi.json, byte for byte (embedded at build time)"
else
    h_not_ok "it is src/web/openapi.json, byte for byte (rebuild amtacs-web?)"
fi
h_eq 200 "$(req GET /api/v1/openapi.json -H "Cookie: amtacs_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
    -H "Authorization: Bearer amtacs_nope")" "a stale cookie or a bad token does not matter to it"
h_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' --head "$H_WEB_URL/api/v1/openapi.json")" "HEAD works too"
h_eq 405 "$(req POST /api/v1/openapi.json)" "POST to it is 405"
h_eq "GET, HEAD" "$(hdr Allow)" "with Allow: GET, HEAD"

# --- the document is OpenAPI 3.1 --------------------------------------------------------------
out=$("$PY" "$H_WEB_CHECK" document "$DOC" 2>&1) && rc=0 || rc=$?
h_eq "0|the document is OpenAPI 3.1.0" "$rc|${out%% with *}" \
    "structurally valid OpenAPI 3.1: \$refs resolve, schemas are Draft 2020-12 ($out)"
# the structural check can fail: a dangling $ref, a bad schema, a wrong version
jq '.openapi = "3.0.3" | .components.schemas.Job.properties.id = {"$ref": "#/components/schemas/Nope"}
    | .components.schemas.Alert.properties.id = {"type": "integer", "minimum": "one"}' \
    "$DOC" >"$H_TMP/broken.json"
out=$("$PY" "$H_WEB_CHECK" document "$H_TMP/broken.json" 2>&1) && rc=0 || rc=$?
h_match "^1\|openapi is '3.0.3', not 3.1.x.*\\\$ref #/components/schemas/Nope does not resolve.*Alert is not a valid Draft 2020-12 schema" \
    "$rc|${out//$'\n'/ }" "and a broken copy is refused, naming each fault"

# --- every operation is routed -----------------------------------------------------------------
# ids are 1, names x: the object need not exist; the answer may be 401, 403 or a
# 404 of the object ("no job 1"), never the router's 404 nor 405
ops=$(jq -r '.paths | to_entries[] | .key as $p | .value | keys[]
             | select(test("^(get|put|post|delete|patch|options|head|trace)$")) | "\(ascii_upcase) \($p)"' "$DOC")
h_match "^[1-9][0-9]*$" "$(wc -l <<<"$ops")" "the document has operations ($(wc -l <<<"$ops"))"
# stream_status PATH [curl args]: the status of an event stream's answer. A
# stream answers 200 and goes on, so curl is stopped once the headers are in
# (a refusal ends by itself); the body of a refusal is left in $H_TMP/body.
stream_status() {
    local path=$1 pid
    shift
    : >"$H_TMP/shdr"
    curl -sS -N -D "$H_TMP/shdr" -o "$H_TMP/body" "$@" "$H_WEB_URL$path" &
    pid=$!
    h_wait_until 60 grep -q $'^\r$' "$H_TMP/shdr" >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    awk 'NR == 1 {print $2}' "$H_TMP/shdr"
}
while read -r m p; do
    path="/api/v1$(sed -e 's/{id}/1/g' -e 's/{name}/x/g' <<<"$p")"
    for who in anonymous token; do
        args=()
        [ "$who" = token ] && args=(-H "Authorization: Bearer $TOKEN")
        [ "$m" != GET ] && args+=(-H "Content-Type: application/json" --data '{}')
        if [[ "$p" == /events || "$p" == */stream ]]; then
            st=$(stream_status "$path" "${args[@]}")
        else
            st=$(req "$m" "$path" "${args[@]}")
        fi
        if [[ ! "$st" =~ ^[1-5][0-9][0-9]$ ]] || [ "$st" = 405 ] ||
            { [ "$st" = 404 ] && [[ "$(detail)" == "no such resource"* ]]; }; then
            h_not_ok "$m $p ($path, $who) is not routed: $st $(detail)"
        else
            h_ok "$m $p ($path, $who) is routed: $st $(detail)"
        fi
    done
done <<<"$ops"
h_eq 404 "$(req GET /api/v1/jobs/1 -H "Authorization: Bearer $TOKEN")" "GET /jobs/1 of no job is 404"
h_eq "no job 1" "$(detail)" "of the object, not of the route"

# --- what the document does not have is not served ----------------------------------------------
for p in /api/v1/nothing /api/v1/jobs/0 /api/v1/jobs/abc /api/v1/jobs/1/nothing /api/v1/jobs/1/log/x \
    /api/v1 /api/v1/ /api/v2/jobs /api/v1/openapi.yaml /api/v1/connections/a%2Fb/comm \
    /api/v1/alerts/1 /api/v1/me/ /openapi.json; do
    st=$(req GET "$p" -H "Authorization: Bearer $TOKEN")
    if [ "$st" = 404 ] && [[ "$(detail)" == "no such resource"* ]]; then
        h_ok "GET $p is 404 no such resource"
    else
        h_not_ok "GET $p must be 404 'no such resource', got $st $(detail)"
    fi
done
h_eq 405 "$(req DELETE /api/v1/me -H "Authorization: Bearer $TOKEN")" "a method not in the document is 405"
h_eq "GET, HEAD" "$(hdr Allow)" "with Allow"

# --- the answers' check can fail on headers: one missing, one malformed --------------------------
BAD="$H_TMP/bad-answers"
mkdir -p "$BAD"
printf 'GET /api/v1/me 401 application/problem+json\n' >"$BAD/1.meta"
printf '{"type":"about:blank","title":"Unauthorized","status":401,"detail":"x"}' >"$BAD/1.body"
printf 'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\n\r\n' >"$BAD/1.hdr"
printf 'POST /api/v1/jobs 201 application/json\n' >"$BAD/2.meta"
printf '{"id":7,"repeated":false}' >"$BAD/2.body"
printf 'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nLocation: /api/v1/jobs/x7\r\n\r\n' >"$BAD/2.hdr"
out=$("$PY" "$H_WEB_CHECK" answers "$H_WEB_OPENAPI" "$BAD" 2>&1) && h_not_ok "the check refuses wrong headers (it passed: $out)" ||
    h_ok "the check refuses wrong headers"
h_match "answer 1: .*the required header WWW-Authenticate is missing" "$out" "naming a required header that is missing"
h_match "answer 2: .*header Location: '/api/v1/jobs/x7'" "$out" "and a header whose value is not as documented"

# --- every answer above validates against the document (status, type, headers, body) --------------
h_web_check_answers
