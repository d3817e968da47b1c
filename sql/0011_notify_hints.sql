-- 0011_notify_hints.sql: notifications carry ids only, and are hints.
--
-- PostgreSQL lets every connected role NOTIFY on any channel and LISTEN on
-- any channel; neither needs a privilege on the schema. So a notification is
-- never an order: a listener that acts on one reads the database first and
-- acts on what the read says (the daemon, e.g., kills only the jobs
-- acs.kills_pending returns: kill_requested_at set through acs.request_kill,
-- with its role check and Allow Kill Job). And a payload is readable by
-- anyone who connects, so it carries at most a number that means nothing
-- without the right to read the rows it points at:
--
--   acs_jobs          ''            a job was queued (or queued again)
--   acs_comm          ''            a connection's Full Comm state was set or changed
--   acs_batch_users   ''            a Batch User's password was set, changed or deleted
--   acs_kill          the job id    a kill was requested for an unfinished job
--   acs_job_finished  the job id    a job finished
--   acs_job_messages  the job id    a running job's messages arrived
--   acs_alerts        the alert id  an alert was raised
--
-- Until now acs_jobs and acs_comm carried the connection's name and
-- acs_batch_users the Batch User's name, both told to every login role. An
-- empty payload also folds all the notifications of one transaction into one
-- (PostgreSQL drops duplicates), so a bulk submit wakes a daemon once.
-- The other channels already carried only ids; they are unchanged.

CREATE OR REPLACE FUNCTION acs.jobs_notify_queued() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_jobs', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.jobs_notify_queued() IS
    'NOTIFY acs_jobs (empty payload, a hint) when a job is queued';

CREATE OR REPLACE FUNCTION acs.connections_notify_comm() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_comm', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.connections_notify_comm() IS
    'NOTIFY acs_comm (empty payload, a hint) when a Full Comm state is set or changed';

CREATE OR REPLACE FUNCTION acs.batch_users_notify() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_batch_users', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.batch_users_notify() IS
    'NOTIFY acs_batch_users (empty payload, a hint) when a Batch User is set, changed or deleted';

-- As in 0002_daemon.sql, but the wake-up it sends names no connection.
-- SECURITY DEFINER is restated: CREATE OR REPLACE takes the attributes of the
-- new text, and 0004_roles.sql had set it with ALTER FUNCTION.
CREATE OR REPLACE FUNCTION acs.resolve_in_doubt(job_id bigint, action text,
                                                batch_request_id integer DEFAULT NULL,
                                                log text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    st text;
BEGIN
    SELECT j.state INTO st FROM acs.jobs AS j WHERE j.id = resolve_in_doubt.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF st <> 'in_doubt' THEN
        RAISE EXCEPTION 'job % is %, not in doubt; there is nothing to resolve', job_id, st
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF action = 'restart' THEN
        UPDATE acs.jobs AS j SET state = 'queued', task_id = gen_random_uuid(), owner = NULL,
               claimed_at = NULL, error = NULL
         WHERE j.id = resolve_in_doubt.job_id;
    ELSIF action = 'fail' THEN
        UPDATE acs.jobs AS j SET state = 'finished', completion_code = 19, result = 'failure',
               finished_at = now(),
               error = coalesce(j.error || '; ', '') || 'resolved by an operator as failed'
         WHERE j.id = resolve_in_doubt.job_id;
        INSERT INTO acs.job_logs (job_id, connection, log)
        SELECT j.id, j.connection,
               coalesce(resolve_in_doubt.log, 'job ' || j.id || ' was in doubt and resolved by '
                        || session_user || ' as failed: ' || coalesce(j.error, '') || E'\n')
          FROM acs.jobs AS j WHERE j.id = resolve_in_doubt.job_id;
    ELSIF action = 'follow' THEN
        IF batch_request_id IS NULL OR batch_request_id <= 0 THEN
            RAISE EXCEPTION 'follow needs the BatchRequestId the server gave the job'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE acs.jobs AS j SET state = 'running', batch_request_id = resolve_in_doubt.batch_request_id,
               started_at = coalesce(j.started_at, now()), lease_expires = now(), error = NULL
         WHERE j.id = resolve_in_doubt.job_id;
    ELSE
        RAISE EXCEPTION 'unknown action %; use restart, fail or follow', quote_literal(action)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE acs.alerts AS a SET acknowledged_at = now(), acknowledged_by = session_user
     WHERE a.job_id = resolve_in_doubt.job_id AND a.name = 'START_IN_DOUBT' AND a.acknowledged_at IS NULL;
    PERFORM pg_notify('acs_jobs', '');
    RETURN action;
END
$$;
