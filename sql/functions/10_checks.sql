-- functions/10_checks.sql: the checks on names, values and job specifications that
-- the tables' constraints, the submit functions and the web functions share.
--
-- The current definition of each function here; `amtacsctl migrate` applies this
-- file after the versioned migrations (docs/schema.md, "Function files").

CREATE OR REPLACE FUNCTION acs.control_char_position(t text)
    RETURNS integer
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE WHEN t ~ '[\x01-\x1f\x7f-\x9f]'
                THEN length(substring(t FROM '^[^\x01-\x1f\x7f-\x9f]*')) + 1
                ELSE 0 END;
END
$$;
COMMENT ON FUNCTION acs.control_char_position(text) IS
    'Position of the first control character of t (1-based), 0 when t has none';

CREATE OR REPLACE FUNCTION acs.is_valid_name(t text)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog
AS $$
BEGIN
    RETURN t <> ''
       AND t !~ '[\x01-\x1f\x7f-\x9f]'
       AND t !~ '^\s' AND t !~ '\s$';
END
$$;
COMMENT ON FUNCTION acs.is_valid_name(text) IS
    'True for a non-empty text without control characters and without leading/trailing whitespace';

CREATE OR REPLACE FUNCTION acs.is_valid_pair(t text)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog
AS $$
BEGIN
    RETURN t ~ '^[^=\s]+=' AND t !~ '[\x01-\x1f\x7f-\x9f]';
END
$$;
COMMENT ON FUNCTION acs.is_valid_pair(text) IS
    'True for NAME=VALUE with a non-empty name without whitespace and no control characters';

CREATE OR REPLACE FUNCTION acs.is_valid_pair_list(a text[])
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog
AS $$
BEGIN
    RETURN cardinality(a) = 0
        OR (array_ndims(a) = 1 AND array_lower(a, 1) = 1 AND cardinality(a) <= 20
            AND (SELECT bool_and(v IS NOT NULL AND length(v) <= 1024 AND acs.is_valid_pair(v))
                   FROM unnest(a) AS v));
END
$$;
COMMENT ON FUNCTION acs.is_valid_pair_list(text[]) IS
    'True for a one-dimensional list of at most 20 NAME=VALUE items of at most 1024 characters';

-- Raises a clear error unless v is acceptable for the field "what".
CREATE OR REPLACE FUNCTION acs.check_name(what text, v text, max_length integer, required boolean)
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
COMMENT ON FUNCTION acs.check_name(text,text,integer,boolean) IS
    'Raises a descriptive error unless v is a valid value for the field named what';

-- Raises a clear error unless the list is acceptable (item_label: "task value").
CREATE OR REPLACE FUNCTION acs.check_pair_list(what text, item_label text, a text[])
    RETURNS void
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
COMMENT ON FUNCTION acs.check_pair_list(text,text,text[]) IS
    'Raises a descriptive error unless a is a list of at most 20 NAME=VALUE items';

-- Raises a clear error unless the connection is registered.
CREATE OR REPLACE FUNCTION acs.check_connection(connection text)
    RETURNS void
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

-- Raises a clear error unless the group is defined.
CREATE OR REPLACE FUNCTION acs.check_group(conn_group text)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
DECLARE
    known text;
BEGIN
    PERFORM acs.check_name('group', conn_group, 64, true);
    IF NOT EXISTS (SELECT 1 FROM acs.connection_groups AS g WHERE g.name = check_group.conn_group) THEN
        SELECT string_agg(g.name, ', ' ORDER BY g.name) INTO known FROM acs.connection_groups AS g;
        RAISE EXCEPTION 'group % is not known; known groups: %',
            quote_literal(conn_group), coalesce(known, '(none)')
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'groups are defined by admins: amtacsctl group set NAME CONNECTION...';
    END IF;
END
$$;
COMMENT ON FUNCTION acs.check_group(text) IS 'Raises a descriptive error unless the connection group is defined';
REVOKE ALL ON FUNCTION acs.check_group(text) FROM PUBLIC;

-- Integration Selection: one connection with up to 3 alternates, or a group.
-- The one definition of what a job may name as its target.
CREATE OR REPLACE FUNCTION acs.check_targets(connection text, alternates text[], conn_group text)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
DECLARE
    a text;
    seen text[];
