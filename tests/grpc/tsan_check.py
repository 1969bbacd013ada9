#!/usr/bin/env python3
"""Runs one tests/grpc case in the TSan build and fails on any ThreadSanitizer report that
is otelprof's.

libgrpc, libgpr, libgrpc++ and abseil are Debian's, not built with TSan, so TSan does not
see their synchronisation: everything gRPC hands from one thread to another (calls,
metadata buffers, the interceptor objects, reactors) looks racy to it. Two measures, both
scoped to that:
  - ignore_noninstrumented_modules=1 (a TSan option made for uninstrumented libraries):
    memory accesses made by libc functions called from those libraries (their memcpy,
    malloc, epoll...) are not recorded;
  - what remains are reports in grpc++'s inline header code (compiled into the test) and
    in test objects whose hand-over gRPC orders. A suppressions file cannot single them
    out: TSan matches a suppression against every frame of a stack, and gRPC frames are
    below every otelprof interceptor and reactor frame, so any gRPC pattern would hide
    otelprof's reports too. This script classifies by the top frames instead: a report
    is otelprof's when the first non-TSan frame of one of its accesses is in otelprof's
    headers or sources (include/otelprof/, src/), or is a C++ library helper called
    directly from there. Those fail the test; the others are counted and listed by their
    top frames.

Usage: tsan_check.py REPO_ROOT TEST_BINARY CASE
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

SKIP = 77


def frames(block):
    out = []
    for line in block.splitlines():
        m = re.match(r"\s+#\d+ (.*)$", line)
        if m and "libtsan" not in line and "sanitizer_common" not in line:
            out.append(m.group(1))
    return out


def main():
    root, binary, case = sys.argv[1], sys.argv[2], sys.argv[3]
    ours = [os.path.join(root, "include", "otelprof") + "/", os.path.join(root, "src") + "/"]

    def is_ours(frame):
        return any(p in frame for p in ours)

    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ)
        env["TSAN_OPTIONS"] = (env.get("TSAN_OPTIONS", "") +
                               " ignore_noninstrumented_modules=1 halt_on_error=0"
                               " exitcode=0 log_path=" + os.path.join(d, "tsan")).strip()
        r = subprocess.run([binary, case], env=env, timeout=600)
        if r.returncode == SKIP:
            sys.exit(SKIP)
        if r.returncode != 0:
            print("FAIL: %s %s exited with %d" % (binary, case, r.returncode))
            sys.exit(1)
        text = ""
        for f in sorted(glob.glob(os.path.join(d, "tsan*"))):
            with open(f, errors="replace") as fh:
                text += fh.read()
    reports = text.split("WARNING: ThreadSanitizer:")[1:]
    mine, others = [], {}
    for rep in reports:
        kind = rep.strip().split("(")[0].strip()
        blocks = re.split(r"\n  (?=\S)", rep)
        access = [frames(b) for b in blocks
                  if re.match(r"(Read|Write|Previous|Atomic|Mutex|Heap|Location)", b.strip())]
        if kind != "data race" and not kind.startswith("data race"):
            # anything but a race (use after free, lock inversion, ...): ours if any frame is
            access_frames = [f for a in access for f in a]
            if any(is_ours(f) for f in access_frames):
                mine.append(rep)
                continue
        hit = False
        tops = []
        for a in access:
            if not a:
                continue
            tops.append(a[0])
            if is_ours(a[0]) or (("/usr/include/c++/" in a[0] or "libstdc++" in a[0]) and
                                 len(a) > 1 and is_ours(a[1])):
                hit = True
        if hit:
            mine.append(rep)
        else:
            key = " | ".join(re.sub(r"<.*>", "<>", t.split(" (")[0])[:100] for t in tops[:2])
            others[key] = others.get(key, 0) + 1
    n_other = sum(others.values())
    print("tsan: %d reports; %d in otelprof code; %d inside gRPC's inline code or test objects "
          "gRPC hands over (libgrpc is not TSan-instrumented), not counted:"
          % (len(reports), len(mine), n_other))
    for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:15]:
        print("  %3d  %s" % (v, k))
    if mine:
        for rep in mine:
            print("==== otelprof report ====\nWARNING: ThreadSanitizer:" + rep)
        print("FAIL: %d ThreadSanitizer report(s) in otelprof code" % len(mine))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
