#!/usr/bin/env bash
# Prints the job-machine transitions of the protocol model (tests/model/amtacs.pml),
# one "PHASE EVENT NEXT" a line, sorted and without repeats, so that a test can
# compare them with job.c's table (job_table). With -g: "PHASE EVENT GUARD NEXT".
#
# A transition is marked on its line in the model as
#   /* T: FROM EVENT GUARD -> TO */
# where FROM may list several phases (start_write|follow) and TO may be '='
# (the phase it was in). Names are job.c's (job_phase_name, job_event_name,
# job_guard_name).
#   tests/model/transitions.sh [-g] [MODEL]
set -euo pipefail

guards=0
if [ "${1:-}" = -g ]; then
    guards=1
    shift
fi
model=${1:-"$(dirname "$0")/amtacs.pml"}

grep -o '/\* T: [^*]*\*/' "$model" |
    sed -E 's|^/\* T: ||; s| *\*/$||' |
    awk -v guards="$guards" '
        NF != 5 || $4 != "->" { print "transitions.sh: bad marker: " $0 > "/dev/stderr"; bad = 1; next }
        {
            n = split($1, from, "|")
            for (i = 1; i <= n; i++) {
                to = $5 == "=" ? from[i] : $5
                if (guards)
                    print from[i], $2, $3, to
                else
                    print from[i], $2, to
            }
        }
        END { exit bad }' |
    LC_ALL=C sort -u
