#!/usr/bin/env python3
"""bench/web-sse's client: opens N server-sent event streams on /api/v1/events
in one process (one socket each, read with selectors), prints "ready N" once
every stream has its `ready` event, then times `job` events with state
finished on P probe streams: the latency of one is its arrival (this host's
clock) minus its `at` (the finished_at the daemon stored, the start of the
transaction that stored it, so the figure errs long, never short). The other
streams are drained and their job events counted. Exits when every probe has
seen `want` finished events, or after --timeout seconds; writes the samples
(ms, one a line) to --samples and the job events each stream saw to --counts.
"""
import argparse
import datetime
import json
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--want", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--counts", required=True)
    a = ap.parse_args()

    sel = selectors.DefaultSelector()
    req = ("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
           "Authorization: Bearer %s\r\n\r\n" % a.token).encode()
    state = []
    for i in range(a.streams):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(req)
        s.setblocking(False)
        st = {"i": i, "buf": b"", "ready": False, "jobs": 0, "finished": 0, "probe": i < a.probes,
              "tail": b""}
        state.append(st)
        sel.register(s, selectors.EVENT_READ, st)
        # not all at once: the server's queue for first reads holds 512
        if i % 100 == 99:
            pump(sel, state, [], 0.05)
    samples = []
    deadline = time.time() + a.timeout
    told = False
    while time.time() < deadline:
        pump(sel, state, samples, 0.2)
        nready = sum(1 for st in state if st["ready"])
        if nready == a.streams and not told:
            print("ready %d" % nready, flush=True)
            told = True
        if told and all(st["finished"] >= a.want for st in state if st["probe"]):
            break
    # the other streams: whatever is in flight comes in
    end = time.time() + 2
    while time.time() < end:
        pump(sel, state, samples, 0.1)
    with open(a.samples, "w") as f:
        for v in samples:
            f.write("%.3f\n" % v)
    with open(a.counts, "w") as f:
        for st in state:
            f.write("%d %d\n" % (st["jobs"], 1 if st["ready"] else 0))
    if not told:
        print("ready %d" % sum(1 for st in state if st["ready"]), flush=True)
    return 0


def pump(sel, state, samples, timeout):
    for key, _ in sel.select(timeout):
        st = key.data
        try:
            data = key.fileobj.recv(65536)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            continue
        now = time.time()
        if st["probe"] or not st["ready"]:
            st["buf"] += data
            parse(st, now, samples)
        else:
            # drained: count job events (a marker may straddle two reads)
            chunk = st["tail"] + data
            st["jobs"] += chunk.count(b"event: job\n")
            st["tail"] = chunk[-16:] if not chunk.endswith(b"event: job\n") else b""


def parse(st, now, samples):
    while b"\n\n" in st["buf"]:
        ev, st["buf"] = st["buf"].split(b"\n\n", 1)
        name = data = None
        for line in ev.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        if name == "ready":
            st["ready"] = True
        elif name == "job":
            st["jobs"] += 1
            if st["probe"]:
                doc = json.loads(data)
                if doc.get("state") == "finished" and doc.get("at"):
                    at = datetime.datetime.fromisoformat(doc["at"]).timestamp()
                    samples.append((now - at) * 1000)
                    st["finished"] += 1


if __name__ == "__main__":
    sys.exit(main())
