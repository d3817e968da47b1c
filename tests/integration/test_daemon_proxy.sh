# connections[].proxy: the daemon goes through the proxy its configuration
# names, and only that one. http_proxy, https_proxy and ALL_PROXY in its
# environment are ignored (jobs run while they point at a port where nothing
# listens); a configured proxy that cannot be reached fails the calls with an
# error that says a proxy was in the way (without quoting its URL).
source "$(dirname "$0")/../lib/harness.sh"

unset no_proxy NO_PROXY
h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
result() { h_sql -c "SELECT state, completion_code, completion_name, result FROM acs.job_results WHERE id = $1"; }
dead=http://127.0.0.1:9 # discard: nothing listens there

### (a) proxies in the environment are not used ###################################

h_daemon_config "$H_TMP/env.yaml"
http_proxy=$dead HTTP_PROXY=$dead https_proxy=$dead HTTPS_PROXY=$dead ALL_PROXY=$dead \
    all_proxy=$dead h_daemon_start "$H_TMP/env.yaml"
h_daemon_ready
h_match "http_proxy=$dead" "$(tr '\0' '\n' <"/proc/$H_DAEMON_PID/environ")" \
    "the daemon's environment names a proxy where nothing listens"
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id" --timeout 120 >/dev/null || true
h_eq "finished|4|DONE|success" "$(result "$id")" "a job runs all the same: the environment's proxy is ignored"
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true

### (b) a configured proxy that cannot be reached ##################################

logons=$(h_sim_counter .routes.logon)
H_CONN_EXTRA="    proxy: $dead/" h_daemon_config "$H_TMP/proxy.yaml"
h_daemon_start "$H_TMP/proxy.yaml"
h_daemon_ready
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id" --timeout 120 >/dev/null && h_not_ok "wait exits non-zero for the job" ||
    h_ok "wait exits non-zero for the job"
h_eq "finished|23|WEB_SERVER_ERROR|failure" "$(result "$id")" \
    "with proxy: set to a dead address the job ends WEB_SERVER_ERROR (23)"
err=$(h_sql -c "SELECT error FROM acs.job_results WHERE id = $id")
h_match "cannot reach $H_SIM_URL through the configured proxy" "$err" "its error says the proxy was in the way"
h_match "127\.0\.0\.1.* 9|port 9" "$err" "and names the address that refused"
h_eq "$logons" "$(h_sim_counter .routes.logon)" "nothing reached the server directly"
