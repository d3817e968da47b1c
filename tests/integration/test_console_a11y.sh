#!/usr/bin/env bash
# The console by keyboard, for screen readers, in dark mode and 360 px wide,
# in a real browser (headless Chromium, tests/browser/scenario_a11y.py)
# against a real PostgreSQL, simulator, daemon and amtacs-web: log in and
# reach Kill by keyboard (Escape cancels, nothing is killed), the focus
# visible; every control named; every text at least 4.5:1 (3:1 large) on
# its background in light and dark mode; dark mode follows the system; no
# page scrolls sideways at 360 px. No CSP violation.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/browser.sh"

h_browser_check || exit 77

# a job that runs until it is killed: the scenario needs one running
h_console_services HELDREPORT 500 "step {n}"
H_CONN_EXTRA="    allow_kill: true" h_console_start

PW=correct-horse-battery
printf '%s\n' "$PW" | ctl_as admin1 user add ada --role admin >/dev/null
for i in 1 2 3; do h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT -r "done-$i" >/dev/null; done
h_ctl submit batch -C AMTDEMO -a DEMO2 -j PARENTJOB -r parent >/dev/null
DONE=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j MANYMESSAGES -r ended)
h_ctl submit batch -C AMTDEMO -a DEMO2 -j ERRORJOB -r failed >/dev/null
h_wait_sql 120 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'" || h_not_ok "the first jobs ended"
JOB=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j HELDREPORT -r held)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $JOB" || h_not_ok "the held job runs"

AMTACS_WEB_URL=$H_WEB_URL AMTACS_USER=ada AMTACS_PASSWORD=$PW AMTACS_JOB=$JOB AMTACS_DONE_JOB=$DONE \
    h_browser_run scenario_a11y.py
h_eq "" "$(h_sql -c "SELECT kill_requested_at FROM acs.jobs WHERE id = $JOB")" "the database holds no kill request"
h_daemons_stop
