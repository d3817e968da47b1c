-- 0003_operations.sql: what admins and operators need -- the connection's
-- settings as the daemon runs them, Full Comm, kill outcomes, retention and
-- the status of every connection.

-------------------------------------------------------------------------------
-- Connection settings: the daemon records what its configuration says, so that
-- SQL (and amtacsctl) can refuse a kill where Allow Kill Job is false, purge by
-- Retain Log Files, and refuse to delete a Batch User that is in use.
-------------------------------------------------------------------------------

ALTER TABLE acs.connections
    ADD COLUMN url             text,
    ADD COLUMN batch_user      text,
    ADD COLUMN allow_kill      boolean NOT NULL DEFAULT false,
    ADD COLUMN retain_log_days integer NOT NULL DEFAULT 30,
    ADD COLUMN configured_at   timestamptz,
    ADD CONSTRAINT connections_retain_log_days_valid CHECK (retain_log_days BETWEEN 1 AND 3650);
COMMENT ON COLUMN acs.connections.url IS 'Batch Server URL, as the daemon''s configuration says';
COMMENT ON COLUMN acs.connections.batch_user IS 'Batch User the connection logs on with';
COMMENT ON COLUMN acs.connections.allow_kill IS 'Allow Kill Job: kill requests are refused when false';
COMMENT ON COLUMN acs.connections.retain_log_days IS 'Retain Log Files: job logs older than this are purged';

-- Daemon: records a configured connection. A new one starts with Full Comm
-- enabled (the admin configured it for use); an existing one keeps the comm
-- state an admin chose.
CREATE FUNCTION acs.configure_connection(name text, url text, batch_user text, allow_kill boolean,
                                         retain_log_days integer)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO acs.connections AS c (name, comm_state, url, batch_user, allow_kill,
                                      retain_log_days, configured_at)
    VALUES (configure_connection.name, 'enabled', configure_connection.url,
            configure_connection.batch_user, configure_connection.allow_kill,
            configure_connection.retain_log_days, now())
    ON CONFLICT ON CONSTRAINT connections_pkey DO UPDATE
       SET url = excluded.url, batch_user = excluded.batch_user,
           allow_kill = excluded.allow_kill, retain_log_days = excluded.retain_log_days,
           configured_at = excluded.configured_at;
END
$$;
COMMENT ON FUNCTION acs.configure_connection(text, text, text, boolean, integer) IS
    'Daemon: records a connection''s settings (a new connection starts with Full Comm enabled)';

-- Daemon: the outcome of a heartbeat (or of a call that failed to reach the server).
CREATE FUNCTION acs.connection_checked(name text, ok boolean, amt_version text, error text)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog
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

-------------------------------------------------------------------------------
-- Full Comm
-------------------------------------------------------------------------------

-- Admin: enabled (Full Comm: jobs start), limited (no new starts; running jobs
-- are followed to their end) or disabled (nothing is sent to the server;
-- queued jobs wait). Returns the previous state. NOTIFY acs_comm tells the
-- daemon at once.
CREATE FUNCTION acs.set_comm(connection text, comm_state text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    before text;
BEGIN
    IF comm_state IS NULL OR comm_state NOT IN ('enabled', 'limited', 'disabled') THEN
        RAISE EXCEPTION 'comm state % is not one of enabled, limited, disabled',
            coalesce(quote_literal(comm_state), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.comm_state INTO before FROM acs.connections AS c
     WHERE c.name = set_comm.connection FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM acs.check_connection(set_comm.connection);
    END IF;
    UPDATE acs.connections AS c SET comm_state = set_comm.comm_state, comm_changed_by = session_user
     WHERE c.name = set_comm.connection;
    RETURN before;
END
$$;
COMMENT ON FUNCTION acs.set_comm(text, text) IS
    'Admin: sets Full Comm (enabled), limited or disabled for a connection; returns the previous state';

-------------------------------------------------------------------------------
-- Kill
-------------------------------------------------------------------------------

ALTER TABLE acs.jobs
    ADD COLUMN kill_sent_at  timestamptz,
    ADD COLUMN kill_error    text,
    ADD COLUMN kill_error_at timestamptz;
COMMENT ON COLUMN acs.jobs.kill_sent_at IS 'When the server accepted the Kill';
COMMENT ON COLUMN acs.jobs.kill_error IS 'Why the last Kill call failed (the job still runs; the daemon retries)';

-- Operator: a kill, refused where the connection's Allow Kill Job is false.
CREATE OR REPLACE FUNCTION acs.request_kill(job_id bigint) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    st   text;
    conn text;
    ok   boolean;
BEGIN
    SELECT j.state, j.connection, c.allow_kill INTO st, conn, ok
      FROM acs.jobs AS j JOIN acs.connections AS c ON c.name = j.connection
     WHERE j.id = request_kill.job_id FOR UPDATE OF j;
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

-- Daemon: the outcome of a Kill call (error NULL: the server accepted it).
CREATE FUNCTION acs.job_kill_outcome(job_id bigint, owner text, attempt integer, error text)
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.jobs AS j
       SET kill_sent_at = CASE WHEN job_kill_outcome.error IS NULL THEN now() ELSE j.kill_sent_at END,
           kill_error = job_kill_outcome.error,
           kill_error_at = CASE WHEN job_kill_outcome.error IS NULL THEN NULL ELSE now() END
     WHERE j.id = job_id AND j.owner = job_kill_outcome.owner
       AND j.attempt = job_kill_outcome.attempt AND j.state IN ('starting', 'running');
    RETURN FOUND;
END
$$;

-------------------------------------------------------------------------------
-- Retention: job logs older than their connection's Retain Log Files days.
-------------------------------------------------------------------------------

-- Deletes at most max_rows expired job logs (small batches keep locks short);
-- returns how many. The job rows stay: the outcome remains, the log goes.
CREATE FUNCTION acs.purge_job_logs(max_rows integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM acs.job_logs AS l
     WHERE l.job_id IN (
        SELECT x.job_id FROM acs.job_logs AS x
          JOIN acs.connections AS c ON c.name = x.connection
         WHERE x.written_at < now() - make_interval(days => c.retain_log_days)
         LIMIT greatest(max_rows, 0)
           FOR UPDATE OF x SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION acs.purge_job_logs(integer) IS
    'Deletes up to max_rows job logs older than their connection''s retain_log_days; returns the count';

-------------------------------------------------------------------------------
-- Status of every connection (amtacsctl comm status).
-------------------------------------------------------------------------------

CREATE VIEW acs.connection_status AS
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
COMMENT ON VIEW acs.connection_status IS
    'Per connection: comm state, whether the server answers, last contact and error, jobs queued and in flight';

-- An index for the per-connection counts of queued jobs exists (jobs_queued_idx);
-- in-flight counts use jobs_claimed_idx.

-- Operator: acknowledges an alert.
CREATE FUNCTION acs.acknowledge_alert(alert_id bigint) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE acs.alerts AS a SET acknowledged_at = now(), acknowledged_by = session_user
     WHERE a.id = alert_id AND a.acknowledged_at IS NULL;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM acs.alerts AS a WHERE a.id = alert_id) THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN FOUND;
END
$$;
