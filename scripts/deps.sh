#!/usr/bin/env bash
# Install what building and testing otelprof needs on Debian 12. Idempotent: installs
# only what is missing; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config binutils python3 util-linux
  clang libclang-rt-14-dev clang-format cppcheck valgrind
  bpftrace protobuf-compiler libbpf-dev bpftool
  libcurl4-openssl-dev zlib1g-dev libmicrohttpd-dev curl
  golang-go chromium libcivetweb-dev wrk
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the test clients; a machine may already have them from elsewhere
# (then Debian's npm package would conflict), so only ask apt when the commands are absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
