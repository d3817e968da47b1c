# The documentation's examples run: every fenced block in README.md and
# docs/*.md that is marked runnable is run against the demo's services (a
# private PostgreSQL cluster with the schema, the simulator, amtacsd serving
# AMTDEMO with kills allowed, Batch User amtopcon stored), in document order,
# and must do what its marker says the text claims. An example that no longer
# matches fails this test.
#
# Marking: an HTML comment right before the block (invisible on GitHub):
#
#     <!-- runnable[: FLAG...]
#     expect: REGEX     a line of the output must match (grep -E); repeatable
#     reject: REGEX     no line of the output may match; repeatable
#     exit: N           the block's exit status (default 0)
#     before: SHELL     run first, unseen by readers (must succeed); repeatable
#     then: SHELL       run after the block; its output is checked too, its
#                       exit status is not; repeatable
#     skip: REGEX       block lines matching it are not run (a server the test
#                       already runs, a command shown elsewhere); repeatable
#     -->
#     ```sh             or ```sql
#
# Flags: `fresh` (an empty queue first: no jobs, no alerts, ids from 1, Full
# Comm enabled), `sim` (a simulator of its own, whose first BatchRequestId is
# 4280), `root` (run only as root; skipped otherwise). Output is stdout and
# stderr together. sh blocks run with `bash -e -o pipefail` from the source
# tree, amtacsctl, amtacsd and amt-batch-sim on PATH, $AMTACS_DB set,
# $TMPDIR a directory of its own and $SIM the simulator's URL; `localhost:9001` / `127.0.0.1:9001` become the
# simulator's address, `localhost:9470` the daemon's HTTP address and
# `localhost:9480` amtacs-web's (it runs too, with a login of its own). sql
# blocks run with `psql -X -At -v ON_ERROR_STOP=1` (one row a line, columns
# separated by `|`). In before/then: `doc_job ID NAME [STATE]` enqueues DEMO2's
# batch job NAME as job ID and waits for STATE (running, finished), and
# `doc_settle` waits until every job has finished.
source "$(dirname "$0")/../lib/harness.sh"
source "$(dirname "$0")/../lib/web.sh"

DOCS=("$AMTACS_SRC/README.md" "$AMTACS_SRC"/docs/*.md)
mkdir -p "$H_TMP/docs"

# --- extract the marked blocks ----------------------------------------------------
# Each becomes NNN.meta (file, line, flags, lang, the marker's lines) and NNN.body.
awk -v out="$H_TMP/docs" -v src="$AMTACS_SRC/" '
function meta_line(s) { print s > meta }
function open_marker(rest) {
    n++; meta = sprintf("%s/%03d.meta", out, n); body = sprintf("%s/%03d.body", out, n)
    name = FILENAME; sub("^" src, "", name)
    meta_line("file: " name); meta_line("line: " FNR)
    sub(/^<!-- runnable:? */, "", rest)
    closed = sub(/ *-->.*$/, "", rest)
    meta_line("flags: " rest)
    if (closed) { inmark = 0; want = 1 } else inmark = 1
}
FNR == 1 { if (inmark || want || inblock) bad(); inmark = want = inblock = 0 }
function bad() { meta_line("error: the marker is not followed by a fenced sh or sql block"); close(meta) }
inblock && /^```/ { inblock = 0; close(body); close(meta); next }
inblock { print > body; next }
/^<!-- runnable/ { open_marker($0); next }
inmark && /^-->/ { inmark = 0; want = 1; next }
inmark { meta_line($0); next }
want {
    want = 0
    if ($0 ~ /^```(sh|sql)$/) { meta_line("lang: " substr($0, 4)); printf "" > body; inblock = 1 }
    else bad()
    next
}
END { if (inmark || want || inblock) bad() }
' "${DOCS[@]}"

