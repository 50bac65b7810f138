/* SPDX-License-Identifier: MIT */
/*
 * sigsafe-bench: shared declarations.  A benchmark, not a test: it runs
 * sigsafe and its peers over the same workloads in one process and prints
 * medians.  See docs/performance.md for what each workload models.
 */
#ifndef SIGSAFE_BENCH_H
#define SIGSAFE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ------------------------------------------------------------ Backends */

enum {
    BK_HANDLER = 1u << 0,   /* may run in W5's signal handler */
    BK_UNSAFE = 1u << 1,    /* runs in W5 as an unsafe reference only */
    BK_FIXED64 = 1u << 2,   /* serves 64-byte nodes only: W1, W3, W4, W5 */
    BK_REFERENCE = 1u << 3, /* a reference cost, not an allocator */
};

typedef struct bench_backend {
    const char *name;  /* short name, used on the command line and in data */
    const char *label; /* what the tables print */
    unsigned flags;    /* BK_* */
    int (*setup)(struct bench_backend *b); /* 0 = usable; else sets why */
    void *(*alloc)(size_t size);
    void (*free)(void *ptr);
    void (*thread_done)(void); /* per-thread clean-up after a run, or NULL */
    const char *why;           /* why it was skipped, when setup failed */
    char version[48];          /* peer version where it can tell */
    int ok;                    /* set-up succeeded */
} bench_backend;

extern bench_backend bench_backends[];
extern const size_t bench_nbackends;
extern size_t bench_pool_capacity; /* sigsafe's pool for the run */

bench_backend *bench_backend_find(const char *name);
/* Fills in mapped/peak for sigsafe's pool; returns 0 if it has one. */
int bench_sigsafe_stats(size_t *bytes_mapped, size_t *peak_in_use);
/* One line on sigsafe's pool; returns 1 if it shows a harness error. */
int bench_sigsafe_summary(char *buf, size_t n);

/* ------------------------------------------------------------ Workloads */

typedef struct bench_params {
    uint64_t w1_iters;   /* alloc+free pairs per repetition (upper bound) */
    uint64_t w2_rounds;  /* rounds of 1000 live blocks */
    uint64_t w3_iters;   /* pairs per thread */
    uint64_t w4_blocks;  /* blocks passed between threads */
    uint64_t w5_runs;    /* handler runs per repetition */
    uint64_t w6_records; /* profiler records */
    double min_time;     /* seconds a repetition should last at least */
} bench_params;

/* Each returns ns per alloc+free pair (W5: per handler run), or < 0. */
double bench_w1(const bench_backend *b, uint64_t iters);
double bench_w2(const bench_backend *b, uint64_t rounds);
/* W3: per-thread ns per pair; *mops gets the total throughput. */
double bench_w3(const bench_backend *b, unsigned threads, uint64_t iters,
                double *mops);
double bench_w4(const bench_backend *b, uint64_t blocks);
double bench_w5(const bench_backend *b, uint64_t runs);
double bench_w6(const bench_backend *b, uint64_t records);
/* W2 memory: peak requested live bytes and RSS growth, in this process. */
int bench_w2_memory(const bench_backend *b, uint64_t rounds,
                    size_t *peak_live, size_t *rss_delta);
void bench_workloads_init(void);

/* ------------------------------------------------------------ Utilities */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a fixed sequence, so every backend sees the same sizes. */
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* SIGSAFE_BENCH_H */
