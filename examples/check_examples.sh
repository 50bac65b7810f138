#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs one example case and checks what it prints, writes and how it exits.
#   check_examples.sh crash KIND CRASH_REPORTER
#   check_examples.sh profile top|drops SAMPLING_PROFILER
# Exit 0: pass; 1: fail (with the reason and the program's output);
# 77: skipped (with the reason).
set -u
mode=$1 kind=$2 exe=$3
# A cross build's emulator (qemu-user) runs the program; the architecture
# is the program's.
emulator=${SIGSAFE_TEST_EMULATOR:-}
arch=${SIGSAFE_TEST_ARCH:-$(uname -m)}

dir=$(mktemp -d "${TMPDIR:-/tmp}/sigsafe-example.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
# shellcheck disable=SC3045 # dash and bash both have ulimit -c
ulimit -c 0 2>/dev/null # the crashes are on purpose: no core files

failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}
# has FILE REGEX WHAT: FILE has a line matching the extended REGEX.
has() {
    grep -Eq -- "$2" "$1" || fail "$3 (no line matching /$2/ in $(basename "$1"))"
}
show() {
    for f in "$@"; do
        echo "--- $(basename "$f"):"
        cat "$f"
    done
}
skip() {
    echo "SKIP: $*"
    exit 77
}

# ------------------------------------------------------------ the profiler
if [ "$mode" = profile ]; then
    case "$kind" in
    top) args="--threads 4 --seconds 1" ;;
    drops) args="--threads 2 --seconds 1 --pool-bytes 16384" ;;
    *) echo "unknown case $kind"; exit 2 ;;
    esac
    # shellcheck disable=SC2086 # args is a word list
    # shellcheck disable=SC2086 # emulator is a command and its options
    $emulator "$exe" $args >"$dir/out" 2>"$dir/err"
    status=$?
    [ "$status" -eq 0 ] || fail "exit status $status, expected 0"
    has "$dir/out" '^samples: [1-9][0-9]* taken' "no samples taken"
    if [ "$kind" = top ]; then
        has "$dir/out" '^hottest function: workload_hot ' \
            "workload_hot is not the hottest function"
    else
        has "$dir/out" '^samples: [0-9]+ taken, [1-9][0-9]* dropped' \
            "a full pool dropped no samples"
        has "$dir/out" '^hottest function: ' "no profile after drops"
    fi
    if [ "$failed" = 0 ]; then
        grep -E '^(samples|hottest)' "$dir/out"
        exit 0
    fi
    show "$dir/out" "$dir/err"
    exit 1
fi

# ------------------------------------------------------ the crash reporter
case "$kind" in
segv | stackoverflow | raise | overflow | in-malloc) sig=11 name=SIGSEGV ;;
abort) sig=6 name=SIGABRT ;;
fpe) sig=8 name=SIGFPE ;;
*) echo "unknown case $kind"; exit 2 ;;
esac

# What qemu-user cannot show (docs/testing.md).
if [ -n "$emulator" ]; then
    case "$kind" in
    stackoverflow)
        skip "under qemu-user: it maps the program's stack with a PROT_NONE" \
            "page of its own below it, so the fault lies in a mapping and" \
            "libsigsegv does not take it for a stack overflow" ;;
    esac
fi

report="$dir/report.txt"
# shellcheck disable=SC2086 # emulator is a command and its options
$emulator "$exe" --demo "$kind" --report "$report" >"$dir/out" 2>"$dir/err"
status=$?
if [ "$status" -eq 77 ]; then
    skip "$(grep -h skipped "$dir/err" "$dir/out" | head -n 1)"
fi

[ "$status" -eq $((128 + sig)) ] ||
    fail "exit status $status, expected $((128 + sig)) (death by $name)"
err="$dir/err"
has "$err" '^\*\*\* crash report: ' "no report on stderr"
has "$err" "^signal: +$name \\($sig\\), " "the report does not name $name"
has "$err" '^registers:' "no registers"
frames=$(grep -Ec '^ +#[0-9]+ +0x[0-9a-f]+' "$err")
[ "$frames" -ge 2 ] || fail "backtrace has $frames frames, expected 2 or more"
has "$err" '^pool "crash" \(this report.s memory\): capacity [0-9]+, in use [1-9]' \
    "no pool statistics"
has "$err" '^memory map around 0x[0-9a-f]+:' "no memory map section"
has "$err" '^ +(=> )?[0-9a-f]+-[0-9a-f]+ [-r][-w][-x][ps] ' "no /proc/self/maps lines"
has "$err" '^\*\*\* end of crash report \*\*\*' "the report is incomplete"
has "$err" "^crash report saved to $report\$" "no 'saved to' line"
if [ -f "$report" ]; then
    has "$report" "^signal: +$name " "the report file lacks the signal"
    has "$report" '^\*\*\* end of crash report \*\*\*' "the report file is incomplete"
else
    fail "no report file at $report"
fi
[ ! -e "$report.tmp" ] || fail "the temporary file was left behind"

case "$kind" in
segv)
    has "$err" '^signal: +SIGSEGV \(11\), SEGV_MAPERR' "not SEGV_MAPERR"
    has "$err" '^address: +0x0$' "fault address is not 0"
    has "$err" '^ +#0 +0x[0-9a-f]+ +crash_reporter\+0x' "frame #0 is not in the program"
    ;;
abort) has "$err" '^signal: +SIGABRT \(6\), SI_TKILL' "not raised by abort" ;;
fpe)
    case "$arch" in
    x86_64) has "$err" 'FPE_INTDIV' "not an integer division by zero" ;;
    esac
    ;;
stackoverflow)
    has "$err" '^cause: +stack overflow' "the stack overflow was not recognised"
    ;;
raise) has "$err" '^signal: +SIGSEGV \(11\), SI_TKILL' "not the raised SIGSEGV" ;;
overflow)
    hex='0x[0-9a-f]+'
    has "$err" "^sigsafe: guard: pool=\"guarded\" kind=overflow fault=$hex block=$hex size=[0-9]+ offset=[0-9]+\$" \
        "no guard line"
    ;;
in-malloc)
    has "$err" '^naive handler: hung, killed after 2 s$' "the naive handler did not hang"
    has "$err" '^ +#[0-9]+ +0x[0-9a-f]+ +libc\.so' "no frame inside libc"
    ;;
esac

if [ "$failed" = 0 ]; then
    echo "ok: $name report with $frames frames, saved to a file"
    exit 0
fi
show "$dir/out" "$dir/err"
[ -f "$report" ] && show "$report"
exit 1
