-- 0007_kills_pending.sql: kill requests a daemon may have missed.
--
-- A kill reaches the daemon holding the job as NOTIFY acs_kill on its LISTEN
-- connection. A notification sent while that connection is down (PostgreSQL
-- restarted, the backend terminated, the network gone) is lost for good, and
-- with it the kill of a job the daemon already held: the job ran on to its
-- end, or forever. The daemon therefore asks with this function whenever a
-- kill may have been missed: each time its LISTEN connection (re)connects, and
-- when it is told of a kill of a job it does not hold (yet: its claim may be on
-- the way).

CREATE FUNCTION acs.kills_pending(owner text) RETURNS SETOF bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    -- (state <> 'finished' lets the planner use jobs_kill_pending_idx)
    SELECT j.id FROM acs.jobs AS j
     WHERE j.kill_requested_at IS NOT NULL AND j.state <> 'finished'
       AND j.state IN ('starting', 'running') AND j.owner = kills_pending.owner
$$;
COMMENT ON FUNCTION acs.kills_pending(text) IS
    'Daemon: the jobs an owner holds that an operator wants killed (kill requests it may have missed)';

REVOKE EXECUTE ON FUNCTION acs.kills_pending(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.kills_pending(text) TO acs_daemon;
