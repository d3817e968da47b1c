#!/usr/bin/env bash
# Logging in to the console in a real browser (headless Chromium,
# tests/browser/scenario_login.py) against a real PostgreSQL, simulator, daemon and amtacs-web: a
# wrong password says so plainly; repeated failures show the server's
# throttling message with its wait; a page asked for without a session is
# reached after login; a session ended elsewhere (logout in another tab, the
# same cookie) sends the page to the login page with the target kept, with
# "your session has ended", and logging in returns to the target. No CSP
# violation on any page.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/browser.sh"

h_browser_check || exit 77

h_console_services
h_console_start

PW=correct-horse-battery
printf '%s\n' "$PW" | ctl_as admin1 user add vera --role viewer >/dev/null
printf '%s\n' "$PW" | ctl_as admin1 user add tom --role viewer >/dev/null
# a job to ask for (its page is the target kept across the login)
JOB=$(ctl_as admin1 submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01 -r target)

AMTACS_WEB_URL=$H_WEB_URL AMTACS_USER=vera AMTACS_THROTTLED_USER=tom AMTACS_PASSWORD=$PW \
    AMTACS_JOB=$JOB h_browser_run scenario_login.py

# the failures the browser made were counted by PostgreSQL, per name
h_match '^([5-9]|[1-9][0-9])$' "$(h_sql -c "SELECT failures FROM acs.web_login_failures WHERE kind = 'user' AND key = 'tom'")" \
    "PostgreSQL counted tom's failed logins (acs.web_login_failures)"
h_daemons_stop
