-- 0008_scale.sql: the hot path stays cheap however many jobs a daemon holds.
--
-- Measured with 100,000 jobs running under one daemon (bench/run's scale
-- run): starting them slowed from 3,800 to 600 jobs/s, PostgreSQL at 100 %.
-- Two causes, both O(jobs held) per statement:
--
-- 1. jobs_started and jobs_finish join their items to acs.jobs. Statistics
--    lag behind a burst of claims (autovacuum analyzes a minute later), so the
--    planner believes the owner holds three jobs, and hashes every job it
--    holds through jobs_claimed_idx (100,000 rows) to update 500: 67 ms for
--    500 items. The state test is now a CASE, which the planner cannot match
--    to jobs_claimed_idx's predicate, so each item is one probe of the
--    primary key whatever the statistics say: 10 ms for the same 500.
--
-- 2. Every claim looked for expired leases among all the jobs of the
--    connection (jobs_claimed_idx has no lease column: renewing leases must
--    stay a HOT update). A daemon claims after every batch of jobs that ends,
--    many times a second under load, while leases expire only when a daemon
--    dies. claim_jobs takes take_over now: the daemon asks for expired leases
--    on its periodic rescan, at start and when the database comes back, and
--    otherwise claims queued jobs alone.
--
-- And one more: a job's first status check changes its recorded state, and
-- that was one statement per job. jobs_progress writes them in batches, like
-- jobs_started and jobs_finish.

