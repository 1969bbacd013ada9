#!/bin/sh
# The CPU `otelprof record` costs at 99 Hz on a busy machine (see run.py).
#   bench/record/run.sh [BUILD_DIR] [SECONDS]
here=$(dirname "$0")
exec python3 "$here/run.py" --build "${1:-$here/../../build}" --seconds "${2:-10}"
