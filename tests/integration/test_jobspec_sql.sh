#!/usr/bin/env bash
# The C rules for task values and script parameters (src/lib/jobspec.c, which
# amtacsctl submit applies before it connects) agree with the database's
# (acs.is_valid_pair_list, acs.check_pair_list) on a list of tricky values,
# and every value amtacsctl lets through arrives in the database byte for byte.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sql -c "SELECT acs.register_connection('AMTDEMO')" >/dev/null

long_x=$(printf 'x%.0s' $(seq 1 1022))
long_e=$(printf '\xc3\xa9%.0s' $(seq 1 1022))
values=(
    # accepted
    'A=1' 'A=' 'A==' 'A=b=c' 'PATH=C:\x y' 'A= lead' 'A=trail ' 'A=NULL' 'NULL=NULL' 'A={}'
    '{=}' 'A="q"' '"="' 'A=\' 'A=\\"' 'A=,' 'A={a,b}' "A='" "O'K=1" '-A=1' '[1:1]={x}=1'
    $'A=\xc3\xa9' $'\xe5\x90\x8d=\xe5\x80\xa4' $'A=\xc2\xa0' $'A\xc2\xa0B=1' $'A\xe3\x80\x80B=1'
    $'A\xe2\x80\xa8B=1' $'A=\xc2\xa1' $'A=\xf0\x9f\x98\x80' $'A=\xef\xbf\xbf' $'\xef\xbb\xbfA=1'
    "A=$long_x" "A=$long_e"
    # refused
    '' 'justtext' '=25' '=' '==' 'A B=1' ' A=1' 'A =1' 'NAME' 'A\ B=1'
    $'A=1\n' $'A\t=1' $'\x01' $'A=\x1f' $'A=\x7f' $'A=\r' $'A=\v' $'A=\f' $'A=\x1b[0m'
    $'A=\xc2\x80' $'A=\xc2\x85' $'A=\xc2\x9f' $'A=\xff' $'A=\xc3' $'A=\xc0\xaf' $'A=\xe0\x80\xaf'
    $'A=\xed\xa0\x80' $'A=\xf4\x90\x80\x80' $'A=\xfe\xff'
    "A=${long_x}x" "A=${long_e}"$'\xc3\xa9' "${long_x}xxx"
)

# The value as hex, so that psql does not judge its bytes before the server does.
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# A quoted SQL literal of a hex string (only [0-9a-f], so it needs no escaping).
hexlit() { printf "'%s'" "$(hex "$1")"; }

# The database's verdict on a value: "V:C" where V is what
# acs.is_valid_pair_list says (t/f) and C whether acs.check_pair_list (what the
# submit functions call) takes it (t/f); "encoding" when the server refuses
# the bytes themselves. All values in one session (a psql a value cost most
# of this test's time): verdicts[i] is the verdict on values[i].
cat >"$H_TMP/verdict.sql" <<'SQL'
CREATE FUNCTION pg_temp.jobspec_verdict(h text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE x text; v text; c text := 't';
BEGIN
    BEGIN
        x := convert_from(decode(h, 'hex'), 'UTF8');
    EXCEPTION WHEN others THEN
        IF SQLERRM LIKE 'invalid byte sequence for encoding "UTF8"%' THEN RETURN 'encoding'; END IF;
        RETURN 'psql said: ' || SQLERRM;
    END;
    v := CASE acs.is_valid_pair_list(ARRAY[x]) WHEN true THEN 't' WHEN false THEN 'f' END;
    BEGIN
        PERFORM acs.check_pair_list('task_values', 'task value', ARRAY[x]);
    EXCEPTION WHEN others THEN
        c := 'f';
    END;
    RETURN v || ':' || c;
END $$;
SQL
rows=()
for i in "${!values[@]}"; do rows+=("($i, $(hexlit "${values[$i]}"))"); done
verdicts=()
while IFS='|' read -r i verdict; do
    verdicts[i]=$verdict
done < <(h_sql -f "$H_TMP/verdict.sql" -c "SELECT i, replace(pg_temp.jobspec_verdict(h), E'\n', ' ')
                                              FROM (VALUES $(IFS=,; echo "${rows[*]}")) AS v(i, h) ORDER BY i")

shown() { printf '%q' "${1:0:40}"; }

agree=0
disagree=0
stored=() # "ID|INDEX" of the values both took: checked below, in one query
for i in "${!values[@]}"; do
    v=${values[$i]}
    db=${verdicts[$i]:-"no verdict"}
    set +e
    out=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j J -v "$v" 2>&1)
    rc=$?
    set -e
    case "$rc:$db" in
        0:t:t)
            # accepted by both: it must be stored exactly as given (checked below)
            if [[ "$out" =~ ^[0-9]+$ ]]; then stored+=("$out|$i"); else
                disagree=$((disagree + 1)); h_not_ok "$(shown "$v") is stored changed (amtacsctl said: $out)"; fi ;;
        2:f:f|2:encoding)
            if [[ "$out" == "amtacsctl submit: bad --value: task value 1 "* ]]; then
                agree=$((agree + 1))
            else
                disagree=$((disagree + 1)); h_not_ok "$(shown "$v") refused with: $out"
            fi ;;
        *)
            disagree=$((disagree + 1))
            h_not_ok "$(shown "$v"): amtacsctl exit $rc ($out), database $db" ;;
    esac
done
# Each value both took is stored byte for byte: the jobs whose task_values are
# not exactly the value (or that do not exist) come back.
if [ ${#stored[@]} -gt 0 ]; then
    rows=()
    for p in "${stored[@]}"; do rows+=("(${p%|*}, ${p#*|}, $(hexlit "${values[${p#*|}]}"))"); done
    changed=" $(h_sql -c "SELECT v.i FROM (VALUES $(IFS=,; echo "${rows[*]}")) AS v(id, i, h)
                          LEFT JOIN acs.jobs j ON j.id = v.id
                          WHERE (j.task_values = ARRAY[convert_from(decode(v.h, 'hex'), 'UTF8')]) IS NOT TRUE" |
        tr '\n' ' ')"
    for p in "${stored[@]}"; do
        i=${p#*|}
        if [[ "$changed" == *" $i "* ]]; then
            disagree=$((disagree + 1)); h_not_ok "$(shown "${values[$i]}") is stored changed"
        else
            agree=$((agree + 1))
        fi
    done
fi
h_eq "${#values[@]} 0" "$agree $disagree" "amtacsctl and the database agree on every one of ${#values[@]} tricky values"

# Several at once, as script parameters: one literal carries them all unchanged.
params=('A=1' 'B={x,y}' 'C="q" \ z' 'D=NULL' 'E=' $'F=\xc3\xa9 ' 'G= ')
args=()
for p in "${params[@]}"; do args+=(-p "$p"); done
id=$(h_ctl submit script -C AMTDEMO -a DEMO2 -s S.ps1 "${args[@]}")
got=$(h_sql -c "SELECT array_to_string(script_parameters, '|', '<null>') FROM acs.jobs WHERE id = $id")
h_eq "$(IFS='|'; printf '%s' "${params[*]}")" "$got" "seven script parameters arrive in order and unchanged"

h_run_fails "a bad script parameter is refused" h_ctl submit script -C AMTDEMO -a DEMO2 -s S.ps1 -p A=1 -p 'MY PARAM=1'
h_eq "amtacsctl submit: bad --param: script parameter 2 ('MY PARAM=1') is not name=value: the NAME has a space at position 3; each item must be NAME=VALUE with a non-empty NAME without spaces" \
    "$H_OUT" "naming the option, the position and the problem"
