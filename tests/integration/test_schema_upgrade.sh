#!/usr/bin/env bash
# An existing database at schema version 8 (the migrations 0001-0008 exactly as
# released: tests/fixtures/schema_v8.sha256), with connections, Batch Users and
# jobs in every state, their logs, messages and alerts, upgraded by today's
# amtacsctl migrate: no row is lost or changed, the schema is the one a fresh
# install makes (functions from sql/functions/, handed to the owner role), and
# the daemon runs the jobs queued before the upgrade and a new one.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

h_pg_start

# the files of version 8 as released (an applied migration is never edited)
if out=$(cd "$AMTACS_SRC/sql" && sha256sum --quiet -c "$AMTACS_SRC/tests/fixtures/schema_v8.sha256" 2>&1)
then
    h_ok "sql/0001-0008 are the files of version 8 (tests/fixtures/schema_v8.sha256)"
else
    h_not_ok "sql/0001-0008 are the files of version 8 (tests/fixtures/schema_v8.sha256)"
    printf '#   %s\n' "$out"
fi

# Version 8 the way amtacsctl made it then: acs.schema_migrations, each file
# in a transaction of its own with search_path = pg_catalog, acs, recorded with
# its checksum; no owner role (that came with a later release).
h_sql -c "CREATE SCHEMA acs;
          CREATE TABLE acs.schema_migrations (
              version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
              applied_at timestamptz NOT NULL DEFAULT now(),
              applied_by text NOT NULL DEFAULT session_user);
          COMMENT ON TABLE acs.schema_migrations IS
              'Applied amtacs migrations (sql/NNNN_*.sql); checksum is the SHA-256 of the file'"
while read -r sum name; do
    { echo "BEGIN; SET LOCAL search_path = pg_catalog, acs; SET LOCAL client_min_messages = warning;"
      cat "$AMTACS_SRC/sql/$name"
      echo ";"
      echo "INSERT INTO acs.schema_migrations (version, name, checksum)
            VALUES (${name:0:4} + 0, '$name', '$sum');"
      echo "COMMIT;"; } | h_sql >/dev/null
done <"$AMTACS_SRC/tests/fixtures/schema_v8.sha256"
h_eq 8 "$(h_sql -c 'SELECT max(version) FROM acs.schema_migrations')" "the database is at version 8"

### rows of every kind, written through the functions of version 8 ##############

h_batch_user amtopcon amtopcon-secret      # through amtacsctl, into the table of version 8
h_sql -c "INSERT INTO acs.batch_users (name, key_id, sealed_password)
          VALUES ('legacy', 'oldkey', '\\x0102030405')"
