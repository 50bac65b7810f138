/* SPDX-License-Identifier: MIT */
/*
 * sigsafe-bench: the workloads.  Each touches every block it gets (so a
 * lazy allocator pays its page faults) and calls the backend through its
 * two function pointers.  Sizes and orders come from fixed tables built
 * once, so every backend sees the same sequence.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MAX_THREADS 256

typedef void *(*alloc_fn)(size_t);
typedef void (*free_fn)(void *);

/* W2: 1000 live blocks of 16..1024 bytes, freed in a random order. */
#define W2_LIVE 1000
#define W2_VARIANTS 16
static uint16_t w2_size[W2_VARIANTS][W2_LIVE];
static uint16_t w2_order[W2_VARIANTS][W2_LIVE];

/* W5: the handler's request sizes, 64..512 bytes. */
#define W5_SIZES 4096
static uint16_t w5_size[W5_SIZES];

/* W6: profiler records of 32 + 8 * depth bytes, depth 0..28. */
#define W6_SIZES 4096
#define W6_BATCH 256
#define W6_LAG 8 /* full batches the writer keeps before freeing the oldest */
static uint16_t w6_size[W6_SIZES];

void bench_workloads_init(void)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int v = 0; v < W2_VARIANTS; v++) {
        for (int i = 0; i < W2_LIVE; i++) {
            w2_size[v][i] = (uint16_t)(16 + bench_rand(&s) % (1024 - 16 + 1));
            w2_order[v][i] = (uint16_t)i;
        }
        for (int i = W2_LIVE - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(bench_rand(&s) % (uint64_t)(i + 1));
            uint16_t t = w2_order[v][i];
            w2_order[v][i] = w2_order[v][j];
            w2_order[v][j] = t;
        }
    }
    for (int i = 0; i < W5_SIZES; i++)
        w5_size[i] = (uint16_t)(64 + bench_rand(&s) % (512 - 64 + 1));
    /* Stack depths: a triangle over 0..30 peaking at 15, capped at 28. */
    for (int i = 0; i < W6_SIZES; i++) {
        uint64_t r = bench_rand(&s);
        unsigned d = (unsigned)(r % 16 + (r >> 16) % 16);
        if (d > 28)
            d = 28;
        w6_size[i] = (uint16_t)(32 + 8 * d);
    }
}

static void done(const bench_backend *b)
{
    if (b->thread_done)
        b->thread_done();
}

/* ------------------------------------------------------------------ W1 */

/* alloc+free pairs of 64 bytes; returns 0, or -1 when an alloc failed. */
static int pairs64(alloc_fn A, free_fn F, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        char *p = A(64);
        if (__builtin_expect(!p, 0))
            return -1;
        p[0] = (char)i;
        F(p);
    }
    return 0;
}

double bench_w1(const bench_backend *b, uint64_t iters)
{
    uint64_t t0 = bench_now_ns();
    int err = pairs64(b->alloc, b->free, iters);
    uint64_t t1 = bench_now_ns();
    done(b);
    if (err || !iters)
        return -1;
    return (double)(t1 - t0) / (double)iters;
}

/* ------------------------------------------------------------------ W2 */

static void *w2_live[W2_LIVE];

static int w2_round(alloc_fn A, free_fn F, uint64_t r, int fill)
{
    const uint16_t *sz = w2_size[r % W2_VARIANTS];
    for (int i = 0; i < W2_LIVE; i++) {
        char *p = A(sz[i]);
        if (__builtin_expect(!p, 0)) {
            for (int j = 0; j < i; j++)
                F(w2_live[j]);
            return -1;
        }
        if (fill)
            memset(p, 0x5a, sz[i]);
        else
            p[0] = (char)i;
        w2_live[i] = p;
    }
    return 0;
}

static void w2_drain(free_fn F, uint64_t r)
{
    const uint16_t *ord = w2_order[r % W2_VARIANTS];
    for (int i = 0; i < W2_LIVE; i++)
        F(w2_live[ord[i]]);
}

double bench_w2(const bench_backend *b, uint64_t rounds)
{
    alloc_fn A = b->alloc;
    free_fn F = b->free;
    uint64_t t0 = bench_now_ns();
    for (uint64_t r = 0; r < rounds; r++) {
        if (w2_round(A, F, r, 0)) {
            done(b);
            return -1;
        }
        w2_drain(F, r);
    }
    uint64_t t1 = bench_now_ns();
    done(b);
    if (!rounds)
        return -1;
    return (double)(t1 - t0) / (double)(rounds * W2_LIVE);
}

