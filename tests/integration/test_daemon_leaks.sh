#!/usr/bin/env bash
# A leak check of the daemon's start-run-stop cycle: start it, run a small
# mixed workload (batch and script jobs, children, paging, failures, a kill of
# a running job and of a queued one, Full Comm changed and restored, a lost
# Start answer, 503s, tokens expired, PostgreSQL connections terminated), then
# SIGTERM with a job still running: the daemon must exit 0 with nothing leaked.
#
# Under the ASan build (the binary carries __asan_init) LeakSanitizer checks
# at exit (ASAN_OPTIONS detect_leaks=1); otherwise the daemon runs under
# valgrind --leak-check=full, and definite or indirect leaks, or any memory
# error, make it exit 99. Without either the test is skipped (exit 77).
source "$(dirname "$0")/../lib/harness.sh"

# (grep without -q reads all of nm's output: with pipefail, nm killed by SIGPIPE would say "no")
if nm "$DAEMON_BIN" 2>/dev/null | grep ' __asan_init' >/dev/null; then
    mode=asan
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
elif command -v valgrind >/dev/null 2>&1; then
    mode=valgrind
    # valgrind execs the daemon in its own process: $! is the daemon's pid.
    cat >"$H_TMP/amtacsd-valgrind" <<EOF
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \\
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no \\
    --log-file="$H_TMP/valgrind.%p.log" "$DAEMON_BIN" "\$@"
EOF
    chmod +x "$H_TMP/amtacsd-valgrind"
    DAEMON_BIN="$H_TMP/amtacsd-valgrind"
else
    echo "# SKIP: neither an ASan build nor valgrind (scripts/deps installs valgrind)"
    H_REPORT=0
    exit 77
fi
h_log "leak check with $mode"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
h_sql -c "SELECT acs.register_connection('AMTDEMO', 'enabled')" >/dev/null
H_LOG_LEVEL=info H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
sed -i 's/dbname=amtacs"/dbname=amtacs application_name=amtacsd"/; s/attempts: 3/attempts: 20/' "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
pid=$H_DAEMON_PID
if ! h_wait_until 60 grep -q 'event=conn.features' "$H_DAEMON_LOG"; then
    h_not_ok "the daemon did not come up"
    exit 1
fi
sim() { curl -fsS -X "$1" ${3:+--data "$3"} "$H_SIM_URL$2" >/dev/null; }
# (a dead daemon ends the wait at once: the checks below then fail)
all_done() { ! kill -0 "$pid" 2>/dev/null || [ "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE state <> 'finished' AND id <> ${keep:-0}")" = 0 ]; }

# A Start whose answer is lost, then two 503s: retried, the same request.
sim PUT /sim/faults '{"reset_after_rate":1,"routes":["start"],"count":1}'
ids=()
for j in INSTANT ECHOPARAMS PARENTJOB ERRORJOB MANYMESSAGES; do
    ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j $j -v N=1 -v "M=x y")")
done
sim PUT /sim/faults '{"error_rate":1,"error_status":503,"count":2}'
ids+=("$(h_ctl submit script -C AMTDEMO -a DEMO2 -s RUN_PARAMETERTEST.ps1 -p P=1)")
ids+=("$(h_ctl submit script -C AMTDEMO -a DEMO2 -s 'F:\Amt\Scripts\DEMO2\RUN_FILENAMETEST.ps1')")
ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ECHOPARAMS -u NOBODY)")

# A running job killed; tokens expired; a job kept running through the stop.
long=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
keep=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $long" || true
sim POST /sim/tokens/expire
h_ctl kill "$long" >/dev/null || true

# Full Comm: disabled (a queued job killed meanwhile ends without a Start), then enabled.
h_ctl comm disable AMTDEMO >/dev/null
queued=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
h_ctl kill "$queued" >/dev/null || true
h_ctl comm limit AMTDEMO >/dev/null
h_ctl comm enable AMTDEMO >/dev/null
# Both PostgreSQL connections terminated: the daemon reconnects.
h_sql -c "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity
          WHERE application_name = 'amtacsd' OFFSET 0) AS d" >/dev/null
ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANTMSG)")

h_wait_until 120 all_done && h_ok "the workload ran to its end under $mode" ||
    h_not_ok "jobs left: $(h_sql -c "SELECT string_agg(id || ' ' || state, ', ') FROM acs.jobs WHERE state <> 'finished'")"
h_eq "KILLED|KILLED" "$(h_sql -c "SELECT string_agg(completion_name, '|' ORDER BY id) FROM acs.job_results WHERE id IN ($long, $queued)")" \
    "a running and a queued job were killed"
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = $keep" || true

# The stop: SIGTERM with a job still running.
kill -TERM "$pid"
st=0
wait "$pid" || st=$?
h_eq 0 "$st" "the daemon exits 0 after SIGTERM (a leak or a memory error would make it fail)"
h_eq running "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $keep")" "the job still running was left running"
if [ $mode = asan ]; then
    if grep -qE 'LeakSanitizer|AddressSanitizer' "$H_DAEMON_LOG"; then
        h_not_ok "LeakSanitizer found a leak"
        grep -A30 -E 'LeakSanitizer|AddressSanitizer' "$H_DAEMON_LOG" | head -40 | sed 's/^/#   /'
    else
        h_ok "LeakSanitizer found nothing"
    fi
else
    report=$(cat "$H_TMP"/valgrind.*.log 2>/dev/null || true)
    if grep -qE 'definitely lost|indirectly lost|Invalid (read|write)|uninitialised' <<<"$report"; then
        h_not_ok "valgrind found a leak or a memory error"
        head -60 <<<"$report" | sed 's/^/#   /'
    else
        h_ok "valgrind found no leak and no memory error"
    fi
fi
