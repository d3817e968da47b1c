-- functions/20_triggers.sql: the tables' triggers and their functions: the job
-- state machine, field checks, time stamps, the job timeline, and the NOTIFY
-- channels the daemon and amtacs-web listen on.
--
-- The current definition of each function and trigger here; `amtacsctl migrate`
-- applies this file after the versioned migrations (docs/schema.md).

CREATE OR REPLACE FUNCTION acs.touch_updated_at()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS batch_users_touch ON acs.batch_users;
CREATE TRIGGER batch_users_touch BEFORE UPDATE ON acs.batch_users
    FOR EACH ROW EXECUTE FUNCTION acs.touch_updated_at();

-- The checks on a job's fields, in a trigger rather than CHECK constraints:
-- PostgreSQL evaluates every CHECK of a row on every UPDATE, and the daemon
-- updates each job several times, while a job's fields never change after it
-- is enqueued. The trigger fires on INSERT and on an UPDATE that names one of
-- the fields, and reports the very constraint names and messages.
CREATE OR REPLACE FUNCTION acs.jobs_check_fields()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    bad text;
BEGIN
    bad := CASE
        WHEN NOT (acs.is_valid_name(NEW.application) AND length(NEW.application) <= 128)
            THEN 'jobs_application_valid'
        WHEN NOT coalesce(acs.is_valid_name(NEW.amt_user) AND length(NEW.amt_user) <= 128, true)
            THEN 'jobs_amt_user_valid'
        WHEN NOT coalesce(acs.is_valid_name(NEW.queue_name) AND length(NEW.queue_name) <= 128, true)
            THEN 'jobs_queue_name_valid'
        WHEN NOT coalesce(acs.is_valid_name(NEW.job_name) AND length(NEW.job_name) <= 128, true)
            THEN 'jobs_job_name_valid'
        WHEN NOT coalesce(acs.is_valid_name(NEW.script_name) AND length(NEW.script_name) <= 1024, true)
            THEN 'jobs_script_name_valid'
        WHEN NOT coalesce(acs.is_valid_name(NEW.external_ref) AND length(NEW.external_ref) <= 256, true)
            THEN 'jobs_external_ref_valid'
        WHEN NOT acs.is_valid_pair_list(NEW.task_values) THEN 'jobs_task_values_valid'
        WHEN NOT acs.is_valid_pair_list(NEW.script_parameters) THEN 'jobs_script_parameters_valid'
    END;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "jobs" violates check constraint "%"', bad
            USING ERRCODE = 'check_violation', CONSTRAINT = bad, TABLE = 'jobs', SCHEMA = 'acs';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS jobs_check_fields ON acs.jobs;
CREATE TRIGGER jobs_check_fields
    BEFORE INSERT OR UPDATE OF application, amt_user, queue_name, job_name, script_name,
                               external_ref, task_values, script_parameters
    ON acs.jobs FOR EACH ROW EXECUTE FUNCTION acs.jobs_check_fields();

-- A job's result is success exactly when acs.completion_codes says its code
-- is (DONE, 4); a code not in the table is a failure. Until migration 22 this
-- was the CHECK jobs_result_matches_code, which named code 4 (a CHECK cannot
-- read another table); the trigger reports the same constraint name and
-- message, and runs only when result or completion_code is written.
CREATE OR REPLACE FUNCTION acs.jobs_check_result()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.completion_code IS NOT NULL
       AND (NEW.result = 'success') IS DISTINCT FROM
           coalesce((SELECT c.success FROM acs.completion_codes AS c
                      WHERE c.code = NEW.completion_code), false) THEN
        RAISE EXCEPTION 'new row for relation "jobs" violates check constraint "%"',
                        'jobs_result_matches_code'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'jobs_result_matches_code',
                  TABLE = 'jobs', SCHEMA = 'acs';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION acs.jobs_check_result() IS
    'Trigger: result = success exactly when acs.completion_codes.success is true for the code';
