#!/usr/bin/env bash
# The acs schema and its migrations, against a real PostgreSQL and the real
# amtacsctl: migrate / idempotence / concurrency / refusals, the completion-code
# table, the submit functions and their error messages, the constraints on
# direct writes, NOTIFY channels and the job_results view.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

h_pg_start

# Runs SQL that must fail; prints psql's output (the error a user would see).
sql_err() {
    local out
    if out=$(h_sql -c "$1" 2>&1); then
        echo "UNEXPECTED SUCCESS: $out"
    else
        printf '%s\n' "$out"
    fi
}

# The first line of psql's error output (the "ERROR: ..." line).
sql_err1() { sql_err "$1" | head -n 1; }

# (pg_dump's \restrict lines carry a random key: drop them)
dump_schema() { pg_dump --schema-only --no-owner --schema=acs amtacs | grep -Ev '^\\(un)?restrict '; }

### migrate ####################################################################

out=$("$CTL_BIN" --db "$H_PGCONN" migrate 2>&1)
h_match 'applied migration 0001_init\.sql \(version 1\)' "$out" "first migrate applies 0001_init.sql"
sql_files=("$AMTACS_SRC"/sql/[0-9]*.sql)
latest=${#sql_files[@]}
h_eq "$latest" "$(h_sql -c 'SELECT count(*) FROM acs.schema_migrations')" \
    "schema_migrations has one row per migration file"
h_match '^[0-9a-f]{64}$' "$(h_sql -c 'SELECT checksum FROM acs.schema_migrations WHERE version = 1')" \
    "the recorded checksum is a SHA-256"
h_eq "$(sha256sum "$AMTACS_SRC"/sql/0001_*.sql | cut -d' ' -f1)" \
    "$(h_sql -c 'SELECT checksum FROM acs.schema_migrations WHERE version = 1')" \
    "the recorded checksum is the SHA-256 of the file"
max_version=$(h_sql -c 'SELECT max(version) FROM acs.schema_migrations')

before=$(dump_schema)
rows_before=$(h_sql -c 'SELECT count(*) FROM acs.schema_migrations')
out=$("$CTL_BIN" --db "$H_PGCONN" migrate 2>&1)
h_eq "schema is up to date at version $max_version" "$out" "second migrate says up to date"
h_eq "$before" "$(dump_schema)" "second migrate leaves the schema unchanged (pg_dump)"
h_eq "$rows_before" "$(h_sql -c 'SELECT count(*) FROM acs.schema_migrations')" \
    "second migrate records nothing"

# Two concurrent runs on a fresh database: both succeed, the schema is applied once.
psql -X -q -d postgres -c "CREATE DATABASE amtacs2" >/dev/null
conn2="${H_PGCONN/dbname=amtacs/dbname=amtacs2}"
"$CTL_BIN" --db "$conn2" migrate >"$H_TMP/m1.out" 2>&1 & p1=$!
"$CTL_BIN" --db "$conn2" migrate >"$H_TMP/m2.out" 2>&1 & p2=$!
rc1=0; wait $p1 || rc1=$?
rc2=0; wait $p2 || rc2=$?
h_eq "0 0" "$rc1 $rc2" "two concurrent migrate runs both succeed"
h_eq 1 "$(cat "$H_TMP/m1.out" "$H_TMP/m2.out" | grep -c '^applied migration 0001_init.sql')" \
    "0001 is applied by exactly one of the concurrent runs"
h_eq "$rows_before" "$(h_sql -d amtacs2 -c 'SELECT count(*) FROM acs.schema_migrations')" \
    "concurrent runs record each migration once"

# An applied migration whose recorded checksum differs is refused.
h_sql -c "UPDATE acs.schema_migrations SET checksum = repeat('0', 64) WHERE version = 1"
h_run_fails "migrate refuses a changed migration" "$CTL_BIN" --db "$H_PGCONN" migrate
h_match 'migration 0001_init\.sql \(version 1\) has changed since it was applied.*000000000000\.\.\.' \
    "$H_OUT" "the changed-checksum error names the file and the checksums"
h_sql -c "UPDATE acs.schema_migrations SET checksum = '$(sha256sum "$AMTACS_SRC"/sql/0001_*.sql | cut -d' ' -f1)' WHERE version = 1"

# A database migrated by a newer amtacs is refused.
h_sql -c "INSERT INTO acs.schema_migrations (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')"
h_run_fails "migrate refuses a newer schema" "$CTL_BIN" --db "$H_PGCONN" migrate
h_match "the database schema is at version 9999, newer than this build of amtacs knows \\(latest $max_version\\)" \
    "$H_OUT" "the newer-version error gives both versions"
h_sql -c "DELETE FROM acs.schema_migrations WHERE version = 9999"
h_eq "schema is up to date at version $max_version" "$("$CTL_BIN" --db "$H_PGCONN" migrate 2>&1)" \
    "migrate is happy again once the records are right"

# Connection errors never show the password of the conninfo.
h_run_fails "migrate against an unreachable server fails" \
    "$CTL_BIN" --db "host=$H_TMP/nowhere port=5432 user=postgres password=Sekr1tPw dbname=amtacs" migrate
h_match 'cannot connect to PostgreSQL' "$H_OUT" "the connection error says what failed"
if [[ "$H_OUT" == *Sekr1tPw* ]]; then h_not_ok "connection error hides the password"; else h_ok "connection error hides the password"; fi
h_run_fails "migrate with a malformed conninfo fails" "$CTL_BIN" --db "host=x password Sekr1tPw" migrate
if [[ "$H_OUT" == *Sekr1tPw* ]]; then h_not_ok "parse error hides the password"; else h_ok "parse error hides the password"; fi
h_match 'invalid connection string' "$H_OUT" "the parse error says the connection string is invalid"

### function files #############################################################

fn_files=("$AMTACS_SRC"/sql/functions/*.sql)
h_eq "$(cd "$AMTACS_SRC/sql" && for f in functions/*.sql; do echo "$f $(sha256sum <"$f" | cut -d' ' -f1)"; done)" \
    "$(h_sql -F ' ' -c 'SELECT name, checksum FROM acs.schema_functions ORDER BY name')" \
    "acs.schema_functions records each function file with the SHA-256 of the file"

# Every function, view and trigger of acs has one definition, in a function file.
defined() { grep -hoE "^CREATE OR REPLACE $1 acs\.[a-z_0-9]+" "${fn_files[@]}" | sed 's/.* acs\./acs./' | LC_ALL=C sort; }
h_eq "" "$(defined '(FUNCTION|VIEW)' | uniq -d)" "no function or view is created twice in the function files"
h_eq "$(defined FUNCTION)" \
    "$(h_sql -c "SELECT 'acs.' || proname FROM pg_proc WHERE pronamespace = 'acs'::regnamespace ORDER BY 1")" \
    "every function of acs is the one a function file defines (no second form, nothing left over)"
h_eq "$(defined VIEW)" \
    "$(h_sql -c "SELECT 'acs.' || relname FROM pg_class WHERE relnamespace = 'acs'::regnamespace
                   AND relkind = 'v' ORDER BY 1")" \
    "every view of acs is defined in a function file"
h_eq "$(grep -hoE '^CREATE TRIGGER [a-z_0-9]+' "${fn_files[@]}" | awk '{print $3}' | LC_ALL=C sort)" \
    "$(h_sql -c "SELECT t.tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
                  WHERE c.relnamespace = 'acs'::regnamespace AND NOT t.tgisinternal ORDER BY 1")" \
    "every trigger of acs is defined in a function file"
h_eq "" "$(grep -lE '^((CREATE|ALTER|DROP) TABLE|INSERT INTO|UPDATE|DELETE FROM|TRUNCATE) ' "${fn_files[@]}")" \
    "function files change no table and no row (that is what migrations are for)"

# A function that runs as the schema's owner is callable by the roles it is
# granted to, never by PUBLIC (every role: acs.leases_renew was, until 0022).
h_eq "" "$(h_sql -c "SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc AS p
                      WHERE p.pronamespace = 'acs'::regnamespace AND p.prosecdef
                        AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                                     WHERE a.grantee = 0)")" \
    "no SECURITY DEFINER function of acs can be called by PUBLIC"
h_eq "acs_daemon" "$(h_sql -c "SELECT string_agg(r.rolname, ' ' ORDER BY r.rolname) FROM pg_roles AS r
                                WHERE r.rolname LIKE 'acs\_%' AND r.rolname <> 'acs_owner'
                                  AND has_function_privilege(r.oid, 'acs.leases_renew(text, bigint[], integer[], integer)', 'EXECUTE')")" \
    "acs.leases_renew is the daemon's alone"

# A changed function file: migrate applies every function file again, in one
# transaction, and says so; what was changed by hand is as the file says again.
applied_all=$(for f in "${fn_files[@]}"; do echo "applied ${f#"$AMTACS_SRC"/sql/}"; done)
jobs_end='acs.jobs_end(bigint[], integer[], text[], text[], boolean)'
h_sql -c "UPDATE acs.schema_functions SET checksum = repeat('0', 64) WHERE name = 'functions/40_daemon.sql'"
h_sql -c "COMMENT ON FUNCTION $jobs_end IS 'changed by hand'"
h_eq "$applied_all
schema is at version $max_version; its functions are now current" "$("$CTL_BIN" --db "$H_PGCONN" migrate 2>&1)" \
    "a changed function file: migrate applies every function file again and says so"
h_match '^Internal: ends held jobs' "$(h_sql -c "SELECT obj_description('$jobs_end'::regprocedure, 'pg_proc')")" \
    "what was changed by hand is as the function file says again"
h_eq "schema is up to date at version $max_version" "$("$CTL_BIN" --db "$H_PGCONN" migrate 2>&1)" \
    "then migrate has nothing to do"

# A function file that fails fails the whole run, and nothing of it stays
# (here acs.jobs_end was replaced by hand with another result type).
h_sql -c "UPDATE acs.schema_functions SET checksum = repeat('0', 64) WHERE name = 'functions/40_daemon.sql'"
h_sql -c "COMMENT ON FUNCTION acs.is_valid_name(text) IS 'changed by hand'"
h_sql -c "DROP FUNCTION $jobs_end; CREATE FUNCTION $jobs_end RETURNS integer LANGUAGE sql AS 'SELECT 1'"
h_run_fails "migrate fails when a function file fails" "$CTL_BIN" --db "$H_PGCONN" migrate
h_match 'function file functions/40_daemon\.sql failed( at line [0-9]+)?: cannot change return type of existing function' \
    "$H_OUT" "the error names the function file and PostgreSQL's reason"
h_eq "changed by hand $(printf '0%.0s' {1..64})" \
    "$(h_sql -c "SELECT obj_description('acs.is_valid_name(text)'::regprocedure, 'pg_proc') || ' ' || checksum
                   FROM acs.schema_functions WHERE name = 'functions/40_daemon.sql'")" \
    "nothing of the failed run stays (not even what the earlier files of the run did)"
h_sql -c "DROP FUNCTION $jobs_end"
h_match 'its functions are now current' "$("$CTL_BIN" --db "$H_PGCONN" migrate 2>&1)" \
    "with the obstacle gone, migrate applies the function files"
h_eq "acs_owner" "$(h_sql -c "SELECT proowner::regrole FROM pg_proc WHERE oid = '$jobs_end'::regprocedure")" \
    "a function the function files create belongs to the owner role"

### completion codes ###########################################################

h_eq "$("$CTL_BIN" codes --tsv)" \
    "$(h_sql -F $'\t' -c "SELECT code, name, CASE WHEN final THEN 't' ELSE 'f' END,
                                CASE WHEN success THEN 't' ELSE 'f' END, description
                           FROM acs.completion_codes ORDER BY code")" \
    "acs.completion_codes equals amtacsctl codes --tsv"
h_eq "4" "$(h_sql -c "SELECT string_agg(code::text, ',') FROM acs.completion_codes WHERE success")" \
    "DONE (4) alone is success"
h_eq "$("$AMTACS_BIN/tests/codes_dump")" \
    "$(h_sql -F $'\t' -c "SELECT g, coalesce(c.name, ''),
                                CASE WHEN c.code IS NULL THEN '-' WHEN c.final THEN 't' ELSE 'f' END,
                                CASE WHEN coalesce(c.success, false) THEN 't' ELSE 'f' END,
                                CASE WHEN coalesce(c.raises_alert, false) THEN 't' ELSE 'f' END
                           FROM generate_series(-1, 100) AS g
                           LEFT JOIN acs.completion_codes AS c ON c.code = g ORDER BY g")" \
    "src/lib/codes.c and acs.completion_codes agree on each code from -1 to 100: name, final, success, alert"
h_eq "11,12,23,24" \
    "$(h_sql -c "SELECT string_agg(code::text, ',' ORDER BY code) FROM acs.completion_codes WHERE raises_alert")" \
    "ERROR, ABORTED, WEB_SERVER_ERROR and AUTHENTICATION_ERROR alone raise an alert"

# The functions that end a job take success and the alert from the table, not
# from numbers of their own: with KILLED (3) made to raise an alert and
# SKIPPED_BY_OPS (6) made a success (in a transaction that is rolled back).
h_eq "3 failure alert|6 success -|11 failure alert|4 success -" "$(h_sql <<'SQL'
\o /dev/null
BEGIN;
UPDATE acs.completion_codes SET raises_alert = true WHERE code = 3;
UPDATE acs.completion_codes SET success = true WHERE code = 6;
SELECT acs.register_connection('CODES', 'enabled');
SELECT acs.submit_batch_job('CODES', 'DEMO2', 'J' || g) FROM generate_series(1, 4) AS g;
SELECT count(*) FROM acs.claim_jobs('codes', 'CODES', 4, 60, false);
SELECT acs.job_finish(j.id, 'codes', j.attempt, 3, NULL, 'log') FROM acs.jobs AS j
 WHERE j.connection = 'CODES' AND j.job_name = 'J1';
SELECT count(*) FROM acs.jobs_finish('codes', (
    SELECT json_agg(json_build_object('id', j.id, 'attempt', j.attempt, 'log', 'log',
                                      'code', CASE j.job_name WHEN 'J2' THEN 6 WHEN 'J3' THEN 11 ELSE 4 END))
      FROM acs.jobs AS j WHERE j.connection = 'CODES' AND j.job_name <> 'J1'));
\o
SELECT string_agg(j.completion_code || ' ' || j.result || ' '
                  || CASE WHEN EXISTS (SELECT 1 FROM acs.alerts AS a WHERE a.job_id = j.id)
                          THEN 'alert' ELSE '-' END, '|' ORDER BY j.id)
  FROM acs.jobs AS j WHERE j.connection = 'CODES';
ROLLBACK;
SQL
)" "job_finish and jobs_finish read success and raises_alert from acs.completion_codes"

### submitting ##################################################################

h_eq t "$(h_sql -c "SELECT acs.register_connection('AMTDEMO')")" "register_connection adds a connection"
h_eq f "$(h_sql -c "SELECT acs.register_connection('AMTDEMO')")" "register_connection is idempotent"
h_eq disabled "$(h_sql -c "SELECT comm_state FROM acs.connections WHERE name = 'AMTDEMO'")" \
    "a new connection starts with communication disabled"

id1=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'REPORTTEST01')")
h_match '^[0-9]+$' "$id1" "submit_batch_job accepts a batch job and returns its id"
h_eq "batch|DEMO2|BATCH|OPCON|REPORTTEST01|{}|queued|0" \
    "$(h_sql -c "SELECT kind, application, submit_user, station, job_name, task_values, state, attempt
                 FROM acs.jobs WHERE id = $id1")" \
    "a batch job is stored queued with Submit User BATCH and Station OPCON"

id2=$(h_sql -c "SELECT acs.submit_script_job('AMTDEMO', 'DEMO2', 'RUN_PARAMETERSTEST.ps1',
                  ARRAY['PARAM=25'], queue_name => 'NIGHT', amt_user => 'OPS1', external_ref => 'opcon-42')")
h_eq "script|RUN_PARAMETERSTEST.ps1|{PARAM=25}|NIGHT|OPS1|opcon-42|BATCH|OPCON" \
    "$(h_sql -c "SELECT kind, script_name, script_parameters, queue_name, amt_user, external_ref,
                        submit_user, station FROM acs.jobs WHERE id = $id2")" \
    "submit_script_job stores the script job with every field"

twenty=$(h_sql -c "SELECT array_agg('V' || i || '=' || i)::text FROM generate_series(1, 20) i")
twentyone=$(h_sql -c "SELECT array_agg('V' || i || '=' || i)::text FROM generate_series(1, 21) i")
id3=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', '$twenty')")
h_eq 20 "$(h_sql -c "SELECT cardinality(task_values) FROM acs.jobs WHERE id = $id3")" "20 task values are accepted"
id4=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', ARRAY['EMPTY=', 'A=b=c', 'PATH=C:\\x y'])")
h_eq '{EMPTY=,A=b=c,"PATH=C:\\x y"}' "$(h_sql -c "SELECT task_values FROM acs.jobs WHERE id = $id4")" \
    "empty values, '=' and spaces inside a value are accepted as given"

h_eq "ERROR:  task_values has 21 items; at most 20 are allowed" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', '$twentyone')")" \
    "21 task values are refused"
h_eq "ERROR:  script_parameters has 21 items; at most 20 are allowed" \
    "$(sql_err1 "SELECT acs.submit_script_job('AMTDEMO', 'DEMO2', 'S.ps1', '$twentyone')")" \
    "21 script parameters are refused"
h_eq "ERROR:  application is required: name the AMT application the job belongs to (e.g. DEMO2)" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', NULL, 'JOB')")" "a missing application is refused"
h_eq "ERROR:  application is required: name the AMT application the job belongs to (e.g. DEMO2)" \
    "$(sql_err1 "SELECT acs.submit_script_job('AMTDEMO', '', 'S.ps1')")" "an empty application is refused"
h_eq "ERROR:  application (' DEMO2') has leading or trailing whitespace; amtacs trims nothing, remove it" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', ' DEMO2', 'JOB')")" \
    "a padded application is refused, not trimmed"
h_eq "ERROR:  job_name is required for a batch job (the name of a job defined in the AMT Batch Server)" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', NULL)")" "a batch job without job name is refused"
h_eq "ERROR:  script_name is required for a script job (the script file to run on the AMT Batch Server)" \
    "$(sql_err1 "SELECT acs.submit_script_job('AMTDEMO', 'DEMO2', NULL)")" "a script job without script name is refused"
h_eq "ERROR:  job_name is empty; give a value" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', '')")" "an empty job name is refused"
h_eq "ERROR:  task value 3 ('FOO') is not name=value; each item must be NAME=VALUE with a non-empty NAME without spaces" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', ARRAY['A=1', 'B=2', 'FOO'])")" \
    "a task value without '=' is refused with its position and text"
h_eq "ERROR:  task value 1 ('=25') is not name=value; each item must be NAME=VALUE with a non-empty NAME without spaces" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', ARRAY['=25'])")" \
    "a task value with an empty name is refused"
h_eq "ERROR:  script parameter 2 ('MY PARAM=1') is not name=value; each item must be NAME=VALUE with a non-empty NAME without spaces" \
    "$(sql_err1 "SELECT acs.submit_script_job('AMTDEMO', 'DEMO2', 'S.ps1', ARRAY['A=1', 'MY PARAM=1'])")" \
    "a script parameter with a space in its name is refused"
h_eq "ERROR:  task value 1 contains a control character at position 3; only printable characters are allowed" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', ARRAY[E'A=\\nB'])")" \
    "a task value with a newline is refused"
h_eq "ERROR:  task value 2 is NULL; each item must be NAME=VALUE" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', ARRAY['A=1', NULL])")" \
    "a NULL task value is refused"
h_eq "ERROR:  queue_name is empty; give a value or NULL for none" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'JOB', queue_name => '')")" \
    "an empty queue name is refused"
h_eq "ERROR:  connection 'NOSUCH' is not known; known connections: AMTDEMO" \
    "$(sql_err1 "SELECT acs.submit_batch_job('NOSUCH', 'DEMO2', 'JOB')")" "an unknown connection is refused"
h_eq "ERROR:  application is 129 characters long; at most 128 are allowed" \
    "$(sql_err1 "SELECT acs.submit_batch_job('AMTDEMO', repeat('A', 129), 'JOB')")" "an overlong application is refused"

# Direct INSERTs meet the constraints, whose names say what is wrong.
ins="INSERT INTO acs.jobs (connection, kind, application, job_name, script_name, task_values, submit_user)"
h_match 'violates check constraint "jobs_kind_valid"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'report', 'DEMO2', 'JOB', NULL, '{}', 'BATCH')")" "an unknown kind is refused"
h_match 'violates check constraint "jobs_submit_user_is_batch"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', 'DEMO2', 'JOB', NULL, '{}', 'ME')")" "a changed submit user is refused"
h_match 'violates check constraint "jobs_station_is_opcon"' \
    "$(sql_err1 "INSERT INTO acs.jobs (connection, kind, application, job_name, station) VALUES ('AMTDEMO', 'batch', 'DEMO2', 'JOB', 'WS1')")" \
    "a changed station is refused"
h_match 'violates check constraint "jobs_not_both_job_and_script_name"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', 'DEMO2', 'JOB', 'S.ps1', '{}', 'BATCH')")" \
    "a job with both job and script name is refused"
h_match 'violates check constraint "jobs_batch_has_job_name"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', 'DEMO2', NULL, NULL, '{}', 'BATCH')")" \
    "a batch job with neither name is refused"
h_match 'violates check constraint "jobs_script_has_script_name"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'script', 'DEMO2', NULL, NULL, '{}', 'BATCH')")" \
    "a script job with neither name is refused"
h_match 'violates check constraint "jobs_script_has_no_task_values"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'script', 'DEMO2', NULL, 'S.ps1', '{A=1}', 'BATCH')")" \
    "a script job with task values is refused"
h_match 'violates check constraint "jobs_task_values_valid"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', 'DEMO2', 'JOB', NULL, '$twentyone', 'BATCH')")" \
    "21 task values are refused on a direct insert"
h_match 'violates check constraint "jobs_task_values_valid"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', 'DEMO2', 'JOB', NULL, '{FOO}', 'BATCH')")" \
    "a bad task value is refused on a direct insert"
h_match 'null value in column "application" of relation "jobs" violates not-null constraint' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', NULL, 'JOB', NULL, '{}', 'BATCH')")" \
    "a missing application is refused on a direct insert"
h_match 'violates check constraint "jobs_application_valid"' \
    "$(sql_err1 "$ins VALUES ('AMTDEMO', 'batch', '', 'JOB', NULL, '{}', 'BATCH')")" \
    "an empty application is refused on a direct insert"
h_match 'violates foreign key constraint "jobs_connection_fkey"' \
    "$(sql_err1 "$ins VALUES ('NOSUCH', 'batch', 'DEMO2', 'JOB', NULL, '{}', 'BATCH')")" \
    "a job for an unknown connection is refused on a direct insert"

### states #######################################################################

upd() { sql_err1 "UPDATE acs.jobs SET $1 WHERE id = $id1"; }
h_match 'violates check constraint "jobs_finished_has_code_and_result"' \
    "$(upd "state = 'finished', finished_at = now()")" "a finished job without code and result is refused"
h_match 'violates check constraint "jobs_finished_has_code_and_result"' \
    "$(upd "state = 'finished', completion_code = 4, finished_at = now()")" "a finished job without result is refused"
h_match 'violates check constraint "jobs_result_matches_code"' \
    "$(upd "state = 'finished', completion_code = 11, result = 'success', finished_at = now()")" \
    "success with a code other than DONE is refused"
h_match 'violates check constraint "jobs_result_matches_code"' \
    "$(upd "state = 'finished', completion_code = 4, result = 'failure', finished_at = now()")" \
    "failure with DONE is refused"
h_match 'violates check constraint "jobs_not_finished_has_no_outcome"' \
    "$(upd "completion_code = 4")" "a queued job with a completion code is refused"
h_match 'violates check constraint "jobs_result_valid"' \
    "$(upd "state = 'finished', completion_code = 11, result = 'ok', finished_at = now()")" "an unknown result is refused"
h_eq "ERROR:  job $id1 cannot go from queued to done; allowed from queued: starting, finished" \
    "$(upd "state = 'done'")" "an unknown state is refused on update"
h_match 'violates check constraint "jobs_state_valid"' \
    "$(sql_err1 "INSERT INTO acs.jobs (connection, kind, application, job_name, state) VALUES ('AMTDEMO', 'batch', 'DEMO2', 'JOB', 'done')")" \
    "an unknown state is refused on insert"
h_match 'violates check constraint "jobs_claimed_has_owner_and_task_id"' \
    "$(upd "state = 'starting', lease_expires = now() + interval '1 minute'")" \
    "a claimed job without owner and task id is refused"
h_match 'violates check constraint "jobs_lease_only_while_claimed"' \
    "$(upd "state = 'starting', owner = 'd1', claimed_at = now(), task_id = gen_random_uuid()")" \
    "a claimed job without lease is refused"
h_eq "ERROR:  job $id1 cannot go from queued to running; allowed from queued: starting, finished" \
    "$(upd "state = 'running', owner = 'd1', claimed_at = now(), task_id = gen_random_uuid(),
            lease_expires = now() + interval '1 minute', started_at = now(), batch_request_id = 1")" \
    "a queued job cannot jump to running"

# The lifecycle the daemon will drive is accepted, and finishing notifies.
h_sql -c "UPDATE acs.jobs SET state = 'starting', owner = 'd1', attempt = attempt + 1, claimed_at = now(),
                               task_id = gen_random_uuid(), lease_expires = now() + interval '30 seconds'
          WHERE id = $id1"
h_match 'violates check constraint "jobs_running_has_batch_request_id"' \
    "$(upd "state = 'running', started_at = now()")" "a running job without BatchRequestId is refused"
h_sql -c "UPDATE acs.jobs SET state = 'running', batch_request_id = 4280, started_at = now() WHERE id = $id1"
notes=$(h_sql <<SQL 2>&1
LISTEN acs_job_finished;
\! psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE acs.jobs SET state = 'finished', completion_code = 4, result = 'success', finished_at = now(), lease_expires = NULL WHERE id = $id1"
SELECT 'after';
SQL
)
h_match "Asynchronous notification \"acs_job_finished\" with payload \"$id1\" received" "$notes" \
    "NOTIFY acs_job_finished carries the id of the finished job"
h_eq "ERROR:  job $id1 cannot go from finished to queued; allowed from finished: nothing (it is final)" \
    "$(upd "state = 'queued', completion_code = NULL, result = NULL, finished_at = NULL")" \
    "a finished job never changes state again"
h_eq "$id1|batch|REPORTTEST01|finished|4|DONE|success" \
    "$(h_sql -c "SELECT id, kind, name, state, completion_code, completion_name, result
                 FROM acs.job_results WHERE id = $id1")" \
    "job_results shows the completion name of a finished job"
h_eq "$id2|opcon-42|script|RUN_PARAMETERSTEST.ps1|queued|||" \
    "$(h_sql -c "SELECT id, external_ref, kind, name, state, completion_code, completion_name, result
                 FROM acs.job_results WHERE id = $id2")" \
    "job_results shows a queued job without outcome"

# A code outside the published table is shown as UNKNOWN.
h_sql -c "UPDATE acs.jobs SET state = 'finished', completion_code = 42, result = 'failure', finished_at = now()
          WHERE id = $id3"
h_eq "42|UNKNOWN|failure" "$(h_sql -c "SELECT completion_code, completion_name, result FROM acs.job_results WHERE id = $id3")" \
    "job_results names a code outside the table UNKNOWN"

### NOTIFY acs_jobs ###############################################################

notes=$(h_sql <<'SQL' 2>&1
LISTEN acs_jobs;
\! psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', 'NOTIFYTEST')"
SELECT 'after';
SQL
)
# (psql leaves out "with payload" when it is empty)
h_match 'Asynchronous notification "acs_jobs" received' "$notes" \
    "submitting a job notifies acs_jobs with an empty payload (any role may listen: no names)"

notes=$(h_sql <<SQL 2>&1
LISTEN acs_comm;
\! psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE acs.connections SET comm_state = 'enabled' WHERE name = 'AMTDEMO'"
SELECT 'after';
SQL
)
h_match 'Asynchronous notification "acs_comm" received' "$notes" \
    "a comm state change notifies acs_comm with an empty payload"
h_match 'violates check constraint "connections_comm_state_valid"' \
    "$(sql_err1 "UPDATE acs.connections SET comm_state = 'full' WHERE name = 'AMTDEMO'")" \
    "an unknown comm state is refused"

### kill ############################################################################

h_run_fails "request_kill is refused where Allow Kill Job is false" h_sql -c "SELECT acs.request_kill($id2)"
h_match "kills are not allowed on connection AMTDEMO" "$H_OUT" "and the refusal names the connection"
h_sql -c "UPDATE acs.connections SET allow_kill = true WHERE name = 'AMTDEMO'" >/dev/null
notes=$(h_sql <<SQL 2>&1
LISTEN acs_kill;
\! psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT acs.request_kill($id2)"
SELECT 'after';
SQL
)
h_match "^queued" "$notes" "request_kill returns the job's state"
h_match "Asynchronous notification \"acs_kill\" with payload \"$id2\" received" "$notes" \
    "request_kill notifies acs_kill with the job id"
h_eq t "$(h_sql -c "SELECT kill_requested_at IS NOT NULL FROM acs.jobs WHERE id = $id2")" \
    "request_kill stamps kill_requested_at"
h_eq "ERROR:  job $id1 has already finished; there is nothing to kill" \
    "$(sql_err1 "SELECT acs.request_kill($id1)")" "a finished job cannot be killed"
h_eq "ERROR:  job 999999 does not exist" "$(sql_err1 "SELECT acs.request_kill(999999)")" \
    "killing an unknown job is refused"

### job logs, batch users, alerts ###################################################

h_sql -c "INSERT INTO acs.job_logs (job_id, log) VALUES ($id1, 'the log')"
h_eq "AMTDEMO|the log" "$(h_sql -c "SELECT connection, log FROM acs.job_logs WHERE job_id = $id1")" \
    "a job log takes the connection of its job"
h_match 'violates check constraint "batch_users_sealed_password_not_empty"' \
    "$(sql_err1 "INSERT INTO acs.batch_users (name, key_id, sealed_password) VALUES ('amtopcon', 'k1', '')")" \
    "a batch user needs a sealed password"
h_sql -c "INSERT INTO acs.batch_users (name, key_id, sealed_password) VALUES ('amtopcon', 'k1', '\\x0102')"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.batch_users")" "a batch user is stored"
notes=$(h_sql <<SQL 2>&1
LISTEN acs_batch_users;
UPDATE acs.batch_users SET key_id = 'k2' WHERE name = 'amtopcon';
SELECT 'after';
SQL
)
h_match 'Asynchronous notification "acs_batch_users" received' "$notes" \
    "a password change notifies acs_batch_users"
[[ "$notes" != *amtopcon* ]] && h_ok "without the Batch User's name (any role may listen)" ||
    h_not_ok "without the Batch User's name (any role may listen): $notes"
notes=$(h_sql <<SQL 2>&1
LISTEN acs_alerts;
INSERT INTO acs.alerts (job_id, connection, code, name, message) VALUES ($id3, 'AMTDEMO', 11, 'ERROR', 'job failed');
SELECT 'after';
SQL
)
h_match 'Asynchronous notification "acs_alerts" with payload "[0-9]+" received' "$notes" \
    "raising an alert notifies acs_alerts"
h_sql -c "DELETE FROM acs.jobs WHERE id = $id1"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.job_logs WHERE job_id = $id1")" "deleting a job deletes its log"
