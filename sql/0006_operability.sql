-- 0006_operability.sql: what the daemon's HTTP endpoint reads (JORS-style job
-- retrieval and the queue's gauges), as functions, so that the daemon's role
-- gets exactly these reads and not SELECT on the tables.

-- Jobs waiting for an operator are counted on every metrics scrape.
CREATE INDEX jobs_in_doubt_idx ON acs.jobs (connection) WHERE state = 'in_doubt';

-- One job as a JSON document: what it is, where it is, how it ended. The
-- same document serves `amtacsctl show --json` and GET /v1/jobs/ID.
CREATE FUNCTION acs.job_document(p_id bigint) RETURNS json
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
                       ELSE 'pending' END)
  FROM acs.jobs AS j
  LEFT JOIN acs.completion_codes AS c ON c.code = j.completion_code
  LEFT JOIN acs.completion_codes AS lc ON lc.code = j.last_code
  LEFT JOIN acs.job_logs AS l ON l.job_id = j.id
 WHERE j.id = p_id
$$;
COMMENT ON FUNCTION acs.job_document(bigint) IS
    'One job as JSON (JORS-style retrieval); NULL if there is no such job';

-- The merged log of a job, with its state so that a missing log can be
-- explained (not written yet, or purged by retention).
CREATE FUNCTION acs.job_log_text(p_id bigint, OUT state text, OUT log text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
SELECT j.state, l.log
  FROM acs.jobs AS j
  LEFT JOIN acs.job_logs AS l ON l.job_id = j.id
 WHERE j.id = p_id
$$;
COMMENT ON FUNCTION acs.job_log_text(bigint) IS
    'The merged job log (NULL until written, or once purged) and the job''s state; no row if no such job';

-- Jobs not yet finished, by connection and state; each count runs on a
-- partial index, so a scrape costs the same however many jobs have finished.
CREATE FUNCTION acs.active_job_counts(OUT connection text, OUT state text, OUT jobs bigint)
    RETURNS SETOF record
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
SELECT j.connection, 'queued', count(*) FROM acs.jobs AS j WHERE j.state = 'queued' GROUP BY 1
UNION ALL
SELECT j.connection, j.state, count(*) FROM acs.jobs AS j
 WHERE j.state IN ('starting', 'running') GROUP BY 1, 2
UNION ALL
SELECT j.connection, 'in_doubt', count(*) FROM acs.jobs AS j WHERE j.state = 'in_doubt' GROUP BY 1
$$;
COMMENT ON FUNCTION acs.active_job_counts() IS
    'Jobs not yet finished, per connection and state (for the metrics endpoint)';

REVOKE ALL ON FUNCTION acs.job_document(bigint), acs.job_log_text(bigint),
                       acs.active_job_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_document(bigint), acs.job_log_text(bigint),
                          acs.active_job_counts()
    TO acs_daemon, acs_scheduler, acs_operator, acs_admin;
