# SPDX-License-Identifier: MIT
# Draws docs/pool-layout.svg, the picture of a pool's layout in design.md.
#   cd docs && gnuplot pool-layout.gp
# (gnuplot -e "png=1" pool-layout.gp writes pool-layout.png instead.)
# Not to scale: a span is 64 KiB, a guard page 4 KiB.

if (exists("png")) {
    set terminal pngcairo size 1100,600 noenhanced font "DejaVu Sans,11" background "white"
    set output "pool-layout.png"
} else {
    set terminal svg size 1100,600 name "sigsafe_pool_layout" noenhanced font "DejaVu Sans,11" background "white"
    set output "pool-layout.svg"
}
unset border; unset tics; unset key
set lmargin 0; set rmargin 0; set tmargin 0; set bmargin 0
set xrange [0:110]; set yrange [0:60]

meta = "#5b8fd9"; meta2 = "#8fb3e8"
block = "#7cc47f"; spare = "#e6e6e6"; guard = "#d9534f"; guardbg = "#f6d3d2"
n = 0
box(x1, y1, x2, y2, c) = sprintf("set object %d rect from %g,%g to %g,%g fc rgb '%s' fs solid 1.0 border lc rgb '#333333' lw 0.6", n = n + 1, x1, y1, x2, y2, c)
hatch(x1, y1, x2, y2) = sprintf("set object %d rect from %g,%g to %g,%g fc rgb '%s' fs pattern 2 border lc rgb '#333333' lw 0.6", n = n + 1, x1, y1, x2, y2, guard)
guardbox(x1, y1, x2, y2) = box(x1, y1, x2, y2, guardbg) . "; " . hatch(x1, y1, x2, y2)
zoom(x1, y1, x2, y2) = sprintf("set arrow from %g,%g to %g,%g nohead dt 2 lc rgb '#888888'", x1, y1, x2, y2)

set label "One pool = one mmap reservation, laid out once, at create (not to scale)" at 1,57.5 left font ",13"

# ------------------------------------------------- row 1: the reservation
y1 = 44; y2 = 51
eval box(1, y1, 5.5, y2, meta)
eval box(5.5, y1, 10.5, y2, meta2)
eval box(10.5, y1, 14, y2, meta)
eval box(14, y1, 17.5, y2, meta2)
eval guardbox(17.5, y1, 20, y2)
do for [i = 0:3] {                       # spans: blocks, then a guard page
    x = 20 + i * 10
    eval box(x, y1, x + 8.6, y2, i == 3 ? spare : block)
    eval guardbox(x + 8.6, y1, x + 10, y2)
}
set label "span 0" at 24.3,47.5 center
set label "span 1" at 34.3,47.5 center
set label "span 2" at 44.3,47.5 center
set label "…" at 61.5,47.5 center font ",16"
do for [c = 0:2] {                       # large classes: slot, guard, ...
    x = 63 + c * 15
    do for [s = 0:2] {
        eval box(x + s * 5, y1, x + s * 5 + 3.8, y2, s == 2 ? spare : block)
        eval guardbox(x + s * 5 + 3.8, y1, x + s * 5 + 5, y2)
    }
}
set label "…" at 109,47.5 center font ",16"

set label "metadata, out of band" at 9.25,52.5 center font ",10" tc rgb "#1f4e9c"
set label "not yet carved" at 54.3,52.5 center font ",9"
set label "class 36 (20 KiB)" at 70.5,52.5 center font ",9"
set label "class 37 (24 KiB)" at 85.5,52.5 center font ",9"
set label "class 38 (28 KiB)" at 100.5,52.5 center font ",9"
set label "header" at 3.25,42.5 center font ",9"
set label "span" at 8,42.5 center font ",9"
set label "headers" at 8,41 center font ",9"
set label "links" at 12.25,42.5 center font ",9"
set label "block" at 15.75,42.5 center font ",9"
set label "states" at 15.75,41 center font ",9"
set label "small area: 64 KiB-aligned spans, one size class each (16 B … 16 KiB)" at 39,38.5 center font ",10"
set label "large blocks: one area per size class, one slot per block" at 86,38.5 center font ",10"

# ----------------------------------------------- row 2, left: one span
z1 = 20; z2 = 27
eval zoom(30, y1, 2, z2)
eval zoom(38.6, y1, 54, z2)
eval box(2, z1, 7, z2, spare)
do for [b = 0:7] {
    eval box(7 + b * 5, z1, 12 + b * 5, z2, block)
}
eval guardbox(47, z1, 54, z2)
set label "slack" at 4.5,23.5 center font ",9"
set label "0" at 9.5,23.5 center font ",9"
set label "1" at 14.5,23.5 center font ",9"
set label "2" at 19.5,23.5 center font ",9"
set label "…" at 24.5,23.5 center font ",14"
set label "last" at 44.5,23.5 center font ",9"
set label "guard" at 50.5,24.3 center font ",9"
set label "page" at 50.5,22.7 center font ",9"
set label "one span: 60 KiB of blocks of one size class," at 2,17 left font ",10"
set label "packed against its guard page: a one-byte overrun" at 2,15.3 left font ",10"
set label "of the last block faults.  Free-list links and block" at 2,13.6 left font ",10"
set label "states are in the metadata, never in the blocks." at 2,11.9 left font ",10"

# ---------------------------------------- row 2, right: one large class
eval zoom(63, y1, 58, z2)
eval zoom(78, y1, 109, z2)
do for [s = 0:2] {
    x = 58 + s * 17
    eval box(x, z1, x + 13, z2, s == 2 ? spare : block)
    eval guardbox(x + 13, z1, x + 17, z2)
}
set label "20 KiB block" at 64.5,23.5 center font ",9"
set label "20 KiB block" at 81.5,23.5 center font ",9"
set label "uncarved" at 98.5,23.5 center font ",9"
set label "one large class: each block on pages of its own," at 58,17 left font ",10"
set label "followed by a guard page.  SIGSAFE_POOL_GUARD_EACH" at 58,15.3 left font ",10"
set label "lays out every block of the pool this way, so that" at 58,13.6 left font ",10"
set label "p + sigsafe_usable_size(p) faults for every block." at 58,11.9 left font ",10"

# ----------------------------------------------------------------- legend
lx = 2; ly = 2.5
eval box(lx, ly, lx + 3, ly + 2.6, meta)
set label "metadata (read-write)" at lx + 4,ly + 1.3 left font ",10"
eval box(lx + 24, ly, lx + 27, ly + 2.6, block)
set label "blocks" at lx + 28,ly + 1.3 left font ",10"
eval guardbox(lx + 38, ly, lx + 41, ly + 2.6)
set label "guard page (MADV_GUARD_INSTALL, or PROT_NONE)" at lx + 42,ly + 1.3 left font ",10"
eval box(lx + 82, ly, lx + 85, ly + 2.6, spare)
set label "reserved, untouched" at lx + 86,ly + 1.3 left font ",10"

plot NaN notitle
