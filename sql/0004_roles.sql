-- 0004_roles.sql: who may do what, enforced by PostgreSQL itself.
--
--   acs_scheduler  enqueue jobs, read their results and logs
--   acs_operator   kill jobs, resolve jobs in doubt, read logs, status and alerts
--   acs_admin      connections' Full Comm, Batch Users (sealed passwords), plus what operators read
--   acs_daemon     what amtacsd needs, nothing more
--
-- The roles are group roles (NOLOGIN): grant them to login roles, e.g.
--   CREATE ROLE opcon LOGIN IN ROLE acs_scheduler;
-- Roles belong to the cluster, not the database, so they are created only
-- when missing. Every function a role is granted runs as SECURITY DEFINER
-- (the schema owner) with a fixed search_path: the roles themselves get no
-- write right on any table, so the only ways to change a job are the
-- functions below, with their checks and fences.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['acs_admin', 'acs_operator', 'acs_scheduler', 'acs_daemon'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;
COMMENT ON ROLE acs_scheduler IS 'amtacs: enqueue jobs, read results and logs';
COMMENT ON ROLE acs_operator IS 'amtacs: kill, resolve in-doubt jobs, read logs, status and alerts';
COMMENT ON ROLE acs_admin IS 'amtacs: Full Comm, Batch Users, and what operators read';
COMMENT ON ROLE acs_daemon IS 'amtacs: the connector daemon';

REVOKE ALL ON SCHEMA acs FROM PUBLIC;
GRANT USAGE ON SCHEMA acs TO acs_admin, acs_operator, acs_scheduler, acs_daemon;
REVOKE ALL ON ALL TABLES IN SCHEMA acs FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA acs FROM PUBLIC;

-- The API functions: no longer callable by everyone, and run as their owner.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'acs'::regnamespace
           AND p.proname IN ('submit_batch_job', 'submit_script_job', 'request_kill',
                             'resolve_in_doubt', 'acknowledge_alert', 'purge_job_logs',
                             'set_comm', 'register_connection', 'configure_connection',
                             'connection_checked', 'claim_jobs', 'renew_leases', 'job_started',
                             'job_progress', 'job_add_messages', 'job_finish', 'job_in_doubt',
                             'job_kill_outcome', 'release_jobs', 'batch_user_secret',
                             'jobs_started', 'jobs_finish')
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER', f);
    END LOOP;
END
$$;

-- What everyone with a role may read: the code table.
GRANT SELECT ON acs.completion_codes TO acs_admin, acs_operator, acs_scheduler, acs_daemon;

-- Schedulers: enqueue, then read outcomes, logs and running messages.
GRANT EXECUTE ON FUNCTION acs.submit_batch_job(text, text, text, text[], text, text, text),
                          acs.submit_script_job(text, text, text, text[], text, text, text)
    TO acs_scheduler;
GRANT SELECT ON acs.jobs, acs.job_results, acs.job_logs, acs.job_messages
    TO acs_scheduler, acs_operator, acs_admin;

-- Operators: kill, resolve, acknowledge, purge; read status and alerts.
GRANT EXECUTE ON FUNCTION acs.request_kill(bigint),
                          acs.resolve_in_doubt(bigint, text, integer, text),
                          acs.acknowledge_alert(bigint),
                          acs.purge_job_logs(integer)
    TO acs_operator, acs_admin;
GRANT SELECT ON acs.connections, acs.connection_status, acs.alerts TO acs_operator, acs_admin;

-- Admins: Full Comm, connections, Batch Users (sealed: a password can be set
-- but never read back in clear; batch_users holds only ciphertext).
GRANT EXECUTE ON FUNCTION acs.set_comm(text, text), acs.register_connection(text, text)
    TO acs_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON acs.batch_users TO acs_admin;

-- The daemon: its own statements, the comm state it obeys, the sealed
-- password of the users it logs on with (through the function), and nothing
-- that an operator or scheduler does.
GRANT EXECUTE ON FUNCTION acs.claim_jobs(text, text, integer, integer),
                          acs.renew_leases(text, bigint[], integer[], integer),
                          acs.job_started(bigint, text, integer, integer),
                          acs.job_progress(bigint, text, integer, integer),
                          acs.job_add_messages(bigint, text, integer, json),
                          acs.job_finish(bigint, text, integer, integer, text, text),
                          acs.jobs_started(text, json),
                          acs.jobs_finish(text, json),
                          acs.job_in_doubt(bigint, text, integer, text),
                          acs.job_kill_outcome(bigint, text, integer, text),
                          acs.release_jobs(text),
                          acs.batch_user_secret(text),
                          acs.configure_connection(text, text, text, boolean, integer),
                          acs.connection_checked(text, boolean, text, text),
                          acs.purge_job_logs(integer)
    TO acs_daemon;
GRANT SELECT (name, comm_state) ON acs.connections TO acs_daemon;
