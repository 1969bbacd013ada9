#!/usr/bin/env python3
"""Inspect a process whose threads start, attach, detach and exit all the time: every
inspection must succeed with valid JSON, every record read must be self-consistent (no
torn or misplaced read), and the target must survive.

Usage: churn_check.py --otelprof BIN [--runs N] [--env K=V]... -- TARGET [ARGS...]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inspect_check import read_line  # noqa: E402


def consistent(tc):
    """trace id, span id and the seq attribute all carry the same number."""
    t, s = tc.get("trace_id", ""), tc.get("span_id", "")
    tail = "".join("%02x" % (0xa5 ^ i) for i in range(4, 16))
    try:
        seq = int(tc["attributes"]["seq"])
    except (KeyError, ValueError):
        return False
    return (t[8:] == tail and s[8:] == "5a" * 4 and int(t[:8], 16) == seq and int(s[:8], 16) == seq
            and tc.get("trace_flags") == 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--otelprof", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("target", nargs="+")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELPROF_") and k != "GLIBC_TUNABLES"}
    for kv in a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    proc = subprocess.Popen(a.target, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    bad = []
    seen = {"attached": 0, "none": 0, "unreadable": 0, "invalid": 0, "labels": 0}
    try:
        line = read_line(proc, 20)
        if line is None:
            print("FAIL: the churn target did not start", file=sys.stderr)
            return 1
        pid = json.loads(line)["pid"]
        for _ in range(a.runs):
            r = subprocess.run([a.otelprof, "inspect", "--json", str(pid)], capture_output=True, timeout=30)
            if r.returncode != 0:
                bad.append("inspect exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
                continue
            try:
                doc = json.loads(r.stdout.decode("utf-8"))
            except ValueError as e:
                bad.append("invalid JSON: %s" % e)
                continue
            for t in doc["threads"]:
                tc = t.get("thread_ctx", {})
                st = tc.get("state")
                seen[st] = seen.get(st, 0) + 1
                if st == "attached" and not consistent(tc):
                    bad.append("tid %d: inconsistent record %s" % (t["tid"], tc))
                if st == "unreadable":
                    print("note: tid %d unreadable: %s" % (t["tid"], tc.get("reason")))
                cl = t.get("custom_labels", {})
                labels = cl.get("labels")
                if labels:
                    seen["labels"] += 1
                    if st == "attached" and (labels.get("otel_traceid") != tc["trace_id"] or
                                             labels.get("seq") != tc["attributes"]["seq"]):
                        bad.append("tid %d: custom labels %s do not match the record %s" % (t["tid"], labels, tc))
            time.sleep(0.02)
        if proc.poll() is not None:
            bad.append("the target died (exit %s)" % proc.returncode)
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = "timeout"
            if rc != 0:
                bad.append("target exit status %s" % rc)
    print("thread states seen over %d inspections: %s" % (a.runs, seen))
    if seen["attached"] == 0:
        bad.append("no attached record was ever seen")
    for b in bad:
        print("FAIL: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
