# shellcheck shell=bash
# Integration-test harness: source it from tests/integration/test_*.sh.
# It brings the private services (tests/lib/services.sh) and the assertions
# below; the EXIT trap tears everything down and prints "N passed, N failed".
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

h_ok() { H_WAIT_RANOUT=""; H_PASSED=$((H_PASSED + 1)); printf 'ok - %s\n' "$*"; }
h_not_ok() { H_WAIT_RANOUT=""; H_FAILED=$((H_FAILED + 1)); printf 'not ok - %s\n' "$*"; }

# h_eq EXPECTED ACTUAL DESCRIPTION
h_eq() {
    if [ "$1" == "$2" ]; then
        h_ok "$3"
    else
        h_not_ok "$3"
        printf '#   expected: %s\n#   actual:   %s\n' "$1" "$2"
    fi
}

# h_match REGEX ACTUAL DESCRIPTION
h_match() {
    if [[ "$2" =~ $1 ]]; then
        h_ok "$3"
    else
        h_not_ok "$3"
        printf '#   expected to match: %s\n#   actual: %s\n' "$1" "$2"
    fi
}

# h_run_fails DESCRIPTION CMD...: the command must exit non-zero; its output is in H_OUT.
h_run_fails() {
    local desc=$1; shift
    if H_OUT=$("$@" 2>&1); then
        h_not_ok "$desc (command succeeded)"
        printf '#   output: %s\n' "$H_OUT"
    else
        h_ok "$desc"
    fi
}

