# The schema's owner: migrate hands schema acs and everything in it to
# acs_owner, a role with no login and no attribute, so that a SECURITY DEFINER
# function -- which runs as its owner -- can never do more than acs_owner can,
# whoever ran migrate. Before, it ran as the superuser who migrated.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
owned_elsewhere() {
    h_sql -d "${1:-$PGDATABASE}" -c "
        SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'acs'::regnamespace
                   AND relowner <> 'acs_owner'::regrole)
             + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'acs'::regnamespace
                   AND proowner <> 'acs_owner'::regrole)
             + (SELECT count(*) FROM pg_type WHERE typnamespace = 'acs'::regnamespace
                   AND typowner <> 'acs_owner'::regrole)
             + (SELECT count(*) FROM pg_namespace WHERE nspname = 'acs'
                   AND nspowner <> 'acs_owner'::regrole)"
}

# --- migrated by a superuser: everything belongs to acs_owner -------------------------
h_eq "$PGUSER t" "$(h_sql -c "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user" | tr '|' ' ')" \
    "this migrate ran as the superuser $PGUSER"
h_eq 0 "$(owned_elsewhere)" "schema acs, its tables, views, sequences, types and functions all belong to acs_owner"
h_eq "f f f f f f 0" \
    "$(h_sql -c "SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
                        (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)
                   FROM pg_roles AS r WHERE rolname = 'acs_owner'" | tr '|' ' ')" \
    "acs_owner has no login, no attribute and no membership"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'acs'::regnamespace
                       AND prosecdef AND proowner <> 'acs_owner'::regrole")" \
    "no SECURITY DEFINER function of acs runs as anyone but acs_owner"

# --- a function tricked into acting as its owner cannot read outside acs --------------
# acs.tricked stands for any SECURITY DEFINER function talked into running SQL
# it was not written for; it is made by migrate's owner the way migrations make theirs.
h_sql -c "CREATE TABLE public.payroll (secret text); INSERT INTO public.payroll VALUES ('salaries')"
h_sql -c "CREATE ROLE operator1 LOGIN IN ROLE acs_operator"
h_sql <<'SQL'
CREATE FUNCTION acs.tricked(q text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$ DECLARE r text; BEGIN EXECUTE q INTO r; RETURN r; END $$;
SQL
h_ctl migrate >/dev/null # hands the new function over, as it does for a migration's
h_sql -c "GRANT EXECUTE ON FUNCTION acs.tricked(text) TO acs_operator"
tricked() { psql -X -q -At -U operator1 -c "SELECT acs.tricked(\$q\$$1\$q\$)" 2>&1; }
h_eq "acs_owner" "$(tricked "SELECT current_user::text")" "the tricked function runs as acs_owner"
h_match '^[0-9]+$' "$(tricked "SELECT count(*)::text FROM acs.jobs")" "it can read what acs_owner owns"
h_match "permission denied for table payroll" "$(tricked "SELECT secret FROM public.payroll")" \
    "it cannot read a table outside acs"
h_match "permission denied" "$(tricked "SELECT pg_read_file('/etc/hostname')")" \
    "it cannot read the server's files"
h_match "must be superuser or have privileges of pg_read_all_settings" \
    "$(tricked "SELECT current_setting('data_directory')")" \
    "it cannot read superuser-only settings"
h_match "permission denied to create role" "$(tricked "CREATE ROLE evil LOGIN")" \
    "it cannot create a role"
h_match "must be superuser to alter superuser roles" "$(tricked "ALTER ROLE acs_owner SUPERUSER")" \
    "it cannot raise its own rights"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM pg_roles WHERE rolname = 'evil'")" "no role was made"

# --- a schema from before the owner role is handed over by the next migrate ------------
h_sql -c "ALTER FUNCTION acs.request_kill(bigint) OWNER TO $PGUSER; ALTER TABLE acs.jobs OWNER TO $PGUSER"
h_eq "$PGUSER $PGUSER" "$(h_sql -c "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'acs.request_kill(bigint)'::regprocedure
                                 UNION ALL SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'acs.jobs'::regclass" | tr '\n' ' ' | sed 's/ $//')" \
    "(a function and a table owned by the superuser, as an older release left them)"
out=$(h_ctl migrate)
h_match "up to date" "$out" "migrate on an up-to-date schema applies nothing"
h_eq 0 "$(owned_elsewhere)" "and hands what was left over to acs_owner"

# --- someone gave the owner more: migrate says so ------------------------------------
h_sql -c "ALTER ROLE acs_owner CREATEDB"
h_match "warning: role acs_owner has CREATEDB" "$(h_ctl migrate)" "migrate warns when acs_owner has an attribute"
h_sql -c "ALTER ROLE acs_owner NOCREATEDB"
h_eq "" "$(h_ctl migrate | grep warning || true)" "and is quiet again once it is removed"

# --- migrated by a role that is not a superuser --------------------------------------
h_sql -c "CREATE ROLE migrator LOGIN CREATEROLE" -c "CREATE DATABASE second OWNER migrator"
out=$("$CTL_BIN" --db "host=$PGHOST port=$PGPORT user=migrator dbname=second" migrate 2>&1) ||
    h_not_ok "a database owner with CREATEROLE migrates: $out"
h_match "schema is now at version" "$out" "a database owner with CREATEROLE (not a superuser) migrates"
h_eq 0 "$(owned_elsewhere second)" "and everything in its acs belongs to acs_owner too"
h_eq "f" "$(h_sql -d second -c "SELECT has_database_privilege('acs_owner', 'second', 'CREATE')")" \
    "acs_owner kept no CREATE on the database"

# --- and a role without those rights is told what is missing, with nothing changed -----
h_sql -c "CREATE ROLE weak LOGIN" -c "CREATE DATABASE third OWNER weak"
out=$("$CTL_BIN" --db "host=$PGHOST port=$PGPORT user=weak dbname=third" migrate 2>&1) &&
    h_not_ok "a role without CREATEROLE cannot migrate"
h_match "needs a superuser, or a role with CREATEROLE that owns the database" "$out" \
    "a role without CREATEROLE is told what migrate needs, and what PostgreSQL refused"
h_eq "" "$(h_sql -d third -c "SELECT nspname FROM pg_namespace WHERE nspname = 'acs'")" \
    "and its database has no acs schema afterwards"
