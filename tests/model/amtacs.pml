/*
 * amtacs.pml: a Promela model of the connector's protocol for one job.
 *
 * What it models (docs/model.md says more, and what it leaves out):
 *   - the database row of the job: state, owner and attempt (the fence of
 *     every write), the lease, kill_requested_at, the taskId, the
 *     BatchRequestId, and how many times the job ended (sql/0002_daemon.sql,
 *     0008_scale.sql, 0010_liveness.sql);
 *   - two daemons (src/lib/engine.c), each with one job machine whose phases
 *     and events carry the names of src/lib/job.c, its local lease
 *     (lease_holds), its statement session (the advisory lock that proves it
 *     alive), its heartbeat (whether Start is idempotent), and its calls to
 *     the server, which stay on the wire however long the daemon pauses;
 *   - the AMT server, with or without idempotent Start (chosen at the start:
 *     both are checked in one run), which makes requests, ends them, kills
 *     them, loses answers and refuses connections;
 *   - an operator who asks for a kill and resolves a job in doubt;
 *   - faults, at most FAULTS in a run: a daemon crashes (kill -9) and is
 *     restarted, pauses past its leases (SIGSTOP) or cannot renew in time
 *     (its own lease runs out; it resumes with its next step, whenever it
 *     likes), loses its statement session; the server loses an answer,
 *     refuses a connection or fails a Kill; a heartbeat fails.
 *
 * Every transition of a job machine carries a marker on its line,
 *   T: FROM EVENT GUARD -> TO      (FROM may be a|b|c, TO may be '=': same)
 * which tests/model/transitions.sh extracts, so that a test can compare the
 * model's transitions with job.c's table (job_table).
 *
 * Known bugs, to show that each property can fail (tests/model/test_model.sh
 * runs each and requires spin to find the counterexample):
 *   BUG_TASKID_AT_CLAIM      a claim gives the job a new taskId (0002's
 *                            coalesce(task_id, ...) undone): two requests on
 *                            an idempotent server
 *   BUG_RESEND_TAKEOVER      start() sends Start for a job an earlier holder
 *                            may have started (maybe_started) without asking
 *                            whether the server's Start is idempotent
 *   BUG_RESOLVE_UNCHECKED    resolve_in_doubt without its "is it in doubt"
 *                            check: an operator's --restart of a finished job
 *                            runs it again and it ends twice
 *   BUG_FINISH_UNFENCED      job_finish without the owner/attempt fence: a
 *                            daemon that lost the job writes its result
 *   BUG_KILL_FORGOTTEN       a kill requested before Start answered is not
 *                            kept for later (kill_wanted): never carried out
 *   BUG_NO_TAKEOVER          claims never take over: a crashed holder's job
 *                            never ends
 *   BUG_KILL_ON_NOTIFY       a daemon kills the jobs it holds on a NOTIFY
 *                            alone, without kill_requested_at: a Kill nobody
 *                            asked for
 *   BUG_23_AFTER_MAYBE       a Start that may have reached an idempotent
 *                            server, retried until start_retry.attempts are
 *                            used up, ends the job 23 while its request may
 *                            run on: a kill requested for it reaches nothing
 *                            (the code did this until the model found it;
 *                            now the job goes in doubt)
 * IDEM=0 or IDEM=1 checks one kind of server (default: both); MODEL_WITNESS=N
 * in the verifier's environment asks for a run reaching REACH(N).
 */

#ifndef FAULTS
#define FAULTS 2              /* faults in a run (at most 2: the orphan slots) */
#endif
#define ATTEMPTS 2            /* start_retry.attempts */
#define NTID 6                /* taskIds: a resolve --restart gives a new one */
#define NREQ 4                /* requests the server can make for the job */

/* acs.jobs.state */
#define QUEUED    0
#define STARTING  1
#define RUNNING   2
#define IN_DOUBT  3
#define FINISHED  4

/* the job machine's phases (job.c: enum job_phase) */
#define PH_NEW          0
#define PH_START        1
#define PH_START_WRITE  2
#define PH_FOLLOW       3
#define PH_MESSAGES     4
#define PH_FINISH_WRITE 5
#define PH_DOUBT_WRITE  6
#define PH_DROPPED      7

