#!/bin/sh
# Installs pprof-format, pinned by package-lock.json, into the build tree (never the source
# tree) with `npm ci`; reinstalls only when the lock file changed. Exit 77 (skipped) when
# node/npm are missing or the registry cannot be reached.
#   npm-ci.sh <tests/record dir> <destination dir>
src=$1
dst=$2
for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIPPED: $tool not found"; exit 77; }
done
mkdir -p "$dst" || exit 1
stamp="$dst/node_modules/.otelprof-record-lock"
if [ -f "$stamp" ] && cmp -s "$src/package-lock.json" "$stamp"; then
    echo "pprof-format already installed in $dst"
    exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dst/" || exit 1
cd "$dst" || exit 1
if ! timeout 240 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then
    echo "SKIPPED: npm ci failed (npm registry unreachable?)"
    exit 77
fi
cp "$src/package-lock.json" "$stamp"
echo "pprof-format installed in $dst"
