-- 0002_daemon.sql: the statements of the connector daemon, as functions.
--
-- Every transition is fenced: it applies only WHERE the job is still in the
-- expected state and still held by the caller (owner and attempt), so a daemon
-- that lost its lease can never overwrite the one that took the job over.

-- The taskId is given when the job is enqueued, not when it is claimed: a
-- claim whose commit is lost (asynchronous commit, a failover to a replica
-- that had not received it) is then claimed again with the SAME taskId, and
-- the server's idempotent Start returns the request it already made instead
-- of starting the job a second time.
ALTER TABLE acs.jobs ALTER COLUMN task_id SET DEFAULT gen_random_uuid();
UPDATE acs.jobs SET task_id = gen_random_uuid() WHERE task_id IS NULL AND state = 'queued';

-- Claims up to max_jobs jobs of one connection for owner: first jobs whose
-- holder's lease expired (they are followed again, never restarted), then
-- queued ones in id order. Queued and starting jobs are claimed only under
-- Full Comm (enabled), running ones also under limited comm (followed, not
-- started), nothing under disabled -- but for queued jobs an operator wants
-- killed, which end without any traffic to the server. taken_over says the job was
-- held before: a job taken over while starting may have had its Start sent.
CREATE FUNCTION acs.claim_jobs(owner text, connection text, max_jobs integer, lease_seconds integer)
    RETURNS TABLE (id bigint, attempt integer, state text, kind text, application text,
                   amt_user text, queue_name text, job_name text, script_name text,
                   params json, task_id uuid, batch_request_id integer, kill_requested boolean,
                   taken_over boolean)
    LANGUAGE sql SET search_path = pg_catalog
