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
#   tools/test.sh fuzz     the libFuzzer target (clang, ASan+UBSan) for
#                          $SIGSAFE_FUZZ_SECONDS (default 60), then its
#                          corpus and regressions
#   tools/test.sh memcheck the suites under valgrind memcheck, with the
#                          library's valgrind hooks on
#   tools/test.sh coverage the suite built with gcc --coverage (-O0), then
#                          a gcovr report of lib/ in build/coverage/report/
#   tools/test.sh aarch64  the suite cross-built for aarch64 (Debian's
#                          gcc-aarch64-linux-gnu) and run under qemu-user
#   tools/test.sh musl     the library built with musl-gcc and the tests
#                          that need no glibc-only library (test/musl/)
# (docs/testing.md says what each runs.)
# Words combine (tools/test.sh clang Os, tools/test.sh clang tsan); each
# combination builds in its own directory, build/<words> (the root is
# $SIGSAFE_BUILD_ROOT, default build).
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- default

usage() {
    echo "usage: tools/test.sh [gcc|clang] [O0|O2|Os]" \
        "[asan|tsan|stress|fuzz|memcheck|coverage|aarch64|musl]" >&2
    exit 2
}
build_type=RelWithDebInfo
cc=
sanitize=
select="-LE stress"
name=
verify=
targets=
platform=
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
    # Verification (docs/testing.md).
    fuzz) cc=clang sanitize=address,undefined verify=fuzz select="-L fuzz"
        targets="--target fuzz_pools fuzz_replay" ;;
    memcheck) verify=memcheck select="-L memcheck|valgrind" ;;
    coverage) verify=coverage build_type=Debug
        select="-LE stress|install|memcheck|valgrind" ;;
    # Platforms (docs/testing.md): gcc only.
    aarch64 | musl) platform=$word ;;
    *) usage ;;
    esac
    name="${name:+$name-}$word"
done
# A platform word takes gcc, without sanitizers or verification.
[ -z "$platform" ] || [ -z "$cc$sanitize$verify" ] || usage

case "$platform" in
aarch64) tools/deps.sh ;; # the host's own tools: cmake, pkg-config
musl) tools/deps.sh musl-tools ;;
*) tools/deps.sh $cc ;;
esac
if [ "$platform" = aarch64 ]; then
    # The cross compiler, qemu-user, and Check, libsigsegv and libc for
    # arm64 from Debian's multiarch archive (idempotent).
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [ "$(id -u)" != 0 ]; then
            echo "sigsafe: run: sudo dpkg --add-architecture arm64" >&2
            exit 1
        fi
        dpkg --add-architecture arm64
    fi
    tools/deps.sh gcc-aarch64-linux-gnu qemu-user libc6:arm64 \
        libc6-dev:arm64 check:arm64 libsigsegv-dev:arm64
fi
case "$verify" in
memcheck) tools/deps.sh valgrind ;;
coverage) tools/deps.sh gcovr ;;
esac
if [ "$cc" = clang ] && [ -n "$sanitize" ]; then
    # clang's sanitizer runtimes (libclang-rt-14-dev on Debian 12).
    major=$(clang -dumpversion | cut -d. -f1)
    tools/deps.sh "libclang-rt-$major-dev"
fi

jobs=$(nproc 2>/dev/null || echo 2)
args="-DCMAKE_BUILD_TYPE=$build_type -DSIGSAFE_WERROR=ON"
[ -z "$cc" ] || args="$args -DCMAKE_C_COMPILER=$cc"
[ -z "$sanitize" ] || args="$args -DSIGSAFE_SANITIZE=$sanitize"
case "$platform" in
aarch64) toolchain=$PWD/cmake/toolchain-aarch64-linux-gnu.cmake
    args="$args -DCMAKE_TOOLCHAIN_FILE=$toolchain" ;;
musl) args="$args -DCMAKE_C_COMPILER=musl-gcc" ;;
esac
case "$verify" in
fuzz) args="$args -DSIGSAFE_BUILD_FUZZ=ON" ;;
memcheck) args="$args -DSIGSAFE_VALGRIND=ON" ;;
coverage) args="$args -DSIGSAFE_COVERAGE=ON" ;;
esac
build="${SIGSAFE_BUILD_ROOT:-build}/$name"
source=.
# musl: Check is not packaged for musl; test/musl/ builds sigsafe with its
# own runner.
[ "$platform" != musl ] || source=test/musl
cmake -S "$source" -B "$build" $args >/dev/null
cmake --build "$build" -j "$jobs" $targets
[ "$verify" != coverage ] || find "$build" -name '*.gcda' -delete
ctest --test-dir "$build" --output-on-failure -j "$jobs" $select
if [ "$platform" = aarch64 ]; then
    # What the emulator cannot run, with the reason (docs/testing.md).
    grep -h -E "^[a-z_]+: .*(skipped|not checked) under|^SKIP: under" \
        "$build/Testing/Temporary/LastTest.log" | sort -u || true
fi
if [ "$verify" = fuzz ]; then
    # After the corpus and regressions replayed clean (above), a
    # bounded run from the seed corpus; what it learns stays in
    # $build/corpus, a failing input in $build/artifacts.
    mkdir -p "$build/corpus" "$build/artifacts"
    "$build/test/fuzz_pools" -max_total_time="${SIGSAFE_FUZZ_SECONDS:-60}" \
        -max_len=4096 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/" \
        "$build/corpus" test/fuzz/corpus
fi
if [ "$verify" = coverage ]; then
    mkdir -p "$build/report"
    gcovr --root . --filter 'lib/' --object-directory "$build" \
        --exclude-unreachable-branches --print-summary \
        --txt "$build/report/coverage.txt" \
        --html-details "$build/report/index.html" "$build"
fi
