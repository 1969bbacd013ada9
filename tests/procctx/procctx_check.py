#!/usr/bin/env python3
"""Read the OTel Process Context (OTEP 4719) of a running procctx_prog from outside, as a
profiler does, and decode the payload with protoc, a decoder that is not ours.

Reader side: find the mapping named OTEL_CTX in /proc/PID/maps, read the 32-byte header
from /proc/PID/mem (signature, version 2, size in (0, 65536], published_at != 0,
payload pointer), copy the payload, re-read published_at to be sure the copy is from
one publication, then `protoc --decode_raw` and `protoc --decode=...ProcessContext`
with processcontext.proto (written from the OTLP definitions).

Usage: procctx_check.py PROG CASE; CASE is decode, keygrow, fork, shutdown or formats_off.
Exit 0 pass, 1 fail, 77 skipped (prints "SKIPPED: <reason>").
"""
import os
import shutil
import struct
import subprocess
import sys
import time

SKIP_CODE = 77
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "processcontext.proto")
MESSAGE = "opentelemetry.proto.processcontext.v1development.ProcessContext"
MAPPING_NAMES = ("/memfd:OTEL_CTX", "[anon:OTEL_CTX]", "[anon_shmem:OTEL_CTX]")
PAYLOAD_MAX = 65536

SERVICE = "procctx-test"
RESOURCE = {"service.version": "1.2.3", "deployment.environment.name": "t\u00e9st"}
KEYS = ["http.route", "user.id", "r\u00e9gion.\u540d\u524d", "db.system"]  # procctx_prog.c's order
SCHEMA = "tlsdesc_v1_dev"
FORMAT_THREAD_CTX, FORMAT_PROCESS_CTX, FORMAT_CUSTOM_LABELS = 1, 2, 4


def skip(reason):
    print("SKIPPED: " + reason, flush=True)
    sys.exit(SKIP_CODE)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------- reading the process
def otel_ctx_mappings(pid):
    found = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            name = parts[5].strip() if len(parts) > 5 else ""
            # a memfd mapping reads "/memfd:OTEL_CTX (deleted)"
            if any(name == n or name.startswith(n + " ") for n in MAPPING_NAMES):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                found.append((start, end, name))
    return found


def read_ctx(pid):
    """Header fields and payload of pid's process context, copied consistently."""
    maps = otel_ctx_mappings(pid)
    check(len(maps) == 1, f"pid {pid}: want exactly one OTEL_CTX mapping, found {maps}")
    start, end, name = maps[0]
    check(end - start >= 32, f"OTEL_CTX mapping too small: {end - start} bytes")
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for _ in range(100):
            mem.seek(start)
            sig, version, size, published_at, ptr = struct.unpack("<8sIIQQ", mem.read(32))
            check(sig == b"OTEL_CTX", f"signature {sig!r}")
            check(version == 2, f"version {version}")
            if published_at == 0:  # an update is in progress: try again
                time.sleep(0.01)
                continue
            check(0 < size <= PAYLOAD_MAX, f"payload size {size}")
            check(ptr != 0, "payload pointer is NULL")
            mem.seek(ptr)
            payload = mem.read(size)
            mem.seek(start + 16)
            again = struct.unpack("<Q", mem.read(8))[0]
            if again == published_at:
                check(len(payload) == size, f"short payload read {len(payload)}/{size}")
                return {"mapping": name, "size": size, "published_at": published_at,
                        "payload": payload}
        raise Fail(f"pid {pid}: no stable publication after 100 tries")


# ---------------------------------------------------------------- protoc text format
def unescape(s):
    """Bytes of a protoc text-format string literal body (C escapes, octal for non-ASCII)."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "t": 9, "r": 13, '"': 34, "'": 39, "\\": 92, "a": 7, "b": 8, "f": 12, "v": 11, "?": 63}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = s[i + 1]
        if n in "01234567":
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8))
            i = j
        elif n == "x":
            j = i + 2
            while j < len(s) and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(s[i + 2:j], 16))
            i = j
        else:
            out.append(simple[n])
            i += 2
    return bytes(out)


def parse_text(text):
    """protoc's output as nested lists of (field, value); value is bytes, int, str or a list."""
    root = []
    stack = [root]
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
        elif line.endswith("{"):
            child = []
            stack[-1].append((line[:-1].strip(), child))
            stack.append(child)
        else:
            name, _, value = line.partition(":")
            value = value.strip()
            if value.startswith('"'):
                v = unescape(value[1:-1])
            else:
                try:
                    v = int(value, 0)
                except ValueError:
                    v = value
            stack[-1].append((name.strip(), v))
    check(len(stack) == 1, "unbalanced protoc output")
    return root


