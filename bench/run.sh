#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds sigsafe-bench in Release and runs it (docs/performance.md).
#
#   bench/run.sh [options] [-- bench-args]   the benchmark: writes results.md,
#                                   results.dat, w3_threads.dat and
#                                   w3_threads.png to bench/results/, prints
#                                   the tables
#   bench/run.sh quick [options]    the same, short: checks the harness only
#   bench/run.sh callgrind          instructions per W1 alloc+free pair
#   bench/run.sh strace             sigsafe's steady state makes no system call
#   bench/run.sh region             what a pool costs: create, page tables,
#                                   address space, mappings, fork
#
# Options:
#   --threads N     W3 runs 1..N threads (default: online CPUs; 16 for 1..16)
#   --update-docs   also rewrite the generated results section of
#                   docs/performance.md from what bench/results/ holds
#   --no-deps       do not install missing packages (tools/deps.sh)
#   -- ARGS         passed to sigsafe-bench as they are (see --help)
# Environment: BUILD_DIR (default build/bench), RESULTS_DIR (default
# bench/results), CALLGRIND_ITERS (default 200000), STRACE_ROUNDS (2000).
set -eu
cd "$(dirname "$0")/.."

mode=all
case "${1:-}" in
all|quick|callgrind|strace|region) mode=$1; shift ;;
esac
threads="" update_docs=0 deps=1
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --update-docs) update_docs=1; shift ;;
    --no-deps) deps=0; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

build=${BUILD_DIR:-build/bench}
results=${RESULTS_DIR:-bench/results}
bin=$build/bench/sigsafe-bench
jobs=$(nproc 2>/dev/null || echo 2)

# The peers and tools; each one missing is skipped by the benchmark.
pkgs="g++ libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev libabsl-dev"
case "$mode" in
all|quick) pkgs="$pkgs gnuplot-nox" ;;
region) pkgs="" ;;
callgrind) pkgs="$pkgs valgrind" ;;
strace) pkgs="$pkgs strace" ;;
esac
if [ "$deps" = 1 ]; then
    # shellcheck disable=SC2086
    tools/deps.sh $pkgs ||
        echo "bench/run.sh: packages missing; what needs them is skipped" >&2
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSIGSAFE_BUILD_BENCH=ON \
    -DSIGSAFE_BUILD_TESTS=OFF -DSIGSAFE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target sigsafe_bench sigsafe_region -j "$jobs" \
    >/dev/null
mkdir -p "$results"

# Stop unless the tool a mode runs is installed.
need() {
    if ! command -v "$1" >/dev/null; then
        echo "bench/run.sh: $1 not found" >&2
        exit 1
    fi
}

# Instructions per W1 pair: callgrind's total for N pairs minus its total
# for none (start-up, pool creation, warm-up), divided by N; and the same
# less the harness's own (the loop and the calls, measured with an
# allocator that does nothing).
callgrind_per_pair() { # name, then the benchmark's arguments
    name=$1
    shift
    for k in 0 "$n"; do
        valgrind -q --tool=callgrind \
            --callgrind-out-file="$results/callgrind.$name.$k.out" \
            "$bin" "$@" "$k" --pool-mib 4 >&2 || return 1
    done
    ir0=$(sed -n 's/^summary: *//p' "$results/callgrind.$name.0.out")
    irn=$(sed -n 's/^summary: *//p' "$results/callgrind.$name.$n.out")
    awk -v a="$ir0" -v b="$irn" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }'
}

run_callgrind() {
    n=${CALLGRIND_ITERS:-200000}
    need valgrind
    out=$results/callgrind.md
    harness=$(callgrind_per_pair harness --instr-harness)
    {
        echo "### Instructions per W1 alloc+free pair (callgrind)"
        echo
        echo "| backend | instructions per pair | net of the harness | ratio to tcmalloc |"
        echo "|---|---:|---:|---:|"
    } >"$out"
    rows=""
    tc_net=""
    skipped=""
    for b in sigsafe tcmalloc jemalloc mimalloc glibc treiber; do
        per=$(callgrind_per_pair "$b" --backends "$b" --instr-w1 2>/dev/null) ||
            per=""
        if [ -z "$per" ]; then
            skipped="$skipped $b"
            continue
        fi
        net=$(awk -v a="$per" -v h="$harness" 'BEGIN { printf "%.1f", a - h }')
        [ "$b" = tcmalloc ] && tc_net=$net
        rows="$rows$b $per $net
"
    done
    printf '%s' "$rows" | while read -r b per net; do
        label=$b
        [ "$b" = treiber ] && label="treiber (bare lock-free stack, reference)"
        ratio=$(awk -v a="$net" -v t="$tc_net" \
            'BEGIN { if (t > 0) printf "%.2f×", a / t; else printf "—" }')
        echo "| $label | $per | $net | $ratio |" >>"$out"
    done
    {
        echo
        echo "$n pairs of 64 B, less a run of none.  The harness (the loop"
        echo "and the two calls through function pointers, into an allocator"
        echo "that does nothing) costs $harness a pair; the net column takes"
        echo "it out.  sigsafe's count includes the benchmark's one-line"
        echo "wrapper that passes the pool."
        [ -z "$skipped" ] || echo "Not run under callgrind:$skipped (jemalloc's"
        [ -z "$skipped" ] || echo "library cannot be loaded there: no room in"
        [ -z "$skipped" ] || echo "valgrind's static TLS; or the peer is missing)."
        echo
    } >>"$out"
    if command -v callgrind_annotate >/dev/null; then
        # Paths relative to the checkout: no machine's path in the results.
        callgrind_annotate "$results/callgrind.sigsafe.$n.out" 2>/dev/null |
            sed "s|$PWD/||g" >"$results/callgrind.sigsafe.txt" || true
    fi
    rm -f "$results"/callgrind.*.0.out
    cat "$out"
}

