/* SPDX-License-Identifier: MIT */
/*
 * sigsafe-region: what a pool costs the process that holds it
 * (docs/performance.md, "What a pool costs").  One run measures, for pools
 * of 4 MiB (the default capacity), 64 MiB and 1 GiB:
 *
 *   - create: the median time of pool_create (and destroy, timed apart),
 *     and the system calls create makes, counted by tracing a child with
 *     PTRACE_SYSCALL between two marker calls;
 *   - page tables (VmPTE) the pool adds, idle and with W bytes live;
 *   - reserved address space (VmSize) the pool adds, against 4 C + 64 MiB;
 *   - mappings (lines of /proc/self/maps) the pool adds, idle, and after a
 *     mixed workload, against 64 + 2 per large block live;
 *   - fork()+wait(): the median over interleaved rounds of a process
 *     without sigsafe, one with the default pool in use, and one with an
 *     idle 1 GiB pool, each a child of its own, as ratios to the first;
 *
 * and which capacities create accepts (up to 64 GiB).  Output: a markdown
 * report on stdout (and --md FILE), each target marked met or missed.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/ptrace.h>

#include "sigsafe.h"

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

static FILE *md;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A field of /proc/self/status, in KiB. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static long maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF)
        n += c == '\n';
    if (f)
        fclose(f);
    return n;
}

static sigsafe_pool *make(size_t capacity, unsigned flags)
{
    sigsafe_pool *p = NULL;
    sigsafe_pool_config cfg = {.name = "region", .capacity = capacity,
                               .flags = flags};
    int err = sigsafe_pool_create(&cfg, &p);
    if (err) {
        fprintf(stderr, "sigsafe-region: create %zu MiB: error %d\n",
                capacity >> 20, err);
        exit(1);
    }
    return p;
}

static const char *verdict(int met)
{
    return met ? "met" : "**missed**";
}

/* ------------------------------------------------- system calls in create */

/*
 * The system calls pool_create(capacity) makes: a child stops itself, the
 * parent follows it with PTRACE_SYSCALL and counts the calls between two
 * getppid() markers.  -1 if tracing is not possible here.
 */
static long create_syscalls(size_t capacity)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(2);
        raise(SIGSTOP);
        syscall(SYS_getppid); /* marker: begin */
        sigsafe_pool *p = NULL;
        sigsafe_pool_config cfg = {.name = "traced", .capacity = capacity};
        int err = sigsafe_pool_create(&cfg, &p);
        syscall(SYS_getppid); /* marker: end */
        _exit(err ? 3 : 0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
        return -1;
    ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)PTRACE_O_TRACESYSGOOD);
    long count = 0;
    int markers = 0;
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) != 0)
            break;
        if (waitpid(pid, &st, 0) != pid || WIFEXITED(st) || WIFSIGNALED(st))
            break;
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80))
            continue;
        struct ptrace_syscall_info info;
        if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info,
                   &info) <= 0 ||
            info.op != PTRACE_SYSCALL_INFO_ENTRY)
            continue;
        if ((long)info.entry.nr == SYS_getppid) {
            markers++;
            continue;
        }
        if (markers == 1)
            count++;
    }
    if (!WIFEXITED(st))
        waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && markers == 2 ? count : -1;
}

/* ------------------------------------------------------------ the pools */

typedef struct row {
    size_t capacity;
    double create_us, destroy_us;
    long syscalls;
    long pte_idle_kib, pte_live_kib, vm_kib, maps_idle, maps_live;
    size_t live_bytes;
    long large_live;
} row;

/* Blocks of a mixed workload: small sizes of every class, and large
 * blocks, up to `bytes` live; their pointers in blk. */
static size_t fill(sigsafe_pool *p, size_t bytes, void **blk, size_t max,
                   size_t *n, long *large)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    size_t live = 0;
    *n = 0;
    *large = 0;
    while (live < bytes && *n < max) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t size = (s % 100) < 98 ? 16 + s % 16368 : 20000 + s % 500000;
        void *q = sigsafe_pool_alloc(p, size);
        if (!q)
            break;
        size_t u = sigsafe_usable_size(q);
        memset(q, 1, u < 4096 ? u : 4096); /* touch: pages become real */
        for (size_t o = 4096; o < u; o += 4096)
            ((char *)q)[o] = 1;
        blk[(*n)++] = q;
        live += u;
        *large += size > 16384;
    }
    return live;
}

