# amtacsctl setup: from an empty database to roles, schema, key pair,
# configuration and the first console admin; a second run changes nothing and
# says so; a login without the rights is told which one it lacks before
# anything changes. Then amtacsd and amtacs-web refuse a schema older or newer
# than they know, or with other functions, saying what they found, what they
# need and the command that fixes it.
source "$(dirname "$0")/../lib/harness.sh"
source "$(dirname "$0")/../lib/web.sh"

h_pg_start
me=$(id -un)
etc="$H_TMP/etc"
mkdir -p "$etc"
cfg="$etc/amtacs.yaml"
key="$etc/secret.key"
setup() { "$CTL_BIN" setup --config "$cfg" --owner "$me" "$@"; }
fp() { sha256sum "$cfg" "$key" "$key.pub" | cut -d' ' -f1; stat -c '%i %Y %a %U' "$cfg" "$key" "$key.pub"; }

# --- without the rights: which one is missing, and nothing changed ---------------
h_sql -c "CREATE ROLE weak LOGIN"
rc=0
out=$(printf 'console-password-1\n' | setup --db "host=$PGHOST port=$PGPORT user=weak dbname=amtacs" 2>&1) || rc=$?
h_eq 1 "$rc" "setup as a login without the rights fails"
h_match "missing right: role weak has no CREATEROLE" "$out" "it names the missing CREATEROLE"
h_match "missing right: role weak does not own database amtacs \(its owner is postgres" "$out" \
    "it names the database's owner it is not"
h_eq "f f f" "$(h_sql -c "SELECT to_regnamespace('acs') IS NOT NULL,
                                 EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('amtacs_web', '$me', 'acs_owner')),
                                 EXISTS (SELECT 1 FROM pg_roles WHERE rolname LIKE 'acs\_%')" | tr '|' ' ')" \
    "nothing was made in the database (no schema, no role)"
[ ! -e "$cfg" ] && [ ! -e "$key" ] && h_ok "no file was written" || h_not_ok "no file was written"

# --- a password too short is refused before anything changes ----------------------
rc=0
out=$(printf 'short\n' | setup --db "$H_PGCONN" 2>&1) || rc=$?
h_eq 1 "$rc" "a console password that is too short fails setup"
h_match "at least 12 are needed" "$out" "and says how long it must be"
h_eq "f" "$(h_sql -c "SELECT to_regnamespace('acs') IS NOT NULL")" "before the schema was made"

# --- the first run ------------------------------------------------------------------
rc=0
out=$(printf 'console-password-1\n' | setup --db "$H_PGCONN" 2>&1) || rc=$?
h_eq 0 "$rc" "setup by a superuser succeeds"
echo "$out" | sed 's/^/# /'
h_match "wrote the starting configuration $cfg" "$out" "it wrote the configuration"
h_match "schema is now at version [0-9]+" "$out" "it migrated the schema"
h_match "created login role $me, member of acs_daemon" "$out" "it made the daemon's login"
h_match "created login role amtacs_web \(NOINHERIT\), member of acs_web" "$out" "and amtacs-web's"
h_match "made the key pair $key" "$out" "it made the key pair"
h_match "added the console user admin with role admin" "$out" "it added the console admin"
h_match "systemctl enable --now amtacsd amtacs-web" "$out" "it prints the next steps"
h_eq "acs_owner" "$(h_sql -c "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'acs'")" \
    "schema acs belongs to the schema owner role"
h_eq "t|t|f|t" "$(h_sql -c "SELECT pg_has_role('$me', 'acs_daemon', 'member'),
                                   pg_has_role('amtacs_web', 'acs_web', 'member'),
                                   (SELECT rolinherit FROM pg_roles WHERE rolname = 'amtacs_web'),
                                   (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'amtacs_web')")" \
    "the logins are members of acs_daemon and acs_web (NOINHERIT)"
h_eq "admin" "$(h_sql -c "SELECT role FROM acs.web_users WHERE name = 'admin'")" "the console admin has role admin"
h_eq "600 $me" "$(stat -c '%a %U' "$key")" "the secret key is its owner's, mode 0600"
h_eq "640" "$(stat -c '%a' "$cfg")" "the configuration is mode 0640"
h_match "configuration OK" "$("$CTL_BIN" config check "$cfg" 2>&1 | tail -n 1)" \
    "the configuration it wrote is valid"
h_match "user=$me " "$(grep -A1 '^database:' "$cfg")" "database.conninfo logs in as the daemon's login"

