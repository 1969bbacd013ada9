#!/usr/bin/env bash
# `make demo`: "which code burned the CPU of this slow request?" end to end.
#   1. build otelprof, start examples/http-example (libmicrohttpd + the middleware),
#   2. show what a profiler reads from its threads during a request (`otelprof inspect`),
#   3. record CPU samples with `otelprof record` (eBPF) while a client sends requests, each
#      with its own trace id in a W3C traceparent header,
#   4. print the CPU time each trace burned next to its span's duration, and write a
#      pprof profile and a flame graph.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build otelprof http-example >/dev/null

out=build/demo
mkdir -p "$out"
rm -f "$out"/*
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
OTEL_TRACES_EXPORTER=console OTEL_SERVICE_NAME=http-example \
  ./build/examples/http-example --port "$port" >"$out/spans.jsonl" 2>"$out/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/fib?n=1" && break || sleep 0.1; done

echo "== http-example (pid $server) on http://127.0.0.1:$port"
echo
echo "== what a profiler reads while GET /fib?n=46 runs (otelprof inspect $server)"
curl -s -o /dev/null -H "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" \
  "http://127.0.0.1:$port/fib?n=46" &
sleep 0.3
./build/tools/otelprof inspect "$server" | sed -n '/^TID/,$p'
wait $! || true

if [ "$(id -u)" -ne 0 ]; then
  echo
  echo "demo: otelprof record needs root (BPF and perf events); run 'sudo make demo' for the rest."
  exit 0
fi

echo
echo "== otelprof record: 8 s at 199 Hz while a client sends traced requests"
./build/tools/otelprof record --pid "$server" --duration 8 --frequency 199 \
  --output "$out/profile.pb.gz" --flamegraph "$out/flamegraph.svg" --samples "$out/samples.jsonl" \
  --folded "$out/folded.txt" --quiet >"$out/record.txt" 2>&1 &
recorder=$!
sleep 1.5 # let the sampler attach
# One request at a time, each its own trace: fib(n) grows ~1.6x per step of n.
i=0
for n in 36 40 38 41 37 39; do
  i=$((i + 1))
  trace=$(printf '%08x%024x' $((0x5ca1ab1e)) "$i")
  curl -s -o /dev/null -H "traceparent: 00-$trace-$(printf '%016x' "$i")-01" \
    "http://127.0.0.1:$port/fib?n=$n"
done
wait $recorder || { cat "$out/record.txt"; exit 1; }
kill $server
wait $server 2>/dev/null || true
trap - EXIT

python3 - "$out" <<'EOF'
import collections, json, sys
out = sys.argv[1]
freq = 199
spans = {}
for line in open(out + "/spans.jsonl"):
    if line.startswith("{"):
        s = json.loads(line)
        attrs = {a["key"]: a["value"] for a in s.get("attributes", [])}
        target = attrs.get("url.query", attrs.get("url.path", {})).get("stringValue", "")
        spans[s["traceId"]] = (s["name"], target,
                               (int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1e6)
cpu = collections.Counter()
total = with_ctx = 0
for line in open(out + "/samples.jsonl"):
    s = json.loads(line)
    total += 1
    if s.get("trace_id"):
        with_ctx += 1
        cpu[s["trace_id"]] += 1
print("%d samples, %d of them inside a traced request\n" % (total, with_ctx))
print("%-34s %-10s %-8s %12s %12s" % ("trace_id", "span", "request", "span ms", "CPU ms"))
for tid, n in sorted(cpu.items(), key=lambda kv: -kv[1]):
    name, target, dur = spans.get(tid, ("?", "", float("nan")))
    print("%-34s %-10s %-8s %12.1f %12.1f" % (tid, name, target, dur, n * 1000.0 / freq))
EOF
echo
echo "profile:    $out/profile.pb.gz   (go tool pprof -tags $out/profile.pb.gz)"
echo "flame graph: $out/flamegraph.svg  (open it in a browser)"
echo "samples:    $out/samples.jsonl, folded stacks: $out/folded.txt, spans: $out/spans.jsonl"
