# shellcheck shell=bash
# Browser tests (tests/browser/*.py, headless Chromium through Selenium):
# source after harness.sh and web.sh.
#   h_browser_check        true when chromium, chromedriver and python3-selenium
#                          are there (scripts/deps installs them); else says why
#   h_browser_run SCRIPT   runs tests/browser/SCRIPT with the environment given,
#                          its TAP lines counted as this test's
H_BROWSER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../browser" && pwd)"
H_BROWSER_PY=/usr/bin/python3
export AMTACS_SCREENSHOTS="${AMTACS_SCREENSHOTS:-$AMTACS_SRC/build/screenshots}"

h_browser_check() {
    local miss=()
    [ -x /usr/bin/chromium ] || miss+=(chromium)
    [ -x /usr/bin/chromedriver ] || miss+=(chromium-driver)
    "$H_BROWSER_PY" -c 'import selenium' 2>/dev/null || miss+=(python3-selenium)
    if [ ${#miss[@]} -gt 0 ]; then
        echo "# skipped: no ${miss[*]} (scripts/deps installs them)"
        return 1
    fi
}

h_browser_run() {
    local script=$1 out="$H_TMP/browser.$1.out" rc=0
    shift
    PYTHONPATH="$H_BROWSER_DIR" PYTHONDONTWRITEBYTECODE=1 HOME="$H_TMP" \
        "$H_BROWSER_PY" "$H_BROWSER_DIR/$script" "$@" >"$out" 2>&1 || rc=$?
    cat "$out"
    H_PASSED=$((H_PASSED + $(grep -c '^ok - ' "$out" || true)))
    H_FAILED=$((H_FAILED + $(grep -c '^not ok - ' "$out" || true)))
    if [ $rc -ne 0 ] && ! grep -q '^not ok - ' "$out"; then
        h_not_ok "$script ran to its end (exit $rc)"
    fi
}

# The console tests' common set-up, in two steps (a test may do its own
# between them, e.g. another Batch User):
#   h_console_services [HELD EVERY TEXT]
#       PostgreSQL (migrated), the simulator, Batch User amtopcon, the roles
#       admin1 (acs_admin, for amtacsctl) and web1 (amtacs-web's login). With
#       HELD, the simulator's catalog gets a job of that name that runs until
#       it is killed or told to end, writing TEXT every EVERY simulated
#       seconds ({n}: the line's number), so that a scenario has a job running
#       as long as it needs.
#   h_console_start [WEB_LINE...]
#       $CFG (the daemon's connections: h_daemon_config's, with H_CONN_EXTRA;
#       a web: section on web1, db_pool 4, and each WEB_LINE), then the daemon
#       (ready) and amtacs-web.
h_console_services() {
    h_pg_start
    h_ctl migrate >/dev/null
    if [ $# -ge 3 ]; then
        # TEXT goes into the catalog as it is, between double quotes (YAML escapes allowed)
        python3 - "$1" "$2" "$3" "$AMTACS_SRC/config/amt-catalog.yaml" >"$H_TMP/catalog.yaml" <<'PY'
import sys
name, every, text, path = sys.argv[1:5]
held = ("      - name: %s\n        duration: forever\n        messages:\n"
        "          - {at: 0, every: %s, count: 10000, text: \"%s\"}\n" % (name, every, text))
for line in open(path, encoding="utf-8"):
    if line == "      - name: LONGRUNNINGREPORT\n":
        sys.stdout.write(held)
    sys.stdout.write(line)
PY
        grep -q "name: $1\$" "$H_TMP/catalog.yaml" || { echo "h_console_services: catalog edit failed" >&2; exit 1; }
        h_sim_start --catalog "$H_TMP/catalog.yaml"
    else
        h_sim_start
    fi
    h_batch_user amtopcon amtopcon-secret
    h_sql -c "CREATE ROLE admin1 LOGIN IN ROLE acs_admin" >/dev/null
    h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
}

h_console_start() {
    CFG="$H_TMP/amtacs.yaml"
    h_daemon_config "$CFG"
    {
        printf 'web:\n  listen: "127.0.0.1:0"\n  conninfo: "%s application_name=amtacs-web"\n  db_pool: 4\n' "$(conn web1)"
        local l
        for l in "$@"; do printf '  %s\n' "$l"; done
    } >>"$CFG"
    h_daemon_start "$CFG"
    h_daemon_ready
    h_web_start "$CFG"
}
