#!/usr/bin/env bash
# The console in a real browser (headless Chromium, tests/browser/scenario_viewer.py)
# as a viewer, against a real PostgreSQL, simulator, daemon and amtacs-web: the
# viewer sees every page (Jobs, a running job, a job's connection choice --
# its listed connections in order, the one that ran it, each try and why --,
# Connections with the chart, Alerts) but no Kill, no Full Comm buttons, no acknowledge and no admin page
# (#/admin says "admins only" or is not shown; the navigation has no Admin).
# A forged kill and a forged Full Comm change, sent from the page with the
# viewer's own session cookie and CSRF token, are refused by PostgreSQL (403,
# its "permission denied" as the detail). A cross-site form post (a page
# served by another server on another port, posting to amtacs-web with the
# browser's cookie) is refused without the CSRF token and kills nothing, for
# the viewer and for an operator who may kill. No CSP violation on any page.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/browser.sh"

h_browser_check || exit 77

h_console_services
H_CONN_EXTRA="    allow_kill: true" h_console_start

PW=correct-horse-battery
printf '%s\n' "$PW" | ctl_as admin1 user add vera --role viewer >/dev/null
printf '%s\n' "$PW" | ctl_as admin1 user add olga --role operator >/dev/null

# jobs that ended (one failed: an alert), and one held running (runs until killed)
h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT >/dev/null
h_ctl submit script -C AMTDEMO -a DEMO2 -s RUN_FILENAMETEST.ps1 >/dev/null
h_wait_sql 120 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'" || h_not_ok "the first jobs ended"
# a job that lists ALTCONN then AMTDEMO and ran on AMTDEMO once ALTCONN could
# not start it: recorded as the daemon records a failover (acs.jobs_fail_over;
# the fault matrix makes real ones), to see the job page show the choice
CHOICE=$(h_sql -c "SELECT min(id) FROM acs.jobs")
h_sql -c "UPDATE acs.jobs SET listed = '{ALTCONN,AMTDEMO}', tried = jsonb_build_array(jsonb_build_object(
            'connection', 'ALTCONN', 'error', 'connect: Connection refused', 'at', enqueued_at))
          WHERE id = $CHOICE" >/dev/null
JOB=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT -r held)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $JOB" || h_not_ok "job $JOB runs"
FAILED=$(h_sql -c "SELECT id FROM acs.jobs WHERE result = 'failure' ORDER BY id LIMIT 1")
h_sql -c "INSERT INTO acs.alerts (job_id, connection, code, name, message)
          SELECT $FAILED, 'AMTDEMO', 11, 'ERROR', 'job $FAILED ended ERROR (test)'
           WHERE NOT EXISTS (SELECT 1 FROM acs.alerts WHERE job_id = $FAILED)" >/dev/null
ALERTS=$(h_sql -c "SELECT count(*) FROM acs.alerts WHERE acknowledged_at IS NULL")

# another origin: a plain web server on another port with a page that posts
# forms to amtacs-web (no CSRF token: a page of another origin cannot read it)
EVIL_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$H_TMP/evil"
cat >"$H_TMP/evil/index.html" <<HTML
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>another site</title></head>
<body>
<form id="kill" method="POST" action="$H_WEB_URL/api/v1/jobs/$JOB/kill">
  <button type="submit" id="kill-go">Win a prize</button>
</form>
<form id="kill-json" method="POST" enctype="text/plain" action="$H_WEB_URL/api/v1/jobs/$JOB/kill">
  <input type="hidden" name='{"x":"' value='"}'>
  <button type="submit" id="kill-json-go">Win another</button>
</form>
</body></html>
HTML
python3 -m http.server "$EVIL_PORT" --bind 127.0.0.1 --directory "$H_TMP/evil" >"$H_TMP/evil.log" 2>&1 &
H_PIDS+=("$!")
h_wait_until 30 curl -fsS -o /dev/null "http://127.0.0.1:$EVIL_PORT/index.html" || h_not_ok "the other site serves its page"

AMTACS_WEB_URL=$H_WEB_URL AMTACS_SIM_URL=$H_SIM_URL AMTACS_PASSWORD=$PW AMTACS_JOB=$JOB \
    AMTACS_CHOICE_JOB=$CHOICE AMTACS_ALERTS=$ALERTS AMTACS_EVIL_URL="http://127.0.0.1:$EVIL_PORT/index.html" \
    h_browser_run scenario_viewer.py

h_eq "running||0" "$(h_sql -c "SELECT state || '|' || coalesce(kill_requested_by, '') FROM acs.jobs WHERE id = $JOB")|$(h_sim_counter .kills)" \
    "job $JOB still runs: no kill was requested or sent"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.audit WHERE action IN ('kill', 'comm')")" \
    "the audit has no kill and no Full Comm change"
h_eq enabled "$(h_sql -c "SELECT comm_state FROM acs.connections WHERE name = 'AMTDEMO'")" "Full Comm is as it was"
h_eq "$ALERTS" "$(h_sql -c "SELECT count(*) FROM acs.alerts WHERE acknowledged_at IS NULL")" "no alert was acknowledged"
h_daemons_stop