/* completion codes (codes.h) */
#define C_KILLED    3
#define C_DONE      4
#define C_ERROR     11
#define C_UNDEFINED 19
#define C_WSE       23

/* a request on the server */
#define R_NONE    0
#define R_RUNNING 1
#define R_DONE    2
#define R_KILLED  3

/* what a heartbeat told the daemon (features_known, heartbeat_failed) */
#define F_NONE   0
#define F_FAILED 1
#define F_KNOWN  2

/* answers */
#define A_NONE      0
#define A_OK        1  /* Start: a BatchRequestId; Kill: accepted */
#define A_REFUSED   2  /* Start refused (4xx): 11 */
#define A_NOT_SENT  3  /* Start failed before it reached the server */
#define A_MAYBE     4  /* Start failed after it was sent (maybe_delivered) */
#define A_LATE      5  /* Kill: 409, the request had ended */
#define A_FAILED    6  /* Kill failed */

/* ---------------------------------------------------------------- the row */
byte db_st = QUEUED;
byte db_owner;          /* 1, 2; 0 none */
byte db_att;
bit  db_lease;          /* lease_expires > now() */
bit  db_kill;           /* kill_requested_at IS NOT NULL */
byte db_tid = 1;        /* taskId, fixed at enqueue */
byte db_brid;           /* BatchRequestId (index + 1 of the server's request) */
byte db_code;
byte ends;              /* how many times the job became finished (a job log each) */

/* ---------------------------------------------------------------- the daemons */
bit  up[3];             /* the process runs */
bit  sess[3];           /* its statement session lives: it holds its advisory lock */
bit  dbup[3];           /* the daemon believes that session up (db_up) */
bit  lok[3];            /* lease_holds: its renewal covering the job succeeded less than a lease ago */
byte feat[3];           /* F_* */

/* calls on the wire: [1] and [2] those of daemons 1 and 2 (one Start and one
 * Kill at a time each), [3] and [4] those of daemons that died since: they
 * still reach the server, their answers go nowhere */
byte ws_tid[5];          /* a Start for this taskId (0: none) */
byte wk_brid[5];         /* a Kill of this request (0: none) */
byte wk_att[5];          /* for the machine of this attempt */
/* answers, to the daemon that called */
byte as_ans[3];  byte as_brid[3];
byte ak_ans[3];  byte ak_att[3];

/* ---------------------------------------------------------------- the server */
bit  idem;              /* IdempotentStart */
byte nreq;
byte rq_tid[NREQ];
byte rq_st[NREQ];
bit  reached[NTID];     /* a Start for this taskId reached the server */
bit  refused[NTID];     /* the server refused a Start for this taskId (4xx) */
byte inflight[NTID];    /* Starts for this taskId on the wire */

byte faults = FAULTS;

/* the truth the properties are stated against (not read by the protocol) */
byte holder;            /* the daemon of the latest claim, 0 when nobody holds the job */
byte holder_att;

/* named checks, so that a counterexample says which property failed */
hidden byte one_request_on_idempotent_server;
hidden byte no_start_again_without_operator;
hidden byte ends_at_most_once;
hidden byte every_job_ends;
hidden byte only_the_holder_writes;
hidden byte kill_only_when_requested;
hidden byte requested_kill_carried_out;

#define CHECK(name, cond) name = (cond); assert(name); name = 0

/* Witnesses: MODEL_WITNESS=N in the verifier's environment turns REACH(N)
 * into a failing assertion, so that spin shows a run that gets there: the
 * paths the properties are about are really taken (tests/model/test_model.sh). */
c_decl {
\#include <stdlib.h>
}
byte witness;
#define REACH(n) assert(witness != n)

#define RUN           up[d]
#define ONLINE        (RUN && dbup[d] && sess[d])
#define HOLDING       (ph != PH_NEW && ph != PH_DROPPED)
#define ACTIVE(s)     ((s) == STARTING || (s) == RUNNING)
#define FENCED        (db_owner == d && db_att == att)

