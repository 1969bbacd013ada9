#!/usr/bin/env python3
"""Out-of-process proof for the gRPC server interceptor: while grpc-example computes a
long UnaryEcho (fib(N)) for a grpc++ client with the otelprof client interceptor,
`otelprof inspect --json PID` must show, on the handler thread, the client's trace id and
the id of the SERVER span the example then exports (whose parent is the client's span);
once the call is over, no thread of the example publishes anything.

Usage: grpc_inspect.py OTELPROF GRPC_EXAMPLE TEST_GRPC [N]
"""
import json
import os
import select
import subprocess
import sys
import time

SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def readline(proc, timeout, what):
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        fail("%s printed nothing in %ss" % (what, timeout))
    return proc.stdout.readline()


def inspect(otelprof, pid):
    r = subprocess.run([otelprof, "inspect", "--json", str(pid)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        if "permission" in r.stderr.lower() or "not permitted" in r.stderr.lower():
            print("SKIPPED: inspect needs ptrace permission: " + r.stderr.strip())
            sys.exit(SKIP)
        fail("inspect exited %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)["threads"]


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main():
    otelprof, example, client = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 45
    env = dict(os.environ)
    env.pop("OTEL_TRACES_EXPORTER", None)  # console exporter: spans on stdout
    srv = subprocess.Popen([example, "--port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
    cli = None
    try:
        r, _, _ = select.select([srv.stderr], [], [], 30)
        line = srv.stderr.readline() if r else ""
        if "listening on" not in line:
            fail("grpc-example did not start: %r" % line)
        port = line.rsplit(":", 1)[1].strip()
        cli = subprocess.Popen([client, "call", "127.0.0.1:" + port, str(n)],
                               stdout=subprocess.PIPE, text=True)
        ids = readline(cli, 30, "the client").split()
        if len(ids) != 2 or len(ids[0]) != 32:
            fail("unexpected client output %r" % ids)
        trace, client_span = ids
        print("client trace %s span %s, UnaryEcho %d" % (trace, client_span, n))

        seen = None
        polls = 0
        while cli.poll() is None and seen is None:
            polls += 1
            for t in inspect(otelprof, srv.pid):
                tc = t.get("thread_ctx", {})
                if tc.get("state") == "attached" and tc.get("trace_id") == trace:
                    seen = (t["tid"], t.get("name", ""), tc["span_id"])
        reply = cli.stdout.read().strip()
        if cli.wait() != 0:
            fail("the client failed")
        if reply != str(fib(n)):
            fail("reply %r, expected fib(%d) = %d" % (reply, n, fib(n)))
        if seen is None:
            fail("no thread of the example published the client's trace during the call "
                 "(%d inspect runs); raise N" % polls)
        tid, name, span = seen
        print("inspect run %d: thread %d (%s) publishes trace %s span %s"
              % (polls, tid, name, trace, span))
        if span == client_span:
            fail("the handler thread shows the client's span, not the SERVER span")

        # The call is over: nothing left published anywhere in the example.
        time.sleep(0.2)
        for t in inspect(otelprof, srv.pid):
            if t.get("thread_ctx", {}).get("state") == "attached":
                fail("thread %d still publishes %s after the call" % (t["tid"], t["thread_ctx"]))

        srv.send_signal(2)
        out, _ = srv.communicate(timeout=30)
        if srv.returncode != 0:
            fail("grpc-example exited with %d" % srv.returncode)
        spans = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        server = [s for s in spans if s.get("traceId") == trace and s.get("kind") == 2]
        if len(server) != 1:
            fail("expected one SERVER span in trace %s, got %s" % (trace, out))
        s = server[0]
        if s.get("spanId") != span or s.get("parentSpanId") != client_span:
            fail("SERVER span %s: expected spanId %s parentSpanId %s" % (s, span, client_span))
        print("exported SERVER span %s, parent %s: the one inspect saw" % (span, client_span))
        print("ok")
    finally:
        if cli and cli.poll() is None:
            cli.kill()
        if srv.poll() is None:
            srv.kill()
            srv.wait()


if __name__ == "__main__":
    main()
