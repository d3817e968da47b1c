# The daemon's HTTP endpoint against hostile clients and careless setups:
# no token means loopback only (and a warning); a token file that is a link,
# a FIFO or another user's file is refused; HTTPS with a certificate and a
# key file only the daemon's user can read; every answer says nosniff and
# allows nothing (CSP); and a slowloris attack (80 sockets from two loopback
# addresses, each sending one header line a second) neither starves /healthz
# from a third address nor keeps its sockets: the header deadline closes them.
source "$(dirname "$0")/../lib/harness.sh"

command -v openssl >/dev/null 2>&1 || { h_log "openssl not installed"; exit 1; }

h_pg_start
h_ctl migrate >/dev/null
h_sim_start --time-scale 0.05
h_batch_user amtopcon amtopcon-secret
token='tok-5e1d9a3c7b2f4e6a8c0d'
printf '%s\n' "$token" >"$H_TMP/http.token"
chmod 600 "$H_TMP/http.token"

# refused DESC RC REGEX CONFIG: amtacsd with CONFIG exits with status RC (not
# killed by the 20 s bound: a daemon that started, or hangs, fails) and says
# something matching REGEX.
refused() {
    local desc=$1 want=$2 re=$3 cfg=$4 rc=0
    H_OUT=$(timeout -k 5 20 "$DAEMON_BIN" -c "$cfg" 2>&1) || rc=$?
    if [ "$rc" = "$want" ] && grep -qE -- "$re" <<<"$H_OUT"; then
        h_ok "$desc"
    else
        h_not_ok "$desc (exit $rc, wanted $want and /$re/)"
        printf '#   output: %s\n' "$(tail -n 3 <<<"$H_OUT")"
    fi
}
# The port a daemon logged (its last http.listening line).
port_of() { grep 'event=http.listening' "$1" | tail -n1 | grep -o '(port [0-9]*' | tr -dc 0-9 || true; }

# --- no token: loopback only, with a warning ------------------------------------------------
H_HTTP_LISTEN="0.0.0.0:0" h_daemon_config "$H_TMP/open.yaml"
refused "0.0.0.0 without http.token_file is refused at start (exit 2, as any configuration error)" \
    2 "http.listen: '0.0.0.0:0' is not a loopback address.*http.token_file" "$H_TMP/open.yaml"
rc=0; out=$(timeout 20 "$DAEMON_BIN" -n -c "$H_TMP/open.yaml" 2>&1) || rc=$?
h_eq 2 "$rc" "amtacsd --check refuses it too"
H_HTTP_LISTEN="[::]:0" h_daemon_config "$H_TMP/open6.yaml"
refused "[::] without a token is refused" 2 "not a loopback address" "$H_TMP/open6.yaml"
H_HTTP_LISTEN="0.0.0.0:0" H_HTTP_EXTRA="  token_file: $H_TMP/http.token" \
    h_daemon_config "$H_TMP/open-token.yaml"
rc=0; timeout 20 "$DAEMON_BIN" -n -c "$H_TMP/open-token.yaml" >/dev/null 2>&1 || rc=$?
h_eq 0 "$rc" "0.0.0.0 with a token is accepted"

H_HTTP_LISTEN="localhost:0" h_daemon_config "$H_TMP/local.yaml"
h_daemon_start "$H_TMP/local.yaml"
h_daemon_http >/dev/null || h_not_ok "the daemon serves localhost without a token"
h_eq 1 "$(grep -c 'event=http.no_token' "$H_DAEMON_LOG")" \
    "on loopback without a token the daemon starts and warns once (http.no_token)"
h_daemons_stop

# --- the token file ---------------------------------------------------------------------------
ln -sf "$H_TMP/http.token" "$H_TMP/link.token"
H_HTTP_EXTRA="  token_file: $H_TMP/link.token" h_daemon_config "$H_TMP/link.yaml"
refused "a token file that is a symbolic link is refused" 1 "link.token is a symbolic link" \
    "$H_TMP/link.yaml"
mkfifo -m 600 "$H_TMP/fifo.token"
H_HTTP_EXTRA="  token_file: $H_TMP/fifo.token" h_daemon_config "$H_TMP/fifo.yaml"
refused "a token file that is a FIFO is refused at once (no hang)" 1 \
    "fifo.token is a FIFO; it must be a regular file" "$H_TMP/fifo.yaml"
