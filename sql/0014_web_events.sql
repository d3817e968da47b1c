-- 0014_web_events.sql: what amtacs-web's event stream (GET /api/v1/events)
-- reads.
--
-- A job's state changes are found by the transaction that made them, not by
-- a notification per change: acs.jobs.state_xid is the id (xid8) of the
-- transaction that last set the job's state. A reader takes, in one
-- statement, the jobs whose state_xid lies between its cursor and the
-- oldest transaction still running (pg_snapshot_xmin of its snapshot): every
-- transaction below that horizon has ended, so the set of such rows is final
-- and a cursor that moves up to it never skips a change that commits late
-- nor reads one twice. Many changes are read at once, in (state_xid, id)
-- order, on the index below.
--
-- The cost on the daemon's hot path: a BEFORE row trigger that fires only
-- when the state really changes and stores one number, an AFTER statement
-- trigger per statement that may change a state, and NOTIFY acs_job_state
-- with an empty payload, which PostgreSQL folds into one per transaction.
-- As every notification (0011), it is a hint: a listener reads the database.

ALTER TABLE acs.jobs ADD COLUMN state_xid xid8;
-- set apart from ADD COLUMN: a volatile default there would rewrite the table
ALTER TABLE acs.jobs ALTER COLUMN state_xid SET DEFAULT pg_current_xact_id();
COMMENT ON COLUMN acs.jobs.state_xid IS
    'The transaction that last set the state (NULL for jobs last changed before migration 14)';
CREATE INDEX jobs_state_xid_idx ON acs.jobs (state_xid, id);

CREATE FUNCTION acs.jobs_stamp_state() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    NEW.state_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION acs.jobs_stamp_state() IS
    'Records the transaction that changes a job''s state (acs.jobs.state_xid)';
CREATE TRIGGER jobs_stamp_state BEFORE UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION acs.jobs_stamp_state();

CREATE FUNCTION acs.jobs_notify_state() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_job_state', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION acs.jobs_notify_state() IS
    'NOTIFY acs_job_state (empty payload, a hint) after a statement that may have changed job states';
CREATE TRIGGER jobs_notify_state_insert AFTER INSERT ON acs.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION acs.jobs_notify_state();
CREATE TRIGGER jobs_notify_state_update AFTER UPDATE OF state ON acs.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION acs.jobs_notify_state();

-- Web server: which of these sessions and tokens (SHA-256 of the cookie or
-- token) still let their holder in, and in which role. Unlike
-- acs.web_session_get it writes nothing: an open event stream checks its
-- session every few seconds, and that must neither keep an idle session
-- alive nor cost a write per stream.
CREATE FUNCTION acs.web_credentials_alive(hashes bytea[])
    RETURNS TABLE (token_hash bytea, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT s.token_hash, u.role
      FROM acs.web_sessions AS s JOIN acs.web_users AS u ON u.name = s.user_name
     WHERE s.token_hash = ANY (web_credentials_alive.hashes) AND s.ended_at IS NULL
       AND s.expires_at > now() AND s.last_seen_at + make_interval(secs => s.idle_seconds) > now()
       AND u.disabled_at IS NULL
    UNION ALL
    SELECT t.token_hash, t.role
      FROM acs.api_tokens AS t
     WHERE t.token_hash = ANY (web_credentials_alive.hashes) AND t.revoked_at IS NULL
$$;
COMMENT ON FUNCTION acs.web_credentials_alive(bytea[]) IS
    'Web server: the sessions and tokens among these hashes that are still valid, with their role; writes nothing';
REVOKE ALL ON FUNCTION acs.web_credentials_alive(bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_credentials_alive(bytea[]) TO acs_web;
