#!/usr/bin/env python3
"""Tests of `otelprof record` (tests/record/CMakeLists.txt runs one command per entry).

  capture --tracer EXE   run examples/tracer-example under HTTP load and record it; the
                         outputs (samples, spans, pprof, folded, SVG) go to --out DIR for
                         the checks below (a ctest fixture)
  tracer-attribution     fib samples carry the trace of the request running on their
                         thread at that moment (>= 95%), per the exported spans
  folded                 the folded stacks add up and carry the trace ids
  flamegraph-svg         the SVG is well-formed and renders in headless Chromium
  pprof-go               `go tool pprof -tags/-top` reads the profile and its labels
  pprof-node --node-modules DIR   the npm package pprof-format decodes it
  target --mode static|dtv|cl --exe EXE [--plugin SO]
                         a workload with a ground truth (record_target.c), one TLS path each
  errors                 usage errors, a missing process, not root

Exit 0 pass, 1 fail, 77 skipped (prints "SKIPPED: <reason>").
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import zlib

SKIP = 77
SLACK_NS = 200_000  # clock conversion and timestamping slack when matching intervals


def skip(reason):
    print("SKIPPED: " + reason, flush=True)
    sys.exit(SKIP)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


# ------------------------------------------------------------------ helpers
def load_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


SKIP_PATTERNS = [
    "built without eBPF support", "must run as root", "has no BTF", "not permitted here",
]


def preflight(otelprof):
    """Skip unless `otelprof record` can sample on this machine."""
    if os.geteuid() != 0:
        skip("not root: the eBPF sampler needs root")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("no kernel BTF (/sys/kernel/btf/vmlinux)")
    r = subprocess.run([otelprof, "record", "--duration", "0.2", "--pid", str(os.getpid()),
                        "--quiet"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        for p in SKIP_PATTERNS:
            if p in r.stderr:
                skip("otelprof record cannot run here: " + r.stderr.strip().splitlines()[0])
        fail(f"otelprof record smoke run failed ({r.returncode}): {r.stderr.strip()}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_port(port, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            fail(f"the server exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    fail(f"nothing listens on port {port} after {timeout} s")


def record_cmd(args, *extra):
    return [args.otelprof, "record", *extra]


def run_record(cmd, out_dir, name, timeout=60):
    """Run otelprof record; stdout/stderr saved next to the outputs."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    with open(os.path.join(out_dir, name + ".stdout"), "w") as f:
        f.write(r.stdout)
    with open(os.path.join(out_dir, name + ".stderr"), "w") as f:
        f.write(r.stderr)
    print(f"$ {' '.join(cmd)}\n{r.stderr}{r.stdout}", flush=True)
    if r.returncode != 0:
        fail(f"otelprof record exited {r.returncode}")
    return r


def capture_dir(args):
    d = os.path.join(args.out, "capture")
    marker = os.path.join(d, "done")
    if not os.path.exists(marker):
        reason = os.path.join(d, "skipped")
        if os.path.exists(reason):
            skip("the capture was skipped: " + open(reason).read().strip())
        skip("no capture (record.capture did not run or failed)")
    return d


def in_fn(sample, name):
    return name in sample.get("frames", [])


# ------------------------------------------------------------------ capture
def cmd_capture(args):
    d = os.path.join(args.out, "capture")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    try:
        if not args.tracer:
            skip("tracer-example not built (libmicrohttpd or the tracing library missing)")
        preflight(args.otelprof)
    except SystemExit as e:
        if e.code == SKIP:
            with open(os.path.join(d, "skipped"), "w") as f:
                f.write("see record.capture's output")
        raise
    port = free_port()
    env = dict(os.environ, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="record-test")
    spans = open(os.path.join(d, "spans.jsonl"), "w")
    err = open(os.path.join(d, "tracer.stderr"), "w")
    server = subprocess.Popen([args.tracer, "--port", str(port)], stdout=spans, stderr=err, env=env)
    stop = threading.Event()
    stats = {"requests": 0, "errors": 0}

    def client(seed):
        rnd = random.Random(seed)
        deadline = time.time() + 30  # bounded even if nobody sets stop
        n_req = 0
        while not stop.is_set() and time.time() < deadline and n_req < 2000:
            n = rnd.randint(30, 35)
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", f"/fib?n={n}")
                c.getresponse().read()
                c.close()
                stats["requests"] += 1
            except OSError:
                stats["errors"] += 1
            n_req += 1
            time.sleep(rnd.uniform(0, 0.02))  # idle gaps: samples outside requests

    try:
        wait_for_port(port, server)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        run_record(record_cmd(args, "--pid", str(server.pid), "--duration", "5",
                              "--output", os.path.join(d, "profile.pb.gz"),
                              "--folded", os.path.join(d, "folded.txt"),
                              "--flamegraph", os.path.join(d, "flame.svg"),
                              "--samples", os.path.join(d, "samples.jsonl")), d, "record")
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        spans.close()
        err.close()
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"pid": server.pid, **stats}, f)
    print(f"requests: {stats['requests']}, client errors: {stats['errors']}")
    if stats["requests"] < 20:
        fail("too few requests completed")
    open(os.path.join(d, "done"), "w").close()
    ok("captured")


