#!/usr/bin/env bash
# The whole test suite, as CI runs it (`make check`):
#   1. a -Werror build and every test (unit, out-of-process, eBPF, install, bench smoke)
#   2. ASan+UBSan build: every test but the eBPF sampler and the benches
#   3. TSan build: the concurrency tests
#   4. clang build of the fuzz targets, each run briefly
#   5. lint: clang-format and cppcheck
# Ends with one line "check: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh || { echo "check: installing dependencies failed"; exit 1; }

out="$root/build-ci"
mkdir -p "$out"
rm -f "$out"/*.xml
status=0
build_fail=0

run_ctest() { # name, build dir, ctest args...
  local name=$1 dir=$2
  shift 2
  echo "== ctest ($name)"
  ctest --test-dir "$dir" --output-on-failure --output-junit "$out/$name.xml" "$@" || status=1
}

configure_build() { # dir, cmake args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja -DOTELPROF_WERROR=ON "$@" >"$dir.configure.log" 2>&1 &&
    ninja -C "$dir" >"$dir.build.log" 2>&1 || {
    echo "check: build in $dir failed:"
    grep -E 'error|FAILED' "$dir.configure.log" "$dir.build.log" 2>/dev/null | head -20
    status=1
    build_fail=$((build_fail + 1))
    return 1
  }
}

echo "== build (default, -Werror)"
if configure_build "$out/default"; then
  # the eBPF sampler and the benches want the CPUs to themselves: run them alone
  run_ctest default "$out/default" -j2 -LE 'ebpf|bench'
  run_ctest default-serial "$out/default" -L 'ebpf|bench'
fi

echo "== build (ASan+UBSan)"
if configure_build "$out/asan" -DOTELPROF_SANITIZE=address -DOTELPROF_BUILD_BENCH=OFF; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 run_ctest asan "$out/asan" -j2 -LE 'ebpf|bench|install|fuzz'
fi

echo "== build (TSan)"
if configure_build "$out/tsan" -DOTELPROF_SANITIZE=thread -DOTELPROF_BUILD_BENCH=OFF; then
  run_ctest tsan "$out/tsan" -L concurrency
fi

echo "== build (clang, fuzz targets)"
if CC=clang configure_build "$out/fuzz" -DOTELPROF_BUILD_BENCH=OFF -DOTELPROF_BUILD_TOOLS=OFF \
  -DOTELPROF_BUILD_TESTS=OFF -DOTELPROF_BUILD_EXAMPLES=OFF; then
  run_ctest fuzz "$out/fuzz" -L fuzz
fi

echo "== lint"
lint_fail=0
mapfile -t csrc < <(git ls-files '*.c' '*.h' '*.cc' '*.cpp' '*.hpp')
if ! clang-format --dry-run --Werror "${csrc[@]}" >"$out/clang-format.log" 2>&1; then
  echo "check: clang-format differences:"
  head -30 "$out/clang-format.log"
  lint_fail=1
fi
# C sources of the libraries and tools; BPF programs are C for another target (cppcheck
# does not know their SEC() macros) and are checked by clang -target bpf -Werror instead.
mapfile -t cppsrc < <(git ls-files 'src/*.c' 'tools/*.c' | grep -v '\.bpf\.c$')
if ! cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
  --inline-suppr --suppress=missingIncludeSystem -I include -I src "${cppsrc[@]}" 2>"$out/cppcheck.log"; then
  echo "check: cppcheck findings:"
  head -30 "$out/cppcheck.log"
  lint_fail=1
fi
python3 - "$out" "$lint_fail" "$build_fail" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
out, lint_fail, build_fail = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = f = s = 0
for path in glob.glob(out + "/*.xml"):
    for tc in ET.parse(path).getroot().iter("testcase"):
        st = tc.get("status", "")
        if tc.find("failure") is not None or tc.find("error") is not None or st == "fail":
            f += 1
        elif tc.find("skipped") is not None or st in ("notrun", "disabled"):
            s += 1
        else:
            p += 1
p += 1 - lint_fail
f += lint_fail + build_fail  # a build that failed ran none of its tests: count it
open(out + "/summary.txt", "w").write(f"{p} {f} {s}\n")
PY
read -r passed failed skipped <"$out/summary.txt"
[ "$failed" -eq 0 ] || status=1
echo "check: $passed passed, $failed failed, $skipped skipped"
exit $status