static void measure(row *r, size_t capacity)
{
    r->capacity = capacity;
    enum { REPS = 21 };
    double c[REPS], d[REPS];
    for (int i = 0; i < REPS; i++) {
        double t0 = now_ns();
        sigsafe_pool *p = make(capacity, 0);
        double t1 = now_ns();
        sigsafe_pool_destroy(p);
        c[i] = (t1 - t0) / 1e3;
        d[i] = (now_ns() - t1) / 1e3;
    }
    r->create_us = median(c, REPS);
    r->destroy_us = median(d, REPS);
    r->syscalls = create_syscalls(capacity);

    long pte0 = status_kib("VmPTE"), vm0 = status_kib("VmSize");
    long maps0 = maps_lines();
    sigsafe_pool *p = make(capacity, 0);
    r->pte_idle_kib = status_kib("VmPTE") - pte0;
    r->vm_kib = status_kib("VmSize") - vm0;
    r->maps_idle = maps_lines() - maps0;
    /* W: a sixteenth of the capacity live, in mixed sizes. */
    static void *blk[1 << 20];
    size_t n;
    r->live_bytes = fill(p, capacity / 16, blk, sizeof blk / sizeof *blk, &n,
                         &r->large_live);
    r->pte_live_kib = status_kib("VmPTE") - pte0;
    r->maps_live = maps_lines() - maps0;
    for (size_t i = 0; i < n; i++)
        sigsafe_free(blk[i]);
    sigsafe_pool_destroy(p);
}

/* --------------------------------------------------------------- fork */

enum { SETUP_NONE, SETUP_DEFAULT, SETUP_IDLE_GIB };

/* In a child: set up, then time `rounds` fork()+wait() of a child that
 * exits at once; the median per round, in microseconds, on the pipe. */
