-- The daemon's statements for n jobs, as one pgbench transaction: claim n
-- queued jobs, record them started, finish them with a log -- what PostgreSQL
-- does per job in the throughput run, without the daemon or the simulator.
-- Installed only in bench/run's private cluster.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.cycle(n integer) RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    who text := 'bench-' || pg_backend_pid();
    claimed json;
    k integer;
BEGIN
    SELECT json_agg(json_build_object('id', c.id, 'attempt', c.attempt, 'batch_request_id', c.id)),
           count(*)
      INTO claimed, k
      FROM acs.claim_jobs(who, 'AMTDEMO', n, 30, false) AS c;
    IF k = 0 THEN
        RETURN 0;
    END IF;
    PERFORM count(*) FROM acs.jobs_started(who, claimed);
    PERFORM count(*) FROM acs.jobs_finish(who,
        (SELECT json_agg(json_build_object('id', x->>'id', 'attempt', x->>'attempt', 'code', 4,
                                           'error', NULL, 'log', repeat('-', 700)))
           FROM json_array_elements(claimed) AS x));
    RETURN k;
END
$$;
