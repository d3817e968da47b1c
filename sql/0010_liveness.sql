-- 0010_liveness.sql: a dead daemon's jobs are taken over in seconds, not
-- when their leases run out.
--
-- After kill -9, PostgreSQL closes the dead process's sessions at once, yet
-- its jobs waited for their leases (30 s by default) before anyone followed
-- them again. Each daemon now holds a session-level advisory lock on its own
-- entry in acs.daemons for as long as its statement connection lives. A
-- daemon whose lock nobody holds, registered on this very server run, is
-- gone: its session ended, whatever the reason, and its jobs may be taken
-- over at once. The lease stays the fallback for the cases PostgreSQL cannot
-- see: a daemon cut off from the database whose session the server still
-- believes alive, and entries written before a restart or a failover (a
-- promoted replica has another postmaster start time, so what the old
-- primary knew about locks says nothing there).
--
-- docs/takeover.md has the argument why no job is started twice and no
-- kill is sent by a daemon that no longer holds the job.

CREATE SEQUENCE acs.daemon_lock_ids AS integer CYCLE;

CREATE TABLE acs.daemons (
    owner          text PRIMARY KEY,
    lock_id        integer NOT NULL UNIQUE DEFAULT nextval('acs.daemon_lock_ids'),
    server_started timestamptz,  -- pg_postmaster_start_time() when it last took its lock
    locked_at      timestamptz,  -- when it last took its lock
    backend_pid    integer       -- the session that took it
);
COMMENT ON TABLE acs.daemons IS
    'The daemons that hold or held jobs; each holds an advisory lock on its lock_id while connected';

-- The advisory lock space of amtacs: (ACS_LOCK_CLASS, lock_id); 'acsd'.
CREATE FUNCTION acs.daemon_lock_class() RETURNS integer
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog
AS $$ SELECT 1633907556 $$;

-- Whether some session holds the daemon's lock now.
CREATE FUNCTION acs.daemon_lock_held(lock_id integer) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks AS l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
           AND l.classid = acs.daemon_lock_class()::oid
           AND l.objid = daemon_lock_held.lock_id::oid)
$$;

-- Forgets the daemons that hold no lock and no job any more (in owner order,
-- skipping entries another daemon is forgetting right now).
CREATE FUNCTION acs.daemons_forget(caller text) RETURNS integer
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

-- Daemon: takes its own lock on its statement connection (after every
-- connect). False when another session holds it: an earlier session of the
-- same daemon that the server has not yet seen die; try again later.
CREATE FUNCTION acs.daemon_register(owner text) RETURNS boolean
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

-- Daemon: the owners that are gone (their lock is free, and they took it on
-- this server run), other than the caller.
CREATE FUNCTION acs.daemons_gone(caller text) RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT d.owner FROM acs.daemons AS d
     WHERE d.owner <> daemons_gone.caller
       AND d.server_started = pg_postmaster_start_time()
       AND NOT acs.daemon_lock_held(d.lock_id)
$$;
COMMENT ON FUNCTION acs.daemons_gone(text) IS
    'Daemon: daemons whose session ended on this server run (their jobs can be taken over at once)';

-- Daemon: whether a gone daemon still holds jobs of one of these connections
-- (asked every second: a probe per gone daemon); forgets those that hold none.
CREATE FUNCTION acs.takeover_due(caller text, connections text[]) RETURNS boolean
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

-- Claims take over the jobs of gone daemons as well as expired leases, and
-- say who asked for a kill (the log of a job killed while queued names them).
DROP FUNCTION acs.claim_jobs(text, text, integer, integer);
DROP FUNCTION acs.claim_jobs(text, text, integer, integer, boolean);
CREATE FUNCTION acs.claim_jobs(owner text, connection text, max_jobs integer,
                               lease_seconds integer, take_over boolean)
    RETURNS TABLE (id bigint, attempt integer, state text, kind text, application text,
                   amt_user text, queue_name text, job_name text, script_name text,
                   params json, task_id uuid, batch_request_id integer, kill_requested boolean,
                   taken_over boolean, kill_requested_by text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog SET lock_timeout = '500ms'
AS $$
    WITH comm AS (
        SELECT c.comm_state FROM acs.connections AS c WHERE c.name = claim_jobs.connection
    ), gone AS (
        SELECT g.owner FROM acs.daemons_gone(claim_jobs.owner) AS g(owner) WHERE take_over
    ), expired AS (
        SELECT j.id, j.state AS old_state
          FROM acs.jobs AS j
         WHERE take_over AND j.connection = claim_jobs.connection
           AND j.state IN ('starting', 'running')
           AND (j.lease_expires < now() OR j.owner IN (SELECT gone.owner FROM gone))
           AND ((j.state = 'starting' AND (SELECT comm_state FROM comm) = 'enabled')
             OR (j.state = 'running' AND (SELECT comm_state FROM comm) <> 'disabled'))
         ORDER BY j.id
         LIMIT greatest(max_jobs, 0)
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), queued AS (
        SELECT j.id, j.state AS old_state
          FROM acs.jobs AS j
         WHERE j.connection = claim_jobs.connection AND j.state = 'queued'
           -- a queued job to be killed ends without any traffic: whatever the comm state
           AND ((SELECT comm_state FROM comm) = 'enabled' OR j.kill_requested_at IS NOT NULL)
         ORDER BY j.id
         LIMIT greatest(max_jobs - (SELECT count(*) FROM expired), 0)
           FOR NO KEY UPDATE OF j SKIP LOCKED
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
              candidates.old_state <> 'queued', j.kill_requested_by
$$;
COMMENT ON FUNCTION acs.claim_jobs(text, text, integer, integer, boolean) IS
    'Daemon: claims up to max_jobs jobs of a connection (with take_over, those of gone daemons and expired leases first; then queued), with a lease';

-- The four-argument form (0002) stays for callers that always take over.
CREATE FUNCTION acs.claim_jobs(owner text, connection text, max_jobs integer, lease_seconds integer)
    RETURNS TABLE (id bigint, attempt integer, state text, kind text, application text,
                   amt_user text, queue_name text, job_name text, script_name text,
                   params json, task_id uuid, batch_request_id integer, kill_requested boolean,
                   taken_over boolean, kill_requested_by text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT * FROM acs.claim_jobs(owner, connection, max_jobs, lease_seconds, true)
$$;
REVOKE EXECUTE ON FUNCTION acs.claim_jobs(text, text, integer, integer),
                           acs.claim_jobs(text, text, integer, integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.claim_jobs(text, text, integer, integer),
                          acs.claim_jobs(text, text, integer, integer, boolean) TO acs_daemon;

-- A graceful stop: the leases handed back, the entry and its lock gone.
CREATE OR REPLACE FUNCTION acs.release_jobs(owner text) RETURNS integer
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

REVOKE ALL ON acs.daemons FROM PUBLIC;
GRANT SELECT ON acs.daemons TO acs_operator, acs_admin;
REVOKE EXECUTE ON FUNCTION acs.daemons_forget(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION acs.daemon_register(text), acs.daemons_gone(text),
                           acs.takeover_due(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.daemon_register(text), acs.daemons_gone(text),
                          acs.takeover_due(text, text[]) TO acs_daemon;
