# No password, token or key in any output: the daemon's log at debug level
# (with curl's exchange), the simulator's log, amtacsctl's output and errors,
# job logs, alerts, errors stored in the database, ps, and PostgreSQL's log
# with log_statement=all -- searched raw, JSON-escaped, URL-encoded, Base64
# and hex.
source "$(dirname "$0")/../lib/harness.sh"

H_PG_EXTRA_CONF="log_statement = 'all'" h_pg_start
h_ctl migrate >/dev/null
h_sim_start --verbose
pw='s3c"r\et/+ &?=é-Amt'
bad='wr0ng"pass/+ &?=é'
jq -n --arg p "$pw" '{name: "amtopcon", password: $p}' | curl -fsS -X POST --data @- "$H_SIM_URL/sim/users" >/dev/null
out="$H_TMP/outputs"
mkdir -p "$out"
ctl() { h_ctl "$@" >>"$out/ctl.out" 2>>"$out/ctl.err"; }
snap() { ps -eo args >>"$out/ps.txt"; }

"$CTL_BIN" keygen --secret "$H_TMP/secret.key" >>"$out/ctl.out" 2>&1
printf '%s\n' "$pw" | ctl batch-user set amtopcon --public-key "$H_TMP/secret.key.pub"
printf '%s\n' "$bad" | ctl batch-user set opconbatch --public-key "$H_TMP/secret.key.pub"
cat >"$H_TMP/amtacs.yaml" <<CONF
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
key_file: $H_TMP/secret.key
http: {listen: "127.0.0.1:0"}
log_level: debug
daemon:
  heartbeat_interval: 200ms
connections:
  - name: AMTDEMO
    url: $H_SIM_URL
    batch_user: amtopcon
    allow_kill: true
    poll: {initial_delay: 20ms, interval: 50ms}
  - name: WRONG
    url: $H_SIM_URL
    batch_user: opconbatch
CONF
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
snap

ids=()
for j in REPORTTEST01 ERRORJOB LONGRUNNINGREPORT; do ids+=("$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j $j)"); done
ids+=("$(h_ctl submit batch -C WRONG -a DEMO2 -j INSTANT)")
h_wait_sql 60 running "SELECT state FROM acs.jobs WHERE id = ${ids[2]}"
tokens=$(curl -fsS "$H_SIM_URL/sim/tokens" | jq -r '.tokens[]')
h_match '.' "$tokens" "the daemon holds a token on the server (to search for)"
snap
curl -fsS -X POST "$H_SIM_URL/sim/tokens/expire" >/dev/null     # forces a second logon
ctl kill "${ids[2]}"
for id in "${ids[@]}"; do h_ctl wait "$id" --timeout 20 >>"$out/ctl.out" 2>>"$out/ctl.err" || true; done
tokens="$tokens
$(curl -fsS "$H_SIM_URL/sim/tokens" | jq -r '.tokens[]')"
snap
for id in "${ids[@]}"; do ctl show "$id"; ctl log "$id"; done
ctl alerts --all
ctl comm status
ctl batch-user list
h_ctl show 999999 2>>"$out/ctl.err" || true
h_eq "24" "$(h_sql -c "SELECT completion_code FROM acs.jobs WHERE id = ${ids[3]}")" "the wrong password was refused (its error paths ran)"
h_eq "2" "$(h_sim_counter .logons)" "the daemon logged on twice (before and after the tokens expired)"

# The daemon's memory (read as root through /proc/PID/mem): after a third
# logon, neither password is left anywhere in it, in clear or as the JSON sent,
# nor any token the server has replaced; only the current token may remain.
old_tokens=$tokens
curl -fsS -X POST "$H_SIM_URL/sim/tokens/expire" >/dev/null     # a third logon
id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
h_ctl wait "$id" --timeout 30 >>"$out/ctl.out" 2>>"$out/ctl.err" || true
h_eq "3" "$(h_sim_counter .logons)" "the daemon logged on a third time"
current=$(curl -fsS "$H_SIM_URL/sim/tokens" | jq -r '.tokens[]')
h_match '.' "$current" "the daemon holds a current token"
h_match '^Max core file size +0 +0 ' "$(grep -i '^max core' "/proc/$H_DAEMON_PID/limits")" \
    "the daemon's core dump size limit is 0"
needles="$H_TMP/needles"
{
    for s in "$pw" "$bad"; do
        printf 'password\t%s\n' "$s"
        printf 'password-json\t%s\n' "$(jq -rn --arg s "$s" '$s | @json' | sed 's/^"//; s/"$//')"
        # the longest piece JSON quoting leaves alone: catches a part of either form
        printf 'password-piece\t%s\n' "$(printf '%s' "$s" | tr '"\\' '\n\n' | awk '{ if (length($0) > length(m)) m = $0 } END { print m }')"
    done
    while IFS= read -r t; do [ -n "$t" ] && ! grep -qxF -- "$t" <<<"$current" && printf 'old-token\t%s\n' "$t"; done <<<"$old_tokens"
    while IFS= read -r t; do [ -n "$t" ] && printf 'current-token\t%s\n' "$t"; done <<<"$current"
} >"$needles"
h_eq "2" "$(grep -c '^old-token' "$needles")" "two tokens were replaced (to search for)"
rc=0
python3 - "$H_DAEMON_PID" "$needles" >"$out/../memscan.txt" 2>&1 <<'PY' || rc=$?
import re, sys
pid, needles = sys.argv[1], []
for line in open(sys.argv[2], encoding="utf-8"):
    kind, _, s = line.rstrip("\n").partition("\t")
    needles.append((kind, s.encode()))
