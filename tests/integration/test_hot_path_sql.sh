#!/usr/bin/env bash
# The daemon's batch statements (acs.jobs_started, acs.jobs_progress,
# acs.jobs_finish, acs.claim_jobs with and without take_over), called as the
# daemon calls them, on a real PostgreSQL: each item gets its own outcome, in
# the order given, whatever the others' fate; what a finish writes (state,
# result, log, alert) is there; and the plans stay what keeps them cheap with
# many jobs held: one primary-key probe per item, never a pass over every job
# the daemon holds, whatever the statistics say (checked from the plan, not
# from timings).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
h_sql -c "SELECT acs.configure_connection('AMTDEMO', 'http://127.0.0.1:1', 'amtopcon', true, 30)" >/dev/null
q() { h_sql -c "$1"; }

# --- claims: take_over decides whether expired leases are looked at -------------------
ids=$(q "SELECT string_agg(acs.submit_batch_job('AMTDEMO', 'DEMO2', 'J' || g)::text, ' ' ORDER BY g)
         FROM generate_series(1, 6) AS g")
read -r j1 j2 j3 j4 j5 j6 <<<"$ids"
h_eq 6 "$(q "SELECT count(*) FROM acs.claim_jobs('me', 'AMTDEMO', 6, 300, false)")" "six queued jobs claimed"
# j6 is dead-daemon's, with an expired lease
q "UPDATE acs.jobs SET owner = 'dead', lease_expires = now() - interval '1 s' WHERE id = $j6" >/dev/null
h_eq 0 "$(q "SELECT count(*) FROM acs.claim_jobs('other', 'AMTDEMO', 10, 300, false)")" \
    "without take_over, an expired lease is left alone (and nothing is queued)"
h_eq "$j6 true" "$(q "SELECT id || ' ' || taken_over FROM acs.claim_jobs('other', 'AMTDEMO', 10, 300, true)")" \
    "with take_over, the expired job is taken over (and marked so)"
q "UPDATE acs.jobs SET owner = 'dead', lease_expires = now() - interval '1 s' WHERE id = $j6" >/dev/null
h_eq "$j6" "$(q "SELECT id FROM acs.claim_jobs('me', 'AMTDEMO', 10, 300)")" \
    "the four-argument form takes over too"
att() { q "SELECT attempt FROM acs.jobs WHERE id = $1"; }

# --- jobs_started: held, repeated, wrong attempt, not held, in the order given ---------------
a1=$(att "$j1")
# j2 belongs to another daemon from here on
q "UPDATE acs.jobs SET owner = 'other' WHERE id = $j2" >/dev/null
items="[{\"id\":$j3,\"attempt\":$(att "$j3"),\"batch_request_id\":103},
        {\"id\":$j1,\"attempt\":$a1,\"batch_request_id\":101},
        {\"id\":$j2,\"attempt\":$(att "$j2"),\"batch_request_id\":102},
        {\"id\":$j4,\"attempt\":$(att "$j4"),\"batch_request_id\":104},
        {\"id\":$j5,\"attempt\":$(att "$j5"),\"batch_request_id\":105}]"
h_eq "$j3 true,$j1 true,$j2 false,$j4 true,$j5 true" \
    "$(q "SELECT string_agg(id || ' ' || held, ',') FROM acs.jobs_started('me', '$items')")" \
    "jobs_started: one answer per item, in order; another holder's job is not held"
h_eq "running 101|starting |running 103" \
    "$(q "SELECT string_agg(state || ' ' || coalesce(batch_request_id::text, ''), '|' ORDER BY id)
            FROM acs.jobs WHERE id IN ($j1, $j2, $j3)")" "and the rows say so"
h_eq "$j1 true,$j3 false" \
    "$(q "SELECT string_agg(id || ' ' || held, ',') FROM acs.jobs_started('me',
            '[{\"id\":$j1,\"attempt\":$a1,\"batch_request_id\":101},
              {\"id\":$j3,\"attempt\":99,\"batch_request_id\":103}]')")" \
    "the same BatchRequestId again is still held (a retried write); a wrong attempt is not"
h_eq "$j1 false" "$(q "SELECT string_agg(id || ' ' || held, ',') FROM acs.jobs_started('other',
            '[{\"id\":$j1,\"attempt\":$a1,\"batch_request_id\":101}]')")" \
    "another owner cannot record a start of my job"

# --- jobs_progress ----------------------------------------------------------------------
h_eq "$j3 true,$j1 true,$j2 false" \
    "$(q "SELECT string_agg(id || ' ' || held, ',') FROM acs.jobs_progress('me',
            '[{\"id\":$j3,\"attempt\":$(att "$j3"),\"code\":2},
              {\"id\":$j1,\"attempt\":$a1,\"code\":13},
              {\"id\":$j2,\"attempt\":$(att "$j2"),\"code\":2}]')")" \
    "jobs_progress: my running jobs are held, another holder's starting one is not"
h_eq "13|2" "$(q "SELECT string_agg(coalesce(last_code::text, ''), '|' ORDER BY id) FROM acs.jobs
                  WHERE id IN ($j1, $j3)")" "their last codes are recorded"

# --- jobs_finish: all finished (the common path) ----------------------------------------------
h_eq "$j3 finished,$j1 finished" \
    "$(q "SELECT string_agg(id || ' ' || outcome, ',') FROM acs.jobs_finish('me',
            '[{\"id\":$j3,\"attempt\":$(att "$j3"),\"code\":4,\"error\":null,\"log\":\"log of three\"},
              {\"id\":$j1,\"attempt\":$a1,\"code\":11,\"error\":\"it broke\",\"log\":\"log of one\"}]')")" \
    "jobs_finish: both finished, in the order given"
h_eq "$j1 finished 11 failure it broke log of one|$j3 finished 4 success  log of three" \
    "$(q "SELECT string_agg(j.id || ' ' || j.state || ' ' || j.completion_code || ' ' || j.result || ' '
                            || coalesce(j.error, '') || ' ' || l.log, '|' ORDER BY j.id)
            FROM acs.jobs j JOIN acs.job_logs l ON l.job_id = j.id WHERE j.id IN ($j1, $j3)")" \
    "codes, results, errors and logs are stored"
h_eq "1 ERROR" "$(q "SELECT count(*) || ' ' || min(name) FROM acs.alerts WHERE job_id = $j1")" \
    "code 11 raised its alert"
h_eq 0 "$(q "SELECT count(*) FROM acs.alerts WHERE job_id = $j3")" "DONE raised none"

# --- jobs_finish: mixed outcomes, in order ---------------------------------------------------
a4=$(att "$j4")
h_eq "$j4 finished,$j1 already,$j2 lost,$j5 finished" \
    "$(q "SELECT string_agg(id || ' ' || outcome, ',') FROM acs.jobs_finish('me',
            '[{\"id\":$j4,\"attempt\":$a4,\"code\":4,\"error\":null,\"log\":\"four\"},
              {\"id\":$j1,\"attempt\":$a1,\"code\":11,\"error\":\"it broke\",\"log\":\"log of one\"},
              {\"id\":$j2,\"attempt\":$(att "$j2"),\"code\":4,\"error\":null,\"log\":\"not mine\"},
              {\"id\":$j5,\"attempt\":$(att "$j5"),\"code\":4,\"error\":null,\"log\":\"five\"}]')")" \
    "a finish retried after a lost answer is 'already', another holder's job 'lost', the rest finished"
h_eq 1 "$(q "SELECT count(*) FROM acs.job_logs WHERE job_id = $j1")" "the retried finish wrote no second log"
h_eq "starting" "$(q "SELECT state FROM acs.jobs WHERE id = $j2")" "the job not held is untouched"

# --- jobs_finish: one bad item does not hold the others back ---------------------------------
more=$(q "SELECT string_agg(acs.submit_batch_job('AMTDEMO', 'DEMO2', 'K' || g)::text, ' ' ORDER BY g)
          FROM generate_series(1, 2) AS g")
read -r k1 k2 <<<"$more"
q "SELECT count(*) FROM acs.claim_jobs('me', 'AMTDEMO', 2, 300, false)" >/dev/null
out=$(q "SELECT string_agg(id || ' ' || outcome, ',') FROM acs.jobs_finish('me',
            '[{\"id\":$k1,\"attempt\":$(att "$k1"),\"code\":4,\"error\":null,\"log\":\"fine\"},
              {\"id\":$k2,\"attempt\":$(att "$k2"),\"code\":null,\"error\":null,\"log\":\"bad\"}]')")
h_match "^$k1 finished,$k2 error: " "$out" "an item the table refuses (no code) fails alone; the others finish ($out)"

# --- a row someone else holds locked: reported busy, never waited for -------------------
# (sql/0009_lock_order.sql: the daemon never waits for another session's row lock)
ids=$(q "SELECT string_agg(acs.submit_batch_job('AMTDEMO', 'DEMO2', 'L' || g)::text, ' ' ORDER BY g)
         FROM generate_series(1, 3) AS g")
read -r l1 l2 l3 <<<"$ids"
q "SELECT count(*) FROM acs.claim_jobs('lk', 'AMTDEMO', 3, 300, false)" >/dev/null
started=$(q "SELECT string_agg(id || ' ' || held, ',') FROM acs.jobs_started('lk',
            (SELECT json_agg(json_build_object('id', id, 'attempt', attempt, 'batch_request_id', id))
               FROM acs.jobs WHERE id IN ($l1, $l2, $l3)))")
h_eq "$l1 true,$l2 true,$l3 true" "$started" "three jobs running for owner lk"
psql -X -q -At -c "BEGIN" -c "SELECT id FROM acs.jobs WHERE id = $l2 FOR UPDATE" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
holder=$!
h_wait_sql 30 1 "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'
                 AND state = 'active'" || h_not_ok "wait ran out: another session holds job $l2 locked"
items="[{\"id\":$l1,\"attempt\":1,\"code\":2},{\"id\":$l2,\"attempt\":1,\"code\":2},{\"id\":$l3,\"attempt\":1,\"code\":2}]"
h_eq "$l1 true,$l2 ,$l3 true" "$(q "SELECT string_agg(id || ' ' || coalesce(held::text, ''), ',')
                                     FROM acs.jobs_progress('lk', '$items')")" \
    "jobs_progress: the locked row is busy (NULL), the others written"
h_eq "$l2 true" "$(q "SELECT string_agg(id || ' ' || busy, ',') FROM acs.leases_renew('lk',
                        ARRAY[$l1, $l2, $l3], ARRAY[1, 1, 1], 300)")" \
    "leases_renew: only the locked row is not renewed, and it is busy (still held)"
h_eq "$l3 false" "$(q "SELECT string_agg(id || ' ' || busy, ',') FROM acs.leases_renew('lk',
                        ARRAY[$l1, $l3], ARRAY[1, 9], 300)")" \
    "leases_renew: a wrong attempt is lost (busy false)"
items="[{\"id\":$l2,\"attempt\":1,\"code\":4,\"error\":null,\"log\":\"x\"},{\"id\":$l1,\"attempt\":1,\"code\":4,\"error\":null,\"log\":\"y\"}]"
h_eq "$l2 busy,$l1 finished" "$(q "SELECT string_agg(id || ' ' || outcome, ',') FROM acs.jobs_finish('lk', '$items')")" \
    "jobs_finish: the locked row is busy, the other finished"
out=$(q "SELECT acs.job_kill_outcome($l2, 'lk', 1, NULL)" 2>&1 || true)
h_match "lock timeout" "$out" "a single-row write gives way after lock_timeout rather than wait ($out)"
kill "$holder" 2>/dev/null || true
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'" >/dev/null
wait "$holder" 2>/dev/null || true
h_eq "$l2 finished" "$(q "SELECT string_agg(id || ' ' || outcome, ',') FROM acs.jobs_finish('lk',
                              '[{\"id\":$l2,\"attempt\":1,\"code\":4,\"error\":null,\"log\":\"x\"}]')")" \
    "once the lock is gone, the finish goes through"

# --- bulk kills lock in id order ----------------------------------------------------------
ids=$(q "SELECT string_agg(acs.submit_batch_job('AMTDEMO', 'DEMO2', 'K' || g)::text, ' ' ORDER BY g)
         FROM generate_series(1, 3) AS g")
read -r k1 k2 k3 <<<"$ids"
h_eq "$k1 queued,$k2 queued,$k3 queued,987654321 no job 987654321" \
    "$(q "SELECT string_agg(job_id || ' ' || coalesce(state, '') || coalesce(replace(error, 'job 987654321 does not exist', 'no job 987654321'), ''), ',')
            FROM acs.request_kills(ARRAY[$k3, 987654321, $k1, $k2, $k3])")" \
    "request_kills: each distinct id once, in id order, with its state or why not"
h_eq 3 "$(q "SELECT count(*) FROM acs.jobs WHERE id IN ($k1, $k2, $k3) AND kill_requested_at IS NOT NULL")" \
    "and the kills are requested"

# --- the plans: a probe per item, whatever the statistics -----------------------------------
# 20,000 jobs held by one owner, statistics taken while none was held: the
# planner believes the owner holds next to nothing (what a burst of claims
# looks like before autovacuum catches up).
q "SELECT count(acs.submit_batch_job('AMTDEMO', 'DEMO2', 'BULK')) FROM generate_series(1, 20000)" >/dev/null
q "ANALYZE acs.jobs" >/dev/null
q "SELECT count(*) FROM acs.claim_jobs('bulk', 'AMTDEMO', 20000, 300, false)" >/dev/null
plans=$(h_sql 2>&1 <<'SQL'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SELECT count(*) FROM acs.jobs_started('bulk', (SELECT json_agg(json_build_object('id', id, 'attempt', attempt, 'batch_request_id', id)) FROM acs.jobs WHERE owner = 'bulk' AND id % 40 = 0));
SELECT count(*) FROM acs.jobs_progress('bulk', (SELECT json_agg(json_build_object('id', id, 'attempt', attempt, 'code', 2)) FROM acs.jobs WHERE owner = 'bulk' AND id % 40 = 0));
SELECT count(*) FROM acs.jobs_finish('bulk', (SELECT json_agg(json_build_object('id', id, 'attempt', attempt, 'code', 4, 'log', 'x')) FROM acs.jobs WHERE owner = 'bulk' AND id % 40 = 0));
SQL
)
updates=$(grep -c "Update on jobs" <<<"$plans" || true)
h_eq 3 "$updates" "auto_explain showed the three batch updates"
h_eq 3 "$(grep -A1 "Update on jobs" <<<"$plans" | grep -c "Nested Loop" || true)" \
    "each joins its items to acs.jobs in a nested loop"
h_eq 3 "$(grep -A2 "LockRows" <<<"$plans" | grep -cE "Sort Key: [a-z_0-9]+\.id$" || true)" \
    "each locks its rows in id order first (sql/0009_lock_order.sql)"
h_eq 0 "$(grep -c "jobs_claimed_idx" <<<"$plans" || true)" \
    "none reads jobs_claimed_idx (every job held) to find its items"
h_eq 3 "$(grep -A10 "Update on jobs" <<<"$plans" | grep -c "Index Scan using jobs_pkey on jobs" || true)" \
    "each finds its items by primary key"

