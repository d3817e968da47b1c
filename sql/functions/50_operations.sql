-- functions/50_operations.sql: what operators and admins do and read: kills,
-- doubts, reruns, alerts, retention, Full Comm, and the views and documents of
-- jobs and connections.
--
-- The current definition of each function and view here; `amtacsctl migrate`
-- applies this file after the versioned migrations (docs/schema.md).

-- An operator's kill: the row is locked FOR NO KEY UPDATE (lock order: one
-- job, or many in id order by request_kills), the connection must allow kills,
-- and the daemon that holds the job is told (NOTIFY). request_kills calls it per
-- job, so a bulk kill is audited job by job.
CREATE OR REPLACE FUNCTION acs.request_kill(job_id bigint)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    st   text;
    conn text;
    ok   boolean;
BEGIN
    SELECT j.state, j.connection, c.allow_kill INTO st, conn, ok
      FROM acs.jobs AS j JOIN acs.connections AS c ON c.name = j.connection
     WHERE j.id = request_kill.job_id FOR NO KEY UPDATE OF j;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF st = 'finished' THEN
        RAISE EXCEPTION 'job % has already finished; there is nothing to kill', job_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT ok THEN
        RAISE EXCEPTION 'kills are not allowed on connection % (Allow Kill Job is false: allow_kill in the daemon''s configuration)', conn
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE acs.jobs AS j
       SET kill_requested_at = now(), kill_requested_by = acs.actor()
     WHERE j.id = request_kill.job_id AND j.kill_requested_at IS NULL;
    PERFORM acs.audit_record('kill', job_id::text,
        jsonb_build_object('connection', conn, 'state', st, 'repeated', NOT FOUND));
    RETURN st;
END
$$;
COMMENT ON FUNCTION acs.request_kill(bigint) IS
    'Requests the kill of an unfinished job (idempotent); returns its state; notifies acs_kill';
