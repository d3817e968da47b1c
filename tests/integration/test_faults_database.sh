#!/usr/bin/env bash
# The fault matrix, part 3: PostgreSQL misbehaves while a mixed workload of
# 252 jobs runs: the cluster restarted (immediate stop: as after a crash)
# twice mid-run, and the daemon's connections terminated with
# pg_terminate_backend -- the statement connection, then the LISTEN
# connection (notifications sent meanwhile are lost: the daemon must rescan).
# Every job must end once, with the catalog's result.
# (tests/lib/faults.sh has the workload and the accounting.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/faults.sh"

fm_init
none() { :; }

# --- the cluster restarts, twice ----------------------------------------------
restarts=0
pg_tick() {
    FM_TICKS=$((FM_TICKS + 1))
    if [ $((FM_TICKS % 8)) = 4 ]; then
        h_pg_restart
        restarts=$((restarts + 1))
    fi
}
pg_on() { FM_TICKS=0; }
fm_run pg-restart "PostgreSQL restarted twice mid-run" pg_on pg_tick none 4
h_eq 2 "$restarts" "pg-restart: the cluster was restarted twice"
h_match "event=db.down" "$(cat "${FM_DLOG[@]}")" "pg-restart: the daemon saw the database go"

# --- pg_terminate_backend on the daemon's connections --------------------------
# The daemon names its connections application_name=amtacsd (in the
# configuration); the LISTEN connection is the one whose last statement was a LISTEN.
terminated=0
terminate() { # terminate listen|statement
    local which="query NOT LIKE 'LISTEN %'"
    [ "$1" = listen ] && which="query LIKE 'LISTEN %'"
    local n
    # (OFFSET 0 keeps the filter ahead of pg_terminate_backend: it must never see our own backend)
    n=$(h_sql -c "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity
                  WHERE application_name = 'amtacsd' AND $which OFFSET 0) AS d")
    terminated=$((terminated + n))
}
stmt_tick() { FM_TICKS=$((FM_TICKS + 1)); [ $((FM_TICKS % 3)) != 1 ] || terminate statement; }
listen_tick() { FM_TICKS=$((FM_TICKS + 1)); [ $((FM_TICKS % 3)) != 1 ] || terminate listen; }

fm_run terminate-stmt "statement connection terminated every 0.75 s" pg_on stmt_tick none 4
h_eq true "$([ "$terminated" -ge 3 ] && echo true || echo "false ($terminated)")" \
    "terminate-stmt: the daemon's statement connection was terminated again and again"
terminated=0
fm_run terminate-listen "LISTEN connection terminated every 0.75 s" pg_on listen_tick none 4
h_eq true "$([ "$terminated" -ge 3 ] && echo true || echo "false ($terminated)")" \
    "terminate-listen: the daemon's LISTEN connection was terminated again and again"

fm_table