def get(node, name):
    return [v for k, v in node if k == name]


def one(node, name, what):
    vals = get(node, name)
    check(len(vals) == 1, f"{what}: want one field {name}, got {len(vals)}")
    return vals[0]


def any_value(node, names):
    """AnyValue -> python value; names maps the meaning to the field name in this output."""
    for kind in ("string", "int", "array"):
        vals = get(node, names[kind])
        if vals:
            v = vals[0]
            if kind == "string":
                check(isinstance(v, bytes), f"string value printed as {v!r}")
                return v.decode("utf-8")
            if kind == "int":
                check(isinstance(v, int), f"int value printed as {v!r}")
                return v
            return [any_value(x, names) for x in get(v, names["values"])]
    raise Fail(f"AnyValue without string/int/array: {node!r}")


def key_values(node, names):
    out = {}
    for kv in get(node, names["attributes"]):
        key = one(kv, names["key"], "KeyValue")
        check(isinstance(key, bytes), f"key printed as {key!r}")
        key = key.decode("utf-8")
        check(key not in out, f"attribute {key} appears twice")
        out[key] = any_value(one(kv, names["value"], "KeyValue " + key), names)
    return out


TYPED = {"resource": "resource", "attributes": "attributes", "key": "key", "value": "value",
         "string": "string_value", "int": "int_value", "array": "array_value", "values": "values"}
RAW = {"resource": "1", "attributes": "1", "key": "1", "value": "2",
       "string": "1", "int": "3", "array": "5", "values": "1"}


def protoc(args, payload):
    r = subprocess.run(["protoc"] + args, input=payload, capture_output=True)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"protoc {' '.join(args)} exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode("utf-8")


def decode(payload, show=False):
    """(resource attrs, context attrs) from the typed decode; the raw decode must agree."""
    typed_text = protoc([f"-I{HERE}", f"--decode={MESSAGE}", PROTO], payload)
    raw_text = protoc(["--decode_raw"], payload)
    if show:
        print("--- protoc --decode=" + MESSAGE)
        print(typed_text.rstrip())
        print("--- protoc --decode_raw")
        print(raw_text.rstrip())
        print("---")
    typed = parse_text(typed_text)
    res = key_values(one(typed, "resource", "ProcessContext"), TYPED)
    attrs = {}
    for kv in get(typed, "attributes"):
        k = one(kv, "key", "KeyValue").decode("utf-8")
        attrs[k] = any_value(one(kv, "value", k), TYPED)
    # The raw decode knows only field numbers: the same payload must read the same.
    raw = parse_text(raw_text)
    raw_res = key_values(one(raw, "1", "raw ProcessContext"), RAW)
    raw_attrs = {}
    for kv in get(raw, "2"):
        k = one(kv, "1", "raw KeyValue").decode("utf-8")
        raw_attrs[k] = any_value(one(kv, "2", k), RAW)
    check(raw_res == res, f"decode_raw resource {raw_res} != typed {res}")
    check(raw_attrs == attrs, f"decode_raw attributes {raw_attrs} != typed {attrs}")
    check(set(k for k, _ in typed) <= {"resource", "attributes"}, f"unexpected fields {typed}")
    return res, attrs


