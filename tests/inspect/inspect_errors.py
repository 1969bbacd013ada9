#!/usr/bin/env python3
"""Error paths of `otelprof`: each case checks the exit status and the message.

Usage: inspect_errors.py --otelprof BIN nopid|nootelprof|nonroot|usage
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
NOBODY = 65534


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def expect(r, code, *needles, stream="stderr"):
    out = getattr(r, stream)
    ok = (r.returncode == code if code is not None else r.returncode != 0)
    missing = [n for n in needles if n not in out]
    print("$ %s -> %d\n%s%s" % (" ".join(r.args), r.returncode, r.stdout, r.stderr))
    if not ok:
        print("FAIL: exit status %d, expected %s" % (r.returncode, code if code is not None else "non-zero"))
    if missing:
        print("FAIL: %s lacks %r" % (stream, missing))
    return ok and not missing


def free_pid():
    """A pid that no process has (checked just before use)."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            pid = int(f.read()) - 1
    except OSError:
        pid = 4194303
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


def case_nopid(otelprof):
    pid = free_pid()
    r = run([otelprof, "inspect", str(pid)])
    return expect(r, 1, "otelprof inspect: no process with pid %d" % pid)


def case_nootelprof(otelprof):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        ok = True
        for extra in ([], ["--json"]):
            r = run([otelprof, "inspect"] + extra + [str(sleeper.pid)])
            ok &= expect(r, 1, "process %d exposes no thread context: no module exports "
                               "otel_thread_ctx_v1 or custom_labels_current_set, and no OTEL_CTX mapping"
                         % sleeper.pid)
            ok &= r.stdout == ""
        return ok
    finally:
        sleeper.kill()
        sleeper.wait()


def drop_to_nobody():
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def case_nonroot(otelprof):
    if os.geteuid() != 0:
        print("SKIPPED: needs root, to drop to uid %d and inspect a root-owned process" % NOBODY)
        return SKIP
    # The unprivileged user must be able to execute the tool: use a copy in a fresh
    # world-readable directory, whatever the build tree's permissions.
    tmp = tempfile.mkdtemp(prefix="otelprof-nonroot-")
    try:
        os.chmod(tmp, 0o755)
        tool = os.path.join(tmp, "otelprof")
        shutil.copy2(otelprof, tool)
        os.chmod(tool, 0o755)
        probe = run([tool, "--version"], preexec_fn=drop_to_nobody)
        if probe.returncode != 0:
            print("SKIPPED: the tool does not run as uid %d here: %s" % (NOBODY, probe.stderr.strip()))
            return SKIP
        victim = subprocess.Popen(["sleep", "30"])  # owned by root
        try:
            r = run([tool, "inspect", str(victim.pid)], preexec_fn=drop_to_nobody)
            return expect(r, 1, "cannot ", "of process %d" % victim.pid, "root or CAP_SYS_PTRACE",
                          "kernel.yama.ptrace_scope")
        finally:
            victim.kill()
            victim.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_usage(otelprof):
    ok = True
    ok &= expect(run([otelprof]), 2, "usage: otelprof")
    ok &= expect(run([otelprof, "inspect"]), 2, "usage: otelprof inspect")
    ok &= expect(run([otelprof, "inspect", "12x"]), 2, "'12x' is not a process id", "usage:")
    ok &= expect(run([otelprof, "inspect", "0"]), 2, "usage:")
    ok &= expect(run([otelprof, "inspect", "--bogus", "1"]), 2, "unknown option '--bogus'")
    ok &= expect(run([otelprof, "inspect", "1", "2"]), 2, "one PID only")
    ok &= expect(run([otelprof, "frobnicate"]), 2, "unknown command 'frobnicate'")
    r = run([otelprof, "--version"])
    ok &= expect(r, 0, stream="stdout") and r.stdout == "otelprof 0.1.0\n"
    ok &= expect(run([otelprof, "--help"]), 0, "inspect", stream="stdout")
    ok &= expect(run([otelprof, "inspect", "--help"]), 0, "--json", stream="stdout")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--otelprof", required=True)
    ap.add_argument("case", choices=["nopid", "nootelprof", "nonroot", "usage"])
    a = ap.parse_args()
    res = globals()["case_" + a.case](os.path.abspath(a.otelprof))
    if res == SKIP:
        return SKIP
    print("ok" if res else "FAILED")
    return 0 if res else 1


if __name__ == "__main__":
    sys.exit(main())
