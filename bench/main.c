/* SPDX-License-Identifier: MIT */
/*
 * sigsafe-bench: the driver.  Runs every available backend over every
 * workload, repetition by repetition (each repetition visits every backend
 * in turn, so drift on the machine spreads evenly), and reports medians as
 * a markdown report, a W3 data file for gnuplot and a raw data file.
 *
 *   sigsafe-bench [options]        the benchmark (see usage())
 *   sigsafe-bench --instr-w1 N     W1 only, for callgrind
 *   sigsafe-bench --steady N       a marked steady state, for strace
 */
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sigsafe.h>

#include "bench.h"

extern char **environ;

enum { W1, W2, W3, W4, W5, W6, MEM, NWORK };
static const char *const work_name[NWORK] = {"w1", "w2", "w3", "w4",
                                             "w5", "w6", "mem"};

#define MAX_REPS 101
#define MAX_T 256
#define NB 16 /* room for the backends table */

/* Options. */
static unsigned opt_reps = 5;
static unsigned opt_threads;
static double opt_scale = 1.0;
static int opt_work[NWORK] = {1, 1, 1, 1, 1, 1, 1};
static int opt_use[NB];
static int opt_backends_given;
static const char *opt_md, *opt_dat, *opt_raw;
static bench_params par = {
    .w1_iters = 5000000, .w2_rounds = 5000, .w3_iters = 2000000,
    .w4_blocks = 2000000, .w5_runs = 20000, .w6_records = 5000000,
    .min_time = 0.1,
};
static uint64_t mem_rounds = 50;

/* Results: one value per repetition. */
static double r_ns[NB][NWORK][MAX_REPS];
static double r3_ns[NB][MAX_T + 1][MAX_REPS], r3_mops[NB][MAX_T + 1][MAX_REPS];
static double r5_clock[MAX_REPS];
static uint64_t iters[NB][NWORK], iters3[NB][MAX_T + 1];
static int failed[NB][NWORK];
typedef struct mem_result {
    int ok;
    size_t peak_live, rss_delta, mapped, peak_in_use;
} mem_result;
static mem_result mem[NB];

static void usage(FILE *f)
{
    fprintf(f,
"usage: sigsafe-bench [options]\n"
"  --backends LIST   comma-separated subset of:");
    for (size_t i = 0; i < bench_nbackends; i++)
        fprintf(f, " %s", bench_backends[i].name);
    fprintf(f, "\n"
"  --workloads LIST  comma-separated subset of: w1 w2 w3 w4 w5 w6 mem\n"
"  --threads N       W3 runs 1..N threads (default: online CPUs)\n"
"  --reps N          repetitions; medians are reported (default 5)\n"
"  --min-time S      seconds one repetition should last (default 0.1)\n"
"  --w5-runs N       W5 handler runs per repetition (default 20000)\n"
"  --scale X         multiply every iteration cap by X (default 1)\n"
"  --quick           3 repetitions of about 10 ms each: checks, not numbers\n"
"  --pool-mib N      capacity of sigsafe's pool for the run (default 64)\n"
"  --md FILE         also write the markdown report to FILE\n"
"  --dat FILE        write W3 throughput by thread count (gnuplot data)\n"
"  --raw FILE        write every median: backend workload threads value unit\n"
"  --instr-harness N the same with an allocator that does nothing: what\n"
"                    the harness alone costs\n"
"  --instr-w1 N      one backend (the first of --backends, else sigsafe):\n"
"                    warm up, run N W1 pairs, exit (callgrind)\n"
"  --steady N        sigsafe only: warm up, print a marker, run N rounds of\n"
"                    W1+W2+W6, print a marker (strace)\n");
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sigsafe-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static int bidx(const bench_backend *b)
{
    return (int)(b - bench_backends);
}

static void parse_list(const char *arg, int is_work)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", arg);
    if (is_work)
        memset(opt_work, 0, sizeof opt_work);
    else
        memset(opt_use, 0, sizeof opt_use);
    for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
        if (is_work) {
            int k = 0;
            while (k < NWORK && strcmp(work_name[k], s) != 0)
                k++;
            if (k == NWORK)
                die("unknown workload '%s'", s);
            opt_work[k] = 1;
        } else {
            bench_backend *b = bench_backend_find(s);
            if (!b)
                die("unknown backend '%s'", s);
            opt_use[bidx(b)] = 1;
        }
    }
}

