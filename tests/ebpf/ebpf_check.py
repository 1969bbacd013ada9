#!/usr/bin/env python3
"""An independent eBPF reader samples the churn writer's OTEP 4947 records.

bpftrace fires a perf cpu-clock event (profile:hz) on every CPU; when the interrupted
task belongs to the churn process it reads that thread's otel_thread_ctx_v1 and
ebpf_truth through the thread pointer (task->thread.fsbase) and the static TLS offsets
computed here from the ELF file, copies the 28-byte header and then, if valid and
size > 0, the attributes (the OTel eBPF profiler's order), and prints one line with
the interrupted instruction pointer (to count samples that caught the writer inside
libotelprof).
The thread is stopped while its own CPU runs the probe, and only it writes its
record, so every line is an atomic snapshot of what a profiler would see.

Checks, for every sample (see churn.c for what ebpf_truth promises):
  pointer set       -> valid == 1 and every field derived from one counter value m
  truth == m        -> pointer set and the record is m's (restore-on-detach included)
  truth == NONE     -> pointer NULL

Usage: ebpf_check.py CHURN_EXE [--mode ok|torn,early] [--min-samples N] [--hz HZ]
--mode torn,early is the checker's self-test: the writer breaks the protocol on purpose
and the test passes only if both kinds of breakage are reported.
Exit 0 pass, 1 fail, 77 skipped (prints "SKIPPED: <reason>").
"""
import argparse
import bisect
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

SKIP_CODE = 77
TRUTH_NONE = (1 << 64) - 1
MASK64 = (1 << 64) - 1
ATTR_READ_MAX = 64  # bpftrace buf() bound; churn's entries are at most 22 bytes
PT_TLS = 7
SHT_DYNSYM = 11
STT_TLS = 6
STB_GLOBAL = 1


def skip(reason):
    print("SKIPPED: " + reason, flush=True)
    sys.exit(SKIP_CODE)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- ELF
def elf_tls_symbols(path, names):
    """PT_TLS (vaddr, memsz, align) and {name: (type, bind, shndx, value, size)} from
    .dynsym: the same inputs a profiler uses."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        fail(f"{path}: not a little-endian ELF64 file")
    (e_phoff, e_shoff) = struct.unpack_from("<QQ", data, 0x20)
    (e_phentsize, e_phnum, e_shentsize, e_shnum) = struct.unpack_from("<HHHH", data, 0x36)
    tls = None
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type = struct.unpack_from("<I", data, off)[0]
        if p_type == PT_TLS:
            p_vaddr, _, _, p_memsz, p_align = struct.unpack_from("<QQQQQ", data, off + 0x10)
            tls = (p_vaddr, p_memsz, p_align)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        sh_type = struct.unpack_from("<I", data, off + 4)[0]
        sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from("<QQIIQQ", data, off + 0x18)
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
    found = {}
    for sh_type, sh_offset, sh_size, sh_link, sh_entsize in sections:
        if sh_type != SHT_DYNSYM:
            continue
        str_off = sections[sh_link][1]
        for j in range(sh_size // sh_entsize):
            st_name, st_info, _, st_shndx, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", data, sh_offset + j * sh_entsize)
            end = data.index(b"\0", str_off + st_name)
            name = data[str_off + st_name:end].decode()
            if name in names:
                found[name] = (st_info & 0xF, st_info >> 4, st_shndx, st_value, st_size)
    return tls, found


def elf_functions(path):
    """Sorted (start, end, owner, name) of the FUNC symbols in .symtab; owner is "churn"
    for churn.c's functions and main, "otelprof" for the library's (otelprof_* and op_*
    globals, and local functions of its source files)."""
    with open(path, "rb") as f:
        data = f.read()
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        sh_type = struct.unpack_from("<I", data, off + 4)[0]
        sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from("<QQIIQQ", data, off + 0x18)
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
    funcs = []
    for sh_type, sh_offset, sh_size, sh_link, sh_entsize in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        str_off = sections[sh_link][1]
        current_file = ""
        for j in range(sh_size // sh_entsize):
            st_name, st_info, _, _, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", data, sh_offset + j * sh_entsize)
            name = data[str_off + st_name:data.index(b"\0", str_off + st_name)].decode()
            typ, bind = st_info & 0xF, st_info >> 4
            if typ == 4:  # STT_FILE: the local symbols that follow come from this file
                current_file = name
            if typ != 2 or st_value == 0:  # STT_FUNC
                continue
            if bind == 0:
                owner = "churn" if current_file == "churn.c" else "otelprof"
            elif name == "main":
                owner = "churn"
            elif name.startswith(("otelprof_", "op_")):
                owner = "otelprof"
            else:
                owner = "other"
            funcs.append((st_value, st_value + max(st_size, 1), owner, name))
    funcs.sort()
    return funcs


def load_base(pid, exe):
    """Where the (PIE) executable is mapped: start of its offset-0 mapping."""
    real = os.path.realpath(exe)
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16)
    fail(f"cannot find {real} in /proc/{pid}/maps")


def roundup(x, a):
    return (x + a - 1) // a * a if a > 1 else x


# ---------------------------------------------------------------- expected records
def expected(m, key):
    """Header and attribute bytes churn.c's derive() publishes for counter value m."""
    val = str(m).encode()
    attrs = bytes([key, len(val)]) + val
    hdr = (m.to_bytes(8, "big") + ((~m) & MASK64).to_bytes(8, "big") + m.to_bytes(8, "big")
           + bytes([1, (m >> 1) & 3]) + struct.pack("<H", len(attrs)))
    return hdr, attrs


