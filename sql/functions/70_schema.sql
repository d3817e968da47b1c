-- functions/70_schema.sql: what amtacsd and amtacs-web ask the schema before
-- they start, so that neither runs against a schema older or newer than the
-- one it was built for (they say which version they found, which they need,
-- and to run `amtacsctl migrate`).
--
-- The current definition of each function here; `amtacsctl migrate` applies this
-- file after the versioned migrations (docs/schema.md, "Function files").

CREATE OR REPLACE FUNCTION acs.schema_state(OUT version integer, OUT functions text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT (SELECT coalesce(max(m.version), 0) FROM acs.schema_migrations AS m),
           (SELECT string_agg(f.name || ' ' || f.checksum, E'\n' ORDER BY f.name COLLATE "C")
              FROM acs.schema_functions AS f)
$$;
COMMENT ON FUNCTION acs.schema_state() IS
    'The highest applied migration and each applied function file with its SHA-256 (name checksum, one a line)';
REVOKE ALL ON FUNCTION acs.schema_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acs.schema_state()
    TO acs_daemon, acs_web, acs_viewer, acs_scheduler, acs_operator, acs_admin;
