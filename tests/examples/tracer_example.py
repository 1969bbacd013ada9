#!/usr/bin/env python3
"""tracer-example end to end: start it on a free port, GET /fib?n=N with curl, and check
(1) the reply, (2) the console exporter's span JSON on stdout (name, kind SERVER, route,
trace id = the one in the reply), (3) during a long request, `otelprof inspect` sees that
request's trace id on the handling thread, and (4) errors are clean (400, 404).

Usage: tracer_example.py TRACER_EXAMPLE OTELPROF
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

SKIP = 77


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl(url, timeout=60):
    r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True,
                       text=True, timeout=timeout)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def main():
    exe, otelprof = sys.argv[1], sys.argv[2]
    if not shutil.which("curl"):
        print("SKIPPED: curl is not installed")
        return SKIP
    port = free_port()
    env = dict(os.environ, OTEL_TRACES_EXPORTER="console")
    srv = subprocess.Popen([exe, "--port", str(port)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
    bad = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        code, body = curl("http://127.0.0.1:%d/fib?n=20" % port)
        if code != 200 or "fib(20) = 6765" not in body:
            bad.append("fib reply: %d %r" % (code, body))
        trace_id = body.split("trace_id ")[-1].strip()
        if len(trace_id) != 32:
            bad.append("no trace id in reply %r" % body)
        for url, want in (("/fib?n=x", 400), ("/fib?n=99", 400), ("/nope", 404)):
            code, _ = curl("http://127.0.0.1:%d%s" % (port, url))
            if code != want:
                bad.append("%s: got %d, want %d" % (url, code, want))

        # A long request, inspected from outside while it runs.
        result = {}
        t = threading.Thread(target=lambda: result.update(
            reply=curl("http://127.0.0.1:%d/fib?n=46" % port, timeout=300)))
        t.start()
        seen = None
        deadline = time.monotonic() + 20
        while seen is None and time.monotonic() < deadline and t.is_alive():
            r = subprocess.run([otelprof, "inspect", "--json", str(srv.pid)], capture_output=True,
                               text=True, timeout=30)
            if r.returncode == 0:
                for th in json.loads(r.stdout)["threads"]:
                    tc = th.get("thread_ctx", {})
                    if tc.get("state") == "attached":
                        seen = tc
            time.sleep(0.05)
        t.join(timeout=300)
        long_trace = result.get("reply", (0, ""))[1].split("trace_id ")[-1].strip()
        if seen is None:
            bad.append("inspect never saw a context during the long request")
        elif seen["trace_id"] != long_trace or seen.get("attributes", {}).get("http.route") != "/fib":
            bad.append("inspect saw %r, the request's trace id is %s" % (seen, long_trace))
        else:
            print("inspect during /fib?n=46: trace %s route %s" % (seen["trace_id"],
                                                                   seen["attributes"]["http.route"]))
    finally:
        srv.terminate()
        out, err = srv.communicate(timeout=30)
    spans = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    mine = [s for s in spans if s.get("traceId") == trace_id]
    if len(mine) != 1:
        bad.append("want one exported span with trace %s, got %d of %d" % (trace_id, len(mine), len(spans)))
    else:
        s = mine[0]
        attrs = {a["key"]: a["value"] for a in s["attributes"]}
        if s["name"] != "GET /fib" or s["kind"] != 2 or attrs.get("http.route") != {"stringValue": "/fib"} \
                or attrs.get("fib.n") != {"intValue": "20"}:
            bad.append("exported span: %r" % s)
    if srv.returncode != 0:
        bad.append("server exited %d: %s" % (srv.returncode, err))
    for b in bad:
        print("FAIL: " + b)
    print("%d spans exported, %d problems" % (len(spans), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
