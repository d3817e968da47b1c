# Roles, enforced by PostgreSQL itself: each of acs_scheduler, acs_operator,
# acs_admin and acs_daemon can do its job -- the real daemon and amtacsctl run
# under them -- and every forbidden action is refused by the server.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
for r in scheduler operator admin daemon; do
    h_sql -c "CREATE ROLE ${r}1 LOGIN IN ROLE acs_$r" >/dev/null
done
h_sql -c "CREATE ROLE nobody1 LOGIN" >/dev/null
# the server's log shows every statement of the daemon's (how many reads a storm costs)
h_sql -c "ALTER ROLE daemon1 SET log_statement = 'all'" >/dev/null
as() { local who=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U "$who" "$@"; }
conn() { echo "host=$PGHOST port=$PGPORT user=$1 dbname=$PGDATABASE"; }
# refused WHO DESCRIPTION SQL: PostgreSQL must say permission denied
refused() {
    local out
    if out=$(as "$1" -c "$3" 2>&1); then
        h_not_ok "$1 may not $2 (it could)"
    elif [[ "$out" == *"permission denied"* ]]; then
        h_ok "$1 may not $2: $(head -1 <<<"$out" | sed 's/^ERROR: *//')"
    else
        h_not_ok "$1 may not $2 (refused, but not by permissions: $out)"
    fi
}

h_sim_start
h_batch_user amtopcon amtopcon-secret
# The daemon runs as daemon1, a member of acs_daemon only.
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
sed -i "s/user=postgres/user=daemon1/" "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
h_wait_sql 60 1 "SELECT count(*) FROM acs.connections WHERE name = 'AMTDEMO'"

