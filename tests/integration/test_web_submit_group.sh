#!/usr/bin/env bash
# Submits that wait together for amtacs-web's worker, sent by one token from
# one address, are carried out together: one transaction, one call of
# acs.submit_jobs. Each still gets its own answer and job, the audit names
# the token, and a submit by another token is not taken along. If one job of
# such a group fails its checks, nothing of the group is kept and each
# request is carried out alone: the bad one gets the database's reason, the
# others are stored. The worker is held on purpose (a lock on acs.jobs) while
# the requests queue, so the test waits for states, not for time.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/web.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sql -c "CREATE ROLE admin1 LOGIN IN ROLE acs_admin" >/dev/null
h_sql -c "CREATE ROLE web1 LOGIN NOINHERIT IN ROLE acs_web" >/dev/null
h_batch_user amtopcon amtopcon-secret
h_sql -c "SELECT acs.configure_connection('AMTDEMO', 'http://127.0.0.1:9', 'amtopcon', true, 30)" >/dev/null
CFG="$H_TMP/amtacs.yaml"
h_daemon_config "$CFG" AMTDEMO "http://127.0.0.1:9"
sed -i 's/^log_level: .*/log_level: debug/' "$CFG"
cat >>"$CFG" <<CONF
web:
  listen: "127.0.0.1:0"
  conninfo: "$(conn web1) application_name=amtacs-web"
  db_pool: 1
CONF
h_web_start "$CFG"
WEB_LOG="$H_TMP/web.log"
T1=$(ctl_as admin1 token create --name sched1 --role scheduler 2>/dev/null)
T2=$(ctl_as admin1 token create --name sched2 --role scheduler 2>/dev/null)

# post NAME TOKEN REF [APPLICATION]: a submit in the background; its status
# goes to $H_TMP/NAME.st, its answer to $H_TMP/NAME.json
post() {
    local name=$1 tok=$2 ref=$3 app=${4:-DEMO2}
    curl -sS -o "$H_TMP/$name.json" -w '%{http_code}' -X POST "$H_WEB_URL/api/v1/jobs" \
        -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        --data "{\"kind\":\"batch\",\"connection\":\"AMTDEMO\",\"application\":\"$app\",\"name\":\"REPORTTEST01\",\"external_ref\":\"$ref\"}" \
        >"$H_TMP/$name.st" 2>"$H_TMP/$name.err" &
    eval "PID_$name=$!"
}
queued() { grep -c 'event=web.queued msg="POST /api/v1/jobs"' "$WEB_LOG" || true; }
# hold: a transaction that keeps every INSERT into acs.jobs waiting
hold() {
    coproc HOLD { psql -X -q -At -v ON_ERROR_STOP=1 2>&1; }
    echo "BEGIN; LOCK TABLE acs.jobs IN SHARE ROW EXCLUSIVE MODE; SELECT 'held';" >&"${HOLD[1]}"
    local got
    read -r got <&"${HOLD[0]}"
    [ "$got" = held ] || { h_not_ok "the lock is taken ($got)"; exit 1; }
}
release() {
    echo "COMMIT;" >&"${HOLD[1]}"
    echo '\q' >&"${HOLD[1]}"
    wait "$HOLD_PID" 2>/dev/null || true
}
waiting_on_lock() {
    [ "$(h_sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'amtacs-web' AND wait_event_type = 'Lock'")" = 1 ]
}
finished() { local p; for p in "$@"; do ! kill -0 "$(eval echo "\$PID_$p")" 2>/dev/null || return 1; done; }
id_of() { jq -r .id "$H_TMP/$1.json"; }
xact_of() { h_sql -c "SELECT xmin FROM acs.jobs WHERE id = $(id_of "$1")"; }

# --- a group: five by sched1, one by sched2 between them ---------------------------------------
hold
n0=$(queued)
post first "$T1" grp-0
h_wait_until 30 waiting_on_lock && h_ok "the worker is held by the lock with the first submit" ||
    h_not_ok "the worker is held by the lock with the first submit"
