#!/usr/bin/env python3
"""During a long request through the HTTP middleware, `otelprof inspect --json PID` must
see the request's trace id (and the SERVER span's id and http.route) on the handling
thread; once the request is over, that thread must no longer show it.

Usage: http_inspect.py OTELPROF TARGET MODE   (MODE: select | tpc)
"""
import json
import os
import select
import shutil
import subprocess
import sys

SKIP = 77


def readline(proc, timeout):
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        raise TimeoutError("target printed nothing in %ss" % timeout)
    return proc.stdout.readline()


def inspect(otelprof, pid):
    r = subprocess.run([otelprof, "inspect", "--json", str(pid)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        if "permission" in r.stderr.lower():
            print("SKIPPED: inspect needs ptrace permission: " + r.stderr.strip())
            sys.exit(SKIP)
        print("FAIL: inspect exited %d: %s" % (r.returncode, r.stderr))
        sys.exit(1)
    return {t["tid"]: t for t in json.loads(r.stdout)["threads"]}


def main():
    otelprof, target, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if not shutil.which("curl"):
        print("SKIPPED: the curl binary is not installed")
        return SKIP
    trace_id = os.urandom(16).hex()
    parent = os.urandom(8).hex()
    proc = subprocess.Popen([target, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    client = None
    bad = 0
    try:
        start = json.loads(readline(proc, 10))
        url = "http://127.0.0.1:%d/spin" % start["port"]
        client = subprocess.Popen(["curl", "-s", "--max-time", "30", "-H",
                                   "traceparent: 00-%s-%s-01" % (trace_id, parent), url],
                                  stdout=subprocess.PIPE, text=True)
        seen = json.loads(readline(proc, 10))  # printed by the handler, then it spins
        print("handler published: %s" % json.dumps(seen))
        if seen["trace_id"] != trace_id:
            print("FAIL: handler published trace %s, client sent %s" % (seen["trace_id"], trace_id))
            bad += 1
        threads = inspect(otelprof, start["pid"])
        got = threads.get(seen["tid"])
        tc = (got or {}).get("thread_ctx", {})
        labels = (got or {}).get("custom_labels", {}).get("labels", {})
        ok = (tc.get("state") == "attached" and tc.get("trace_id") == trace_id
              and tc.get("span_id") == seen["span_id"] and tc.get("span_id") != parent
              and tc.get("attributes", {}).get("http.route") == "/spin"
              and labels.get("otel_traceid") == trace_id)
        print("%s during the request, tid %d: inspect read %s, labels %s"
              % ("ok  " if ok else "FAIL", seen["tid"], json.dumps(tc), json.dumps(labels)))
        bad += 0 if ok else 1
        others = [t for tid, t in threads.items() if tid != seen["tid"]
                  and t.get("thread_ctx", {}).get("trace_id") == trace_id]
        if others:
            print("FAIL: other threads publish the request too: %s" % others)
            bad += 1
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = client.communicate(timeout=30)
        if out.strip() != "done":
            print("FAIL: client got %r" % out)
            bad += 1
        # Completion runs right after the response; give it a moment, then the handling
        # thread (still alive in select mode) must be back to no context.
        for attempt in range(50):
            threads = inspect(otelprof, start["pid"])
            after = threads.get(seen["tid"], {}).get("thread_ctx", {})
            if after.get("trace_id") != trace_id:
                break
            subprocess.run(["sleep", "0.05"])
        ok = after.get("trace_id") != trace_id
        print("%s after the request, tid %d: inspect read %s" % ("ok  " if ok else "FAIL", seen["tid"], json.dumps(after)))
        bad += 0 if ok else 1
    finally:
        if client and client.poll() is None:
            client.kill()
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=30)
    if proc.returncode != 0:
        print("FAIL: target exited %d" % proc.returncode)
        bad += 1
    print("%d mismatches" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