static double median(double *v, unsigned n)
{
    /* insertion sort: n is a handful of repetitions */
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    if (!n)
        return -1;
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * jemalloc uses initial-exec TLS, which a dlopen'ed library may only have
 * from glibc's static TLS surplus; the default surplus is too small for it.
 * Restart once with a larger surplus (a glibc tunable, read at start-up).
 */
static void ensure_static_tls(char **argv)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.rtld.optional_static_tls"))
        return;
    char val[1024];
    snprintf(val, sizeof val, "%s%sglibc.rtld.optional_static_tls=16384",
             t ? t : "", t && *t ? ":" : "");
    setenv("GLIBC_TUNABLES", val, 1);
    execv("/proc/self/exe", argv);
    /* If that failed, go on: jemalloc will be reported as skipped. */
}

/* ----------------------------------------------------- one measurement */

static uint64_t cap_of(int w)
{
    uint64_t c = 0;
    switch (w) {
    case W1: c = par.w1_iters; break;
    case W2: c = par.w2_rounds; break;
    case W3: c = par.w3_iters; break;
    case W4: c = par.w4_blocks; break;
    case W6: c = par.w6_records; break;
    }
    c = (uint64_t)((double)c * opt_scale);
    return c ? c : 1;
}

/* Runs workload w once with n iterations; ns per op, < 0 on failure. */
static double run_once(const bench_backend *b, int w, unsigned t, uint64_t n,
                       double *mops)
{
    switch (w) {
    case W1: return bench_w1(b, n);
    case W2: return bench_w2(b, n);
    case W3: return bench_w3(b, t, n, mops);
    case W4: return bench_w4(b, n);
    case W6: return bench_w6(b, n);
    }
    return -1;
}

/*
 * Picks the iteration count so that a repetition lasts about min_time,
 * within [1/1000 of the cap, the cap].  The probe doubles as the warm-up.
 */
static uint64_t calibrate(const bench_backend *b, int w, unsigned t)
{
    uint64_t cap = cap_of(w), probe = cap / 1000 ? cap / 1000 : 1;
    double mops, ns = run_once(b, w, t, probe, &mops);
    if (ns < 0)
        return 0;
    double per = w == W2 ? ns * 1000 : ns; /* W2 counts rounds of 1000 */
    double want = par.min_time * 1e9 / (per > 1 ? per : 1);
    if (w == W3)
        want = par.min_time * 1e9 / (1e3 / mops) / t; /* per thread */
    uint64_t n = (uint64_t)want;
    if (n < probe)
        n = probe;
    if (n > cap)
        n = cap;
    return n;
}

static int in_work(const bench_backend *b, int w)
{
    if (!b->ok)
        return 0;
    if (w == W5)
        return (b->flags & (BK_HANDLER | BK_UNSAFE)) != 0;
    if (b->flags & BK_FIXED64)
        return w == W1 || w == W3 || w == W4;
    return 1;
}

/* ------------------------------------------------------ W2 memory child */

static int mem_child(const char *name)
{
    bench_backend *b = bench_backend_find(name);
    if (!b || b->setup(b))
        return 1;
    /* Warm the backend up so its own start-up is not counted. */
    void *p = b->alloc(64);
    if (p)
        b->free(p);
    size_t live, rss, mapped = 0, peak = 0;
    if (bench_w2_memory(b, mem_rounds, &live, &rss))
        return 1;
    if (bench_sigsafe_stats(&mapped, &peak) || strcmp(name, "sigsafe") != 0)
        mapped = peak = 0;
    printf("mem %s %zu %zu %zu %zu\n", name, live, rss, mapped, peak);
    return 0;
}

