# amtacsctl's contract with people and schedulers: every command answers
# --help and -h with its usage (on stdout, exit 0, no database needed), and
# `wait` tells each outcome by its own exit status, quietly if asked.
source "$(dirname "$0")/../lib/harness.sh"

nowhere="host=$H_TMP/nowhere"   # --help must not need a database

# --- every command listed by `amtacsctl help` takes --help and -h ---------------
# The list comes from the program itself, so a new command is checked too.
names=$("$CTL_BIN" help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}' | sort -u)
count=$(wc -w <<<"$names")
[ "$count" -ge 15 ] && h_ok "amtacsctl help lists $count commands" ||
    h_not_ok "amtacsctl help lists too few commands ($count): $names"
for name in $names; do
    for flag in --help -h; do
        set +e
        out=$("$CTL_BIN" --db "$nowhere" "$name" "$flag" 2>"$H_TMP/err")
        rc=$?
        set -e
        err=$(cat "$H_TMP/err")
        if [ "$rc" = 0 ] && [[ "$(head -n1 <<<"$out")" =~ ^usage:\ amtacsctl\ $name( |$) ]] && [ -z "$err" ]; then
            h_ok "amtacsctl $name $flag: usage on stdout, exit 0"
        else
            h_not_ok "amtacsctl $name $flag: usage on stdout, exit 0"
            printf '#   exit %s\n#   stdout: %s\n#   stderr: %s\n' "$rc" "$out" "$err"
        fi
    done
done
# --help after other arguments is help too, never a job id or a name
for args in "wait 7 --help" "show 7 -h" "kill --help 7" "log 7 --help" "submit batch -C AMTDEMO --help" \
    "comm enable --help" "batch-user delete -h" "user passwd alice -h" "user add alice --role admin --help" \
    "token create --name ci --help" "group set G1 AMTDEMO --help" "group delete G1 -h" \
    "submit batch -g G1 -A ALT1 --help"; do
    set +e
    # shellcheck disable=SC2086 # the words are the arguments
    out=$("$CTL_BIN" --db "$nowhere" $args 2>&1)
    rc=$?
    set -e
    h_match "^0 usage: amtacsctl ${args%% *}" "$rc $out" "amtacsctl $args prints the usage, exit 0"
done
h_match "-A ALTERNATE.*-g GROUP.*up to 3 alternates \(-A, --alternate, repeated, tried in order\).*connection group \(-g, --group" \
    "$("$CTL_BIN" submit --help | tr '\n' ' ')" "submit --help tells of --alternate and --group"
h_match "exit status:.*3  there is no job with that id.*4  --timeout passed" \
    "$("$CTL_BIN" wait --help | tr '\n' ' ')" "wait --help lists the exit statuses"
h_eq 0 "$(for name in $names; do "$CTL_BIN" "$name" --help; done | grep -c 'is not a job id' || true)" \
    "no --help is ever taken for a job id"

# --- wait: one exit status per outcome -------------------------------------------
h_pg_start
h_ctl migrate >/dev/null
h_sim_start
h_batch_user amtopcon amtopcon-secret
H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

# wait_rc ARGS...: runs amtacsctl wait; sets RC, OUT (stdout) and ERR (stderr)
wait_rc() {
    set +e
    OUT=$(h_ctl wait "$@" 2>"$H_TMP/wait.err")
    RC=$?
    set -e
    ERR=$(cat "$H_TMP/wait.err")
}

ok=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j INSTANTMSG)
bad=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j ERRORJOB)
long=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j LONGRUNNINGREPORT)

wait_rc "$ok" --timeout 30
h_eq "0|success DONE (4)" "$RC|$(tail -n1 <<<"$OUT")" "wait: a job that ends DONE exits 0 with its outcome"
wait_rc "$bad" --timeout 30
h_eq "1|failure ERROR (11)" "$RC|$(tail -n1 <<<"$OUT")" "wait: a job that ends ERROR exits 1"
wait_rc 999999 --timeout 30
h_eq "3|" "$RC|$OUT" "wait: an unknown job id exits 3, nothing on stdout"
h_match "^amtacsctl wait: no job 999999" "$ERR" "and says there is no such job"
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = $long"
wait_rc "$long" --timeout 0.2
h_eq 4 "$RC" "wait: a job still running when --timeout passes exits 4"
h_match "did not finish within 0.2 s" "$ERR" "and says so"
set +e
"$CTL_BIN" --db "$nowhere" wait "$ok" >/dev/null 2>"$H_TMP/wait.err"
RC=$?
set -e
h_eq 5 "$RC" "wait: no database exits 5, not 1 (the job did not fail)"
h_match "cannot connect" "$(cat "$H_TMP/wait.err")" "and names the problem"
wait_rc abc
h_eq 2 "$RC" "wait: a bad job id is a usage error (2)"
wait_rc "$ok" --timeout
h_eq 2 "$RC" "wait: --timeout without seconds is a usage error"
h_match "takes a number of seconds" "$ERR" "naming --timeout, not calling it a job id"
wait_rc "$ok" --quiet --json
h_eq 2 "$RC" "wait: --quiet with --json is a usage error"

# --- wait --quiet: nothing on stdout, whatever the outcome --------------------------
wait_rc "$ok" --quiet --timeout 30
h_eq "0||" "$RC|$OUT|$ERR" "wait --quiet: success, exit 0, prints nothing"
wait_rc "$bad" --quiet --timeout 30
h_eq "1||" "$RC|$OUT|$ERR" "wait --quiet: failure, exit 1, prints nothing"
wait_rc 999999 --quiet
h_eq "3|" "$RC|$OUT" "wait --quiet: an unknown job exits 3, nothing on stdout"
h_match "no job 999999" "$ERR" "while the error still goes to stderr"
quiet_new=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j REPORTTEST01)
wait_rc "$quiet_new" --quiet --timeout 30
h_eq "0|" "$RC|$OUT" "wait --quiet on a running job with messages prints none of them"
wait_rc "$ok" --json
h_eq "0 success" "$RC $(jq -r .result <<<"$OUT")" "wait --json still prints the outcome as JSON"
h_ctl kill "$long" >/dev/null
wait_rc "$long" --quiet --timeout 30
h_eq "1|" "$RC|$OUT" "wait --quiet on a killed job: exit 1, nothing on stdout"
