-- 0023_integration_selection.sql: OpCon's Integration Selection. A job names
-- one connection (as before), or a primary and up to 3 alternates, or a
-- connection group (docs/operations.md, "Integration Selection").
--
-- 1. acs.connection_groups and acs.connection_group_members: groups defined
--    by admins (acs.group_set / acs.group_delete, functions/50_operations.sql).
-- 2. acs.jobs.listed: the primary and its alternates in order, as submitted
--    (NULL when the job names one connection alone); acs.jobs.conn_group: the
--    group it was submitted to; acs.jobs.tried: each connection that was given
--    the job and could not start it, with why, in order (NULL for none: the
--    columns cost a job nothing while unused, a NULL being a bit in the row,
--    and the daemon rewrites each job's row several times). acs.jobs.connection
--    stays the connection that holds, ran or will run the job: for a queued
--    job with alternates, the first listed one not yet tried; for a queued
--    group job, the member that last held it (or the first, until one does).
-- 3. acs.connections.failover_after: how long a connection's server may go
--    without answering before its queued jobs go to their next listed
--    connection; each daemon writes its setting with every heartbeat.
-- 4. Claiming (acs.claim_jobs) reads them: the partial index that finds a
--    connection's queued jobs leaves group jobs out, and group jobs get their
--    own.

CREATE TABLE acs.connection_groups (
    name        text        PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text        NOT NULL DEFAULT acs.actor(),
    CONSTRAINT connection_groups_name_valid CHECK (acs.is_valid_name(name) AND length(name) <= 64)
);
COMMENT ON TABLE acs.connection_groups IS
    'Connection groups (OpCon Integration Groups): a group''s jobs go to its members that are up, least in flight first';

CREATE TABLE acs.connection_group_members (
    group_name  text     NOT NULL REFERENCES acs.connection_groups (name) ON UPDATE CASCADE ON DELETE CASCADE,
    connection  text     NOT NULL REFERENCES acs.connections (name) ON UPDATE CASCADE,
    position    smallint NOT NULL,
    PRIMARY KEY (group_name, connection),
    CONSTRAINT connection_group_members_position_unique UNIQUE (group_name, position),
    CONSTRAINT connection_group_members_position_valid CHECK (position BETWEEN 1 AND 64)
);
COMMENT ON TABLE acs.connection_group_members IS
    'The members of each connection group, in the order amtacsctl group set named them';
CREATE INDEX connection_group_members_connection_idx ON acs.connection_group_members (connection);

REVOKE ALL ON acs.connection_groups, acs.connection_group_members FROM PUBLIC;
GRANT SELECT ON acs.connection_groups, acs.connection_group_members
    TO acs_admin, acs_operator, acs_scheduler, acs_viewer;

ALTER TABLE acs.jobs
    ADD COLUMN listed     text[],
    ADD COLUMN conn_group text,
    ADD COLUMN tried      jsonb;
COMMENT ON COLUMN acs.jobs.listed IS
    'The primary connection and its alternates (up to 3), in order, as submitted; NULL when the job names one connection or a group';
COMMENT ON COLUMN acs.jobs.conn_group IS 'The connection group the job was submitted to (NULL: it names connections)';
COMMENT ON COLUMN acs.jobs.tried IS
    'Each connection that was given the job and could not start it (its Start never left): [{"connection", "error", "at"}], in order; NULL for none';
COMMENT ON COLUMN acs.jobs.connection IS
    'The AMT connection that holds, ran or will run the job (for a queued job with alternates: the first listed one not yet tried)';

ALTER TABLE acs.connections
    ADD COLUMN failover_after interval NOT NULL DEFAULT '60 seconds';
COMMENT ON COLUMN acs.connections.failover_after IS
    'After this long without an answer from its server (last_contact), the connection''s queued jobs go to their next listed connection (connections.<name>.failover_after, written by amtacsd)';

DROP INDEX acs.jobs_queued_idx;
CREATE INDEX jobs_queued_idx ON acs.jobs (connection, id) WHERE state = 'queued' AND conn_group IS NULL;
CREATE INDEX jobs_queued_group_idx ON acs.jobs (conn_group, id)
    WHERE state = 'queued' AND conn_group IS NOT NULL;
-- The jobs an alternate may take from a connection that is down: only those
-- that list alternates (a down connection's other queued jobs, however many,
-- are never read by another connection's claim).
CREATE INDEX jobs_queued_listed_idx ON acs.jobs (connection, id)
    WHERE state = 'queued' AND conn_group IS NULL AND listed IS NOT NULL;
