#!/bin/sh
# Installs a test's pinned npm packages (its package.json + package-lock.json) into the
# build tree, never the source tree, with `npm ci`; reinstalls only when the lock file
# changed. Exit 77 (ctest: skipped) when node/npm are missing or the registry cannot be
# reached; the tests that need the packages then skip on their own. Shared by the OTLP
# receiver, the HTTP Node client and the pprof-format check.
#   npm-ci.sh <dir with package-lock.json> <destination dir>
src=$1
dst=$2
command -v node >/dev/null 2>&1 || { echo "SKIPPED: node not found"; exit 77; }
command -v npm >/dev/null 2>&1 || { echo "SKIPPED: npm not found"; exit 77; }
mkdir -p "$dst" || exit 1
stamp="$dst/node_modules/.otelprof-lock"
if [ -f "$stamp" ] && cmp -s "$src/package-lock.json" "$stamp"; then
    echo "npm packages up to date in $dst"
    exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dst/" || exit 1
cd "$dst" || exit 1
if ! timeout 240 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then
    echo "SKIPPED: npm ci failed (is the npm registry reachable?)"
    exit 77
fi
cp "$src/package-lock.json" "$stamp"
echo "npm packages installed in $dst"
