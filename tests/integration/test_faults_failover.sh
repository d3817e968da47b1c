#!/usr/bin/env bash
# The fault matrix, part 6: PostgreSQL fails over. Two clusters on this
# machine: a primary and a streaming replica (asynchronous). The daemon's
# conninfo names both, with target_session_attrs=read-write. Mid-run, the
# primary is stopped with -m immediate and the replica promoted: commits that
# had not reached the replica are lost, which is the point. Every job must end
# once with the catalog's result, no taskId may become two requests, and on a
# server without idempotent Start, a job whose Start may have reached it goes
# in doubt rather than being started again.
# (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
PRIMARY_DATA=$H_PG_DATA
PRIMARY_SOCK=$PGHOST

# The replica of the primary as it is now (pg_basebackup -R: streaming, async).
replica_start() { # replica_start DIR SOCKET
    local dir=$1 sock=$2
    mkdir -p "$dir" "$sock"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir" "$sock"
    chmod 700 "$dir"
    h_as_pg "$H_PG_BINDIR/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$dir" -R \
        -X stream -c fast >"$H_TMP/basebackup.log" 2>&1 || { cat "$H_TMP/basebackup.log" >&2; return 1; }
    echo "unix_socket_directories = '$sock'" >>"$dir/postgresql.auto.conf"
    h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; return 1; }
    H_LOGS+=("$dir/server.log")
    h_wait_sql 30 1 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" ||
        { h_not_ok "wait ran out: the replica in $dir streams from the primary"; return 1; }
}
REPLICAS=()
stop_replicas() {
    local d
    for d in "${REPLICAS[@]}"; do
        h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
    done
}
trap 'rc=$?; stop_replicas; (exit $rc); h_cleanup' EXIT

# Stops the primary as a crash would and promotes the replica; psql and the
# harness follow the new primary from here on.
failover() { # failover REPLICA_DIR REPLICA_SOCK
    h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$H_PG_DATA" -m immediate -w stop >/dev/null
    h_as_pg "$H_PG_BINDIR/pg_ctl" -D "$1" -w -t 60 promote >/dev/null
    FM_BACK_AT=$(date +%s.%N)
    REPLICAS=("${REPLICAS[@]/$1/}")
    H_PG_DATA=$1
    export PGHOST=$2
    H_PGCONN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"
    FAILED_OVER=$((FAILED_OVER + 1))
}

