#!/usr/bin/env bash
# gRPC server interceptor overhead: unary UnaryEcho throughput on 127.0.0.1, in one run:
#   base  the Echo service alone (sync API)
#   prop  + otelprof_grpc::ServerInterceptorFactory, no tracer (extract + publish)
#                                                             (target: >= 0.97 of base)
#   sdk   + a tracer: SDK, batch processor, OTLP/HTTP to a local sink
#                                                             (target: >= 0.90 of base)
# Each mode is a server process of its own (its CPU time per call is its getrusage); the
# load generator (T threads, one channel each, blocking calls, the same traceparent on
# every call) and the OTLP sink are other processes. Rounds alternate the order of the
# modes (ABC, CBA, ...); the summary gives medians over rounds of calls/s, of the ratio to
# base within each round, and of the server's CPU per call. The sink counts the spans it
# decodes; the run fails if they differ from what the batch processor exported.
#
#   run.sh [--bin BENCH_GRPC] [--smoke] [bench_grpc run options]
#       --duration S (5) --warmup S (1) --rounds N (5) --threads T (8) --modes base,prop,sdk
#       --pollers MIN,MAX (grpc++ sync-server pollers; default grpc++'s 1,2)
#       diagnostic modes for --modes (bench_grpc.cc): noop (an empty interceptor), attach
#       (noop + otelprof_attach/detach), cancel (noop + ServerContext::IsCancelled()),
#       nopub (prop without publishing)
# Throughput is noisy on a shared 2-CPU host (clients and server share the cores); the
# server's CPU per call ("cpu ratio") is the steadier signal, INSTR=1 the repeatable one.
#   PIN=1 run.sh     servers on CPU 0, clients and sink on CPU 1 (taskset-like affinity)
#   INSTR=1 run.sh   instructions per call on the server under callgrind instead (CALLS=2000):
#                    repeatable where timings are not; the callgrind files stay in OUT_DIR
# Without --bin, builds bench_grpc in $BUILD_DIR (default build-bench).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin="" smoke=0 args=()
while [ $# -gt 0 ]; do
    case $1 in
    --bin) bin=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    *) args+=("$1"); shift ;;
    esac
done
if [ -z "$bin" ]; then
    build=${BUILD_DIR:-$src/build-bench}
    if [ ! -f "$build/CMakeCache.txt" ]; then
        gen=()
        command -v ninja >/dev/null && gen=(-G Ninja)
        cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build "$build" --target bench_grpc >/dev/null
    bin=$(find "$build" -type f -name bench_grpc -perm -u+x | head -n 1)
fi
[ -x "$bin" ] || { echo "no bench_grpc binary (grpc++ or the OTLP exporter not built?)" >&2; exit 2; }

if [ "${INSTR:-0}" = 1 ]; then
    command -v valgrind >/dev/null || { echo "INSTR=1 needs valgrind" >&2; exit 2; }
    out=${OUT_DIR:-$(mktemp -d)}
    mkdir -p "$out"
    calls=${CALLS:-2000}
    # Collection is zeroed and dumped around the measured calls by the server itself
    # (client requests); %m is replaced by the mode, %p by valgrind with the pid.
    export BENCH_GRPC_VALGRIND="valgrind --tool=callgrind --callgrind-out-file=$out/cg.%m.%p.out"
    "$bin" instr --calls "$calls" "${args[@]}" 2>"$out/valgrind.log" | tee "$out/instr.txt"
    echo
    printf '%-5s %14s %10s\n' mode "server Ir/call" ratio
    base=""
    while read -r _ mode _ _; do
        f=$(ls "$out"/cg."$mode".*.out.1 2>/dev/null | head -n 1)
        [ -n "$f" ] || { echo "$mode: no callgrind dump"; continue; }
        ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
        per=$((ir / calls))
        [ -n "$base" ] || base=$per
        awk -v m="$mode" -v p="$per" -v b="$base" 'BEGIN {printf "%-5s %14d %10.3f\n", m, p, b / p}'
    done < <(grep '^instr ' "$out/instr.txt")
    echo "(ratio = base Ir/call / the mode's; callgrind files in $out: callgrind_annotate FILE)"
    exit 0
fi

pin=()
if [ "${PIN:-0}" = 1 ]; then
    pin=(--server-cpus 0 --client-cpus 1)
fi
if [ "$smoke" = 1 ]; then
    # Checks that it runs and that the sink got the spans; says nothing about timing.
    exec "$bin" run --duration 0.5 --warmup 0.3 --rounds 1 --threads 2 "${pin[@]}" "${args[@]}"
fi
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(basename "$bin") $(stat -c %y "$bin" | cut -d. -f1)"
exec "$bin" run "${pin[@]}" "${args[@]}"
