#!/usr/bin/env bash
# amtacs-web serves the console (src/web/console, embedded at build time by
# cmake/embed_files.cmake; src/web/webstatic.c): every file of the source
# tree is served at /console/<file>, byte for byte, with its content type,
# the console's strict Content-Security-Policy and an ETag (304 on a match);
# / and /index.html are index.html; anything else outside /api/ is a 404
# problem; only GET and HEAD; no path reaches anything but the table
# (traversal, encoded dots, the source's README). /api/v1 answers keep the
# API's own policy (default-src 'none') and their 404s.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
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

CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
API_CSP="default-src 'none'; frame-ancestors 'none'"
SRC="$AMTACS_SRC/src/web/console"
# get PATH [curl args]: the status; body in $H_TMP/body, headers in $H_TMP/hdr
get() { local p=$1; shift; rm -f "$H_TMP/body"; : >"$H_TMP/body"; curl -sS -o "$H_TMP/body" -D "$H_TMP/hdr" -w '%{http_code}' "$H_WEB_URL$p" "$@"; }
# every CSP header of the answer, one a line (there must be exactly one)
csps() { grep -i '^content-security-policy:' "$H_TMP/hdr" | cut -d' ' -f2- | tr -d '\r'; }

# The build's version: the embedded index.html names every file under /console/v-<16 hex>/
get / >/dev/null
VER=$(grep -oE '"/console/v-[0-9a-f]{16}/' "$H_TMP/body" | head -n1 | cut -d/ -f3)
h_match '^v-[0-9a-f]{16}$' "$VER" "index.html names its files under a version ($VER)"
# the source's index.html as it is served: each "/console/ under the version
sed "s|\"/console/|\"/console/$VER/|g" "$SRC/index.html" >"$H_TMP/index.served"

# --- every file of the console, as it is in the source tree ---------------------------------
n=0
while IFS= read -r f; do
    case $f in
    *.html) type="text/html; charset=utf-8" ;;
    *.css) type="text/css; charset=utf-8" ;;
    *.js) type="text/javascript; charset=utf-8" ;;
    *) continue ;;
    esac
    n=$((n + 1))
    want="$SRC/$f"
    [ "$f" = index.html ] && want="$H_TMP/index.served"
    st=$(get "/console/$f")
    if [ "$st" = 200 ] && cmp -s "$H_TMP/body" "$want" && [ "$(hdr Content-Type)" = "$type" ] &&
        [ "$(csps)" = "$CSP" ] && [ "$(hdr X-Content-Type-Options)" = nosniff ] &&
        [ "$(hdr Cache-Control)" = no-cache ] && [ -n "$(hdr ETag)" ]; then
        h_ok "/console/$f: 200, $type, the console's CSP (one header), byte for byte"
    else
        h_not_ok "/console/$f: got $st, $(hdr Content-Type), CSP [$(csps | paste -sd'|')], cache $(hdr Cache-Control), etag $(hdr ETag)"
    fi
done < <(cd "$SRC" && find . -type f | sed 's|^\./||' | sort)
[ "$n" -ge 9 ] && h_ok "$n files checked (index.html, style.css, app.js, api.js, sse.js, ui.js, pages/...)" ||
    h_not_ok "only $n files found in $SRC"

for p in / /index.html; do
    st=$(get "$p")
    if [ "$st" = 200 ] && cmp -s "$H_TMP/body" "$H_TMP/index.served" && [ "$(csps)" = "$CSP" ] &&
        [ "$(hdr Content-Type)" = "text/html; charset=utf-8" ] && [ "$(hdr Cache-Control)" = no-cache ]; then
        h_ok "GET $p is index.html (its files under $VER) with the console's CSP, no-cache"
    else
        h_not_ok "GET $p: $st $(hdr Content-Type) [$(csps)] cache $(hdr Cache-Control)"
    fi
