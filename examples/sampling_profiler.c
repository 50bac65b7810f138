/* SPDX-License-Identifier: MIT */
/*
 * sampling_profiler: a statistical CPU profiler in one file, built on
 * sigsafe.
 *
 *   sampling_profiler [--threads N] [--seconds S] [--hz H] [--pool-bytes B]
 *
 * ITIMER_PROF sends SIGPROF to the process every 1/H s of CPU time it uses
 * (about 1 kHz by default); the kernel delivers it to a thread that is
 * running.  The handler, installed with sigsafe_sigaction() and bound to a
 * pool of its own, takes a sample record from that pool, fills it with the
 * interrupted thread's stack (libgcc's _Unwind_Backtrace) and pushes it on
 * a lock-free list.  When the pool is full, sigsafe_alloc() returns NULL and
 * the sample is dropped and counted: the handler never blocks, never calls
 * malloc, and can never take memory the crash reporter or anyone else needs.
 *
 * After the run, outside any handler, samples are symbolised with dladdr()
 * (the program is linked with -rdynamic so its own functions are found) and
 * the functions that were on CPU most often are printed.  The built-in
 * workload spends about four fifths of its time in workload_hot().
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unwind.h>

#include <sigsafe.h>

#define MAX_FRAMES 32
#define MAX_THREADS 64
#define TOP 10

/* ------------------------------------------------------------ workload */

/* Exported (not static) so that dladdr() can name them. */
double workload_hot(unsigned n);
double workload_warm(unsigned n);
void *workload_thread(void *arg);

static atomic_int stop;
/* Read through volatile: the compiler may neither hoist a call out of the
 * worker's loop nor fold the loops away. */
static volatile double seed = 1.0;

__attribute__((noinline)) double workload_hot(unsigned n)
{
    double x = seed;
    for (unsigned i = 0; i < n; i++)
        x = x * 1.0000001 + 1e-9; /* a dependency chain: no shortcut */
    return x;
}

__attribute__((noinline)) double workload_warm(unsigned n)
{
    double x = seed + 1.0;
    for (unsigned i = 0; i < n; i++)
        x = x * 0.9999999 + 1e-9;
    return x;
}

void *workload_thread(void *arg)
{
    double *result = arg; /* keeps the work from being optimised away */
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &prof, NULL); /* the main thread blocks it */
    double acc = 0;
    /* relaxed: a flag; pthread_join() orders what the thread wrote. */
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        acc += workload_hot(400000); /* four parts hot ... */
        acc += workload_warm(100000); /* ... to one part warm */
    }
    *result = acc;
    return NULL;
}

/* --------------------------------------------------- AS-safe: sampling */

typedef struct sample {
    struct sample *next;
    int nframes;
    uintptr_t pc[MAX_FRAMES]; /* [0]: the interrupted pc; then returns */
} sample;

static sigsafe_pool *prof_pool;
static _Atomic(sample *) samples; /* LIFO; only pushed while sampling */
static atomic_ulong taken, dropped;

typedef struct walk {
    sample *s;
    int started; /* the signal frame was reached */
} walk;

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    walk *w = arg;
    int before_insn = 0;
    uintptr_t ip = (uintptr_t)_Unwind_GetIPInfo(ctx, &before_insn);
    if (!ip)
        return _URC_END_OF_STACK;
    /* Frames before the interrupted one are this handler's own. */
    if (!w->started && !before_insn)
        return _URC_NO_REASON;
    w->started = 1;
    w->s->pc[w->s->nframes++] = ip;
    return w->s->nframes == MAX_FRAMES ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static uintptr_t context_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

static void on_prof(int sig, siginfo_t *info, void *uc)
{
    (void)sig, (void)info;
    int saved = errno;
    /* The trampoline entered prof_pool's context: no pool argument. */
    sample *s = sigsafe_alloc(sizeof *s);
    if (!s) {
        /* relaxed: a count, read after the threads are joined. */
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
        errno = saved;
        return;
    }
    s->nframes = 0;
    walk w = {s, 0};
    _Unwind_Backtrace(unwind_step, &w);
    if (!w.started) { /* the unwinder could not cross the signal frame */
        s->pc[0] = context_pc(uc);
        s->nframes = 1;
    }
    /* Push: lock-free, and ABA-free since nothing pops while sampling.
     * release: publishes the record; pairs with the acquire exchange in
     * main() after the workers are joined. */
    sample *head = atomic_load_explicit(&samples, memory_order_relaxed);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &samples, &head, s, memory_order_release, memory_order_relaxed));
    atomic_fetch_add_explicit(&taken, 1, memory_order_relaxed); /* a count */
    errno = saved;
}

/* ------------------------------------------------ after the run: report */

typedef struct func {
    char *name; /* malloc'd */
    unsigned long self, total;
} func;

typedef struct table {
    func *f;
    size_t n, cap;
} table;

static func *lookup(table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->f[i].name, name))
            return &t->f[i];
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->f = realloc(t->f, t->cap * sizeof *t->f);
        if (!t->f) {
            perror("sampling_profiler");
            exit(1);
        }
    }
    t->f[t->n] = (func){strdup(name), 0, 0};
    if (!t->f[t->n].name) {
        perror("sampling_profiler");
        exit(1);
    }
    return &t->f[t->n++];
}

/* The symbol, else "[module]" (a static function, or a stripped one). */
static const char *name_of(uintptr_t pc, char *buf, size_t size)
{
    Dl_info info;
    if (!dladdr((void *)pc, &info))
        return "[unknown]";
    if (info.dli_sname)
        return info.dli_sname;
    const char *base = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
    snprintf(buf, size, "[%s]",
             base ? base + 1 : info.dli_fname ? info.dli_fname : "unknown");
    return buf;
}

