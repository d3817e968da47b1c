-- 0013_web_idempotency.sql: Idempotency-Key for job submissions over the web
-- API (amtacs-web, POST /api/v1/jobs).
--
-- A client that sends the same submission twice (a retry after a lost
-- answer) with the same Idempotency-Key gets the job of the first one, and
-- nothing is enqueued twice; the same key with a different body is refused.
-- Keys belong to the actor (acs.actor(): the console user or API token), so
-- two users' keys never meet. The web server, in the request's transaction
-- and under the caller's role:
--   SELECT * FROM acs.web_idempotency_claim(key, sha256(body));
--     -- waits for any other transaction holding the same actor and key,
--     -- then returns the job recorded for it, if any
--   SELECT acs.submit_batch_job(...)   -- only if none: refused unless the
--                                      -- role may submit
--   SELECT acs.web_idempotency_record(key, sha256(body), job_id);
-- so 50 requests racing with one key make exactly one job.

CREATE TABLE acs.web_idempotency (
    actor      text        NOT NULL,
    key        text        NOT NULL,
    body_hash  bytea       NOT NULL,
    job_id     bigint      NOT NULL
               CONSTRAINT web_idempotency_job_id_fkey REFERENCES acs.jobs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT web_idempotency_pkey PRIMARY KEY (actor, key),
    CONSTRAINT web_idempotency_key_valid CHECK (key ~ '^[\x21-\x7e]{1,255}$'),
    CONSTRAINT web_idempotency_body_hash_sha256 CHECK (octet_length(body_hash) = 32)
);
COMMENT ON TABLE acs.web_idempotency IS
    'Idempotency-Key of job submissions through amtacs-web: per actor and key, the SHA-256 of the body and the job made';
CREATE INDEX web_idempotency_created_at_idx ON acs.web_idempotency (created_at);
CREATE INDEX web_idempotency_job_id_idx ON acs.web_idempotency (job_id);

CREATE FUNCTION acs.web_idempotency_claim(key text, body_hash bytea)
    RETURNS TABLE (job_id bigint, same_body boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF key IS NULL OR key !~ '^[\x21-\x7e]{1,255}$' THEN
        RAISE EXCEPTION 'Idempotency-Key must be 1 to 255 visible ASCII characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body_hash IS NULL OR octet_length(body_hash) <> 32 THEN
        RAISE EXCEPTION 'body_hash must be a SHA-256 (32 bytes)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Held to the end of the transaction: a second request with this key
    -- waits here until the first has recorded its job (or given up).
    PERFORM pg_advisory_xact_lock(hashtextextended('acs.web_idempotency' || chr(1) || acs.actor()
                                                   || chr(1) || key, 0));
    -- (a new statement, so a new snapshot: what the first request committed is seen)
    RETURN QUERY
        SELECT i.job_id, i.body_hash = web_idempotency_claim.body_hash
          FROM acs.web_idempotency AS i
         WHERE i.actor = acs.actor() AND i.key = web_idempotency_claim.key;
END
$$;
COMMENT ON FUNCTION acs.web_idempotency_claim(text, bytea) IS
    'Web server: locks (actor, key) to the end of the transaction; the job already made with this key and whether the body was the same, or no row';

CREATE FUNCTION acs.web_idempotency_record(key text, body_hash bytea, job_id bigint)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    -- only a job this actor submitted can be recorded under its key
    IF NOT EXISTS (SELECT 1 FROM acs.audit AS a
                    WHERE a.action = 'submit' AND a.target = web_idempotency_record.job_id::text
                      AND a.actor = acs.actor()) THEN
        RAISE EXCEPTION 'job % was not submitted by %', job_id, acs.actor()
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- keys are kept for a day
    DELETE FROM acs.web_idempotency AS i
     WHERE (i.actor, i.key) IN (SELECT x.actor, x.key FROM acs.web_idempotency AS x
                                 WHERE x.created_at < now() - interval '1 day' LIMIT 100);
    INSERT INTO acs.web_idempotency (actor, key, body_hash, job_id)
    VALUES (acs.actor(), web_idempotency_record.key, web_idempotency_record.body_hash,
            web_idempotency_record.job_id);
END
$$;
COMMENT ON FUNCTION acs.web_idempotency_record(text, bytea, bigint) IS
    'Web server: records the job the actor just submitted under its Idempotency-Key (kept a day)';

REVOKE ALL ON acs.web_idempotency FROM PUBLIC;
REVOKE ALL ON FUNCTION acs.web_idempotency_claim(text, bytea),
                       acs.web_idempotency_record(text, bytea, bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.web_idempotency_claim(text, bytea),
                          acs.web_idempotency_record(text, bytea, bigint)
    TO acs_scheduler, acs_operator, acs_admin;
