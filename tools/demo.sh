#!/bin/sh
# SPDX-License-Identifier: MIT
# The demo: builds the example crash reporter (build/demo) and crashes it
# twice, printing both reports.
#   1. in-malloc: a crash inside glibc's malloc, with the arena lock held.
#      A naive handler (malloc + snprintf) hangs; sigsafe's report completes.
#   2. overflow: a write one byte past a sigsafe block; the guard page
#      faults and sigsafe_guard_watch() names the block.
# Installs what is missing first (tools/deps.sh), as tools/test.sh does.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh

build=build/demo
exe=$build/examples/crash_reporter
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$build"
echo "sigsafe demo: building the examples in $build"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSIGSAFE_BUILD_TESTS=OFF -DSIGSAFE_BUILD_EXAMPLES=ON &&
    cmake --build "$build" -j "$jobs" --target crash_reporter; } \
    >"$build/demo-build.log" 2>&1; then
    cat "$build/demo-build.log"
    echo "sigsafe demo: the build failed (log above)" >&2
    exit 1
fi

# The crashes are on purpose: no core files.
# shellcheck disable=SC3045 # dash and bash both have ulimit -c
ulimit -c 0 2>/dev/null || true

# demo TITLE KIND: runs one case, then names its frames.
demo() {
    report="$build/$2-report.txt"
    rm -f "$report"
    printf '\n==== %s\n$ %s --demo %s --report %s\n' "$1" "$exe" "$2" "$report"
    # Waited for by a subshell whose own output is discarded, so that the
    # shell's "Segmentation fault" does not interrupt the report.
    (
        st=0
        (exec "$exe" --demo "$2" --report "$report" >&3 2>&3) || st=$?
        echo "$st" >"$build/status"
    ) 3>&1 >/dev/null 2>&1
    status=$(cat "$build/status")
    if [ "$status" -gt 128 ]; then
        echo "-> exit status $status: died of SIG$(kill -l "$status")," \
            "as it would have without a handler"
    else
        echo "-> exit status $status"
    fi
    if [ -s "$report" ] && command -v addr2line >/dev/null 2>&1; then
        echo "-> the backtrace, named afterwards by examples/symbolise.sh:"
        sh examples/symbolise.sh "$report"
    fi
}

demo "1. A crash inside malloc, with its lock held" in-malloc
demo "2. One byte past the end of a sigsafe block" overflow