# -------------------------------------------------------------- attribution
def cmd_tracer_attribution(args):
    d = capture_dir(args)
    meta = json.load(open(os.path.join(d, "meta.json")))
    spans = {}
    for s in load_jsonl(os.path.join(d, "spans.jsonl")):
        if "traceId" in s:
            spans[s["traceId"]] = (int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]),
                                   s["spanId"])
    samples = [s for s in load_jsonl(os.path.join(d, "samples.jsonl")) if s["pid"] == meta["pid"]]
    print(f"{len(spans)} spans exported, {len(samples)} samples of pid {meta['pid']}")
    intervals = sorted(spans.values())

    def inside_any(t):
        return any(a - SLACK_NS <= t <= b + SLACK_NS for a, b, _ in intervals)

    fib = [s for s in samples if s["frames"] and s["frames"][0] == "fib"]
    good, bad_reasons = 0, {}
    trace_tids = {}
    for s in fib:
        t = s["time_unix_nano"]
        tr = s.get("trace_id")
        if tr:
            trace_tids.setdefault(tr, set()).add(s["tid"])
        if not tr:
            why = "no trace id"
        elif tr not in spans:
            why = "trace id of no exported span"
        else:
            a, b, span_id = spans[tr]
            if not a - SLACK_NS <= t <= b + SLACK_NS:
                why = "sample outside its trace's span"
            elif s.get("span_id") != span_id:
                why = "wrong span id"
            else:
                good += 1
                continue
        bad_reasons[why] = bad_reasons.get(why, 0) + 1
    # A request runs on one thread: every sample of a trace on the same thread, and two
    # requests that overlap in time on different threads.
    multi = {tr: tids for tr, tids in trace_tids.items() if len(tids) > 1}
    tid_of = {tr: next(iter(tids)) for tr, tids in trace_tids.items() if len(tids) == 1}
    overlap_same_thread = 0
    traced = sorted((spans[tr][0], spans[tr][1], tr) for tr in tid_of if tr in spans)
    for i in range(len(traced)):
        for j in range(i + 1, len(traced)):
            if traced[j][0] >= traced[i][1]:
                break
            if tid_of[traced[i][2]] == tid_of[traced[j][2]]:
                overlap_same_thread += 1
    overlapping_pairs = sum(1 for i in range(len(traced)) for j in range(i + 1, len(traced))
                            if traced[j][0] < traced[i][1])
    outside = [s for s in samples if not inside_any(s["time_unix_nano"])]
    outside_traced = [s for s in outside if s.get("trace_id")]
    pct = 100.0 * good / len(fib) if fib else 0.0
    print(f"fib samples: {len(fib)}, with the trace of the request running on their thread: "
          f"{good} ({pct:.1f}%); wrong: {bad_reasons or 'none'}")
    print(f"traces seen in samples: {len(trace_tids)} (sampled on more than one thread: "
          f"{len(multi)}); overlapping requests: {overlapping_pairs} pairs, on the same "
          f"thread: {overlap_same_thread}")
    print(f"samples outside every request: {len(outside)}, carrying a trace id: "
          f"{len(outside_traced)}")
    if len(fib) < 50:
        fail(f"only {len(fib)} fib samples: the load did not reach the server")
    if pct < 95.0:
        fail(f"{pct:.1f}% of fib samples attributed correctly (< 95%)")
    if multi:
        fail(f"traces sampled on several threads: {multi}")
    if overlap_same_thread:
        fail("overlapping requests attributed to the same thread")
    if outside_traced:
        fail(f"{len(outside_traced)} samples outside every request carry a trace id, e.g. "
             f"{outside_traced[0]}")
    ok("attribution")


