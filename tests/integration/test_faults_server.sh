#!/usr/bin/env bash
# The fault matrix, part 1: the AMT server misbehaves while a mixed workload of
# 252 jobs runs: latency, 5xx answers, connection resets (before and after the
# call took effect), hangs past the daemon's HTTP timeout, the server down
# for a while and back, and lost Start answers before the daemon knows that
# the server's Start is idempotent. Every job must end once, with the catalog's result.
# (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
none() { :; }
fm_run baseline "no fault (baseline)" none none none 3

fm_fault latency "latency 150 ms on every call" '{"latency_ms":150}' 4
fm_fault 5xx "30 % of calls answer 503" '{"error_rate":0.3,"error_status":503}' 4
fm_fault 500 "20 % of Start, Kill and logon calls answer 500" \
    '{"error_rate":0.2,"error_status":500,"routes":["start","kill","logon"]}' 4
fm_fault resets "15 % reset before, 15 % after the call took effect" \
    '{"reset_rate":0.15,"reset_after_rate":0.15}' 4
fm_fault hangs "5 % of calls hang 4 s (HTTP timeout 2 s)" '{"hang_rate":0.05,"hang_ms":4000}' 4
fm_fault down "server down 3 s, then back" '{"down":true}' 3 4


# The daemon starts while the server is flaky: its first heartbeat fails, so it
# does not know yet that Start is idempotent when Start answers get lost.
fm_begin heartbeat-first "first heartbeat fails, then 30 % of Start answers lost"
fm_faults '{"error_rate":1,"error_status":503,"routes":["heartbeat"]}'
fm_daemon --no-wait
h_wait_until 20 grep -q 'event=conn.heartbeat_failed' "$H_DAEMON_LOG" || h_not_ok "heartbeat-first: the first heartbeat failed"
fm_faults '{"reset_after_rate":0.3,"routes":["start","heartbeat"]}'
fm_submit $((FM_JOBS / FM_WAVES))
fm_during 3 none
fm_faults_fired
fm_faults_off
fm_finish

fm_table
