#!/usr/bin/env bash
# Cost of otelprof_attach + otelprof_detach, static and shared library, per format:
# ns per pair (best of REPS runs of ITERS pairs) against a baseline that only stores the
# same bytes, and instructions per pair counted by callgrind (repeatable, unlike time).
#
#   bench/run.sh                 build into $BUILD_DIR (default build-bench) if needed, run
#   ITERS=500000 REPS=3 bench/run.sh       quicker, noisier
#   bench/run.sh wrap            the profiling wrapper instead: span start+end through a
#                                wrapped SDK provider against the same provider unwrapped,
#                                per processor configuration (CONFIGS="simple batch json
#                                http otlp"): wall, thread-CPU and process-CPU time ratios
#                                (best of REPS x SPANS) and instructions per span on the
#                                calling thread (callgrind); each configuration with the
#                                wrapper publishing the ids alone (its default options) and
#                                the ids + http.route (KEYSETS="- http.route"); time ratios
#                                are medians over PROCS (5) processes
# Needs cmake and a C compiler; valgrind for the instruction columns (else "n/a").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${BUILD_DIR:-$src/build-bench}
iters=${ITERS:-2000000}
reps=${REPS:-5}
instr_iters=${INSTR_ITERS:-20000}

if [ ! -f "$build/CMakeCache.txt" ]; then
    gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
if grep -Eq '^OTELPROF_SANITIZE:STRING=.+' "$build/CMakeCache.txt"; then
    echo "warning: $build is a sanitizer build; these numbers say little" >&2