# ------------------------------------------------------------------- folded
def cmd_folded(args):
    d = capture_dir(args)
    samples = load_jsonl(os.path.join(d, "samples.jsonl"))
    total, with_trace, fib_traced = 0, 0, 0
    for line in open(os.path.join(d, "folded.txt")):
        m = re.fullmatch(r"(.+) (\d+)\n?", line)
        if not m:
            fail(f"bad folded line: {line!r}")
        frames = m.group(1).split(";")
        n = int(m.group(2))
        total += n
        if not frames[0].startswith("trace:") or len(frames) < 2:
            fail(f"folded line without trace/process prefix: {line!r}")
        if frames[0] != "trace:none":
            if not re.fullmatch(r"trace:[0-9a-f]{32}", frames[0]):
                fail(f"bad trace frame {frames[0]!r}")
            with_trace += n
            if frames[-1] == "fib":
                fib_traced += n
    print(f"folded: {total} samples, {with_trace} under a trace frame, {fib_traced} in fib; "
          f"samples file: {len(samples)}")
    if total != len(samples):
        fail("folded stacks and the samples file disagree on the number of samples")
    if fib_traced == 0:
        fail("no traced fib stack in the folded output")
    ok("folded")


# --------------------------------------------------------------- flame graph
def png_pixels(path):
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes): (width, height, rows)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path}: not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                fail(f"{path}: unexpected PNG format depth={depth} colour={ctype}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xFF
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def cmd_flamegraph_svg(args):
    d = capture_dir(args)
    svg = os.path.join(d, "flame.svg")
    try:
        root = ET.parse(svg).getroot()
    except ET.ParseError as e:
        fail(f"flame.svg is not well-formed XML: {e}")
    ns = "{http://www.w3.org/2000/svg}"
    rects = root.findall(f".//{ns}rect")
    titles = [t.text or "" for t in root.iter(f"{ns}title")]
    fib_titles = [t for t in titles if t.startswith("fib (")]
    print(f"flame.svg: {len(rects)} rects, {len(titles)} frames, fib frames: {len(fib_titles)}")
    if len(titles) < 3 or not fib_titles:
        fail("the flame graph lacks frames or the fib frame")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        skip("chromium not installed (apt-get install chromium): SVG checked, render not")
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "flame.png")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}/profile",
               f"--screenshot={png}", "--window-size=1200,700", "file://" + os.path.abspath(svg)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        if not os.path.exists(png):
            fail(f"chromium wrote no screenshot ({r.returncode}): {r.stderr[-800:]}")
        shutil.copy(png, os.path.join(d, "flame.png"))
        w, h, bpp, rows = png_pixels(png)
    colours, non_bg = set(), 0
    for row in rows[::2]:
        for x in range(0, w * bpp, bpp * 2):
            px = row[x:x + 3]
            colours.add(px)
            # the background is a grey-to-pale-yellow gradient: count saturated pixels
            if max(px) - min(px) > 90:
                non_bg += 1
    total = len(rows[::2]) * len(range(0, w * bpp, bpp * 2))
    print(f"rendered {w}x{h}: {len(colours)} distinct colours, {100.0 * non_bg / total:.1f}% "
          f"frame-coloured pixels (PNG kept as {os.path.join(d, 'flame.png')})")
    if len(colours) < 20 or non_bg < total * 0.02:
        fail("the rendered flame graph looks blank")
    ok("flame graph renders")


