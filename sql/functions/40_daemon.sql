-- functions/40_daemon.sql: what amtacsd calls: daemons and liveness, claims and
-- leases, the writes of a job's life (started, progress, messages, finished, in
-- doubt, kills) and the connections' state.
--
-- The current definition of each function here; `amtacsctl migrate` applies this
-- file after the versioned migrations (docs/schema.md).

-- The advisory lock space of amtacs: (ACS_LOCK_CLASS, lock_id); 'acsd'.
CREATE OR REPLACE FUNCTION acs.daemon_lock_class()
    RETURNS integer
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog
AS $$ SELECT 1633907556 $$;

-- Whether some session holds the daemon's lock now.
CREATE OR REPLACE FUNCTION acs.daemon_lock_held(lock_id integer)
    RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks AS l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
           AND l.classid = acs.daemon_lock_class()::oid
           AND l.objid = daemon_lock_held.lock_id::oid)
$$;

-- Daemon: takes its own lock on its statement connection (after every
-- connect). False when another session holds it: an earlier session of the
-- same daemon that the server has not yet seen die; try again later.
CREATE OR REPLACE FUNCTION acs.daemon_register(owner text)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
DECLARE
    lid integer;
BEGIN
    INSERT INTO acs.daemons AS d (owner) VALUES (daemon_register.owner)
        ON CONFLICT ON CONSTRAINT daemons_pkey DO NOTHING;
    SELECT d.lock_id INTO lid FROM acs.daemons AS d WHERE d.owner = daemon_register.owner;
    IF NOT pg_try_advisory_lock(acs.daemon_lock_class(), lid) THEN
        RETURN false;
    END IF;
    UPDATE acs.daemons AS d
       SET server_started = pg_postmaster_start_time(), locked_at = now(),
           backend_pid = pg_backend_pid()
     WHERE d.owner = daemon_register.owner;
    PERFORM acs.daemons_forget(daemon_register.owner);
    RETURN true;
END
$$;
COMMENT ON FUNCTION acs.daemon_register(text) IS
    'Daemon: takes the advisory lock that proves it alive (after each connect); false if another session holds it';