REVOKE ALL ON FUNCTION acs.jobs_check_result() FROM PUBLIC;
DROP TRIGGER IF EXISTS jobs_check_result ON acs.jobs;
CREATE TRIGGER jobs_check_result BEFORE INSERT OR UPDATE OF result, completion_code ON acs.jobs
    FOR EACH ROW WHEN (NEW.result IS NOT NULL) EXECUTE FUNCTION acs.jobs_check_result();

-- The state machine: refuses every state change but
--   queued -> starting | finished (killed before it started)
--   starting -> running | finished | queued (given back before Start was sent)
--              | in_doubt (a Start may have reached a non-idempotent server)
--   running -> finished
--   in_doubt -> queued | running | finished (an operator's decision)
-- A finished job never changes state again (it is never started twice).
CREATE OR REPLACE FUNCTION acs.jobs_check_transition()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    allowed text[];
BEGIN
    allowed := CASE OLD.state
        WHEN 'queued'   THEN ARRAY['starting', 'finished']
        WHEN 'starting' THEN ARRAY['running', 'finished', 'queued', 'in_doubt']
        WHEN 'running'  THEN ARRAY['finished']
        WHEN 'in_doubt' THEN ARRAY['queued', 'running', 'finished']
        ELSE ARRAY[]::text[] END;
    IF NOT NEW.state = ANY (allowed) THEN
        RAISE EXCEPTION 'job % cannot go from % to %; allowed from %: %', OLD.id, OLD.state, NEW.state,
            OLD.state, CASE WHEN cardinality(allowed) = 0 THEN 'nothing (it is final)'
                            ELSE array_to_string(allowed, ', ') END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'jobs_state_transition',
                  TABLE = 'jobs', SCHEMA = 'acs';
    END IF;
    RETURN NEW;
END
$$;

-- The trigger runs only for a transition that is not allowed (to refuse it);
-- the allowed ones are its WHEN clause, evaluated without a function call.
-- Keep the two lists in step.
DROP TRIGGER IF EXISTS jobs_check_transition ON acs.jobs;
CREATE TRIGGER jobs_check_transition BEFORE UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NOT (
           (OLD.state = 'queued'   AND NEW.state IN ('starting', 'finished'))
        OR (OLD.state = 'starting' AND NEW.state IN ('running', 'finished', 'queued', 'in_doubt'))
        OR (OLD.state = 'running'  AND NEW.state = 'finished')
        OR (OLD.state = 'in_doubt' AND NEW.state IN ('queued', 'running', 'finished'))))
    EXECUTE FUNCTION acs.jobs_check_transition();

CREATE OR REPLACE FUNCTION acs.jobs_stamp_state()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    NEW.state_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION acs.jobs_stamp_state() IS
    'Records the transaction that changes a job''s state (acs.jobs.state_xid)';

DROP TRIGGER IF EXISTS jobs_stamp_state ON acs.jobs;
CREATE TRIGGER jobs_stamp_state BEFORE UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION acs.jobs_stamp_state();

CREATE OR REPLACE FUNCTION acs.jobs_notify_queued()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_jobs', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.jobs_notify_queued() IS
    'NOTIFY acs_jobs (empty payload, a hint) when a job is queued';

DROP TRIGGER IF EXISTS jobs_notify_queued_insert ON acs.jobs;
CREATE TRIGGER jobs_notify_queued_insert AFTER INSERT ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION acs.jobs_notify_queued();

DROP TRIGGER IF EXISTS jobs_notify_queued_update ON acs.jobs;
CREATE TRIGGER jobs_notify_queued_update AFTER UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
    EXECUTE FUNCTION acs.jobs_notify_queued();

-- NOTIFY acs_kill (payload: the job id) when a kill is requested for an unfinished job.
CREATE OR REPLACE FUNCTION acs.jobs_notify_kill()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_kill', NEW.id::text);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS jobs_notify_kill ON acs.jobs;
CREATE TRIGGER jobs_notify_kill AFTER UPDATE OF kill_requested_at ON acs.jobs
    FOR EACH ROW WHEN (OLD.kill_requested_at IS NULL AND NEW.kill_requested_at IS NOT NULL
                       AND NEW.state <> 'finished')
    EXECUTE FUNCTION acs.jobs_notify_kill();