blocks=("$H_TMP"/docs/*.meta)
[ -e "${blocks[0]}" ] || blocks=()
[ ${#blocks[@]} -ge 15 ] && h_ok "${#blocks[@]} runnable examples marked in README.md and docs/" ||
    h_not_ok "only ${#blocks[@]} runnable examples marked in README.md and docs/ (at least 15 expected)"

# --- the demo's services ---------------------------------------------------------------
h_pg_start
h_ctl migrate >/dev/null
h_sim_start
MAIN_SIM_URL=$H_SIM_URL
h_batch_user amtopcon amtopcon-secret
H_LOG_LEVEL=info H_CONN_EXTRA="    allow_kill: true" h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready
HTTP=$(h_daemon_http)
h_sql -c "CREATE ROLE docs_web LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
cp "$H_TMP/amtacs.yaml" "$H_TMP/web.yaml"
cat >>"$H_TMP/web.yaml" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "host=$PGHOST port=$PGPORT user=docs_web dbname=$PGDATABASE application_name=amtacs-web"
CONF
h_web_start "$H_TMP/web.yaml"
SEQ=$(h_sql -c "SELECT pg_get_serial_sequence('acs.jobs', 'id')")
export PATH="$AMTACS_BIN/src/ctl:$AMTACS_BIN/src/daemon:$AMTACS_BIN/src/sim:$PATH"
export AMTACS_DB=$H_PGCONN

# doc_job ID NAME [STATE]: DEMO2's batch job NAME enqueued as job ID (the ids
# after it are left as they were), then waits until it is in STATE.
doc_job() {
    local id=$1 name=$2 state=${3:-} last called got
    IFS='|' read -r last called < <(h_sql -c "SELECT last_value, is_called FROM $SEQ")
    h_sql -c "SELECT setval('$SEQ', $id, false)" >/dev/null
    got=$(h_sql -c "SELECT acs.submit_batch_job('AMTDEMO', 'DEMO2', '$name')")
    h_sql -c "SELECT setval('$SEQ', $last, '$called')" >/dev/null
    [ "$got" = "$id" ] || { echo "doc_job: got job $got, not $id" >&2; return 1; }
    [ -z "$state" ] || h_wait_sql 60 "$state" "SELECT state FROM acs.jobs WHERE id = $id" ||
        { echo "doc_job: job $id did not get $state" >&2; return 1; }
}
# doc_settle: every job killed or finished, so that nothing is left running.
doc_settle() {
    h_sql -c "SELECT count(acs.request_kill(id)) FROM acs.jobs WHERE state IN ('queued', 'starting', 'running')" >/dev/null
    h_wait_sql 60 0 "SELECT count(*) FROM acs.jobs WHERE state <> 'finished'"
}
doc_fresh() {
    doc_settle
    PGOPTIONS="-c client_min_messages=warning" \
        h_sql -c "TRUNCATE acs.jobs, acs.alerts RESTART IDENTITY CASCADE" >/dev/null
    h_sql -c "SELECT acs.set_comm(name, 'enabled') FROM acs.connections" >/dev/null
}
export -f doc_job doc_settle h_sql h_wait_sql
export SEQ

# --- run them ------------------------------------------------------------------------
for meta in "${blocks[@]}"; do
    base=${meta%.meta}
    where="$(sed -n 's/^file: //p' "$meta"):$(sed -n 's/^line: //p' "$meta")"
    flags=$(sed -n 's/^flags: //p' "$meta")
    lang=$(sed -n 's/^lang: //p' "$meta")
    if grep -q '^error: ' "$meta"; then
        h_not_ok "$where: $(sed -n 's/^error: //p' "$meta")"
        continue
    fi
    expects=() rejects=() befores=() thens=() skips=() want_exit=0 bad_key=""
    while IFS= read -r l; do
        case "$l" in
            file:* | line:* | flags:* | lang:*) ;;
            "expect: "*) expects+=("${l#expect: }") ;;
            "reject: "*) rejects+=("${l#reject: }") ;;
            "exit: "*) want_exit=${l#exit: } ;;
            "before: "*) befores+=("${l#before: }") ;;
            "then: "*) thens+=("${l#then: }") ;;
            "skip: "*) skips+=("${l#skip: }") ;;
            "") ;;
            *) bad_key=$l ;;
        esac
    done <"$meta"
    if [ -n "$bad_key" ]; then
        h_not_ok "$where: the marker has a line this test does not know: '$bad_key'"
        continue
    fi
    if [[ " $flags " == *" root "* ]] && [ "$(id -u)" != 0 ]; then
        h_ok "$where: # SKIP needs root"
        continue
    fi
    # the services this block sees
    H_SIM_URL=$MAIN_SIM_URL
    [[ " $flags " == *" fresh "* ]] && doc_fresh
    [[ " $flags " == *" sim "* ]] && h_sim_start
    export SIM=$H_SIM_URL
    sim_addr=${H_SIM_URL#http://} http_addr=${HTTP#http://} web_addr=${H_WEB_URL#http://}
    ok=1
    for b in "${befores[@]}"; do
        bash -e -o pipefail -c "$b" >"$base.before" 2>&1 ||
            { ok=0; h_not_ok "$where: 'before: $b' failed"; sed 's/^/#   /' "$base.before"; }
    done
    [ $ok = 1 ] || continue
    # the block as it runs here: skipped lines out, addresses made ours
    script="$base.run"
    skip_re=$(IFS='|'; echo "${skips[*]}")
    if [ ${#skips[@]} -gt 0 ]; then
        grep -Ev -- "$skip_re" "$base.body" || true
    else
        cat "$base.body"
    fi | sed -e "s#localhost:9001#$sim_addr#g; s#127\.0\.0\.1:9001#$sim_addr#g; s#localhost:9470#$http_addr#g; s#localhost:9480#$web_addr#g" >"$script"
    # a temporary directory of its own, so that what a block leaves is found
    export TMPDIR="$base.tmp"
    mkdir -p "$TMPDIR"
    chmod 755 "$TMPDIR"
    set +e
    if [ "$lang" = sql ]; then
        (cd "$AMTACS_SRC" && psql -X -At -v ON_ERROR_STOP=1 -f "$script") >"$base.out" 2>&1
    else
        (cd "$AMTACS_SRC" && bash -e -o pipefail "$script") >"$base.out" 2>&1
    fi
    rc=$?
    for t in "${thens[@]}"; do
        (cd "$AMTACS_SRC" && bash -o pipefail -c "$t") >>"$base.out" 2>&1
    done
    # a PostgreSQL cluster that a failed block left running is stopped
    for pid in "$TMPDIR"/*/*/postmaster.pid; do
        [ -f "$pid" ] && h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$(dirname "$pid")" -m immediate -w stop >/dev/null 2>&1
    done
    set -e
    unset TMPDIR
    why=()
    [ "$rc" = "$want_exit" ] || why+=("exit status $rc, not $want_exit")
    for re in "${expects[@]}"; do
        grep -Eq -- "$re" "$base.out" || why+=("no line matches /$re/")
    done
    for re in "${rejects[@]}"; do
        ! grep -Eq -- "$re" "$base.out" || why+=("a line matches /$re/: $(grep -Em1 -- "$re" "$base.out")")
    done
    title="$where: the $lang example ($(grep -cv '^ *$' "$script") lines run${flags:+; $flags})"
    if [ ${#why[@]} = 0 ]; then
        h_ok "$title"
    else
        h_not_ok "$title"
        printf '#   %s\n' "${why[@]}"
        echo "#   ran:"
        sed 's/^/#     /' "$script"
        echo "#   output (raw in $base.out with H_KEEP=1):"
        head -n 60 "$base.out" | sed 's/^/#     /'
    fi
done