BEGIN
    IF conn_group IS NOT NULL THEN
        IF connection IS NOT NULL OR cardinality(alternates) > 0 THEN
            RAISE EXCEPTION 'a job names either a connection (with up to 3 alternates) or a group, not both (got group % and %)',
                quote_literal(conn_group),
                CASE WHEN connection IS NOT NULL THEN 'connection ' || quote_literal(connection)
                     ELSE 'alternates' END
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM acs.check_group(conn_group);
        RETURN;
    END IF;
    IF connection IS NULL AND cardinality(alternates) > 0 THEN
        RAISE EXCEPTION 'alternates need a primary connection: name it as connection'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_connection(connection);
    IF cardinality(alternates) > 3 THEN
        RAISE EXCEPTION 'at most 3 alternate connections may follow the primary (got %)', cardinality(alternates)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    seen := ARRAY[connection];
    FOREACH a IN ARRAY coalesce(alternates, '{}') LOOP
        IF a IS NULL OR a = '' THEN
            RAISE EXCEPTION 'an alternate connection is empty; name each one'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF a = ANY (seen) THEN
            RAISE EXCEPTION 'connection % is listed twice; the primary and its alternates must differ',
                quote_literal(a)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM acs.check_connection(a);
        seen := seen || a;
    END LOOP;
END
$$;
COMMENT ON FUNCTION acs.check_targets(text,text[],text) IS
    'Raises a descriptive error unless a job names one known connection with up to 3 distinct known alternates, or one known group';
REVOKE ALL ON FUNCTION acs.check_targets(text,text[],text) FROM PUBLIC;

-- The checks of one job, in the order the submit functions made them.
DROP FUNCTION IF EXISTS acs.check_job_spec(text,text,text,text,text[],text,text,text);
CREATE OR REPLACE FUNCTION acs.check_job_spec(kind text, connection text, alternates text[], conn_group text, application text, name text, parameters text[], queue_name text, amt_user text, external_ref text)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF kind IS NULL OR kind NOT IN ('batch', 'script') THEN
        RAISE EXCEPTION 'kind must be batch or script (got %)', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM acs.check_targets(connection, alternates, conn_group);
    IF application IS NULL OR application = '' THEN
        RAISE EXCEPTION 'application is required: name the AMT application the job belongs to (e.g. DEMO2)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM acs.check_name('application', application, 128, true);
    IF kind = 'batch' THEN
        IF name IS NULL THEN
            RAISE EXCEPTION 'job_name is required for a batch job (the name of a job defined in the AMT Batch Server)'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM acs.check_name('job_name', name, 128, true);
        PERFORM acs.check_pair_list('task_values', 'task value', parameters);
    ELSE
        IF name IS NULL THEN
            RAISE EXCEPTION 'script_name is required for a script job (the script file to run on the AMT Batch Server)'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM acs.check_name('script_name', name, 1024, true);
        PERFORM acs.check_pair_list('script_parameters', 'script parameter', parameters);
    END IF;
    PERFORM acs.check_name('queue_name', queue_name, 128, false);
    PERFORM acs.check_name('amt_user', amt_user, 128, false);
    PERFORM acs.check_name('external_ref', external_ref, 256, false);
END
$$;
COMMENT ON FUNCTION acs.check_job_spec(text,text,text[],text,text,text,text[],text,text,text) IS
    'The checks of a submitted job (acs.submit_jobs); raises the first that fails';
REVOKE ALL ON FUNCTION acs.check_job_spec(text,text,text[],text,text,text,text[],text,text,text) FROM PUBLIC;

-- A console user's or an API token's name: short, printable, no spaces.
CREATE OR REPLACE FUNCTION acs.is_valid_web_name(t text)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog
AS $$
    SELECT t ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'
$$;
COMMENT ON FUNCTION acs.is_valid_web_name(text) IS
    'True for 1-64 characters of letters, digits, . _ @ -, starting with a letter or digit';
REVOKE ALL ON FUNCTION acs.is_valid_web_name(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION acs.is_valid_web_role(t text)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog
AS $$
    SELECT t IN ('viewer', 'scheduler', 'operator', 'admin')
$$;
COMMENT ON FUNCTION acs.is_valid_web_role(text) IS
    'True for viewer, scheduler, operator or admin (the web server runs requests as acs_<role>)';
REVOKE ALL ON FUNCTION acs.is_valid_web_role(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION acs.check_password_hash(password_hash text)
    RETURNS void
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
REVOKE ALL ON FUNCTION acs.check_password_hash(text) FROM PUBLIC;

-- Raises a clear error unless name and role are acceptable.
CREATE OR REPLACE FUNCTION acs.check_web_user(name text, role text)
    RETURNS void
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
COMMENT ON FUNCTION acs.check_web_user(text,text) IS
    'Raises a descriptive error unless name (and role, if not NULL) are valid for a user or token';
REVOKE ALL ON FUNCTION acs.check_web_user(text,text) FROM PUBLIC;