/* Runs the memory measurement of b in a fresh process of this program. */
static void mem_spawn(bench_backend *b)
{
    int fds[2];
    if (pipe(fds))
        return;
    char rounds[32], pool[32];
    snprintf(rounds, sizeof rounds, "%llu", (unsigned long long)mem_rounds);
    snprintf(pool, sizeof pool, "%zu", bench_pool_capacity >> 20);
    char *argv[] = {"sigsafe-bench", "--mem", (char *)b->name, "--mem-rounds",
                    rounds, "--pool-mib", pool, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (err) {
        close(fds[0]);
        return;
    }
    char buf[256] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 &&
           (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    mem_result *m = &mem[bidx(b)];
    char nm[32];
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
        sscanf(buf, "mem %31s %zu %zu %zu %zu", nm, &m->peak_live,
               &m->rss_delta, &m->mapped, &m->peak_in_use) == 5)
        m->ok = 1;
}

/* ------------------------------------------------------------- report */

static FILE *md;

static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (md) {
        va_start(ap, fmt);
        vfprintf(md, fmt, ap);
        va_end(ap);
    }
}

static void cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (c && strncmp(line, "model name", 10) == 0) {
            c += 1 + (c[1] == ' ');
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, n, "%s", c);
            break;
        }
    }
    fclose(f);
}

static double med_ns(int i, int w)
{
    return median(r_ns[i][w], opt_reps);
}

/* "12.3 (0.85x)" with the ratio to glibc, or a dash. */
static void cell(char *buf, size_t n, int i, int w, double v, double glibc)
{
    if (!in_work(&bench_backends[i], w) || failed[i][w] || v < 0)
        snprintf(buf, n, "%s", failed[i][w] ? "failed" : "—");
    else if (glibc > 0)
        snprintf(buf, n, "%.1f (%.2f×)", v, v / glibc);
    else
        snprintf(buf, n, "%.1f", v);
}