# --- scheduler: enqueue and read results -------------------------------------------
id=$("$CTL_BIN" --db "$(conn scheduler1)" submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
h_match '^[0-9]+$' "$id" "scheduler1 enqueues with amtacsctl submit"
out=$("$CTL_BIN" --db "$(conn scheduler1)" wait "$id" --timeout 30)
h_match "success DONE" "$out" "the daemon, running as an acs_daemon member, ran it; scheduler1 waits for it"
h_match "Completion Code : DONE" "$("$CTL_BIN" --db "$(conn scheduler1)" log "$id")" "scheduler1 reads the job log"
h_eq "DONE" "$(as scheduler1 -c "SELECT completion_name FROM acs.job_results WHERE id = $id")" "scheduler1 reads job_results"
refused scheduler1 "kill a job" "SELECT acs.request_kill($id)"
refused scheduler1 "change Full Comm" "SELECT acs.set_comm('AMTDEMO', 'disabled')"
refused scheduler1 "read Batch Users" "SELECT * FROM acs.batch_users"
refused scheduler1 "write a result" "SELECT acs.job_finish($id, 'x', 1, 4, NULL, 'forged')"
refused scheduler1 "update a job" "UPDATE acs.jobs SET completion_code = 4 WHERE id = $id"
refused scheduler1 "delete a job log" "DELETE FROM acs.job_logs"
refused scheduler1 "claim jobs" "SELECT * FROM acs.claim_jobs('x', 'AMTDEMO', 1, 30)"
refused scheduler1 "claim jobs (take_over form)" "SELECT * FROM acs.claim_jobs('x', 'AMTDEMO', 1, 30, false)"

# --- operator: kill, status, logs --------------------------------------------------
long=$("$CTL_BIN" --db "$(conn scheduler1)" submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $long"
h_match "KILLED|accepted the kill" "$("$CTL_BIN" --db "$(conn operator1)" kill "$long")" "operator1 kills a job with amtacsctl kill"
"$CTL_BIN" --db "$(conn operator1)" wait "$long" --timeout 60 --quiet >/dev/null || true
h_eq "KILLED" "$(as operator1 -c "SELECT completion_name FROM acs.job_results WHERE id = $long")" "and it ends KILLED"
h_match "AMTDEMO +enabled" "$("$CTL_BIN" --db "$(conn operator1)" comm status)" "operator1 reads comm status"
h_match "ID" "$("$CTL_BIN" --db "$(conn operator1)" alerts)" "operator1 reads alerts"
# Submitting is for the scheduler role and every role above it (0015_web_operate.sql,
# issue #12 "scheduler role or above"): an operator reruns jobs anyway, so it
# may enqueue one; the daemon and a login without a role still may not (below).
sub=$(as operator1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')")
h_match '^[0-9]+$' "$sub" "operator1 may enqueue (scheduler role or above)"
h_eq "operator1|operator1|submit" "$(h_sql -c "SELECT concat_ws('|', actor, role, action) FROM acs.audit
                                                  WHERE target = '$sub' AND action = 'submit'")" \
    "and the audit names operator1"
h_match '^[0-9]+$' "$(as admin1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')")" \
    "admin1 may enqueue too"
refused operator1 "change Full Comm" "SELECT acs.set_comm('AMTDEMO', 'disabled')"
refused operator1 "read Batch Users" "SELECT key_id FROM acs.batch_users"
refused operator1 "read a sealed password" "SELECT * FROM acs.batch_user_secret('amtopcon')"
refused operator1 "write a result" "SELECT acs.job_finish($id, 'x', 1, 4, NULL, 'forged')"

# --- admin: Full Comm and Batch Users ----------------------------------------------
h_match "disabled" "$("$CTL_BIN" --db "$(conn admin1)" comm disable AMTDEMO)" "admin1 disables Full Comm"
h_match "Full Comm enabled" "$("$CTL_BIN" --db "$(conn admin1)" comm enable AMTDEMO)" "and enables it"
out=$(printf 'amtopcon-secret\n' | "$CTL_BIN" --db "$(conn admin1)" batch-user set amtopcon --public-key "$H_TMP/secret.key.pub")
h_match "stored, sealed" "$out" "admin1 sets a Batch User's password"
h_match "amtopcon" "$("$CTL_BIN" --db "$(conn admin1)" batch-user list)" "admin1 lists Batch Users"
refused admin1 "read a sealed password through the daemon's function" "SELECT * FROM acs.batch_user_secret('amtopcon')"
refused admin1 "write a result" "SELECT acs.job_finish($id, 'x', 1, 4, NULL, 'forged')"
refused admin1 "claim jobs" "SELECT * FROM acs.claim_jobs('x', 'AMTDEMO', 1, 30)"
refused admin1 "update a job" "UPDATE acs.jobs SET state = 'finished' WHERE id = $id"

# --- daemon: only its statements ----------------------------------------------------
refused daemon1 "enqueue" "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')"
refused daemon1 "kill a job" "SELECT acs.request_kill($id)"
refused daemon1 "change Full Comm" "SELECT acs.set_comm('AMTDEMO', 'disabled')"
refused daemon1 "read the Batch Users table" "SELECT * FROM acs.batch_users"
refused daemon1 "set a password" "UPDATE acs.batch_users SET key_id = 'x'"
refused daemon1 "delete jobs" "DELETE FROM acs.jobs"
refused daemon1 "read job logs" "SELECT log FROM acs.job_logs"
# JORS is amtacs-web's alone (0016): the daemon's login reads no document or log.
refused daemon1 "read a job's document" "SELECT acs.job_document($id)"
refused daemon1 "read a job's log text" "SELECT * FROM acs.job_log_text($id)"
h_eq 0 "$(as daemon1 -c "SELECT count(*) FROM acs.kills_pending('x')")" "daemon1 asks which of its jobs are to be killed"
refused scheduler1 "ask for another daemon's pending kills" "SELECT * FROM acs.kills_pending('x')"

# --- anyone else: nothing ------------------------------------------------------------
refused nobody1 "read jobs" "SELECT * FROM acs.jobs"
refused nobody1 "enqueue" "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')"
refused nobody1 "kill a job" "SELECT acs.request_kill($id)"

# --- the daemon's writes and the sealed passwords: only their roles ----------------
for who in nobody1 scheduler1 operator1 admin1; do
    refused "$who" "record a job's messages" \
        "SELECT acs.job_add_messages($id, 'x', 1, '[{\"seq\":1,\"id\":1,\"text\":\"forged\"}]')"
done
h_eq 0 "$(as daemon1 -c "SELECT acs.job_add_messages($id, 'x', 1, '[]')")" \
    "daemon1 records messages (none here: the job is not its)"
for who in nobody1 scheduler1 operator1 daemon1; do
    refused "$who" "read a sealed password" "SELECT sealed_password FROM acs.batch_users"
done
# amtacsctl rekey re-seals every password under a new key: only admins read them.
h_eq 1 "$(as admin1 -c "SELECT count(sealed_password) FROM acs.batch_users WHERE name = 'amtopcon'")" \
    "admin1 reads sealed passwords (amtacsctl rekey re-seals them)"

# --- forged notifications: hints to read, never orders -----------------------------
# PostgreSQL lets any role that can connect NOTIFY on any channel, with any
# payload. nobody1 (no acs_* role) sends every channel the daemon and amtacsctl
# listen to, with the id of a running job and with garbage, and a storm. The
# jobs run on, nothing is written, and the daemon's log does not grow with it.
long1=$(as scheduler1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'LONGRUNNINGREPORT')")
long2=$(as scheduler1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'LONGRUNNINGREPORT')")
h_wait_sql 60 2 "SELECT count(*) FROM acs.jobs WHERE id IN ($long1, $long2) AND state = 'running'" ||
    h_not_ok "two long jobs run"
"$CTL_BIN" --db "$(conn scheduler1)" wait "$long1" --timeout 300 >"$H_TMP/wait.out" 2>&1 &
waiter=$!
kills_before=$(h_sim_counter .kills)
# What the daemon or a forged order could change (leases and heartbeats move on by themselves).
# snapshot [JOB]: leaving out JOB (a job submitted meanwhile).
snapshot() {
    local skip=${1:-0}
    h_sql -c "SELECT md5(coalesce((SELECT string_agg((to_jsonb(j) - 'lease_expires' - 'last_code')::text, ',' ORDER BY id)
                                   FROM acs.jobs j WHERE id <> $skip), '')
                 || coalesce((SELECT string_agg((to_jsonb(c) - 'last_contact' - 'server_ok' - 'server_checked_at'
                                                 - 'amt_version' - 'last_error' - 'last_error_at')::text, ',' ORDER BY name)
                              FROM acs.connections c), '')
                 || coalesce((SELECT string_agg(to_jsonb(a)::text, ',' ORDER BY id) FROM acs.alerts a
                              WHERE job_id IS DISTINCT FROM $skip), '')
                 || coalesce((SELECT string_agg(to_jsonb(b)::text, ',' ORDER BY name) FROM acs.batch_users b), '')
                 || (SELECT count(*) FROM acs.job_logs WHERE job_id <> $skip)::text
                 || '/' || (SELECT count(*) FROM acs.job_messages WHERE job_id <> $skip)::text)"
}
before=$(snapshot)
log_before=$(wc -l <"$H_DAEMON_LOG")
pglog_before=$(wc -l <"$H_PG_DATA/server.log")
big=$(printf '9%.0s' $(seq 1 40))
# One session, each statement its own transaction; 7999 bytes is the longest
# payload PostgreSQL lets through (8000 and more it refuses).
for ch in acs_kill acs_jobs acs_comm acs_batch_users acs_job_finished acs_job_messages acs_alerts; do
    printf '\\set ch %s\n' "$ch"
    for payload in "$long1" "$long2" "" abc -1 "$big" AMTDEMO amtopcon "$long1 $long2" "$long1;DROP"; do
        printf "\\set p '%s'\nSELECT pg_notify(:'ch', :'p');\n" "$payload"
    done
    printf "SELECT pg_notify(:'ch', repeat('x', 7999));\n"