def unhex(s):
    # bpftrace %rx prints "\x01\x02..."
    return bytes.fromhex(s.replace("\\x", ""))


# ---------------------------------------------------------------- bpftrace
def bpftrace_script(pid, hz, ctx_off, truth_off):
    # Offsets are negative (variant II: the block sits below the thread pointer). The
    # probe reads what an OTEP 4947 reader reads: the pointer, the 28-byte header, then
    # the attributes if valid == 1 and size > 0. valid and size are fetched as scalars to
    # decide; the sampled thread is stopped meanwhile, so all reads see the same bytes.
    return f"""
profile:hz:{hz} /pid == {pid}/
{{
  $tp = (uint64)curtask->thread.fsbase;
  $truth = *uptr((uint64 *)($tp + ({truth_off})));
  $p = *uptr((uint64 *)($tp + ({ctx_off})));
  if ($p == 0) {{
    printf("S %d %lx %lu 0 - -\\n", tid, reg("ip"), $truth);
  }} else {{
    $valid = *uptr((uint8 *)($p + 24));
    $size = (uint64)*uptr((uint16 *)($p + 26));
    if ($valid == 1 && $size > 0) {{
      if ($size > {ATTR_READ_MAX}) {{ $size = {ATTR_READ_MAX}; }}
      printf("S %d %lx %lu %lx %rx %rx\\n", tid, reg("ip"), $truth, $p, buf(uptr($p), 28),
             buf(uptr($p + 28), $size));
    }} else {{
      printf("S %d %lx %lu %lx %rx -\\n", tid, reg("ip"), $truth, $p, buf(uptr($p), 28));
    }}
  }}
}}
"""


