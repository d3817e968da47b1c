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
-- connection and per minute.
--
-- A day can hold a million finished jobs: counting them at every request
-- would read them all. So the minutes that are over are counted once, into
-- acs.job_minutes, by the first acs.job_stats() call after them, and each
-- call counts only the jobs that finished since (a minute or two). A minute
-- is over one minute after its end (finished_at is the start of the
-- finishing transaction, and the daemon's transactions are short). Nothing
-- on the daemon's path writes here: no trigger, no lock it could wait for.
-------------------------------------------------------------------------------

-- Index-only scans for the minutes to count (the minute, connection and
-- result of each finished job, without visiting the table).
CREATE INDEX jobs_finished_stats_idx ON acs.jobs (finished_at) INCLUDE (connection, result)
    WHERE state = 'finished';

CREATE TABLE acs.job_minutes (
    minute     timestamptz NOT NULL,
    connection text        NOT NULL,
    finished   bigint      NOT NULL,
    failed     bigint      NOT NULL,
    CONSTRAINT job_minutes_pkey PRIMARY KEY (minute, connection)
);
COMMENT ON TABLE acs.job_minutes IS
    'Jobs that finished per minute and connection (failed: of them, result failure), for the minutes before acs.job_minutes_done.upto; kept 25 hours';

CREATE TABLE acs.job_minutes_done (
    one  boolean     PRIMARY KEY DEFAULT true CONSTRAINT job_minutes_done_one CHECK (one),
    upto timestamptz NOT NULL
);
COMMENT ON TABLE acs.job_minutes_done IS
    'acs.job_minutes holds every minute before upto (one row)';
INSERT INTO acs.job_minutes_done (upto) VALUES ('-infinity');

CREATE FUNCTION acs.job_stats() RETURNS json
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    since  timestamptz := date_trunc('minute', now() - interval '24 hours');
    target timestamptz := date_trunc('minute', now()) - interval '1 minute';
    done   timestamptz;
    answer json;
BEGIN
    SELECT d.upto INTO done FROM acs.job_minutes_done AS d;
    -- One caller counts the minutes now over; the others count them live
    -- this time rather than wait.
    IF done < target AND pg_try_advisory_xact_lock(hashtextextended('acs.job_minutes', 0)) THEN
        SELECT d.upto INTO done FROM acs.job_minutes_done AS d;
        IF done < target THEN
            INSERT INTO acs.job_minutes AS m (minute, connection, finished, failed)
            SELECT date_trunc('minute', j.finished_at), j.connection, count(*),
                   count(*) FILTER (WHERE j.result = 'failure')
              FROM acs.jobs AS j
             WHERE j.state = 'finished' AND j.finished_at >= greatest(done, since)
               AND j.finished_at < target
             GROUP BY 1, 2
            ON CONFLICT ON CONSTRAINT job_minutes_pkey DO UPDATE
               SET finished = m.finished + excluded.finished, failed = m.failed + excluded.failed;
            UPDATE acs.job_minutes_done SET upto = target;
            done := target;
            DELETE FROM acs.job_minutes AS m WHERE m.minute < since - interval '1 hour';
        END IF;
    END IF;
    -- Minutes before done from acs.job_minutes, the rest live. Rows for them
    -- that another caller adds meanwhile are left out by the bound, so
    -- nothing is counted twice. Run with EXECUTE: planned for these values
    -- (a cached generic plan would not know the live part is a minute or two).
    done := greatest(done, since);
    EXECUTE $q$
    WITH active AS (
        SELECT a.connection, a.state, a.jobs FROM acs.active_job_counts() AS a
    ), recent AS (
        SELECT m.connection, m.minute, m.finished, m.failed
          FROM acs.job_minutes AS m
         WHERE m.minute >= $1 AND m.minute < $2
        UNION ALL
        SELECT j.connection, date_trunc('minute', j.finished_at), count(*),
               count(*) FILTER (WHERE j.result = 'failure')
          FROM acs.jobs AS j
         WHERE j.state = 'finished' AND j.finished_at >= $2
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
        'since', $1,
        'states', json_build_object(
            'queued', coalesce((SELECT sum(p.queued) FROM per_conn AS p), 0)::bigint,
            'starting', coalesce((SELECT sum(p.starting) FROM per_conn AS p), 0)::bigint,
            'running', coalesce((SELECT sum(p.running) FROM per_conn AS p), 0)::bigint,
            'in_doubt', coalesce((SELECT sum(p.in_doubt) FROM per_conn AS p), 0)::bigint,
            'finished_24h', coalesce((SELECT sum(p.finished_24h) FROM per_conn AS p), 0)::bigint,
            'failed_24h', coalesce((SELECT sum(p.failed_24h) FROM per_conn AS p), 0)::bigint),
        'connections', coalesce((SELECT json_agg(p ORDER BY p.connection) FROM per_conn AS p), '[]'::json),
        'per_minute', coalesce((SELECT json_agg(json_build_object('minute', x.minute, 'finished', x.finished,
                                                                  'failed', x.failed) ORDER BY x.minute)
                                  FROM (SELECT r.minute, sum(r.finished)::bigint AS finished,
                                               sum(r.failed)::bigint AS failed
                                          FROM recent AS r GROUP BY r.minute) AS x), '[]'::json))
    $q$
      INTO answer USING since, done;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION acs.job_stats() IS
    'Jobs not yet ended by connection and state, and jobs that ended since the start of the minute 24 hours ago by connection and per minute (non-empty minutes only), as JSON';

-------------------------------------------------------------------------------
-- The time filters of GET /api/v1/jobs (since, until on enqueued_at): with
-- one, a page is read in (enqueued_at, id) order, newest first, from here.
-------------------------------------------------------------------------------

CREATE INDEX jobs_enqueued_at_idx ON acs.jobs (enqueued_at, id);

-- A page of one connection's jobs in one state, newest first (GET /jobs?
-- connection=C&state=S, the console's usual view): without it PostgreSQL
-- walks the primary key down and filters, reading ~16,900 rows for a page
-- of 50 among a million jobs (bench/web); with it ~500. State changes are
-- not HOT updates anyway (state is in the partial indexes' predicates);
-- lease renewals, which are, do not touch these columns.
CREATE INDEX jobs_connection_state_idx ON acs.jobs (connection, state, id);

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
-- (job_stats writes acs.job_minutes as its owner; the roles read no table of its)
REVOKE ALL ON acs.job_minutes, acs.job_minutes_done FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_stats() TO acs_viewer, acs_scheduler, acs_operator, acs_admin;
