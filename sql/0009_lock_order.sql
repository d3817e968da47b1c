-- 0009_lock_order.sql: no deadlock between the daemons and the people.
--
-- Seen with two daemons while an operator killed running jobs in one
-- statement (SELECT count(acs.request_kill(j.id)) FROM acs.jobs j WHERE ...):
-- acs.renew_leases locked rows of acs.jobs in hash-join order, the operator's
-- statement in its scan order; each waited for the other, and PostgreSQL
-- aborted one of them. An operator's statement may lock rows in any order
-- (that is theirs to write), so ordering the daemon's locks alone cannot rule
-- a cycle out. The rule here is stronger:
--
--   A daemon never waits for a row lock that someone else holds.
--
-- Every multi-row statement of the daemon locks its rows in id order and
-- SKIP LOCKED (release_jobs too, in 0010_liveness.sql); a row that was
-- skipped is reported as busy (not as lost), and
-- the daemon writes it again a moment later. Its single-row statements wait
-- at most lock_timeout (set on each daemon function below) and fail with
-- 55P03, which the daemon also retries later. A process that never waits for
-- a lock cannot be part of a deadlock cycle; and the daemon's statement
-- connection is never stalled behind a lock somebody keeps for a minute.
--
-- The operators' and admins' functions take row locks in id order too, and
-- FOR NO KEY UPDATE (they change no key), so they do not block the foreign
-- key checks of the daemon's inserts. acs.request_kills kills many jobs in
-- one call, in id order.

-------------------------------------------------------------------------------
-- Leases
-------------------------------------------------------------------------------

