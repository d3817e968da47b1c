-- 0015_web_operate.sql: what the console's operate, stats and admin pages
-- stand on -- reruns linked to their original, submitting for every role from
-- scheduler up, the statistics of the queue, and the indexes that keep the
-- time filters and the statistics fast at a million jobs.

-------------------------------------------------------------------------------
-- Rerun: a new job with the same spec and a new taskId. The seed's answer to
-- a completion code 23 is "restart the job"; a finished job never changes
-- again, so the rerun is a job of its own that names its original.
-------------------------------------------------------------------------------

ALTER TABLE acs.jobs
    ADD COLUMN rerun_of bigint
        CONSTRAINT jobs_rerun_of_fkey REFERENCES acs.jobs (id) ON DELETE SET NULL;
COMMENT ON COLUMN acs.jobs.rerun_of IS
    'The job this one reruns (acs.rerun_job); NULL for a job submitted as such';
-- The reruns of a job, for its document (and the foreign key's ON DELETE).
CREATE INDEX jobs_rerun_of_idx ON acs.jobs (rerun_of) WHERE rerun_of IS NOT NULL;

-- Operator: enqueues a new job with the spec of an ended one (connection,
-- kind, application, name, parameters, queue, RunAs user, external
-- reference) and a new taskId; returns its id. A finished job is never
-- changed, so it takes no row lock beyond the foreign key's KEY SHARE.
CREATE FUNCTION acs.rerun_job(job_id bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    o      acs.jobs;
    new_id bigint;
BEGIN
    SELECT * INTO o FROM acs.jobs AS j WHERE j.id = rerun_job.job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF o.state <> 'finished' THEN
        RAISE EXCEPTION 'job % is %; only a job that has ended can be rerun (kill it, or resolve it if it is in doubt, and rerun it then)',
            job_id, o.state USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO acs.jobs (connection, kind, application, submit_user, station, amt_user,
                          queue_name, job_name, task_values, script_name, script_parameters,
                          external_ref, rerun_of)
    VALUES (o.connection, o.kind, o.application, o.submit_user, o.station, o.amt_user,
            o.queue_name, o.job_name, o.task_values, o.script_name, o.script_parameters,
            o.external_ref, o.id)
    RETURNING id INTO new_id;
    -- the INSERT trigger sends NOTIFY acs_jobs; task_id is a new gen_random_uuid()
    PERFORM acs.audit_record('rerun', new_id::text,
        jsonb_build_object('rerun_of', o.id, 'connection', o.connection, 'kind', o.kind,
                           'name', coalesce(o.job_name, o.script_name)));
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION acs.rerun_job(bigint) IS
    'Operator: enqueues a new job with the spec of an ended job and a new taskId, linked by rerun_of; returns its id';

-- As in 0006_operability.sql, with the links of a rerun both ways.
CREATE OR REPLACE FUNCTION acs.job_document(p_id bigint) RETURNS json
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
SELECT json_build_object(
           'id', j.id,
           'external_ref', j.external_ref,
           'connection', j.connection,
           'kind', j.kind,
           'application', j.application,
           'name', coalesce(j.job_name, j.script_name),
           'queue_name', j.queue_name,
           'amt_user', j.amt_user,
           'submit_user', j.submit_user,
           'station', j.station,
           'parameters', CASE WHEN j.kind = 'batch' THEN j.task_values ELSE j.script_parameters END,
           'state', j.state,
           'task_id', j.task_id,
           'batch_request_id', j.batch_request_id,
           'amt_code', j.last_code,
           'amt_state', lc.name,
           'completion_code', j.completion_code,
           'completion_name', CASE WHEN j.completion_code IS NOT NULL
                                   THEN coalesce(c.name, 'UNKNOWN') END,
           'result', j.result,
           'error', j.error,
           'enqueued_at', j.enqueued_at,
           'started_at', j.started_at,
           'finished_at', j.finished_at,
           'kill_requested_at', j.kill_requested_at,
           'kill_sent_at', j.kill_sent_at,
           'kill_error', j.kill_error,
           'log', CASE WHEN l.job_id IS NOT NULL THEN 'available'
                       WHEN j.state = 'finished' THEN 'purged'
                       ELSE 'pending' END,
           'rerun_of', j.rerun_of,
           'reruns', ARRAY(SELECT r.id FROM acs.jobs AS r WHERE r.rerun_of = j.id ORDER BY r.id))
  FROM acs.jobs AS j
  LEFT JOIN acs.completion_codes AS c ON c.code = j.completion_code
  LEFT JOIN acs.completion_codes AS lc ON lc.code = j.last_code
  LEFT JOIN acs.job_logs AS l ON l.job_id = j.id
 WHERE j.id = p_id
$$;

-------------------------------------------------------------------------------
-- Statistics: the jobs not yet ended (exact, from the partial indexes of
-- acs.active_job_counts) and those that ended in the last 24 hours, per
-- connection and per minute. Nothing here reads the jobs that ended before:
-- the cost follows a day's traffic, not the size of the table.
-------------------------------------------------------------------------------

-- Index-only scans for the last 24 hours (the minute, connection and result
-- of each finished job, without visiting the table).
CREATE INDEX jobs_finished_stats_idx ON acs.jobs (finished_at) INCLUDE (connection, result)
    WHERE state = 'finished';

CREATE FUNCTION acs.job_stats() RETURNS json
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
WITH active AS (
    SELECT a.connection, a.state, a.jobs FROM acs.active_job_counts() AS a
), recent AS (
    SELECT j.connection, date_trunc('minute', j.finished_at) AS minute,
           count(*) AS finished, count(*) FILTER (WHERE j.result = 'failure') AS failed
      FROM acs.jobs AS j
     WHERE j.state = 'finished' AND j.finished_at >= now() - interval '24 hours'
     GROUP BY 1, 2
), conns AS (
    SELECT a.connection FROM active AS a UNION SELECT r.connection FROM recent AS r
), per_conn AS (
    SELECT c.connection,
           coalesce((SELECT sum(a.jobs) FROM active AS a
                      WHERE a.connection = c.connection AND a.state = 'queued'), 0)::bigint AS queued,
           coalesce((SELECT sum(a.jobs) FROM active AS a
                      WHERE a.connection = c.connection AND a.state = 'starting'), 0)::bigint AS starting,
           coalesce((SELECT sum(a.jobs) FROM active AS a
                      WHERE a.connection = c.connection AND a.state = 'running'), 0)::bigint AS running,
           coalesce((SELECT sum(a.jobs) FROM active AS a
                      WHERE a.connection = c.connection AND a.state = 'in_doubt'), 0)::bigint AS in_doubt,
           coalesce((SELECT sum(r.finished) FROM recent AS r
                      WHERE r.connection = c.connection), 0)::bigint AS finished_24h,
           coalesce((SELECT sum(r.failed) FROM recent AS r
                      WHERE r.connection = c.connection), 0)::bigint AS failed_24h
      FROM conns AS c
)
SELECT json_build_object(
    'at', now(),
    'since', now() - interval '24 hours',
    'states', json_build_object(
        'queued', coalesce((SELECT sum(p.queued) FROM per_conn AS p), 0)::bigint,
        'starting', coalesce((SELECT sum(p.starting) FROM per_conn AS p), 0)::bigint,
        'running', coalesce((SELECT sum(p.running) FROM per_conn AS p), 0)::bigint,
        'in_doubt', coalesce((SELECT sum(p.in_doubt) FROM per_conn AS p), 0)::bigint,
        'finished_24h', coalesce((SELECT sum(p.finished_24h) FROM per_conn AS p), 0)::bigint,
        'failed_24h', coalesce((SELECT sum(p.failed_24h) FROM per_conn AS p), 0)::bigint),
    'connections', coalesce((SELECT json_agg(p ORDER BY p.connection) FROM per_conn AS p), '[]'::json),
    'per_minute', coalesce((SELECT json_agg(json_build_object('minute', m.minute, 'finished', m.finished,
                                                              'failed', m.failed) ORDER BY m.minute)
                              FROM (SELECT r.minute, sum(r.finished)::bigint AS finished,
                                           sum(r.failed)::bigint AS failed
                                      FROM recent AS r GROUP BY r.minute) AS m), '[]'::json))
$$;
COMMENT ON FUNCTION acs.job_stats() IS
    'Jobs not yet ended by connection and state, and jobs ended in the last 24 hours by connection and per minute (non-empty minutes only), as JSON';

-------------------------------------------------------------------------------
-- The time filters of GET /api/v1/jobs (since, until on enqueued_at).
-------------------------------------------------------------------------------

CREATE INDEX jobs_enqueued_at_idx ON acs.jobs (enqueued_at);

-------------------------------------------------------------------------------
-- Rights
-------------------------------------------------------------------------------

-- Submitting is for the scheduler role and every role above it: an operator
-- reruns jobs anyway (acs.rerun_job), and an admin may do what an operator
-- does. Viewers still submit nothing.
GRANT EXECUTE ON FUNCTION acs.submit_batch_job(text, text, text, text[], text, text, text),
                          acs.submit_script_job(text, text, text, text[], text, text, text)
    TO acs_operator, acs_admin;

REVOKE ALL ON FUNCTION acs.rerun_job(bigint), acs.job_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.rerun_job(bigint) TO acs_operator, acs_admin;
-- job_stats runs as its caller: the SELECT on acs.jobs decides
GRANT EXECUTE ON FUNCTION acs.job_stats() TO acs_viewer, acs_scheduler, acs_operator, acs_admin;
