# The Debian packages as an admin uses them: scripts/package builds amtacs and
# amtacs-sim (lintian: no error, every warning overridden with its reason);
# dpkg -i installs them with the right files, owners and modes and starts
# nothing; amtacsctl setup sets up a throwaway cluster; amtacsd and
# amtacs-web run from the installed paths as user amtacs with the installed
# units' command lines and carry the three seed scenarios (job logs byte for
# byte the reference); systemd-analyze verify accepts the installed units;
# dpkg --remove, then --purge, leave nothing but what Debian policy keeps.
# Without root (no dpkg -i), only the packages' contents are checked
# (dpkg-deb), and the test exits 77 saying so. Label `package`: one build only.
source "$(dirname "$0")/../lib/harness.sh"
source "$(dirname "$0")/../lib/web.sh"

pkgdir="$AMTACS_BIN/pkg"
version=$(sed -n 's/^project(amtacs VERSION \([0-9][0-9.]*\) .*/\1/p' "$AMTACS_SRC/CMakeLists.txt")
arch=$(dpkg --print-architecture)
deb="$pkgdir/amtacs_${version}_$arch.deb"
simdeb="$pkgdir/amtacs-sim_${version}_$arch.deb"
UNITDIR=/usr/lib/systemd/system

# --- build and lintian ----------------------------------------------------------------
rc=0
out=$("$AMTACS_SRC/scripts/package" --out "$pkgdir" 2>&1) || rc=$?
h_eq 0 "$rc" "scripts/package builds the packages and lintian passes"
[ "$rc" = 0 ] || { echo "$out" | tail -n 40 | sed 's/^/# /'; exit 1; }
h_match "lintian: no error, no warning that is not overridden" "$out" "lintian: no error, no warning left unjustified"
for f in "$AMTACS_SRC"/config/debian/*.lintian-overrides; do
    # each override has a comment above it saying why
    h_eq "" "$(awk '/^#/ {c=1; next} /^[^#]/ {if (!c) print; next} {c=0}' "$f")" \
        "every override in $(basename "$f") is justified by a comment"
done
[ -z "$(git -C "$AMTACS_SRC" status --porcelain --ignored=no -- config/debian debian 2>/dev/null | grep -v '^??' || true)" ] &&
    [ ! -e "$AMTACS_SRC/config/debian/changelog" ] && [ ! -e "$AMTACS_SRC/config/debian/tmp" ] &&
    [ ! -e "$AMTACS_SRC/debian" ] &&
    h_ok "the build wrote nothing into the source tree (config/debian/, no debian/)" ||
    h_not_ok "the build wrote nothing into the source tree (config/debian/, no debian/)"

# --- the packages' contents (dpkg-deb alone) ------------------------------------------
h_eq "$version" "$(dpkg-deb -f "$deb" Version)" "the version is CMakeLists.txt's project VERSION"
h_eq "$version" "$(dpkg-deb -f "$simdeb" Version)" "amtacs-sim's too"
deps=$(dpkg-deb -f "$deb" Depends)
for lib in libpq5 libsodium23 libcurl4 libmicrohttpd12 libyaml-0-2 libcjson1 libc6; do
    h_match "(^|, )$lib( |,|$)" "$deps" "amtacs depends on $lib (from the libraries it links: shlibs)"
done
listing=$(dpkg-deb -c "$deb")
has() { # has LISTING MODE OWNER PATH
    grep -qE "^$2 $3 +[0-9]+ [0-9-]+ [0-9:]+ \.$4$" <<<"$1" && h_ok "package holds $4 ($2 $3)" ||
        h_not_ok "package holds $4 ($2 $3)"
}
for p in /usr/sbin/amtacsd /usr/sbin/amtacs-web /usr/bin/amtacsctl; do has "$listing" -rwxr-xr-x root/root "$p"; done
for p in $UNITDIR/amtacsd.service $UNITDIR/amtacs-web.service /usr/lib/sysusers.d/amtacs.conf \
         /usr/lib/tmpfiles.d/amtacs.conf /etc/amtacs/amtacs.yaml; do
    has "$listing" -rw-r--r-- root/root "$p"
done
simlisting=$(dpkg-deb -c "$simdeb")
has "$simlisting" -rwxr-xr-x root/root /usr/bin/amt-batch-sim
has "$simlisting" -rw-r--r-- root/root /usr/share/amtacs-sim/amt-catalog.yaml
mkdir -p "$H_TMP/ctl"
dpkg-deb -e "$deb" "$H_TMP/ctl"
h_eq "/etc/amtacs/amtacs.yaml" "$(cat "$H_TMP/ctl/conffiles")" "/etc/amtacs/amtacs.yaml is a conffile"
h_eq "" "$(grep -E 'systemctl (enable|start)|deb-systemd-invoke (start|restart)' "$H_TMP/ctl/postinst")" \
    "installing enables and starts nothing"

if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null; then
    echo "# skip: installing needs root (dpkg -i); the packages' contents were checked with dpkg-deb" >&2
    exit 77
fi
if dpkg-query -W -f='${Status}' amtacs amtacs-sim 2>/dev/null | grep -q 'installed\|config-files'; then
    echo "# skip: amtacs is installed on this machine already; this test installs and purges it" >&2
    exit 77
fi

# From here the machine has the packages: whichever way the test ends, purge them.
purge() { dpkg --purge amtacs amtacs-sim >/dev/null 2>&1 || true; }
trap 'rc=$?; set +e; purge; (exit $rc); h_cleanup' EXIT

# --- install ----------------------------------------------------------------------------
rc=0
dpkg -i "$deb" "$simdeb" >"$H_TMP/dpkg.log" 2>&1 || rc=$?
h_eq 0 "$rc" "dpkg -i installs both packages"
[ "$rc" = 0 ] || { sed 's/^/# /' "$H_TMP/dpkg.log"; exit 1; }
h_eq "/var/lib/amtacs:/usr/sbin/nologin" "$(getent passwd amtacs | cut -d: -f6,7)" \
    "the system user amtacs exists (sysusers.d), home /var/lib/amtacs, no shell"
st() { stat -c '%a %U %G' "$1" 2>&1; }
h_eq "750 root amtacs" "$(st /etc/amtacs)" "/etc/amtacs: 0750 root:amtacs (tmpfiles.d)"
h_eq "640 root amtacs" "$(st /etc/amtacs/amtacs.yaml)" "/etc/amtacs/amtacs.yaml: 0640 root:amtacs"
h_eq "750 amtacs amtacs" "$(st /var/lib/amtacs)" "/var/lib/amtacs: 0750 amtacs:amtacs"
for p in /usr/sbin/amtacsd /usr/sbin/amtacs-web /usr/bin/amtacsctl /usr/bin/amt-batch-sim; do
    h_eq "755 root root" "$(st "$p")" "$p: 0755 root:root"
done
h_eq "644 root root" "$(st $UNITDIR/amtacsd.service)" "the units are in $UNITDIR"
h_eq "" "$(ls /etc/systemd/system/*.wants/amtacs* 2>/dev/null)" "no unit is enabled"
h_eq "amtacsctl $version" "$(/usr/bin/amtacsctl version | cut -d' ' -f1,2)" "the installed amtacsctl is this version"
for u in amtacsd amtacs-web; do
    out=$(systemd-analyze verify "$UNITDIR/$u.service" 2>&1) && [ -z "$out" ] &&
        h_ok "systemd-analyze verify accepts the installed $u.service" ||
        { h_not_ok "systemd-analyze verify accepts the installed $u.service"; echo "$out" | sed 's/^/# /'; }
done

# --- set up, as an admin would ------------------------------------------------------------
h_pg_start
SIM_BIN=/usr/bin/amt-batch-sim CATALOG=/usr/share/amtacs-sim/amt-catalog.yaml h_sim_start
conf=/etc/amtacs/amtacs.yaml
# the admin's edits: the cluster's socket, free ports, the Batch Server
sed -i -e "s|host=/var/run/postgresql|host=$PGHOST port=$PGPORT|" \
       -e 's|^  listen: "127.0.0.1:94[78]0"|  listen: "127.0.0.1:0"|' -e '/^connections:/,$d' "$conf"
cat >>"$conf" <<CONF
connections:
  - name: AMTDEMO
    url: $H_SIM_URL
    batch_user: amtopcon
    allow_kill: true
    poll: {initial_delay: 20ms, interval: 50ms, max_interval: 200ms}
CONF
rc=0
out=$(printf 'console-password-1\n' | /usr/bin/amtacsctl setup --db "$H_PGCONN" 2>&1) || rc=$?
h_eq 0 "$rc" "amtacsctl setup sets up the throwaway cluster"
echo "$out" | sed 's/^/# /'
h_match "created login role amtacs, member of acs_daemon" "$out" "the daemon's login is amtacs (the configuration's)"
h_eq "600 amtacs amtacs" "$(st /etc/amtacs/secret.key)" "the secret key is amtacs's, 0600"
out=$(/usr/bin/amtacsctl setup --db "$H_PGCONN" </dev/null 2>&1)
h_match "nothing changed" "$out" "a second setup changes nothing"
printf 'amtopcon-secret\n' | /usr/bin/amtacsctl -c "$conf" --db "$H_PGCONN" batch-user set amtopcon >/dev/null

# --- run as the units would: their ExecStart, as user amtacs ----------------------------------
run_unit() { # run_unit UNIT LOG: the pid in RUN_PID
    local cmd
    cmd=$(sed -n 's/^ExecStart=//p' "$UNITDIR/$1")
    # shellcheck disable=SC2086 # the command line is split as systemd splits it (no quotes in it)
    (umask 077; exec setpriv --reuid=amtacs --regid=amtacs --init-groups --inh-caps=-all -- $cmd >>"$2" 2>&1) &
    RUN_PID=$!
    H_PIDS+=("$RUN_PID")
}
H_DAEMON_LOG="$H_TMP/amtacsd.log"
H_DAEMON_CFG=$conf
H_LOGS+=("$H_DAEMON_LOG" "$H_TMP/amtacs-web.log")
run_unit amtacsd.service "$H_DAEMON_LOG"
H_DAEMON_PID=$RUN_PID
h_daemon_ready
h_eq "amtacs /usr/sbin/amtacsd" "$(ps -o user=,args= -p "$H_DAEMON_PID" | awk '{print $1, $2}')" \
    "amtacsd runs from /usr/sbin as amtacs"
run_unit amtacs-web.service "$H_TMP/amtacs-web.log"
web_pid=$RUN_PID
h_wait_until 60 grep -q 'event=web.listening' "$H_TMP/amtacs-web.log" || { cat "$H_TMP/amtacs-web.log" >&2; exit 1; }
H_WEB_URL="http://127.0.0.1:$(grep 'event=web.listening' "$H_TMP/amtacs-web.log" | tail -1 | grep -o '(port [0-9]*' | tr -dc 0-9)"
h_eq "amtacs" "$(ps -o user= -p "$web_pid")" "amtacs-web runs as amtacs"
h_eq 200 "$(h_web_req POST /api/v1/login -H 'Content-Type: application/json' \
             --data '{"user":"admin","password":"console-password-1"}')" \
    "the console admin that setup made logs in"

# --- the three seed scenarios -------------------------------------------------------------
ctl() { /usr/bin/amtacsctl --db "$H_PGCONN" "$@"; }
reference() { sed "s|^Server          : .*|Server          : $H_SIM_URL|" "$AMTACS_SRC/tests/data/joblogs/$1"; }
same_log() { # same_log ID REFERENCE
    reference "$2" >"$H_TMP/ref.log"
    ctl log "$1" >"$H_TMP/got.log"
    cmp -s "$H_TMP/ref.log" "$H_TMP/got.log" && h_ok "job $1's log is byte for byte $2" ||
        { h_not_ok "job $1's log is byte for byte $2"; diff "$H_TMP/ref.log" "$H_TMP/got.log" | sed 's/^/# /'; }
}
id1=$(ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
ctl wait "$id1" --timeout 120 >/dev/null || true
h_eq "DONE|success" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id1")" "REPORTTEST01 ends DONE"
same_log "$id1" REPORTTEST01.DONE.log
id2=$(ctl submit script -C AMTDEMO -a DEMO2 -s 'F:\Amt\Scripts\DEMO2\RUN_FILENAMETEST.ps1')
ctl wait "$id2" --timeout 120 >/dev/null || true
h_eq "ERROR|failure" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id2")" "RUN_FILENAMETEST ends ERROR"
same_log "$id2" RUN_FILENAMETEST.ERROR.log
id3=$(ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = $id3"
ctl kill "$id3" >/dev/null
ctl wait "$id3" --timeout 120 >/dev/null || true
h_eq "KILLED|failure" "$(h_sql -c "SELECT completion_name, result FROM acs.job_results WHERE id = $id3")" "LONGRUNNINGREPORT ends KILLED"
same_log "$id3" LONGRUNNINGREPORT.KILLED.log

for prog in amtacsd:"$H_DAEMON_PID" amtacs-web:"$web_pid"; do
    kill -TERM "${prog#*:}"
    rc=0
    wait "${prog#*:}" || rc=$?
    h_eq 0 "$rc" "SIGTERM (the unit's KillSignal) stops ${prog%%:*} with status 0"
done

# --- remove, then purge ----------------------------------------------------------------------
installed=$(dpkg -L amtacs amtacs-sim | sort -u)
rc=0
dpkg --remove amtacs amtacs-sim >"$H_TMP/dpkg.log" 2>&1 || rc=$?
h_eq 0 "$rc" "dpkg --remove removes both"
h_eq "" "$(for f in /usr/sbin/amtacsd /usr/sbin/amtacs-web /usr/bin/amtacsctl /usr/bin/amt-batch-sim \
                     $UNITDIR/amtacsd.service $UNITDIR/amtacs-web.service; do [ -e "$f" ] && echo "$f"; done)" \
    "the programs and units are gone"
h_eq "/etc/amtacs/amtacs.yaml /etc/amtacs/secret.key" \
    "$(ls /etc/amtacs/amtacs.yaml /etc/amtacs/secret.key 2>/dev/null | tr '\n' ' ' | sed 's/ $//')" \
    "the configuration and the key stay until purge (policy: remove keeps conffiles)"
rc=0
dpkg --purge amtacs amtacs-sim >>"$H_TMP/dpkg.log" 2>&1 || rc=$?
h_eq 0 "$rc" "dpkg --purge purges both"
left=$(while read -r f; do if [ -e "$f" ] && [ ! -d "$f" ]; then echo "$f"; fi; done <<<"$installed")
h_eq "" "$left" "no file of the packages is left"
h_eq "" "$(find /etc /usr /var /opt -path /var/tmp -prune -o -name '*amtacs*' -print 2>/dev/null)" \
    "nothing named amtacs is left in /etc, /usr, /var or /opt (configuration, key pair, /var/lib/amtacs, dpkg's and systemd's records)"
h_eq "amtacs" "$(getent passwd amtacs | cut -d: -f1)" "the system user amtacs stays (Debian keeps system users)"
h_eq "not-installed" "$(dpkg-query -W -f='${db:Status-Status}' amtacs 2>/dev/null || echo not-installed)" \
    "dpkg forgets the package"