-- Renews the leases of held jobs (ids and attempts in pairs). Returns the
-- jobs it did not renew: busy = false, the caller no longer holds the job
-- (drop it); busy = true, another session has the row locked this instant
-- (still held; renewed by a later call).
CREATE FUNCTION acs.leases_renew(owner text, ids bigint[], attempts integer[], lease_seconds integer)
    RETURNS TABLE (id bigint, busy boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    WITH held AS (
        SELECT * FROM unnest(ids, attempts) AS h(id, attempt)
    ), locked AS (
        -- (a CASE rather than state IN (...): the planner cannot match it to
        -- jobs_claimed_idx, so each item is one probe of the primary key)
        SELECT j.id FROM acs.jobs AS j JOIN held ON j.id = held.id
         WHERE j.attempt = held.attempt AND j.owner = leases_renew.owner
           AND CASE j.state WHEN 'starting' THEN true WHEN 'running' THEN true ELSE false END
         ORDER BY j.id
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), renewed AS (
        UPDATE acs.jobs AS j
           SET lease_expires = now() + make_interval(secs => lease_seconds)
          FROM locked
         WHERE j.id = locked.id
        RETURNING j.id
    )
    SELECT held.id,
           EXISTS (SELECT 1 FROM acs.jobs AS j
                    WHERE j.id = held.id AND j.attempt = held.attempt
                      AND j.owner = leases_renew.owner
                      AND CASE j.state WHEN 'starting' THEN true WHEN 'running' THEN true
                                       ELSE false END)
      FROM held LEFT JOIN renewed ON renewed.id = held.id
     WHERE renewed.id IS NULL
$$;
COMMENT ON FUNCTION acs.leases_renew(text, bigint[], integer[], integer) IS
    'Daemon: renews the leases of held jobs in id order, skipping rows locked by others; returns those not renewed (busy: locked, still held)';

-- The form of 0002, for a daemon of an earlier release during an upgrade:
-- the ids no longer held.
CREATE OR REPLACE FUNCTION acs.renew_leases(owner text, ids bigint[], attempts integer[],
                                            lease_seconds integer)
    RETURNS SETOF bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT r.id FROM acs.leases_renew(owner, ids, attempts, lease_seconds) AS r WHERE NOT r.busy
$$;

-------------------------------------------------------------------------------
-- The hot writes: many jobs per statement, in id order, skipping locked rows
-------------------------------------------------------------------------------

-- held: true (written), false (no longer the caller's), NULL (busy: the row
-- is locked by another session; write it again shortly).
CREATE OR REPLACE FUNCTION acs.jobs_started(owner text, items json)
    RETURNS TABLE (id bigint, held boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    WITH x AS (
        SELECT t.id, t.attempt, t.batch_request_id, t.ord
          FROM ROWS FROM (json_to_recordset(items) AS (id bigint, attempt integer, batch_request_id integer))
                    WITH ORDINALITY AS t(id, attempt, batch_request_id, ord)
    ), mine AS (
        SELECT j.id FROM acs.jobs AS j JOIN x ON j.id = x.id
         WHERE j.owner = jobs_started.owner AND j.attempt = x.attempt
           AND CASE j.state WHEN 'starting' THEN true
                            WHEN 'running' THEN j.batch_request_id = x.batch_request_id
                            ELSE false END
    ), locked AS (
        SELECT j.id FROM acs.jobs AS j JOIN mine ON j.id = mine.id
         ORDER BY j.id
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), upd AS (
        UPDATE acs.jobs AS j
           SET state = 'running', batch_request_id = x.batch_request_id,
               started_at = coalesce(j.started_at, now())
          FROM x, locked
         WHERE j.id = locked.id AND x.id = j.id AND j.owner = jobs_started.owner
           AND j.attempt = x.attempt
           AND CASE j.state WHEN 'starting' THEN true
                            WHEN 'running' THEN j.batch_request_id = x.batch_request_id
                            ELSE false END
        RETURNING j.id
    )
    SELECT x.id, CASE WHEN upd.id IS NOT NULL THEN true
                      WHEN mine.id IS NOT NULL THEN NULL
                      ELSE false END
      FROM x LEFT JOIN upd ON upd.id = x.id LEFT JOIN mine ON mine.id = x.id
     ORDER BY x.ord
$$;

CREATE OR REPLACE FUNCTION acs.jobs_progress(owner text, items json)
    RETURNS TABLE (id bigint, held boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    WITH x AS (
        SELECT t.id, t.attempt, t.code, t.ord
          FROM ROWS FROM (json_to_recordset(items) AS (id bigint, attempt integer, code integer))
                    WITH ORDINALITY AS t(id, attempt, code, ord)
    ), mine AS (
        SELECT j.id FROM acs.jobs AS j JOIN x ON j.id = x.id
         WHERE j.owner = jobs_progress.owner AND j.attempt = x.attempt
           AND CASE j.state WHEN 'running' THEN true ELSE false END
    ), locked AS (
        SELECT j.id FROM acs.jobs AS j JOIN mine ON j.id = mine.id
         ORDER BY j.id
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), upd AS (
        UPDATE acs.jobs AS j SET last_code = x.code
          FROM x, locked
         WHERE j.id = locked.id AND x.id = j.id AND j.owner = jobs_progress.owner
           AND j.attempt = x.attempt AND CASE j.state WHEN 'running' THEN true ELSE false END
        RETURNING j.id
    )
    SELECT x.id, CASE WHEN upd.id IS NOT NULL THEN true
                      WHEN mine.id IS NOT NULL THEN NULL
                      ELSE false END
      FROM x LEFT JOIN upd ON upd.id = x.id LEFT JOIN mine ON mine.id = x.id
     ORDER BY x.ord
$$;

-- outcome: finished, already (this owner and attempt finished it before),
-- lost, busy (the row is locked by another session: finish it again
-- shortly), or 'error: ...'.
CREATE OR REPLACE FUNCTION acs.jobs_finish(owner text, items json)
    RETURNS TABLE (id bigint, outcome text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    done bigint[];
    busy bigint[];
    x json;
BEGIN
    BEGIN
        -- Lock what is ours first, in id order, skipping what someone else
        -- holds; then one UPDATE whose RETURNING feeds the log and the alert
        -- (a join of the items to the updated rows would be planned as a
        -- nested loop: O(n^2), 357 ms for 2,000 items).
        WITH x AS (
            SELECT t.id, t.attempt, t.code, t.error, t.log, t.ord
              FROM ROWS FROM (json_to_recordset(items)
                              AS (id bigint, attempt integer, code integer, error text, log text))
                   WITH ORDINALITY AS t(id, attempt, code, error, log, ord)
        ), mine AS (
            SELECT t.id FROM acs.jobs AS t JOIN x ON t.id = x.id
             WHERE t.owner = jobs_finish.owner AND t.attempt = x.attempt
               AND CASE t.state WHEN 'starting' THEN true WHEN 'running' THEN true ELSE false END
        ), locked AS (
            SELECT t.id FROM acs.jobs AS t JOIN mine ON t.id = mine.id
             ORDER BY t.id
               FOR NO KEY UPDATE OF t SKIP LOCKED
        ), upd AS (
            UPDATE acs.jobs AS t
               SET state = 'finished', completion_code = x.code,
                   result = CASE WHEN x.code = 4 THEN 'success' ELSE 'failure' END,
                   error = x.error, finished_at = now(), lease_expires = NULL, last_code = x.code
              FROM x, locked
             WHERE t.id = locked.id AND t.id = x.id AND t.owner = jobs_finish.owner
               AND t.attempt = x.attempt
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
        SELECT coalesce(array_agg(upd.id ORDER BY upd.ord), '{}'),
               coalesce((SELECT array_agg(m.id) FROM mine AS m
                          WHERE NOT EXISTS (SELECT 1 FROM upd AS u WHERE u.id = m.id)), '{}')
          INTO done, busy
          FROM upd
         WHERE (SELECT count(*) FROM logs) >= 0 AND (SELECT count(*) FROM alerts) >= 0;
        IF cardinality(done) = json_array_length(items) THEN
            RETURN QUERY SELECT d, 'finished'::text FROM unnest(done) AS d;
            RETURN;
        END IF;
        -- Some were not finished here: each item's own outcome, in order.
        RETURN QUERY
            SELECT t.id, CASE WHEN t.id = ANY (done) THEN 'finished'
                              WHEN t.id = ANY (busy) THEN 'busy'
                              WHEN EXISTS (SELECT 1 FROM acs.jobs AS j
                                            WHERE j.id = t.id AND j.state = 'finished'
                                              AND j.owner = jobs_finish.owner
                                              AND j.attempt = t.attempt) THEN 'already'
                              ELSE 'lost' END
              FROM ROWS FROM (json_to_recordset(items) AS (id bigint, attempt integer))
                   WITH ORDINALITY AS t(id, attempt, ord)
             ORDER BY t.ord;
        RETURN;
    EXCEPTION
        WHEN deadlock_detected OR serialization_failure OR lock_not_available THEN
            RAISE; -- the caller tries the whole batch again
        WHEN OTHERS THEN
            NULL; -- one by one below
    END;
    FOR x IN SELECT * FROM json_array_elements(items) LOOP
        id := (x->>'id')::bigint;
        BEGIN
            outcome := acs.job_finish(id, owner, (x->>'attempt')::integer, (x->>'code')::integer,
                                      x->>'error', x->>'log');
        EXCEPTION WHEN lock_not_available THEN
            outcome := 'busy';
        WHEN OTHERS THEN
            outcome := 'error: ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Messages of a running job for the live view (best effort: the merged log
-- holds them all). The job's row is share-locked first, skipping it if
-- someone holds it FOR UPDATE; the insert's foreign key check would wait.
CREATE OR REPLACE FUNCTION acs.job_add_messages(job_id bigint, owner text, attempt integer,
                                                messages json)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM acs.jobs AS j
     WHERE j.id = job_id AND j.owner = job_add_messages.owner
       AND j.attempt = job_add_messages.attempt AND j.state = 'running'
       FOR KEY SHARE OF j SKIP LOCKED;
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

-------------------------------------------------------------------------------
-- The daemon's single-row statements wait for a row lock briefly, then give
-- way (55P03) and are tried again by the daemon: a row held for a minute by
-- someone's open transaction must not stall every other job's writes.
-------------------------------------------------------------------------------

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'acs'::regnamespace
           AND p.proname IN ('job_started', 'job_progress', 'job_add_messages', 'job_finish',
                             'job_in_doubt', 'job_kill_outcome', 'connection_checked',
                             'configure_connection', 'register_connection', 'claim_jobs',
                             'leases_renew', 'renew_leases', 'release_jobs', 'jobs_started',
                             'jobs_progress', 'jobs_finish', 'kills_pending', 'batch_user_secret')
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET lock_timeout = %L', f, '500ms');
    END LOOP;
END
$$;

-------------------------------------------------------------------------------
-- Operators and admins: row locks in id order, FOR NO KEY UPDATE
-------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION acs.request_kill(job_id bigint) RETURNS text
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
       SET kill_requested_at = now(), kill_requested_by = session_user
     WHERE j.id = request_kill.job_id AND j.kill_requested_at IS NULL;
    RETURN st;
END
$$;

-- Operator: kills many jobs in one call. The rows are locked in id order
-- first, whatever order the ids come in, so that two bulk kills (or a bulk
-- kill and anything else that locks in id order) cannot deadlock. Returns,
-- per distinct id in id order, the state it had, or why it was not killed.
CREATE FUNCTION acs.request_kills(job_ids bigint[])
    RETURNS TABLE (job_id bigint, state text, error text)
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
REVOKE EXECUTE ON FUNCTION acs.request_kills(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.request_kills(bigint[]) TO acs_operator, acs_admin;

-- Full Comm locks the connection's row FOR NO KEY UPDATE, so that it does not
-- block the key-share locks of the daemon's inserts (foreign keys).
CREATE OR REPLACE FUNCTION acs.set_comm(connection text, comm_state text) RETURNS text
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
    UPDATE acs.connections AS c SET comm_state = set_comm.comm_state, comm_changed_by = session_user
     WHERE c.name = set_comm.connection;
    RETURN before;
END
$$;

-- Purges in job id order (the rows are skipped while someone holds them).
CREATE OR REPLACE FUNCTION acs.purge_job_logs(max_rows integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
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
    RETURN n;
END
$$;
