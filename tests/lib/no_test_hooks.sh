# no_test_hooks.sh HOOKS AMTACSD OBJECT...: the objects, engine.c and keys.c
# compiled as a plain build (no AMTACS_TEST_HOOKS) compiles them, do not hold
# the name of the crash hook's variable; when HOOKS is ON the test build's
# amtacsd does (or the grep would prove nothing).
hooks=$1 daemon=$2
shift 2
if grep -l AMTACS_CRASH_AT "$@"; then
    echo "not ok - the crash hook (AMTACS_CRASH_AT) is compiled into a build without AMTACS_TEST_HOOKS" >&2
    exit 1
fi
echo "ok - no AMTACS_CRASH_AT in $# objects built without AMTACS_TEST_HOOKS"
if [ "$hooks" = ON ]; then
    if ! grep -q AMTACS_CRASH_AT "$daemon"; then
        echo "not ok - the test build's amtacsd lacks the crash hook" >&2
        exit 1
    fi
    echo "ok - the test build's amtacsd has it"
fi
