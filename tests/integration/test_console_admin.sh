#!/usr/bin/env bash
# The console in a real browser (headless Chromium, tests/browser/scenario_admin.py)
# as an admin, against a real PostgreSQL, simulator, daemon and amtacs-web:
# disables Full Comm of AMTDEMO on the Connections page (confirmed); a job
# submitted over the API with a token stays queued on the Jobs page (the
# simulator got no Start); enables Full Comm again: the job runs to DONE on
# screen. Sets the password of Batch User webbu on the Admin page: the
# simulator knows webbu with that password only (the database held an older
# one), and the next job of WEBCONN logs on with it and runs to DONE; the
# password never appears in the page afterwards. Then an API token is created
# (shown once) and revoked, a console user is created, connection groups are
# set (in order), changed, refused with the database's message for an unknown
# member, and deleted, and the audit log shows it all. No CSP violation on
# any page.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/browser.sh"

h_browser_check || exit 77

h_console_services
# webbu: the database holds an old password, the simulator only the new one,
# which the test types into the Admin page
BU_OLD='webbu-Old-Secret-1'
BU_PW='webbu-New-Secret-7!'
h_batch_user webbu "$BU_OLD"
curl -fsS --max-time 5 -X POST "$H_SIM_URL/sim/users" \
    --data "{\"name\":\"webbu\",\"password\":\"$BU_PW\"}" >/dev/null

H_CONN_EXTRA="    allow_kill: true
  - name: WEBCONN
    url: $H_SIM_URL
    batch_user: webbu
    poll:
      initial_delay: 20ms
      interval: 50ms
      max_interval: 200ms" h_console_start "public_key_file: $H_TMP/secret.key.pub"

PW=correct-horse-battery
printf '%s\n' "$PW" | ctl_as admin1 user add adam --role admin >/dev/null
TOKEN=$(ctl_as admin1 token create --name robot --role scheduler 2>/dev/null)
h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT >/dev/null
h_wait_sql 60 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'" || h_not_ok "a first job ended"
h_eq enabled "$(h_sql -c "SELECT comm_state FROM acs.connections WHERE name = 'AMTDEMO'")" "AMTDEMO starts with Full Comm enabled"

AMTACS_WEB_URL=$H_WEB_URL AMTACS_SIM_URL=$H_SIM_URL AMTACS_PASSWORD=$PW AMTACS_TOKEN=$TOKEN \
    AMTACS_BU_PASSWORD=$BU_PW h_browser_run scenario_admin.py

h_eq "adam|comm|AMTDEMO|disabled adam|comm|AMTDEMO|enabled adam|batch_user_set|webbu" \
    "$(h_sql -c "SELECT string_agg(concat_ws('|', actor, action, target, detail->>'to'), ' ' ORDER BY id)
                   FROM acs.audit WHERE action IN ('comm', 'batch_user_set') AND actor = 'adam'
                    AND target <> 'WEBCONN'")" \
    "the audit has adam's two Full Comm changes and the Batch User's password, in that order"
h_eq "PAIR:AMTDEMO,WEBCONN" \
    "$(h_sql -c "SELECT string_agg(g.name || ':' || (SELECT string_agg(m.connection, ',' ORDER BY m.position)
                                                      FROM acs.connection_group_members AS m
                                                     WHERE m.group_name = g.name), ' ')
                   FROM acs.connection_groups AS g")" \
    "the group adam set on the Admin page is in the database, members in order (SPARE deleted, BAD never made)"
h_eq "adam|group_set|PAIR adam|group_set|PAIR adam|group_set|SPARE adam|group_delete|SPARE" \
    "$(h_sql -c "SELECT string_agg(concat_ws('|', actor, action, target), ' ' ORDER BY id)
                   FROM acs.audit WHERE action IN ('group_set', 'group_delete')")" \
    "the audit has each change of a group, by adam"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.batch_users WHERE name = 'webbu'
                     AND position(convert_to('$BU_PW', 'UTF8') IN sealed_password) = 0
                     AND updated_at > created_at")" \
    "webbu's password was replaced and is stored sealed, never in clear"
in_logs=$(cat "$H_TMP"/*.log 2>/dev/null | grep -c -F -- "$BU_PW" || true)
h_eq "0 0" "$(h_sql -c "SELECT count(*) FROM acs.job_logs WHERE strpos(log, '$BU_PW') > 0") $in_logs" \
    "the password is in no job log and no log of the daemon, amtacs-web or the simulator"
h_daemons_stop