inline write_applies() {
    CHECK(only_the_holder_writes, holder == d && holder_att == att)
}

inline end_job(c) {
    CHECK(ends_at_most_once, ends == 0);
    db_st = FINISHED; db_code = c; db_lease = 0; ends++; holder = 0; holder_att = 0
}

/* send_kill(): only while the lease holds; otherwise kept for later */
inline send_kill() {
    if
    :: lok[d] && dbup[d] && !kb ->
        kw = 0; kb = 1;
        assert(wk_brid[d] == 0);
        wk_brid[d] = brid; wk_att[d] = att
    :: else -> kw = 1
    fi
}

/* kill_job(): an operator's kill request reaches the machine */
inline kill_job() {
    ks = 1;
    if
    :: ph == PH_START && !busy && !brid && !ms && !tries ->
        ph = PH_FINISH_WRITE; code = C_KILLED        /* T: start kill_requested never_sent -> finish_write */
    :: else ->
        if
        :: ph >= PH_MESSAGES || kb -> skip            /* T: start_write|follow|messages|finish_write|doubt_write kill_requested ignored -> = */
        :: else ->
            if
            :: !brid ->
#ifndef BUG_KILL_FORGOTTEN
                kw = 1                                /* T: start kill_requested later -> start */
#else
                skip
#endif
            :: else -> send_kill()                    /* T: start_write|follow kill_requested send -> = */
            fi
        fi
    fi
}

/* the renewal says the job is not ours any more */
inline lease_lost() {
    lost = 1;
    if
    :: busy -> REACH(7)                               /* T: start lease_lost busy -> start */
    :: else -> ph = PH_DROPPED                        /* T: start|start_write|follow|messages|finish_write|doubt_write lease_lost idle -> dropped */
    fi
}

/* A daemon died: its calls on the wire still reach the server. */
inline orphan() {
    if
    :: ws_tid[d] != 0 && ws_tid[3] == 0 -> ws_tid[3] = ws_tid[d]; ws_tid[d] = 0
    :: ws_tid[d] != 0 && ws_tid[3] != 0 -> assert(ws_tid[4] == 0); ws_tid[4] = ws_tid[d]; ws_tid[d] = 0
    :: else -> skip
    fi;
    if
    :: wk_brid[d] != 0 && wk_brid[3] == 0 -> wk_brid[3] = wk_brid[d]; wk_brid[d] = 0; wk_att[d] = 0
    :: wk_brid[d] != 0 && wk_brid[3] != 0 -> assert(wk_brid[4] == 0); wk_brid[4] = wk_brid[d]; wk_brid[d] = 0; wk_att[d] = 0
    :: else -> skip
    fi
}

/* What the heartbeats have said by now, looked at only where it is read: the
 * first one answers or fails; one that failed is followed by one that answers. */
inline heartbeat() {
    if
    :: feat[d] == F_NONE -> 
        if
        :: feat[d] = F_KNOWN
        :: faults > 0 -> faults--; feat[d] = F_FAILED
        fi
    :: feat[d] == F_FAILED -> 
        if
        :: feat[d] = F_KNOWN
        :: skip
        fi
    :: else -> skip
    fi
}

/* an answer came back for a job that is no longer ours: drop it (settle()) */
inline settle() {
    busy = 0;
    if
    :: lost -> ph = PH_DROPPED
    :: else -> skip
    fi
}