def precheck_bpftrace(bpftrace):
    """Can this machine run a perf-event BPF program that reads task_struct via BTF?
    Anything failing here is the environment, not the writer: skip with the reason."""
    prog = 'profile:hz:99 { printf("fsbase %lu\\n", curtask->thread.fsbase); exit(); }'
    try:
        r = subprocess.run([bpftrace, "-e", prog], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        skip("bpftrace probe check (profile:hz:99 reading curtask->thread.fsbase) timed out after 60 s")
    if r.returncode != 0 or "fsbase " not in r.stdout:
        err = [l for l in r.stderr.splitlines() if "RLIMIT_MEMLOCK" not in l and l.strip()]
        skip("bpftrace cannot attach a profile probe that reads curtask->thread.fsbase (exit "
             f"{r.returncode}): {' | '.join(err[-3:]) or r.stdout.strip() or 'no output'}")


def count_samples(path, state):
    """Sample lines appended to path so far (only decides when to stop)."""
    try:
        with open(path, "rb") as f:
            f.seek(state["pos"])
            chunk = f.read()
    except FileNotFoundError:
        return 0
    state["pos"] += len(chunk)
    state["n"] += chunk.count(b"\nS ")  # "Attaching ..." is the first line
    return state["n"]


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("churn")
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--hz", type=int, default=9973)
    ap.add_argument("--min-samples", type=int, default=100000)
    ap.add_argument("--max-sample-seconds", type=float, default=40.0)
    ap.add_argument("--keep", help="copy the raw bpftrace output here")
    a = ap.parse_args()
    selftest = a.mode != "ok"

    if os.uname().machine != "x86_64":
        skip(f"the probe reads task->thread.fsbase and x86-64 static TLS; this is {os.uname().machine}")
    bpftrace = shutil.which("bpftrace")
    if not bpftrace:
        skip("bpftrace not found in PATH (apt-get install bpftrace)")
    if os.geteuid() != 0:
        skip("not root: loading BPF programs and perf events needs root (or CAP_BPF+CAP_PERFMON)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("/sys/kernel/btf/vmlinux missing: no kernel BTF for curtask->thread.fsbase")

    # Where the reader must look, from the ELF alone (never hard-coded).
    tls, syms = elf_tls_symbols(a.churn, {"otel_thread_ctx_v1", "ebpf_truth"})
    if tls is None:
        fail(f"{a.churn} has no PT_TLS segment")
    for name in ("otel_thread_ctx_v1", "ebpf_truth"):
        if name not in syms:
            fail(f"{name} is not in .dynsym of {a.churn}: a profiler could not find it")
        typ, bind, shndx, _, size = syms[name]
        if typ != STT_TLS or bind != STB_GLOBAL or shndx == 0 or size != 8:
            fail(f"{name} in .dynsym: type {typ} bind {bind} shndx {shndx} size {size}; "
                 "want STT_TLS, GLOBAL, defined, 8 bytes")
    block = roundup(tls[1], tls[2])
    ctx_off = syms["otel_thread_ctx_v1"][3] - block
    truth_off = syms["ebpf_truth"][3] - block
    print(f"ELF: PT_TLS memsz={tls[1]} align={tls[2]}; otel_thread_ctx_v1 st_value="
          f"{syms['otel_thread_ctx_v1'][3]} -> tp{ctx_off:+d}; ebpf_truth -> tp{truth_off:+d}", flush=True)

    precheck_bpftrace(bpftrace)

    tmp = tempfile.mkdtemp(prefix="otelprof-ebpf-")
    churn = subprocess.Popen([a.churn, str(a.threads), "120", a.mode],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    bt = None
    try:
        info = {}
        for line in churn.stdout:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "ready":
                break
            if parts[0] == "tls":
                info["ctx"] = int(parts[2])
                info["truth"] = int(parts[4])
            else:
                info[parts[0]] = int(parts[1])
        if "pid" not in info or "ctx" not in info:
            fail(f"churn did not start (exit {churn.poll()})")
        pid, key = info["pid"], info["key"]
        base = load_base(pid, a.churn)
        if (info["ctx"], info["truth"]) != (ctx_off, truth_off):
            fail(f"static TLS offsets from the ELF (ctx {ctx_off}, truth {truth_off}) differ from "
                 f"the running process (ctx {info['ctx']}, truth {info['truth']}): the reader's "
                 "formula does not match this C runtime")

        script = os.path.join(tmp, "churn.bt")
        with open(script, "w") as f:
            f.write(bpftrace_script(pid, a.hz, ctx_off, truth_off))
        out_path = os.path.join(tmp, "out.txt")
        err_path = os.path.join(tmp, "err.txt")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            bt = subprocess.Popen([bpftrace, script], stdout=out, stderr=err)
        state = {"pos": 0, "n": 0}
        t_attach = time.monotonic()
        while True:
            with open(out_path, "rb") as f:
                if b"Attaching" in f.read(256):
                    break
            if bt.poll() is not None:
                with open(err_path) as f:
                    fail(f"bpftrace exited with {bt.returncode} before attaching: {f.read().strip()}")
            if time.monotonic() - t_attach > 60:
                fail("bpftrace did not attach within 60 s")
            time.sleep(0.1)
        t0 = time.monotonic()
        while (count_samples(out_path, state) < a.min_samples * 1.05
               and time.monotonic() - t0 < a.max_sample_seconds and bt.poll() is None):
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        if bt.poll() is None:
            bt.send_signal(signal.SIGINT)
        bt.wait(timeout=30)
    finally:
        if bt is not None and bt.poll() is None:
            bt.kill()
        try:
            churn.stdin.close()
        except BrokenPipeError:
            pass
        rest = churn.stdout.read() if churn.stdout else ""
        churn.wait(timeout=30)
    iters = [int(l.split()[2]) for l in rest.splitlines() if l.startswith("iterations")]
    if churn.returncode != 0:
        fail(f"churn exited with {churn.returncode}")
    if a.keep:
        shutil.copy(out_path, a.keep)

    # ------------------------------------------------------------ check every sample
    kinds = ("invalid", "torn", "missing", "wrong", "stale", "malformed")
    viol = {k: 0 for k in kinds}
    examples = []
    n = with_ctx = without = lost = 0
    claims = {"outer": 0, "inner": 0, "none": 0, "transition": 0}
    tids = set()
    cache = {}
    funcs = elf_functions(a.churn)
    starts = [f[0] for f in funcs]
    where = {"otelprof": 0, "churn": 0, "other": 0, "kernel": 0}
    lib_funcs = {}

    def code_owner(ip):
        """Whose code the sampled thread was running."""
        if ip >= 0xFFFF800000000000:
            return "kernel"
        i = bisect.bisect_right(starts, ip - base) - 1
        if i >= 0 and ip - base < funcs[i][1]:
            if funcs[i][2] == "otelprof":
                lib_funcs[funcs[i][3]] = lib_funcs.get(funcs[i][3], 0) + 1
            return funcs[i][2]
        return "other"  # libc (memcpy, snprintf), vdso

    def bad(kind, line):
        viol[kind] += 1
        if len(examples) < 8:
            examples.append(f"{kind}: {line}")

    with open(out_path, errors="replace") as f:
        for line in f:
            if line.startswith("Lost "):
                lost += int(line.split()[1])
                continue
            if not line.startswith("S "):
                continue
            line = line.rstrip("\n")
            parts = line.split(" ")
            if len(parts) != 7:
                bad("malformed", line)
                continue
            n += 1
            tids.add(parts[1])
            where[code_owner(int(parts[2], 16))] += 1
            truth, ptr = int(parts[3]), int(parts[4], 16)
            del parts[2]
            if truth == 0:
                claims["transition"] += 1
            elif truth == TRUTH_NONE:
                claims["none"] += 1
            else:
                claims["inner" if truth & 1 else "outer"] += 1
            if ptr == 0:
                without += 1
                if truth not in (0, TRUTH_NONE):
                    bad("missing", line)
                continue
            with_ctx += 1
            if truth == TRUTH_NONE:
                bad("stale", line)
            hdr = unhex(parts[4])
            if len(hdr) != 28:
                bad("malformed", line)
                continue
            if hdr[24] != 1:
                bad("invalid", line)
                continue
            attrs = unhex(parts[5]) if parts[5] != "-" else b""
            m = int.from_bytes(hdr[16:24], "big")
            want = cache.get(m)
            if want is None:
                want = cache[m] = expected(m, key)
            if (hdr, attrs) != want:
                bad("torn", line)
            if truth not in (0, TRUTH_NONE) and m != truth:
                bad("wrong", line)

    total_viol = sum(viol.values())
    print(f"sampled {elapsed:.1f} s at {a.hz} Hz/CPU; writer threads {len(iters)}, iterations "
          f"{sum(iters)} ({', '.join(map(str, iters))}); sampled tids {len(tids)}")
    print(f"samples {n}: with context {with_ctx}, without {without}; lost events {lost}")
    print(f"interrupted in: libotelprof {where['otelprof']}, churn.c {where['churn']}, "
          f"libc/other {where['other']}, kernel {where['kernel']}")
    top = sorted(lib_funcs.items(), key=lambda kv: -kv[1])[:8]
    print("  in libotelprof: " + ", ".join(f"{k} {v}" for k, v in top))
    print(f"truth at sample: outer/restored {claims['outer']}, inner {claims['inner']}, "
          f"none {claims['none']}, transition {claims['transition']}")
    print("violations " + str(total_viol) + ": " + ", ".join(f"{k} {v}" for k, v in viol.items()))
    for e in examples:
        print("  " + e)
    shutil.rmtree(tmp, ignore_errors=True)

    if selftest:
        # The writer broke the protocol on purpose; the checker must have noticed each kind.
        want = []
        if "torn" in a.mode:
            want.append(("torn", viol["torn"]))
        if "early" in a.mode:
            want.append(("missing", viol["missing"]))
        missed = [k for k, v in want if v == 0]
        if missed or n < a.min_samples:
            fail(f"self-test: the checker did not report {missed or 'enough samples'}")
        print("PASS: the checker reported the deliberate breakage " + ", ".join(k for k, _ in want))
        return 0
    if n < a.min_samples:
        fail(f"only {n} samples (< {a.min_samples}) in {elapsed:.1f} s")
    if claims["outer"] == 0 or claims["inner"] == 0 or claims["none"] == 0:
        fail(f"some phases were never sampled: {claims}")
    # The point is to catch the writer half-way; without samples inside it, proof is thin.
    if where["otelprof"] < 1000:
        fail(f"only {where['otelprof']} samples interrupted libotelprof code (< 1000)")
    if total_viol:
        fail(f"{total_viol} violations")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
