# The layering of the sources (tests/lib/layering.py): no include cycle among
# the headers; the library includes only its own modules' headers; a program's
# own headers (src/sim/, src/web/) stay in it; metrics does not know the
# client's enums, nor the logger the configuration. Each rule is one line.
source "$(dirname "$0")/../lib/harness.sh"

rc=0
out=$(python3 "$AMTACS_SRC/tests/lib/layering.py" "$AMTACS_SRC" 2>&1) || rc=$?
# a crash of the checker is a failure too, not a silent pass
[ "$rc" = 0 ] || grep -q '^not ok - ' <<<"$out" || h_not_ok "layering.py ran (exit $rc)"
while IFS= read -r line; do
    case "$line" in
        "ok - "*) h_ok "${line#ok - }" ;;
        "not ok - "*) h_not_ok "${line#not ok - }" ;;
        *) printf '%s\n' "$line" ;;
    esac
done <<<"$out"
