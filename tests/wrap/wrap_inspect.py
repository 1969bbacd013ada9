#!/usr/bin/env python3
"""Spans opened through the profiling wrapper, read from outside with `otelprof inspect`:
each thread must show exactly its innermost open span (ids and http.route), or nothing.

Usage: wrap_inspect.py OTELPROF TARGET
"""
import json
import subprocess
import sys

SKIP = 77


def main():
    otelprof, target = sys.argv[1], sys.argv[2]
    proc = subprocess.Popen([target], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        expected = json.loads(proc.stdout.readline())
        r = subprocess.run([otelprof, "inspect", "--json", str(expected["pid"])],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            if "permission" in r.stderr.lower():
                print("SKIPPED: inspect needs ptrace permission: " + r.stderr.strip())
                return SKIP
            print("FAIL: inspect exited %d: %s" % (r.returncode, r.stderr))
            return 1
        doc = json.loads(r.stdout)
    finally:
        if proc.poll() is None:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            proc.wait(timeout=30)
    by_tid = {t["tid"]: t for t in doc["threads"]}
    bad = 0
    for want in expected["threads"]:
        got = by_tid.get(want["tid"])
        if got is None:
            print("FAIL: thread %d missing from inspect" % want["tid"])
            bad += 1
            continue
        tc = got.get("thread_ctx", {})
        span = want["span"]
        if span is None:
            ok = tc.get("state") == "none"
        else:
            ok = (tc.get("state") == "attached" and tc.get("trace_id") == span["trace_id"]
                  and tc.get("span_id") == span["span_id"]
                  and tc.get("attributes", {}).get("http.route") == span["route"])
            labels = got.get("custom_labels", {}).get("labels", {})
            ok = ok and labels.get("otel_traceid") == span["trace_id"] \
                and labels.get("otel_spanid") == span["span_id"]
        print("%s tid %d: want %s, inspect read %s" % ("ok  " if ok else "FAIL", want["tid"],
                                                     json.dumps(span), json.dumps(tc)))
        bad += 0 if ok else 1
    if proc.returncode != 0:
        print("FAIL: target exited %d" % proc.returncode)
        bad += 1
    print("%d threads checked, %d mismatches" % (len(expected["threads"]), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