static void report(unsigned maxt, unsigned w5_runs)
{
    const int g = bidx(bench_backend_find("glibc"));
    const int gok = bench_backends[g].ok && opt_use[g];
    char cpu[128], c[6][48];
    struct utsname u;
    uname(&u);
    cpu_model(cpu, sizeof cpu);

    out("### Set-up\n\n");
    out("- CPU: %s, %ld online CPUs; Linux %s; glibc %s\n", cpu,
        sysconf(_SC_NPROCESSORS_ONLN), u.release, gnu_get_libc_version());
    out("- %u repetition%s, each about %.3g s; every number is the median "
        "over the repetitions\n", opt_reps, opt_reps == 1 ? "" : "s",
        par.min_time);
    out("- versions:");
    const char *sep = " ";
    for (size_t i = 0; i < bench_nbackends; i++)
        if (opt_use[i] && bench_backends[i].ok &&
            bench_backends[i].version[0]) {
            out("%s%s %s", sep, bench_backends[i].name,
                bench_backends[i].version);
            sep = ", ";
        }
    out("\n");
    for (size_t i = 0; i < bench_nbackends; i++)
        if (opt_use[i] && !bench_backends[i].ok)
            out("- not run: %s (%s)\n", bench_backends[i].name,
                bench_backends[i].why ? bench_backends[i].why
                                      : "set-up failed");
    char sum[200];
    int bad = bench_sigsafe_summary(sum, sizeof sum);
    if (bad >= 0)
        out("- sigsafe's pool after the run (%zu MiB): %s%s\n",
            bench_pool_capacity >> 20, sum,
            bad ? " — **not a clean run: check the harness**" : "");
    out("\n");

    out("### ns per alloc+free pair (ratio to glibc malloc; lower is "
        "better)\n\n");
    out("| backend | W1 64 B | W2 random 16..1024 B | W3 %u threads, ns per "
        "thread | W3 %u threads, Mops/s | W4 cross-thread | W6 profiler "
        "records |\n", maxt, maxt);
    out("|---|---:|---:|---:|---:|---:|---:|\n");
    double gw[NWORK] = {0}, g3 = 0;
    if (gok) {
        for (int w = 0; w < NWORK; w++)
            gw[w] = opt_work[w] && w != W3 ? med_ns(g, w) : 0;
        if (opt_work[W3])
            g3 = median(r3_ns[g][maxt], opt_reps);
    }
    for (size_t i = 0; i < bench_nbackends; i++) {
        const bench_backend *b = &bench_backends[i];
        if (!opt_use[i] || !b->ok)
            continue;
        const int ws[5] = {W1, W2, W3, W4, W6};
        for (int k = 0; k < 5; k++) {
            int w = ws[k];
            if (!opt_work[w]) {
                snprintf(c[k], sizeof c[k], "—");
                continue;
            }
            double v = w == W3 ? median(r3_ns[i][maxt], opt_reps)
                               : med_ns((int)i, w);
            cell(c[k], sizeof c[k], (int)i, w, v, w == W3 ? g3 : gw[w]);
        }
        if (opt_work[W3] && in_work(b, W3) && !failed[i][W3])
            snprintf(c[5], sizeof c[5], "%.1f",
                     median(r3_mops[i][maxt], opt_reps));
        else
            snprintf(c[5], sizeof c[5], "—");
        out("| %s | %s | %s | %s | %s | %s | %s |\n", b->label, c[0], c[1],
            c[2], c[5], c[3], c[4]);
    }
    out("\n");

    if (opt_work[W3]) {
        out("### W3: total throughput, Mops/s, by thread count\n\n");
        out("| backend |");
        for (unsigned t = 1; t <= maxt; t++)
            out(" %u |", t);
        out("\n|---|");
        for (unsigned t = 1; t <= maxt; t++)
            out("---:|");
        out("\n");
        for (size_t i = 0; i < bench_nbackends; i++) {
            if (!opt_use[i] || !in_work(&bench_backends[i], W3) ||
                failed[i][W3])
                continue;
            out("| %s |", bench_backends[i].label);
            for (unsigned t = 1; t <= maxt; t++)
                out(" %.1f |", median(r3_mops[i][t], opt_reps));
            out("\n");
        }
        out("\n");
    }

    if (opt_work[W5]) {
        double clk = median(r5_clock, opt_reps);
        int ts = bidx(bench_backend_find("treiber"));
        double ref = opt_use[ts] && bench_backends[ts].ok && !failed[ts][W5]
                         ? med_ns(ts, W5) - clk
                         : -1;
        out("### W5: ns per handler run (4 allocations of 64..512 B + 4 "
            "frees, inside a SIGPROF handler)\n\n");
        out("| backend | safe in a handler | ns per run | ratio to the bare "
            "lock-free stack |\n|---|---|---:|---:|\n");
        for (size_t i = 0; i < bench_nbackends; i++) {
            const bench_backend *b = &bench_backends[i];
            if (!opt_use[i] || !in_work(b, W5))
                continue;
            const char *safe = b->flags & BK_UNSAFE ? "**NO — unsafe, "
                                                      "reference only**"
                               : b->flags & BK_REFERENCE ? "reference"
                                                         : "yes";
            if (failed[i][W5]) {
                out("| %s | %s | failed | — |\n", b->label, safe);
                continue;
            }
            double v = med_ns((int)i, W5) - clk;
            if (ref > 0)
                out("| %s | %s | %.1f | %.2f× |\n", b->label, safe, v,
                    v / ref);
            else
                out("| %s | %s | %.1f | — |\n", b->label, safe, v);
        }
        out("\nThe mean of the middle 80 %% of %u handler runs per "
            "repetition (the clock may tick in 10 ns steps: a median would "
            "round to them); the cost of the two clock reads (%.1f ns, an "
            "empty handler's, taken the same way) is subtracted. Target: "
            "sigsafe ≤ the bare shared lock-free stack.\n\n", w5_runs, clk);
    }

    if (opt_work[MEM]) {
        out("### W2 memory: bytes used against peak live bytes (%llu rounds "
            "of 1000 blocks, each filled)\n\n", (unsigned long long)mem_rounds);
        out("| backend | peak live bytes | RSS growth | overhead (RSS / "
            "live) |\n|---|---:|---:|---:|\n");
        const mem_result *ss_mem = NULL;
        for (size_t i = 0; i < bench_nbackends; i++) {
            const bench_backend *b = &bench_backends[i];
            if (!opt_use[i] || !in_work(b, MEM))
                continue;
            mem_result *m = &mem[i];
            if (!m->ok) {
                out("| %s | failed | — | — |\n", b->label);
                continue;
            }
            if (strcmp(b->name, "sigsafe") == 0)
                ss_mem = m;
            out("| %s | %zu | %zu | %.2f |\n", b->label, m->peak_live,
                m->rss_delta,
                m->peak_live ? (double)m->rss_delta / (double)m->peak_live
                             : 0.0);
        }
        out("\nEvery backend: growth of the resident set (/proc/self/statm) "
            "against the peak of requested live bytes, each in a fresh "
            "process.");
        if (ss_mem)
            out(" sigsafe's own statistics at the end: `bytes_mapped` %zu, "
                "`peak_bytes_in_use` %zu (usable sizes, and the blocks "
                "idle in the thread cache: see docs/design.md).",
                ss_mem->mapped, ss_mem->peak_in_use);
        out("\n\n");
    }
}