static int by_self(const void *a, const void *b)
{
    const func *x = a, *y = b;
    return x->self < y->self ? 1 : x->self > y->self ? -1 : 0;
}

static void print_profile(sample *list, unsigned long n)
{
    table t = {0};
    for (sample *s = list; s; s = s->next) {
        func *seen[MAX_FRAMES];
        int nseen = 0;
        for (int i = 0; i < s->nframes; i++) {
            /* A return address points after its call: name the call. */
            char buf[256];
            func *f = lookup(&t, name_of(i ? s->pc[i] - 1 : s->pc[i], buf,
                                         sizeof buf));
            if (i == 0)
                f->self++;
            int dup = 0;
            for (int j = 0; j < nseen; j++)
                dup |= seen[j] == f;
            if (!dup) {
                f->total++;
                seen[nseen++] = f;
            }
        }
    }
    qsort(t.f, t.n, sizeof *t.f, by_self);
    printf("  self   total  function\n");
    for (size_t i = 0; i < t.n && i < TOP; i++)
        printf("%5.1f%%  %5.1f%%  %s\n", 100.0 * t.f[i].self / n,
               100.0 * t.f[i].total / n, t.f[i].name);
    if (t.n)
        printf("hottest function: %s (%.1f%% of samples)\n", t.f[0].name,
               100.0 * t.f[0].self / n);
    for (size_t i = 0; i < t.n; i++)
        free(t.f[i].name);
    free(t.f);
}

/* ----------------------------------------------------------------- main */

static _Unwind_Reason_Code warm_step(struct _Unwind_Context *ctx, void *arg)
{
    (void)ctx, (void)arg;
    return _URC_NO_REASON;
}

static void usage(void)
{
    fprintf(stderr, "usage: sampling_profiler [--threads N] [--seconds S] "
                    "[--hz H] [--pool-bytes B]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int nthreads = 4, hz = 1000;
    double seconds = 1.0;
    size_t pool_bytes = (size_t)4 << 20;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *opt = argv[i], *val = argv[++i];
        if (!strcmp(opt, "--threads"))
            nthreads = atoi(val);
        else if (!strcmp(opt, "--seconds"))
            seconds = atof(val);
        else if (!strcmp(opt, "--hz"))
            hz = atoi(val);
        else if (!strcmp(opt, "--pool-bytes"))
            pool_bytes = strtoull(val, NULL, 0);
        else
            usage();
    }
    if (nthreads < 1 || nthreads > MAX_THREADS || hz < 1 || hz > 1000000 ||
        !(seconds > 0))
        usage();

    /* A pool of its own: a profiler that fills it drops samples; it cannot
     * starve anyone else. */
    sigsafe_pool_config cfg = {.name = "profiler", .capacity = pool_bytes};
    int err = sigsafe_pool_create(&cfg, &prof_pool);
    if (!err)
        err = sigsafe_bind_signal(SIGPROF, prof_pool);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_prof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (!err)
        err = sigsafe_sigaction(SIGPROF, &sa, NULL);
    if (err) {
        fprintf(stderr, "sampling_profiler: set-up failed: %s\n",
                strerror(err));
        return 1;
    }
    /* libgcc initialises its unwinder on first use: not in the handler. */
    _Unwind_Backtrace(warm_step, NULL);

    /* Only the workers take SIGPROF: the main thread blocks it (and the
     * workers inherit the mask, then unblock it). */
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &prof, NULL);
    pthread_t tids[MAX_THREADS];
    double results[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], NULL, workload_thread, &results[i])) {
            fprintf(stderr, "sampling_profiler: cannot start threads\n");
            return 1;
        }

    long usec = 1000000 / hz ? 1000000 / hz : 1;
    struct itimerval on = {{usec / 1000000, usec % 1000000},
                           {usec / 1000000, usec % 1000000}};
    setitimer(ITIMER_PROF, &on, NULL);
    struct timespec run = {(time_t)seconds,
                           (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&run, &run) != 0 && errno == EINTR)
        ;
    atomic_store_explicit(&stop, 1, memory_order_relaxed);
    for (int i = 0; i < nthreads; i++)
        pthread_join(tids[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    /* A SIGPROF still pending for the process is dropped here. */
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigsafe_sigaction(SIGPROF, &sa, NULL);

    /* acquire: pairs with the release pushes in on_prof(). */
    sample *list = atomic_exchange_explicit(&samples, NULL,
                                            memory_order_acquire);
    unsigned long n = atomic_load_explicit(&taken, memory_order_relaxed);
    unsigned long lost = atomic_load_explicit(&dropped, memory_order_relaxed);
    sigsafe_stats st;
    sigsafe_pool_stats(prof_pool, &st);
    printf("sampling_profiler: %d threads, %.2f s, %d Hz of CPU time\n",
           nthreads, seconds, hz);
    printf("samples: %lu taken, %lu dropped (pool \"profiler\" full)\n", n,
           lost);
    printf("pool \"profiler\": capacity %zu, peak in use %zu, allocs %llu, "
           "failed allocs %llu\n",
           st.capacity, st.peak_bytes_in_use, (unsigned long long)st.allocs,
           (unsigned long long)st.failed_allocs);
    if (n)
        print_profile(list, n);
    else
        printf("no samples: the workers used no CPU time?\n");
    while (list) {
        sample *next = list->next;
        sigsafe_free(list);
        list = next;
    }
    sigsafe_bind_signal(SIGPROF, NULL);
    sigsafe_pool_destroy(prof_pool);
    return n ? 0 : 1;
}