try:
    mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    maps = open(f"/proc/{pid}/maps").read().splitlines()
except OSError as e:
    print(f"cannot read the daemon's memory: {e}")
    sys.exit(77)
hits, scanned = {}, 0
for m in maps:
    f = m.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    # ASan's shadow (terabytes, no data of the program) is left out
    if "r" not in f[1] or hi - lo > (1 << 30) or (len(f) > 5 and f[5] == "[vvar]"):
        continue
    for at in range(lo, hi, 1 << 24):
        n = min(hi, at + (1 << 24) + 4096) - at   # overlap: a needle across two reads
        try:
            mem.seek(at)
            data = mem.read(n)
        except OSError:
            continue
        scanned += len(data) if at + (1 << 24) >= hi else (1 << 24)
        for i, (kind, s) in enumerate(needles):
            for x in re.finditer(re.escape(s), data):
                if x.start() < (1 << 24):
                    hits.setdefault(i, []).append(f"{at + x.start():#x} {' '.join(f[5:]) or 'anon'} {f[1]}")
print(f"scanned {scanned} bytes in {len(maps)} regions")
for i, (kind, _) in enumerate(needles):
    print(kind, len(hits.get(i, [])))
    for h in hits.get(i, [])[:20]:
        print("   ", h)
PY
cat "$out/../memscan.txt"
if [ $rc = 77 ]; then
    echo "skipped: /proc/$H_DAEMON_PID/mem cannot be read (run as root)" >&2
    kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
    exit 77
fi
h_eq 0 "$rc" "the daemon's memory was scanned"
h_match '^scanned [1-9]' "$(cat "$out/../memscan.txt")" "some of it at least"
for kind in password password-json password-piece old-token; do
    n=$(awk -v k="$kind" '$1 == k { s += $2 } END { print s + 0 }' "$out/../memscan.txt")
    h_eq 0 "$n" "no $kind in the daemon's memory"
done
h_sql -c "SELECT log FROM acs.job_logs" >"$out/job_logs.txt"
h_sql -c "SELECT coalesce(error, '') || ' ' || coalesce(kill_error, '') FROM acs.jobs" >"$out/job_errors.txt"
h_sql -c "SELECT message FROM acs.alerts" >"$out/alerts.txt"
kill -TERM "$H_DAEMON_PID"; wait "$H_DAEMON_PID" || true
h_match "http.debug" "$(cat "$H_DAEMON_LOG")" "the daemon's log holds curl's exchange"
h_match "X-AMT-LogonToken: \[redacted\]|x-amt-logontoken: \[redacted\]" "$(cat "$H_DAEMON_LOG")" "with the token header redacted"
h_match "LOG:  statement:" "$(cat "$H_PG_DATA/server.log")" "PostgreSQL logged every statement"
cp "$H_DAEMON_LOG" "$out/daemon.log"
cp "$H_PG_DATA/server.log" "$out/postgres.log"
cat "$H_TMP"/sim.*.log >"$out/sim.log"

forms() { # every form a secret could take in a text output
    local s=$1
    printf '%s\n' "$s"
    jq -rn --arg s "$s" '$s | @json' | sed 's/^"//; s/"$//'
    jq -rn --arg s "$s" '$s | @uri'
    printf '%s' "$s" | base64 -w0; echo
    printf '%s' "$s" | od -An -tx1 | tr -d ' \n'; echo
    printf '%s' "$s" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo
}
secret_key=$(awk '{print $3}' "$H_TMP/secret.key")
check() { # check NAME SECRET
    local name=$1 form f hits=""
    while IFS= read -r form; do
        [ -n "$form" ] || continue
        for f in "$out"/*; do
            grep -qF -- "$form" "$f" && hits="$hits $(basename "$f")"
        done
    done < <(forms "$2")
    [ -z "$hits" ] && h_ok "the $name appears in no output, in no form" || h_not_ok "the $name appears in:$hits"
}
check "Batch User password" "$pw"
check "refused password" "$bad"
check "secret key" "$secret_key"
n=0
while IFS= read -r t; do [ -n "$t" ] && { n=$((n + 1)); check "logon token $n" "$t"; }; done <<<"$tokens"
h_match "^[1-9]" "$(ls "$out" | wc -l)" "searched: $(ls "$out" | tr '\n' ' ')"
