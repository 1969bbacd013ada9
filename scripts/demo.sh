#!/usr/bin/env bash
# `make demo`: build otelprof, start a small multi-threaded service that publishes a trace
# context per fake request, and show what a profiler reads from it, from outside, with
# `otelprof inspect` (the same algorithm as the OTel eBPF profiler and Parca's reader).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build otelprof-demo otelprof >/dev/null

./build/examples/otelprof-demo 12 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1.5
for i in 1 2 3; do
  echo
  echo "== otelprof inspect $pid   (snapshot $i)"
  ./build/tools/otelprof inspect "$pid"
  sleep 1.7
done
echo
echo "== otelprof inspect --json $pid"
./build/tools/otelprof inspect --json "$pid"
echo
wait $pid
trap - EXIT
echo "demo: done. Rows without ids were idle between requests when the snapshot was taken."
