-- 0022_function_files.sql: functions, views and triggers move to sql/functions/,
-- and the completion-code rules become columns of acs.completion_codes.
--
-- 1. acs.schema_functions records the function files `amtacsctl migrate`
--    applied (sql/functions/*.sql, one current definition of each function,
--    view and trigger), with each file's SHA-256: migrate applies them again,
--    all of them, after any migration or when one of them changed, and does
--    nothing when none did (docs/schema.md, "Function files").
-- 2. Which codes raise an alert is the column raises_alert (ERROR 11, ABORTED
--    12, WEB_SERVER_ERROR 23, AUTHENTICATION_ERROR 24), as success already was
--    the column success (DONE 4): the functions that finish a job read both
--    (functions/40_daemon.sql, acs.jobs_end) instead of repeating the numbers.
--    A test compares the columns with src/lib/codes.c.
-- 3. The CHECK jobs_result_matches_code named code 4; the trigger
--    jobs_check_result (functions/20_triggers.sql) checks the same rule
--    against the column success, under the same constraint name and message,
--    and only when result or completion_code is written (a CHECK runs on every
--    update of a job).

CREATE TABLE acs.schema_functions (
    name       text        PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE acs.schema_functions IS
    'Function files (sql/functions/*.sql) that amtacs migrate applied last; checksum is the SHA-256 of the file';
REVOKE ALL ON acs.schema_functions FROM PUBLIC;

ALTER TABLE acs.completion_codes
    ADD COLUMN raises_alert boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT completion_codes_alert_is_final CHECK (NOT raises_alert OR final);
UPDATE acs.completion_codes SET raises_alert = true WHERE code IN (11, 12, 23, 24);
COMMENT ON COLUMN acs.completion_codes.success IS
    'The job succeeded: DONE (4) alone. Sets acs.jobs.result';
COMMENT ON COLUMN acs.completion_codes.raises_alert IS
    'A job that ends with this code raises an alert (a row in acs.alerts and NOTIFY acs_alerts)';

ALTER TABLE acs.jobs DROP CONSTRAINT jobs_result_matches_code;
