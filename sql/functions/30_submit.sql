-- functions/30_submit.sql: enqueueing jobs (one at a time, or many in one call).
--
-- The current definition of each function here; `amtacsctl migrate` applies this
-- file after the versioned migrations (docs/schema.md).

DROP FUNCTION IF EXISTS acs.submit_batch_job(text,text,text,text[],text,text,text);
CREATE OR REPLACE FUNCTION acs.submit_batch_job(connection text, application text, job_name text, task_values text[] DEFAULT '{}'::text[], queue_name text DEFAULT NULL::text, amt_user text DEFAULT NULL::text, external_ref text DEFAULT NULL::text, alternates text[] DEFAULT '{}'::text[], conn_group text DEFAULT NULL::text)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    RETURN (SELECT s.id
              FROM acs.submit_jobs(jsonb_build_array(jsonb_build_object(
                       'kind', 'batch', 'connection', submit_batch_job.connection,
                       'application', submit_batch_job.application, 'name', submit_batch_job.job_name,
                       'parameters', to_jsonb(coalesce(submit_batch_job.task_values, '{}'::text[])),
                       'queue_name', submit_batch_job.queue_name, 'amt_user', submit_batch_job.amt_user,
                       'external_ref', submit_batch_job.external_ref,
                       'alternates', to_jsonb(coalesce(submit_batch_job.alternates, '{}'::text[])),
                       'group', submit_batch_job.conn_group))) AS s);
END
$$;
COMMENT ON FUNCTION acs.submit_batch_job(text,text,text,text[],text,text,text,text[],text) IS
    'Enqueues an AMT Batch Job (Submit User BATCH, Station OPCON); returns its id and notifies acs_jobs';