chmod 640 "$H_TMP/http.token"
H_HTTP_EXTRA="  token_file: $H_TMP/http.token" h_daemon_config "$H_TMP/tok.yaml"
refused "a token file the group can read is refused" 1 "accessible by group or others" "$H_TMP/tok.yaml"
chmod 600 "$H_TMP/http.token"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    cp "$H_TMP/http.token" "$H_TMP/nobody.token"
    chmod 600 "$H_TMP/nobody.token"
    chown nobody "$H_TMP/nobody.token"
    H_HTTP_EXTRA="  token_file: $H_TMP/nobody.token" h_daemon_config "$H_TMP/nobody.yaml"
    refused "a token file owned by another user is refused" 1 \
        "nobody.token is owned by uid [0-9]+, not by this process's user" "$H_TMP/nobody.yaml"
else
    h_log "not root: the token file owned by another user is not tested"
fi

# --- HTTPS --------------------------------------------------------------------------------------
pki=$H_TMP/pki
mkdir -p "$pki"
openssl_q() { openssl "$@" >"$pki/openssl.log" 2>&1 || { cat "$pki/openssl.log" >&2; return 1; }; }
openssl_q req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 2 -subj "/CN=amtacs test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl_q req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/http.key" -out "$pki/http.csr" -subj "/CN=127.0.0.1"
printf '%s\n' 'basicConstraints = critical, CA:FALSE' 'extendedKeyUsage = serverAuth' \
    'subjectAltName = IP:127.0.0.1, DNS:localhost' >"$pki/http.ext"
openssl_q x509 -req -in "$pki/http.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/http.ext" -out "$pki/http.pem"
chmod 600 "$pki/http.key"
tls_extra="  token_file: $H_TMP/http.token
  tls_cert_file: $pki/http.pem
  tls_key_file: $pki/http.key"
H_HTTP_EXTRA=$tls_extra h_daemon_config "$H_TMP/tls.yaml"
h_daemon_start "$H_TMP/tls.yaml"
h_daemon_http >/dev/null || h_not_ok "the daemon starts with tls_cert_file and tls_key_file"
port=$(port_of "$H_DAEMON_LOG")
TLS_URL="https://127.0.0.1:$port"
h_match "over HTTPS, bearer token required" "$(grep 'event=http.listening' "$H_DAEMON_LOG")" \
    "the daemon says it serves HTTPS"
h_wait_until 30 curl -fsS --cacert "$pki/ca.pem" "$TLS_URL/healthz" || true
h_eq "ok" "$(curl -fsS --max-time 5 --cacert "$pki/ca.pem" "$TLS_URL/healthz")" \
    "/healthz answers over HTTPS with the configured certificate (curl --cacert)"
h_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/ca.pem" \
    -H "Authorization: Bearer $token" "$TLS_URL/metrics")" "/metrics over HTTPS with the token"
h_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/ca.pem" \
    "$TLS_URL/metrics")" "and 401 without it"
curl -fsS --max-time 5 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 &&
    h_not_ok "the HTTPS endpoint does not answer plain HTTP" ||
    h_ok "the HTTPS endpoint does not answer plain HTTP"
curl -fsS --max-time 5 --tlsv1.1 --tls-max 1.1 --cacert "$pki/ca.pem" "$TLS_URL/healthz" \
    >/dev/null 2>&1 && h_not_ok "TLS 1.1 is refused" || h_ok "TLS 1.1 is refused"
! grep -q -- "$token" "$H_DAEMON_LOG" && h_ok "the token is not logged" || h_not_ok "the token is not logged"
h_daemons_stop

chmod 640 "$pki/http.key"
refused "a TLS key file the group can read is refused" 1 \
    "http.tls_key_file .*accessible by group or others" "$H_TMP/tls.yaml"
chmod 600 "$pki/http.key"
ln -sf "$pki/http.key" "$pki/link.key"
H_HTTP_EXTRA=${tls_extra/http.key/link.key} h_daemon_config "$H_TMP/tls-link.yaml"
refused "a TLS key file that is a symbolic link is refused" 1 "link.key is a symbolic link" \
    "$H_TMP/tls-link.yaml"
H_HTTP_EXTRA="  tls_cert_file: $pki/http.pem" h_daemon_config "$H_TMP/tls-half.yaml"
refused "a certificate without a key is refused" 2 "tls_cert_file: is set without http.tls_key_file" \
    "$H_TMP/tls-half.yaml"
H_HTTP_LISTEN="0.0.0.0:0" H_HTTP_EXTRA="  tls_cert_file: $pki/http.pem
  tls_key_file: $pki/http.key" h_daemon_config "$H_TMP/tls-open.yaml"
refused "HTTPS off loopback still needs a token" 2 "not a loopback address" "$H_TMP/tls-open.yaml"
H_HTTP_EXTRA="  token_file: $H_TMP/http.token
  tls_cert_file: $pki/ca.key
  tls_key_file: $pki/http.key" h_daemon_config "$H_TMP/tls-bad.yaml"
chmod 644 "$pki/ca.key"
refused "a certificate file that is no certificate is refused, saying so" 1 \
    "cannot serve HTTPS on 127.0.0.1:0" "$H_TMP/tls-bad.yaml"