-- NOTIFY acs_job_finished (payload: the job id) when a job reaches finished.
CREATE OR REPLACE FUNCTION acs.jobs_notify_finished()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_job_finished', NEW.id::text);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS jobs_notify_finished_insert ON acs.jobs;
CREATE TRIGGER jobs_notify_finished_insert AFTER INSERT ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'finished') EXECUTE FUNCTION acs.jobs_notify_finished();

DROP TRIGGER IF EXISTS jobs_notify_finished_update ON acs.jobs;
CREATE TRIGGER jobs_notify_finished_update AFTER UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'finished' AND OLD.state <> 'finished')
    EXECUTE FUNCTION acs.jobs_notify_finished();

CREATE OR REPLACE FUNCTION acs.jobs_notify_state()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_job_state', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.jobs_notify_state() IS
    'NOTIFY acs_job_state (empty payload, a hint) after a statement that may have changed job states';

DROP TRIGGER IF EXISTS jobs_notify_state_insert ON acs.jobs;
CREATE TRIGGER jobs_notify_state_insert AFTER INSERT ON acs.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION acs.jobs_notify_state();

DROP TRIGGER IF EXISTS jobs_notify_state_update ON acs.jobs;
CREATE TRIGGER jobs_notify_state_update AFTER UPDATE OF state ON acs.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION acs.jobs_notify_state();

CREATE OR REPLACE FUNCTION acs.job_states_record()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO acs.job_states (job_id, code) VALUES (NEW.id, NEW.last_code);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.job_states_record() IS
    'Trigger: records a change of acs.jobs.last_code in acs.job_states';
REVOKE ALL ON FUNCTION acs.job_states_record() FROM PUBLIC;

DROP TRIGGER IF EXISTS jobs_states ON acs.jobs;
CREATE TRIGGER jobs_states AFTER UPDATE OF last_code ON acs.jobs
    FOR EACH ROW
    WHEN (NEW.last_code IS NOT NULL AND NEW.last_code IS DISTINCT FROM OLD.last_code)
    EXECUTE FUNCTION acs.job_states_record();

-- Retention: the states of the jobs whose logs were just deleted, in one
-- statement per purge (a transition table, not a trigger call per row).
CREATE OR REPLACE FUNCTION acs.job_states_purge()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM acs.job_states AS s USING gone WHERE s.job_id = gone.job_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.job_states_purge() IS
    'Trigger: a job''s states go when its log goes (retention)';
REVOKE ALL ON FUNCTION acs.job_states_purge() FROM PUBLIC;

DROP TRIGGER IF EXISTS job_logs_states_purge ON acs.job_logs;
CREATE TRIGGER job_logs_states_purge AFTER DELETE ON acs.job_logs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION acs.job_states_purge();

-- The log's connection is always the job's: filled in (or corrected) on write.
CREATE OR REPLACE FUNCTION acs.job_logs_set_connection()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    SELECT j.connection INTO NEW.connection FROM acs.jobs AS j WHERE j.id = NEW.job_id;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS job_logs_set_connection ON acs.job_logs;
CREATE TRIGGER job_logs_set_connection BEFORE INSERT OR UPDATE OF job_id, connection ON acs.job_logs
    FOR EACH ROW WHEN (NEW.connection IS NULL)
    EXECUTE FUNCTION acs.job_logs_set_connection();

-- The merged log replaces the running messages.
CREATE OR REPLACE FUNCTION acs.job_logs_drop_messages()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM acs.job_messages AS m WHERE m.job_id = NEW.job_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION acs.job_logs_drop_messages_batch()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM acs.job_messages AS m USING new_logs AS n WHERE m.job_id = n.job_id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS job_logs_drop_messages ON acs.job_logs;
CREATE TRIGGER job_logs_drop_messages AFTER INSERT ON acs.job_logs
    REFERENCING NEW TABLE AS new_logs
    FOR EACH STATEMENT EXECUTE FUNCTION acs.job_logs_drop_messages_batch();

