# shellcheck shell=bash
# amtacs-web in integration tests: source after harness.sh.
#   h_web_start CFG        starts amtacs-web on CFG (web.listen port 0), waits
#                          for it to listen, sets H_WEB_URL and H_WEB_PID
#   h_web_req M PATH [curl args...]
#                          one request; prints the status, the body is in
#                          $H_TMP/body and the headers in $H_TMP/hdr. Each
#                          answer is also kept in $H_TMP/web-answers/ so
#                          the test can check every answer it received (status,
#                          content type, headers, body) against the OpenAPI
#                          document.
#   h_web_check_answers    checks every answer kept so far against the
#                          OpenAPI document (tests/lib/openapi_check.py):
#                          one h_ok, or h_not_ok with each failure
#   h_web_python           a python3 with jsonschema (python3-jsonschema)
#   conn USER              the conninfo of USER on the test cluster
#   ctl_as USER ARGS...    amtacsctl as USER
#   body, detail, hdr NAME the last answer's body, its problem detail, a header
H_WEB_BIN="$AMTACS_BIN/src/web/amtacs-web"
H_WEB_ANSWERS="$H_TMP/web-answers"
H_WEB_N=0

h_web_start() {
    local cfg=$1 log="$H_TMP/web.log"
    "$H_WEB_BIN" -c "$cfg" >>"$log" 2>&1 &
    H_WEB_PID=$!
    H_PIDS+=("$H_WEB_PID")
    H_LOGS+=("$log")
    h_wait_until 60 grep -q 'event=web.listening' "$log" || { cat "$log" >&2; exit 1; }
    H_WEB_URL="http://127.0.0.1:$(grep 'event=web.listening' "$log" | tail -1 | grep -o '(port [0-9]*' | tr -dc 0-9)"
}

h_web_req() {
    local m=$1 p=$2 st n=0 line ctype=""
    shift 2
    st=$(curl -sS -o "$H_TMP/body" -D "$H_TMP/hdr" -w '%{http_code}' -X "$m" "$H_WEB_URL$p" "$@")
    [ -d "$H_WEB_ANSWERS" ] || mkdir -p "$H_WEB_ANSWERS"
    # counted in a file: callers run this in $(...), a subshell, where a
    # counter would not survive (read and echo: no process of their own, as
    # a test makes hundreds of requests)
    [ -f "$H_WEB_ANSWERS/.count" ] && read -r n <"$H_WEB_ANSWERS/.count"
    H_WEB_N=$((n + 1))
    echo "$H_WEB_N" >"$H_WEB_ANSWERS/.count"
    cp "$H_TMP/body" "$H_WEB_ANSWERS/$H_WEB_N.body"
    cp "$H_TMP/hdr" "$H_WEB_ANSWERS/$H_WEB_N.hdr"
    # the last Content-Type header's value
    while IFS= read -r line; do
        if [[ "${line,,}" == content-type:* ]]; then ctype=${line#* }; fi
    done <"$H_TMP/hdr"
    printf '%s %s %s %s\n' "$m" "${p%%\?*}" "$st" "${ctype//$'\r'/}" >"$H_WEB_ANSWERS/$H_WEB_N.meta"
    echo "$st"
}

H_WEB_OPENAPI="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/src/web/openapi.json"
H_WEB_CHECK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/openapi_check.py"

h_web_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if "$py" -c 'import jsonschema' 2>/dev/null; then echo "$py"; return 0; fi
    done
    echo "no python3 with jsonschema (install python3-jsonschema: scripts/deps)" >&2
    return 1
}

h_web_check_answers() {
    local py out n
    n=$(find "$H_WEB_ANSWERS" -name '*.meta' 2>/dev/null | wc -l)
    if ! py=$(h_web_python); then
        h_not_ok "the $n answers validate against the OpenAPI document (no python3-jsonschema)"
        return
    fi
    if out=$("$py" "$H_WEB_CHECK" answers "$H_WEB_OPENAPI" "$H_WEB_ANSWERS" 2>&1); then
        h_ok "every answer validates against the OpenAPI document ($out)"
    else
        h_not_ok "every answer validates against the OpenAPI document"
        printf '#   %s\n' "${out//$'\n'/$'\n'#   }"
    fi
}

conn() { echo "host=$PGHOST port=$PGPORT user=$1 dbname=$PGDATABASE"; }
ctl_as() { local who=$1; shift; "$CTL_BIN" --db "$(conn "$who")" "$@"; }
body() { cat "$H_TMP/body"; }
detail() { jq -r .detail "$H_TMP/body" 2>/dev/null; }
hdr() { grep -i "^$1:" "$H_TMP/hdr" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