REVOKE ALL ON FUNCTION acs.submit_batch_job(text,text,text,text[],text,text,text,text[],text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.submit_batch_job(text,text,text,text[],text,text,text,text[],text) TO acs_admin, acs_operator, acs_scheduler;

DROP FUNCTION IF EXISTS acs.submit_script_job(text,text,text,text[],text,text,text);
CREATE OR REPLACE FUNCTION acs.submit_script_job(connection text, application text, script_name text, script_parameters text[] DEFAULT '{}'::text[], queue_name text DEFAULT NULL::text, amt_user text DEFAULT NULL::text, external_ref text DEFAULT NULL::text, alternates text[] DEFAULT '{}'::text[], conn_group text DEFAULT NULL::text)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    RETURN (SELECT s.id
              FROM acs.submit_jobs(jsonb_build_array(jsonb_build_object(
                       'kind', 'script', 'connection', submit_script_job.connection,
                       'application', submit_script_job.application, 'name', submit_script_job.script_name,
                       'parameters', to_jsonb(coalesce(submit_script_job.script_parameters, '{}'::text[])),
                       'queue_name', submit_script_job.queue_name, 'amt_user', submit_script_job.amt_user,
                       'external_ref', submit_script_job.external_ref,
                       'alternates', to_jsonb(coalesce(submit_script_job.alternates, '{}'::text[])),
                       'group', submit_script_job.conn_group))) AS s);
END
$$;
COMMENT ON FUNCTION acs.submit_script_job(text,text,text,text[],text,text,text,text[],text) IS
    'Enqueues an AMT Script Job (Submit User BATCH, Station OPCON); returns its id and notifies acs_jobs';
REVOKE ALL ON FUNCTION acs.submit_script_job(text,text,text,text[],text,text,text,text[],text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.submit_script_job(text,text,text,text[],text,text,text,text[],text) TO acs_admin, acs_operator, acs_scheduler;

-- jobs: [{"kind": "batch"|"script", "connection", "alternates": [text, ...],
--         "group", "application", "name", "parameters": [text, ...],
--         "queue_name", "amt_user", "external_ref"}, ...]
-- A job names "connection" (with up to 3 "alternates", tried in order) or
-- "group" (acs.check_targets); a group job starts out on the group's first
-- member, which claiming does not read (docs/operations.md).
-- Returns each job's position in the array (1, 2, ...) and its id. All or
-- none: the first job that fails its checks fails the call, naming it.
CREATE OR REPLACE FUNCTION acs.submit_jobs(jobs jsonb)
    RETURNS TABLE(n integer, id bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    count   integer;
    ids     bigint[];
    e       jsonb;
    i       integer;
    p       text[];
    alts    text[];
    k       text;
BEGIN
    IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
        RAISE EXCEPTION 'jobs must be a JSON array of jobs' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    count := jsonb_array_length(jobs);
    IF count < 1 OR count > 1000 THEN
        RAISE EXCEPTION 'jobs must hold 1 to 1000 jobs (it holds %)', count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. count LOOP
        e := jobs -> (i - 1);
        IF jsonb_typeof(e) <> 'object' THEN
            RAISE EXCEPTION 'job % of % is not a JSON object', i, count
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR k IN SELECT jsonb_object_keys(e) LOOP
            IF k NOT IN ('kind', 'connection', 'alternates', 'group', 'application', 'name',
                         'parameters', 'queue_name', 'amt_user', 'external_ref') THEN
                RAISE EXCEPTION 'job % of %: unknown field %', i, count, quote_literal(k)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
        IF e -> 'parameters' IS NOT NULL AND jsonb_typeof(e -> 'parameters') NOT IN ('array', 'null') THEN
            RAISE EXCEPTION 'job % of %: parameters must be an array of strings', i, count
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(e -> 'parameters', '[]'))
                                 AS x(v) WHERE jsonb_typeof(x.v) NOT IN ('string', 'null')) THEN
            RAISE EXCEPTION 'job % of %: parameters must be an array of strings', i, count
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        p := ARRAY(SELECT jsonb_array_elements_text(coalesce(e -> 'parameters', '[]')));
        IF jsonb_typeof(e -> 'alternates') NOT IN ('array', 'null')
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(e -> 'alternates')
                                                         WHEN 'array' THEN e -> 'alternates' ELSE '[]' END)
                                    AS x(v) WHERE jsonb_typeof(x.v) <> 'string') THEN
            RAISE EXCEPTION 'job % of %: alternates must be an array of connection names', i, count
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        alts := ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof(e -> 'alternates')
                                                       WHEN 'array' THEN e -> 'alternates' ELSE '[]' END));
        PERFORM acs.check_job_spec(e ->> 'kind', e ->> 'connection', alts, e ->> 'group',
                                   e ->> 'application',
                                   e ->> 'name', p, e ->> 'queue_name', e ->> 'amt_user',
                                   e ->> 'external_ref');
    END LOOP;
    -- the ids first, so that each is known to belong to its position
    ids := ARRAY(SELECT nextval('acs.jobs_id_seq') FROM generate_series(1, count));
    INSERT INTO acs.jobs (id, connection, listed, conn_group, kind, application, job_name,
                          script_name, task_values, script_parameters, queue_name, amt_user,
                          external_ref)
    OVERRIDING SYSTEM VALUE
    SELECT ids[x.n],
           coalesce(x.e ->> 'connection',
                    (SELECT m.connection FROM acs.connection_group_members AS m
                      WHERE m.group_name = x.e ->> 'group' ORDER BY m.position LIMIT 1)),
           CASE WHEN jsonb_typeof(x.e -> 'alternates') = 'array'
                     AND jsonb_array_length(x.e -> 'alternates') > 0
                THEN ARRAY[x.e ->> 'connection']
                     || ARRAY(SELECT jsonb_array_elements_text(x.e -> 'alternates'))
                END,
           x.e ->> 'group',
           x.e ->> 'kind', x.e ->> 'application',
           CASE WHEN x.e ->> 'kind' = 'batch' THEN x.e ->> 'name' END,
           CASE WHEN x.e ->> 'kind' = 'script' THEN x.e ->> 'name' END,
           CASE WHEN x.e ->> 'kind' = 'batch'
                THEN ARRAY(SELECT jsonb_array_elements_text(coalesce(x.e -> 'parameters', '[]')))
                ELSE '{}' END,
           CASE WHEN x.e ->> 'kind' = 'script'
                THEN ARRAY(SELECT jsonb_array_elements_text(coalesce(x.e -> 'parameters', '[]')))
                ELSE '{}' END,
           x.e ->> 'queue_name', x.e ->> 'amt_user', x.e ->> 'external_ref'
      FROM jsonb_array_elements(jobs) WITH ORDINALITY AS x(e, n)
     ORDER BY x.n;
    -- the INSERT trigger sends NOTIFY acs_jobs
    PERFORM acs.audit_record('submit', ids[x.n]::text,
                jsonb_strip_nulls(jsonb_build_object(
                    'connection', x.e ->> 'connection', 'kind', x.e ->> 'kind',
                    'application', x.e ->> 'application', 'name', x.e ->> 'name',
                    'alternates', CASE WHEN jsonb_array_length(CASE jsonb_typeof(x.e -> 'alternates')
                                            WHEN 'array' THEN x.e -> 'alternates' ELSE '[]' END) > 0
                                       THEN x.e -> 'alternates' END,
                    'group', x.e ->> 'group')))
       FROM jsonb_array_elements(jobs) WITH ORDINALITY AS x(e, n)
      ORDER BY x.n;
    RETURN QUERY SELECT g.n::integer, ids[g.n] FROM generate_series(1, count) AS g(n);
END
$$;
COMMENT ON FUNCTION acs.submit_jobs(jsonb) IS
    'Scheduler: enqueues 1 to 1000 jobs given as JSON (the body of POST /api/v1/jobs, one object per job); returns each one''s position and id';
REVOKE ALL ON FUNCTION acs.submit_jobs(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.submit_jobs(jsonb) TO acs_admin, acs_operator, acs_scheduler;