static void write_dat(unsigned maxt)
{
    FILE *f = fopen(opt_dat, "w");
    if (!f)
        die("cannot write %s: %s", opt_dat, strerror(errno));
    fprintf(f, "threads");
    for (size_t i = 0; i < bench_nbackends; i++)
        if (opt_use[i] && in_work(&bench_backends[i], W3) && !failed[i][W3])
            fprintf(f, " %s", bench_backends[i].name);
    fprintf(f, "\n");
    for (unsigned t = 1; t <= maxt; t++) {
        fprintf(f, "%u", t);
        for (size_t i = 0; i < bench_nbackends; i++)
            if (opt_use[i] && in_work(&bench_backends[i], W3) &&
                !failed[i][W3])
                fprintf(f, " %.3f", median(r3_mops[i][t], opt_reps));
        fprintf(f, "\n");
    }
    fclose(f);
}

static void write_raw(unsigned maxt)
{
    FILE *f = fopen(opt_raw, "w");
    if (!f)
        die("cannot write %s: %s", opt_raw, strerror(errno));
    fprintf(f, "# backend workload threads median unit\n");
    double clk = opt_work[W5] ? median(r5_clock, opt_reps) : 0;
    for (size_t i = 0; i < bench_nbackends; i++) {
        const bench_backend *b = &bench_backends[i];
        if (!opt_use[i] || !b->ok)
            continue;
        for (int w = 0; w < NWORK; w++) {
            if (!opt_work[w] || !in_work(b, w) || failed[i][w])
                continue;
            if (w == W3) {
                for (unsigned t = 1; t <= maxt; t++) {
                    fprintf(f, "%s w3 %u %.3f ns/op/thread\n", b->name, t,
                            median(r3_ns[i][t], opt_reps));
                    fprintf(f, "%s w3 %u %.3f Mops/s\n", b->name, t,
                            median(r3_mops[i][t], opt_reps));
                }
            } else if (w == MEM) {
                if (mem[i].ok)
                    fprintf(f, "%s mem 1 %zu %zu %zu %zu "
                               "peak_live,rss_delta,mapped,peak_in_use\n",
                            b->name, mem[i].peak_live, mem[i].rss_delta,
                            mem[i].mapped, mem[i].peak_in_use);
            } else {
                double v = med_ns((int)i, w) - (w == W5 ? clk : 0);
                fprintf(f, "%s %s %u %.3f %s\n", b->name, work_name[w],
                        w == W4 ? 2u : 1u, v,
                        w == W5 ? "ns/handler" : "ns/op");
            }
        }
    }
    if (opt_work[W5])
        fprintf(f, "clock w5 1 %.3f ns/handler\n", clk);
    fclose(f);
}

/* ----------------------------------------------------- special modes */