# --------------------------------------------------------------------- pprof
def cmd_pprof_go(args):
    d = capture_dir(args)
    go = shutil.which("go")
    if not go:
        skip("go not installed (apt-get install golang-go)")
    prof = os.path.join(d, "profile.pb.gz")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp, GOCACHE=os.path.join(tmp, "gocache"))
        tags = subprocess.run([go, "tool", "pprof", "-tags", prof], capture_output=True,
                              text=True, timeout=90, env=env)
        top = subprocess.run([go, "tool", "pprof", "-top", "-sample_index=cpu", prof],
                             capture_output=True, text=True, timeout=90, env=env)
        flt = subprocess.run([go, "tool", "pprof", "-top", "-tagfocus=http.route=/fib", prof],
                             capture_output=True, text=True, timeout=90, env=env)
    print(tags.stdout[:1500])
    print(top.stdout[:1200])
    for r, what in ((tags, "-tags"), (top, "-top"), (flt, "-tagfocus")):
        if r.returncode != 0:
            fail(f"go tool pprof {what} failed: {r.stderr[-800:]}")
    for key in ("trace_id:", "span_id:", "http.route:", "thread:", "tid:"):
        if key not in tags.stdout:
            fail(f"`go tool pprof -tags` does not show the label {key}")
    if not re.search(r"\b[0-9a-f]{32}\b", tags.stdout):
        fail("no trace id value in `go tool pprof -tags`")
    if not re.search(r"\bfib\b", top.stdout):
        fail("fib is not in `go tool pprof -top`")
    if not re.search(r"\bfib\b", flt.stdout):
        fail("-tagfocus=http.route=/fib kept no fib samples")
    ok("go tool pprof reads the profile and its labels")


def cmd_pprof_node(args):
    d = capture_dir(args)
    node = shutil.which("node")
    if not node:
        skip("node not installed")
    if not os.path.isdir(os.path.join(args.node_modules, "pprof-format")):
        skip("pprof-format not installed (record.npm_ci skipped or failed)")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pprof_check.js")
    env = dict(os.environ, NODE_PATH=args.node_modules)
    r = subprocess.run([node, script, os.path.join(d, "profile.pb.gz")], capture_output=True,
                       text=True, timeout=60, env=env)
    if r.returncode != 0:
        fail(f"pprof-format could not decode the profile: {r.stderr[-1500:]}")
    res = json.loads(r.stdout)
    print(json.dumps(res, indent=1))
    n_samples = len(load_jsonl(os.path.join(d, "samples.jsonl")))
    if res["sampleTypes"] != [["samples", "count"], ["cpu", "nanoseconds"]]:
        fail(f"sample types {res['sampleTypes']}")
    if res["samples"] != n_samples:
        fail(f"pprof-format counts {res['samples']} samples, the samples file {n_samples}")
    if res["cpuNs"] != res["samples"] * res["period"]:
        fail("cpu value is not samples x period")
    if res["danglingLocations"]:
        fail("samples reference missing locations")
    for k in ("trace_id", "span_id", "http.route", "pid", "tid", "thread"):
        if k not in res["labelKeys"]:
            fail(f"label {k} missing")
    if not res["leafFib"] or res["leafFibWithTrace"] < 0.95 * res["leafFib"]:
        fail("fib samples without trace labels")
    ok("pprof-format decodes the profile")


# -------------------------------------------------------------------- target
EXPECT_HOW = {"static": "static TLS of the main executable", "dtv": "dynamic TLS",
              "cl": "custom-labels v1"}