def check_content(ctx, pid, keys, label):
    res, attrs = decode(ctx["payload"], show=(label == "decode"))
    want = {"service.name": SERVICE, "process.pid": pid, "telemetry.sdk.name": "otelprof",
            **RESOURCE}
    for k, v in want.items():
        check(res.get(k) == v, f"{label}: resource {k} = {res.get(k)!r}, want {v!r}")
    check(attrs.get("threadlocal.schema_version") == SCHEMA,
          f"{label}: threadlocal.schema_version = {attrs.get('threadlocal.schema_version')!r}")
    check(attrs.get("threadlocal.attribute_key_map") == keys,
          f"{label}: threadlocal.attribute_key_map = {attrs.get('threadlocal.attribute_key_map')!r}, want {keys!r}")
    print(f"{label}: pid {pid} mapping {ctx['mapping']} size {ctx['size']} published_at "
          f"{ctx['published_at']}: resource {res}; attributes {attrs}")
    return res, attrs


# ---------------------------------------------------------------- the program under test
class Prog:
    def __init__(self, exe, env=None):
        e = dict(os.environ)
        for k in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTELPROF_FORMATS"):
            e.pop(k, None)
        e.update(env or {})
        self.p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, encoding="utf-8", env=e)
        ready = self.p.stdout.readline().split()
        check(len(ready) == 3 and ready[0] == "ready", f"program did not start: {ready}")
        self.pid, self.formats = int(ready[1]), int(ready[2])

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline().split()
        check(out and out[0] in ("ok", "child"), f"command {line!r}: reply {out}")
        return out

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def case_decode(exe):
    p = Prog(exe)
    try:
        check(p.formats == 7, f"formats {p.formats}, want all (7)")
        check_content(read_ctx(p.pid), p.pid, KEYS, "decode")
    finally:
        p.close()


def case_keygrow(exe):
    p = Prog(exe)
    try:
        before = read_ctx(p.pid)
        check_content(before, p.pid, KEYS, "before")
        check(p.cmd("key extra.key") == ["ok", str(len(KEYS))], "new key index")
        check(p.cmd("key user.id") == ["ok", "1"], "registering again returns the first index")
        after = read_ctx(p.pid)
        check(after["published_at"] != before["published_at"],
              f"published_at did not change: {before['published_at']}")
        check_content(after, p.pid, KEYS + ["extra.key"], "after")
    finally:
        p.close()


def case_fork(exe):
    p = Prog(exe)
    try:
        parent_before = read_ctx(p.pid)
        out = p.cmd("fork")
        check(out[0] == "child", f"fork reply {out}")
        cpid = int(out[1])
        check(cpid != p.pid, "child pid")
        child = read_ctx(cpid)
        check_content(child, cpid, KEYS, "child")
        parent = read_ctx(p.pid)
        check_content(parent, p.pid, KEYS, "parent")
        check(parent["published_at"] == parent_before["published_at"],
              "the parent's publication changed across fork")
        p.cmd("killchild")
        check_content(read_ctx(p.pid), p.pid, KEYS, "parent after child exit")
    finally:
        p.close()


def case_shutdown(exe):
    p = Prog(exe)
    try:
        read_ctx(p.pid)
        p.cmd("shutdown")
        maps = otel_ctx_mappings(p.pid)
        check(maps == [], f"OTEL_CTX mapping still there after otelprof_shutdown: {maps}")
        print(f"shutdown: pid {p.pid} has no OTEL_CTX mapping any more")
    finally:
        p.close()


def case_formats_off(exe):
    p = Prog(exe, {"OTELPROF_FORMATS": "thread_ctx,custom_labels"})
    try:
        want = FORMAT_THREAD_CTX | FORMAT_CUSTOM_LABELS
        check(p.formats == want, f"otelprof_formats() = {p.formats}, want {want}")
        maps = otel_ctx_mappings(p.pid)
        check(maps == [], f"process_ctx is off but found {maps}")
        print(f"formats_off: formats {p.formats}, pid {p.pid} has no OTEL_CTX mapping")
    finally:
        p.close()


CASES = {"decode": case_decode, "keygrow": case_keygrow, "fork": case_fork,
         "shutdown": case_shutdown, "formats_off": case_formats_off}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} PROG {{{','.join(CASES)}}}")
        return 2
    if sys.argv[2] in ("decode", "keygrow", "fork") and not shutil.which("protoc"):
        skip("protoc not found in PATH (apt-get install protobuf-compiler)")
    try:
        CASES[sys.argv[2]](sys.argv[1])
    except Fail as e:
        print("FAIL: " + str(e), flush=True)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