-- NOTIFY acs_alerts (payload: the alert id) when an alert is raised.
CREATE OR REPLACE FUNCTION acs.alerts_notify()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_alerts', NEW.id::text);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS alerts_notify ON acs.alerts;
CREATE TRIGGER alerts_notify AFTER INSERT ON acs.alerts
    FOR EACH ROW EXECUTE FUNCTION acs.alerts_notify();

CREATE OR REPLACE FUNCTION acs.connections_stamp_comm()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.comm_state IS DISTINCT FROM OLD.comm_state THEN
        NEW.comm_changed_at := now();
        IF NEW.comm_changed_by IS NOT DISTINCT FROM OLD.comm_changed_by THEN
            NEW.comm_changed_by := acs.actor();
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION acs.connections_stamp_comm() IS
    'Stamps a comm_state change with the time and (unless the writer set it) acs.actor()';

DROP TRIGGER IF EXISTS connections_stamp_comm ON acs.connections;
CREATE TRIGGER connections_stamp_comm BEFORE UPDATE OF comm_state ON acs.connections
    FOR EACH ROW EXECUTE FUNCTION acs.connections_stamp_comm();

CREATE OR REPLACE FUNCTION acs.connections_notify_comm()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_comm', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.connections_notify_comm() IS
    'NOTIFY acs_comm (empty payload, a hint) when a Full Comm state is set or changed';

DROP TRIGGER IF EXISTS connections_notify_comm_insert ON acs.connections;
CREATE TRIGGER connections_notify_comm_insert AFTER INSERT ON acs.connections
    FOR EACH ROW EXECUTE FUNCTION acs.connections_notify_comm();

DROP TRIGGER IF EXISTS connections_notify_comm_update ON acs.connections;
CREATE TRIGGER connections_notify_comm_update AFTER UPDATE OF comm_state ON acs.connections
    FOR EACH ROW WHEN (OLD.comm_state IS DISTINCT FROM NEW.comm_state)
    EXECUTE FUNCTION acs.connections_notify_comm();

CREATE OR REPLACE FUNCTION acs.batch_users_notify()
    RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_batch_users', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.batch_users_notify() IS
    'NOTIFY acs_batch_users (empty payload, a hint) when a Batch User is set, changed or deleted';

DROP TRIGGER IF EXISTS batch_users_notify ON acs.batch_users;
CREATE TRIGGER batch_users_notify AFTER INSERT OR UPDATE OR DELETE ON acs.batch_users
    FOR EACH ROW EXECUTE FUNCTION acs.batch_users_notify();

-- Batch Users are written by admins with INSERT, UPDATE and DELETE on the
-- table (amtacsctl batch-user, rekey): the audit row comes from a trigger.
CREATE OR REPLACE FUNCTION acs.batch_users_audit()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM acs.audit_record('batch_user_delete', OLD.name, NULL);
    ELSIF TG_OP = 'INSERT' OR NEW.sealed_password IS DISTINCT FROM OLD.sealed_password
          OR NEW.key_id IS DISTINCT FROM OLD.key_id THEN
        PERFORM acs.audit_record('batch_user_set', NEW.name, jsonb_build_object('key_id', NEW.key_id));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.batch_users_audit() IS
    'Audits a Batch User''s password set (or re-sealed) or deleted';
REVOKE ALL ON FUNCTION acs.batch_users_audit() FROM PUBLIC;

DROP TRIGGER IF EXISTS batch_users_audit ON acs.batch_users;
CREATE TRIGGER batch_users_audit AFTER INSERT OR UPDATE OR DELETE ON acs.batch_users
    FOR EACH ROW EXECUTE FUNCTION acs.batch_users_audit();