def cmd_target(args):
    preflight(args.otelprof)
    d = os.path.join(args.out, "target-" + args.mode)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    truth_path = os.path.join(d, "truth.jsonl")
    cmd = [args.exe] + ([args.plugin] if args.plugin else []) + ["5.5", "2", truth_path]
    env = dict(os.environ)
    if args.mode == "dtv":
        # no optional static TLS surplus: the dlopen'd libotelprof.so gets dynamic TLS
        env["GLIBC_TUNABLES"] = "glibc.rtld.optional_static_tls=0"
    target = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    line = target.stdout.readline()
    if not line.startswith("ready "):
        target.kill()
        fail(f"target did not start: {line!r}")
    pid = int(line.split()[1])
    trace0 = "11" * 15 + "00"  # record_target.c's first fixed trace id
    samples = os.path.join(d, "samples.jsonl")
    filtered = os.path.join(d, "filtered.jsonl")
    # A second sampler at the same time, filtered to one trace, for the per-trace outputs;
    # without --pid: it has to find the target in /proc by its context symbols.
    fcmd = record_cmd(args, "--duration", "4", "--trace-id", trace0,
                      "--samples", filtered, "--flamegraph", os.path.join(d, "trace0.svg"),
                      "--folded", os.path.join(d, "trace0.folded"))
    fproc = subprocess.Popen(fcmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r = run_record(record_cmd(args, "--pid", str(pid), "--duration", "4", "--samples", samples,
                              "--output", os.path.join(d, "profile.pb.gz")), d, "record")
    fout, ferr = fproc.communicate(timeout=60)
    target.wait(timeout=30)
    if target.returncode != 0:
        fail(f"target exited {target.returncode}")
    if fproc.returncode != 0:
        fail(f"the filtered sampler failed: {ferr}")
    if EXPECT_HOW[args.mode] not in r.stderr:
        fail(f"expected the TLS path '{EXPECT_HOW[args.mode]}' in otelprof's report")

    truth = {}
    for iv in load_jsonl(truth_path):
        truth.setdefault(iv["tid"], []).append(iv)
    for v in truth.values():
        v.sort(key=lambda iv: iv["start"])

    def interval(tid, t):
        for iv in truth.get(tid, []):
            if iv["start"] - SLACK_NS <= t <= iv["end"] + SLACK_NS:
                return iv
        return None

    all_s = [s for s in load_jsonl(samples) if s["pid"] == pid]
    traced = [s for s in all_s if in_fn(s, "traced_work")]
    untraced = [s for s in all_s if in_fn(s, "untraced_work")]
    good = wrong_time = 0
    why = {}
    for s in traced:
        iv = interval(s["tid"], s["time_unix_nano"])
        if iv is None:
            why["no ground-truth interval at the sample's time and thread"] = \
                why.get("no ground-truth interval at the sample's time and thread", 0) + 1
            wrong_time += 1
            continue
        got = (s.get("trace_id"), s.get("span_id"), s["labels"].get("work.id"))
        want = (iv["trace_id"], iv["span_id"], iv["work_id"])
        if got == want:
            good += 1
        else:
            k = "no ids" if not got[0] else "other ids/attribute"
            why[k] = why.get(k, 0) + 1
    unt_bad = [s for s in untraced if s.get("trace_id")]
    deep = sum(1 for s in traced if "worker_main" in s["frames"])
    pct = 100.0 * good / len(traced) if traced else 0.0
    print(f"[{args.mode}] samples: {len(all_s)}; in traced_work: {len(traced)}, matching the "
          f"ground truth (thread, time, trace, span, work.id): {good} ({pct:.1f}%), wrong: "
          f"{why or 'none'}")
    print(f"[{args.mode}] in untraced_work: {len(untraced)}, carrying a trace id: {len(unt_bad)}")
    print(f"[{args.mode}] traced_work samples unwound up to worker_main (frame pointers): "
          f"{deep}/{len(traced)}")
    if len(traced) < 100 or len(untraced) < 30:
        fail("too few samples in the worker functions")
    if pct < 95.0:
        fail(f"{pct:.1f}% of traced_work samples match the ground truth (< 95%)")
    if unt_bad:
        fail(f"untraced_work samples with a trace id, e.g. {unt_bad[0]}")
    if deep < 0.9 * len(traced):
        fail("user stacks do not reach worker_main: frame-pointer unwinding is broken")

    # The filtered sampler kept only trace0; its count is close to the unfiltered one's.
    if f"found pid {pid} " not in ferr:
        fail(f"the sampler without --pid did not find the target: {ferr}")
    fs = load_jsonl(filtered)
    other = [s for s in fs if s.get("trace_id") != trace0 or s["pid"] != pid]
    # The two samplers start and stop at different moments (the one without --pid finds
    # the target by scanning /proc): compare them over the time both were sampling.
    lo = max(min(x["time_unix_nano"] for x in fs), min(x["time_unix_nano"] for x in all_s)) \
        if fs and all_s else 0
    hi = min(max(x["time_unix_nano"] for x in fs), max(x["time_unix_nano"] for x in all_s)) \
        if fs and all_s else 0
    nf = sum(1 for x in fs if lo <= x["time_unix_nano"] <= hi)
    n0 = sum(1 for x in all_s if x.get("trace_id") == trace0 and lo <= x["time_unix_nano"] <= hi)
    print(f"[{args.mode}] --trace-id {trace0}: {len(fs)} samples (other traces: {len(other)}); "
          f"while both sampled: filtered {nf}, unfiltered {n0} of that trace")
    if other:
        fail("--trace-id let other samples through")
    # Two independent 99 Hz samplers on a loaded 2-core machine differ by tens of percent;
    # what matters is that the filter keeps that trace's samples and lets nothing else in.
    # The unfiltered sampler can undercount more, likely because its own user-space work
    # (symbolizing every sample; slow under ASan) runs on the CPUs whose timer ticks it
    # takes, so a tick finds it rather than the target (seen once in CI under ASan: filtered
    # 122, unfiltered 64, no samples lost; not investigated further). So:
    # far fewer is a filter losing samples; more is tolerated up to a bound that would still
    # catch duplicated samples.
    if not fs or nf < 0.5 * n0 - 10 or nf > 3 * n0 + 10:
        fail("the filtered sampler's count is far from the unfiltered one's")
    svg = open(os.path.join(d, "trace0.svg")).read()
    if "CPU of trace " + trace0 not in svg or "traced_work" not in svg:
        fail("the per-trace flame graph lacks its title or traced_work")
    ok(f"{args.mode}: samples match the ground truth")


# -------------------------------------------------------------------- errors
def cmd_errors(args):
    o = args.otelprof

    def run(argv, user=None):
        pre = []
        if user:
            pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   "--inh-caps=-all"]
        return subprocess.run(pre + [o, "record", *argv], capture_output=True, text=True,
                              timeout=60)

    stub = run(["--duration", "0.1"])
    if "built without eBPF support" in stub.stderr:
        if stub.returncode != 1:
            fail("the stub must exit 1")
        skip("otelprof built without eBPF support (its error message checked)")
    help_ = run(["--help"])
    if help_.returncode != 0 or "--trace-id" not in help_.stdout:
        fail(f"--help: {help_.returncode} {help_.stdout!r}")
    cases = [
        (["--bogus"], 2, "unknown or incomplete option"),
        (["--frequency", "0"], 2, "bad frequency"),
        (["--duration", "-1"], 2, "bad duration"),
        (["--trace-id", "xyz"], 2, "bad trace id"),
        (["--trace-id", "0" * 32], 2, "bad trace id"),
        (["--span-id", "12345"], 2, "bad span id"),
        (["--pid", "abc"], 2, "bad pid"),
        (["extra"], 2, "unexpected argument"),
    ]
    if os.geteuid() == 0:
        cases.append((["--pid", "2147483600", "--duration", "1"], 1, "no process with pid"))
    for argv, code, text in cases:
        r = run(argv)
        if r.returncode != code or text not in r.stderr:
            fail(f"otelprof record {' '.join(argv)}: exit {r.returncode}, stderr {r.stderr!r}; "
                 f"wanted exit {code} and '{text}'")
        print(f"ok: {' '.join(argv)} -> {code}: {r.stderr.strip().splitlines()[0]}")
    if os.geteuid() == 0 and shutil.which("setpriv"):
        r = run(["--duration", "1"], user="nobody")
        if r.returncode != 1 or "must run as root" not in r.stderr:
            fail(f"as nobody: exit {r.returncode}, stderr {r.stderr!r}")
        print(f"ok: as nobody -> 1: {r.stderr.strip()}")
    ok("errors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--otelprof", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("command")
    ap.add_argument("--tracer", default="")
    ap.add_argument("--node-modules", default="")
    ap.add_argument("--mode", default="static")
    ap.add_argument("--exe", default="")
    ap.add_argument("--plugin", default="")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cmds = {
        "capture": cmd_capture, "tracer-attribution": cmd_tracer_attribution,
        "folded": cmd_folded, "flamegraph-svg": cmd_flamegraph_svg, "pprof-go": cmd_pprof_go,
        "pprof-node": cmd_pprof_node, "target": cmd_target, "errors": cmd_errors,
    }
    if args.command not in cmds:
        fail(f"unknown command {args.command}")
    cmds[args.command](args)


if __name__ == "__main__":
    main()