/* The one backend of a special mode: the first one given, else sigsafe. */
static bench_backend *single_backend(void)
{
    bench_backend *b = bench_backend_find("sigsafe");
    if (opt_backends_given)
        for (size_t i = 0; i < bench_nbackends; i++)
            if (opt_use[i]) {
                b = &bench_backends[i];
                break;
            }
    if (b->setup(b))
        die("%s: %s", b->name, b->why ? b->why : "set-up failed");
    return b;
}

/* Instructions per W1 pair: callgrind runs this with N and with 0. */
static int instr_w1(uint64_t n)
{
    bench_backend *b = single_backend();
    bench_w1(b, 10000); /* warm-up: carve the span, fill caches */
    bench_w1(b, n);
    return 0;
}

/* The harness alone, for callgrind: W1's loop and its calls through the
 * function pointers, into an allocator that does nothing (one block,
 * handed out again and again; 3 instructions for the pair). */
static char null_block[64];
static __attribute__((noinline)) void *null_alloc(size_t n)
{
    (void)n;
    return null_block;
}
static __attribute__((noinline)) void null_free(void *p)
{
    (void)p;
}

static int instr_harness(uint64_t n)
{
    bench_backend b = {.name = "harness", .alloc = null_alloc,
                       .free = null_free};
    bench_w1(&b, 10000);
    bench_w1(&b, n);
    return 0;
}

/* Steady state: after warm-up, alloc/free must make no system call. */
static int steady(uint64_t n)
{
    static const char begin[] = "sigsafe-bench: steady state begins\n";
    static const char end[] = "sigsafe-bench: steady state ends\n";
    bench_backend *b = bench_backend_find("sigsafe");
    if (b->setup(b))
        die("sigsafe: %s", b->why);
    bench_w1(b, 10000);
    bench_w2(b, 20);
    bench_w6(b, 20000);
    if (write(1, begin, sizeof begin - 1) < 0)
        return 1;
    for (uint64_t r = 0; r < n; r++) {
        bench_w1(b, 1000);
        bench_w2(b, 1);
        bench_w6(b, 5000);
    }
    if (write(1, end, sizeof end - 1) < 0)
        return 1;
    return 0;
}

/* ---------------------------------------------------------------- main */

static uint64_t num(const char *s, const char *opt)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || e == s)
        die("%s wants a number, got '%s'", opt, s);
    return v;
}

