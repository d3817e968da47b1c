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
refused operator1 "enqueue" "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')"
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
h_eq 0 "$(as daemon1 -c "SELECT count(*) FROM acs.kills_pending('x')")" "daemon1 asks which of its jobs are to be killed"
refused scheduler1 "ask for another daemon's pending kills" "SELECT * FROM acs.kills_pending('x')"

# --- anyone else: nothing ------------------------------------------------------------
refused nobody1 "read jobs" "SELECT * FROM acs.jobs"
refused nobody1 "enqueue" "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT')"
