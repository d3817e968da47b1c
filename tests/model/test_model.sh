#!/usr/bin/env bash
# Model-checks the protocol (tests/model/amtacs.pml, docs/model.md) with spin:
#   1. the model as the code is: every property holds in every reachable state
#      (two daemons, a server with and without idempotent Start, an operator,
#      up to FAULTS faults), and the search is complete;
#   2. the model with each known bug switched on: spin must find a
#      counterexample to the property that bug breaks, so that no property
#      holds only because it checks nothing;
#   3. witnesses: a run reaches each of the paths the properties are about
#      (in doubt, takeover from a gone daemon, a late Kill, ...);
#   4. the transition markers parse (tests/model/transitions.sh), and once
#      src/lib/job.c exists, each is a row of its table (job_table).
# Needs spin (scripts/deps) and gcc. MODEL_KEEP=1 keeps the work directory
# (the verifiers and any trail: `spin -t -p -DBUG_... amtacs.pml` replays one).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
model=$here/amtacs.pml
command -v spin >/dev/null || { echo "test_model: spin is not installed (scripts/deps installs it)" >&2; exit 1; }
cc=${CC_MODEL:-gcc}
command -v "$cc" >/dev/null || { echo "test_model: $cc is not installed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/amtacs-model.XXXXXX")
if [ "${MODEL_KEEP:-0}" = 1 ]; then
    echo "test_model: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi
started=$SECONDS
failed=0

# verify NAME [-DMACRO...]: builds and runs the verifier; its report in $work/NAME/report
verify() {
    local name=$1; shift
    local dir=$work/$name
    mkdir -p "$dir"
    cp "$model" "$dir/amtacs.pml"
    (cd "$dir" && spin -a "$@" amtacs.pml >spin.out 2>&1) || { cat "$dir/spin.out" >&2; return 1; }
    # SAFETY: assertions and end states only (no never claim). -O0: gcc -O2
    # takes longer on pan.c than the search saves. -w21: a hash table for 2M
    # states (about 1M are stored), not the default 16M.
    (cd "$dir" && "$cc" -O0 -w -DSAFETY -DMEMLIM=2048 -o pan pan.c) || return 1
    (cd "$dir" && ./pan -m200000 -w21 >report 2>&1) || true
}

# 1. the model as the code is (beside the short bug runs: two cores)
verify protocol &
protocol_pid=$!

# 2. each bug: the property spin must find broken
while read -r name expect flags; do
    [ -z "$name" ] && continue
    # shellcheck disable=SC2086
    verify "$name" $flags
    got=$(grep -oE 'assertion violated [a-z_]+' "$work/$name/report" | head -n1 | cut -d' ' -f3)
    if [ "$got" = "$expect" ]; then
        echo "ok: $name -> counterexample to $expect ($(grep -oE 'at depth [0-9]+' "$work/$name/report" | head -n1))"
    else
        echo "FAIL: $name: expected a counterexample to $expect, got '${got:-none}':" >&2
        tail -n 30 "$work/$name/report" >&2
        failed=1
    fi
done <<'BUGS'
BUG_TASKID_AT_CLAIM     one_request_on_idempotent_server -DBUG_TASKID_AT_CLAIM -DIDEM=1
BUG_RESEND_TAKEOVER     no_start_again_without_operator  -DBUG_RESEND_TAKEOVER -DIDEM=0
BUG_RESOLVE_UNCHECKED   ends_at_most_once                -DBUG_RESOLVE_UNCHECKED
BUG_NO_TAKEOVER         every_job_ends                   -DBUG_NO_TAKEOVER
BUG_FINISH_UNFENCED     only_the_holder_writes           -DBUG_FINISH_UNFENCED
BUG_KILL_ON_NOTIFY      kill_only_when_requested         -DBUG_KILL_ON_NOTIFY
BUG_KILL_FORGOTTEN      requested_kill_carried_out       -DBUG_KILL_FORGOTTEN
BUG_23_AFTER_MAYBE      requested_kill_carried_out       -DBUG_23_AFTER_MAYBE
BUGS

wait "$protocol_pid" || true
report=$work/protocol/report
if grep -q '^State-vector .* errors: 0$' "$report" && ! grep -qE 'Search not completed|max search depth too small|out of memory' "$report"; then
    echo "ok: every property holds ($(grep -oE '[0-9]+ states, stored' "$report"), $(grep -oE '[0-9]+ transitions' "$report"), $(grep -oE 'depth reached [0-9]+' "$report"), $(grep -oE 'elapsed time [0-9.]+ seconds' "$report"))"
else
    echo "FAIL: the model of the protocol breaks a property, or the search did not complete:" >&2
    cat "$report" >&2
    echo "replay: MODEL_KEEP=1 $0, then spin -t -p amtacs.pml in the protocol directory" >&2
    failed=1
fi

# 3. witnesses: the paths the properties are about are taken (REACH(N) in the
# model fails when MODEL_WITNESS=N; the same verifier as 1)
if [ -x "$work/protocol/pan" ]; then
    while read -r n what; do
        (cd "$work/protocol" && MODEL_WITNESS=$n ./pan -m200000 -w21 >"witness-$n" 2>&1) || true
        if grep -q "assertion violated (witness!=$n)" "$work/protocol/witness-$n"; then
            echo "ok: reached: $what"
        else
            echo "FAIL: no run reaches: $what" >&2
            failed=1
        fi
    done <<'WITNESSES'
1 a job written in doubt
2 a job taken over from a gone daemon whose lease still ran
3 a Kill that finds its request ended (409)
4 a job in doubt resolved --follow
5 a finish written by a daemon that lost the job, fenced out
6 Start sent again for a job that may have been started (idempotent server)
7 the lease lost while Start is on the wire
WITNESSES
fi

# 4. the transitions a later test compares with job.c's table
transitions=$("$here/transitions.sh")
n=$(printf '%s\n' "$transitions" | wc -l)
if [ "$n" -ge 20 ] && printf '%s\n' "$transitions" | awk 'NF != 3 { exit 1 }'; then
    echo "ok: $n transitions marked (tests/model/transitions.sh)"
else
    echo "FAIL: the transition markers do not parse ($n lines)" >&2
    failed=1
fi

# 5. once src/lib/job.c has its table: every transition of the model is a row
# of job_table (the rows the model has none for are what it leaves out,
# docs/model.md)
jobc=$here/../../src/lib/job.c
if [ -f "$jobc" ]; then
    table=$(grep -oE '\{ *JOB_[A-Z_]+, *JEV_[A-Z_]+, *JG_[A-Z_]+, *JOB_[A-Z_]+' "$jobc" |
            sed -E 's/[{ ]//g' |
            awk -F, '{ print tolower(substr($1, 5)), tolower(substr($2, 5)), tolower(substr($4, 5)) }' |
            LC_ALL=C sort -u)
    if [ -z "$table" ]; then
        echo "FAIL: src/lib/job.c has no rows {JOB_..., JEV_..., JG_..., JOB_...} to compare with" >&2
        failed=1
    else
        extra=$(LC_ALL=C comm -23 <(printf '%s\n' "$transitions") <(printf '%s\n' "$table"))
        if [ -z "$extra" ]; then
            echo "ok: every transition of the model is a row of job.c's table"
        else
            echo "FAIL: transitions of the model that job.c's table does not have:" >&2
            printf '%s\n' "$extra" >&2
            failed=1
        fi
    fi
fi

echo "test_model: $((SECONDS - started)) s"
exit $failed
