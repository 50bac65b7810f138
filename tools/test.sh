#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds sigsafe and runs its test suite.
#   tools/test.sh          the suite (every label except the long `stress`)
#   tools/test.sh asan     the suite under AddressSanitizer + UBSan
#   tools/test.sh tsan     the suite under ThreadSanitizer
#   tools/test.sh stress   the long stress variants only
#   tools/test.sh clang    the suite built with clang instead of gcc
#   tools/test.sh O0       the suite built at -O0 (Debug); Os: -Os
#                          (MinSizeRel); O2: -O2, the default
# Words combine (tools/test.sh clang Os, tools/test.sh clang tsan); each
# combination builds in its own directory, build/<words> (the root is
# $SIGSAFE_BUILD_ROOT, default build).
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- default

usage() {
    echo "usage: tools/test.sh [gcc|clang] [O0|O2|Os] [asan|tsan|stress]" >&2
    exit 2
}
build_type=RelWithDebInfo
cc=
sanitize=
select="-LE stress"
name=
for word; do
    case "$word" in
    default) ;;
    gcc | clang) cc=$word ;;
    O0) build_type=Debug ;;
    O2) build_type=RelWithDebInfo ;;
    Os) build_type=MinSizeRel ;;
    # The install tests build unsanitized copies: nothing to add here.
    asan) sanitize=address,undefined select="-LE stress|install" ;;
    tsan) sanitize=thread select="-LE stress|install" ;;
    stress) select="-L stress" ;;
    *) usage ;;
    esac
    name="${name:+$name-}$word"
done

tools/deps.sh $cc
if [ "$cc" = clang ] && [ -n "$sanitize" ]; then
    # clang's sanitizer runtimes (libclang-rt-14-dev on Debian 12).
    major=$(clang -dumpversion | cut -d. -f1)
    tools/deps.sh "libclang-rt-$major-dev"
fi

jobs=$(nproc 2>/dev/null || echo 2)
args="-DCMAKE_BUILD_TYPE=$build_type -DSIGSAFE_WERROR=ON"
[ -z "$cc" ] || args="$args -DCMAKE_C_COMPILER=$cc"
[ -z "$sanitize" ] || args="$args -DSIGSAFE_SANITIZE=$sanitize"
build="${SIGSAFE_BUILD_ROOT:-build}/$name"
cmake -S . -B "$build" $args >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" $select
