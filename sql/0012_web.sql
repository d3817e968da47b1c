-- 0012_web.sql: what a web console stands on -- a read-only role, the
-- authenticator pattern, who did what (actor and audit), console users,
-- sessions, API tokens and login throttling.
--
-- The web server (amtacs-web) works like PostgREST: it logs in as a login
-- role made by the admin,
--   CREATE ROLE amtacs_web LOGIN NOINHERIT IN ROLE acs_web PASSWORD '...';
-- which, being NOINHERIT, holds no right of its own. It does SET ROLE acs_web
-- for its own work (the login and session functions below are granted to
-- acs_web alone) and runs each request in a transaction of its own after
--   SET LOCAL ROLE acs_viewer | acs_scheduler | acs_operator | acs_admin;
--   SELECT set_config('acs.actor', NAME, true), set_config('acs.actor_address', ADDRESS, true);
-- so PostgreSQL itself refuses what the user's role may not do, and the
-- functions record the console user (acs.actor()), not the server's login.
-- acs_web is a member of the four human roles and never of acs_daemon, so
-- SET ROLE acs_daemon is refused to it.
--
-- Passwords never reach the database: amtacsctl (or the web server) hashes
-- them with libsodium's crypto_pwhash_str (argon2id) and only the hash is
-- stored. Session cookies and API tokens are 32 random bytes; only their
-- SHA-256 is stored, so a copy of the database logs nobody in.

-------------------------------------------------------------------------------
-- Roles
-------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'acs_viewer') THEN
        CREATE ROLE acs_viewer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'acs_web') THEN
        CREATE ROLE acs_web NOLOGIN NOINHERIT;
    END IF;
END
$$;
-- (a pre-existing acs_web is made what it must be: no login, no inherited right)
ALTER ROLE acs_web NOLOGIN NOINHERIT;
GRANT acs_viewer, acs_scheduler, acs_operator, acs_admin TO acs_web;
COMMENT ON ROLE acs_viewer IS 'amtacs: read jobs, results, logs, connections, status and alerts; change nothing';
COMMENT ON ROLE acs_web IS
    'amtacs: the web server''s own role (NOINHERIT); SET LOCAL ROLE to a user''s role per request';

GRANT USAGE ON SCHEMA acs TO acs_viewer, acs_web;
GRANT SELECT ON acs.completion_codes, acs.jobs, acs.job_results, acs.job_logs, acs.job_messages,
                acs.connections, acs.connection_status, acs.alerts
    TO acs_viewer;
GRANT EXECUTE ON FUNCTION acs.job_document(bigint), acs.job_log_text(bigint),
                          acs.active_job_counts()
    TO acs_viewer;

-------------------------------------------------------------------------------
-- The actor: who a change is recorded for.
-------------------------------------------------------------------------------

-- The setting acs.actor is believed only from a session whose login is a
-- member of acs_web: anyone may set a custom setting, so from a plain SQL
-- session it would be a lie for the asking. (A superuser is a member of
-- every role; it can write anything anyway.)
CREATE FUNCTION acs.actor() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT CASE WHEN pg_has_role(session_user, 'acs_web', 'MEMBER')
                THEN coalesce(nullif(current_setting('acs.actor', true), ''), session_user::text)
                ELSE session_user::text END
$$;
COMMENT ON FUNCTION acs.actor() IS
    'Who acts: the setting acs.actor when the session logged in as a member of acs_web, else session_user';

CREATE FUNCTION acs.actor_address() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT CASE WHEN pg_has_role(session_user, 'acs_web', 'MEMBER')
                THEN nullif(current_setting('acs.actor_address', true), '') END
$$;
COMMENT ON FUNCTION acs.actor_address() IS
    'The web client''s address (setting acs.actor_address) for a session of acs_web; NULL otherwise';

-- The role the caller acts in: the SET [LOCAL] ROLE in force, else the login.
-- Read from the setting "role", which a SECURITY DEFINER function does not
-- change (its current_user is the function's owner).
CREATE FUNCTION acs.actor_role() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('role'), 'none'), session_user::text)
$$;
COMMENT ON FUNCTION acs.actor_role() IS
    'The role the caller acts in (SET ROLE in force, else its login), also inside SECURITY DEFINER functions';

REVOKE ALL ON FUNCTION acs.actor(), acs.actor_address(), acs.actor_role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.actor(), acs.actor_address(), acs.actor_role()
    TO acs_viewer, acs_scheduler, acs_operator, acs_admin, acs_web;

ALTER TABLE acs.connections ALTER COLUMN comm_changed_by SET DEFAULT acs.actor();

