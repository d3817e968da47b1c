# shellcheck shell=bash
# amtacs-web in integration tests: source after harness.sh.
#   h_web_start CFG        starts amtacs-web on CFG (web.listen port 0), waits
#                          for it to listen, sets H_WEB_URL and H_WEB_PID
#   h_web_req M PATH [curl args...]
#                          one request; prints the status, the body is in
#                          $H_TMP/body and the headers in $H_TMP/hdr. Each
#                          answer is also kept in $H_TMP/web-answers/ so
#                          the test can check every body it received against
#                          the OpenAPI document.
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
    local m=$1 p=$2 st
    shift 2
    st=$(curl -sS -o "$H_TMP/body" -D "$H_TMP/hdr" -w '%{http_code}' -X "$m" "$H_WEB_URL$p" "$@")
    mkdir -p "$H_WEB_ANSWERS"
    H_WEB_N=$((H_WEB_N + 1))
    cp "$H_TMP/body" "$H_WEB_ANSWERS/$H_WEB_N.body"
    printf '%s %s %s %s\n' "$m" "${p%%\?*}" "$st" \
        "$(grep -i '^content-type:' "$H_TMP/hdr" | tail -1 | cut -d' ' -f2- | tr -d '\r')" \
        >"$H_WEB_ANSWERS/$H_WEB_N.meta"
    echo "$st"
}
