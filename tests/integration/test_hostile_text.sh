# Hostile text from an AMT server never drives a terminal: a job whose messages
# carry C1 CSI and OSC, ESC, BEL and bidi overrides (the catalog's HOSTILEMSG)
# and a server whose amtVersion carries them too. amtacsctl log, show, wait,
# list, alerts and comm status on a pseudo-terminal, their --json forms and the
# daemon's log show them escaped (\u009b, \u202e, ...), while the database
# keeps them byte for byte and `amtacsctl log ID > file` is that exact document.
source "$(dirname "$0")/../lib/harness.sh"

h_pg_start
h_ctl migrate >/dev/null
# The simulator's catalog with a hostile amtVersion (heartbeat answers, {amtVersion}).
sed 's/^amt_version: .*/amt_version: "8.0\\u009b2J\\u202eevil"/' \
    "$AMTACS_SRC/config/amt-catalog.yaml" >"$H_TMP/catalog.yaml"
h_sim_start --catalog "$H_TMP/catalog.yaml"
h_batch_user amtopcon amtopcon-secret
h_daemon_config "$H_TMP/amtacs.yaml"
h_daemon_start "$H_TMP/amtacs.yaml"
h_daemon_ready

# on_tty FILE CMD...: runs CMD on a pseudo-terminal, its output into FILE.
on_tty() {
    local file=$1
    shift
    python3 - "$file" "$@" <<'PY'
import os, pty, sys
out_path, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
open(out_path, "wb").write(out)
sys.exit(os.waitstatus_to_exitcode(st))
PY
}

# raw_controls FILE: the terminal controls in FILE (ESC, BEL, C1 as UTF-8 or as
# raw bytes, bidi controls), one line each; nothing when there are none.
raw_controls() {
    python3 - "$1" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
bad = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")
for m in bad.finditer(data):
    print(f"offset {m.start()}: {m.group().hex()}")
text = data.decode("utf-8", errors="surrogateescape")
for i, ch in enumerate(text):
    if "\udc80" <= ch <= "\udc9f":
        print(f"char {i}: raw byte {ord(ch) - 0xdc00:02x}")
PY
}

# check NAME FILE: FILE has no terminal control.
check() {
    local found
    found=$(raw_controls "$2")
    h_eq "" "$found" "$1: no raw terminal control"
}

id=$(h_ctl submit batch -C AMTDEMO -a DEMO2 -j HOSTILEMSG)
on_tty "$H_TMP/wait.tty" "$CTL_BIN" --db "$H_PGCONN" wait "$id" --timeout 120 || true
h_eq ERROR "$(h_sql -c "SELECT completion_name FROM acs.job_results WHERE id = $id")" \
    "HOSTILEMSG ends ERROR"
check "amtacsctl wait on a terminal" "$H_TMP/wait.tty"
h_match 'csi \\u009b31mred\\u009b0m osc \\u009d0;pwned\\u0007 end' "$(cat "$H_TMP/wait.tty")" \
    "wait shows the C1 controls as \\u009b and \\u009d"
h_match 'bidi \\u202eexe.txt\\u202c \\u2066iso\\u2069 \\u202a\\u202b\\u202d\\u2067\\u2068' \
    "$(cat "$H_TMP/wait.tty")" "wait shows every bidi control as \\u20XX"
h_match 'plain café 日本' "$(cat "$H_TMP/wait.tty")" "and ordinary UTF-8 as it is"

# What is stored is byte-exact: the job log holds each message as the server
# wrote it, in the reference layout (a JSON-quoted line: C0 as \u00XX, the rest raw).
stored=$(h_sql -c "SELECT log FROM acs.job_logs WHERE job_id = $id")
csi=$(printf '"csi \302\23331mred\302\2330m osc \302\2350;pwned\\u0007 end"')
bidi=$(printf '"esc \\u001b[2J bidi \342\200\256exe.txt\342\200\254 \342\201\246iso\342\201\251 \342\200\252\342\200\253\342\200\255\342\201\247\342\201\250"')
h_eq "$csi" "$(grep -F 'csi' <<<"$stored")" "the stored job log keeps the C1 controls byte for byte"
h_eq "$bidi" "$(grep -F 'bidi' <<<"$stored")" "and the bidi controls"
h_eq '"plain café 日本"' "$(grep -F 'plain' <<<"$stored")" "and plain UTF-8"

# amtacsctl log to a file is that document, byte for byte; on a terminal it is escaped.
h_ctl log "$id" >"$H_TMP/log.file"
h_eq "$stored" "$(cat "$H_TMP/log.file")" "amtacsctl log ID > file is the stored log byte for byte"
on_tty "$H_TMP/log.tty" "$CTL_BIN" --db "$H_PGCONN" log "$id"
check "amtacsctl log on a terminal" "$H_TMP/log.tty"
h_match '"csi \\u009b31mred\\u009b0m osc \\u009d0;pwned\\u0007 end"' "$(cat "$H_TMP/log.tty")" \
    "log on a terminal shows \\u009b where the document has U+009B"
h_match 'Job Log -+' "$(cat "$H_TMP/log.tty")" "and keeps its layout"

# show, list, alerts, comm status; their --json forms even to a file.
for cmd in "show $id" "show $id --json" "list" "list --json" "alerts --all" "alerts --all --json" \
    "comm status" "comm status --json" "wait $id --json"; do
    # shellcheck disable=SC2086
    on_tty "$H_TMP/out.tty" "$CTL_BIN" --db "$H_PGCONN" $cmd || true
    check "amtacsctl $cmd on a terminal" "$H_TMP/out.tty"
    # shellcheck disable=SC2086
    h_ctl $cmd >"$H_TMP/out.file" 2>&1 || true
    case $cmd in *--json*) check "amtacsctl $cmd to a file" "$H_TMP/out.file" ;; esac
done
h_eq "8.0$(printf '\302\2332J\342\200\256evil')" \
    "$(h_ctl comm status --json | jq -r '.[0].amt_version')" \
    "comm status --json: the same string once decoded (JSON escapes lose nothing)"
h_match '"amt_version":"8.0\\u009b2J\\u202eevil"' "$(h_ctl comm status --json)" \
    "escaped as \\u009b and \\u202e in the JSON text"
# The daemon's log: the server's amtVersion, escaped.
h_wait_until 30 grep -q 'u009b2J' "$H_DAEMON_LOG" ||
    h_not_ok "the daemon logs the server's amtVersion"
check "the daemon's log" "$H_DAEMON_LOG"
h_match 'AMT 8\.0\\u009b2J\\u202eevil' "$(grep -m1 'u009b2J' "$H_DAEMON_LOG")" \
    "the daemon's log shows the amtVersion escaped"
