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