h_sql >/dev/null <<'SQL'
SELECT acs.register_connection('AMTDEMO', 'enabled');
SELECT acs.register_connection('OLDCONN', 'enabled');
SELECT acs.configure_connection('OLDCONN', 'http://old.example:8080', 'legacy', true, 30);
-- queued on AMTDEMO: the daemon runs them after the upgrade
SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT', ARRAY['A=1'], external_ref => 'v8-q1');
SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'INSTANT', external_ref => 'v8-q2');
-- on OLDCONN (not in the daemon's configuration): every other state
SELECT acs.submit_batch_job('OLDCONN', 'DEMO2', 'DONEJOB', external_ref => 'v8-done');
SELECT acs.submit_batch_job('OLDCONN', 'DEMO2', 'ERRJOB', external_ref => 'v8-error');
SELECT acs.submit_script_job('OLDCONN', 'DEMO2', 'WEB.ps1', ARRAY['P=2'], external_ref => 'v8-web');
SELECT acs.submit_batch_job('OLDCONN', 'DEMO2', 'RUNJOB', external_ref => 'v8-running');
SELECT acs.submit_batch_job('OLDCONN', 'DEMO2', 'DOUBTJOB', external_ref => 'v8-doubt');
SELECT acs.submit_batch_job('OLDCONN', 'DEMO2', 'STARTJOB', external_ref => 'v8-starting');
SELECT count(*) FROM acs.claim_jobs('old-daemon', 'OLDCONN', 10, 3600);
SELECT acs.job_started(j.id, 'old-daemon', j.attempt, 100 + j.id::integer)
  FROM acs.jobs AS j WHERE j.external_ref IN ('v8-done', 'v8-error', 'v8-web', 'v8-running');
SELECT acs.job_progress(j.id, 'old-daemon', j.attempt, 2)
  FROM acs.jobs AS j WHERE j.external_ref = 'v8-running';
SELECT acs.job_add_messages(j.id, 'old-daemon', j.attempt,
           '[{"seq": 1, "id": 5, "text": "step 1"}, {"seq": 2, "id": 5, "text": "step 2"}]')
  FROM acs.jobs AS j WHERE j.external_ref = 'v8-running';
SELECT acs.job_finish(j.id, 'old-daemon', j.attempt, 4, NULL, 'log of v8-done' || E'\n')
  FROM acs.jobs AS j WHERE j.external_ref = 'v8-done';
SELECT acs.job_finish(j.id, 'old-daemon', j.attempt, 11, 'File not found', 'log of v8-error' || E'\n')
  FROM acs.jobs AS j WHERE j.external_ref = 'v8-error';
SELECT acs.jobs_finish('old-daemon', json_build_array(json_build_object(
           'id', j.id, 'attempt', j.attempt, 'code', 23, 'error', 'server unreachable',
           'log', 'log of v8-web' || E'\n')))
  FROM acs.jobs AS j WHERE j.external_ref = 'v8-web';
SELECT acs.job_in_doubt(j.id, 'old-daemon', j.attempt, 'no answer to Start')
  FROM acs.jobs AS j WHERE j.external_ref = 'v8-doubt';
SELECT acs.request_kill(j.id) FROM acs.jobs AS j WHERE j.external_ref = 'v8-running';
SELECT acs.acknowledge_alert(min(a.id)) FROM acs.alerts AS a;
-- queued on OLDCONN, which then stops: it stays queued
SELECT acs.submit_batch_job('OLDCONN', 'DEMO2', 'LATER', external_ref => 'v8-later');
SELECT acs.set_comm('OLDCONN', 'disabled');
SQL
h_eq "finished:3 in_doubt:1 queued:3 running:1 starting:1" \
    "$(h_sql -c "SELECT string_agg(state || ':' || n, ' ' ORDER BY state)
                   FROM (SELECT state, count(*) AS n FROM acs.jobs GROUP BY state) AS s")" \
    "version 8 holds queued, starting, running, in-doubt and finished jobs"
h_eq "3 2 2 3" "$(h_sql -c "SELECT concat_ws(' ', (SELECT count(*) FROM acs.job_logs),
                                             (SELECT count(*) FROM acs.job_messages),
                                             (SELECT count(*) FROM acs.batch_users),
                                             (SELECT count(*) FROM acs.alerts))")" \
    "and logs, running messages, Batch Users and alerts (one acknowledged)"

# Every table of version 8 with its columns of version 8: the rows, as text,
# counted and hashed (later migrations may add columns, never change these;
# acs.schema_migrations gains the rows of the later versions).
tables=$(h_sql -c "SELECT c.oid::regclass FROM pg_class AS c
                    WHERE c.relnamespace = 'acs'::regnamespace AND c.relkind = 'r' ORDER BY 1")
declare -A cols=()
for t in $tables; do
    cols[$t]=$(h_sql -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                          WHERE attrelid = '$t'::regclass AND attnum > 0 AND NOT attisdropped")
done
rows_of() {
    local t where
    for t in $tables; do
        where=true
        [ "$t" = acs.schema_migrations ] && where="version <= 8"
        printf '%s %s\n' "$t" "$(h_sql -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(r, E'\n' ORDER BY r), ''))
                                             FROM (SELECT ROW(${cols[$t]})::text AS r FROM $t
                                                    WHERE $where) AS x")"
    done
}
before=$(rows_of)
h_eq 8 "$(grep -c ' [0-9]* [0-9a-f]\{32\}$' <<<"$before")" "the rows of the 8 tables of version 8 are counted and hashed"

### the upgrade ##################################################################

out=$(h_ctl migrate 2>&1)
h_match 'applied migration 0009_lock_order\.sql \(version 9\)' "$out" "migrate applies 0009 and later"
latest=$(find "$AMTACS_SRC/sql" -maxdepth 1 -name '[0-9]*.sql' -printf '%f\n' | sort | tail -n 1)
latest=$((10#${latest:0:4}))
h_match "schema is now at version $latest \\(" "$out" "and ends at the latest version ($latest)"
h_match 'applied functions/40_daemon\.sql' "$out" "then applies the function files"
h_eq "$before" "$(rows_of)" "no row of version 8 is lost or changed (every table, every column of version 8)"
h_eq "schema is up to date at version $latest" "$(h_ctl migrate 2>&1)" "a second migrate has nothing to do"

# the same schema as a fresh install: every table, function, view, trigger,
# right and owner (pg_dump; its \restrict lines carry a random key)
dump() { pg_dump --schema-only --schema=acs "$1" | grep -Ev '^\\(un)?restrict ' |
         grep -v "^SELECT pg_catalog.set_config('search_path'"; }
psql -X -q -d postgres -c "CREATE DATABASE fresh" >/dev/null
"$CTL_BIN" --db "${H_PGCONN/dbname=amtacs/dbname=fresh}" migrate >/dev/null
diff <(dump fresh) <(dump amtacs) >"$H_TMP/schema.diff" || true
h_eq "" "$(head -n 40 "$H_TMP/schema.diff")" "the upgraded schema is the one a fresh install makes"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM pg_proc WHERE proname = 'claim_jobs'")" \
    "one acs.claim_jobs is left (the four-argument form of version 8 is gone)"
h_eq acs_owner "$(h_sql -c "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'acs'")" \
    "the schema is handed to its owner role"
h_eq "queued queued" \
    "$(h_sql -c "SELECT string_agg(state, ' ' ORDER BY id) FROM acs.jobs WHERE connection = 'AMTDEMO'")" \
    "the jobs queued on AMTDEMO before the upgrade are still queued"

### the daemon, after the upgrade ################################################

h_sim_start
h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
new=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
all_done() {
    [ "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'AMTDEMO' AND state <> 'finished'")" = 0 ]
}
h_wait_until 120 all_done || h_not_ok "the jobs of AMTDEMO finished within 120 s"
h_eq "v8-q1 4 success|v8-q2 4 success|new 4 success" \
    "$(h_sql -c "SELECT string_agg(coalesce(external_ref, 'new') || ' ' || completion_code || ' ' || result, '|'
                                   ORDER BY id) FROM acs.jobs WHERE connection = 'AMTDEMO'")" \
    "the daemon ran the two jobs queued at version 8 and a new one (DONE, success)"
h_eq 3 "$(h_sql -c "SELECT count(*) FROM acs.job_logs AS l JOIN acs.jobs AS j ON j.id = l.job_id
                     WHERE j.connection = 'AMTDEMO'")" "each has its log"
h_match "Job Information" "$(h_sql -c "SELECT log FROM acs.job_logs WHERE job_id = $new")" \
    "the new job's log is the merged job log"
h_eq "v8-running running v8-doubt in_doubt v8-later queued" \
    "$(h_sql -c "SELECT string_agg(external_ref || ' ' || state, ' ' ORDER BY id) FROM acs.jobs
                  WHERE external_ref IN ('v8-running', 'v8-doubt', 'v8-later')")" \
    "the jobs of the connection it does not serve are left as they were"

### a database at version 20, the last before the function files #################

psql -X -q -d postgres -c "CREATE DATABASE v20" >/dev/null
h_sql -d v20 -c "CREATE SCHEMA acs;
                 CREATE TABLE acs.schema_migrations (
                     version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now(),
                     applied_by text NOT NULL DEFAULT session_user);
                 COMMENT ON TABLE acs.schema_migrations IS
                     'Applied amtacs migrations (sql/NNNN_*.sql); checksum is the SHA-256 of the file'"
for f in "$AMTACS_SRC"/sql/00[01][0-9]_*.sql "$AMTACS_SRC"/sql/0020_*.sql; do
    name=${f##*/}
    { echo "BEGIN; SET LOCAL search_path = pg_catalog, acs; SET LOCAL client_min_messages = warning;"
      cat "$f"
      echo ";"
      echo "INSERT INTO acs.schema_migrations (version, name, checksum)
            VALUES (${name:0:4} + 0, '$name', '$(sha256sum <"$f" | cut -d' ' -f1)');"
      echo "COMMIT;"; } | h_sql -d v20 >/dev/null
done
h_eq 20 "$(h_sql -d v20 -c 'SELECT max(version) FROM acs.schema_migrations')" "a second database is at version 20"
h_eq 2 "$(h_sql -d v20 -c "SELECT count(*) FROM pg_proc WHERE proname = 'claim_jobs'")" \
    "with the two forms of acs.claim_jobs of version 20"
h_match "schema is now at version $latest \\(" \
    "$("$CTL_BIN" --db "${H_PGCONN/dbname=amtacs/dbname=v20}" migrate 2>&1)" "migrate upgrades it"
diff <(dump fresh) <(dump v20) >"$H_TMP/schema20.diff" || true
h_eq "" "$(head -n 40 "$H_TMP/schema20.diff")" "to the schema a fresh install makes"
