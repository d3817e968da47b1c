-- 0019_console.sql: what the browser console shows that the API did not give.
--
-- 1. A job's timeline: each state the Batch Server reported while the job
--    ran, with when. The daemon stores the code MonitorJob reads into
--    acs.jobs.last_code (acs.jobs_progress, and the final one in
--    acs.jobs_finish); a row trigger on that column records each change in
--    acs.job_states. Nothing on the daemon's side changes. The trigger fires
--    only when the code really changes (its WHEN clause is checked before any
--    function is called), so a poll that reads the same state again writes
--    nothing. The rows go with the job's log: when retention purges the log,
--    a statement trigger on acs.job_logs deletes them too.
-- 2. acs.job_document gains claimed_at, owner, attempt, states and the job's
--    alert.
-- 3. The audit log, a page at a time, for admins: acs.audit_page, granted to
--    acs_admin alone (so PostgreSQL refuses every other role), reading
--    acs.audit as its caller (which only acs_admin may read either).
--
-- A job's children (started by the job on the server) are not in the schema:
-- the daemon writes them into the merged log's text only, so the document
-- has none.

CREATE TABLE acs.job_states (
    job_id bigint      NOT NULL
                       CONSTRAINT job_states_job_id_fkey REFERENCES acs.jobs (id) ON DELETE CASCADE,
    n      bigint      GENERATED ALWAYS AS IDENTITY,
    at     timestamptz NOT NULL DEFAULT now(),
    code   integer     NOT NULL,
    CONSTRAINT job_states_pkey PRIMARY KEY (job_id, n)
);
COMMENT ON TABLE acs.job_states IS
    'Each state (AMT code) the Batch Server reported for a job, when it changed; written by a trigger on acs.jobs.last_code, purged with the job''s log';
COMMENT ON COLUMN acs.job_states.n IS 'Orders the changes (several may share a transaction''s time)';
COMMENT ON COLUMN acs.job_states.at IS 'The start of the transaction that stored the code (so the final one equals finished_at)';
REVOKE ALL ON acs.job_states FROM PUBLIC;

CREATE FUNCTION acs.job_states_record() RETURNS trigger
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

CREATE TRIGGER jobs_states AFTER UPDATE OF last_code ON acs.jobs
    FOR EACH ROW
    WHEN (NEW.last_code IS NOT NULL AND NEW.last_code IS DISTINCT FROM OLD.last_code)
    EXECUTE FUNCTION acs.job_states_record();

-- Retention: the states of the jobs whose logs were just deleted, in one
-- statement per purge (a transition table, not a trigger call per row).
CREATE FUNCTION acs.job_states_purge() RETURNS trigger
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

CREATE TRIGGER job_logs_states_purge AFTER DELETE ON acs.job_logs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION acs.job_states_purge();

-- As in 0015_web_operate.sql, with the timeline and the alert.
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
           'claimed_at', j.claimed_at,
           'owner', j.owner,
           'attempt', j.attempt,
           'started_at', j.started_at,
           'finished_at', j.finished_at,
           'kill_requested_at', j.kill_requested_at,
           'kill_sent_at', j.kill_sent_at,
           'kill_error', j.kill_error,
           'log', CASE WHEN l.job_id IS NOT NULL THEN 'available'
                       WHEN j.state = 'finished' THEN 'purged'
                       ELSE 'pending' END,
           'rerun_of', j.rerun_of,
           'reruns', ARRAY(SELECT r.id FROM acs.jobs AS r WHERE r.rerun_of = j.id ORDER BY r.id),
           'states', coalesce((SELECT json_agg(json_build_object('at', s.at, 'code', s.code,
                                                                 'name', sc.name) ORDER BY s.n)
                                 FROM acs.job_states AS s
                                 LEFT JOIN acs.completion_codes AS sc ON sc.code = s.code
                                WHERE s.job_id = j.id), '[]'::json),
           'alert', (SELECT json_build_object('id', a.id, 'code', a.code, 'name', a.name,
                                              'raised_at', a.raised_at, 'message', a.message,
                                              'acknowledged_at', a.acknowledged_at,
                                              'acknowledged_by', a.acknowledged_by)
                       FROM acs.alerts AS a WHERE a.job_id = j.id
                      ORDER BY a.id DESC LIMIT 1))
  FROM acs.jobs AS j
  LEFT JOIN acs.completion_codes AS c ON c.code = j.completion_code
  LEFT JOIN acs.completion_codes AS lc ON lc.code = j.last_code
  LEFT JOIN acs.job_logs AS l ON l.job_id = j.id
 WHERE j.id = p_id
$$;

-- The audit log, newest first, keyset-paged by id like the jobs; filters by
-- actor and action (exact) and by time (since inclusive, until exclusive).
-- SECURITY INVOKER: the caller must be allowed to read acs.audit as well.
CREATE FUNCTION acs.audit_page(p_before bigint, p_limit integer, p_actor text, p_action text,
                               p_since timestamptz, p_until timestamptz) RETURNS json
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
WITH page AS (
    SELECT a.id, a.at, a.actor, a.address, a.role, a.action, a.target, a.detail
      FROM acs.audit AS a
     WHERE (p_before IS NULL OR a.id < p_before)
       AND (p_actor IS NULL OR a.actor = p_actor)
       AND (p_action IS NULL OR a.action = p_action)
       AND (p_since IS NULL OR a.at >= p_since)
       AND (p_until IS NULL OR a.at < p_until)
     ORDER BY a.id DESC
     LIMIT greatest(least(p_limit, 500), 1) + 1),
shown AS (SELECT * FROM page ORDER BY id DESC LIMIT greatest(least(p_limit, 500), 1))
SELECT json_build_object(
    'audit', coalesce((SELECT json_agg(s ORDER BY s.id DESC) FROM shown AS s), '[]'::json),
    'next', CASE WHEN (SELECT count(*) FROM page) > greatest(least(p_limit, 500), 1)
                 THEN (SELECT min(id) FROM shown) END)
$$;
COMMENT ON FUNCTION acs.audit_page(bigint, integer, text, text, timestamptz, timestamptz) IS
    'Admin: a page of the audit log, newest first (before, limit 1..500, actor, action, since, until); next is the before of the next page';
REVOKE ALL ON FUNCTION acs.audit_page(bigint, integer, text, text, timestamptz, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.audit_page(bigint, integer, text, text, timestamptz, timestamptz)
    TO acs_admin;
