# Key rotation: amtacsctl rekey re-seals every Batch User password under a new
# key pair; the daemon (running through it, restarted after it, or started in
# the middle of it) logs on for every user; a rekey killed at any step leaves
# every password openable and a second rekey completes the job; the retired
# key opens nothing. Then batch-user list and delete.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sim_start
# the simulator's two API users, with their passwords
h_batch_user amtopcon amtopcon-secret
h_batch_user opconbatch opconbatch-secret
# Different users and password lengths, one sealed length (padded: docs/keys.md).
sealed_lengths() { h_sql -c "SELECT string_agg(DISTINCT octet_length(sealed_password)::text || '/v' || get_byte(sealed_password, 0), ',') FROM acs.batch_users"; }
h_eq "1585/v2" "$(sealed_lengths)" "every sealed password has the same length"
KEY="$H_TMP/secret.key"
CFG="$H_TMP/amtacs.yaml"
cat >"$CFG" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $KEY
http: {listen: "127.0.0.1:0"}
log_level: debug
connections:
  - name: AMTDEMO
    url: $H_SIM_URL
    batch_user: amtopcon
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
  - name: SECOND
    url: $H_SIM_URL
    batch_user: opconbatch
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
CONF

rekey() { "$CTL_BIN" -c "$CFG" rekey; }
# The key id in a public key file (its second field).
pub_id() { awk '{print $2}' "$1"; }
# The key ids the rows are sealed with, comma-separated.
row_ids() { h_sql -c "SELECT string_agg(DISTINCT key_id, ',') FROM acs.batch_users"; }
# Rotation files left over (".new", ".old", temporaries), space-separated.
leftovers() {
    local f
    for f in "$KEY".*; do
        [ -e "$f" ] && [ "$f" != "$KEY.pub" ] && printf '%s ' "${f##*/}"
    done
    return 0
}
# One job on each connection (each logs on with its own Batch User); prints
# their completion names in order, "DONE DONE" when both logged on.
both_jobs() {
    local a b
    a=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANT)
    b=$(h_ctl submit batch -C SECOND -a DEMO2 -j INSTANT)
    h_ctl wait "$a" --timeout 60 --quiet >/dev/null 2>&1 || true
    h_ctl wait "$b" --timeout 60 --quiet >/dev/null 2>&1 || true
    h_sql -c "SELECT string_agg(coalesce(completion_name, state), ' ' ORDER BY id)
              FROM acs.job_results WHERE id IN ($a, $b)"
}
daemon_fresh() {
    h_daemons_stop
    h_daemon_start "${1:-$CFG}"
    h_daemon_ready
}
no_secret_in() {
    if grep -qE 'amtopcon-secret|opconbatch-secret' <<<"$1"; then
        h_not_ok "$2"
    else
        h_ok "$2"
    fi
}

# --- a rekey while the daemon runs ------------------------------------------------
daemon_fresh
h_eq "DONE DONE" "$(both_jobs)" "both Batch Users log on before the rekey"
old_id=$(pub_id "$KEY.pub")
h_eq "$old_id" "$(row_ids)" "both passwords are sealed with the first key"
cp -p "$KEY" "$H_TMP/retired.key"

out=$(rekey 2>&1) && h_ok "rekey succeeds" || h_not_ok "rekey succeeds: $out"
new_id=$(pub_id "$KEY.pub")
[ "$new_id" != "$old_id" ] && h_ok "KEY.pub holds a new key" || h_not_ok "KEY.pub holds a new key"
h_eq "$new_id" "$(row_ids)" "every row is sealed with the new key id"
h_match "amtopcon re-sealed: key $old_id -> $new_id" "$out" "rekey says what it re-sealed, with key ids"
h_match "done: 2 password\(s\) re-sealed; every password is sealed with key $new_id" "$out" \
    "and counts them"
no_secret_in "$out" "rekey prints no password"
h_eq "" "$(leftovers)" "no .new or .old file is left"
h_eq "600 644" "$(stat -c %a "$KEY") $(stat -c %a "$KEY.pub")" "the key files keep modes 0600 and 0644"
h_eq "DONE DONE" "$(both_jobs)" \
    "the daemon started before the rekey follows it (re-reads the key files) and logs on"
daemon_fresh
h_eq "DONE DONE" "$(both_jobs)" "a daemon restarted after the rekey logs on for both users"
h_match "keys $new_id" "$(grep 'event=daemon.start' "$H_DAEMON_LOG")" "and loaded the new key"

# one at a time: a rekey while another holds the key directory's lock changes nothing
if command -v flock >/dev/null; then
    h_run_fails "a second rekey at the same time is refused" flock "$H_TMP" "$CTL_BIN" -c "$CFG" rekey
    h_match "another amtacsctl rekey is running" "$H_OUT" "and says why"
    h_eq "" "$(leftovers)" "and leaves no file behind"
fi

# --- the retired key opens nothing --------------------------------------------------
sed "s|^key_file: .*|key_file: $H_TMP/retired.key|" "$CFG" >"$H_TMP/retired.yaml"
daemon_fresh "$H_TMP/retired.yaml"
h_eq "AUTHENTICATION_ERROR AUTHENTICATION_ERROR" "$(both_jobs)" \
    "a daemon holding only the retired key cannot log on for either user"