REVOKE ALL ON FUNCTION acs.request_kill(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.request_kill(bigint) TO acs_admin, acs_operator;

-- Operator: kills many jobs in one call. The rows are locked in id order
-- first, whatever order the ids come in, so that two bulk kills (or a bulk
-- kill and anything else that locks in id order) cannot deadlock. Returns,
-- per distinct id in id order, the state it had, or why it was not killed.
CREATE OR REPLACE FUNCTION acs.request_kills(job_ids bigint[])
    RETURNS TABLE(job_id bigint, state text, error text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    i bigint;
BEGIN
    PERFORM 1 FROM acs.jobs AS j WHERE j.id = ANY (job_ids) ORDER BY j.id FOR NO KEY UPDATE OF j;
    FOR i IN SELECT DISTINCT u FROM unnest(job_ids) AS u WHERE u IS NOT NULL ORDER BY u LOOP
        job_id := i;
        BEGIN
            state := acs.request_kill(i);
            error := NULL;
        EXCEPTION WHEN no_data_found OR object_not_in_prerequisite_state
                       OR insufficient_privilege THEN
            state := NULL;
            error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION acs.request_kills(bigint[]) IS
    'Operator: requests the kill of many jobs, locking them in id order; per job its state or why not';
REVOKE ALL ON FUNCTION acs.request_kills(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.request_kills(bigint[]) TO acs_admin, acs_operator;

-- An operator's decision on a job in doubt (its Start may have reached a
-- server that is not idempotent): restart it (a new taskId), fail it, or
-- follow the BatchRequestId the operator found on the server.
CREATE OR REPLACE FUNCTION acs.resolve_in_doubt(job_id bigint, action text, batch_request_id integer DEFAULT NULL::integer, log text DEFAULT NULL::text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    st text;
    err text;
BEGIN
    SELECT j.state, j.error INTO st, err FROM acs.jobs AS j WHERE j.id = resolve_in_doubt.job_id FOR UPDATE;
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
        -- ends as UNDEFINED (19), a failure, through acs.jobs_end like every job;
        -- not reported by the server, so last_code and the lease stay
        err := coalesce(err || '; ', '') || 'resolved by an operator as failed';
        PERFORM acs.jobs_end(ARRAY[resolve_in_doubt.job_id], ARRAY[19], ARRAY[err],
                             ARRAY[coalesce(resolve_in_doubt.log,
                                            'job ' || resolve_in_doubt.job_id
                                            || ' was in doubt and resolved by ' || acs.actor()
                                            || ' as failed: ' || err || E'\n')],
                             false);
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
    UPDATE acs.alerts AS a SET acknowledged_at = now(), acknowledged_by = acs.actor()
     WHERE a.job_id = resolve_in_doubt.job_id AND a.name = 'START_IN_DOUBT' AND a.acknowledged_at IS NULL;
    PERFORM pg_notify('acs_jobs', '');
    PERFORM acs.audit_record('resolve', job_id::text,
        jsonb_build_object('action', action, 'batch_request_id', batch_request_id));
    RETURN action;
END
$$;
COMMENT ON FUNCTION acs.resolve_in_doubt(bigint,text,integer,text) IS
    'Operator: restart (queue again), fail (finish as UNDEFINED) or follow (BatchRequestId known) an in-doubt job';
REVOKE ALL ON FUNCTION acs.resolve_in_doubt(bigint,text,integer,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.resolve_in_doubt(bigint,text,integer,text) TO acs_admin, acs_operator;

-- Operator: enqueues a new job with the spec of an ended one (connection,
-- kind, application, name, parameters, queue, RunAs user, external
-- reference) and a new taskId; returns its id. A finished job is never
-- changed, so it takes no row lock beyond the foreign key's KEY SHARE.
CREATE OR REPLACE FUNCTION acs.rerun_job(job_id bigint)
    RETURNS bigint
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
    -- The rerun names what the job named (Integration Selection): its primary
    -- and alternates, or its group, not the connection that happened to run it.
    IF o.conn_group IS NOT NULL THEN
        PERFORM acs.check_group(o.conn_group);
    END IF;
    INSERT INTO acs.jobs (connection, listed, conn_group, kind, application, submit_user, station,
                          amt_user, queue_name, job_name, task_values, script_name,
                          script_parameters, external_ref, rerun_of)
    VALUES (CASE WHEN o.conn_group IS NOT NULL
                 THEN (SELECT m.connection FROM acs.connection_group_members AS m
                        WHERE m.group_name = o.conn_group ORDER BY m.position LIMIT 1)
                 WHEN o.listed IS NOT NULL THEN o.listed[1]
                 ELSE o.connection END,
            o.listed, o.conn_group, o.kind, o.application, o.submit_user, o.station, o.amt_user,
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
REVOKE ALL ON FUNCTION acs.rerun_job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.rerun_job(bigint) TO acs_admin, acs_operator;

-- Acknowledges an alert, once (a second call returns false).
CREATE OR REPLACE FUNCTION acs.acknowledge_alert(alert_id bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    done boolean;
BEGIN
    UPDATE acs.alerts AS a SET acknowledged_at = now(), acknowledged_by = acs.actor()
     WHERE a.id = alert_id AND a.acknowledged_at IS NULL;
    done := FOUND;
    IF NOT done AND NOT EXISTS (SELECT 1 FROM acs.alerts AS a WHERE a.id = alert_id) THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    IF done THEN
        PERFORM acs.audit_record('ack', alert_id::text, NULL);
    END IF;
    RETURN done;
END
$$;
REVOKE ALL ON FUNCTION acs.acknowledge_alert(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.acknowledge_alert(bigint) TO acs_admin, acs_operator;

-- Retention: deletes job logs older than their connection's Retain Log Files
-- days, max_rows at a time. The daemon purges on its own schedule: that is
-- its own work, not an action of a person, and is not audited.
CREATE OR REPLACE FUNCTION acs.purge_job_logs(max_rows integer DEFAULT 1000)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
    who text;
BEGIN
    DELETE FROM acs.job_logs AS l
     WHERE l.job_id IN (
        SELECT x.job_id FROM acs.job_logs AS x
          JOIN acs.connections AS c ON c.name = x.connection
         WHERE x.written_at < now() - make_interval(days => c.retain_log_days)
         ORDER BY x.job_id
         LIMIT greatest(max_rows, 0)
           FOR UPDATE OF x SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    who := acs.actor_role();
    IF NOT EXISTS (SELECT 1 FROM pg_roles AS r
                    WHERE r.rolname = who AND NOT r.rolsuper
                      AND pg_has_role(r.oid, 'acs_daemon', 'USAGE')) THEN
        PERFORM acs.audit_record('purge', NULL, jsonb_build_object('deleted', n));
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.purge_job_logs(integer) IS
    'Deletes up to max_rows job logs older than their connection''s retain_log_days; returns the count';
REVOKE ALL ON FUNCTION acs.purge_job_logs(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.purge_job_logs(integer) TO acs_admin, acs_daemon, acs_operator;

-- Full Comm of a connection (enabled, limited, disabled), with a NOTIFY the
-- daemon acts on.
CREATE OR REPLACE FUNCTION acs.set_comm(connection text, comm_state text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    before text;
BEGIN
    IF comm_state IS NULL OR comm_state NOT IN ('enabled', 'limited', 'disabled') THEN
        RAISE EXCEPTION 'comm state % is not one of enabled, limited, disabled',
            coalesce(quote_literal(comm_state), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.comm_state INTO before FROM acs.connections AS c
     WHERE c.name = set_comm.connection FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM acs.check_connection(set_comm.connection);
    END IF;
    UPDATE acs.connections AS c SET comm_state = set_comm.comm_state, comm_changed_by = acs.actor()
     WHERE c.name = set_comm.connection;
    PERFORM acs.audit_record('comm', set_comm.connection,
        jsonb_build_object('from', before, 'to', set_comm.comm_state));
    RETURN before;
END
$$;
COMMENT ON FUNCTION acs.set_comm(text,text) IS
    'Admin: sets Full Comm (enabled), limited or disabled for a connection; returns the previous state';
REVOKE ALL ON FUNCTION acs.set_comm(text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.set_comm(text,text) TO acs_admin;

-- Registers a connection (idempotent); returns true if it was new. A new
-- connection starts in the given comm state (default disabled, as in OpCon).
CREATE OR REPLACE FUNCTION acs.register_connection(connection text, comm_state text DEFAULT 'disabled'::text)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO acs.connections (name, comm_state)
    VALUES (register_connection.connection, register_connection.comm_state)
    ON CONFLICT (name) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION acs.register_connection(text,text) IS
    'Adds a connection if it is not there yet (comm state default disabled); true if it was added';
REVOKE ALL ON FUNCTION acs.register_connection(text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.register_connection(text,text) TO acs_admin;

-- Defines a connection group, or changes its members (in the order given:
-- the order breaks ties between members with as many jobs in flight). A
-- group's queued jobs are claimed by its members that are up, so a change
-- applies to them at once; its jobs already claimed stay where they are.
-- Returns 'created', 'changed' or 'unchanged'.
CREATE OR REPLACE FUNCTION acs.group_set(name text, connections text[])
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '5s'
AS $$
DECLARE
    c       text;
    seen    text[] := '{}';
    before  text[];
    existed boolean;
BEGIN
    PERFORM acs.check_name('group', group_set.name, 64, true);
    IF connections IS NULL OR cardinality(connections) = 0 THEN
        RAISE EXCEPTION 'group % needs at least one member connection', quote_literal(group_set.name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(connections) > 64 THEN
        RAISE EXCEPTION 'group % may have at most 64 members (got %)', quote_literal(group_set.name),
            cardinality(connections) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH c IN ARRAY connections LOOP
        IF c IS NULL OR c = '' THEN
            RAISE EXCEPTION 'a member of group % is empty; name each connection', quote_literal(group_set.name)
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF c = ANY (seen) THEN
            RAISE EXCEPTION 'connection % is listed twice in group %', quote_literal(c),
                quote_literal(group_set.name) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM acs.check_connection(c);
        seen := seen || c;
    END LOOP;
    SELECT true INTO existed FROM acs.connection_groups AS g WHERE g.name = group_set.name FOR UPDATE;
    existed := coalesce(existed, false);
    before := ARRAY(SELECT m.connection FROM acs.connection_group_members AS m
                     WHERE m.group_name = group_set.name ORDER BY m.position);
    IF existed AND before = connections THEN
        RETURN 'unchanged';
    END IF;
    IF existed THEN
        UPDATE acs.connection_groups AS g SET changed_at = now(), changed_by = acs.actor()
         WHERE g.name = group_set.name;
        DELETE FROM acs.connection_group_members AS m WHERE m.group_name = group_set.name;
    ELSE
        INSERT INTO acs.connection_groups (name) VALUES (group_set.name);
    END IF;
    INSERT INTO acs.connection_group_members (group_name, connection, position)
    SELECT group_set.name, x.c, x.n FROM unnest(connections) WITH ORDINALITY AS x(c, n);
    PERFORM acs.audit_record('group_set', group_set.name,
        jsonb_build_object('from', CASE WHEN existed THEN to_jsonb(before) END, 'to', to_jsonb(connections)));
    PERFORM pg_notify('acs_jobs', ''); -- its queued jobs may have new members to go to
    RETURN CASE WHEN existed THEN 'changed' ELSE 'created' END;
END
$$;
COMMENT ON FUNCTION acs.group_set(text,text[]) IS
    'Admin: defines a connection group or sets its members (in order); returns created, changed or unchanged';
REVOKE ALL ON FUNCTION acs.group_set(text,text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.group_set(text,text[]) TO acs_admin;

-- Deletes a connection group that no unfinished job names (a queued job of a
-- deleted group could never be claimed). True if it was there.
CREATE OR REPLACE FUNCTION acs.group_delete(name text)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '5s'
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM 1 FROM acs.connection_groups AS g WHERE g.name = group_delete.name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT count(*) INTO n FROM acs.jobs AS j
     WHERE j.conn_group = group_delete.name AND j.state <> 'finished';
    IF n > 0 THEN
        RAISE EXCEPTION 'group % has % unfinished job(s); it can be deleted once they end',
            quote_literal(group_delete.name), n
            USING ERRCODE = 'object_in_use',
                  HINT = 'amtacsctl list --group ' || group_delete.name || ' shows them; change its members instead with amtacsctl group set';
    END IF;
    DELETE FROM acs.connection_groups AS g WHERE g.name = group_delete.name;
    PERFORM acs.audit_record('group_delete', group_delete.name, NULL);
    RETURN true;
END
$$;
COMMENT ON FUNCTION acs.group_delete(text) IS
    'Admin: deletes a connection group that no unfinished job names; true if it existed';
REVOKE ALL ON FUNCTION acs.group_delete(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.group_delete(text) TO acs_admin;

-- Jobs not yet finished, by connection and state; each count runs on a
-- partial index, so a scrape costs the same however many jobs have finished.
CREATE OR REPLACE FUNCTION acs.active_job_counts(OUT connection text, OUT state text, OUT jobs bigint)
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
REVOKE ALL ON FUNCTION acs.active_job_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.active_job_counts() TO acs_admin, acs_daemon, acs_operator, acs_scheduler, acs_viewer;

CREATE OR REPLACE FUNCTION acs.job_stats()
    RETURNS json
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
REVOKE ALL ON FUNCTION acs.job_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_stats() TO acs_admin, acs_operator, acs_scheduler, acs_viewer;

-- A job as one JSON document (GET /api/v1/jobs/ID): its fields, codes with
-- their names, whether its log is there, its reruns, its timeline (the states
-- the server reported) and its latest alert.
CREATE OR REPLACE FUNCTION acs.job_document(p_id bigint)
    RETURNS json
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
SELECT json_build_object(
           'id', j.id,
           'external_ref', j.external_ref,
           'connection', j.connection,
           'listed', coalesce(j.listed, '{}'),
           'group', j.conn_group,
           'tried', coalesce(j.tried, '[]'),
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
COMMENT ON FUNCTION acs.job_document(bigint) IS
    'One job as JSON (JORS-style retrieval); NULL if there is no such job';
REVOKE ALL ON FUNCTION acs.job_document(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_document(bigint) TO acs_admin, acs_operator, acs_scheduler, acs_viewer;

-- The merged log of a job, with its state so that a missing log can be
-- explained (not written yet, or purged by retention).
CREATE OR REPLACE FUNCTION acs.job_log_text(p_id bigint, OUT state text, OUT log text)
    RETURNS record
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
SELECT j.state, l.log
  FROM acs.jobs AS j
  LEFT JOIN acs.job_logs AS l ON l.job_id = j.id
 WHERE j.id = p_id
$$;
COMMENT ON FUNCTION acs.job_log_text(bigint) IS
    'The merged job log (NULL until written, or once purged) and the job''s state; no row if no such job';
REVOKE ALL ON FUNCTION acs.job_log_text(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_log_text(bigint) TO acs_admin, acs_operator, acs_scheduler, acs_viewer;

CREATE OR REPLACE VIEW acs.job_results AS
SELECT j.id,
       j.external_ref,
       j.connection,
       j.kind,
       j.application,
       coalesce(j.job_name, j.script_name) AS name,
       j.state,
       j.completion_code,
       CASE WHEN j.completion_code IS NOT NULL THEN coalesce(c.name, 'UNKNOWN') END AS completion_name,
       j.result,
       j.enqueued_at,
       j.started_at,
       j.finished_at,
       j.error
  FROM acs.jobs AS j
  LEFT JOIN acs.completion_codes AS c ON c.code = j.completion_code;
REVOKE ALL ON acs.job_results FROM PUBLIC;
GRANT SELECT ON acs.job_results TO acs_admin, acs_operator, acs_scheduler, acs_viewer;

CREATE OR REPLACE VIEW acs.connection_status AS
SELECT c.name,
       c.comm_state,
       c.server_ok,
       c.server_checked_at,
       c.last_contact,
       c.last_error,
       c.last_error_at,
       c.amt_version,
       c.url,
       c.batch_user,
       c.allow_kill,
       c.retain_log_days,
       (SELECT count(*) FROM acs.jobs AS j WHERE j.connection = c.name AND j.state = 'queued') AS queued,
       (SELECT count(*) FROM acs.jobs AS j WHERE j.connection = c.name
                                              AND j.state IN ('starting', 'running')) AS in_flight,
       (SELECT count(*) FROM acs.jobs AS j WHERE j.connection = c.name AND j.state = 'in_doubt') AS in_doubt
  FROM acs.connections AS c;
REVOKE ALL ON acs.connection_status FROM PUBLIC;
GRANT SELECT ON acs.connection_status TO acs_admin, acs_operator, acs_viewer;