fi
bt=$(grep -E '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have_vg=0
command -v valgrind >/dev/null && have_vg=1

if [ "${1:-}" = wrap ]; then
    cmake --build "$build" --target bench_wrap-static >/dev/null
    exe=$(find "$build" -type f -name bench_wrap-static -perm -u+x | head -n 1)
    spans=${SPANS:-100000}
    instr_spans=${INSTR_SPANS:-20000}
    configs=${CONFIGS:-simple batch json http otlp}
    # what the wrapper publishes besides the ids (bench_wrap's WRAP_KEYS): "-" is nothing,
    # the wrapper's default options
    keysets=${KEYSETS:-- http.route}
    procs=${PROCS:-5}
    echo "profiling wrapper: span start+end, wrapped SDK provider vs the same provider unwrapped"
    echo "(static build, build type $bt; always_on sampler, 2 attributes per span (http, otlp: 10);"
    echo "the wrapper publishes the ids, and the attributes in column 'keys', in every format"
    echo "('-': none, the default options). Ratios wrapped/sdk within each of $procs processes,"
    echo "the median over them (thread_span: the lowest and highest process): wall = the loop and"
    echo "process = CPU time of every thread over the loop and the flush after it (a batch"
    echo "worker's encoding and export included), best of $reps x $spans spans each; thread = the"
    echo "calling thread's CPU time with the providers alternating every 500 spans, median of"
    echo "$reps runs; instr = instructions per span on the calling thread under callgrind"
    echo "($instr_spans spans, loop included)"
    echo
    printf '%-7s %-10s %8s %8s %8s %8s %11s %8s %8s %8s %9s %-9s  %s\n' config keys sdk_ns wall \
        thread process thread_span sdk_ins wrap_ins instr allocs "<= 1.10" processor
    med() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
    for cfg in $configs; do
    for keys in $keysets; do
        export WRAP_KEYS=$keys
        # PROCS processes: the ratio moves by up to +-0.04 from one process to the next
        # (addresses differ with each run, and with them which loads and stores alias),
        # far more than within one; each column is the median over the processes.
        : >"$tmp/runs.txt"
        for _ in $(seq "$procs"); do
            out=$("$exe" "$spans" "$reps" "$cfg")
            # wall and process: best of REPS runs each; thread: the median of REPS runs
            # that alternate the two providers every 500 spans (steadier with a batch
            # worker)
            awk '$1 == "sdk" {sn = $3; sa = $5} $1 == "wrapped" {wa = $5}
                $1 == "ratio" {w = $4; p = $8} $1 == "interleaved" {t = $6}
                END {print sn, w, t, p, sa "/" wa}' <<<"$out" >>"$tmp/runs.txt"
        done
        sn=$(cut -d' ' -f1 "$tmp/runs.txt" | med)
        ratios="$(cut -d' ' -f2 "$tmp/runs.txt" | med) $(cut -d' ' -f3 "$tmp/runs.txt" | med)"
        ratios="$ratios $(cut -d' ' -f4 "$tmp/runs.txt" | med)"
        spread=$(cut -d' ' -f3 "$tmp/runs.txt" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1}
            END {printf "%.3f-%.3f", lo, hi}')
        allocs=$(head -n 1 "$tmp/runs.txt" | cut -d' ' -f5)
        si=n/a wi=n/a ir=-
        if [ "$have_vg" = 1 ]; then
            (cd "$tmp" && valgrind --tool=callgrind --collect-atstart=no \
                --toggle-collect=bench_measured_loop --dump-after=bench_measured_loop \
                --callgrind-out-file="$tmp/cgw-$cfg.out" "$exe" instr "$instr_spans" "$cfg" \
                >"$tmp/instr-$cfg.txt" 2>"$tmp/vg-$cfg.log") ||
                { cat "$tmp/vg-$cfg.log" >&2; exit 1; }
            # bench_wrap prints "dump N sdk|wrapped" for its two measured loops.
            for who in sdk wrapped; do
                n=$(awk -v w="$who" '$1 == "dump" && $3 == w {print $2}' "$tmp/instr-$cfg.txt")
                t=$(awk '/^totals:/ {print $2}' "$tmp/cgw-$cfg.out.$n")
                v=$(awk -v t="$t" -v n="$instr_spans" 'BEGIN {printf "%.0f", t / n}')
                if [ "$who" = sdk ]; then si=$v; else wi=$v; fi
            done
            ir=$(awk -v a="$wi" -v b="$si" 'BEGIN {printf "%.3f", a / b}')
        fi
        proc=$(sed -n 's/^config //p' "$tmp/instr-$cfg.txt" 2>/dev/null || true)
        [ -n "$proc" ] || proc=$cfg
        # the target on the thread's CPU time and on instructions: both, one, or MISSED
        verdict=$(awk -v t="$(cut -d' ' -f2 <<<"$ratios")" -v i="$ir" 'BEGIN {
            ti = t + 0 <= 1.10; ii = (i != "-" && i + 0 <= 1.10)
            print ti && ii ? "met" : ti ? "time only" : ii ? "instr only" : "MISSED" }')
        # shellcheck disable=SC2086
        printf '%-7s %-10s %8s %8s %8s %11s %8s %8s %8s %8s %9s %-10s %s\n' "$cfg" "$keys" "$sn" \
            $ratios "$spread" "$si" "$wi" "$ir" "$allocs" "$verdict" "$proc"
    done
    done
    unset WRAP_KEYS
    echo
    echo "sdk_ns: the unwrapped provider's thread CPU ns per span; allocs: per span, sdk/wrapped"
    echo "target: wrapped/sdk <= 1.10"
    exit 0
fi

cmake --build "$build" --target bench_attach-static bench_attach-shared >/dev/null
for flavour in static shared; do
    exe=$(find "$build" -type f -name "bench_attach-$flavour" -perm -u+x | head -n 1)
    [ -n "$exe" ] || { echo "bench_attach-$flavour not built" >&2; exit 1; }
    "$exe" time "$iters" "$reps" | grep -Ev '^(#|build )' >>"$tmp/time.txt"

    if [ "$have_vg" = 1 ]; then
        # One callgrind dump per measured loop; bench_attach prints which dump is which.
        (cd "$tmp" && valgrind --tool=callgrind --collect-atstart=no \
            --toggle-collect=bench_measured_loop --dump-after=bench_measured_loop \
            --callgrind-out-file="$tmp/cg-$flavour.out" "$exe" instr "$instr_iters" \
            >"$tmp/instr-$flavour.txt" 2>"$tmp/vg-$flavour.log") ||
            { cat "$tmp/vg-$flavour.log" >&2; exit 1; }
        while read -r _ n kind fmt attrs n_iters; do
            total=$(awk '/^totals:/ {print $2}' "$tmp/cg-$flavour.out.$n")
            echo "$flavour $fmt $attrs $kind $(awk -v t="$total" -v n="$n_iters" 'BEGIN {printf "%.0f", t / n}')"
        done <"$tmp/instr-$flavour.txt" >>"$tmp/instr.txt"
    fi
done
[ -f "$tmp/instr.txt" ] || : >"$tmp/instr.txt"

echo "otelprof attach+detach pair: best of $reps x $iters pairs (ns), CLOCK_MONOTONIC; build type $bt"
echo "baseline = non-inlined volatile/escaping stores of the bytes each format publishes;"
echo "instr = instructions per pair under callgrind ($instr_iters pairs, loop overhead included)"
echo "process_ctx alone publishes nothing per attach: its baseline is an empty call pair (no ratio)"
echo
awk '
    FILENAME == ARGV[1] { instr[$1 " " $2 " " $3 " " $4] = $5; next }
    BEGIN {
        printf "%-7s %-14s %5s %9s %9s %7s %9s %9s %7s\n", "build", "format", "attrs",
               "pair_ns", "base_ns", "ratio", "instr", "base_ins", "i_ratio"
    }
    {
        k = $1 " " $2 " " $3
        li = (k " lib") in instr ? instr[k " lib"] : "n/a"
        bi = (k " base") in instr ? instr[k " base"] : "n/a"
        ir = (li != "n/a" && $6 != "-") ? sprintf("%.2f", li / bi) : "-"
        flag = ($6 != "-" && $6 + 0 > 3) ? "  > 3x" : ""
        printf "%-7s %-14s %5s %9s %9s %7s %9s %9s %7s%s\n", $1, $2, $3, $4, $5, $6, li, bi, ir, flag
    }
' "$tmp/instr.txt" "$tmp/time.txt"
[ "$have_vg" = 1 ] || echo "(instruction counts need valgrind: apt-get install valgrind)"