# One failover scenario: the primary of the moment with a fresh replica, the
# daemon told about both, the workload, and the failover at the 4th tick.
run_failover() { # run_failover SLUG DESCRIPTION [non-idempotent]
    local n=$1 old_sock=$PGHOST
    local rdir="$H_TMP/replica-$n" rsock="$H_TMP/rsock-$n"
    replica_start "$rdir" "$rsock"
    REPLICAS+=("$rdir")
    FM_CONNINFO="host=$old_sock,$rsock port=$PGPORT,$PGPORT user=$PGUSER dbname=$PGDATABASE application_name=amtacsd target_session_attrs=read-write connect_timeout=2"
    fm_begin "$1" "$2"
    if [ "${3:-}" = non-idempotent ]; then
        curl -fsS -X PUT --data '{"features":["MonitorJobs"]}' "$H_SIM_URL/sim/config" >/dev/null
        FM_DOUBT_OK=1
    fi
    FM_BACK_EVENT='event=job\.finished'
    FM_ORPHANS_OK=1
    fm_daemon
    fm_submit $((FM_JOBS / FM_WAVES))
    FM_TICKS=0
    # At the 2nd tick the replica stops receiving (as when the network to it
    # fails); what the primary commits from then on is lost at the failover
    # at the 4th: claims, Starts recorded, jobs finished.
    fo_tick() {
        FM_TICKS=$((FM_TICKS + 1))
        if [ "$FM_TICKS" = 2 ]; then
            psql -X -q -h "$rsock" -d postgres -c "ALTER SYSTEM SET primary_conninfo = ''" \
                -c "SELECT pg_reload_conf()" >/dev/null
            LOST_FROM=$(h_sql -c "SELECT pg_current_wal_lsn()")
        fi
        [ "$FM_TICKS" != 4 ] || failover "$rdir" "$rsock"
    }
    fm_during 4 fo_tick
    # what the old primary had committed past the cut, lost to the new one
    h_log "$1: the replica stopped receiving at $LOST_FROM; the old primary wrote on until the failover"
    fm_finish
    # Enqueues whose commit the replica never saw are gone with it; those the
    # daemon had started ran on the server as requests no job knows of: at
    # most one each (a taskId made into two requests counts in the table).
    local lost_enq
    lost_enq=$(h_sql -c "SELECT count(*) FROM unnest('{$(paste -sd, "$H_TMP/$1.submitted")}'::int[]) AS s(n)
                         WHERE NOT EXISTS (SELECT 1 FROM acs.jobs j WHERE j.connection = '$1'
                                              AND j.external_ref = 'fm-' || s.n)")
    h_log "$1: $lost_enq enqueue(s) lost with the commits; $FM_ORPHANS of them had been started"
    h_eq true "$([ "$FM_ORPHANS" -le "$lost_enq" ] && echo true || echo "false ($FM_ORPHANS > $lost_enq)")" \
        "$1: every request no job knows of is a job whose enqueue was lost ($FM_ORPHANS of $lost_enq)"
    FM_DOUBT_OK=0
    FM_ORPHANS_OK=0
    unset FM_CONNINFO
}

FAILED_OVER=0
run_failover failover "PostgreSQL fails over: primary stopped (-m immediate), async replica promoted"
h_eq 1 "$FAILED_OVER" "failover: the primary was stopped and the replica promoted mid-run"
h_eq f "$(h_sql -c "SELECT pg_is_in_recovery()")" "failover: the promoted replica takes writes"
h_match "event=db.down" "$(cat "${FM_DLOG[@]}")" "failover: the daemon saw the primary go"

run_failover failover-doubt "the same on a server without idempotent Start" non-idempotent
h_eq 2 "$FAILED_OVER" "failover-doubt: the primary was stopped and the replica promoted mid-run"
doubt=$(h_sql -c "SELECT count(*) FROM acs.jobs WHERE connection = 'failover-doubt' AND state = 'in_doubt'")
h_log "failover-doubt: $doubt job(s) in doubt"

# --- a claim lost after its Start, on a server without idempotent Start ---------------
# The claim's commit never reaches the replica, but the daemon has sent Start:
# after the failover the job is queued again as if new. The daemon that sent
# the Start remembers its taskId and puts the job in doubt instead of making a
# second request (src/lib/sentset.c).
rdir="$H_TMP/replica-claim" rsock="$H_TMP/rsock-claim"
replica_start "$rdir" "$rsock"
REPLICAS+=("$rdir")
FM_CONNINFO="host=$PGHOST,$rsock port=$PGPORT,$PGPORT user=$PGUSER dbname=$PGDATABASE application_name=amtacsd target_session_attrs=read-write connect_timeout=2"
fm_begin lost-claim "a claim lost after its Start, server without idempotent Start"
curl -fsS -X PUT --data '{"features":["MonitorJobs"]}' "$H_SIM_URL/sim/config" >/dev/null
h_sql -c "SELECT acs.set_comm('lost-claim', 'disabled')" >/dev/null
fm_daemon --no-wait
h_wait_until 30 grep -q 'event=conn.comm connection=lost-claim msg="disabled' "$H_DAEMON_LOG" ||
    h_not_ok "wait ran out: the daemon sees comm disabled"
id=$(h_sql -c "SELECT acs.submit_batch_job('lost-claim', 'DEMO2', 'LONGRUNNINGREPORT')")
task=$(h_sql -c "SELECT task_id FROM acs.jobs WHERE id = $id")
lsn=$(h_sql -c "SELECT pg_current_wal_lsn()")
h_wait_sql 30 t "SELECT replay_lsn >= '$lsn' FROM pg_stat_replication" ||
    h_not_ok "wait ran out: the replica has the queued job"
psql -X -q -h "$rsock" -d postgres -c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_reload_conf()" >/dev/null
h_wait_sql 30 0 "SELECT count(*) FROM pg_stat_replication" || h_not_ok "wait ran out: the replica stops receiving"
h_sql -c "SELECT acs.set_comm('lost-claim', 'enabled')" >/dev/null
h_wait_for 30 'curl -fsS "$H_SIM_URL/sim/tasks" | grep -q "$task"' ||
    h_not_ok "wait ran out: the daemon sends Start for job $id"
h_wait_sql 30 running "SELECT state FROM acs.jobs WHERE id = $id" || h_not_ok "wait ran out: job $id running"
failover "$rdir" "$rsock"
h_eq "queued" "$(h_sql -c "SELECT state FROM acs.jobs WHERE id = $id")" \
    "lost-claim: on the promoted replica the job is queued again (its claim was lost)"
h_sql -c "SELECT acs.set_comm('lost-claim', 'enabled')" >/dev/null
h_wait_sql 60 in_doubt "SELECT state FROM acs.jobs WHERE id = $id" &&
    h_ok "lost-claim: claimed again, the job goes in doubt rather than being started again" ||
    h_not_ok "lost-claim: the job is $(h_sql -c "SELECT state FROM acs.jobs WHERE id = $id"), not in doubt"
h_match "sent Start for the job's taskId before the database lost the claim" \
    "$(h_sql -c "SELECT error FROM acs.jobs WHERE id = $id")" "lost-claim: and says why"
h_eq 1 "$(curl -fsS "$H_SIM_URL/sim/counters" | jq .requests_created)" \
    "lost-claim: the server made one request for it, not two"
unset FM_CONNINFO
fm_stop_daemons

fm_table
