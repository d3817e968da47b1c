-- 0017_hot_functions.sql: the small functions every submit calls are PL/pgSQL.
--
-- A LANGUAGE sql function with a SET clause (search_path) is never inlined,
-- and PostgreSQL parses and plans its body again at every call. A submit
-- calls nine of them (the field checks of acs.jobs_check_fields and the
-- checks of submit_*_job, then the audit row with its actor, address and
-- role): perf showed 36 % of a submitting backend's time in fmgr_sql,
-- most of it parsing. PL/pgSQL keeps each expression's plan for the life of
-- the session. The bodies, attributes (volatility, STRICT, PARALLEL SAFE,
-- SECURITY DEFINER, search_path) and grants are unchanged; only the language
-- differs, so every rule reads as before.

CREATE OR REPLACE FUNCTION acs.control_char_position(t text) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE WHEN t ~ '[\x01-\x1f\x7f-\x9f]'
                THEN length(substring(t FROM '^[^\x01-\x1f\x7f-\x9f]*')) + 1
                ELSE 0 END;
END
$$;

CREATE OR REPLACE FUNCTION acs.is_valid_name(t text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN t <> ''
       AND t !~ '[\x01-\x1f\x7f-\x9f]'
       AND t !~ '^\s' AND t !~ '\s$';
END
$$;

CREATE OR REPLACE FUNCTION acs.is_valid_pair(t text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN t ~ '^[^=\s]+=' AND t !~ '[\x01-\x1f\x7f-\x9f]';
END
$$;

CREATE OR REPLACE FUNCTION acs.is_valid_pair_list(a text[]) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN cardinality(a) = 0
        OR (array_ndims(a) = 1 AND array_lower(a, 1) = 1 AND cardinality(a) <= 20
            AND (SELECT bool_and(v IS NOT NULL AND length(v) <= 1024 AND acs.is_valid_pair(v))
                   FROM unnest(a) AS v));
END
$$;

CREATE OR REPLACE FUNCTION acs.actor() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE WHEN pg_has_role(session_user, 'acs_web', 'MEMBER')
                THEN coalesce(nullif(current_setting('acs.actor', true), ''), session_user::text)
                ELSE session_user::text END;
END
$$;

CREATE OR REPLACE FUNCTION acs.actor_address() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE WHEN pg_has_role(session_user, 'acs_web', 'MEMBER')
                THEN nullif(current_setting('acs.actor_address', true), '') END;
END
$$;

CREATE OR REPLACE FUNCTION acs.actor_role() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('role'), 'none'), session_user::text);
END
$$;

CREATE OR REPLACE FUNCTION acs.audit_record(action text, target text, detail jsonb DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO acs.audit (actor, address, role, action, target, detail)
    VALUES (acs.actor(), acs.actor_address(), acs.actor_role(),
            audit_record.action, audit_record.target, audit_record.detail);
END
$$;