id=$(h_sql -c "SELECT max(id) FROM acs.jobs")
h_match "sealed with key $new_id, which is not among the keys loaded from .*retired.key: $old_id \(main\)" \
    "$(h_ctl log "$id")" "and the job log names the key id needed and the key ids loaded"

# --- killed at every step, a freshly started daemon still logs on; rekey again completes
for point in rekey-after-keygen rekey-after-commit rekey-after-link rekey-after-rename; do
    h_daemons_stop
    before=$(pub_id "$KEY.pub")
    rc=0
    AMTACS_CRASH_AT=$point rekey >"$H_TMP/crash.out" 2>&1 || rc=$?
    h_eq 137 "$rc" "$point: rekey dies there (exit 137)"
    h_log "$point: files left: $(leftovers); rows on $(row_ids)"
    if [ $point = rekey-after-keygen ]; then
        want=$before
        # as a crash inside keygen, between its two files, would leave it
        rm "$KEY.new.pub"
    elif [ -f "$KEY.new" ]; then
        want=$(awk '{print $2}' "$KEY.new")
    else
        want=$(awk '{print $2}' "$KEY")
    fi
    h_eq "$want" "$(row_ids)" "$point: the rows are on the key expected at that step"
    daemon_fresh
    h_eq "DONE DONE" "$(both_jobs)" "$point: a daemon started now logs on for both users"
    h_daemons_stop
    out=$(rekey 2>&1) && h_ok "$point: rekey again succeeds" || h_not_ok "$point: rekey again succeeds: $out"
    now=$(pub_id "$KEY.pub")
    h_eq "$now" "$(row_ids)" "$point: every row is on the current key"
    [ "$now" != "$before" ] && h_ok "$point: which is a new key" || h_not_ok "$point: which is a new key"
    h_eq "$now" "$(awk '{print $2}' "$KEY")" "$point: KEY and KEY.pub are the same pair"
    h_eq "" "$(leftovers)" "$point: no .new or .old file is left"
    no_secret_in "$(cat "$H_TMP/crash.out") $out" "$point: no password printed"
done
daemon_fresh
h_eq "DONE DONE" "$(both_jobs)" "after all that, both users still log on"

# --- a password that does not open stops the rekey before anything changes ---------
h_sql -c "INSERT INTO acs.batch_users (name, key_id, sealed_password)
          VALUES ('broken', '0123456789abcdef', '\x01abcdef')"
cur=$(pub_id "$KEY.pub")
h_run_fails "rekey refuses when a password does not open" rekey
h_match "broken.*sealed with key 0123456789abcdef" "$H_OUT" "naming the Batch User and its key id"
h_match "nothing was changed in the database" "$H_OUT" "and saying nothing changed"
h_eq "$cur" "$(h_sql -c "SELECT string_agg(DISTINCT key_id, ',') FROM acs.batch_users WHERE name <> 'broken'")" \
    "the other rows stay on the current key"
h_eq "DONE DONE" "$(both_jobs)" "and the daemon still logs on (KEY.new on disk changes nothing)"

# --- batch-user list ----------------------------------------------------------------
list=$(h_ctl batch-user list)
h_match "amtopcon +$cur" "$list" "batch-user list shows each user with its key id"
h_match "NAME +KEY ID +CREATED +UPDATED" "$list" "under a heading"
no_secret_in "$list" "batch-user list shows no password"
json=$(h_ctl batch-user list --json)
h_eq "amtopcon $cur|broken 0123456789abcdef|opconbatch $cur" \
    "$(jq -r '[.[] | "\(.name) \(.key_id)"] | join("|")' <<<"$json")" "batch-user list --json"
h_eq '["created_at","key_id","name","updated_at"]' "$(jq -c '.[0] | keys' <<<"$json")" \
    "with exactly name, key id and dates (no sealed bytes)"
no_secret_in "$json" "batch-user list --json shows no password"

# --- batch-user delete (last: needs acs.connections.batch_user, recorded by the daemon)
out=$(h_ctl batch-user delete broken 2>&1) && h_ok "an unused Batch User is deleted" ||
    h_not_ok "an unused Batch User is deleted: $out"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.batch_users WHERE name = 'broken'")" "and gone"
out=$(rekey 2>&1) && h_ok "then rekey completes" || h_not_ok "then rekey completes: $out"
h_eq "$(pub_id "$KEY.pub")" "$(row_ids)" "with every row on the new key"
h_eq "" "$(leftovers)" "and no .new or .old file left"
h_run_fails "a Batch User a connection uses is not deleted" h_ctl batch-user delete amtopcon
h_match "Batch User amtopcon is used by connection\(s\) AMTDEMO" "$H_OUT" "and the message names the connection"
h_eq 1 "$(h_sql -c "SELECT count(*) FROM acs.batch_users WHERE name = 'amtopcon'")" "and the user stays"
h_run_fails "an unknown Batch User" h_ctl batch-user delete nosuch
h_match "no Batch User nosuch" "$H_OUT" "is named"
h_eq "DONE DONE" "$(both_jobs)" "the daemon still logs on for both users"
h_eq "1585/v2" "$(sealed_lengths)" "after the rotations too"