done >"$H_TMP/forged.sql"
n=$(as nobody1 -f "$H_TMP/forged.sql" | wc -l)
h_eq 77 "$n" "nobody1 sent 77 forged notifications on the seven channels (ids of running jobs, garbage, 7999 bytes)"
# A storm: 2,000 notifications, each its own transaction (PostgreSQL folds
# equal ones within a transaction), across the four channels the daemon obeys.
as nobody1 -v id="$long1" <<'SQL' >/dev/null || h_not_ok "nobody1 sends a storm of notifications"
SET my.id = :'id';
DO $$
DECLARE ch text[] := ARRAY['acs_kill', 'acs_jobs', 'acs_comm', 'acs_batch_users'];
BEGIN
    FOR i IN 1..2000 LOOP
        PERFORM pg_notify(ch[1 + i % 4], CASE WHEN i % 2 = 0 THEN current_setting('my.id') ELSE i::text END);
        COMMIT;
    END LOOP;
END
$$;
SQL
# Notifications reach a listener in commit order: once a job queued after
# the storm has run, the daemon has had every forged one.
marker=$(as scheduler1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')")
h_wait_sql 60 finished "SELECT state FROM acs.jobs WHERE id = $marker" || h_not_ok "a job queued after the storm runs"
h_eq "running||running|" \
    "$(h_sql -c "SELECT string_agg(state || '|' || coalesce(kill_requested_at::text, '') || coalesce(kill_sent_at::text, ''), '|' ORDER BY id)
                 FROM acs.jobs WHERE id IN ($long1, $long2)")" \
    "forged acs_kill with their ids: both long jobs still run, no kill requested or sent"
h_eq "$kills_before" "$(h_sim_counter .kills)" "no Kill reached the server"
h_eq "$before" "$(snapshot "$marker")" \
    "nothing was written: jobs, Full Comm, alerts, Batch Users, logs and messages as before"
# (the HTTP trace of the calls the running jobs make anyway left out)
grown=$(tail -n +"$((log_before + 1))" "$H_DAEMON_LOG" | grep -v -e " job=$marker\( \|$\)" -e 'event=http\.debug' || true)
[ "$(grep -c . <<<"$grown")" -le 5 ] &&
    h_ok "the daemon's log grew by $(grep -c . <<<"$grown") line(s) for about 2,080 forged notifications" ||
    h_not_ok "the daemon's log grew by a line per notification: $(head -20 <<<"$grown")"
! grep -qE 'event=(conn\.comm|secret\.|job\.kill)' <<<"$grown" &&
    h_ok "nor did it log a comm change, a password load or a kill" ||
    h_not_ok "it logged a comm change, a password load or a kill: $grown"
# Each read is coalesced (one in flight, one pending): 500 notifications of a
# kind cost a few reads, not 500.
reads=$(tail -n +"$((pglog_before + 1))" "$H_PG_DATA/server.log")
for what in 'acs.kills_pending(' 'SELECT comm_state FROM' 'acs.batch_user_secret(' 'acs.claim_jobs('; do
    n=$(grep -cF "$what" <<<"$reads" || true)
    [ "$n" -le 50 ] && h_ok "the forged notifications (over 500 a channel) cost $n '$what' statement(s)" ||
        h_not_ok "the forged notifications (over 500 a channel) cost $n '$what' statement(s): not coalesced"
done
kill -0 "$waiter" 2>/dev/null &&
    h_ok "amtacsctl wait, told acs_job_finished with its job's id, read the row and waits on" ||
    h_not_ok "amtacsctl wait returned on a forged notification: $(cat "$H_TMP/wait.out")"

# The real way still works: an operator's request_kill, with who asked.
h_eq running "$(as operator1 -c "SELECT acs.request_kill($long1)")" "operator1 requests the kill"
h_wait_sql 60 "finished|KILLED|operator1" \
    "SELECT r.state || '|' || r.completion_name || '|' || j.kill_requested_by FROM acs.job_results r
       JOIN acs.jobs j USING (id) WHERE id = $long1" &&
    h_ok "and the daemon kills it: KILLED, kill_requested_by operator1" ||
    h_not_ok "and the daemon kills it: KILLED, kill_requested_by operator1"
h_eq $((kills_before + 1)) "$(h_sim_counter .kills)" "one Kill reached the server"
wait "$waiter" && rc=0 || rc=$?
h_match "failure KILLED" "$(cat "$H_TMP/wait.out")" "amtacsctl wait reports the real end (exit status $rc)"
h_eq running "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $long2")" "the other long job still runs"
brid=$(h_sql -c "SELECT batch_request_id FROM acs.jobs WHERE id = $long2")
curl -fsS -X POST -d '{"code":4}' "$H_SIM_URL/sim/requests/$brid/state" >/dev/null
h_wait_sql 60 finished "SELECT state FROM acs.jobs WHERE id = $long2" || h_not_ok "the other long job ends"
