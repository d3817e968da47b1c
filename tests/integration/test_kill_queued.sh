#!/usr/bin/env bash
# A job killed while still queued ends KILLED without a word to the AMT server,
# and its log says who killed it and that it never reached the server.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
h_sql -c "CREATE ROLE opsjane LOGIN IN ROLE acs_operator" >/dev/null
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_until 15 grep -q 'event=conn.features' "$H_DAEMON_LOG" || h_not_ok "wait ran out: the daemon reads the server's features"
h_ctl comm disable AMTDEMO >/dev/null
h_wait_until 15 grep -q 'event=conn.comm.*disabled' "$H_DAEMON_LOG" || h_not_ok "wait ran out: the daemon sees comm disabled"
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
h_eq queued "$(psql -X -At -U opsjane -c "SELECT acs.request_kill($id)")" "opsjane kills the queued job"
h_ctl wait "$id" --timeout 30 >/dev/null || true
h_eq "finished KILLED" "$(h_sql -c "SELECT state || ' ' || completion_name FROM acs.job_results WHERE id = $id")" \
    "it ends KILLED"
log=$(h_ctl log "$id")
h_match 'amtacs: killed by opsjane while queued; it never reached the AMT server' "$log" \
    "its log says who killed it and that it never reached the server"
h_eq 0 "$(h_sim_counter .start_calls)" "no Start was sent"
h_ctl comm enable AMTDEMO >/dev/null
