-- 0001_init.sql: the amtacs schema (schema "acs").
--
-- Applied by db_migrate() (amtacsctl migrate) inside one transaction, after it
-- has created acs.schema_migrations. Never edit this file once released: the
-- migration runner records its SHA-256 and refuses a database whose recorded
-- checksum differs. Change the schema with a new, higher-numbered file.
--
-- Every name is schema-qualified: the runner sets search_path to
-- "pg_catalog, acs", so an unqualified CREATE would fail instead of landing in
-- a wrong schema.

COMMENT ON SCHEMA acs IS
    'amtacs: the AMT Batch Server connector (jobs queue, results, job logs, comm state, batch users)';

-------------------------------------------------------------------------------
-- Validation helpers (immutable, used by CHECK constraints and by the
-- submit functions, so that both reject exactly the same values).
-------------------------------------------------------------------------------

-- Position (1-based) of the first control character (C0, DEL, C1), 0 if none.
CREATE FUNCTION acs.control_char_position(t text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
    SELECT CASE WHEN t ~ '[\x01-\x1f\x7f-\x9f]'
                THEN length(substring(t FROM '^[^\x01-\x1f\x7f-\x9f]*')) + 1
                ELSE 0 END
$$;
COMMENT ON FUNCTION acs.control_char_position(text) IS
    'Position of the first control character of t (1-based), 0 when t has none';

-- A name-like value: non-empty, no control characters, no leading or trailing
-- whitespace (amtacs trims nothing, so such a value is refused, not fixed).
CREATE FUNCTION acs.is_valid_name(t text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
    SELECT t <> ''
       AND t !~ '[\x01-\x1f\x7f-\x9f]'
       AND t !~ '^\s' AND t !~ '\s$'
$$;
COMMENT ON FUNCTION acs.is_valid_name(text) IS
    'True for a non-empty text without control characters and without leading/trailing whitespace';

-- One task value / script parameter: NAME=VALUE, the name non-empty and free of
-- whitespace, the value anything printable (may be empty), no control characters.
CREATE FUNCTION acs.is_valid_pair(t text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
    SELECT t ~ '^[^=\s]+=' AND t !~ '[\x01-\x1f\x7f-\x9f]'
$$;
COMMENT ON FUNCTION acs.is_valid_pair(text) IS
    'True for NAME=VALUE with a non-empty name without whitespace and no control characters';

-- A list of task values / script parameters: one-dimensional, 1-based, at most
-- 20 items, no NULL item, every item a valid pair of at most 1024 characters.
CREATE FUNCTION acs.is_valid_pair_list(a text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
    SELECT cardinality(a) = 0
        OR (array_ndims(a) = 1 AND array_lower(a, 1) = 1 AND cardinality(a) <= 20
            AND (SELECT bool_and(v IS NOT NULL AND length(v) <= 1024 AND acs.is_valid_pair(v))
                   FROM unnest(a) AS v))
$$;
COMMENT ON FUNCTION acs.is_valid_pair_list(text[]) IS
    'True for a one-dimensional list of at most 20 NAME=VALUE items of at most 1024 characters';

-------------------------------------------------------------------------------
-- Completion codes: the AMT table (0-16, 18-24, 99), identical to src/lib/codes.c.
-------------------------------------------------------------------------------

CREATE TABLE acs.completion_codes (
    code        integer PRIMARY KEY,
    name        text    NOT NULL CONSTRAINT completion_codes_name_key UNIQUE,
    description text    NOT NULL DEFAULT '',
    final       boolean NOT NULL,
    success     boolean NOT NULL,
    origin      text    NOT NULL,
    CONSTRAINT completion_codes_origin_valid CHECK (origin IN ('server', 'connector')),
    CONSTRAINT completion_codes_success_is_final CHECK (NOT success OR final)
);
COMMENT ON TABLE acs.completion_codes IS
    'The published AMT completion codes; success is DONE (4) alone. A code not listed here is shown as UNKNOWN';
COMMENT ON COLUMN acs.completion_codes.name IS 'Exactly as published (e.g. WAIT FOR FILE, WAIT_FOR QUEUE)';
COMMENT ON COLUMN acs.completion_codes.final IS 'The job has ended when the server reports this code (amtacs'' choice)';
COMMENT ON COLUMN acs.completion_codes.origin IS 'server: an AMT state; connector: produced by amtacs (23, 24)';

INSERT INTO acs.completion_codes (code, name, description, final, success, origin) VALUES
    (0,  'IDLE', 'Job is idle', false, false, 'server'),
    (1,  'QUEUED', 'Job is queued for future start in current timeframe', false, false, 'server'),
    (2,  'RUNNING', 'Job was started manually or by the scheduler', false, false, 'server'),
    (3,  'KILLED', 'Job was terminated by a ''kill'' command', true, false, 'server'),
    (4,  'DONE', 'Job completed normally', true, true, 'server'),
    (5,  'SUSPENDED', 'Queued job has not started on time', false, false, 'server'),
    (6,  'SKIPPED_BY_OPS', 'Suspended job has been skipped by control center', true, false, 'server'),
    (7,  'RUN_MANUAL', 'Job was started by control center', false, false, 'server'),
    (8,  'RUN_FORCED', 'Forced start manual; start this job even when job server halted', false, false, 'server'),
    (9,  'RUN_DEBUG', 'When a report is started from Visual Studio', false, false, 'server'),
    (10, 'DEL_QUEUE', 'Job is deleted from queue', true, false, 'server'),
    (11, 'ERROR', 'Job ended in error. When executing a script and the script does not exist, an error code of 11 is returned with a description of ''File not found''', true, false, 'server'),
    (12, 'ABORTED', 'The job was aborted on purpose in the business-logic', true, false, 'server'),
    (13, 'WAIT FOR FILE', 'Waiting for a file', false, false, 'server'),
    (14, 'WAIT FOR INPUT REQUEST', 'Waiting for request', false, false, 'server'),
    (15, 'WAIT FOR JOB', 'Waiting for another job to finish', false, false, 'server'),
    (16, 'WAIT FOR REPORT', 'Waiting for a report to finish; for future use', false, false, 'server'),
    (18, 'RECOVER_CP', 'This job (report) is a request to recover from a saved critical point', false, false, 'server'),
    (19, 'UNDEFINED', 'State is undefined', true, false, 'server'),
    (20, 'WAIT_FOR QUEUE', 'Waiting for queue start time', false, false, 'server'),
    (21, 'WAIT_FOR_DEBUGGER', 'Waiting for a LION Debugger to start debug session for the job', false, false, 'server'),
    (22, 'ABORTED_WITH_RECOVER', 'Aborted with recover', true, false, 'server'),
    (23, 'WEB_SERVER_ERROR', '', true, false, 'connector'),
    (24, 'AUTHENTICATION_ERROR', '', true, false, 'connector'),
    (99, 'INVALID AMT USER', 'When executing an AMT script with a named AMT user and the user is invalid', true, false, 'server');

-------------------------------------------------------------------------------
-- Connections: the runtime Full Comm state of each AMT connection. The
-- definitions (URL, batch user, limits, retention) live in the daemon's YAML.
-------------------------------------------------------------------------------

CREATE TABLE acs.connections (
    name              text        PRIMARY KEY,
    comm_state        text        NOT NULL DEFAULT 'disabled',
    comm_changed_at   timestamptz NOT NULL DEFAULT now(),
    comm_changed_by   text        NOT NULL DEFAULT session_user,
    last_contact      timestamptz,
    server_ok         boolean,
    server_checked_at timestamptz,
    amt_version       text,
    last_error        text,
    last_error_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT connections_name_valid CHECK (acs.is_valid_name(name) AND length(name) <= 64),
    CONSTRAINT connections_comm_state_valid CHECK (comm_state IN ('enabled', 'limited', 'disabled'))
);
COMMENT ON TABLE acs.connections IS
    'Runtime state per AMT connection; a job can only be enqueued for a connection listed here';
COMMENT ON COLUMN acs.connections.comm_state IS
    'enabled = Full Comm (start jobs); limited = follow running jobs, start none; disabled = no traffic';
COMMENT ON COLUMN acs.connections.last_contact IS 'Last successful exchange with the Batch Server';
COMMENT ON COLUMN acs.connections.server_ok IS 'Result of the last heartbeat; NULL = never checked';

-- Stamps a comm_state change with the time and (unless the writer set it) the user.
CREATE FUNCTION acs.connections_stamp_comm() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.comm_state IS DISTINCT FROM OLD.comm_state THEN
        NEW.comm_changed_at := now();
        IF NEW.comm_changed_by IS NOT DISTINCT FROM OLD.comm_changed_by THEN
            NEW.comm_changed_by := session_user;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER connections_stamp_comm BEFORE UPDATE OF comm_state ON acs.connections
    FOR EACH ROW EXECUTE FUNCTION acs.connections_stamp_comm();

-- NOTIFY acs_comm, payload the connection name, when a comm state is set or changed.
CREATE FUNCTION acs.connections_notify_comm() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_comm', NEW.name);
    RETURN NULL;
END
$$;
CREATE TRIGGER connections_notify_comm_insert AFTER INSERT ON acs.connections
    FOR EACH ROW EXECUTE FUNCTION acs.connections_notify_comm();
CREATE TRIGGER connections_notify_comm_update AFTER UPDATE OF comm_state ON acs.connections
    FOR EACH ROW WHEN (OLD.comm_state IS DISTINCT FROM NEW.comm_state)
    EXECUTE FUNCTION acs.connections_notify_comm();

-- Registers a connection (idempotent); returns true if it was new. A new
-- connection starts in the given comm state (default disabled, as in OpCon).
CREATE FUNCTION acs.register_connection(connection text, comm_state text DEFAULT 'disabled')
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog
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
COMMENT ON FUNCTION acs.register_connection(text, text) IS
    'Adds a connection if it is not there yet (comm state default disabled); true if it was added';

-------------------------------------------------------------------------------
-- Batch users: AMT API credentials. The password is sealed by amtacsctl with
-- libsodium under the key identified by key_id; the database never sees it clear.
-------------------------------------------------------------------------------

CREATE TABLE acs.batch_users (
    name            text        PRIMARY KEY,
    key_id          text        NOT NULL,
    sealed_password bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT batch_users_name_valid CHECK (acs.is_valid_name(name) AND length(name) <= 128),
    CONSTRAINT batch_users_key_id_valid CHECK (acs.is_valid_name(key_id) AND length(key_id) <= 128),
    CONSTRAINT batch_users_sealed_password_not_empty CHECK (octet_length(sealed_password) > 0)
);
COMMENT ON TABLE acs.batch_users IS
    'AMT API users (OpCon "Batch Users"); sealed_password is libsodium ciphertext, never clear text';
COMMENT ON COLUMN acs.batch_users.key_id IS 'Identifies the master key that sealed the password';

CREATE FUNCTION acs.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER batch_users_touch BEFORE UPDATE ON acs.batch_users
    FOR EACH ROW EXECUTE FUNCTION acs.touch_updated_at();

-------------------------------------------------------------------------------
-- Jobs: the queue and the record of every AMT Batch Job / Script Job.
--
-- queued   -> starting (claimed by a daemon: owner + lease; task_id recorded
--             before Start is sent) -> running (BatchRequestId recorded)
--          -> finished (completion code, result, finished_at; log in job_logs).
-- A queued job may also go straight to finished (killed before it started).
-------------------------------------------------------------------------------

CREATE TABLE acs.jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection        text        NOT NULL
                      CONSTRAINT jobs_connection_fkey REFERENCES acs.connections (name) ON UPDATE CASCADE,
    kind              text        NOT NULL,
    application       text        NOT NULL,
    submit_user       text        NOT NULL DEFAULT 'BATCH',
    station           text        NOT NULL DEFAULT 'OPCON',
    amt_user          text,
    queue_name        text,
    job_name          text,
    task_values       text[]      NOT NULL DEFAULT '{}',
    script_name       text,
    script_parameters text[]      NOT NULL DEFAULT '{}',
    external_ref      text,
    state             text        NOT NULL DEFAULT 'queued',
    task_id           uuid,
    batch_request_id  integer,
    owner             text,
    attempt           integer     NOT NULL DEFAULT 0,
    lease_expires     timestamptz,
    kill_requested_at timestamptz,
    kill_requested_by text,
    last_code         integer,
    completion_code   integer,
    result            text,
    error             text,
    enqueued_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at        timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,

    -- what the job is
    CONSTRAINT jobs_kind_valid CHECK (kind IN ('batch', 'script')),
    CONSTRAINT jobs_application_valid CHECK (acs.is_valid_name(application) AND length(application) <= 128),
    CONSTRAINT jobs_submit_user_is_batch CHECK (submit_user = 'BATCH'),
    CONSTRAINT jobs_station_is_opcon CHECK (station = 'OPCON'),
    CONSTRAINT jobs_amt_user_valid CHECK (acs.is_valid_name(amt_user) AND length(amt_user) <= 128),
    CONSTRAINT jobs_queue_name_valid CHECK (acs.is_valid_name(queue_name) AND length(queue_name) <= 128),
    CONSTRAINT jobs_job_name_valid CHECK (acs.is_valid_name(job_name) AND length(job_name) <= 128),
    CONSTRAINT jobs_script_name_valid CHECK (acs.is_valid_name(script_name) AND length(script_name) <= 1024),
    CONSTRAINT jobs_external_ref_valid CHECK (acs.is_valid_name(external_ref) AND length(external_ref) <= 256),
    CONSTRAINT jobs_not_both_job_and_script_name CHECK (job_name IS NULL OR script_name IS NULL),
    CONSTRAINT jobs_batch_has_job_name CHECK (kind <> 'batch' OR job_name IS NOT NULL),
    CONSTRAINT jobs_script_has_script_name CHECK (kind <> 'script' OR script_name IS NOT NULL),
    CONSTRAINT jobs_task_values_valid CHECK (acs.is_valid_pair_list(task_values)),
    CONSTRAINT jobs_script_parameters_valid CHECK (acs.is_valid_pair_list(script_parameters)),
    CONSTRAINT jobs_script_has_no_task_values CHECK (kind <> 'script' OR cardinality(task_values) = 0),
    CONSTRAINT jobs_batch_has_no_script_parameters CHECK (kind <> 'batch' OR cardinality(script_parameters) = 0),

    -- where it is
    CONSTRAINT jobs_state_valid CHECK (state IN ('queued', 'starting', 'running', 'in_doubt', 'finished')),
    CONSTRAINT jobs_result_valid CHECK (result IN ('success', 'failure')),
    CONSTRAINT jobs_attempt_not_negative CHECK (attempt >= 0),
    CONSTRAINT jobs_batch_request_id_positive CHECK (batch_request_id > 0),
    CONSTRAINT jobs_lease_only_while_claimed CHECK ((lease_expires IS NOT NULL) = (state IN ('starting', 'running'))),
    CONSTRAINT jobs_claimed_has_owner_and_task_id CHECK (state NOT IN ('starting', 'running')
        OR (owner IS NOT NULL AND claimed_at IS NOT NULL AND task_id IS NOT NULL)),
    CONSTRAINT jobs_running_has_batch_request_id CHECK (state <> 'running'
        OR (batch_request_id IS NOT NULL AND started_at IS NOT NULL)),
    CONSTRAINT jobs_queued_not_started CHECK (state <> 'queued'
        OR (batch_request_id IS NULL AND started_at IS NULL)),
    CONSTRAINT jobs_finished_has_code_and_result CHECK ((state = 'finished')
        = (completion_code IS NOT NULL AND result IS NOT NULL AND finished_at IS NOT NULL)),
    CONSTRAINT jobs_not_finished_has_no_outcome CHECK (state = 'finished'
        OR (completion_code IS NULL AND result IS NULL AND finished_at IS NULL)),
    CONSTRAINT jobs_result_matches_code CHECK (result IS NULL OR (result = 'success') = (completion_code = 4)),
    CONSTRAINT jobs_task_id_key UNIQUE (task_id)
) WITH (fillfactor = 80);

COMMENT ON TABLE acs.jobs IS
    'AMT Batch Jobs and Script Jobs: the queue (state queued) and the record of every run';
COMMENT ON COLUMN acs.jobs.connection IS 'The AMT connection (acs.connections.name) that runs the job';
COMMENT ON COLUMN acs.jobs.kind IS 'batch (job_name + task_values) or script (script_name + script_parameters)';
COMMENT ON COLUMN acs.jobs.submit_user IS 'Sent as amtSubmitUser; always BATCH';
COMMENT ON COLUMN acs.jobs.station IS 'Sent as amtStation; always OPCON';
COMMENT ON COLUMN acs.jobs.amt_user IS 'RunAs AMT user; NULL = the application''s user';
COMMENT ON COLUMN acs.jobs.queue_name IS 'AMT queue; NULL = the Batch Server''s default queue';
COMMENT ON COLUMN acs.jobs.task_values IS 'Batch job task values, NAME=VALUE, at most 20';
COMMENT ON COLUMN acs.jobs.script_parameters IS 'Script parameters, NAME=VALUE, at most 20';
COMMENT ON COLUMN acs.jobs.external_ref IS 'The scheduler''s own identifier of the job (free text, optional)';
COMMENT ON COLUMN acs.jobs.state IS
    'queued -> starting -> running -> finished; starting -> in_doubt when a Start may have been sent to a server without idempotent Start';
COMMENT ON COLUMN acs.jobs.task_id IS 'The taskId sent with Start (written before Start; Start is idempotent per taskId)';
COMMENT ON COLUMN acs.jobs.batch_request_id IS 'The BatchRequestId returned by Start';
COMMENT ON COLUMN acs.jobs.owner IS 'The daemon instance that holds (or last held) the job';
COMMENT ON COLUMN acs.jobs.attempt IS 'How many times a daemon has claimed the job';
COMMENT ON COLUMN acs.jobs.lease_expires IS 'While starting/running: another daemon may take the job over after this time';
COMMENT ON COLUMN acs.jobs.kill_requested_at IS 'Set to request a kill; the daemon acts on it';
COMMENT ON COLUMN acs.jobs.last_code IS 'The latest code MonitorJob reported while the job runs';
COMMENT ON COLUMN acs.jobs.completion_code IS 'The final AMT completion code (see acs.completion_codes)';
COMMENT ON COLUMN acs.jobs.result IS 'success (completion code 4, DONE) or failure';
COMMENT ON COLUMN acs.jobs.error IS 'Why the job failed, when amtacs knows more than the code says';

-- Claiming: the oldest queued jobs of a connection.
CREATE INDEX jobs_queued_idx ON acs.jobs (connection, id) WHERE state = 'queued';
-- Claimed jobs: lease renewal by owner, jobs in flight per connection, and the
-- takeover of expired leases (filtering lease_expires over this small set).
-- lease_expires itself is deliberately not indexed so that lease renewals can
-- be HOT updates.
CREATE INDEX jobs_claimed_idx ON acs.jobs (connection, owner) WHERE state IN ('starting', 'running');
-- Kills waiting to be acted on.
CREATE INDEX jobs_kill_pending_idx ON acs.jobs (connection)
    WHERE kill_requested_at IS NOT NULL AND state <> 'finished';
-- The scheduler looks its jobs up by its own reference.
CREATE INDEX jobs_external_ref_idx ON acs.jobs (external_ref) WHERE external_ref IS NOT NULL;
-- Retention and "what finished since" queries.
CREATE INDEX jobs_finished_at_idx ON acs.jobs (finished_at) WHERE state = 'finished';

-- The state machine: refuses every state change but
--   queued -> starting | finished (killed before it started)
--   starting -> running | finished | queued (given back before Start was sent)
--              | in_doubt (a Start may have reached a non-idempotent server)
--   running -> finished
--   in_doubt -> queued | running | finished (an operator's decision)
-- A finished job never changes state again (it is never started twice).
CREATE FUNCTION acs.jobs_check_transition() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    allowed text[];
BEGIN
    allowed := CASE OLD.state
        WHEN 'queued'   THEN ARRAY['starting', 'finished']
        WHEN 'starting' THEN ARRAY['running', 'finished', 'queued', 'in_doubt']
        WHEN 'running'  THEN ARRAY['finished']
        WHEN 'in_doubt' THEN ARRAY['queued', 'running', 'finished']
        ELSE ARRAY[]::text[] END;
    IF NOT NEW.state = ANY (allowed) THEN
        RAISE EXCEPTION 'job % cannot go from % to %; allowed from %: %', OLD.id, OLD.state, NEW.state,
            OLD.state, CASE WHEN cardinality(allowed) = 0 THEN 'nothing (it is final)'
                            ELSE array_to_string(allowed, ', ') END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'jobs_state_transition',
                  TABLE = 'jobs', SCHEMA = 'acs';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_check_transition BEFORE UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION acs.jobs_check_transition();

-- NOTIFY acs_jobs (payload: the connection) when a job is queued, so that a
-- listening daemon wakes. Several in one transaction fold into one notification.
CREATE FUNCTION acs.jobs_notify_queued() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_jobs', NEW.connection);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify_queued_insert AFTER INSERT ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION acs.jobs_notify_queued();
CREATE TRIGGER jobs_notify_queued_update AFTER UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
    EXECUTE FUNCTION acs.jobs_notify_queued();

-- NOTIFY acs_job_finished (payload: the job id) when a job reaches finished.
CREATE FUNCTION acs.jobs_notify_finished() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_job_finished', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify_finished_insert AFTER INSERT ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'finished') EXECUTE FUNCTION acs.jobs_notify_finished();
CREATE TRIGGER jobs_notify_finished_update AFTER UPDATE OF state ON acs.jobs
    FOR EACH ROW WHEN (NEW.state = 'finished' AND OLD.state <> 'finished')
    EXECUTE FUNCTION acs.jobs_notify_finished();

-- NOTIFY acs_kill (payload: the job id) when a kill is requested for an unfinished job.
CREATE FUNCTION acs.jobs_notify_kill() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_kill', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify_kill AFTER UPDATE OF kill_requested_at ON acs.jobs
    FOR EACH ROW WHEN (OLD.kill_requested_at IS NULL AND NEW.kill_requested_at IS NOT NULL
                       AND NEW.state <> 'finished')
    EXECUTE FUNCTION acs.jobs_notify_kill();

-------------------------------------------------------------------------------
-- Job logs: the merged job log of a finished job (the reference layout),
-- purged by retention (written_at + the connection's Retain Log Files days).
-------------------------------------------------------------------------------

CREATE TABLE acs.job_logs (
    job_id     bigint      PRIMARY KEY
               CONSTRAINT job_logs_job_id_fkey REFERENCES acs.jobs (id) ON DELETE CASCADE,
    connection text        NOT NULL
               CONSTRAINT job_logs_connection_fkey REFERENCES acs.connections (name) ON UPDATE CASCADE,
    log        text        NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE acs.job_logs IS 'The merged job log of each finished job, as the reference layout prints it';
COMMENT ON COLUMN acs.job_logs.connection IS 'Copied from the job (retention is per connection)';
CREATE INDEX job_logs_retention_idx ON acs.job_logs (connection, written_at);

-- The log's connection is always the job's: filled in (or corrected) on write.
CREATE FUNCTION acs.job_logs_set_connection() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    SELECT j.connection INTO NEW.connection FROM acs.jobs AS j WHERE j.id = NEW.job_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER job_logs_set_connection BEFORE INSERT OR UPDATE OF job_id, connection ON acs.job_logs
    FOR EACH ROW EXECUTE FUNCTION acs.job_logs_set_connection();

-------------------------------------------------------------------------------
-- Alerts: raised by the daemon (e.g. a job ended ERROR/ABORTED/WEB_SERVER_ERROR/
-- AUTHENTICATION_ERROR, or a connection lost its server); acknowledged by operators.
-------------------------------------------------------------------------------

CREATE TABLE acs.alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint
                    CONSTRAINT alerts_job_id_fkey REFERENCES acs.jobs (id) ON DELETE SET NULL,
    connection      text
                    CONSTRAINT alerts_connection_fkey REFERENCES acs.connections (name) ON UPDATE CASCADE,
    code            integer,
    name            text        NOT NULL,
    raised_at       timestamptz NOT NULL DEFAULT now(),
    message         text        NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    CONSTRAINT alerts_name_valid CHECK (acs.is_valid_name(name) AND length(name) <= 128),
    CONSTRAINT alerts_acknowledged_by_needs_time CHECK (acknowledged_by IS NULL OR acknowledged_at IS NOT NULL)
);
COMMENT ON TABLE acs.alerts IS 'Alerts for operators: failed jobs of interest and connection problems';
COMMENT ON COLUMN acs.alerts.code IS 'The completion code the alert is about, if any';
COMMENT ON COLUMN acs.alerts.name IS 'The completion name (e.g. ERROR) or the kind of alert (e.g. SERVER_UNREACHABLE)';
CREATE INDEX alerts_open_idx ON acs.alerts (raised_at) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_job_id_idx ON acs.alerts (job_id) WHERE job_id IS NOT NULL;

-- NOTIFY acs_alerts (payload: the alert id) when an alert is raised.
CREATE FUNCTION acs.alerts_notify() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('acs_alerts', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER alerts_notify AFTER INSERT ON acs.alerts
    FOR EACH ROW EXECUTE FUNCTION acs.alerts_notify();

-------------------------------------------------------------------------------
-- Results for the scheduler.
-------------------------------------------------------------------------------

CREATE VIEW acs.job_results AS
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
COMMENT ON VIEW acs.job_results IS
    'One row per job: what the scheduler needs to know (state, completion code and name, result)';

-------------------------------------------------------------------------------
-- Enqueueing (the scheduler's entry points).
-------------------------------------------------------------------------------

-- Raises a clear error unless v is acceptable for the field "what".
CREATE FUNCTION acs.check_name(what text, v text, max_length integer, required boolean)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog
AS $$
DECLARE
    pos integer;
BEGIN
    IF v IS NULL THEN
        IF required THEN
            RAISE EXCEPTION '% is required', what
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        RETURN;
    END IF;
    IF v = '' THEN
        RAISE EXCEPTION '% is empty; give a value%', what,
            CASE WHEN required THEN '' ELSE ' or NULL for none' END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pos := acs.control_char_position(v);
    IF pos > 0 THEN
        RAISE EXCEPTION '% contains a control character at position %; only printable characters are allowed',
            what, pos USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v ~ '^\s' OR v ~ '\s$' THEN
        RAISE EXCEPTION '% (%) has leading or trailing whitespace; amtacs trims nothing, remove it',
            what, quote_literal(v) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(v) > max_length THEN
        RAISE EXCEPTION '% is % characters long; at most % are allowed', what, length(v), max_length
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
END
$$;
COMMENT ON FUNCTION acs.check_name(text, text, integer, boolean) IS
    'Raises a descriptive error unless v is a valid value for the field named what';

-- Raises a clear error unless the list is acceptable (item_label: "task value").
CREATE FUNCTION acs.check_pair_list(what text, item_label text, a text[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog
AS $$
DECLARE
    i   integer;
    v   text;
    pos integer;
BEGIN
    IF a IS NULL OR cardinality(a) = 0 THEN
        RETURN;
    END IF;
    IF array_ndims(a) <> 1 OR array_lower(a, 1) <> 1 THEN
        RAISE EXCEPTION '% must be a one-dimensional list (e.g. ARRAY[''NAME=VALUE'']), not %',
            what, quote_literal(a::text) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(a) > 20 THEN
        RAISE EXCEPTION '% has % items; at most 20 are allowed', what, cardinality(a)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. cardinality(a) LOOP
        v := a[i];
        IF v IS NULL THEN
            RAISE EXCEPTION '% % is NULL; each item must be NAME=VALUE', item_label, i
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        pos := acs.control_char_position(v);
        IF pos > 0 THEN
            RAISE EXCEPTION '% % contains a control character at position %; only printable characters are allowed',
                item_label, i, pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF length(v) > 1024 THEN
            RAISE EXCEPTION '% % is % characters long; at most 1024 are allowed', item_label, i, length(v)
                USING ERRCODE = 'string_data_right_truncation';
        END IF;
        IF NOT acs.is_valid_pair(v) THEN
            RAISE EXCEPTION '% % (%) is not name=value; each item must be NAME=VALUE with a non-empty NAME without spaces',
                item_label, i, quote_literal(v) USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION acs.check_pair_list(text, text, text[]) IS
    'Raises a descriptive error unless a is a list of at most 20 NAME=VALUE items';

-- Raises a clear error unless the connection is registered.
CREATE FUNCTION acs.check_connection(connection text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
DECLARE
    known text;
BEGIN
    PERFORM acs.check_name('connection', connection, 64, true);
    IF NOT EXISTS (SELECT 1 FROM acs.connections AS c WHERE c.name = check_connection.connection) THEN
        SELECT string_agg(c.name, ', ' ORDER BY c.name) INTO known FROM acs.connections AS c;
        RAISE EXCEPTION 'connection % is not known; known connections: %',
            quote_literal(connection), coalesce(known, '(none)')
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'connections are registered by amtacsd from its configuration';
    END IF;
END
$$;

CREATE FUNCTION acs.submit_batch_job(
    connection   text,
    application  text,
    job_name     text,
    task_values  text[] DEFAULT '{}',
    queue_name   text   DEFAULT NULL,
    amt_user     text   DEFAULT NULL,
    external_ref text   DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog
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
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION acs.submit_batch_job(text, text, text, text[], text, text, text) IS
    'Enqueues an AMT Batch Job (Submit User BATCH, Station OPCON); returns its id and notifies acs_jobs';

CREATE FUNCTION acs.submit_script_job(
    connection        text,
    application       text,
    script_name       text,
    script_parameters text[] DEFAULT '{}',
    queue_name        text   DEFAULT NULL,
    amt_user          text   DEFAULT NULL,
    external_ref      text   DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog
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
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION acs.submit_script_job(text, text, text, text[], text, text, text) IS
    'Enqueues an AMT Script Job (Submit User BATCH, Station OPCON); returns its id and notifies acs_jobs';

-- Requests a kill: stamps kill_requested_at (once) and thereby notifies
-- acs_kill; the daemon does the rest (a queued job finishes as KILLED without
-- contacting the server). Returns the job's state.
CREATE FUNCTION acs.request_kill(job_id bigint) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog
AS $$
DECLARE
    st text;
BEGIN
    SELECT j.state INTO st FROM acs.jobs AS j WHERE j.id = request_kill.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF st = 'finished' THEN
        RAISE EXCEPTION 'job % has already finished; there is nothing to kill', job_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE acs.jobs AS j
       SET kill_requested_at = now(), kill_requested_by = session_user
     WHERE j.id = request_kill.job_id AND j.kill_requested_at IS NULL;
    RETURN st;
END
$$;
COMMENT ON FUNCTION acs.request_kill(bigint) IS
    'Requests the kill of an unfinished job (idempotent); returns its state; notifies acs_kill';
