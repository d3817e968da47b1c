#!/usr/bin/env bash
# Integration Selection with a connection group (issue 6/7, test 5): a group
# of three simulators gets 1,000 jobs in one submit. Its members that are up
# take them least in flight first, so the three share the work. One member's
# server stops mid-run (SIGSTOP: a killed simulator would forget its
# requests, and the point is that its running jobs are followed when it comes
# back): its queued share goes to the other two, the jobs it holds stay its
# own, and they are followed to their end when it resumes. 0 lost, 0 started
# twice: every job ends DONE, and each taskId is one request on one server.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_batch_user amtopcon amtopcon-secret
h_sim_start; G1_URL=$H_SIM_URL
h_sim_start; G2_URL=$H_SIM_URL; G2_PID=$H_SIM_PID
h_sim_start; G3_URL=$H_SIM_URL
# A stopped simulator answers nothing, not even SIGTERM: resume it before the
# harness stops everything, whichever way the test ends.
trap 'rc=$?; kill -CONT "$G2_PID" 2>/dev/null; (exit $rc); h_cleanup' EXIT

CFG=$H_TMP/amtacsd.yaml
{
    cat <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
log_level: info
daemon:
  lease_seconds: 5
  heartbeat_interval: 300ms
  claim_batch: 10
http:
  listen: "127.0.0.1:0"
connections:
CONF
    for n in G1 G2 G3; do
        url=${n}_URL
        # Many Start tries: a Start caught by the stop is sent again (under
        # its taskId) until the server is back, never given up in doubt.
        cat <<CONN
  - name: $n
    url: ${!url}
    batch_user: amtopcon
    failover_after: 2s
    max_in_flight: 40
    poll:
      initial_delay: 20ms
      interval: 50ms
      max_interval: 200ms
    start_retry:
      attempts: 100
      delay: 50ms
      max_delay: 500ms
    http:
      connect_timeout: 1s
      timeout: 1s
CONN
    done
} >"$CFG"
h_daemon_start "$CFG"
h_daemon_ready
h_wait_sql 30 "3" "SELECT count(*) FROM acs.connections WHERE server_ok AND name LIKE 'G_'"
h_eq "created" "$(h_sql -c "SELECT acs.group_set('G', ARRAY['G1','G2','G3'])")" "the admin defines group G"

sim() { curl -fsS --max-time 5 -X "$2" "$1$3" ${4:+--data "$4"}; }

h_sql -c "SELECT count(*) FROM acs.submit_jobs((SELECT jsonb_agg(jsonb_build_object(
              'kind', 'batch', 'group', 'G', 'application', 'DEMO2', 'name', 'REPORTTEST01'))
            FROM generate_series(1, 1000)))" >/dev/null
h_eq "1000" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE conn_group = 'G'")" "1,000 jobs submitted to group G"

# The first 300 jobs claimed: each member took a share (least in flight first).
h_wait_sql 120 "t" "SELECT count(*) >= 300 FROM acs.jobs WHERE state <> 'queued'"
share=$(h_sql -c "SELECT string_agg(n::text, ' ' ORDER BY c) FROM (
                    SELECT connection AS c, count(*) AS n FROM (
                      SELECT connection FROM acs.jobs WHERE claimed_at IS NOT NULL
                       ORDER BY claimed_at, id LIMIT 300) AS f GROUP BY connection) AS s")
h_log "first 300 claims by G1 G2 G3: $share"
read -r s1 s2 s3 <<<"$share"
h_eq "t" "$([ "${s1:-0}" -ge 60 ] && [ "${s2:-0}" -ge 60 ] && [ "${s3:-0}" -ge 60 ] && echo t || echo f)" \
    "the first 300 jobs went to all three members, each at least a fifth ($share)"

# G2's server stops mid-run.
h_wait_sql 60 "t" "SELECT count(*) >= 50 FROM acs.jobs WHERE connection = 'G2' AND state <> 'queued'"
kill -STOP "$G2_PID"
h_wait_sql 30 "f" "SELECT server_ok FROM acs.connections WHERE name = 'G2'"
# Once the others have gone on claiming, G2's jobs are what it held when it
# stopped: from now on it takes none.
mark=$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state <> 'queued' AND connection <> 'G2'")
h_wait_sql 60 "t" "SELECT count(*) >= $mark + 50 FROM acs.jobs WHERE state <> 'queued' AND connection <> 'G2'"
g2_all=$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'G2'")
g2_open=$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'G2' AND state <> 'finished'")
h_eq "t" "$([ "$g2_open" -gt 0 ] && echo t || echo f)" "G2 held unfinished jobs when it stopped ($g2_open)"
h_wait_sql 180 "$g2_open" "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'" || {
    h_sql -c "SELECT connection, state, count(*) FROM acs.jobs WHERE state <> 'finished' GROUP BY 1, 2" >&2
    exit 1
}
h_eq "$g2_all" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'G2'")" \
    "while G2 is stopped it takes no job: its queued share went to G1 and G3, which ended every other job"
h_eq "$g2_open" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'G2' AND state <> 'finished'")" \
    "the $g2_open jobs G2 held stay its own while it is stopped"

kill -CONT "$G2_PID"
h_wait_sql 180 "0" "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'"
h_eq "1000" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE completion_code = 4")" \
    "G2 back: its jobs were followed to their end; all 1,000 ended DONE (0 lost)"
h_eq "$g2_all" "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'G2'")" \
    "the jobs G2 held ran on G2, and no other"

# 0 started twice: each taskId is one request, on the one server the job's
# record names.
tasks=$H_TMP/tasks
for n in G1 G2 G3; do
    url=${n}_URL
    sim "${!url}" GET /sim/tasks | jq -r --arg n "$n" '.tasks[] | "\(.taskId) \($n)"'
done | sort >"$tasks"
h_sql -c "SELECT task_id || ' ' || connection FROM acs.jobs ORDER BY 1" | sort >"$H_TMP/jobs"
h_eq "1000" "$(wc -l <"$tasks")" "the three servers hold 1,000 requests in all"
h_eq "1000" "$(cut -d' ' -f1 "$tasks" | sort -u | wc -l)" "no taskId is on two servers"
h_eq "" "$(diff "$tasks" "$H_TMP/jobs")" "each job's taskId is on the server its record names"
h_match 'amtacs_jobs_in_flight\{connection="G2"\}' "$(curl -fsS "$(h_daemon_http)/metrics")" \
    "the metrics have a series per connection used"