CREATE OR REPLACE FUNCTION acs.jobs_started(owner text, items json)
    RETURNS TABLE (id bigint, held boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    WITH x AS (
        SELECT t.id, t.attempt, t.batch_request_id, t.ord
          FROM ROWS FROM (json_to_recordset(items) AS (id bigint, attempt integer, batch_request_id integer))
                    WITH ORDINALITY AS t(id, attempt, batch_request_id, ord)
    ), upd AS (
        UPDATE acs.jobs AS j
           SET state = 'running', batch_request_id = x.batch_request_id,
               started_at = coalesce(j.started_at, now())
          FROM x
         WHERE j.id = x.id AND j.owner = jobs_started.owner AND j.attempt = x.attempt
           AND CASE j.state WHEN 'starting' THEN true
                            WHEN 'running' THEN j.batch_request_id = x.batch_request_id
                            ELSE false END
        RETURNING j.id
    )
    SELECT x.id, upd.id IS NOT NULL FROM x LEFT JOIN upd ON upd.id = x.id ORDER BY x.ord
$$;

CREATE OR REPLACE FUNCTION acs.jobs_finish(owner text, items json)
    RETURNS TABLE (id bigint, outcome text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    done bigint[];
    x json;
BEGIN
    BEGIN
        -- What the log and the alert need comes out of the UPDATE itself: a
        -- join of the items to the updated rows would be planned as a nested
        -- loop (the planner expects 100 items and one row) and cost O(n^2):
        -- 357 ms for 2,000 items.
        WITH x AS (
            SELECT t.id, t.attempt, t.code, t.error, t.log, t.ord
              FROM ROWS FROM (json_to_recordset(items)
                              AS (id bigint, attempt integer, code integer, error text, log text))
                   WITH ORDINALITY AS t(id, attempt, code, error, log, ord)
        ), upd AS (
            UPDATE acs.jobs AS t
               SET state = 'finished', completion_code = x.code,
                   result = CASE WHEN x.code = 4 THEN 'success' ELSE 'failure' END,
                   error = x.error, finished_at = now(), lease_expires = NULL, last_code = x.code
              FROM x
             WHERE t.id = x.id AND t.owner = jobs_finish.owner AND t.attempt = x.attempt
               AND CASE t.state WHEN 'starting' THEN true WHEN 'running' THEN true ELSE false END
            RETURNING t.id, t.connection, t.kind, coalesce(t.job_name, t.script_name) AS name,
                      x.code, x.error, x.log, x.ord
        ), logs AS (
            INSERT INTO acs.job_logs (job_id, connection, log)
            SELECT upd.id, upd.connection, upd.log FROM upd
            RETURNING job_id
        ), alerts AS (
            INSERT INTO acs.alerts (job_id, connection, code, name, message)
            SELECT upd.id, upd.connection, upd.code, c.name,
                   format('job %s (%s %s) ended %s (%s)%s', upd.id, upd.kind, upd.name, c.name,
                          upd.code, coalesce(': ' || upd.error, ''))
              FROM upd JOIN acs.completion_codes AS c ON c.code = upd.code
             WHERE upd.code IN (11, 12, 23, 24)
            RETURNING 1
        )
        SELECT coalesce(array_agg(upd.id ORDER BY upd.ord), '{}') INTO done
          FROM upd
         WHERE (SELECT count(*) FROM logs) >= 0 AND (SELECT count(*) FROM alerts) >= 0;
        IF cardinality(done) = json_array_length(items) THEN
            RETURN QUERY SELECT d, 'finished'::text FROM unnest(done) AS d;
            RETURN;
        END IF;
        -- Some were not finished here: each item's own outcome, in order.
        RETURN QUERY
            SELECT t.id, CASE WHEN t.id = ANY (done) THEN 'finished'
                              WHEN EXISTS (SELECT 1 FROM acs.jobs AS j
                                            WHERE j.id = t.id AND j.state = 'finished'
                                              AND j.owner = jobs_finish.owner
                                              AND j.attempt = t.attempt) THEN 'already'
                              ELSE 'lost' END
              FROM ROWS FROM (json_to_recordset(items) AS (id bigint, attempt integer))
                   WITH ORDINALITY AS t(id, attempt, ord)
             ORDER BY t.ord;
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        NULL; -- one by one below
    END;
    FOR x IN SELECT * FROM json_array_elements(items) LOOP
        id := (x->>'id')::bigint;
        BEGIN
            outcome := acs.job_finish(id, owner, (x->>'attempt')::integer, (x->>'code')::integer,
                                      x->>'error', x->>'log');
        EXCEPTION WHEN OTHERS THEN
            outcome := 'error: ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE FUNCTION acs.claim_jobs(owner text, connection text, max_jobs integer, lease_seconds integer,
                               take_over boolean)
    RETURNS TABLE (id bigint, attempt integer, state text, kind text, application text,
                   amt_user text, queue_name text, job_name text, script_name text,
                   params json, task_id uuid, batch_request_id integer, kill_requested boolean,
                   taken_over boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    WITH comm AS (
        SELECT c.comm_state FROM acs.connections AS c WHERE c.name = claim_jobs.connection
    ), expired AS (
        SELECT j.id, j.state AS old_state
          FROM acs.jobs AS j
         WHERE take_over AND j.connection = claim_jobs.connection
           AND j.state IN ('starting', 'running') AND j.lease_expires < now()
           AND ((j.state = 'starting' AND (SELECT comm_state FROM comm) = 'enabled')
             OR (j.state = 'running' AND (SELECT comm_state FROM comm) <> 'disabled'))
         ORDER BY j.id
         LIMIT greatest(max_jobs, 0)
           FOR UPDATE OF j SKIP LOCKED
    ), queued AS (
        SELECT j.id, j.state AS old_state
          FROM acs.jobs AS j
         WHERE j.connection = claim_jobs.connection AND j.state = 'queued'
           -- a queued job to be killed ends without any traffic: whatever the comm state
           AND ((SELECT comm_state FROM comm) = 'enabled' OR j.kill_requested_at IS NOT NULL)
         ORDER BY j.id
         LIMIT greatest(max_jobs - (SELECT count(*) FROM expired), 0)
           FOR UPDATE OF j SKIP LOCKED
    ), candidates AS (
        SELECT * FROM expired UNION ALL SELECT * FROM queued
    )
    UPDATE acs.jobs AS j
       SET state = CASE WHEN j.state = 'queued' THEN 'starting' ELSE j.state END,
           owner = claim_jobs.owner,
           attempt = j.attempt + 1,
           lease_expires = now() + make_interval(secs => lease_seconds),
           claimed_at = now(),
           task_id = coalesce(j.task_id, gen_random_uuid())
      FROM candidates
     WHERE j.id = candidates.id
    RETURNING j.id, j.attempt, j.state, j.kind, j.application, j.amt_user, j.queue_name,
              j.job_name, j.script_name,
              array_to_json(CASE WHEN j.kind = 'batch' THEN j.task_values ELSE j.script_parameters END),
              j.task_id, j.batch_request_id, j.kill_requested_at IS NOT NULL,
              candidates.old_state <> 'queued'
$$;
COMMENT ON FUNCTION acs.claim_jobs(text, text, integer, integer, boolean) IS
    'Daemon: claims up to max_jobs jobs of a connection (with take_over, expired leases first; then queued), with a lease';

-- The four-argument form (0002) stays for callers that always take over.
CREATE OR REPLACE FUNCTION acs.claim_jobs(owner text, connection text, max_jobs integer,
                                          lease_seconds integer)
    RETURNS TABLE (id bigint, attempt integer, state text, kind text, application text,
                   amt_user text, queue_name text, job_name text, script_name text,
                   params json, task_id uuid, batch_request_id integer, kill_requested boolean,
                   taken_over boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT * FROM acs.claim_jobs(owner, connection, max_jobs, lease_seconds, true)
$$;

REVOKE EXECUTE ON FUNCTION acs.claim_jobs(text, text, integer, integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.claim_jobs(text, text, integer, integer, boolean) TO acs_daemon;

-- The latest AMT state of many running jobs in one statement (items:
-- [{"id","attempt","code"}]; returns (id, held) per item, in order). Following
-- 100,000 jobs, each one's first check changes its state: one statement (and
-- one commit) per job was what following cost most.
CREATE FUNCTION acs.jobs_progress(owner text, items json)
    RETURNS TABLE (id bigint, held boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    WITH x AS (
        SELECT t.id, t.attempt, t.code, t.ord
          FROM ROWS FROM (json_to_recordset(items) AS (id bigint, attempt integer, code integer))
                    WITH ORDINALITY AS t(id, attempt, code, ord)
    ), upd AS (
        UPDATE acs.jobs AS j SET last_code = x.code
          FROM x
         WHERE j.id = x.id AND j.owner = jobs_progress.owner AND j.attempt = x.attempt
           AND CASE j.state WHEN 'running' THEN true ELSE false END
        RETURNING j.id
    )
    SELECT x.id, upd.id IS NOT NULL FROM x LEFT JOIN upd ON upd.id = x.id ORDER BY x.ord
$$;
COMMENT ON FUNCTION acs.jobs_progress(text, json) IS
    'Daemon: the latest AMT state of running jobs, many in one statement (fenced by owner and attempt)';

REVOKE EXECUTE ON FUNCTION acs.jobs_progress(text, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.jobs_progress(text, json) TO acs_daemon;