for i in 1 2 3; do post "g$i" "$T1" "grp-$i"; done
post other "$T2" other-1
for i in 4 5; do post "g$i" "$T1" "grp-$i"; done
h_wait_until 30 eval '[ "$(queued)" -ge $((n0 + 7)) ]' && h_ok "the six others wait in amtacs-web's queue" ||
    h_not_ok "the six others wait in amtacs-web's queue ($(queued) queued)"
release
h_wait_until 60 finished first g1 g2 g3 g4 g5 other && h_ok "every request is answered" || h_not_ok "every request is answered"
st=""
for p in first g1 g2 g3 g4 g5 other; do st="$st $(cat "$H_TMP/$p.st")"; done
h_eq " 201 201 201 201 201 201 201" "$st" "each one 201"
ids=$(for p in first g1 g2 g3 g4 g5 other; do id_of "$p"; done | sort -u | grep -c .)
h_eq 7 "$ids" "each with a job of its own"
refs=""
for i in 1 2 3 4 5; do refs="$refs $(h_sql -c "SELECT external_ref FROM acs.jobs WHERE id = $(id_of "g$i")")"; done
h_eq " grp-1 grp-2 grp-3 grp-4 grp-5" "$refs" "and each answer names the job its own body made"
h_eq 1 "$(for i in 1 2 3 4 5; do xact_of "g$i"; done | sort -u | grep -c .)" \
    "the five queued submits of sched1 were stored in one transaction"
h_match 'event=web.submit_group msg="5 submits by token:sched1 in one transaction"' "$(cat "$WEB_LOG")" \
    "(amtacs-web logs the group at debug level)"
[ "$(xact_of other)" != "$(xact_of g1)" ] && [ "$(xact_of first)" != "$(xact_of g1)" ] &&
    h_ok "sched2's submit and the one that held the worker are not in it" ||
    h_not_ok "sched2's submit and the one that held the worker are not in it"
h_eq "token:sched1 token:sched1 token:sched1 token:sched1 token:sched1 token:sched2" \
    "$(h_sql -c "SELECT actor FROM acs.audit WHERE action = 'submit' AND target::bigint IN ($(id_of g1), $(id_of g2), $(id_of g3), $(id_of g4), $(id_of g5), $(id_of other)) ORDER BY actor" | paste -sd' ')" \
    "the audit names each one's token"

# --- a group with a bad job: each alone, the bad one refused with the database's reason ----------
hold
n0=$(queued)
post first2 "$T1" bad-0
h_wait_until 30 waiting_on_lock || h_not_ok "the worker is held again"
post b1 "$T1" bad-1
post b2 "$T1" bad-2 " DEMO2"
post b3 "$T1" bad-3
h_wait_until 30 eval '[ "$(queued)" -ge $((n0 + 4)) ]' && h_ok "three more wait, one of them with a bad application" ||
    h_not_ok "three more wait, one of them with a bad application"
release
h_wait_until 60 finished first2 b1 b2 b3 && h_ok "all are answered" || h_not_ok "all are answered"
h_eq "201 201 400 201" "$(cat "$H_TMP/first2.st") $(cat "$H_TMP/b1.st") $(cat "$H_TMP/b2.st") $(cat "$H_TMP/b3.st")" \
    "the good ones are stored, the bad one is 400"
h_match "application .* has leading or trailing whitespace" "$(jq -r .detail "$H_TMP/b2.json")" \
    "with the same message as acs.submit_batch_job"
h_eq 0 "$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE external_ref = 'bad-2'")" "and nothing of it stored"
# (ordered by name: the three curls may reach the server in any order)
h_eq "bad-0 bad-1 bad-3" "$(h_sql -c "SELECT external_ref FROM acs.jobs WHERE external_ref LIKE 'bad-%' ORDER BY external_ref" | paste -sd' ')" \
    "the others are stored once each"
for p in b1 b3; do
    h_eq "$(h_sql -c "SELECT id FROM acs.jobs WHERE external_ref = 'bad-${p#b}'")" "$(id_of "$p")" "$p's answer names its own job"
done