# --- a second run changes nothing ---------------------------------------------------
before=$(fp)
roles_before=$(h_sql -c "SELECT string_agg(rolname || rolinherit || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles")
rc=0
out=$(setup --db "$H_PGCONN" </dev/null 2>&1) || rc=$?
h_eq 0 "$rc" "a second run succeeds (and asks no password: the admin exists)"
h_match "nothing changed; everything was set up already" "$out" "and says it changed nothing"
h_match "schema is up to date" "$out" "the schema was up to date"
h_eq "$before" "$(fp)" "the configuration and the keys are untouched (content, inode, time, mode, owner)"
h_eq "$roles_before" "$(h_sql -c "SELECT string_agg(rolname || rolinherit || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles")" \
    "no role was made or changed"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.web_users")" "still one console user"

# a key with a wrong mode is repaired, and said
chmod 0644 "$key"
out=$(setup --db "$H_PGCONN" </dev/null 2>&1)
h_match "made the secret key $key mode 0600" "$out" "a secret key readable by others is made 0600 again"
h_eq "600" "$(stat -c '%a' "$key")" "and is"

# --- not a superuser: CREATEROLE and the database's owner are enough -----------------
h_sql -c "CREATE ROLE boss LOGIN CREATEROLE" -c "CREATE DATABASE amtacs2 OWNER boss"
mkdir -p "$H_TMP/etc2"
rc=0
out=$(printf 'console-password-2\n' | "$CTL_BIN" setup --config "$H_TMP/etc2/amtacs.yaml" --owner "$me" \
      --db "host=$PGHOST port=$PGPORT user=boss dbname=amtacs2" 2>&1) || rc=$?
h_eq 0 "$rc" "setup by a role with CREATEROLE that owns the database succeeds"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
h_eq "acs_owner|admin" "$(h_sql -d amtacs2 -c "SELECT (SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'acs'),
                                                      (SELECT role FROM acs.web_users WHERE name = 'admin')")" \
    "its schema belongs to acs_owner, and its console admin is made"
out=$(printf 'console-password-2\n' | "$CTL_BIN" setup --config "$H_TMP/etc2/amtacs.yaml" --owner "$me" \
      --db "host=$PGHOST port=$PGPORT user=boss dbname=amtacs2" 2>&1)
h_match "nothing changed" "$out" "and its second run changes nothing"

# --- the daemon and amtacs-web refuse a schema they do not know -----------------------
latest=$(h_sql -c "SELECT max(version) FROM acs.schema_migrations")
h_sim_start
h_daemon_config "$H_TMP/daemon.yaml"
cat >>"$H_TMP/daemon.yaml" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "host=$PGHOST port=$PGPORT user=amtacs_web dbname=$PGDATABASE"
  public_key_file: $key.pub
CONF
sed -i "s|^key_file: .*|key_file: $key|" "$H_TMP/daemon.yaml"
refused() { # WHAT REGEX: both programs exit 2 and say REGEX
    local prog bin rc out
    for prog in amtacsd amtacs-web; do
        bin=$DAEMON_BIN; [ $prog = amtacs-web ] && bin=$H_WEB_BIN
        rc=0
        out=$(timeout 30 "$bin" -c "$H_TMP/daemon.yaml" 2>&1) || rc=$?
        h_eq 2 "$rc" "$prog refuses $1 (exit 2: no restart loop)"
        h_match "${2//PROG/$prog}" "$out" "$prog says what it found, what it needs, and the command"
    done
}
h_sql -c "UPDATE acs.schema_migrations SET version = 9999 WHERE version = $latest"
refused "a newer schema" "the database schema is at version 9999, newer than this PROG knows \(version $latest\)"
prev=$(h_sql -c "SELECT max(version) FROM acs.schema_migrations WHERE version < $latest")
h_sql -c "UPDATE acs.schema_migrations SET version = 0 WHERE version = 9999"
refused "an older schema" "the database schema is at version $prev; this PROG needs version $latest: run amtacsctl migrate"
h_sql -c "UPDATE acs.schema_migrations SET version = $latest WHERE version = 0"
h_sql -c "UPDATE acs.schema_functions SET checksum = repeat('0', 64) WHERE name = 'functions/40_daemon.sql'"
refused "other functions" "at version $latest, but its functions are not this PROG's .*: run amtacsctl migrate"
h_sql -c "DROP FUNCTION acs.schema_state()"
refused "a schema from before acs.schema_state()" "older than this PROG knows .*needs version $latest: run amtacsctl migrate"
h_ctl migrate >/dev/null
h_batch_user amtopcon amtopcon-secret 2>/dev/null || true
h_daemon_start "$H_TMP/daemon.yaml"
h_daemon_ready && h_ok "after amtacsctl migrate the daemon starts" || h_not_ok "after amtacsctl migrate the daemon starts"
h_web_start "$H_TMP/daemon.yaml"
h_eq 401 "$(h_web_req GET /api/v1/me)" "and amtacs-web serves (401 to a request without a session)"