# --- nosniff and CSP on every answer ---------------------------------------------------------------
H_HTTP_EXTRA="  token_file: $H_TMP/http.token
  header_timeout: 2s" h_daemon_config "$H_TMP/plain.yaml"
h_daemon_start "$H_TMP/plain.yaml"
URL=$(h_daemon_http) || h_not_ok "the daemon starts with header_timeout: 2s"
h_wait_until 30 curl -fs "$URL/healthz" || true
for case in "200 /healthz" "404 /nope" "404 /v1/jobs/abc" "401 /metrics" "404 /v1/jobs/1/log"; do
    want=${case%% *} path=${case#* }
    head=$(curl -si --max-time 5 "$URL$path" | tr -d '\r' | sed '/^$/q')
    h_match "^HTTP/1.1 $want" "$head" "$path answers $want"
    h_match "X-Content-Type-Options: nosniff" "$head" "$path: X-Content-Type-Options: nosniff"
    h_match "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'" "$head" \
        "$path: a Content-Security-Policy that allows nothing"
done
head=$(curl -si --max-time 5 -X POST "$URL/healthz" | tr -d '\r' | sed '/^$/q')
h_match "X-Content-Type-Options: nosniff" "$head" "a 405 says nosniff too"

# --- slowloris ----------------------------------------------------------------------------------------
# 40 sockets from 127.0.0.1 and 40 from 127.0.0.2, each sending a request
# line and then one header line a second, never the blank line; meanwhile
# /healthz from 127.0.0.3 must answer 200 within 5 s, 10 times in a row,
# and every slow socket must be closed by the daemon (EOF) within the 2 s
# header deadline plus slack.
port=${URL##*:}
python3 - "$port" >"$H_TMP/slowloris.out" 2>&1 <<'PY' && h_ok "slowloris: /healthz stays responsive and the slow sockets are closed" || h_not_ok "slowloris: /healthz stays responsive and the slow sockets are closed"
import socket, sys, time, http.client
port = int(sys.argv[1])
DEADLINE = 2.0         # http.header_timeout of the daemon
BOUND = DEADLINE + 8.0 # a slow socket still open after this long fails the test
start = time.monotonic()
slow = []              # [socket, opened, closed_at or None]
for src in ("127.0.0.1", "127.0.0.2"):
    for i in range(40):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass
        s.setblocking(False)
        slow.append([s, time.monotonic(), None])

def poll_slow(send):
    for e in slow:
        if e[2] is not None:
            continue
        s = e[0]
        try:
            if s.recv(4096) == b"":
                e[2] = time.monotonic()
                continue
            # bytes before the blank line: an answer would mean the headers were taken as complete
            print("slow socket got an answer"); sys.exit(1)
        except BlockingIOError:
            pass
        except OSError:
            e[2] = time.monotonic()
            continue
        if send:
            try:
                s.send(b"X-Slow: %d\r\n" % int(time.monotonic()))
            except OSError:
                e[2] = time.monotonic()

probes = 0
last_send = 0
while True:
    now = time.monotonic()
    poll_slow(now - last_send >= 1.0)
    if now - last_send >= 1.0:
        last_send = now
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.3", 0))
        c.request("GET", "/healthz")
        r = c.getresponse()
        body = r.read()
        c.close()
    except Exception as ex:
        print("probe %d failed after %.1f s: %r" % (probes + 1, time.monotonic() - t0, ex)); sys.exit(1)
    if r.status != 200:
        print("probe %d: status %d" % (probes + 1, r.status)); sys.exit(1)
    probes += 1
    open_ = [e for e in slow if e[2] is None]
    if probes >= 10 and not open_:
        break
    if time.monotonic() - start > BOUND + 5:
        print("%d slow sockets still open after %.1f s" % (len(open_), time.monotonic() - start)); sys.exit(1)
    time.sleep(0.2)
late = [e for e in slow if e[2] - e[1] > BOUND]
held = sorted(round(e[2] - e[1], 1) for e in slow)
print("probes %d; slow sockets closed after (s): %s" % (probes, held))
if late:
    print("%d slow sockets were held longer than %.0f s" % (len(late), BOUND)); sys.exit(1)
if sum(1 for h in held if h >= DEADLINE - 0.5) < 2:
    print("no slow socket was served up to the deadline: the test did not attack"); sys.exit(1)
PY
sed 's/^/# /' "$H_TMP/slowloris.out"
h_match "closed [0-9]+ connection\(s\) whose request headers were not complete within 2000 ms" \
    "$(grep 'event=http.header_timeout' "$H_DAEMON_LOG" | head -n1)" "the daemon logs the connections it cut"
h_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz")" "/healthz answers afterwards"
h_daemons_stop