AS $$
    -- Two index scans (jobs_claimed_idx, jobs_queued_idx) rather than one
    -- filter over every job the table ever held: a claim stays cheap however
    -- many finished jobs there are.
    WITH comm AS (
        SELECT c.comm_state FROM acs.connections AS c WHERE c.name = claim_jobs.connection
    ), expired AS (
        SELECT j.id, j.state AS old_state
          FROM acs.jobs AS j
         WHERE j.connection = claim_jobs.connection
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
COMMENT ON FUNCTION acs.claim_jobs(text, text, integer, integer) IS
    'Daemon: claims up to max_jobs jobs of a connection (expired leases first, then queued), with a lease';

-- Extends the leases of the jobs an owner holds; returns the ids (of the
-- given id/attempt pairs) it no longer holds: those the daemon must drop.
-- (The planner cannot see how many ids come in and, with stale statistics,
-- joins them to jobs_claimed_idx in a nested loop: quadratic, measured at
-- 0.8 s for 5,000 jobs. A hash join does it in milliseconds.)
CREATE FUNCTION acs.renew_leases(owner text, ids bigint[], attempts integer[], lease_seconds integer)
    RETURNS SETOF bigint
    LANGUAGE sql SET search_path = pg_catalog SET enable_nestloop = off
AS $$
    WITH held AS (
        SELECT * FROM unnest(ids, attempts) AS h(id, attempt)
    ), renewed AS (
        UPDATE acs.jobs AS j
           SET lease_expires = now() + make_interval(secs => lease_seconds)
          FROM held
         WHERE j.id = held.id AND j.attempt = held.attempt AND j.owner = renew_leases.owner
           AND j.state IN ('starting', 'running')
        RETURNING j.id
    )
    SELECT held.id FROM held LEFT JOIN renewed ON renewed.id = held.id WHERE renewed.id IS NULL
$$;
COMMENT ON FUNCTION acs.renew_leases(text, bigint[], integer[], integer) IS
    'Daemon: renews the leases of held jobs; returns the ids no longer held';

-- Records the BatchRequestId that Start returned. True if the caller still
-- holds the job (also when it was already recorded: the call is idempotent).
CREATE FUNCTION acs.job_started(job_id bigint, owner text, attempt integer, batch_request_id integer)
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.jobs AS j
       SET state = 'running', batch_request_id = job_started.batch_request_id,
           started_at = coalesce(j.started_at, now())
     WHERE j.id = job_id AND j.owner = job_started.owner AND j.attempt = job_started.attempt
       AND (j.state = 'starting'
            OR (j.state = 'running' AND j.batch_request_id = job_started.batch_request_id));
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION acs.job_started(bigint, text, integer, integer) IS
    'Daemon: starting -> running with the BatchRequestId (fenced by owner and attempt)';

-- Records the latest AMT state of a running job (for status displays).
CREATE FUNCTION acs.job_progress(job_id bigint, owner text, attempt integer, code integer)
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.jobs AS j SET last_code = code
     WHERE j.id = job_id AND j.owner = job_progress.owner AND j.attempt = job_progress.attempt
       AND j.state = 'running';
    RETURN FOUND;
END
$$;

-- Finishes a job in one transaction: the final code, the result (success for
-- DONE alone), the error text and the merged log. Returns 'finished', or
-- 'already' when this owner/attempt had finished it before (a retried call
-- after a lost connection), or 'lost' when the caller no longer holds it.
CREATE FUNCTION acs.job_finish(job_id bigint, owner text, attempt integer, code integer,
                               error text, log text)
    RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    j acs.jobs%ROWTYPE;
BEGIN
    UPDATE acs.jobs AS t
       SET state = 'finished', completion_code = code,
           result = CASE WHEN code = 4 THEN 'success' ELSE 'failure' END,
           error = job_finish.error, finished_at = now(), lease_expires = NULL,
           last_code = code
     WHERE t.id = job_id AND t.owner = job_finish.owner AND t.attempt = job_finish.attempt
       AND t.state IN ('starting', 'running')
    RETURNING t.* INTO j;
    IF NOT FOUND THEN
        SELECT * INTO j FROM acs.jobs AS t WHERE t.id = job_id;
        IF FOUND AND j.state = 'finished' AND j.owner = job_finish.owner
           AND j.attempt = job_finish.attempt THEN
            RETURN 'already';
        END IF;
        RETURN 'lost';
    END IF;
    INSERT INTO acs.job_logs (job_id, connection, log) VALUES (j.id, j.connection, job_finish.log);
    -- the codes the vendor says to watch (ERROR, ABORTED, WEB_SERVER_ERROR,
    -- AUTHENTICATION_ERROR) raise an alert: a row and a NOTIFY on acs_alerts
    IF job_finish.code IN (11, 12, 23, 24) THEN
        INSERT INTO acs.alerts (job_id, connection, code, name, message)
        SELECT j.id, j.connection, job_finish.code, c.name,
               format('job %s (%s %s) ended %s (%s)%s', j.id, j.kind,
                      coalesce(j.job_name, j.script_name), c.name, job_finish.code,
                      coalesce(': ' || job_finish.error, ''))
          FROM acs.completion_codes AS c WHERE c.code = job_finish.code;
    END IF;
    RETURN 'finished';
END
$$;
COMMENT ON FUNCTION acs.job_finish(bigint, text, integer, integer, text, text) IS
    'Daemon: finishes a held job with its code, result, error and merged log, in one transaction';

-- Gives back every job an owner holds (a graceful stop): their leases expire
-- now, so a restarted or another daemon follows them at once.
CREATE FUNCTION acs.release_jobs(owner text) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE acs.jobs AS j SET lease_expires = now()
     WHERE j.owner = release_jobs.owner AND j.state IN ('starting', 'running');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The sealed password of a Batch User (for the daemon, which opens it).
CREATE FUNCTION acs.batch_user_secret(name text)
    RETURNS TABLE (key_id text, sealed_password bytea)
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT b.key_id, b.sealed_password FROM acs.batch_users AS b WHERE b.name = batch_user_secret.name
$$;

-- NOTIFY acs_batch_users (payload: the name) when a password is set or changed,
-- so that the daemon uses it from its next logon.
CREATE FUNCTION acs.batch_users_notify() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_batch_users', coalesce(NEW.name, OLD.name));
    RETURN NULL;
END
$$;
CREATE TRIGGER batch_users_notify AFTER INSERT OR UPDATE OR DELETE ON acs.batch_users
    FOR EACH ROW EXECUTE FUNCTION acs.batch_users_notify();

-------------------------------------------------------------------------------
-- In doubt: a job whose Start may have reached a server that does not promise
-- an idempotent Start (no "IdempotentStart" in its heartbeat features). It is
-- not started again; an operator decides (amtacsctl resolve).
-------------------------------------------------------------------------------

-- (The state in_doubt and its transitions are part of acs.jobs: 0001.)

-- Daemon: the job's Start may have been sent and the server cannot be asked
-- again safely. Raises an alert. True if the caller held the job.
CREATE FUNCTION acs.job_in_doubt(job_id bigint, owner text, attempt integer, reason text)
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    conn text;
BEGIN
    UPDATE acs.jobs AS j
       SET state = 'in_doubt', lease_expires = NULL, error = reason
     WHERE j.id = job_id AND j.owner = job_in_doubt.owner AND j.attempt = job_in_doubt.attempt
       AND j.state = 'starting'
    RETURNING j.connection INTO conn;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO acs.alerts (job_id, connection, name, message)
    VALUES (job_id, conn, 'START_IN_DOUBT',
            format('job %s may have been started on the AMT server; it is not started again '
                   'until an operator decides (amtacsctl resolve %s --restart | --fail | '
                   '--follow BATCHREQUESTID): %s', job_id, job_id, reason));
    RETURN true;
END
$$;
COMMENT ON FUNCTION acs.job_in_doubt(bigint, text, integer, text) IS
    'Daemon: starting -> in_doubt (the Start may have been sent to a non-idempotent server), with an alert';

-- Operator: the way out of in_doubt. action 'restart' queues the job again
-- (the operator checked that the server did not start it); 'fail' finishes it
-- as a failure (UNDEFINED, 19); 'follow' records the BatchRequestId the
-- operator found on the server and the daemon follows it to its end.
CREATE FUNCTION acs.resolve_in_doubt(job_id bigint, action text, batch_request_id integer DEFAULT NULL,
                                     log text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog
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
    PERFORM pg_notify('acs_jobs', (SELECT j.connection FROM acs.jobs AS j WHERE j.id = resolve_in_doubt.job_id));
    RETURN action;
END
$$;
COMMENT ON FUNCTION acs.resolve_in_doubt(bigint, text, integer, text) IS
    'Operator: restart (queue again), fail (finish as UNDEFINED) or follow (BatchRequestId known) an in-doubt job';

-------------------------------------------------------------------------------
-- Messages while a job runs: the daemon reads them as the server writes them
-- and keeps them here until the job's merged log is written, so that
-- `amtacsctl wait` can show them as they arrive (NOTIFY acs_job_messages,
-- payload the job id).
-------------------------------------------------------------------------------

CREATE TABLE acs.job_messages (
    job_id           bigint  NOT NULL
                     CONSTRAINT job_messages_job_id_fkey REFERENCES acs.jobs (id) ON DELETE CASCADE,
    seq              bigint  NOT NULL,
    batch_request_id integer,
    text             text    NOT NULL,
    CONSTRAINT job_messages_pkey PRIMARY KEY (job_id, seq)
);
COMMENT ON TABLE acs.job_messages IS
    'Messages of running jobs, as they arrive; removed when the merged log is written';

-- Daemon: adds messages of a held, running job; messages is a JSON array of
-- {"seq","id","text"}. Returns how many were new.
CREATE FUNCTION acs.job_add_messages(job_id bigint, owner text, attempt integer, messages json)
    RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM acs.jobs AS j
     WHERE j.id = job_id AND j.owner = job_add_messages.owner
       AND j.attempt = job_add_messages.attempt AND j.state = 'running';
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO acs.job_messages (job_id, seq, batch_request_id, text)
    SELECT job_add_messages.job_id, (m->>'seq')::bigint, (m->>'id')::integer, m->>'text'
      FROM json_array_elements(messages) AS m
    ON CONFLICT ON CONSTRAINT job_messages_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('acs_job_messages', job_id::text);
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.job_add_messages(bigint, text, integer, json) IS
    'Daemon: records messages of a running job as they arrive (NOTIFY acs_job_messages)';

-- The merged log replaces the running messages.
CREATE FUNCTION acs.job_logs_drop_messages() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM acs.job_messages AS m WHERE m.job_id = NEW.job_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER job_logs_drop_messages AFTER INSERT ON acs.job_logs
    FOR EACH ROW EXECUTE FUNCTION acs.job_logs_drop_messages();

-------------------------------------------------------------------------------
-- Batches: many jobs' writes in one statement and one transaction, so that the
-- daemon's throughput is not one round trip and one commit per job. Each item
-- goes through the single-job function, with its fence; one item's failure
-- does not undo the others.
-------------------------------------------------------------------------------

-- items: [{"id","attempt","batch_request_id"}]; returns (id, held) per item, in order.
-- One set-based statement (the fences of acs.job_started, for all items at once).
CREATE FUNCTION acs.jobs_started(owner text, items json)
    RETURNS TABLE (id bigint, held boolean)
    LANGUAGE sql SET search_path = pg_catalog
AS $$
    WITH x AS (
        SELECT (e->>'id')::bigint AS id, (e->>'attempt')::integer AS attempt,
               (e->>'batch_request_id')::integer AS batch_request_id, t.ord
          FROM json_array_elements(items) WITH ORDINALITY AS t(e, ord)
    ), upd AS (
        UPDATE acs.jobs AS j
           SET state = 'running', batch_request_id = x.batch_request_id,
               started_at = coalesce(j.started_at, now())
          FROM x
         WHERE j.id = x.id AND j.owner = jobs_started.owner AND j.attempt = x.attempt
           AND (j.state = 'starting'
                OR (j.state = 'running' AND j.batch_request_id = x.batch_request_id))
        RETURNING j.id
    )
    SELECT x.id, upd.id IS NOT NULL FROM x LEFT JOIN upd ON upd.id = x.id ORDER BY x.ord
$$;

-- items: [{"id","attempt","code","error","log"}]; returns (id, outcome) per item,
-- in order; outcome as acs.job_finish ('finished', 'already', 'lost'), or
-- 'error: ...' for an item that failed. All items go in one set-based statement;
-- should that fail, they go one by one, so that one bad item cannot hold the
-- others back.
CREATE FUNCTION acs.jobs_finish(owner text, items json)
    RETURNS TABLE (id bigint, outcome text)
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    ids bigint[];
    outcomes text[];
    x json;
BEGIN
    BEGIN
        WITH x AS (
            SELECT (e->>'id')::bigint AS id, (e->>'attempt')::integer AS attempt,
                   (e->>'code')::integer AS code, e->>'error' AS error, e->>'log' AS log, t.ord
              FROM json_array_elements(items) WITH ORDINALITY AS t(e, ord)
        ), upd AS (
            UPDATE acs.jobs AS t
               SET state = 'finished', completion_code = x.code,
                   result = CASE WHEN x.code = 4 THEN 'success' ELSE 'failure' END,
                   error = x.error, finished_at = now(), lease_expires = NULL, last_code = x.code
              FROM x
             WHERE t.id = x.id AND t.owner = jobs_finish.owner AND t.attempt = x.attempt
               AND t.state IN ('starting', 'running')
            RETURNING t.id, t.connection, t.kind, coalesce(t.job_name, t.script_name) AS name
        ), logs AS (
            INSERT INTO acs.job_logs (job_id, connection, log)
            SELECT upd.id, upd.connection, x.log FROM upd JOIN x ON x.id = upd.id
            RETURNING job_id
        ), alerts AS (
            INSERT INTO acs.alerts (job_id, connection, code, name, message)
            SELECT upd.id, upd.connection, x.code, c.name,
                   format('job %s (%s %s) ended %s (%s)%s', upd.id, upd.kind, upd.name, c.name,
                          x.code, coalesce(': ' || x.error, ''))
              FROM upd JOIN x ON x.id = upd.id JOIN acs.completion_codes AS c ON c.code = x.code
             WHERE x.code IN (11, 12, 23, 24)
            RETURNING 1
        )
        SELECT array_agg(x.id ORDER BY x.ord),
               array_agg(CASE WHEN upd.id IS NOT NULL THEN 'finished'
                              WHEN EXISTS (SELECT 1 FROM acs.jobs AS j
                                            WHERE j.id = x.id AND j.state = 'finished'
                                              AND j.owner = jobs_finish.owner
                                              AND j.attempt = x.attempt) THEN 'already'
                              ELSE 'lost' END ORDER BY x.ord)
          INTO ids, outcomes
          FROM x LEFT JOIN upd ON upd.id = x.id
         WHERE (SELECT count(*) FROM logs) >= 0 AND (SELECT count(*) FROM alerts) >= 0;
        RETURN QUERY SELECT * FROM unnest(ids, outcomes);
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