-------------------------------------------------------------------------------
-- Audit: one row per action of a person (never the daemon's own work).
-------------------------------------------------------------------------------

CREATE TABLE acs.audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    address text,
    role    text        NOT NULL,
    action  text        NOT NULL,
    target  text,
    detail  jsonb
);
COMMENT ON TABLE acs.audit IS
    'Who did what: one row per action through the API functions; written by them alone, read by acs_admin';
COMMENT ON COLUMN acs.audit.actor IS 'acs.actor(): the console user through acs_web, else the login';
COMMENT ON COLUMN acs.audit.address IS 'The web client''s address; NULL for direct SQL';
COMMENT ON COLUMN acs.audit.role IS 'The role the action ran under (SET LOCAL ROLE of the web server, else the login)';
COMMENT ON COLUMN acs.audit.action IS
    'submit, kill, resolve, ack, comm, purge, batch_user_set, batch_user_delete, user_*, token_*, login';
CREATE INDEX audit_at_idx ON acs.audit (at);
GRANT SELECT ON acs.audit TO acs_admin;

-- The one place an audit row is made. Callable by no role: the SECURITY
-- DEFINER functions call it as their owner.
CREATE FUNCTION acs.audit_record(action text, target text, detail jsonb DEFAULT NULL)
    RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$
    INSERT INTO acs.audit (actor, address, role, action, target, detail)
    VALUES (acs.actor(), acs.actor_address(), acs.actor_role(),
            audit_record.action, audit_record.target, audit_record.detail)
$$;
COMMENT ON FUNCTION acs.audit_record(text, text, jsonb) IS
    'Writes one audit row for the current actor, address and role (called by the API functions only)';
REVOKE ALL ON FUNCTION acs.audit_record(text, text, jsonb) FROM PUBLIC;

-------------------------------------------------------------------------------
-- The API functions, from their latest definitions: the actor instead of
-- session_user, and an audit row. SECURITY DEFINER is restated (CREATE OR
-- REPLACE takes the attributes of the new text); grants are kept.
-------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION acs.connections_stamp_comm() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.comm_state IS DISTINCT FROM OLD.comm_state THEN
        NEW.comm_changed_at := now();
        IF NEW.comm_changed_by IS NOT DISTINCT FROM OLD.comm_changed_by THEN
            NEW.comm_changed_by := acs.actor();
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION acs.connections_stamp_comm() IS
    'Stamps a comm_state change with the time and (unless the writer set it) acs.actor()';