static double fork_child(int setup, int rounds)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        if (setup == SETUP_DEFAULT) {
            /* The default pool, as a program that links a crash reporter
             * has it: created and used a little. */
            void *q[64];
            for (int i = 0; i < 64; i++)
                q[i] = sigsafe_alloc((size_t)16 << (i % 8));
            for (int i = 0; i < 64; i++)
                sigsafe_free(q[i]);
        } else if (setup == SETUP_IDLE_GIB) {
            (void)make(GIB, 0);
        }
        double *t = malloc(sizeof *t * (size_t)rounds);
        for (int i = 0; i < rounds; i++) {
            double t0 = now_ns();
            pid_t c = fork();
            if (c == 0)
                _exit(0);
            waitpid(c, NULL, 0);
            t[i] = (now_ns() - t0) / 1e3;
        }
        double m = median(t, rounds);
        ssize_t w = write(fd[1], &m, sizeof m);
        _exit(w == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fd[1]);
    double m = -1;
    if (read(fd[0], &m, sizeof m) != (ssize_t)sizeof m)
        m = -1;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return m;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--md") && i + 1 < argc) {
            md = fopen(argv[++i], "w");
            if (!md) {
                perror(argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr, "usage: sigsafe-region [--md FILE]\n");
            return 2;
        }
    }
    const size_t caps[] = {4 * MIB, 64 * MIB, GIB};
    enum { NCAPS = sizeof caps / sizeof caps[0] };
    row r[NCAPS];
    for (int i = 0; i < NCAPS; i++)
        measure(&r[i], caps[i]);

    /* Interleaved, and compared run by run: each ratio is taken against
     * the run without sigsafe made just before it, so that the machine's
     * drift between runs cancels out; the medians of those ratios. */
    enum { FORK_REPS = 15, FORK_ROUNDS = 200 };
    double f[3][FORK_REPS], ratio[3][FORK_REPS];
    for (int k = 0; k < FORK_REPS; k++)
        for (int s = 0; s < 3; s++) {
            f[s][k] = fork_child(s, FORK_ROUNDS);
            ratio[s][k] = f[s][k] / f[0][k];
        }
    double fm[3], fr[3];
    for (int s = 0; s < 3; s++) {
        fm[s] = median(f[s], FORK_REPS);
        fr[s] = median(ratio[s], FORK_REPS);
    }

    out("### What a pool costs (bench/region.c)\n\n");
    out("| capacity | create | destroy | system calls in create | VmPTE "
        "idle | VmPTE with W live | W live | reserved (VmSize) | mappings "
        "idle | mappings with W live (large blocks live) |\n");
    out("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < NCAPS; i++)
        out("| %zu MiB | %.1f us | %.1f us | %ld | %ld KiB | %ld KiB | "
            "%zu KiB | %ld MiB | %ld | %ld (%ld) |\n",
            r[i].capacity >> 20, r[i].create_us, r[i].destroy_us,
            r[i].syscalls, r[i].pte_idle_kib, r[i].pte_live_kib,
            r[i].live_bytes >> 10, r[i].vm_kib >> 10, r[i].maps_idle,
            r[i].maps_live, r[i].large_live);
    out("\nW is a sixteenth of the capacity in random sizes (98 %% small, "
        "16 B to 16 KiB; 2 %% large, 20 KiB to 500 KiB), every page "
        "touched.\n\n");
    out("| fork()+wait() | us a round (median) | ratio |\n|---|---:|---:|\n");
    const char *fname[3] = {"without sigsafe", "default pool in use",
                            "idle 1 GiB pool"};
    for (int s = 0; s < 3; s++)
        out("| %s | %.1f | %.2fx |\n", fname[s], fm[s], fr[s]);
    out("\n%d interleaved runs of %d rounds, each in a child process of "
        "its own; the ratio is the median of each run's ratio to the run "
        "without sigsafe just before it.\n\n",
        FORK_REPS, FORK_ROUNDS);

    /* Capacities accepted. */
    const size_t big[] = {12 * GIB, 16 * GIB, 64 * GIB};
    int accepted = 1;
    out("| capacity | create |\n|---:|---|\n");
    for (unsigned i = 0; i < sizeof big / sizeof *big; i++) {
        sigsafe_pool *p = NULL;
        sigsafe_pool_config cfg = {.name = "big", .capacity = big[i]};
        int err = sigsafe_pool_create(&cfg, &p);
        accepted &= err == 0;
        out("| %zu GiB | %s |\n", big[i] >> 30, err ? "refused" : "ok");
        if (!err)
            sigsafe_pool_destroy(p);
    }
    sigsafe_pool *p = NULL;
    sigsafe_pool_config over = {.name = "big", .capacity = 64 * GIB + 1};
    int over_err = sigsafe_pool_create(&over, &p);
    out("| 64 GiB + 1 | %s |\n\n", over_err == 22 ? "refused (EINVAL)" : "?");

    const row *g = &r[NCAPS - 1];
    size_t w = g->live_bytes;
    out("| target (issue: pools that cost nothing until used) | measured | "
        "|\n|---|---|---|\n");
    out("| create of a 1 GiB pool <= 1 ms | %.3f ms | %s |\n",
        g->create_us / 1e3, verdict(g->create_us <= 1000));
    out("| <= 32 system calls in create | %ld | %s |\n", g->syscalls,
        verdict(g->syscalls >= 0 && g->syscalls <= 32));
    out("| idle 1 GiB pool adds <= 64 KiB of VmPTE | %ld KiB | %s |\n",
        g->pte_idle_kib, verdict(g->pte_idle_kib <= 64));
    out("| with W live, <= W/256 + 64 KiB | %ld KiB (W = %zu MiB: limit "
        "%zu KiB) | %s |\n",
        g->pte_live_kib, w >> 20, w / 256 / 1024 + 64,
        verdict((size_t)g->pte_live_kib <= w / 256 / 1024 + 64));
    out("| fork()+wait() with the default pool <= 1.1x | %.2fx | %s |\n",
        fr[1], verdict(fr[1] <= 1.1));
    out("| fork()+wait() with an idle 1 GiB pool <= 1.5x | %.2fx | %s |\n",
        fr[2], verdict(fr[2] <= 1.5));
    int vm_ok = 1, maps_ok = 1;
    for (int i = 0; i < NCAPS; i++) {
        vm_ok &= (size_t)r[i].vm_kib * 1024 <= 4 * r[i].capacity + 64 * MIB;
        maps_ok &= r[i].maps_idle <= 64 &&
                   r[i].maps_live <= 64 + 2 * r[i].large_live;
    }
    out("| reserved address space <= 4x capacity + 64 MiB | %ld MiB at "
        "1 GiB (%.2fx) | %s |\n",
        g->vm_kib >> 10, (double)g->vm_kib * 1024 / (double)g->capacity,
        verdict(vm_ok));
    out("| mappings per pool <= 64 + 2 per large block live | at most %ld "
        "(%ld large live) | %s |\n",
        g->maps_live, g->large_live, verdict(maps_ok));
    out("| every capacity up to 64 GiB accepted | 12, 16, 64 GiB | %s |\n\n",
        verdict(accepted && over_err == 22));
    if (md)
        fclose(md);
    return 0;
}