REVOKE ALL ON FUNCTION acs.daemon_register(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.daemon_register(text) TO acs_daemon;

-- Daemon: the owners that are gone (their lock is free, and they took it on
-- this server run), other than the caller.
CREATE OR REPLACE FUNCTION acs.daemons_gone(caller text)
    RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT d.owner FROM acs.daemons AS d
     WHERE d.owner <> daemons_gone.caller
       AND d.server_started = pg_postmaster_start_time()
       AND NOT acs.daemon_lock_held(d.lock_id)
$$;
COMMENT ON FUNCTION acs.daemons_gone(text) IS
    'Daemon: daemons whose session ended on this server run (their jobs can be taken over at once)';
REVOKE ALL ON FUNCTION acs.daemons_gone(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.daemons_gone(text) TO acs_daemon;

-- Forgets the daemons that hold no lock and no job any more (in owner order,
-- skipping entries another daemon is forgetting right now).
CREATE OR REPLACE FUNCTION acs.daemons_forget(caller text)
    RETURNS integer
    LANGUAGE sql SET search_path = pg_catalog
AS $$
    WITH old AS (
        SELECT d.owner FROM acs.daemons AS d
         WHERE d.owner <> daemons_forget.caller AND NOT acs.daemon_lock_held(d.lock_id)
           AND NOT EXISTS (SELECT 1 FROM acs.jobs AS j
                            WHERE j.owner = d.owner AND j.state IN ('starting', 'running'))
         ORDER BY d.owner
           FOR UPDATE OF d SKIP LOCKED
    ), gone AS (
        DELETE FROM acs.daemons AS d USING old WHERE d.owner = old.owner RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;
REVOKE ALL ON FUNCTION acs.daemons_forget(text) FROM PUBLIC;

-- Daemon: whether a gone daemon still holds jobs of one of these connections
-- (asked every second: a probe per gone daemon); forgets those that hold none.
CREATE OR REPLACE FUNCTION acs.takeover_due(caller text, connections text[])
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
BEGIN
    PERFORM acs.daemons_forget(caller);
    RETURN EXISTS (
        SELECT 1 FROM acs.daemons_gone(caller) AS g(owner)
         WHERE EXISTS (SELECT 1 FROM acs.jobs AS j
                        WHERE j.connection = ANY (takeover_due.connections) AND j.owner = g.owner
                          AND j.state IN ('starting', 'running')));
END
$$;
REVOKE ALL ON FUNCTION acs.takeover_due(text,text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.takeover_due(text,text[]) TO acs_daemon;

-- Integration Selection (docs/operations.md): a connection is up when its
-- Full Comm is enabled and its server answered within its failover_after.
-- The one definition of "up"; the daemon's own view of its server replaces
-- last_contact for the connection that claims (claim_jobs' server_answers).
CREATE OR REPLACE FUNCTION acs.connection_up(c acs.connections)
    RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT c.comm_state = 'enabled' AND coalesce(c.last_contact >= now() - c.failover_after, false)
$$;
COMMENT ON FUNCTION acs.connection_up(acs.connections) IS
    'Integration Selection: Full Comm enabled and the server answered within failover_after';

-- Whether the job's Start was tried on the connection and never left.
CREATE OR REPLACE FUNCTION acs.job_tried(tried jsonb, connection text)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog
AS $$
    SELECT coalesce(tried @> jsonb_build_array(jsonb_build_object('connection', connection)), false)
$$;
COMMENT ON FUNCTION acs.job_tried(jsonb,text) IS
    'Integration Selection: the connection is in a job''s tried list (its Start never left there)';

-- Claims up to max_jobs jobs for a connection with a lease: with take_over,
-- first the jobs of gone daemons and expired leases (in id order), then
-- queued jobs; each claim counts an attempt. Says who asked for a kill (the
-- log of a job killed while queued names them).
--
-- Queued jobs come from three places (Integration Selection):
--   home:      jobs whose connection is this one (a single connection, or the
--              first listed one not yet tried). While this connection's
--              server does not answer (server_answers false), a job that
--              lists another connection that is up and not yet tried waits
--              for that one instead.
--   alternate: jobs whose connection is down (acs.connection_up), that list
--              this one after it, with every untried one between them down.
--              A queued job has never had a Start sent (a job whose Start may
--              have been sent is starting, running or in doubt), so moving it
--              never runs it on two servers.
--   group:     jobs of the groups this connection belongs to, while it is up,
--              at most max_jobs more than the member that is up with the
--              fewest jobs in flight (least in flight first).
-- A claimed job's connection becomes this one. tried: each connection its
-- Start never left before, with its URL and why, for the log of a job that
-- ends 23 because no listed connection could be reached. failover: the job
-- came to this connection from an earlier listed one (counted in metrics).
--
-- The four-argument form of 0002 (always taking over) is this one with
-- take_over's default; it was a second function until migration 22.
DROP FUNCTION IF EXISTS acs.claim_jobs(text, text, integer, integer);
DROP FUNCTION IF EXISTS acs.claim_jobs(text, text, integer, integer, boolean);
CREATE OR REPLACE FUNCTION acs.claim_jobs(owner text, connection text, max_jobs integer,
                                          lease_seconds integer, take_over boolean DEFAULT true,
                                          server_answers boolean DEFAULT true)
    RETURNS TABLE(id bigint, attempt integer, state text, kind text, application text, amt_user text, queue_name text, job_name text, script_name text, params json, task_id uuid, batch_request_id integer, kill_requested boolean, taken_over boolean, kill_requested_by text, tried text, failover boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL keeps the plan for the session: a LANGUAGE sql function plans
    -- its query anew at each call, and planning this one cost more than
    -- running it (twice the whole claim of an empty queue).
    RETURN QUERY
    WITH comm AS (
        SELECT c.comm_state FROM acs.connections AS c WHERE c.name = claim_jobs.connection
    ), gone AS (
        SELECT g.owner FROM acs.daemons_gone(claim_jobs.owner) AS g(owner) WHERE take_over
    ), expired AS (
        SELECT j.id, j.state AS old_state, 'expired' AS via
          FROM acs.jobs AS j
         WHERE take_over AND j.connection = claim_jobs.connection
           AND j.state IN ('starting', 'running')
           AND (j.lease_expires < now() OR j.owner IN (SELECT gone.owner FROM gone))
           AND ((j.state = 'starting' AND (SELECT comm_state FROM comm) = 'enabled')
             OR (j.state = 'running' AND (SELECT comm_state FROM comm) <> 'disabled'))
         ORDER BY j.id
         LIMIT greatest(max_jobs, 0)
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), home AS (
        SELECT j.id, j.state AS old_state, 'home' AS via
          FROM acs.jobs AS j
         -- The connection as a range, and the order of jobs_queued_idx
         -- (connection, id): this plan is made for any connection, and an
         -- equality would let it walk the primary key in id order instead,
         -- through every finished and running job before the first queued
         -- one, on every claim (a table whose statistics say the jobs are
         -- all queued, or all of one connection, made it do so).
         WHERE j.connection >= claim_jobs.connection AND j.connection <= claim_jobs.connection
           AND j.state = 'queued' AND j.conn_group IS NULL
           -- a queued job to be killed ends without any traffic: whatever the comm state
           AND ((SELECT comm_state FROM comm) = 'enabled' OR j.kill_requested_at IS NOT NULL)
           AND (server_answers OR j.listed IS NULL OR j.kill_requested_at IS NOT NULL
                OR NOT EXISTS (SELECT 1 FROM unnest(j.listed) AS l(name)
                                 JOIN acs.connections AS o ON o.name = l.name
                                WHERE l.name <> claim_jobs.connection
                                  AND NOT acs.job_tried(j.tried, l.name) AND acs.connection_up(o)))
         ORDER BY j.connection, j.id
         LIMIT greatest(max_jobs - (SELECT count(*) FROM expired), 0)
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), alternate AS (
        SELECT a.id, a.old_state, 'alternate' AS via
          FROM acs.connections AS d
         CROSS JOIN LATERAL (
                SELECT j.id, j.state AS old_state
                  FROM acs.jobs AS j
                 WHERE j.connection = d.name AND j.state = 'queued' AND j.conn_group IS NULL
                   AND j.listed IS NOT NULL AND j.listed @> ARRAY[claim_jobs.connection]
                   AND NOT acs.job_tried(j.tried, claim_jobs.connection)
                   AND NOT EXISTS (SELECT 1 FROM unnest(j.listed) WITH ORDINALITY AS l(name, i)
                                     JOIN acs.connections AS o ON o.name = l.name
                                    WHERE l.i < array_position(j.listed, claim_jobs.connection)
                                      AND NOT acs.job_tried(j.tried, l.name) AND acs.connection_up(o))
                 ORDER BY j.id
                 LIMIT greatest(max_jobs - (SELECT count(*) FROM expired) - (SELECT count(*) FROM home), 0)
                   FOR NO KEY UPDATE OF j SKIP LOCKED) AS a
         WHERE server_answers AND (SELECT comm_state FROM comm) = 'enabled'
           AND d.name <> claim_jobs.connection AND NOT acs.connection_up(d)
         LIMIT greatest(max_jobs - (SELECT count(*) FROM expired) - (SELECT count(*) FROM home), 0)
    ), mine AS (
        SELECT count(*) AS n FROM acs.jobs AS j
         WHERE j.connection = claim_jobs.connection AND j.state IN ('starting', 'running')
    ), grouped AS (
        SELECT g.id, g.old_state, 'group' AS via
          FROM acs.connection_group_members AS m
         CROSS JOIN LATERAL (
                SELECT j.id, j.state AS old_state
                  FROM acs.jobs AS j
                 WHERE j.conn_group = m.group_name AND j.state = 'queued'
                   AND NOT acs.job_tried(j.tried, claim_jobs.connection)
                   AND (j.kill_requested_at IS NOT NULL
                        OR ((SELECT comm_state FROM comm) = 'enabled'
                            AND (server_answers
                                 -- no member up and untried: this one tries, so that the job ends
                                 OR NOT EXISTS (SELECT 1 FROM acs.connection_group_members AS om
                                                  JOIN acs.connections AS o ON o.name = om.connection
                                                 WHERE om.group_name = m.group_name
                                                   AND om.connection <> claim_jobs.connection
                                                   AND NOT acs.job_tried(j.tried, om.connection)
                                                   AND acs.connection_up(o)))))
                 ORDER BY j.id
                 LIMIT greatest(least(
                           max_jobs - (SELECT count(*) FROM expired) - (SELECT count(*) FROM home)
                                    - (SELECT count(*) FROM alternate),
                           coalesce((SELECT min(f.n) FROM acs.connection_group_members AS om
                                       JOIN acs.connections AS o ON o.name = om.connection
                                      CROSS JOIN LATERAL (
                                            SELECT count(*) AS n FROM acs.jobs AS r
                                             WHERE r.connection = om.connection
                                               AND r.state IN ('starting', 'running')) AS f
                                      WHERE om.group_name = m.group_name
                                        AND om.connection <> claim_jobs.connection
                                        AND acs.connection_up(o)), 2147483647)
                               + max_jobs - (SELECT n FROM mine)), 0)
                   FOR NO KEY UPDATE OF j SKIP LOCKED) AS g
         WHERE m.connection = claim_jobs.connection
         LIMIT greatest(max_jobs - (SELECT count(*) FROM expired) - (SELECT count(*) FROM home)
                                 - (SELECT count(*) FROM alternate), 0)
    ), candidates AS (
        SELECT * FROM expired
        UNION ALL SELECT * FROM home
        UNION ALL SELECT * FROM alternate
        UNION ALL SELECT * FROM grouped
    ), claimed AS (
    UPDATE acs.jobs AS j
       SET state = CASE WHEN j.state = 'queued' THEN 'starting' ELSE j.state END,
           connection = claim_jobs.connection,
           owner = claim_jobs.owner,
           attempt = j.attempt + 1,
           lease_expires = now() + make_interval(secs => lease_seconds),
           claimed_at = now(),
           task_id = coalesce(j.task_id, gen_random_uuid())
      FROM candidates
     WHERE j.id = candidates.id
    RETURNING j.id, j.attempt, j.state, j.kind, j.application, j.amt_user, j.queue_name,
              j.job_name, j.script_name,
              array_to_json(CASE WHEN j.kind = 'batch' THEN j.task_values ELSE j.script_parameters END) AS params,
              j.task_id, j.batch_request_id, j.kill_requested_at IS NOT NULL AS kill_requested,
              candidates.old_state <> 'queued' AS taken_over, j.kill_requested_by,
              CASE WHEN j.tried IS NOT NULL THEN
                  (SELECT string_agg(format('%s (%s): %s', t.connection,
                                            coalesce(c.url, 'URL not known'), t.error),
                                     '; ' ORDER BY t.ord)
                     FROM ROWS FROM (jsonb_to_recordset(j.tried) AS (connection text, error text))
                          WITH ORDINALITY AS t(connection, error, ord)
                     LEFT JOIN acs.connections AS c ON c.name = t.connection) END AS tried_text,
              candidates.via = 'alternate' OR (candidates.via <> 'expired' AND j.tried IS NOT NULL)
                  AS came_over
    )
    SELECT * FROM claimed;
END
$$;
COMMENT ON FUNCTION acs.claim_jobs(text,text,integer,integer,boolean,boolean) IS
    'Daemon: claims up to max_jobs jobs for a connection (with take_over, those of gone daemons and expired leases first; then queued: its own, those its alternates-listing jobs may take, its groups''), with a lease';
REVOKE ALL ON FUNCTION acs.claim_jobs(text,text,integer,integer,boolean,boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.claim_jobs(text,text,integer,integer,boolean,boolean) TO acs_daemon;

-- Renews the leases of held jobs (ids and attempts in pairs). Returns the
-- jobs it did not renew: busy = false, the caller no longer holds the job
-- (drop it); busy = true, another session has the row locked this instant
-- (still held; renewed by a later call).
CREATE OR REPLACE FUNCTION acs.leases_renew(owner text, ids bigint[], attempts integer[], lease_seconds integer)
    RETURNS TABLE(id bigint, busy boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
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
COMMENT ON FUNCTION acs.leases_renew(text,bigint[],integer[],integer) IS
    'Daemon: renews the leases of held jobs in id order, skipping rows locked by others; returns those not renewed (busy: locked, still held)';
-- (migrations 9 to 21 left it callable by every role: a scheduler could keep
-- a gone daemon's jobs from being taken over)
REVOKE ALL ON FUNCTION acs.leases_renew(text,bigint[],integer[],integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.leases_renew(text,bigint[],integer[],integer) TO acs_daemon;

-- The first form (until migration 9), for a daemon of an earlier release during an upgrade:
-- the ids no longer held.
CREATE OR REPLACE FUNCTION acs.renew_leases(owner text, ids bigint[], attempts integer[], lease_seconds integer)
    RETURNS SETOF bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
    SELECT r.id FROM acs.leases_renew(owner, ids, attempts, lease_seconds) AS r WHERE NOT r.busy
$$;
COMMENT ON FUNCTION acs.renew_leases(text,bigint[],integer[],integer) IS
    'Daemon: renews the leases of held jobs; returns the ids no longer held';
REVOKE ALL ON FUNCTION acs.renew_leases(text,bigint[],integer[],integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.renew_leases(text,bigint[],integer[],integer) TO acs_daemon;

-- A graceful stop: the leases handed back, the entry and its lock gone.
CREATE OR REPLACE FUNCTION acs.release_jobs(owner text)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
DECLARE
    n integer;
    lid integer;
BEGIN
    WITH locked AS (
        SELECT j.id FROM acs.jobs AS j
         WHERE j.owner = release_jobs.owner AND j.state IN ('starting', 'running')
         ORDER BY j.id
           FOR NO KEY UPDATE OF j SKIP LOCKED
    )
    UPDATE acs.jobs AS j SET lease_expires = now() FROM locked WHERE j.id = locked.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    SELECT d.lock_id INTO lid FROM acs.daemons AS d WHERE d.owner = release_jobs.owner;
    IF FOUND THEN
        -- (the lock goes with the session anyway; unlocking says so at once)
        PERFORM pg_advisory_unlock_all();
        IF NOT EXISTS (SELECT 1 FROM acs.jobs AS j
                        WHERE j.owner = release_jobs.owner AND j.state IN ('starting', 'running')) THEN
            DELETE FROM acs.daemons AS d WHERE d.owner = release_jobs.owner;
        END IF;
    END IF;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION acs.release_jobs(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.release_jobs(text) TO acs_daemon;

-- Records the BatchRequestId that Start returned. True if the caller still
-- holds the job (also when it was already recorded: the call is idempotent).
CREATE OR REPLACE FUNCTION acs.job_started(job_id bigint, owner text, attempt integer, batch_request_id integer)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
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
COMMENT ON FUNCTION acs.job_started(bigint,text,integer,integer) IS
    'Daemon: starting -> running with the BatchRequestId (fenced by owner and attempt)';
REVOKE ALL ON FUNCTION acs.job_started(bigint,text,integer,integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_started(bigint,text,integer,integer) TO acs_daemon;

-- held: true (written), false (no longer the caller's), NULL (busy: the row
-- is locked by another session; write it again shortly).
CREATE OR REPLACE FUNCTION acs.jobs_started(owner text, items json)
    RETURNS TABLE(id bigint, held boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
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
REVOKE ALL ON FUNCTION acs.jobs_started(text,json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.jobs_started(text,json) TO acs_daemon;

-- Records the latest AMT state of a running job (for status displays).
CREATE OR REPLACE FUNCTION acs.job_progress(job_id bigint, owner text, attempt integer, code integer)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
BEGIN
    UPDATE acs.jobs AS j SET last_code = code
     WHERE j.id = job_id AND j.owner = job_progress.owner AND j.attempt = job_progress.attempt
       AND j.state = 'running';
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION acs.job_progress(bigint,text,integer,integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_progress(bigint,text,integer,integer) TO acs_daemon;

CREATE OR REPLACE FUNCTION acs.jobs_progress(owner text, items json)
    RETURNS TABLE(id bigint, held boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
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
COMMENT ON FUNCTION acs.jobs_progress(text,json) IS
    'Daemon: the latest AMT state of running jobs, many in one statement (fenced by owner and attempt)';
REVOKE ALL ON FUNCTION acs.jobs_progress(text,json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.jobs_progress(text,json) TO acs_daemon;

-- Messages of a running job for the live view (best effort: the merged log
-- holds them all). The job's row is share-locked first, skipping it if
-- someone holds it FOR UPDATE; the insert's foreign key check would wait.
CREATE OR REPLACE FUNCTION acs.job_add_messages(job_id bigint, owner text, attempt integer, messages json)
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
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
COMMENT ON FUNCTION acs.job_add_messages(bigint,text,integer,json) IS
    'Daemon: records messages of a running job as they arrive (NOTIFY acs_job_messages)';
REVOKE ALL ON FUNCTION acs.job_add_messages(bigint,text,integer,json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_add_messages(bigint,text,integer,json) TO acs_daemon;

-- The one place where jobs end (acs.job_finish, acs.jobs_finish and an
-- operator's acs.resolve_in_doubt all come here). The caller holds each job's
-- row (locked, its own fence checked) and gives, per job, the final code, the
-- error text and the merged log. The result is success when
-- acs.completion_codes says the code is (DONE, 4; a code not in the table is a
-- failure), and a code whose raises_alert is set raises an alert (a row in
-- acs.alerts, whose trigger sends NOTIFY acs_alerts). reported: the code is
-- the last one the Batch Server (or the connector) gave for the job, so it
-- becomes last_code as well and the lease ends; an operator's decision leaves
-- both as they were. Returns the ids it finished, in the order given; a job
-- already finished is left alone.
CREATE OR REPLACE FUNCTION acs.jobs_end(ids bigint[], codes integer[], errors text[],
                                        logs text[], reported boolean)
    RETURNS SETOF bigint
    LANGUAGE plpgsql SET search_path = pg_catalog SET enable_hashjoin = off
                     SET enable_mergejoin = off
AS $$
BEGIN
    -- One statement whose UPDATE's RETURNING feeds the log and the alert (a
    -- join of the items to the updated rows would be planned as a nested
    -- loop: O(n^2), 357 ms for 2,000 items). Each item is one probe of the
    -- primary key, whatever the planner thinks of the batch's size against
    -- the table's (a hash join would read the whole table): hence no hash or
    -- merge join here.
    RETURN QUERY
    WITH x AS (
        SELECT * FROM unnest(ids, codes, errors, logs) WITH ORDINALITY AS x(id, code, error, log, ord)
    ), upd AS (
        UPDATE acs.jobs AS t
           SET state = 'finished', completion_code = x.code,
               result = CASE WHEN (SELECT c.success FROM acs.completion_codes AS c
                                    WHERE c.code = x.code) THEN 'success' ELSE 'failure' END,
               error = x.error, finished_at = now(),
               lease_expires = CASE WHEN reported THEN NULL ELSE t.lease_expires END,
               last_code = CASE WHEN reported THEN x.code ELSE t.last_code END
          FROM x
         WHERE t.id = x.id AND t.state <> 'finished'
        RETURNING t.id, t.connection, t.kind, coalesce(t.job_name, t.script_name) AS job,
                  x.code, x.error, x.log, x.ord
    ), logged AS (
        INSERT INTO acs.job_logs (job_id, connection, log)
        SELECT upd.id, upd.connection, upd.log FROM upd
        RETURNING job_id
    ), alerted AS (
        INSERT INTO acs.alerts (job_id, connection, code, name, message)
        SELECT upd.id, upd.connection, upd.code, c.name,
               format('job %s (%s %s) ended %s (%s)%s', upd.id, upd.kind, upd.job, c.name,
                      upd.code, coalesce(': ' || upd.error, ''))
          FROM upd JOIN acs.completion_codes AS c ON c.code = upd.code
         WHERE c.raises_alert
        RETURNING 1
    )
    SELECT upd.id FROM upd
     WHERE (SELECT count(*) FROM logged) >= 0 AND (SELECT count(*) FROM alerted) >= 0
     ORDER BY upd.ord;
END
$$;
COMMENT ON FUNCTION acs.jobs_end(bigint[],integer[],text[],text[],boolean) IS
    'Internal: ends held jobs (state, code, result from completion_codes.success, error, log, alert from completion_codes.raises_alert); called by job_finish, jobs_finish and resolve_in_doubt';
REVOKE ALL ON FUNCTION acs.jobs_end(bigint[],integer[],text[],text[],boolean) FROM PUBLIC;

-- Finishes a job in one transaction: the final code, the result, the error
-- text and the merged log (acs.jobs_end). Returns 'finished', or 'already'
-- when this owner/attempt had finished it before (a retried call after a lost
-- connection), or 'lost' when the caller no longer holds it.
CREATE OR REPLACE FUNCTION acs.job_finish(job_id bigint, owner text, attempt integer, code integer, error text, log text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
DECLARE
    j acs.jobs%ROWTYPE;
BEGIN
    PERFORM 1 FROM acs.jobs AS t
     WHERE t.id = job_id AND t.owner = job_finish.owner AND t.attempt = job_finish.attempt
       AND t.state IN ('starting', 'running')
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        SELECT * INTO j FROM acs.jobs AS t WHERE t.id = job_id;
        IF FOUND AND j.state = 'finished' AND j.owner = job_finish.owner
           AND j.attempt = job_finish.attempt THEN
            RETURN 'already';
        END IF;
        RETURN 'lost';
    END IF;
    PERFORM acs.jobs_end(ARRAY[job_id], ARRAY[code], ARRAY[error], ARRAY[log], true);
    RETURN 'finished';
END
$$;
COMMENT ON FUNCTION acs.job_finish(bigint,text,integer,integer,text,text) IS
    'Daemon: finishes a held job with its code, result, error and merged log, in one transaction';
REVOKE ALL ON FUNCTION acs.job_finish(bigint,text,integer,integer,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_finish(bigint,text,integer,integer,text,text) TO acs_daemon;

-- Integration Selection: each held job among items (its Start never left, on
-- any try; start_retry.attempts are used up) goes back
-- to the queue for the next connection it lists that was not tried (the
-- first in its order, or the next member of its group), with this one and
-- the error recorded in tried. A job with none left stays held, with the
-- last try recorded too: the caller ends it 23 (acs.jobs_end) in the same
-- transaction. Returns the jobs given back.
CREATE OR REPLACE FUNCTION acs.jobs_fail_over(owner text, items json)
    RETURNS SETOF bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
    WITH x AS (
        SELECT t.id, t.attempt, t.error
          FROM json_to_recordset(items) AS t(id bigint, attempt integer, error text)
    ), held AS (
        SELECT j.id, x.error, j.connection AS was,
               CASE WHEN j.conn_group IS NULL
                    THEN (SELECT l.name FROM unnest(j.listed) WITH ORDINALITY AS l(name, i)
                           WHERE l.name <> j.connection AND NOT acs.job_tried(j.tried, l.name)
                           ORDER BY l.i LIMIT 1)
                    ELSE (SELECT m.connection FROM acs.connection_group_members AS m
                           WHERE m.group_name = j.conn_group AND m.connection <> j.connection
                             AND NOT acs.job_tried(j.tried, m.connection)
                           ORDER BY m.position LIMIT 1) END AS next
          FROM acs.jobs AS j JOIN x ON j.id = x.id
         WHERE j.owner = jobs_fail_over.owner AND j.attempt = x.attempt
           AND j.state = 'starting' AND j.batch_request_id IS NULL
         ORDER BY j.id
           FOR NO KEY UPDATE OF j
    ), moved AS (
        UPDATE acs.jobs AS j
           SET state = CASE WHEN held.next IS NULL THEN j.state ELSE 'queued' END,
               lease_expires = CASE WHEN held.next IS NULL THEN j.lease_expires END,
               connection = CASE WHEN held.next IS NULL OR j.conn_group IS NOT NULL
                                 THEN j.connection ELSE held.next END,
               -- no server has seen its taskId: the next one gets a new one, so
               -- that the daemon that tried (and remembers the taskIds it sent
               -- to servers without idempotent Start) sees a job it never sent
               task_id = CASE WHEN held.next IS NULL THEN j.task_id END,
               tried = coalesce(j.tried, '[]') || jsonb_build_array(jsonb_build_object(
                           'connection', held.was, 'error', coalesce(held.error, 'not reached'),
                           'at', now()))
          FROM held
         WHERE j.id = held.id
        RETURNING j.id, held.next IS NOT NULL AS requeued
    )
    SELECT moved.id FROM moved WHERE moved.requeued
$$;
COMMENT ON FUNCTION acs.jobs_fail_over(text,json) IS
    'Daemon (through jobs_finish_unreachable): gives held jobs whose Start never left back to the queue for their next untried connection; returns them';
REVOKE ALL ON FUNCTION acs.jobs_fail_over(text,json) FROM PUBLIC;

-- items: [{"id","attempt","code","error","log"}]; returns (id, outcome) per
-- item, in order. outcome: finished, already (this owner and attempt finished
-- it before), lost, busy (the row is locked by another session: finish it
-- again shortly), or 'error: ...'. All items go in two statements (lock, then
-- acs.jobs_end); should that fail, they go one by one, so that one bad item
-- cannot hold the others back.
CREATE OR REPLACE FUNCTION acs.jobs_finish(owner text, items json)
    RETURNS TABLE(id bigint, outcome text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
DECLARE
    ids bigint[];
    codes integer[];
    errors text[];
    logs text[];
    mine bigint[];
    done bigint[];
    busy bigint[];
    x json;
BEGIN
    BEGIN
        -- Lock what is ours, in id order, skipping what someone else holds
        -- (each item one probe of the primary key).
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
            SELECT t.id, x.code, x.error, x.log, x.ord FROM acs.jobs AS t JOIN x ON t.id = x.id
             WHERE t.owner = jobs_finish.owner AND t.attempt = x.attempt
               AND CASE t.state WHEN 'starting' THEN true WHEN 'running' THEN true ELSE false END
             ORDER BY t.id
               FOR NO KEY UPDATE OF t SKIP LOCKED
        )
        SELECT coalesce(array_agg(l.id ORDER BY l.ord), '{}'), array_agg(l.code ORDER BY l.ord),
               array_agg(l.error ORDER BY l.ord), array_agg(l.log ORDER BY l.ord),
               coalesce((SELECT array_agg(m.id) FROM mine AS m), '{}')
          INTO ids, codes, errors, logs, mine
          FROM locked AS l;
        done := ARRAY(SELECT acs.jobs_end(ids, codes, errors, logs, true));
        IF cardinality(done) = json_array_length(items) THEN
            RETURN QUERY SELECT d, 'finished'::text FROM unnest(done) AS d;
            RETURN;
        END IF;
        busy := ARRAY(SELECT m FROM unnest(mine) AS m WHERE m <> ALL (done));
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
COMMENT ON FUNCTION acs.jobs_finish(text,json) IS
    'Daemon: finishes many held jobs (acs.jobs_end), in id order, skipping rows locked by others; an outcome per item';
REVOKE ALL ON FUNCTION acs.jobs_finish(text,json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.jobs_finish(text,json) TO acs_daemon;

-- The finish of jobs whose Start never left (start_retry.attempts used up,
-- no try can have reached the server): each goes to its next listed
-- connection not yet tried if it has one (outcome requeued, acs.jobs_fail_over),
-- else it ends as acs.jobs_finish ends it (23), with the try recorded. A
-- statement of its own, so that the finish of every other job does not pay
-- for the rare case. Same items and outcomes as acs.jobs_finish, in order.
CREATE OR REPLACE FUNCTION acs.jobs_finish_unreachable(owner text, items json)
    RETURNS TABLE(id bigint, outcome text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
DECLARE
    requeued bigint[];
    rest json;
BEGIN
    requeued := ARRAY(SELECT acs.jobs_fail_over(jobs_finish_unreachable.owner, items));
    rest := (SELECT coalesce(json_agg(e), '[]') FROM json_array_elements(items) AS e
              WHERE (e ->> 'id')::bigint <> ALL (requeued));
    RETURN QUERY
        WITH others AS (SELECT f.id, f.outcome
                          FROM acs.jobs_finish(jobs_finish_unreachable.owner, rest) AS f)
        SELECT t.id, CASE WHEN t.id = ANY (requeued) THEN 'requeued'
                          ELSE (SELECT o.outcome FROM others AS o WHERE o.id = t.id) END
          FROM ROWS FROM (json_to_recordset(items) AS (id bigint)) WITH ORDINALITY AS t(id, ord)
         ORDER BY t.ord;
END
$$;
COMMENT ON FUNCTION acs.jobs_finish_unreachable(text,json) IS
    'Daemon: finishes held jobs whose Start never left: each to its next untried connection (requeued), or ended as jobs_finish ends it; an outcome per item';
REVOKE ALL ON FUNCTION acs.jobs_finish_unreachable(text,json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.jobs_finish_unreachable(text,json) TO acs_daemon;

-- Daemon: the job's Start may have been sent and the server cannot be asked
-- again safely. Raises an alert. True if the caller held the job.
CREATE OR REPLACE FUNCTION acs.job_in_doubt(job_id bigint, owner text, attempt integer, reason text)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
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
COMMENT ON FUNCTION acs.job_in_doubt(bigint,text,integer,text) IS
    'Daemon: starting -> in_doubt (the Start may have been sent to a non-idempotent server), with an alert';
REVOKE ALL ON FUNCTION acs.job_in_doubt(bigint,text,integer,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_in_doubt(bigint,text,integer,text) TO acs_daemon;

CREATE OR REPLACE FUNCTION acs.kills_pending(owner text)
    RETURNS SETOF bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
    -- (state <> 'finished' lets the planner use jobs_kill_pending_idx)
    SELECT j.id FROM acs.jobs AS j
     WHERE j.kill_requested_at IS NOT NULL AND j.state <> 'finished'
       AND j.state IN ('starting', 'running') AND j.owner = kills_pending.owner
$$;
COMMENT ON FUNCTION acs.kills_pending(text) IS
    'Daemon: the jobs an owner holds that an operator wants killed (kill requests it may have missed)';
REVOKE ALL ON FUNCTION acs.kills_pending(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.kills_pending(text) TO acs_daemon;

-- Daemon: the outcome of a Kill call (error NULL: the server accepted it).
CREATE OR REPLACE FUNCTION acs.job_kill_outcome(job_id bigint, owner text, attempt integer, error text)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
BEGIN
    UPDATE acs.jobs AS j
       SET kill_sent_at = CASE WHEN job_kill_outcome.error IS NULL THEN now() ELSE j.kill_sent_at END,
           kill_error = job_kill_outcome.error,
           kill_error_at = CASE WHEN job_kill_outcome.error IS NULL THEN NULL ELSE now() END
     WHERE j.id = job_id AND j.owner = job_kill_outcome.owner
       AND j.attempt = job_kill_outcome.attempt
       -- finished too: the server may end the job, and the daemon record its
       -- end, before the Kill call's own answer is back (a busy machine)
       AND j.state IN ('starting', 'running', 'finished');
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION acs.job_kill_outcome(bigint,text,integer,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.job_kill_outcome(bigint,text,integer,text) TO acs_daemon;

-- The sealed password of a Batch User (for the daemon, which opens it).
CREATE OR REPLACE FUNCTION acs.batch_user_secret(name text)
    RETURNS TABLE(key_id text, sealed_password bytea)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
    SELECT b.key_id, b.sealed_password FROM acs.batch_users AS b WHERE b.name = batch_user_secret.name
$$;
REVOKE ALL ON FUNCTION acs.batch_user_secret(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.batch_user_secret(text) TO acs_daemon;

-- Daemon: records a configured connection. A new one starts with Full Comm
-- enabled (the admin configured it for use); an existing one keeps the comm
-- state an admin chose.
DROP FUNCTION IF EXISTS acs.configure_connection(text,text,text,boolean,integer);
CREATE OR REPLACE FUNCTION acs.configure_connection(name text, url text, batch_user text, allow_kill boolean, retain_log_days integer, failover_after_ms integer DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
BEGIN
    INSERT INTO acs.connections AS c (name, comm_state, url, batch_user, allow_kill,
                                      retain_log_days, configured_at, failover_after)
    VALUES (configure_connection.name, 'enabled', configure_connection.url,
            configure_connection.batch_user, configure_connection.allow_kill,
            configure_connection.retain_log_days, now(),
            coalesce(make_interval(secs => configure_connection.failover_after_ms / 1000.0),
                     '60 seconds'))
    ON CONFLICT ON CONSTRAINT connections_pkey DO UPDATE
       SET url = excluded.url, batch_user = excluded.batch_user,
           allow_kill = excluded.allow_kill, retain_log_days = excluded.retain_log_days,
           configured_at = excluded.configured_at,
           failover_after = CASE WHEN configure_connection.failover_after_ms IS NULL
                                 THEN c.failover_after ELSE excluded.failover_after END;
END
$$;
COMMENT ON FUNCTION acs.configure_connection(text,text,text,boolean,integer,integer) IS
    'Daemon: records a connection''s settings (a new connection starts with Full Comm enabled)';
REVOKE ALL ON FUNCTION acs.configure_connection(text,text,text,boolean,integer,integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.configure_connection(text,text,text,boolean,integer,integer) TO acs_daemon;

-- Daemon: the outcome of a heartbeat (or of a call that failed to reach the server).
CREATE OR REPLACE FUNCTION acs.connection_checked(name text, ok boolean, amt_version text, error text)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
BEGIN
    UPDATE acs.connections AS c
       SET server_ok = ok, server_checked_at = now(),
           last_contact = CASE WHEN ok THEN now() ELSE c.last_contact END,
           amt_version = coalesce(connection_checked.amt_version, c.amt_version),
           last_error = CASE WHEN ok THEN c.last_error ELSE connection_checked.error END,
           last_error_at = CASE WHEN ok THEN c.last_error_at ELSE now() END
     WHERE c.name = connection_checked.name;
END
$$;
REVOKE ALL ON FUNCTION acs.connection_checked(text,boolean,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.connection_checked(text,boolean,text,text) TO acs_daemon;
