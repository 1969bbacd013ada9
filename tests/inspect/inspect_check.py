#!/usr/bin/env python3
"""Start an inspect target, run `otelprof inspect` on it, and compare exactly, thread by
thread, with what the target says each thread publishes.

Usage: inspect_check.py --otelprof BIN --mode static|shared|dlopen --expect-tls static|dtv
                        [--env K=V]... [--break-expectation] -- TARGET [ARGS...]

--break-expectation corrupts one expected value: the check must then fail (a self-test
that the comparison really compares).
"""
import argparse
import copy
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
TC_SYMBOL = "otel_thread_ctx_v1"
CL_SYMBOL = "custom_labels_current_set"
ABI_SYMBOL = "custom_labels_abi_version"
SCHEMA = "tlsdesc_v1_dev"

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def read_line(proc, timeout):
    """One line from the target's stdout, or None on timeout / exit."""
    buf = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8")


def run_inspect(otelprof, pid, json_mode):
    cmd = [otelprof, "inspect"] + (["--json"] if json_mode else []) + [str(pid)]
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    if r.returncode != 0:
        fail("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr.decode(errors="replace")))
        return None
    out = r.stdout.decode("utf-8")  # must be valid UTF-8
    if json_mode:
        try:
            return json.loads(out)
        except ValueError as e:
            fail("inspect --json printed invalid JSON: %s\n%s" % (e, out))
            return None
    return out


def find_module(doc, symbol):
    mods = [m for m in doc.get("modules", []) if symbol in m.get("symbols", [])]
    if len(mods) != 1:
        fail("expected exactly one module exporting %s, got %s" % (symbol, [m.get("path") for m in mods]))
        return None
    return mods[0]


def descriptor_kind(pid, lib_path, symbol):
    """Independent of otelprof: what the module's TLSDESC descriptor for symbol holds,
    from readelf's relocation list and /proc/PID/mem. 'static', 'dtv' or None."""
    try:
        rel = subprocess.run(["readelf", "-W", "-r", lib_path], capture_output=True, text=True,
                             timeout=30).stdout
    except FileNotFoundError:
        print("note: readelf not found; descriptor check skipped")
        return None
    offset = None
    for line in rel.splitlines():
        f = line.split()
        if len(f) >= 5 and f[2] == "R_X86_64_TLSDESC" and f[4].split("@")[0] == symbol:
            offset = int(f[0], 16)
    if offset is None:
        fail("no R_X86_64_TLSDESC against %s in %s" % (symbol, lib_path))
        return None
    base = None
    real = os.path.realpath(lib_path)
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and int(parts[2], 16) == 0 and os.path.realpath(parts[5].strip()) == real:
                base = int(parts[0].split("-")[0], 16)
                break
    if base is None:
        fail("%s is not mapped in %d" % (lib_path, pid))
        return None
    # shared objects here are linked at 0: the mapping's start is the load bias
    with open("/proc/%d/mem" % pid, "rb") as mem:
        mem.seek(base + offset)
        _, arg = struct.unpack("<Qq", mem.read(16))
    return "static" if -(16 << 20) <= arg < 0 else "dtv"


def expected_custom_labels(cl, expect_tls):
    if expect_tls == "static":
        return cl
    # Parca takes the descriptor's second word as a static offset: with dynamic TLS it
    # cannot read the labels, which otelprof still reads through the DTV.
    if cl["state"] == "attached":
        return {"state": "unreadable", "read_via": "dtv", "labels": cl["labels"]}
    return {"state": "unreadable"}


def compare_threads(expected, doc, expect_tls):
    actual = {t["tid"]: t for t in doc.get("threads", [])}
    want = {t["tid"]: t for t in expected["threads"]}
    if set(actual) != set(want):
        fail("thread ids differ: inspect %s, target %s" % (sorted(actual), sorted(want)))
    for tid in sorted(want):
        if tid not in actual:
            continue
        w, a = copy.deepcopy(want[tid]), copy.deepcopy(actual[tid])
        w["custom_labels"] = expected_custom_labels(w["custom_labels"], expect_tls)
        cl = a.get("custom_labels", {})
        if expect_tls == "dtv":
            reason = cl.pop("reason", "")
            if "Parca" not in reason:
                fail("tid %d: custom labels reason should name Parca: %r" % (tid, reason))
        if w != a:
            fail("tid %d (%s) differs:\n  expected %s\n  actual   %s" % (
                tid, w.get("name"), json.dumps(w, ensure_ascii=False, sort_keys=True),
                json.dumps(a, ensure_ascii=False, sort_keys=True)))
        else:
            print("ok tid %d %-11s thread_ctx=%s custom_labels=%s" % (
                tid, a["name"], a["thread_ctx"]["state"], a["custom_labels"]["state"]))


def check_process_context(expected, doc):
    pc = doc.get("process_context", {})
    want = {"found": True, "version": 2, "schema_version": SCHEMA,
            "attribute_key_map": expected["keys"]}
    for k, v in want.items():
        if pc.get(k) != v:
            fail("process_context.%s: expected %r, got %r" % (k, v, pc.get(k)))
    if pc.get("mapping") not in ("/memfd:OTEL_CTX (deleted)", "/memfd:OTEL_CTX", "[anon:OTEL_CTX]",
                                 "[anon_shmem:OTEL_CTX]"):
        fail("process_context.mapping: %r" % pc.get("mapping"))
    res = pc.get("resource", {})
    if res.get("service.name") != expected["service_name"]:
        fail("resource service.name: %r" % res.get("service.name"))
    if res.get("process.pid") != expected["pid"] or type(res.get("process.pid")) is not int:
        fail("resource process.pid: %r (want the number %d)" % (res.get("process.pid"), expected["pid"]))
    if not pc.get("published_at"):
        fail("process_context.published_at is 0 or missing")


def check_modules(doc, mode, expect_tls):
    tc = find_module(doc, TC_SYMBOL)
    cl = find_module(doc, CL_SYMBOL)
    if not tc or not cl:
        return
    for m in doc["modules"]:
        if m.get("notes"):
            fail("module %s: %s" % (m["path"], m["notes"]))
    if mode == "static":
        if tc is not cl or not tc.get("main_executable"):
            fail("static: the executable should define all symbols: %s" % doc["modules"])
        if sorted(tc["symbols"]) != sorted([TC_SYMBOL, CL_SYMBOL, ABI_SYMBOL]):
            fail("static: symbols %s" % tc["symbols"])
    else:
        if not os.path.basename(tc["path"]).startswith("libotelprof.so") or tc["symbols"] != [TC_SYMBOL]:
            fail("thread-context module: %s %s" % (tc["path"], tc["symbols"]))
        if os.path.basename(cl["path"]) != "libcustomlabels-otelprof.so" or \
                cl["symbols"] != [CL_SYMBOL, ABI_SYMBOL]:
            fail("custom-labels module: %s %s" % (cl["path"], cl["symbols"]))
    for m in ([tc] if tc is cl else [tc, cl]):
        if m.get("tls") != expect_tls:
            fail("module %s: TLS %r (%s), expected %r" % (m["path"], m.get("tls"),
                                                          m.get("tls_access", m.get("tls_error")), expect_tls))
        if expect_tls == "dtv" and not isinstance(m.get("module_id"), int):
            fail("module %s: no module_id" % m["path"])
        if expect_tls == "static" and not (isinstance(m.get("tp_offset"), int) and m["tp_offset"] < 0):
            fail("module %s: tp_offset %r" % (m["path"], m.get("tp_offset")))
        print("ok module %s: tls=%s (%s)" % (m["path"], m.get("tls"), m.get("tls_access")))
    if cl.get("custom_labels_abi_version") != 1:
        fail("custom_labels_abi_version: %r" % cl.get("custom_labels_abi_version"))
    if cl.get("parca_readable") != (expect_tls == "static"):
        fail("parca_readable: %r (%s)" % (cl.get("parca_readable"), cl.get("parca_reason")))


def check_text(expected, text):
    for t in expected["threads"]:
        if str(t["tid"]) not in text:
            fail("text output lacks tid %d" % t["tid"])
        tc = t["thread_ctx"]
        if tc["state"] == "attached":
            for k in ("trace_id", "span_id"):
                if tc[k] not in text:
                    fail("text output lacks %s %s of tid %d" % (k, tc[k], t["tid"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--otelprof", required=True)
    ap.add_argument("--mode", choices=["static", "shared", "dlopen"], required=True)
    ap.add_argument("--expect-tls", choices=["static", "dtv"], required=True)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--break-expectation", action="store_true")
    ap.add_argument("--strip", action="store_true",
                    help="run a copy of the executable with --strip-all and no section headers")
    ap.add_argument("target", nargs="+")
    a = ap.parse_args()
    tmp = None
    if a.strip:
        tmp = tempfile.mkdtemp(prefix="otelprof-strip-")
        exe = os.path.join(tmp, os.path.basename(a.target[0]))
        shutil.copy2(a.target[0], exe)
        try:
            subprocess.run(["strip", "--strip-all", exe], check=True)
        except (FileNotFoundError, subprocess.CalledProcessError) as e:
            print("SKIPPED: strip (binutils) failed: %s" % e)
            shutil.rmtree(tmp)
            return SKIP
        # Drop the section headers too (e_shoff, e_shnum, e_shstrndx = 0): the reader must
        # then find .dynsym through the dynamic segment (DT_SYMTAB, DT_GNU_HASH).
        with open(exe, "r+b") as f:
            f.seek(0x28)
            f.write(struct.pack("<Q", 0))
            f.seek(0x3c)
            f.write(struct.pack("<HH", 0, 0))
        a.target[0] = exe
        print("running a stripped copy without section headers: %s" % exe)
        try:
            return check(a)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return check(a)


def check(a):

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTELPROF_") and k not in ("OTEL_SERVICE_NAME", "GLIBC_TUNABLES")}
    for kv in a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    proc = subprocess.Popen(a.target, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        line = read_line(proc, 20)
        if line is None:
            proc.kill()
            print("FAIL: the target printed no expectation (exit %s)" % proc.poll(), file=sys.stderr)
            return 1
        expected = json.loads(line)
        pid = expected["pid"]
        if pid != proc.pid:
            fail("target pid %d != started pid %d" % (pid, proc.pid))
        if a.break_expectation:
            for t in expected["threads"]:
                if t["thread_ctx"]["state"] == "attached" and t["thread_ctx"]["attributes"]:
                    k = sorted(t["thread_ctx"]["attributes"])[0]
                    t["thread_ctx"]["attributes"][k] += "!"
                    print("self-test: expecting tid %d %s to end in '!'" % (t["tid"], k))
                    break

        doc = run_inspect(a.otelprof, pid, True)
        if doc is not None:
            if doc.get("pid") != pid:
                fail("pid %r" % doc.get("pid"))
            check_process_context(expected, doc)
            check_modules(doc, a.mode, a.expect_tls)
            compare_threads(expected, doc, a.expect_tls)
            if a.mode != "static":
                tc = find_module(doc, TC_SYMBOL)
                cl = find_module(doc, CL_SYMBOL)
                for m, sym in ((tc, TC_SYMBOL), (cl, CL_SYMBOL)):
                    if m:
                        kind = descriptor_kind(pid, m["path"], sym)
                        if kind is not None:
                            print("ok %s descriptor for %s holds %s TLS (checked with readelf and "
                                  "/proc/PID/mem)" % (os.path.basename(m["path"]), sym, kind))
                            if kind != a.expect_tls:
                                fail("the TLSDESC descriptor says %s, expected %s" % (kind, a.expect_tls))
        text = run_inspect(a.otelprof, pid, False)
        if text is not None:
            check_text(expected, text)
        # The threads were let go: the target keeps running and reads the same again.
        if proc.poll() is not None:
            fail("the target died during inspection (exit %s)" % proc.returncode)
        again = run_inspect(a.otelprof, pid, True)
        if doc is not None and again is not None and again.get("threads") != doc.get("threads"):
            for t1, t2 in zip(doc.get("threads", []), again.get("threads", [])):
                if t1 != t2:
                    print("  first:  %s\n  second: %s" % (t1, t2), file=sys.stderr)
            fail("a second inspection differs from the first")
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = None
            if rc != 0:
                fail("target exit status %s" % rc)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