int main(int argc, char **argv)
{
    long instr = -1, steady_n = -1;
    int harness = 0;
    const char *mem_name = NULL;
    for (size_t i = 0; i < bench_nbackends; i++)
        opt_use[i] = 1;
    /* --quick sets defaults that later options may still override. */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick")) {
            opt_reps = 3;
            par.min_time = 0.01;
            par.w5_runs = 500;
            mem_rounds = 10;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            takes = 0;
        } else if (!v) {
            usage(stderr);
            die("%s needs a value", a);
        } else if (!strcmp(a, "--backends")) {
            parse_list(v, 0);
            opt_backends_given = 1;
        } else if (!strcmp(a, "--workloads")) {
            parse_list(v, 1);
        } else if (!strcmp(a, "--threads")) {
            opt_threads = (unsigned)num(v, a);
        } else if (!strcmp(a, "--reps")) {
            opt_reps = (unsigned)num(v, a);
        } else if (!strcmp(a, "--w5-runs")) {
            par.w5_runs = num(v, a);
        } else if (!strcmp(a, "--min-time")) {
            par.min_time = atof(v);
        } else if (!strcmp(a, "--scale")) {
            opt_scale = atof(v);
        } else if (!strcmp(a, "--pool-mib")) {
            bench_pool_capacity = (size_t)num(v, a) << 20;
        } else if (!strcmp(a, "--md")) {
            opt_md = v;
        } else if (!strcmp(a, "--dat")) {
            opt_dat = v;
        } else if (!strcmp(a, "--raw")) {
            opt_raw = v;
        } else if (!strcmp(a, "--instr-w1")) {
            instr = (long)num(v, a);
        } else if (!strcmp(a, "--instr-harness")) {
            instr = (long)num(v, a);
            harness = 1;
        } else if (!strcmp(a, "--steady")) {
            steady_n = (long)num(v, a);
        } else if (!strcmp(a, "--mem")) {
            mem_name = v;
        } else if (!strcmp(a, "--mem-rounds")) {
            mem_rounds = num(v, a);
        } else {
            usage(stderr);
            die("unknown option '%s'", a);
        }
        i += takes;
    }
    bench_workloads_init();
    if (instr >= 0)
        return harness ? instr_harness((uint64_t)instr)
                       : instr_w1((uint64_t)instr);
    if (steady_n >= 0)
        return steady((uint64_t)steady_n);
    if (mem_name)
        return mem_child(mem_name);

    if (opt_reps < 1 || opt_reps > MAX_REPS)
        die("--reps must be 1..%d", MAX_REPS);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned maxt = opt_threads ? opt_threads : (unsigned)(ncpu > 0 ? ncpu : 1);
    if (maxt > MAX_T)
        die("--threads must be 1..%d", MAX_T);
    if (opt_use[bidx(bench_backend_find("jemalloc"))])
        ensure_static_tls(argv);

    for (size_t i = 0; i < bench_nbackends; i++) {
        bench_backend *b = &bench_backends[i];
        if (opt_use[i])
            b->ok = b->setup(b) == 0;
    }
    if (opt_md) {
        md = fopen(opt_md, "w");
        if (!md)
            die("cannot write %s: %s", opt_md, strerror(errno));
    }

    /* Calibration, which is also every backend's warm-up. */
    for (size_t i = 0; i < bench_nbackends; i++) {
        bench_backend *b = &bench_backends[i];
        if (!opt_use[i] || !b->ok)
            continue;
        for (int w = 0; w < NWORK; w++) {
            if (!opt_work[w] || !in_work(b, w) || w == W5 || w == MEM)
                continue;
            if (w == W3) {
                for (unsigned t = 1; t <= maxt && !failed[i][w]; t++)
                    if (!(iters3[i][t] = calibrate(b, w, t)))
                        failed[i][w] = 1;
            } else if (!(iters[i][w] = calibrate(b, w, 1))) {
                failed[i][w] = 1;
            }
        }
    }
    if (opt_work[W5])
        bench_w5(NULL, par.w5_runs / 10 + 1); /* warm the handler path */

    for (unsigned r = 0; r < opt_reps; r++) {
        fprintf(stderr, "sigsafe-bench: repetition %u of %u\n", r + 1,
                opt_reps);
        for (int w = 0; w < NWORK; w++) {
            if (!opt_work[w] || w == MEM)
                continue;
            if (w == W5)
                r5_clock[r] = bench_w5(NULL, par.w5_runs);
            for (size_t i = 0; i < bench_nbackends; i++) {
                bench_backend *b = &bench_backends[i];
                if (!opt_use[i] || !in_work(b, w) || failed[i][w])
                    continue;
                double mops = 0, v;
                if (w == W3) {
                    for (unsigned t = 1; t <= maxt; t++) {
                        v = bench_w3(b, t, iters3[i][t], &mops);
                        r3_ns[i][t][r] = v;
                        r3_mops[i][t][r] = mops;
                        if (v < 0)
                            failed[i][w] = 1;
                    }
                    continue;
                }
                v = w == W5 ? bench_w5(b, par.w5_runs)
                            : run_once(b, w, 1, iters[i][w], &mops);
                r_ns[i][w][r] = v;
                if (v < 0)
                    failed[i][w] = 1;
            }
        }
    }
    if (opt_work[MEM])
        for (size_t i = 0; i < bench_nbackends; i++)
            if (opt_use[i] && in_work(&bench_backends[i], MEM))
                mem_spawn(&bench_backends[i]);

    report(maxt, (unsigned)par.w5_runs);
    if (md)
        fclose(md);
    if (opt_dat && opt_work[W3])
        write_dat(maxt);
    if (opt_raw)
        write_raw(maxt);
    return 0;
}
