#!/usr/bin/env bash
# A guard on the wrapper's cost, in instructions (repeatable, unlike time): the instructions
# a wrapped span adds to the same SDK span (simple processor, no-op exporter, 2 attributes,
# http.route published), counted by callgrind on the calling thread. Fails above LIMIT
# (default 1000: about 700 when this was written, 1130 two rounds of work before), so a
# change that makes the hot path markedly dearer is noticed by the test suite.
#   wrap_instr_check.sh BENCH_WRAP [LIMIT]      exit 77 (skipped) without valgrind
set -euo pipefail
exe=$(readlink -f "$1")
limit=${2:-1000}
command -v valgrind >/dev/null || { echo "SKIPPED: valgrind not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
spans=5000
(cd "$tmp" && WRAP_KEYS=http.route valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect=bench_measured_loop --dump-after=bench_measured_loop \
    --callgrind-out-file="$tmp/cg.out" "$exe" instr "$spans" simple >"$tmp/out.txt" 2>"$tmp/vg.log") ||
    { cat "$tmp/vg.log" >&2; exit 1; }
per() { awk -v n="$spans" '/^totals:/ {printf "%.0f", $2 / n}' "$tmp/cg.out.$1"; }
sdk=$(per "$(awk '$1 == "dump" && $3 == "sdk" {print $2}' "$tmp/out.txt")")
wrapped=$(per "$(awk '$1 == "dump" && $3 == "wrapped" {print $2}' "$tmp/out.txt")")
added=$((wrapped - sdk))
echo "instructions per span: sdk $sdk, wrapped $wrapped, added by the wrapper $added (limit $limit)"
[ "$added" -le "$limit" ] || { echo "the wrapper adds more than $limit instructions per span"; exit 1; }
