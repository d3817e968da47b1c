-- 0005_hot_path.sql: the same rules on the jobs table, at a fraction of the
-- cost.
--
-- PostgreSQL evaluates every CHECK constraint of a row on every UPDATE, even
-- when the update touches none of the checked columns. The checks on names
-- and task values call functions (one scans the array), and the daemon
-- updates each job several times: measured, they were most of the cost of
-- acs.job_started. A job's fields never change after it is enqueued, so the
-- same checks now run in a trigger that fires only on INSERT and on an UPDATE
-- that names one of those columns, and it reports the very same constraint
-- names and messages.

ALTER TABLE acs.jobs
    DROP CONSTRAINT jobs_application_valid,
    DROP CONSTRAINT jobs_amt_user_valid,
    DROP CONSTRAINT jobs_queue_name_valid,
    DROP CONSTRAINT jobs_job_name_valid,
    DROP CONSTRAINT jobs_script_name_valid,
    DROP CONSTRAINT jobs_external_ref_valid,
    DROP CONSTRAINT jobs_task_values_valid,
    DROP CONSTRAINT jobs_script_parameters_valid;

CREATE FUNCTION acs.jobs_check_fields() RETURNS trigger
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
CREATE TRIGGER jobs_check_fields
    BEFORE INSERT OR UPDATE OF application, amt_user, queue_name, job_name, script_name,
                               external_ref, task_values, script_parameters
    ON acs.jobs FOR EACH ROW EXECUTE FUNCTION acs.jobs_check_fields();

-- The state machine's trigger runs only for a transition that is not allowed
-- (to refuse it); the allowed ones are the WHEN clause, evaluated without a
-- function call. Keep it in step with the list in acs.jobs_check_transition (0001).
DROP TRIGGER jobs_check_transition ON acs.jobs;
CREATE TRIGGER jobs_check_transition BEFORE UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NOT (
           (OLD.state = 'queued'   AND NEW.state IN ('starting', 'finished'))
        OR (OLD.state = 'starting' AND NEW.state IN ('running', 'finished', 'queued', 'in_doubt'))
        OR (OLD.state = 'running'  AND NEW.state = 'finished')
        OR (OLD.state = 'in_doubt' AND NEW.state IN ('queued', 'running', 'finished'))))
    EXECUTE FUNCTION acs.jobs_check_transition();

-- A log's connection is filled in from its job when the writer left it out
-- (the daemon's functions always give it).
DROP TRIGGER job_logs_set_connection ON acs.job_logs;
CREATE TRIGGER job_logs_set_connection BEFORE INSERT OR UPDATE OF job_id, connection ON acs.job_logs
    FOR EACH ROW WHEN (NEW.connection IS NULL)
    EXECUTE FUNCTION acs.job_logs_set_connection();

-- Running messages are dropped once per statement, not once per log.
DROP TRIGGER job_logs_drop_messages ON acs.job_logs;
CREATE FUNCTION acs.job_logs_drop_messages_batch() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM acs.job_messages AS m USING new_logs AS n WHERE m.job_id = n.job_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER job_logs_drop_messages AFTER INSERT ON acs.job_logs
    REFERENCING NEW TABLE AS new_logs
    FOR EACH STATEMENT EXECUTE FUNCTION acs.job_logs_drop_messages_batch();
