#!/usr/bin/env python3
"""The CPU `otelprof record` itself costs while sampling a busy machine.

Keeps both cores busy with tests/record's record_target (two threads attaching and
detaching contexts while they spin), records it at 99 Hz, and reports:
  - the sampler's user-space CPU (utime + stime of otelprof, from wait4), in % of one core
    and per sample;
  - the eBPF program's own CPU (kernel.bpf_stats_enabled: run_time_ns / run_cnt of
    on_sample), the part paid on the sampled CPUs;
once with --pid and once discovering processes (the /proc scans every 2 s included).

  bench/record/run.py [--build DIR] [--seconds N] [--frequency HZ]
Needs root, a build with eBPF support and the record_target_static test program.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def on_sample_progs():
    """{id: (run_time_ns, run_cnt)} of the loaded programs named on_sample."""
    r = subprocess.run(["bpftool", "--json", "prog", "show"], capture_output=True, text=True)
    if r.returncode != 0:
        return {}
    return {p["id"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in json.loads(r.stdout) if p.get("name") == "on_sample"}


def one_run(otelprof, target, seconds, freq, by_pid):
    with tempfile.TemporaryDirectory() as tmp:
        work = subprocess.Popen([target, str(seconds + 4), "2", os.path.join(tmp, "truth")],
                                stdout=subprocess.PIPE, text=True)
        work.stdout.readline()  # "ready PID"
        cmd = [otelprof, "record", "--quiet", "--duration", str(seconds), "--frequency",
               str(freq), "--output", os.path.join(tmp, "p.pb.gz")]
        if by_pid:
            cmd += ["--pid", str(work.pid)]
        before = on_sample_progs()  # another sampler may run: ours is the new program
        t0 = time.monotonic()
        rec = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        time.sleep(seconds - 0.7)  # still loaded: read the program's counters now
        new = [v for k, v in on_sample_progs().items() if k not in before]
        stats = new[0] if len(new) == 1 else None
        _, status, ru = os.wait4(rec.pid, 0)
        wall = time.monotonic() - t0
        out = rec.stdout.read()
        work.wait()
    samples = int(out.split()[2]) if out.startswith("otelprof record:") else 0
    cpu = ru.ru_utime + ru.ru_stime
    print(f"{'--pid' if by_pid else 'all processes'}: {samples} samples in {wall:.1f} s "
          f"({samples / wall:.0f}/s)")
    print(f"  otelprof user space: {cpu * 1000:.0f} ms CPU = {100 * cpu / wall:.2f}% of one core"
          f" ({1e6 * cpu / max(samples, 1):.0f} us per sample; includes loading, symbol tables"
          f" and writing the pprof file)")
    if stats:
        ns, cnt = stats
        sampled_for = seconds - 0.7
        print(f"  eBPF program: {cnt} runs, {ns / max(cnt, 1):.0f} ns per run, "
              f"{100 * ns / 1e9 / sampled_for:.3f}% of one core")
    else:
        print("  eBPF program: no counters (bpftool missing or stats not enabled)")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("otelprof record failed")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--frequency", type=int, default=99)
    a = ap.parse_args()
    otelprof = os.path.join(a.build, "tools", "otelprof")
    target = os.path.join(a.build, "tests", "record", "record_target_static")
    if os.geteuid() != 0:
        sys.exit("run as root")
    for f in (otelprof, target):
        if not os.access(f, os.X_OK):
            sys.exit(f"{f} missing: build the project (with tests) first")
    old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
    except OSError:
        pass
    try:
        print(f"otelprof record at {a.frequency} Hz, {os.cpu_count()} CPUs kept busy by "
              f"record_target (2 threads), {a.seconds:.0f} s per run")
        one_run(otelprof, target, a.seconds, a.frequency, True)
        one_run(otelprof, target, a.seconds, a.frequency, False)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)


if __name__ == "__main__":
    main()