proctype daemon(byte d)
{
    byte ph = PH_NEW, att, tid, brid, tries, code;
    bit ms, kw, ks, kb, busy, lost;
    byte a;

end_loop:
    do
    /* ------------------------------------------------------------ faults */
    :: atomic { up[d] && faults > 0 ->                  /* kill -9: its session goes with it */
        faults--; up[d] = 0; sess[d] = 0; dbup[d] = 0; lok[d] = 0;
        feat[d] = F_NONE;
        orphan();
        as_ans[d] = A_NONE; as_brid[d] = 0; ak_ans[d] = A_NONE; ak_att[d] = 0;
        ph = PH_NEW; att = 0; tid = 0; brid = 0; tries = 0; code = 0;
        ms = 0; kw = 0; ks = 0; kb = 0; busy = 0; lost = 0 }
    :: atomic { !up[d] -> up[d] = 1; sess[d] = 1; dbup[d] = 1 }  /* restarted; takes its lock */
    /* SIGSTOP past its leases (or renewals that fail for a lease): its own
     * lease runs out; it resumes with its next step, however much later */
    :: atomic { up[d] && lok[d] && faults > 0 -> faults--; lok[d] = 0 }
    :: atomic { up[d] && sess[d] && faults > 0 -> faults--; sess[d] = 0 } /* pg_terminate_backend */

    /* ------------------------------------------------------------ the database session */
    :: atomic { RUN && dbup[d] && !sess[d] -> dbup[d] = 0; lok[d] = 0 }   /* on_db_down */
    :: atomic { RUN && !dbup[d] -> sess[d] = 1; dbup[d] = 1 }              /* on_db_up: register */


    /* ------------------------------------------------------------ lease renewal (acs.leases_renew) */
    :: atomic { ONLINE && HOLDING && !lost && (!lok[d] || !(FENCED && ACTIVE(db_st))) ->
        if
        :: FENCED && ACTIVE(db_st) -> db_lease = 1; lok[d] = 1
        :: else -> lease_lost()
        fi }

    /* ------------------------------------------------------------ claim (acs.claim_jobs) */
    :: atomic { ONLINE && ph == PH_NEW && db_st == QUEUED ->
        db_st = STARTING; db_owner = d; db_att++; db_lease = 1; lok[d] = 1;
#ifdef BUG_TASKID_AT_CLAIM
        db_tid++;
#endif
        holder = d; holder_att = db_att;
        att = db_att; tid = db_tid; brid = 0; tries = 0; code = 0;
        ms = 0; kw = 0; ks = 0; kb = 0; busy = 0; lost = 0;
        ph = PH_START;                                /* T: new claimed queued -> start */
        if
        :: db_kill -> kill_job()
        :: else -> skip
        fi }
#ifndef BUG_NO_TAKEOVER
    :: atomic { ONLINE && ph == PH_NEW && ACTIVE(db_st) &&
                (!db_lease || (!sess[db_owner] && db_owner != d)) ->
        /* taken over: the lease expired, or its holder is gone */
        if
        :: db_lease -> REACH(2)                       /* gone: its lease still ran */
        :: else -> skip
        fi;
        db_owner = d; db_att++; db_lease = 1; lok[d] = 1;
#ifdef BUG_TASKID_AT_CLAIM
        db_tid++;
#endif
        holder = d; holder_att = db_att;
        att = db_att; tid = db_tid; brid = db_brid; tries = 0; code = 0;
        kw = 0; ks = 0; kb = 0; busy = 0; lost = 0;
        if
        :: db_st == RUNNING -> ms = 0;
            ph = PH_FOLLOW                            /* T: new claimed running -> follow */
        :: else ->
            ms = 1;                                   /* an earlier holder may have sent Start */
            ph = PH_START                             /* T: new claimed queued -> start */
        fi;
        if
        :: db_kill -> kill_job()
        :: else -> skip
        fi }
#endif

    /* ------------------------------------------------------------ kills_pending */
#ifndef BUG_KILL_ON_NOTIFY
    :: atomic { ONLINE && HOLDING && !lost && !ks && db_kill && db_owner == d && ACTIVE(db_st) ->
#else
    :: atomic { ONLINE && HOLDING && !lost && !ks && db_owner == d && ACTIVE(db_st) ->
#endif
        kill_job() }

    /* ------------------------------------------------------------ start() */
    :: atomic { RUN && ph == PH_START && !busy && lok[d] && dbup[d] ->
        heartbeat();
        if
        :: ms && feat[d] != F_KNOWN -> feat[d] = F_KNOWN  /* waits for a heartbeat to say */
        :: else -> skip
        fi;
        if
#ifndef BUG_RESEND_TAKEOVER
        :: ms && !idem ->
            ph = PH_DOUBT_WRITE                       /* T: start due doubt -> doubt_write */
#endif
        :: else ->
            CHECK(no_start_again_without_operator, idem || (!reached[tid] && inflight[tid] == 0));
            if
            :: ms && reached[tid] -> REACH(6)         /* sent again: the server is idempotent */
            :: else -> skip
            fi;
            busy = 1; inflight[tid]++;
            assert(ws_tid[d] == 0);
            ws_tid[d] = tid                           /* T: start due send -> start */
        fi }

    /* on_start() */
    :: atomic { RUN && ph == PH_START && busy && as_ans[d] != A_NONE ->
        a = as_ans[d];
        as_ans[d] = A_NONE;
        heartbeat();
        settle();
        if
        :: ph == PH_DROPPED -> skip                   /* settle(): the job is not ours */
        :: a == A_OK ->
            brid = as_brid[d]; as_brid[d] = 0;
            ph = PH_START_WRITE                       /* T: start start_answered any -> start_write */
        :: a == A_REFUSED ->
            code = C_ERROR;
            ph = PH_FINISH_WRITE                      /* T: start start_failed final -> finish_write */
        :: a == A_NOT_SENT || a == A_MAYBE ->
            tries++;
            if
            :: a == A_MAYBE && feat[d] == F_FAILED ->
                ms = 1                                /* T: start start_failed retry -> start */
            :: a == A_MAYBE && feat[d] == F_KNOWN && !idem ->
                ph = PH_DOUBT_WRITE                   /* T: start start_failed doubt -> doubt_write */
            :: else ->
#ifndef BUG_23_AFTER_MAYBE
                if
                :: a == A_MAYBE -> ms = 1             /* it may run on the server under its taskId */
                :: else -> skip
                fi;
                if
                :: tries >= ATTEMPTS && ms ->
                    ph = PH_DOUBT_WRITE               /* T: start start_failed doubt -> doubt_write */
                :: tries >= ATTEMPTS && !ms -> code = C_WSE;
                    ph = PH_FINISH_WRITE              /* T: start start_failed final -> finish_write */
                :: else -> skip                       /* T: start start_failed retry -> start */
                fi
#else
                if
                :: tries >= ATTEMPTS -> code = C_WSE; ph = PH_FINISH_WRITE
                :: else -> skip
                fi
#endif
            fi
        fi;
        a = 0 }

    /* ------------------------------------------------------------ recording the BatchRequestId */
    :: atomic { ONLINE && ph == PH_START_WRITE ->     /* T: start_write due any -> start_write */
        if
        :: FENCED && (db_st == STARTING || (db_st == RUNNING && db_brid == brid)) ->
            write_applies();
            db_st = RUNNING; db_brid = brid;
            if
            :: kw -> ph = PH_FOLLOW;                  /* T: start_write write_done held_kill -> follow */
                send_kill()
            :: else ->
                ph = PH_FOLLOW                        /* T: start_write write_done held -> follow */
            fi
        :: else ->
            ph = PH_DROPPED                           /* T: start_write write_done not_held -> dropped */
        fi }

    /* ------------------------------------------------------------ following */
    :: atomic { RUN && ph == PH_FOLLOW && kw && !kb && lok[d] && dbup[d] ->
        send_kill() }                                 /* T: follow due send -> follow */
    :: atomic { RUN && ph == PH_FOLLOW && rq_st[brid - 1] != R_RUNNING ->  /* T: follow due any -> follow */
        code = (rq_st[brid - 1] == R_KILLED -> C_KILLED : C_DONE);
        if
        :: ph = PH_MESSAGES                           /* T: follow monitor_state final -> messages */
        :: ph = PH_FINISH_WRITE                       /* T: follow monitor_state done -> finish_write */
        fi }
    :: atomic { RUN && ph == PH_MESSAGES ->           /* T: messages due any -> messages */
        ph = PH_FINISH_WRITE }                        /* T: messages messages_read done -> finish_write */

    /* on_kill() */
    :: atomic { RUN && ak_ans[d] != A_NONE ->
        a = ak_ans[d];
        ak_ans[d] = A_NONE;
        assert(kb && att == ak_att[d]);               /* a machine is freed only after its Kill answered */
        ak_att[d] = 0;
        kb = 0;
        if
        :: ph == PH_DROPPED -> skip                   /* its job is gone */
        :: lost && !busy -> ph = PH_DROPPED
        :: else ->
            if
            :: a == A_OK || a == A_FAILED ->
                /* acs.job_kill_outcome, fenced */
                if
                :: ONLINE && FENCED && ACTIVE(db_st) -> write_applies()
                :: else -> skip
                fi;
                if
                :: a == A_FAILED -> kw = 1
                :: else -> skip
                fi
            :: else -> skip
            fi
        fi;
        a = 0 }

    /* ------------------------------------------------------------ the writes that end the machine */
    :: atomic { ONLINE && ph == PH_FINISH_WRITE ->    /* T: finish_write due any -> finish_write */
        if
#ifndef BUG_FINISH_UNFENCED
        :: FENCED && ACTIVE(db_st) ->
#else
        :: ACTIVE(db_st) ->
#endif
            write_applies();
            end_job(code);
            ph = PH_DROPPED                           /* T: finish_write write_done held -> dropped */
        :: else -> REACH(5);
            ph = PH_DROPPED                           /* T: finish_write write_done not_held -> dropped */
        fi }
    :: atomic { ONLINE && ph == PH_DOUBT_WRITE ->     /* T: doubt_write due any -> doubt_write */
        if
        :: FENCED && db_st == STARTING ->
            write_applies();
            db_st = IN_DOUBT; db_lease = 0; holder = 0; holder_att = 0; REACH(1);
            ph = PH_DROPPED                           /* T: doubt_write write_done held -> dropped */
        :: else ->
            ph = PH_DROPPED                           /* T: doubt_write write_done not_held -> dropped */
        fi }

    /* job_free(): the machine is done with; a later claim makes a new one (here
     * only once its Kill has answered: one machine per daemon) */
    :: atomic { RUN && ph == PH_DROPPED && !kb ->
        ph = PH_NEW; lok[d] = 0; att = 0; brid = 0; tid = 0; tries = 0; code = 0;
        ms = 0; kw = 0; ks = 0; busy = 0; lost = 0 }
    od
}

/* The AMT server: answers the calls on the wire in any order, ends requests. */
inline serve_start(i) {
    t = ws_tid[i]; ws_tid[i] = 0; inflight[t]--;
    sd = (i <= 2 -> i : 0);
    r = 0;
    do
    :: r < nreq && rq_tid[r] != t -> r++
    :: else -> break
    od;
    if
    :: !refused[t] ->
        reached[t] = 1;
        if
        :: idem && r < nreq -> skip                   /* the request it made for this taskId */
        :: else ->                                    /* a new request */
            CHECK(one_request_on_idempotent_server, !idem || nreq == 0);
            assert(nreq < NREQ);
            r = nreq; rq_tid[r] = t; rq_st[r] = R_RUNNING; nreq++
        fi;
        b = r + 1;
        if
        :: ans = A_OK
        :: faults > 0 -> faults--; ans = A_MAYBE      /* the answer is lost */
        fi
    :: r == nreq ->
        /* 4xx: refused, and so is the same request again; a taskId the
         * server made a request for is not refused */
        reached[t] = 1; refused[t] = 1; ans = A_REFUSED
    :: faults > 0 -> faults--; ans = A_NOT_SENT       /* connection refused */
    fi;
    if
    :: sd != 0 -> as_ans[sd] = ans; as_brid[sd] = b
    :: else -> skip                                   /* its daemon died meanwhile */
    fi;
    r = 0; t = 0; sd = 0; ans = 0; b = 0
}

inline serve_kill(i) {
    CHECK(kill_only_when_requested, db_kill);
    r = wk_brid[i] - 1; ka = wk_att[i];
    wk_brid[i] = 0; wk_att[i] = 0;
    sd = (i <= 2 -> i : 0);
    if
    :: rq_st[r] == R_RUNNING -> rq_st[r] = R_KILLED; ans = A_OK
    :: rq_st[r] != R_RUNNING -> ans = A_LATE; REACH(3)
    :: faults > 0 -> faults--; ans = A_FAILED
    fi;
    if
    :: sd != 0 -> ak_ans[sd] = ans; ak_att[sd] = ka
    :: else -> skip
    fi;
    r = 0; sd = 0; ans = 0; ka = 0
}

#define SERVE(i) \
    :: atomic { ws_tid[i] != 0 -> serve_start(i) } \
    :: atomic { wk_brid[i] != 0 -> serve_kill(i) }

proctype server()
{
    byte r, t, sd, ans, b, ka;
end_loop:
    do
    /* the calls of daemons 1 and 2, and those of daemons that died since */
    SERVE(1) SERVE(2) SERVE(3) SERVE(4)
    /* a request ends by itself; one that an operator wants killed runs until killed */
    :: atomic { !db_kill && nreq > 0 && rq_st[0] == R_RUNNING -> rq_st[0] = R_DONE }
    :: atomic { !db_kill && nreq > 1 && rq_st[1] == R_RUNNING -> rq_st[1] = R_DONE }
    :: atomic { !db_kill && nreq > 2 && rq_st[2] == R_RUNNING -> rq_st[2] = R_DONE }
    :: atomic { !db_kill && nreq > 3 && rq_st[3] == R_RUNNING -> rq_st[3] = R_DONE }
    od
}

/* Time: a lease in the database runs out only after its holder's own view of
 * it did (docs/takeover.md: the holder counts from when it sent the renewal). */
proctype clock()
{
end_loop:
    do
    :: atomic { db_lease && ACTIVE(db_st) && !lok[db_owner] -> db_lease = 0 }
    od
}

/* The request of the job's current taskId, if the server made one. */
#define REQ_OF_TID(r) (r < nreq && rq_tid[r] == db_tid)

proctype operator()
{
    byte r;
#ifdef BUG_RESOLVE_UNCHECKED
    bit mistaken;
#endif
end_loop:
    do
    :: atomic { !db_kill && db_st != FINISHED -> db_kill = 1 }    /* acs.request_kill */
    :: atomic { db_st == IN_DOUBT ->
        /* acs.resolve_in_doubt: the operator looks at the server */
        r = 0;
        do
        :: r < nreq && rq_tid[r] != db_tid -> r++
        :: else -> break
        od;
        if
        :: r == nreq ->                                /* --restart: it was not started */
            db_st = QUEUED; db_tid++; db_owner = 0; assert(db_tid < NTID)
        :: r < nreq ->                                 /* --follow BATCHREQUESTID */
            db_st = RUNNING; db_brid = r + 1; db_lease = 0; REACH(4)
        :: end_job(C_UNDEFINED)                        /* --fail */
        fi;
        r = 0 }
#ifdef BUG_RESOLVE_UNCHECKED
    :: atomic { db_st == FINISHED && !mistaken ->       /* --restart of the wrong job */
        mistaken = 1; db_st = QUEUED; db_tid++; db_owner = 0 }
#endif
    od
}

/* When nothing can move any more (no fault is left, every call answered),
 * the job has ended, once, and a requested kill was carried out unless the
 * job's request had ended before it was asked for, or an operator gave the
 * job up (resolve --fail). */
proctype terminal()
{
    byte r;
    timeout ->
    r = 0;
    do
    :: r < nreq && !(rq_tid[r] == db_tid && rq_st[r] == R_RUNNING) -> r++
    :: else -> break
    od;
    CHECK(requested_kill_carried_out, !db_kill || r == nreq || db_code == C_UNDEFINED);
    CHECK(every_job_ends, db_st == FINISHED && ends == 1)
}

init {
    atomic {
        c_code { now.witness = getenv("MODEL_WITNESS") ? (uchar) atoi(getenv("MODEL_WITNESS")) : 0; };
#ifdef IDEM
        idem = IDEM;                                  /* one kind of server only */
#else
        if
        :: idem = 1
        :: idem = 0
        fi;
#endif
        up[1] = 1; sess[1] = 1; dbup[1] = 1;
        up[2] = 1; sess[2] = 1; dbup[2] = 1;
        run daemon(1); run daemon(2); run server(); run clock(); run operator(); run terminal()
    }
}