done
if grep -qE '"/console/[^v]' "$H_TMP/index.served"; then
    h_not_ok "index.html names a file outside the version: $(grep -oE '"/console/[^v][^"]*' "$H_TMP/index.served" | head -n1)"
else
    h_ok "index.html names no file outside $VER"
fi

# --- under the version: the same bytes, cached for good; what index.html names is all there -------
bad=0
while IFS= read -r f; do
    st=$(get "/console/$VER/$f")
    if [ "$st" != 200 ] || ! cmp -s "$H_TMP/body" "$SRC/$f" || [ "$(csps)" != "$CSP" ] ||
        [ "$(hdr Cache-Control)" != "public, max-age=31536000, immutable" ]; then
        h_not_ok "/console/$VER/$f: $st, cache $(hdr Cache-Control)"
        bad=1
    fi
done < <(cd "$SRC" && find . -type f \( -name '*.js' -o -name '*.css' \) | sed 's|^\./||' | sort)
[ $bad = 0 ] && h_ok "every module and style sheet under $VER: 200, byte for byte, Cache-Control immutable for a year"
named=$(grep -oE "\"/console/$VER/[^\"]+\"" "$H_TMP/index.served" | tr -d '"' | sort -u)
bad=0
for p in $named; do
    [ "$(get "$p")" = 200 ] || { h_not_ok "index.html names $p, which answers $(get "$p")"; bad=1; }
done
[ $bad = 0 ] && h_ok "the $(echo "$named" | wc -l) files index.html names all answer 200"
other=v-0000000000000000
[ "$VER" = $other ] && other=v-1111111111111111
st=$(get "/console/$other/app.js")
if [ "$st" = 200 ] && cmp -s "$H_TMP/body" "$SRC/app.js" && [ "$(hdr Cache-Control)" = no-cache ]; then
    h_ok "another version's path (a page from before an upgrade) gets the file, not cached for good"
else
    h_not_ok "/console/$other/app.js: $st, cache $(hdr Cache-Control)"
fi

# --- ETag: the same file again is a 304 without a body; another tag gets it all ---------------
get /console/app.js >/dev/null
etag=$(hdr ETag)
h_match '^"[0-9a-f]{32}"$' "$etag" "the ETag is the content's hash, quoted"
h_eq 304 "$(get /console/app.js -H "If-None-Match: $etag")" "If-None-Match with it: 304"
h_eq 0 "$(stat -c %s "$H_TMP/body")" "with no body"
h_eq "$etag" "$(hdr ETag)" "and the same ETag"
h_eq 200 "$(get /console/app.js -H 'If-None-Match: "0000"')" "another tag: 200"
h_eq "$(stat -c %s "$SRC/app.js")" "$(stat -c %s "$H_TMP/body")" "with the whole file"
h_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' --head "$H_WEB_URL/console/style.css")" "HEAD works"

# --- only the table: unknown names, traversal, other methods ----------------------------------
for p in /nothing /console/ /console /console/nothing.js /console/README.md /console/../index.html \
    /console/%2e%2e/index.html /console/pages/../app.js /console//app.js /console/./app.js \
    /console/app.js/ /console/APP.JS /index.htm /openapi.json /etc/passwd /console/..%2f..%2fetc/passwd \
    /src/web/console/app.js /console/pages /console/pages/ "/console/$VER/index.html" "/console/$VER/" \
    "/console/$VER/../app.js" /console/v-0123456789ABCDEF/app.js /console/v-12/app.js; do
    st=$(get "$p" --path-as-is)
    if [ "$st" = 404 ] && [[ "$(detail)" == "no such resource"* ]] &&
        [ "$(hdr Content-Type)" = application/problem+json ] && [ "$(csps)" = "$API_CSP" ]; then
        h_ok "GET $p is a 404 problem"
    else
        h_not_ok "GET $p must be a 404 problem: $st $(hdr Content-Type) $(head -c 200 "$H_TMP/body")"
    fi
done
for m in POST PUT DELETE PATCH; do
    st=$(get /console/app.js -X "$m")
    if [ "$st" = 405 ] && [ "$(hdr Allow)" = "GET, HEAD" ]; then
        h_ok "$m /console/app.js is 405 with Allow: GET, HEAD"
    else
        h_not_ok "$m /console/app.js: $st, Allow $(hdr Allow)"
    fi
done
h_eq 405 "$(get / -X POST)" "POST / is 405"

# --- the API is unchanged ------------------------------------------------------------------------
h_eq 200 "$(get /api/v1/openapi.json)" "GET /api/v1/openapi.json is 200"
h_eq "$API_CSP" "$(csps)" "with the API's CSP alone"
h_eq no-store "$(hdr Cache-Control)" "and Cache-Control: no-store"
h_eq 401 "$(get /api/v1/me)" "GET /api/v1/me without a session is 401"
h_eq "$API_CSP" "$(csps)" "with the API's CSP"
for p in /api/v1 /api/v1/ /api /api/ /api/v2/jobs /api/v1/index.html /api/v1/console/app.js; do
    st=$(get "$p")
    if [ "$st" = 404 ] && [[ "$(detail)" == "no such resource: "*"openapi.json)" ]]; then
        h_ok "GET $p is the API's 404"
    else
        h_not_ok "GET $p must be the API's 404: $st $(detail)"
    fi
done
