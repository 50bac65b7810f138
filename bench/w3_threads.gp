# SPDX-License-Identifier: MIT
# W3 throughput against thread count, one line per backend.
# Usage: gnuplot -e "datafile='w3_threads.dat'; outfile='w3_threads.png'" \
#            [-e "term='png'"] w3_threads.gp
# The data file's first row names the columns: threads, then each backend.
if (!exists("term")) term = "pngcairo"
if (term eq "pngcairo") {
    set terminal pngcairo size 960,600 enhanced font ",10"
} else {
    set terminal png size 960,600
}
set output outfile
set title "W3: alloc+free pairs of 64 B on every thread"
set xlabel "threads"
set ylabel "total throughput, million pairs/s (log scale)"
set logscale y
set grid
set key outside right top
set key autotitle columnheader
stats datafile using 1 nooutput
set xrange [0.8:STATS_max + 0.2]
set xtics 1
# Ten distinct colours (gnuplot's default cycle has eight).
array colour[10] = ["#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", \
                    "#ff7f00", "#a65628", "#f781bf", "#999999", "#17becf"]
do for [k=1:10] { set linetype k lc rgb colour[k] pt 7 }
set linetype cycle 10
headers = system(sprintf("head -n 1 '%s'", datafile))
ncols = words(headers)
# sigsafe stands out; the others are thinner.
plot for [i=2:ncols] datafile using 1:i with linespoints \
     lw (word(headers, i) eq "sigsafe" ? 3.5 : 1.5) lt (i - 1)
