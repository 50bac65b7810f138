#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds sigsafe and runs its test suite.
#   tools/test.sh          the suite (every label except the long `stress`)
#   tools/test.sh asan     the suite under AddressSanitizer + UBSan
#   tools/test.sh tsan     the suite under ThreadSanitizer
#   tools/test.sh stress   the long stress variants only
set -eu
cd "$(dirname "$0")/.."
mode=${1:-default}
tools/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
args="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGSAFE_WERROR=ON"
select="-LE stress"
case "$mode" in
default) ;;
asan) args="$args -DSIGSAFE_SANITIZE=address,undefined" ;;
tsan) args="$args -DSIGSAFE_SANITIZE=thread" ;;
stress) select="-L stress" ;;
*) echo "usage: tools/test.sh [asan|tsan|stress]" >&2; exit 2 ;;
esac
build="build/$mode"
cmake -S . -B "$build" $args >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" $select
