#!/bin/sh
# Smoke test of examples/grpc-example: start it on an ephemeral port (--port 0), call
# UnaryEcho "20" with the otelprof client interceptor, expect fib(20) = 6765 and, on the
# example's stdout (console exporter), a SERVER span whose parent is the caller's span.
#   example.sh <grpc-example> <test-grpc binary>
ex=$1
cli=$2
dir=$(mktemp -d) || exit 1
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
env -u OTEL_TRACES_EXPORTER "$ex" --port 0 >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
until grep -q "listening on" "$dir/err"; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "example did not start"; cat "$dir/err"; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/.*listening on 0.0.0.0:\([0-9]*\).*/\1/p' "$dir/err")
set -- $("$cli" call "127.0.0.1:$port" 20) || { echo "call failed"; exit 1; }
trace=$1 span=$2 reply=$3
echo "client trace $trace span $span reply $reply"
[ "$reply" = 6765 ] || { echo "expected 6765"; exit 1; }
kill -INT "$pid"
wait "$pid" || { echo "example exited with an error"; exit 1; }
pid=
cat "$dir/out"
grep -q "\"traceId\":\"$trace\".*\"parentSpanId\":\"$span\".*\"name\":\"grpc.examples.echo.Echo/UnaryEcho\",\"kind\":2" "$dir/out" ||
    { echo "no SERVER span with the caller as parent"; exit 1; }
echo ok
