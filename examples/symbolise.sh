#!/bin/sh
# SPDX-License-Identifier: MIT
# Names the frames of a crash report written by the example crash reporter,
# after the fact, with addr2line (binutils).  A signal handler cannot do it
# safely: reading symbol tables and debug information takes locks and
# memory.  The report lists the modules' paths; each frame gives the module
# and a file offset.
#   examples/symbolise.sh REPORT
set -eu
[ $# -eq 1 ] || { echo "usage: $0 REPORT" >&2; exit 2; }
command -v addr2line >/dev/null 2>&1 ||
    { echo "symbolise: addr2line (binutils) is needed" >&2; exit 1; }

# "N PATH OFFSET" for each frame of the backtrace that names a module.
awk '
/^modules:/ { in_modules = 1; next }
in_modules && /^  \// {
    path = $1; base = path; sub(/.*\//, "", base); module[base] = path; next
}
in_modules { in_modules = 0 }
/^ +#[0-9]+ +0x[0-9a-f]+ +[^ ?]+\+0x[0-9a-f]+$/ {
    n = $1; sub(/#/, "", n); split($3, at, "+"); frame[++nframes] = n " " at[1] " " at[2]
}
END {
    for (i = 1; i <= nframes; i++) {
        split(frame[i], f, " ")
        if (f[2] in module) print f[1], module[f[2]], f[3]
    }
}' "$1" | while read -r n path offset; do
    # -f: the function's name; -C: demangled.  Then file:line.
    # shellcheck disable=SC2046 # split into words on purpose
    set -- $(addr2line -f -C -e "$path" "$offset" 2>/dev/null | tr '\n' ' ')
    func=${1:-??} where=${2:-??}
    case "$where" in
    "??"*) where=${path##*/} ;; # no line information: the module
    *) where=${where##*/} ;;
    esac
    printf '  #%-2s %s  (%s)\n' "$n" "$func" "$where"
done