# "calls syscall" per line of an `strace -c` summary.
strace_counts() {
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$1" | sort
}

# Zero system calls in the steady state, shown two ways: `strace -c -f` of a
# warm-up-only run and of warm-up plus a long steady loop count the same
# calls; and a full trace shows nothing between the two markers.
run_strace() {
    n=${STRACE_ROUNDS:-2000}
    need strace
    out=$results/strace.md
    strace -c -f -o "$results/strace.warmup.txt" "$bin" --steady 0 >/dev/null
    strace -c -f -o "$results/strace.steady.txt" "$bin" --steady "$n" >/dev/null
    strace_counts "$results/strace.warmup.txt" >"$results/strace.a"
    strace_counts "$results/strace.steady.txt" >"$results/strace.b"
    extra=$(diff "$results/strace.a" "$results/strace.b" || true)
    strace -f -o "$results/strace.log" "$bin" --steady 200 >/dev/null
    between=$(awk '/steady state ends/ { on = 0 }
                   on { c++ }
                   /steady state begins/ { on = 1 }
                   END { print c + 0 }' "$results/strace.log")
    rm -f "$results/strace.a" "$results/strace.b" "$results/strace.log"
    {
        echo "### System calls in sigsafe's steady state (strace)"
        echo
        echo "After a warm-up (W1, W2 and W6 on a fresh pool), $n rounds of"
        echo "W1 + W2 + W6 (7000 alloc+free pairs a round):"
        echo
        if [ -z "$extra" ]; then
            echo "- \`strace -c -f\`: the same calls as the warm-up-only run"
        else
            echo "- \`strace -c -f\`: **differs** from the warm-up-only run:"
            echo
            echo '```'
            echo "$extra"
            echo '```'
        fi
        echo "- full trace, 200 rounds: $between system calls between" \
            "the markers"
        echo
    } >"$out"
    cat "$out"
    [ -z "$extra" ] && [ "$between" = 0 ]
}

run_bench() {
    set -- ${threads:+--threads "$threads"} "$@"
    [ "$mode" = quick ] && set -- --quick "$@"
    "$bin" --md "$results/results.md" --raw "$results/results.dat" \
        --dat "$results/w3_threads.dat" "$@"
    if command -v gnuplot >/dev/null; then
        term=png
        gnuplot -e "set terminal pngcairo" 2>/dev/null && term=pngcairo
        gnuplot -e "datafile='$results/w3_threads.dat'; \
                    outfile='$results/w3_threads.png'; term='$term'" \
            bench/w3_threads.gp
        echo "bench/run.sh: plot in $results/w3_threads.png" >&2
    else
        echo "bench/run.sh: gnuplot not found; no plot" >&2
    fi
}

# Rewrites the part of docs/performance.md between its two markers.
update_docs() {
    doc=docs/performance.md
    if ! grep -q '<!-- BEGIN GENERATED RESULTS' "$doc" ||
        ! grep -q '<!-- END GENERATED RESULTS' "$doc"; then
        echo "bench/run.sh: $doc has no results markers" >&2
        exit 1
    fi
    part=$(mktemp)
    {
        echo
        echo "Generated by \`bench/run.sh --update-docs\`" \
            "on $(date -u +%Y-%m-%d)."
        echo
        [ -f "$results/results.md" ] && cat "$results/results.md"
        # Linked only from the default place, the one the docs can name.
        [ "$results" = bench/results ] && [ -f "$results/w3_threads.png" ] &&
            printf '![W3 throughput by thread count](%s)\n\n' \
                ../bench/results/w3_threads.png
        [ -f "$results/callgrind.md" ] && cat "$results/callgrind.md"
        [ -f "$results/strace.md" ] && cat "$results/strace.md"
        [ -f "$results/region.md" ] && cat "$results/region.md"
    } >"$part"
    awk -v part="$part" '
        /<!-- BEGIN GENERATED RESULTS/ {
            print
            while ((getline l < part) > 0) print l
            skip = 1
            next
        }
        /<!-- END GENERATED RESULTS/ { skip = 0 }
        !skip { print }' "$doc" >"$part.doc"
    mv "$part.doc" "$doc"
    rm -f "$part"
    echo "bench/run.sh: updated $doc" >&2
}

status=0
case "$mode" in
all|quick) run_bench "$@" ;;
callgrind) run_callgrind ;;
strace) run_strace || status=1 ;;
region) "$build/bench/sigsafe-region" --md "$results/region.md" ;;
esac
[ "$update_docs" = 1 ] && update_docs
exit $status
