#!/usr/bin/env bash
# HTTP middleware throughput under wrk, on 127.0.0.1 with keep-alive, in one run:
#   bare  the hello-world handler alone
#   prop  the middleware in propagation-only mode            (target: >= 0.97 of bare)
#   sdk   the middleware + SDK + batch processor + OTLP/HTTP to a local sink
#                                                             (target: >= 0.90 of bare)
# Every request carries a sampled traceparent. Rounds alternate the modes; for each mode
# the best round's requests/s is kept, and the server's CPU time per request (utime+stime
# from /proc over the measured run: steadier than throughput when other processes share
# the cores). Prints both, with ratios to bare.
#   run.sh BENCH_HTTP_BINARY [--duration S] [--rounds N] [--connections C] [--threads T]
set -u
bin=${1:?usage: run.sh BENCH_HTTP_BINARY [--duration S] [--rounds N] [--connections C] [--threads T]}
shift
duration=5 rounds=3 conns=32 wthreads=1 sthreads=1
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --threads) sthreads=$2; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
    esac
done
command -v wrk >/dev/null 2>&1 || { echo "SKIPPED: wrk not found (apt-get install wrk)"; exit 77; }
[ -x "$bin" ] || { echo "no such binary: $bin"; exit 2; }

base=$((20000 + $$ % 20000))
sink_port=$((base + 9))
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM

wait_port() { # wait until 127.0.0.1:$1 accepts
    i=0
    while [ $i -lt 100 ]; do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05; i=$((i + 1))
    done 2>/dev/null
    return 1
}

modes="bare prop"
tries=0
while :; do
    "$bin" sink --port "$sink_port" 2>/dev/null &
    sink_pid=$!
    wait_port "$sink_port" && sleep 0.1 && kill -0 "$sink_pid" 2>/dev/null && break
    kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null
    sink_port=$((sink_port + 100)); tries=$((tries + 1))
    [ $tries -lt 10 ] || { echo "cannot start the OTLP sink"; exit 1; }
done
pids="$pids $sink_pid"
# Is there an OTLP exporter in this build? (bench_http sdk exits 77 at once without one.)
"$bin" sdk --port $((base + 8)) --otlp "http://127.0.0.1:$sink_port/v1/traces" >/dev/null 2>&1 &
p=$!
sleep 0.3
if kill -0 "$p" 2>/dev/null; then
    kill "$p"; wait "$p" 2>/dev/null
    modes="$modes sdk"
else
    wait "$p"; rc=$?
    if [ $rc -eq 77 ]; then
        echo "note: libotelprof-trace was built without the OTLP exporter: no sdk mode"
    else
        modes="$modes sdk" # it failed for another reason (e.g. the port): try it in the rounds
    fi
fi

tp="traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
best_bare=0 best_prop=0 best_sdk=0
cpu_bare=0 cpu_prop=0 cpu_sdk=0 # lowest CPU microseconds per request
tck=$(getconf CLK_TCK)
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
r=1
while [ $r -le "$rounds" ]; do
    n=0
    for m in $modes; do
        n=$((n + 1))
        # A port may be taken by another process: move on until the server stays up.
        tries=0
        while :; do
            port=$((base + n + 100 * tries))
            args="$m --port $port --threads $sthreads"
            [ "$m" = sdk ] && args="$args --otlp http://127.0.0.1:$sink_port/v1/traces"
            # shellcheck disable=SC2086
            "$bin" $args 2>/dev/null >"/tmp/bench_http.$$.$m" &
            sp=$!
            wait_port "$port" && sleep 0.1 && kill -0 "$sp" 2>/dev/null && break
            kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
            tries=$((tries + 1))
            [ $tries -lt 10 ] || { echo "cannot start $m"; exit 1; }
        done
        wrk -t "$wthreads" -c "$conns" -d 1s -H "$tp" "http://127.0.0.1:$port/" >/dev/null 2>&1 # warm-up
        t0=$(cputicks "$sp")
        out=$(wrk -t "$wthreads" -c "$conns" -d "${duration}s" -H "$tp" "http://127.0.0.1:$port/" 2>&1)
        t1=$(cputicks "$sp")
        kill "$sp"; wait "$sp" 2>/dev/null
        rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
        nreq=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
        us=$(awk "BEGIN {printf \"%.3f\", ($t1 - $t0) * 1000000 / $tck / $nreq}")
        errs=$(printf '%s\n' "$out" | awk '/Non-2xx|Socket errors/ {print}')
        [ -n "$rps" ] || { echo "wrk failed for $m: $out"; exit 1; }
        extra=""
        [ "$m" = sdk ] && extra=$(cat "/tmp/bench_http.$$.$m")
        printf 'round %d  %-5s %10.0f req/s %7.2f us CPU/req %s %s\n' "$r" "$m" "$rps" "$us" "$errs" "$extra"
        rm -f "/tmp/bench_http.$$.$m"
        eval "cur=\$best_$m"
        if awk "BEGIN {exit !($rps > $cur)}"; then eval "best_$m=$rps"; fi
        eval "cur=\$cpu_$m"
        if awk "BEGIN {exit !($cur == 0 || $us < $cur)}"; then eval "cpu_$m=$us"; fi
    done
    r=$((r + 1))
done

echo
printf '%-6s %12s %8s %14s %10s %8s\n' mode "req/s(best)" ratio "us CPU/req" "ratio(CPU)" target
printf '%-6s %12.0f %8s %14.2f %10s %8s\n' bare "$best_bare" 1.000 "$cpu_bare" 1.000 -
awk "BEGIN {printf \"%-6s %12.0f %8.3f %14.2f %10.3f %8s\n\", \"prop\", $best_prop, $best_prop / $best_bare, $cpu_prop, $cpu_bare / $cpu_prop, \">=0.97\"}"
case " $modes " in
*" sdk "*) awk "BEGIN {printf \"%-6s %12.0f %8.3f %14.2f %10.3f %8s\n\", \"sdk\", $best_sdk, $best_sdk / $best_bare, $cpu_sdk, $cpu_bare / $cpu_sdk, \">=0.90\"}" ;;
*) echo "sdk    (not run: no OTLP exporter in this build)" ;;
esac
