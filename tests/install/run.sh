#!/usr/bin/env bash
# install.consumers: see CMakeLists.txt.
set -euo pipefail
build=$1 here=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

fail() { echo "FAIL: $*"; exit 1; }
has_tls_sym() { # file symbol
  readelf -W --dyn-syms "$1" | awk -v s="$2" '$8 == s && $4 == "TLS" && $5 == "GLOBAL" && $3 == 8 {f=1} END {exit !f}'
}

# 1. CMake find_package, shared and static
cmake -S "$here/consumer" -B "$tmp/cm" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
ninja -C "$tmp/cm" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$tmp/cm/consumer-shared"
"$tmp/cm/consumer-static"
has_tls_sym "$tmp/cm/consumer-static" otel_thread_ctx_v1 || fail "find_package static consumer lacks otel_thread_ctx_v1 in .dynsym"
has_tls_sym "$tmp/cm/consumer-static" custom_labels_current_set || fail "static consumer lacks custom_labels_current_set in .dynsym"
readelf -W --dyn-syms "$tmp/cm/consumer-static" |
  awk '$8 == "custom_labels_abi_version" && $4 == "OBJECT" && $3 == 4 {f=1} END {exit !f}' ||
  fail "static consumer lacks custom_labels_abi_version"
readelf -W -d "$tmp/cm/consumer-shared" | grep -q 'libotelprof.so.0' || fail "shared consumer does not need libotelprof.so.0"
LD_LIBRARY_PATH="$prefix/lib" "$tmp/cm/consumer-trace-shared"
"$tmp/cm/consumer-trace-static"
has_tls_sym "$tmp/cm/consumer-trace-static" otel_thread_ctx_v1 || fail "static trace consumer lacks otel_thread_ctx_v1 in .dynsym"
grpc=no
if [ -e "$prefix/lib/cmake/otelprof/otelprofGrpcTargets.cmake" ]; then
  [ -x "$tmp/cm/consumer-grpc-shared" ] || fail "grpc was installed but find_package(otelprof COMPONENTS grpc) did not give it"
  LD_LIBRARY_PATH="$prefix/lib" "$tmp/cm/consumer-grpc-shared"
  "$tmp/cm/consumer-grpc-static"
  grpc=yes
fi

# 2. pkg-config, shared (the usual link) and static
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists otelprof || fail "pkg-config cannot find otelprof"
[ "$(pkg-config --modversion otelprof)" = "0.1.0" ] || fail "pkg-config version"
cc -std=c11 $(pkg-config --cflags otelprof) "$here/consumer/consumer.c" -o "$tmp/pc-shared" $(pkg-config --libs otelprof)
LD_LIBRARY_PATH="$prefix/lib" "$tmp/pc-shared"
cc -std=c11 $(pkg-config --cflags otelprof) "$here/consumer/consumer.c" -o "$tmp/pc-static" \
  "$prefix/lib/libotelprof.a" $(pkg-config --libs --static otelprof | sed 's/-lotelprof//')
"$tmp/pc-static"
has_tls_sym "$tmp/pc-static" otel_thread_ctx_v1 || fail "pkg-config static consumer lacks otel_thread_ctx_v1 in .dynsym"

for pc in "$prefix"/lib/pkgconfig/*.pc; do
  name=$(basename "$pc" .pc)
  pkg-config --exists "$name" || fail "pkg-config: $name: $(pkg-config --print-errors --exists "$name" 2>&1)"
done
cc -std=c11 $(pkg-config --cflags otelprof-trace) "$here/consumer/consumer_trace.c" -o "$tmp/pc-trace" $(pkg-config --libs otelprof-trace)
LD_LIBRARY_PATH="$prefix/lib" "$tmp/pc-trace"
cc -std=c11 $(pkg-config --cflags otelprof-trace) "$here/consumer/consumer_trace.c" -o "$tmp/pc-trace-static" \
  -Wl,-Bstatic -lotelprof-trace -lotelprof -Wl,-Bdynamic $(pkg-config --libs --static otelprof-trace | sed 's/-lotelprof-trace//; s/-lotelprof / /')
"$tmp/pc-trace-static"
if [ "$grpc" = yes ]; then
  c++ $(pkg-config --cflags otelprof-grpcpp) "$here/consumer/consumer_grpc.cc" -o "$tmp/pc-grpc" $(pkg-config --libs otelprof-grpcpp)
  LD_LIBRARY_PATH="$prefix/lib" "$tmp/pc-grpc"
fi

# 3. every public header compiles as C++ and as C on its own
for h in "$prefix"/include/otelprof/*.h; do
  name=otelprof/$(basename "$h")
  echo "#include <$name>" | c++ -std=c++11 -Wall -Wextra -Werror -x c++ -fsyntax-only -I "$prefix/include" - ||
    fail "$name does not compile as C++"
  # (a C++-only header includes to nothing in C: the declaration keeps the unit non-empty)
  printf '#include <%s>\nint otelprof_header_check;\n' "$name" |
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror -x c -fsyntax-only -I "$prefix/include" - ||
    fail "$name does not compile alone as C11"
done
echo "install.consumers: find_package and pkg-config, shared and static: core, trace, grpc ($grpc); headers as C and C++: ok"