CREATE OR REPLACE FUNCTION acs.submit_batch_job(
    connection   text,
    application  text,
    job_name     text,
    task_values  text[] DEFAULT '{}',
    queue_name   text   DEFAULT NULL,
    amt_user     text   DEFAULT NULL,
    external_ref text   DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM acs.check_connection(submit_batch_job.connection);
    IF submit_batch_job.application IS NULL OR submit_batch_job.application = '' THEN
        RAISE EXCEPTION 'application is required: name the AMT application the job belongs to (e.g. DEMO2)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_name('application', submit_batch_job.application, 128, true);
    IF submit_batch_job.job_name IS NULL THEN
        RAISE EXCEPTION 'job_name is required for a batch job (the name of a job defined in the AMT Batch Server)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_name('job_name', submit_batch_job.job_name, 128, true);
    PERFORM acs.check_pair_list('task_values', 'task value', submit_batch_job.task_values);
    PERFORM acs.check_name('queue_name', submit_batch_job.queue_name, 128, false);
    PERFORM acs.check_name('amt_user', submit_batch_job.amt_user, 128, false);
    PERFORM acs.check_name('external_ref', submit_batch_job.external_ref, 256, false);

    INSERT INTO acs.jobs (connection, kind, application, job_name, task_values,
                          queue_name, amt_user, external_ref)
    VALUES (submit_batch_job.connection, 'batch', submit_batch_job.application,
            submit_batch_job.job_name, coalesce(submit_batch_job.task_values, '{}'),
            submit_batch_job.queue_name, submit_batch_job.amt_user, submit_batch_job.external_ref)
    RETURNING id INTO new_id;
    -- the INSERT trigger sends NOTIFY acs_jobs
    PERFORM acs.audit_record('submit', new_id::text,
        jsonb_build_object('connection', submit_batch_job.connection, 'kind', 'batch',
                           'application', submit_batch_job.application,
                           'name', submit_batch_job.job_name));
    RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION acs.submit_script_job(
    connection        text,
    application       text,
    script_name       text,
    script_parameters text[] DEFAULT '{}',
    queue_name        text   DEFAULT NULL,
    amt_user          text   DEFAULT NULL,
    external_ref      text   DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM acs.check_connection(submit_script_job.connection);
    IF submit_script_job.application IS NULL OR submit_script_job.application = '' THEN
        RAISE EXCEPTION 'application is required: name the AMT application the job belongs to (e.g. DEMO2)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_name('application', submit_script_job.application, 128, true);
    IF submit_script_job.script_name IS NULL THEN
        RAISE EXCEPTION 'script_name is required for a script job (the script file to run on the AMT Batch Server)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_name('script_name', submit_script_job.script_name, 1024, true);
    PERFORM acs.check_pair_list('script_parameters', 'script parameter', submit_script_job.script_parameters);
    PERFORM acs.check_name('queue_name', submit_script_job.queue_name, 128, false);
    PERFORM acs.check_name('amt_user', submit_script_job.amt_user, 128, false);
    PERFORM acs.check_name('external_ref', submit_script_job.external_ref, 256, false);

    INSERT INTO acs.jobs (connection, kind, application, script_name, script_parameters,
                          queue_name, amt_user, external_ref)
    VALUES (submit_script_job.connection, 'script', submit_script_job.application,
            submit_script_job.script_name, coalesce(submit_script_job.script_parameters, '{}'),
            submit_script_job.queue_name, submit_script_job.amt_user, submit_script_job.external_ref)
    RETURNING id INTO new_id;
    PERFORM acs.audit_record('submit', new_id::text,
        jsonb_build_object('connection', submit_script_job.connection, 'kind', 'script',
                           'application', submit_script_job.application,
                           'name', submit_script_job.script_name));
    RETURN new_id;
END
$$;

-- As in 0009_lock_order.sql; request_kills calls it per job, so a bulk kill
-- is audited job by job.
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
       SET kill_requested_at = now(), kill_requested_by = acs.actor()
     WHERE j.id = request_kill.job_id AND j.kill_requested_at IS NULL;
    PERFORM acs.audit_record('kill', job_id::text,
        jsonb_build_object('connection', conn, 'state', st, 'repeated', NOT FOUND));
    RETURN st;
END
$$;

-- As in 0011_notify_hints.sql.
CREATE OR REPLACE FUNCTION acs.resolve_in_doubt(job_id bigint, action text,
                                                batch_request_id integer DEFAULT NULL,
                                                log text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
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
                        || acs.actor() || ' as failed: ' || coalesce(j.error, '') || E'\n')
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
    UPDATE acs.alerts AS a SET acknowledged_at = now(), acknowledged_by = acs.actor()
     WHERE a.job_id = resolve_in_doubt.job_id AND a.name = 'START_IN_DOUBT' AND a.acknowledged_at IS NULL;
    PERFORM pg_notify('acs_jobs', '');
    PERFORM acs.audit_record('resolve', job_id::text,
        jsonb_build_object('action', action, 'batch_request_id', batch_request_id));
    RETURN action;
END
$$;

-- As in 0003_operations.sql.
CREATE OR REPLACE FUNCTION acs.acknowledge_alert(alert_id bigint) RETURNS boolean
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

-- As in 0009_lock_order.sql.
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
    UPDATE acs.connections AS c SET comm_state = set_comm.comm_state, comm_changed_by = acs.actor()
     WHERE c.name = set_comm.connection;
    PERFORM acs.audit_record('comm', set_comm.connection,
        jsonb_build_object('from', before, 'to', set_comm.comm_state));
    RETURN before;
END
$$;

-- As in 0009_lock_order.sql. The daemon purges on its own schedule: that is
-- its own work, not an action of a person, and is not audited.
CREATE OR REPLACE FUNCTION acs.purge_job_logs(max_rows integer DEFAULT 1000) RETURNS integer
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

-- Batch Users are written by admins with INSERT, UPDATE and DELETE on the
-- table (amtacsctl batch-user, rekey): the audit row comes from a trigger.
CREATE FUNCTION acs.batch_users_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM acs.audit_record('batch_user_delete', OLD.name, NULL);
    ELSIF TG_OP = 'INSERT' OR NEW.sealed_password IS DISTINCT FROM OLD.sealed_password
          OR NEW.key_id IS DISTINCT FROM OLD.key_id THEN
        PERFORM acs.audit_record('batch_user_set', NEW.name, jsonb_build_object('key_id', NEW.key_id));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.batch_users_audit() IS
    'Audits a Batch User''s password set (or re-sealed) or deleted';
REVOKE ALL ON FUNCTION acs.batch_users_audit() FROM PUBLIC;
CREATE TRIGGER batch_users_audit AFTER INSERT OR UPDATE OR DELETE ON acs.batch_users
    FOR EACH ROW EXECUTE FUNCTION acs.batch_users_audit();

-------------------------------------------------------------------------------
-- Console users
-------------------------------------------------------------------------------

-- A console user's or an API token's name: short, printable, no spaces.
CREATE FUNCTION acs.is_valid_web_name(t text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT t ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'
$$;
COMMENT ON FUNCTION acs.is_valid_web_name(text) IS
    'True for 1-64 characters of letters, digits, . _ @ -, starting with a letter or digit';

CREATE FUNCTION acs.is_valid_web_role(t text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT t IN ('viewer', 'scheduler', 'operator', 'admin')
$$;
COMMENT ON FUNCTION acs.is_valid_web_role(text) IS
    'True for viewer, scheduler, operator or admin (the web server runs requests as acs_<role>)';

CREATE TABLE acs.web_users (
    name                text        PRIMARY KEY,
    password_hash       text        NOT NULL,
    role                text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text        NOT NULL,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    disabled_at         timestamptz,
    CONSTRAINT web_users_name_valid CHECK (acs.is_valid_web_name(name)),
    CONSTRAINT web_users_password_hash_argon2id
        CHECK (password_hash LIKE '$argon2id$%' AND length(password_hash) <= 512),
    CONSTRAINT web_users_role_valid CHECK (acs.is_valid_web_role(role))
);
COMMENT ON TABLE acs.web_users IS
    'Web console users; password_hash is libsodium crypto_pwhash_str (argon2id), never a password';
COMMENT ON COLUMN acs.web_users.role IS 'viewer, scheduler, operator or admin: requests run as acs_<role>';
COMMENT ON COLUMN acs.web_users.disabled_at IS 'Set: the user cannot log in and its sessions are ended';

-- Raises a clear error unless name and role are acceptable.
CREATE FUNCTION acs.check_web_user(name text, role text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF name IS NULL OR NOT acs.is_valid_web_name(name) THEN
        RAISE EXCEPTION 'name % is not valid: 1 to 64 letters, digits, . _ @ -, starting with a letter or digit',
            coalesce(quote_literal(name), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF role IS NOT NULL AND NOT acs.is_valid_web_role(role) THEN
        RAISE EXCEPTION 'role % is not one of viewer, scheduler, operator, admin', quote_literal(role)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION acs.check_web_user(text, text) IS
    'Raises a descriptive error unless name (and role, if not NULL) are valid for a user or token';

CREATE FUNCTION acs.check_password_hash(password_hash text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%' OR length(password_hash) > 512 THEN
        RAISE EXCEPTION 'the password hash is not an argon2id hash (crypto_pwhash_str); the database takes no password'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION acs.check_password_hash(text) IS
    'Raises an error (never showing the value) unless it is a crypto_pwhash_str argon2id hash';

CREATE FUNCTION acs.web_user_add(name text, role text, password_hash text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM acs.check_web_user(web_user_add.name, web_user_add.role);
    IF web_user_add.role IS NULL THEN
        RAISE EXCEPTION 'role is required: viewer, scheduler, operator or admin'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_password_hash(web_user_add.password_hash);
    INSERT INTO acs.web_users (name, password_hash, role, created_by)
    VALUES (web_user_add.name, web_user_add.password_hash, web_user_add.role, acs.actor())
    ON CONFLICT ON CONSTRAINT web_users_pkey DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % exists already', web_user_add.name USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM acs.audit_record('user_add', web_user_add.name,
                             jsonb_build_object('role', web_user_add.role));
END
$$;
COMMENT ON FUNCTION acs.web_user_add(text, text, text) IS
    'Admin: adds a console user with a role and an argon2id password hash';

-- Ends the open sessions of a user; returns how many.
CREATE FUNCTION acs.web_sessions_end_for(user_name text) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE acs.web_sessions AS s SET ended_at = now()
     WHERE s.user_name = web_sessions_end_for.user_name AND s.ended_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.web_sessions_end_for(text) IS
    'Ends every open session of a user (password changed, user disabled); returns how many';
REVOKE ALL ON FUNCTION acs.web_sessions_end_for(text) FROM PUBLIC;

-- Raises no_data_found unless the user exists (locks its row).
CREATE FUNCTION acs.web_user_lock(name text) RETURNS acs.web_users
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    u acs.web_users;
BEGIN
    SELECT * INTO u FROM acs.web_users AS w WHERE w.name = web_user_lock.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user %', coalesce(quote_literal(name), 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
    RETURN u;
END
$$;
COMMENT ON FUNCTION acs.web_user_lock(text) IS 'Locks a console user''s row; raises no_data_found if there is none';
REVOKE ALL ON FUNCTION acs.web_user_lock(text) FROM PUBLIC;

CREATE FUNCTION acs.web_user_set_password(name text, password_hash text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    ended integer;
BEGIN
    PERFORM acs.check_password_hash(web_user_set_password.password_hash);
    PERFORM acs.web_user_lock(web_user_set_password.name);
    UPDATE acs.web_users AS w
       SET password_hash = web_user_set_password.password_hash, password_changed_at = now()
     WHERE w.name = web_user_set_password.name;
    ended := acs.web_sessions_end_for(web_user_set_password.name);
    PERFORM acs.audit_record('user_passwd', web_user_set_password.name,
                             jsonb_build_object('sessions_ended', ended));
    RETURN ended;
END
$$;
COMMENT ON FUNCTION acs.web_user_set_password(text, text) IS
    'Admin: sets a console user''s password hash and ends its sessions; returns how many were ended';

CREATE FUNCTION acs.web_user_set_role(name text, role text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    u acs.web_users;
BEGIN
    PERFORM acs.check_web_user(web_user_set_role.name, web_user_set_role.role);
    IF web_user_set_role.role IS NULL THEN
        RAISE EXCEPTION 'role is required: viewer, scheduler, operator or admin'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    u := acs.web_user_lock(web_user_set_role.name);
    UPDATE acs.web_users AS w SET role = web_user_set_role.role WHERE w.name = web_user_set_role.name;
    PERFORM acs.audit_record('user_role', web_user_set_role.name,
                             jsonb_build_object('from', u.role, 'to', web_user_set_role.role));
    RETURN u.role;
END
$$;
COMMENT ON FUNCTION acs.web_user_set_role(text, text) IS
    'Admin: changes a console user''s role (its sessions take it at their next request); returns the old one';

CREATE FUNCTION acs.web_user_disable(name text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    ended integer;
BEGIN
    PERFORM acs.web_user_lock(web_user_disable.name);
    UPDATE acs.web_users AS w SET disabled_at = coalesce(w.disabled_at, now())
     WHERE w.name = web_user_disable.name;
    ended := acs.web_sessions_end_for(web_user_disable.name);
    PERFORM acs.audit_record('user_disable', web_user_disable.name,
                             jsonb_build_object('sessions_ended', ended));
    RETURN ended;
END
$$;
COMMENT ON FUNCTION acs.web_user_disable(text) IS
    'Admin: disables a console user (no login) and ends its sessions; returns how many were ended';

CREATE FUNCTION acs.web_user_enable(name text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM acs.web_user_lock(web_user_enable.name);
    UPDATE acs.web_users AS w SET disabled_at = NULL WHERE w.name = web_user_enable.name;
    PERFORM acs.audit_record('user_enable', web_user_enable.name, NULL);
END
$$;
COMMENT ON FUNCTION acs.web_user_enable(text) IS 'Admin: lets a disabled console user log in again';

-- (a view runs as its owner: admins read the users through it, never the hashes)
CREATE VIEW acs.web_user_list AS
SELECT w.name, w.role, w.created_at, w.created_by, w.password_changed_at, w.disabled_at
  FROM acs.web_users AS w;
COMMENT ON VIEW acs.web_user_list IS 'Console users without their password hashes (for admins)';

CREATE FUNCTION acs.web_user_for_login(name text)
    RETURNS TABLE (password_hash text, role text, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT w.password_hash, w.role, w.disabled_at IS NOT NULL
      FROM acs.web_users AS w WHERE w.name = web_user_for_login.name
$$;
COMMENT ON FUNCTION acs.web_user_for_login(text) IS
    'Web server: the hash to verify a login against, the role and whether the user is disabled; no row if unknown';

-------------------------------------------------------------------------------
-- Sessions of the console: the cookie is 32 random bytes; its SHA-256 is the key.
-------------------------------------------------------------------------------

CREATE TABLE acs.web_sessions (
    token_hash   bytea       PRIMARY KEY,
    user_name    text        NOT NULL
                 CONSTRAINT web_sessions_user_name_fkey REFERENCES acs.web_users (name)
                 ON UPDATE CASCADE ON DELETE CASCADE,
    csrf_token   text        NOT NULL,
    address      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    idle_seconds integer     NOT NULL,
    ended_at     timestamptz,
    CONSTRAINT web_sessions_token_hash_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT web_sessions_csrf_token_valid CHECK (length(csrf_token) BETWEEN 16 AND 256),
    CONSTRAINT web_sessions_address_valid CHECK (address IS NULL OR length(address) <= 256),
    CONSTRAINT web_sessions_idle_seconds_valid CHECK (idle_seconds > 0)
);
COMMENT ON TABLE acs.web_sessions IS
    'Console sessions by the SHA-256 of their cookie; valid until ended, expires_at, or idle_seconds without a request';
COMMENT ON COLUMN acs.web_sessions.expires_at IS 'Absolute end, whatever the activity';
COMMENT ON COLUMN acs.web_sessions.last_seen_at IS 'Last request (updated at most every 5 seconds)';
CREATE INDEX web_sessions_user_name_idx ON acs.web_sessions (user_name) WHERE ended_at IS NULL;

CREATE FUNCTION acs.web_sessions_purge() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM acs.web_sessions AS s
     WHERE s.token_hash IN (
        SELECT x.token_hash FROM acs.web_sessions AS x
         WHERE x.ended_at IS NOT NULL OR x.expires_at <= now()
            OR x.last_seen_at + make_interval(secs => x.idle_seconds) <= now()
         LIMIT 1000
           FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.web_sessions_purge() IS
    'Deletes up to 1000 ended, expired or idle sessions; returns how many';

CREATE FUNCTION acs.web_session_start(user_name text, token_hash bytea, csrf_token text,
                                      address text, idle_seconds integer, lifetime_seconds integer)
    RETURNS timestamptz
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    u acs.web_users;
    expires timestamptz;
BEGIN
    IF idle_seconds IS NULL OR idle_seconds <= 0 OR lifetime_seconds IS NULL OR lifetime_seconds <= 0 THEN
        RAISE EXCEPTION 'idle_seconds and lifetime_seconds must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF token_hash IS NULL OR octet_length(token_hash) <> 32 THEN
        RAISE EXCEPTION 'token_hash must be a SHA-256 (32 bytes)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO u FROM acs.web_users AS w WHERE w.name = web_session_start.user_name FOR KEY SHARE;
    IF NOT FOUND OR u.disabled_at IS NOT NULL THEN
        RAISE EXCEPTION 'user % does not exist or is disabled', coalesce(quote_literal(user_name), 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM acs.web_sessions_purge();
    expires := now() + make_interval(secs => lifetime_seconds);
    INSERT INTO acs.web_sessions (token_hash, user_name, csrf_token, address, expires_at, idle_seconds)
    VALUES (web_session_start.token_hash, web_session_start.user_name, web_session_start.csrf_token,
            web_session_start.address, expires, web_session_start.idle_seconds);
    PERFORM acs.audit_record('login', web_session_start.user_name,
                             jsonb_build_object('address', web_session_start.address));
    RETURN expires;
END
$$;
COMMENT ON FUNCTION acs.web_session_start(text, bytea, text, text, integer, integer) IS
    'Web server: opens a session for a user whose password it verified; returns when it expires at the latest';

CREATE FUNCTION acs.web_session_get(token_hash bytea)
    RETURNS TABLE (user_name text, role text, csrf_token text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    seen timestamptz;
BEGIN
    SELECT s.user_name, u.role, s.csrf_token, s.last_seen_at
      INTO web_session_get.user_name, web_session_get.role, web_session_get.csrf_token, seen
      FROM acs.web_sessions AS s JOIN acs.web_users AS u ON u.name = s.user_name
     WHERE s.token_hash = web_session_get.token_hash AND s.ended_at IS NULL
       AND s.expires_at > now() AND s.last_seen_at + make_interval(secs => s.idle_seconds) > now()
       AND u.disabled_at IS NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- at most one write per session every 5 seconds, however busy it is
    IF seen < now() - interval '5 seconds' THEN
        UPDATE acs.web_sessions AS s SET last_seen_at = now()
         WHERE s.token_hash = web_session_get.token_hash AND s.last_seen_at < now() - interval '5 seconds';
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION acs.web_session_get(bytea) IS
    'Web server: the user, role and CSRF token of a valid session (not ended, expired, idle or disabled); no row otherwise';

CREATE FUNCTION acs.web_session_end(token_hash bytea) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.web_sessions AS s SET ended_at = now()
     WHERE s.token_hash = web_session_end.token_hash AND s.ended_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION acs.web_session_end(bytea) IS 'Web server: ends a session (logout); true if it was open';

-------------------------------------------------------------------------------
-- API tokens: "amtacs_" + base64url of 32 random bytes; its SHA-256 is stored.
-------------------------------------------------------------------------------

CREATE TABLE acs.api_tokens (
    name         text        PRIMARY KEY,
    token_hash   bytea       NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
    role         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_tokens_name_valid CHECK (acs.is_valid_web_name(name)),
    CONSTRAINT api_tokens_token_hash_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_tokens_role_valid CHECK (acs.is_valid_web_role(role))
);
COMMENT ON TABLE acs.api_tokens IS
    'API tokens for programs; token_hash is the SHA-256 of the token, which is shown once and never stored';
COMMENT ON COLUMN acs.api_tokens.last_used_at IS 'Last use (updated at most once a minute)';

CREATE FUNCTION acs.api_token_create(name text, role text, token_hash bytea) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM acs.check_web_user(api_token_create.name, api_token_create.role);
    IF api_token_create.role IS NULL THEN
        RAISE EXCEPTION 'role is required: viewer, scheduler, operator or admin'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF api_token_create.token_hash IS NULL OR octet_length(api_token_create.token_hash) <> 32 THEN
        RAISE EXCEPTION 'token_hash must be a SHA-256 (32 bytes)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO acs.api_tokens (name, token_hash, role, created_by)
    VALUES (api_token_create.name, api_token_create.token_hash, api_token_create.role, acs.actor())
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'token % exists already (revoked tokens keep their name)', api_token_create.name
            USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM acs.audit_record('token_create', api_token_create.name,
                             jsonb_build_object('role', api_token_create.role));
END
$$;
COMMENT ON FUNCTION acs.api_token_create(text, text, bytea) IS
    'Admin: records an API token by the SHA-256 of its value, with a role';

CREATE FUNCTION acs.api_token_revoke(name text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.api_tokens AS t SET revoked_at = now()
     WHERE t.name = api_token_revoke.name AND t.revoked_at IS NULL;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM acs.api_tokens AS t WHERE t.name = api_token_revoke.name) THEN
            RAISE EXCEPTION 'no token %', coalesce(quote_literal(name), 'NULL') USING ERRCODE = 'no_data_found';
        END IF;
        RETURN false;
    END IF;
    PERFORM acs.audit_record('token_revoke', api_token_revoke.name, NULL);
    RETURN true;
END
$$;
COMMENT ON FUNCTION acs.api_token_revoke(text) IS
    'Admin: revokes an API token for good; false if it was revoked already';

CREATE VIEW acs.api_token_list AS
SELECT t.name, t.role, t.created_at, t.created_by, t.revoked_at, t.last_used_at
  FROM acs.api_tokens AS t;
COMMENT ON VIEW acs.api_token_list IS 'API tokens without their hashes (for admins)';

CREATE FUNCTION acs.api_token_get(token_hash bytea) RETURNS TABLE (name text, role text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    used timestamptz;
BEGIN
    SELECT t.name, t.role, t.last_used_at INTO api_token_get.name, api_token_get.role, used
      FROM acs.api_tokens AS t
     WHERE t.token_hash = api_token_get.token_hash AND t.revoked_at IS NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF used IS NULL OR used < now() - interval '1 minute' THEN
        UPDATE acs.api_tokens AS t SET last_used_at = now()
         WHERE t.token_hash = api_token_get.token_hash
           AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute');
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION acs.api_token_get(bytea) IS
    'Web server: the name and role of the token with this SHA-256; no row if unknown or revoked';

-------------------------------------------------------------------------------
-- Login throttling, shared by every web server through the database.
--
-- Per user name (known or not, so that the answer tells nothing about which
-- names exist) and per client address, failures are counted while they come
-- less than 15 minutes apart. From the 5th failure of a name, or the 20th of
-- an address, the next try must wait 1 s after the last failure, then 2, 4,
-- ... doubling per further failure up to 15 minutes. A success clears the
-- name's count (not the address's: one good password must not unlock
-- guessing at other names from there).
-------------------------------------------------------------------------------

CREATE TABLE acs.web_login_failures (
    kind     text        NOT NULL,
    key      text        NOT NULL,
    failures integer     NOT NULL,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL,
    CONSTRAINT web_login_failures_pkey PRIMARY KEY (kind, key),
    CONSTRAINT web_login_failures_kind_valid CHECK (kind IN ('user', 'address')),
    CONSTRAINT web_login_failures_key_valid CHECK (length(key) <= 256)
);
COMMENT ON TABLE acs.web_login_failures IS
    'Failed console logins per user name and per address (login throttling; see acs.web_login_wait)';

-- The wait a key's failures impose now, in whole seconds.
CREATE FUNCTION acs.web_login_delay(failures integer, last_at timestamptz, threshold integer)
    RETURNS integer
    LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN failures IS NULL OR failures < threshold OR last_at < now() - interval '15 minutes' THEN 0
        ELSE greatest(0, ceil(extract(epoch FROM
                 last_at + make_interval(secs => least(900, power(2, least(failures - threshold, 10))))
                 - now())))::integer
    END
$$;
COMMENT ON FUNCTION acs.web_login_delay(integer, timestamptz, integer) IS
    'Seconds left to wait: 0 below threshold failures, else 1 s doubling per failure up to 900 s after last_at';
REVOKE ALL ON FUNCTION acs.web_login_delay(integer, timestamptz, integer) FROM PUBLIC;

CREATE FUNCTION acs.web_login_wait(user_name text, address text) RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT greatest(
        coalesce((SELECT acs.web_login_delay(f.failures, f.last_at, 5) FROM acs.web_login_failures AS f
                   WHERE f.kind = 'user' AND f.key = left(web_login_wait.user_name, 256)), 0),
        coalesce((SELECT acs.web_login_delay(f.failures, f.last_at, 20) FROM acs.web_login_failures AS f
                   WHERE f.kind = 'address' AND f.key = left(web_login_wait.address, 256)), 0))
$$;
COMMENT ON FUNCTION acs.web_login_wait(text, text) IS
    'Web server: seconds to wait before the next login try for this name and address (0: may try)';

CREATE FUNCTION acs.web_login_record(user_name text, address text, ok boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF ok THEN
        DELETE FROM acs.web_login_failures AS f
         WHERE f.kind = 'user' AND f.key = left(web_login_record.user_name, 256);
        RETURN;
    END IF;
    -- what nobody has failed for a while is forgotten (the table stays small)
    DELETE FROM acs.web_login_failures AS f
     WHERE f.key IN (SELECT x.key FROM acs.web_login_failures AS x
                      WHERE x.last_at < now() - interval '15 minutes' LIMIT 100)
       AND f.last_at < now() - interval '15 minutes';
    INSERT INTO acs.web_login_failures AS f (kind, key, failures, first_at, last_at)
    SELECT k.kind, k.key, 1, now(), now()
      FROM (VALUES ('user', left(web_login_record.user_name, 256)),
                   ('address', left(web_login_record.address, 256))) AS k (kind, key)
     WHERE k.key IS NOT NULL
     ORDER BY k.kind DESC
    ON CONFLICT ON CONSTRAINT web_login_failures_pkey DO UPDATE
       SET failures = CASE WHEN f.last_at < now() - interval '15 minutes' THEN 1 ELSE f.failures + 1 END,
           first_at = CASE WHEN f.last_at < now() - interval '15 minutes' THEN now() ELSE f.first_at END,
           last_at = now();
END
$$;
COMMENT ON FUNCTION acs.web_login_record(text, text, boolean) IS
    'Web server: records a login try; a failure counts for the name and the address, a success clears the name';

-------------------------------------------------------------------------------
-- Rights
-------------------------------------------------------------------------------

REVOKE ALL ON acs.audit, acs.web_users, acs.web_sessions, acs.api_tokens, acs.web_login_failures,
              acs.web_user_list, acs.api_token_list
    FROM PUBLIC;
REVOKE ALL ON FUNCTION acs.is_valid_web_name(text), acs.is_valid_web_role(text),
                       acs.check_web_user(text, text), acs.check_password_hash(text),
                       acs.web_user_add(text, text, text), acs.web_user_set_password(text, text),
                       acs.web_user_set_role(text, text), acs.web_user_disable(text),
                       acs.web_user_enable(text), acs.web_user_for_login(text),
                       acs.web_sessions_purge(), acs.web_session_start(text, bytea, text, text, integer, integer),
                       acs.web_session_get(bytea), acs.web_session_end(bytea),
                       acs.api_token_create(text, text, bytea), acs.api_token_revoke(text),
                       acs.api_token_get(bytea), acs.web_login_wait(text, text),
                       acs.web_login_record(text, text, boolean)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION acs.web_user_add(text, text, text), acs.web_user_set_password(text, text),
                          acs.web_user_set_role(text, text), acs.web_user_disable(text),
                          acs.web_user_enable(text), acs.api_token_create(text, text, bytea),
                          acs.api_token_revoke(text), acs.web_sessions_purge()
    TO acs_admin;
GRANT SELECT ON acs.web_user_list, acs.api_token_list TO acs_admin;

GRANT EXECUTE ON FUNCTION acs.web_user_for_login(text),
                          acs.web_session_start(text, bytea, text, text, integer, integer),
                          acs.web_session_get(bytea), acs.web_session_end(bytea),
                          acs.web_sessions_purge(), acs.api_token_get(bytea),
                          acs.web_login_wait(text, text), acs.web_login_record(text, text, boolean)
    TO acs_web;