/* Resident bytes of this process, from /proc/self/statm. */
static size_t rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long size, resident;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return 0;
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

int bench_w2_memory(const bench_backend *b, uint64_t rounds,
                    size_t *peak_live, size_t *rss_delta)
{
    alloc_fn A = b->alloc;
    free_fn F = b->free;
    size_t base = rss_bytes(), top = base, peak = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        if (w2_round(A, F, r, 1))
            return -1;
        size_t live = 0;
        for (int i = 0; i < W2_LIVE; i++)
            live += w2_size[r % W2_VARIANTS][i];
        if (live > peak)
            peak = live;
        size_t rss = rss_bytes(); /* at the round's peak */
        if (rss > top)
            top = rss;
        w2_drain(F, r);
    }
    *peak_live = peak;
    *rss_delta = top - base;
    return 0;
}

/* ------------------------------------------------------------------ W3 */

typedef struct w3_arg {
    const bench_backend *b;
    pthread_barrier_t *start;
    uint64_t iters;
    uint64_t t0, t1;
    int err;
} w3_arg;

static void *w3_thread(void *p)
{
    w3_arg *a = p;
    pthread_barrier_wait(a->start);
    a->t0 = bench_now_ns();
    a->err = pairs64(a->b->alloc, a->b->free, a->iters);
    a->t1 = bench_now_ns();
    done(a->b);
    return NULL;
}

double bench_w3(const bench_backend *b, unsigned threads, uint64_t iters,
                double *mops)
{
    if (threads < 1 || threads > MAX_THREADS || !iters)
        return -1;
    pthread_t tid[MAX_THREADS];
    w3_arg arg[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, threads);
    unsigned made = 0;
    for (; made < threads; made++) {
        arg[made] = (w3_arg){.b = b, .start = &start, .iters = iters};
        if (pthread_create(&tid[made], NULL, w3_thread, &arg[made]))
            break;
    }
    if (made < threads) {
        /* The barrier can never open: cannot recover cleanly. */
        fprintf(stderr, "sigsafe-bench: pthread_create failed\n");
        exit(1);
    }
    int err = 0;
    uint64_t first = UINT64_MAX, last = 0;
    double per = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        err |= arg[i].err;
        first = arg[i].t0 < first ? arg[i].t0 : first;
        last = arg[i].t1 > last ? arg[i].t1 : last;
        per += (double)(arg[i].t1 - arg[i].t0) / (double)iters;
    }
    pthread_barrier_destroy(&start);
    if (err)
        return -1;
    /* ops per microsecond = millions of ops per second */
    *mops = (double)threads * (double)iters * 1e3 / (double)(last - first);
    return per / threads;
}

/* ------------------------------------------------------------------ W4 */

/*
 * Single-producer single-consumer ring of pointers.  Invariant: only the
 * producer writes tail and the slots in [head, head + size) it is about to
 * fill; only the consumer writes head.  Wait-free for each side apart from
 * waiting on a full or empty ring, which a benchmark may do.
 */
#define RING 1024

typedef struct w4_ring {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) void *slot[RING];
    _Alignas(64) _Atomic int consumer_done;
} w4_ring;

typedef struct w4_arg {
    const bench_backend *b;
    w4_ring *ring;
    pthread_barrier_t *start;
    uint64_t blocks;
    int err;
} w4_arg;

static void backoff(unsigned *spins)
{
    if (++*spins < 256)
        bench_relax();
    else
        sched_yield(); /* the other side may share our core */
}

static void *w4_producer(void *p)
{
    w4_arg *a = p;
    w4_ring *q = a->ring;
    alloc_fn A = a->b->alloc;
    pthread_barrier_wait(a->start);
    for (uint64_t i = 0; i < a->blocks; i++) {
        char *blk = A(64);
        if (!blk) {
            a->err = -1; /* the consumer still waits for every block */
            blk = NULL;
        } else {
            blk[0] = (char)i;
        }
        unsigned spins = 0;
        /* relaxed: only this thread writes tail */
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        /* acquire: pairs with the consumer's release of head; the slot is
         * free to overwrite */
        while (t - atomic_load_explicit(&q->head, memory_order_acquire) ==
               RING)
            backoff(&spins);
        q->slot[t % RING] = blk;
        /* release: publishes the slot; pairs with acquire in w4_consumer() */
        atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    }
    /* acquire: pairs with the consumer's release; its frees are done */
    unsigned spins = 0;
    while (!atomic_load_explicit(&q->consumer_done, memory_order_acquire))
        backoff(&spins);
    done(a->b); /* blocks belong to this thread's allocator (bump) */
    return NULL;
}

static void *w4_consumer(void *p)
{
    w4_arg *a = p;
    w4_ring *q = a->ring;
    free_fn F = a->b->free;
    pthread_barrier_wait(a->start);
    for (uint64_t i = 0; i < a->blocks; i++) {
        unsigned spins = 0;
        /* relaxed: only this thread writes head */
        uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
        /* acquire: pairs with the producer's release of tail */
        while (atomic_load_explicit(&q->tail, memory_order_acquire) == h)
            backoff(&spins);
        void *blk = q->slot[h % RING];
        /* release: the slot was read; pairs with acquire in w4_producer() */
        atomic_store_explicit(&q->head, h + 1, memory_order_release);
        if (blk)
            F(blk);
    }
    /* release: pairs with acquire in w4_producer() */
    atomic_store_explicit(&q->consumer_done, 1, memory_order_release);
    return NULL;
}

double bench_w4(const bench_backend *b, uint64_t blocks)
{
    static w4_ring ring;
    pthread_barrier_t start;
    pthread_t pt, ct;
    atomic_store_explicit(&ring.head, 0, memory_order_relaxed);
    atomic_store_explicit(&ring.tail, 0, memory_order_relaxed);
    atomic_store_explicit(&ring.consumer_done, 0, memory_order_relaxed);
    w4_arg pa = {.b = b, .ring = &ring, .start = &start, .blocks = blocks};
    w4_arg ca = pa;
    pthread_barrier_init(&start, NULL, 3);
    if (pthread_create(&pt, NULL, w4_producer, &pa) ||
        pthread_create(&ct, NULL, w4_consumer, &ca)) {
        fprintf(stderr, "sigsafe-bench: pthread_create failed\n");
        exit(1);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = bench_now_ns();
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    pthread_join(pt, NULL);
    pthread_barrier_destroy(&start);
    if (pa.err || !blocks)
        return -1;
    return (double)(t1 - t0) / (double)blocks;
}

/* ------------------------------------------------------------------ W5 */

/*
 * A profiler-style signal storm: one thread spins in plain code while
 * another sends it SIGPROF as fast as pthread_kill goes.  Each handler run
 * times, with clock_gettime (AS-safe, vDSO), its own 4 allocations of
 * 64..512 bytes and 4 frees.  The handler is the only user of the backend
 * while the storm lasts.  A NULL backend measures the clock alone.
 */
#define W5_SIGNAL SIGPROF

static alloc_fn volatile w5_alloc;
static free_fn volatile w5_free;
static uint32_t *w5_ns;         /* one duration per handler run */
static uint64_t w5_cap;         /* runs wanted */
static _Atomic uint64_t w5_runs; /* written by the handler's thread only */
static _Atomic int w5_stop, w5_ready;
static volatile sig_atomic_t w5_failed;

static void w5_handler(int sig)
{
    (void)sig;
    int saved = errno;
    /* relaxed: written by this thread only; the sender only watches it */
    uint64_t c = atomic_load_explicit(&w5_runs, memory_order_relaxed);
    if (c < w5_cap) {
        alloc_fn A = w5_alloc;
        free_fn F = w5_free;
        const uint16_t *sz = &w5_size[(c * 4) % W5_SIZES];
        uint64_t t0 = bench_now_ns();
        if (A) {
            char *p0 = A(sz[0]), *p1 = A(sz[1]), *p2 = A(sz[2]),
                 *p3 = A(sz[3]);
            if (p0 && p1 && p2 && p3) {
                p0[0] = p1[0] = p2[0] = p3[0] = 1;
            } else {
                w5_failed = 1;
            }
            if (p0)
                F(p0);
            if (p1)
                F(p1);
            if (p2)
                F(p2);
            if (p3)
                F(p3);
        }
        uint64_t t1 = bench_now_ns();
        w5_ns[c] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
        /* relaxed: a progress count; the data it covers is read after
         * pthread_join */
        atomic_store_explicit(&w5_runs, c + 1, memory_order_relaxed);
    }
    errno = saved;
}

static void *w5_target(void *p)
{
    const bench_backend *b = p;
    /* release: the sender may start signalling this thread */
    atomic_store_explicit(&w5_ready, 1, memory_order_release);
    /* relaxed: a stop flag, nothing hangs off it */
    while (!atomic_load_explicit(&w5_stop, memory_order_relaxed))
        bench_relax();
    /* No handler may run while this thread's allocator is torn down. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, W5_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (b)
        done(b);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

double bench_w5(const bench_backend *b, uint64_t runs)
{
    if (!runs)
        return -1;
    w5_ns = calloc(runs, sizeof *w5_ns);
    if (!w5_ns)
        return -1;
    w5_alloc = b ? b->alloc : NULL;
    w5_free = b ? b->free : NULL;
    w5_cap = runs;
    w5_failed = 0;
    atomic_store_explicit(&w5_runs, 0, memory_order_relaxed);
    atomic_store_explicit(&w5_stop, 0, memory_order_relaxed);
    atomic_store_explicit(&w5_ready, 0, memory_order_relaxed);

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = w5_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(W5_SIGNAL, &sa, &old);

    pthread_t t;
    if (pthread_create(&t, NULL, w5_target, (void *)b)) {
        fprintf(stderr, "sigsafe-bench: pthread_create failed\n");
        exit(1);
    }
    /* acquire: pairs with the target's release */
    while (!atomic_load_explicit(&w5_ready, memory_order_acquire))
        bench_relax();
    /*
     * One signal at a time: a standard signal sent while one is pending is
     * lost anyway, and waiting for the handler (yielding, in case the target
     * shares our CPU) keeps the storm at the rate the handler sustains.
     */
    uint64_t deadline = bench_now_ns() + 20ull * 1000000000u;
    /* relaxed: progress only; the durations are read after the join */
    uint64_t c = atomic_load_explicit(&w5_runs, memory_order_relaxed);
    while (c < runs && bench_now_ns() < deadline) {
        pthread_kill(t, W5_SIGNAL);
        unsigned spins = 0;
        uint64_t seen;
        while ((seen = atomic_load_explicit(&w5_runs, memory_order_relaxed)) ==
                   c &&
               spins < 100000)
            backoff(&spins);
        c = seen;
    }
    atomic_store_explicit(&w5_stop, 1, memory_order_relaxed);
    pthread_join(t, NULL);
    sigaction(W5_SIGNAL, &old, NULL);

    uint64_t got = atomic_load_explicit(&w5_runs, memory_order_relaxed);
    /* The mean of the middle 80 % of the runs: the clock may tick in
     * steps as coarse as 10 ns (some virtual machines), which a median
     * would round every run to; a mean over many runs, which start at
     * every phase of the tick, does not, and the trim drops the runs an
     * interrupt or a cold cache made slow. */
    double mean = -1;
    if (got && !w5_failed) {
        qsort(w5_ns, got, sizeof *w5_ns, cmp_u32);
        uint64_t lo = got / 10, hi = got - got / 10, sum = 0;
        for (uint64_t i = lo; i < hi; i++)
            sum += w5_ns[i];
        mean = (double)sum / (double)(hi - lo);
    }
    free(w5_ns);
    w5_ns = NULL;
    return mean;
}

/* ------------------------------------------------------------------ W6 */

/*
 * A sampling profiler's records: each sample allocates a record of a
 * 32-byte header plus 8 bytes per stack frame (32..256 bytes), fills the
 * header, and appends it to the current batch of 256.  A writer that lags
 * by W6_LAG batches frees the oldest batch whole, in record order, when a
 * new batch starts; the rest is drained at the end.  Up to about 2300
 * records are live.
 */
static void *w6_batch[W6_LAG + 1][W6_BATCH];

static void w6_free_batch(free_fn F, void **batch, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        F(batch[i]);
}

double bench_w6(const bench_backend *b, uint64_t records)
{
    alloc_fn A = b->alloc;
    free_fn F = b->free;
    unsigned cur = 0, fill = 0, full = 0;
    int err = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < records; i++) {
        size_t n = w6_size[i % W6_SIZES];
        uint64_t *rec = A(n);
        if (__builtin_expect(!rec, 0)) {
            err = -1;
            break;
        }
        rec[0] = i;                /* timestamp */
        rec[1] = (n - 32) / 8;     /* frames */
        w6_batch[cur][fill++] = rec;
        if (fill == W6_BATCH) {
            cur = (cur + 1) % (W6_LAG + 1);
            fill = 0;
            if (full == W6_LAG) /* the slot we move to holds the oldest */
                w6_free_batch(F, w6_batch[cur], W6_BATCH);
            else
                full++;
        }
    }
    /* Drain: the full batches before cur, then the partial one. */
    for (unsigned k = full; k > 0; k--)
        w6_free_batch(F, w6_batch[(cur + W6_LAG + 1 - k) % (W6_LAG + 1)],
                      W6_BATCH);
    w6_free_batch(F, w6_batch[cur], fill);
    uint64_t t1 = bench_now_ns();
    done(b);
    if (err || !records)
        return -1;
    return (double)(t1 - t0) / (double)records;
}
