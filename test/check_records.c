/* SPDX-License-Identifier: MIT */
/*
 * records: thread-cache records whose owner vanished (white-box: it reads
 * lib/internal.h and lib/tcache.h).  Three ways a record's owner stops in
 * the middle of an operation or leaves without giving its blocks back, each
 * run for SIGSAFE_RECORD_ROUNDS rounds (default 200; the stress label runs
 * 10,000):
 *   - fork while another thread is inside a cache operation: the child's
 *     new threads (on the dead thread's stack and TLS block) and its main
 *     thread allocate, and no block is handed out twice;
 *   - siglongjmp out of a handler that interrupted a cache operation (the
 *     handler checks the busy byte, so every round really cuts one short),
 *     then thread exit and a new thread on the same TLS block: no block
 *     twice;
 *   - threads on stacks of their own (pthread_attr_setstack, never reused)
 *     that free everything and exit: afterwards bytes_in_use is 0 and the
 *     whole capacity can be allocated again.
 * The exit hook: threads that made a set-up call give their records back
 * when they exit (a pool without system calls, where nothing else could),
 * torn ones included; a pool destroyed while such threads exit.  Threads
 * whose only sigsafe calls are in a handler get theirs back through the
 * kernel probe when the pool runs short.
 * And the salvage itself on a record built by hand: duplicates, live
 * blocks, blocks of another class and out-of-range entries are dropped;
 * every good block comes back exactly once.
 */
#include "support.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tcache.h"

static unsigned rounds(void)
{
    const char *e = getenv("SIGSAFE_RECORD_ROUNDS");
    long n = e ? strtol(e, NULL, 10) : 0;
    return n > 0 ? (unsigned)n : 200u;
}

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    return pool;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* n blocks of `size` bytes from pool: 0 if all are distinct and none
 * overlaps another, else 1.  The blocks are freed again. */
static int alloc_distinct(sigsafe_pool *pool, size_t size, unsigned n)
{
    uintptr_t p[256];
    unsigned got = 0;
    for (unsigned i = 0; i < n && i < 256; i++) {
        void *b = sigsafe_pool_alloc(pool, size);
        if (b) {
            memset(b, (int)i, size);
            p[got++] = (uintptr_t)b;
        }
    }
    uintptr_t s[256];
    memcpy(s, p, got * sizeof *p);
    qsort(s, got, sizeof *s, cmp_ptr);
    int bad = 0;
    for (unsigned i = 1; i < got; i++)
        if (s[i] < s[i - 1] + size)
            bad = 1;
    for (unsigned i = 0; i < got; i++)
        sigsafe_free((void *)p[i]);
    return bad;
}

/* ------------------------------------------------ fork mid-operation */

static sigsafe_pool *fk_pool;
static atomic_int fk_stop;

static void *hammer(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&fk_stop, memory_order_relaxed)) {
        void *a = sigsafe_pool_alloc(fk_pool, 16);
        void *b = sigsafe_pool_alloc(fk_pool, 16);
        sigsafe_free(a);
        sigsafe_free(b);
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    *(int *)arg = alloc_distinct(fk_pool, 16, 64) ||
                  alloc_distinct(fk_pool, 48, 64);
    return NULL;
}

START_TEST(fork_mid_operation)
{
    if (st_under_emulator()) {
        /* qemu 7.2: "cpu_exec: assertion failed: (cpu == current_cpu)". */
        printf("fork_mid_operation: skipped under qemu-user: the child of a "
               "fork taken while another thread runs cannot start a thread "
               "(the emulator aborts)\n");
        return;
    }
    fk_pool = make_pool("rec-fork", 4 * ST_MIB);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hammer, NULL), 0);
    unsigned n = rounds(), bad = 0;
    for (unsigned r = 0; r < n; r++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* The hammer's record was salvaged at fork (or will be when
             * the new thread meets its TLS block): nothing twice. */
            int dup = 0;
            pthread_t c;
            /* The sanitizers cannot start threads after a fork of a
             * threaded process (ThreadSanitizer refuses; AddressSanitizer's
             * allocator, which pthread_create calls, may have been locked
             * by a parent thread at the fork and then waits forever):
             * there the main thread alone checks. */
            if (!st_under_tsan() && !st_under_asan()) {
                if (pthread_create(&c, NULL, child_thread, &dup) != 0)
                    _exit(3);
                pthread_join(c, NULL);
            }
            if (dup || alloc_distinct(fk_pool, 16, 64))
                _exit(1);
            /* What the hammer held live or in flight at the fork stays
             * charged; nothing more. */
            sigsafe_stats s;
            sigsafe_pool_stats(fk_pool, &s);
            _exit(s.bytes_in_use <= 16 * 16 ? 0 : 2);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    atomic_store(&fk_stop, 1);
    pthread_join(t, NULL);
    printf("fork_mid_operation: %u rounds, %u bad\n", n, bad);
    ck_assert_uint_eq(bad, 0);
}
END_TEST

/* ------------------------------------------ siglongjmp mid-operation */

static sigsafe_pool *lj_pool;
static sigjmp_buf lj_env;
static atomic_int lj_cut; /* the worker was cut short inside the cache */
static atomic_int lj_stop; /* the worker is to stop uncut (see lj_cut_one) */

static void lj_handler(int signo)
{
    (void)signo;
    /* relaxed: this thread's own busy byte. */
    if (atomic_load_explicit(&sigsafe__tls.busy, memory_order_relaxed) &&
        !atomic_exchange(&lj_cut, 1)) /* once: busy stays set after it */
        siglongjmp(lj_env, 1);
}

static void *lj_worker(void *arg)
{
    (void)arg;
    /* volatile: read again after the siglongjmp */
    static _Thread_local void *volatile burst[200];
    if (sigsetjmp(lj_env, 1) == 0) {
        for (unsigned i = 0;
             !atomic_load(&lj_cut) && !atomic_load(&lj_stop); i++) {
            void *a = sigsafe_pool_alloc(lj_pool, 16 + 16 * (i % 4));
            void *b = sigsafe_pool_alloc(lj_pool, 16);
            sigsafe_free(b);
            sigsafe_free(a);
            /* Now and then more blocks than a bin holds, so that refills
             * and flushes, where busy is set longest, keep happening: a
             * cache sized to this loop would otherwise never leave its
             * fast paths, and under ThreadSanitizer, which defers a
             * signal to a later call into its runtime, such a worker was
             * seen to go minutes without a cut. */
            if (i % 64 == 63) {
                for (unsigned k = 0; k < 200; k++)
                    burst[k] = sigsafe_pool_alloc(lj_pool, 32);
                for (unsigned k = 0; k < 200; k++) {
                    void *p = burst[k];
                    burst[k] = NULL; /* before: a cut free is not redone */
                    sigsafe_free(p);
                }
            }
        }
    } else {
        /* Cut short: give back the burst's blocks (on the shared path
         * now), so that what stays charged is the cut operation's. */
        for (unsigned k = 0; k < 200; k++) {
            void *p = burst[k];
            burst[k] = NULL;
            sigsafe_free(p);
        }
    }
    return NULL; /* busy stays set: this thread's cache is off for good */
}

static void *lj_next(void *arg)
{
    *(int *)arg = alloc_distinct(lj_pool, 16, 64) ||
                  alloc_distinct(lj_pool, 32, 64) ||
                  alloc_distinct(lj_pool, 48, 64) ||
                  alloc_distinct(lj_pool, 64, 64);
    return NULL;
}

/* A new pool for the siglongjmp tests, and their handler on SIGUSR1. */
static void lj_setup(const char *name)
{
    lj_pool = make_pool(name, 4 * ST_MIB);
    struct sigaction sa = {.sa_handler = lj_handler};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* Start worker(arg) on a thread, send it SIGUSR1 until the handler has
 * cut one of its cache operations short, and join it: 1.  Under
 * ThreadSanitizer, which defers a signal to a later call into its
 * runtime, a worker may go long without a cut: after 3 s it is stopped
 * uncut (0), and the tests count the rounds that were cut. */
static unsigned lj_cut_one(void *(*worker)(void *), void *arg)
{
    atomic_store(&lj_cut, 0);
    atomic_store(&lj_stop, 0);
    pthread_t w;
    ck_assert_int_eq(pthread_create(&w, NULL, worker, arg), 0);
    long long until = st_now_ms() + 3000;
    while (!atomic_load(&lj_cut)) {
        if (st_under_tsan() && st_now_ms() > until) {
            atomic_store(&lj_stop, 1);
            break;
        }
        pthread_kill(w, SIGUSR1);
        for (volatile int spin = 0; spin < 200; spin++)
            ;
    }
    pthread_join(w, NULL);
    return !atomic_load(&lj_stop);
}

/* The siglongjmp tests' verdict after n rounds, cut of them cut short:
 * no bad round, every round cut (under ThreadSanitizer at least one: see
 * lj_cut_one), and at most a cut-short operation's blocks left charged
 * a round: a refill's or a flush's batch (half a bin), or a few more. */
static void lj_report(const char *name, unsigned n, unsigned cut,
                      unsigned bad)
{
    sigsafe_stats s = st_stats(lj_pool);
    printf("%s: %u rounds (%u cut), %u bad, %zu bytes left charged\n", name,
           n, cut, bad, s.bytes_in_use);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_ge(cut, st_under_tsan() ? 1 : n);
    ck_assert_uint_le(s.bytes_in_use,
                      (size_t)n * (lj_pool->tc_entries / 2 + 8) * 64);
}

START_TEST(longjmp_mid_operation)
{
    lj_setup("rec-longjmp");
    unsigned n = rounds(), bad = 0, cut = 0;
    for (unsigned r = 0; r < n; r++) {
        cut += lj_cut_one(lj_worker, NULL);
        /* The next thread gets the worker's stack and TLS block. */
        pthread_t x;
        int dup = 0;
        ck_assert_int_eq(pthread_create(&x, NULL, lj_next, &dup), 0);
        pthread_join(x, NULL);
        bad += dup != 0;
    }
    lj_report("longjmp_mid_operation", n, cut, bad);
}
END_TEST

/* Records of pool held by threads other than this one (0 once every
 * other user has exited and given its record back). */
static unsigned held_records(sigsafe_pool *pool)
{
    uint64_t me = atomic_load(&sigsafe__tls.token);
    unsigned n = 0;
    for (unsigned i = 0; i < SS_TC_RECORDS; i++) {
        uint64_t k = atomic_load(&ss_tc_record(pool, i)->key);
        n += k != 0 && k != me;
    }
    return n;
}

/* The whole capacity of pool in 16-byte blocks: 1 if all of it was
 * served (and is freed again). */
static int whole_capacity(sigsafe_pool *pool)
{
    size_t max = pool->capacity / 16, got = 0;
    void **all = malloc(max * sizeof *all);
    ck_assert_ptr_nonnull(all);
    while (got < max && (all[got] = sigsafe_pool_alloc(pool, 16)) != NULL)
        got++;
    for (size_t i = 0; i < got; i++)
        sigsafe_free(all[i]);
    free(all);
    return got == max;
}

/* -------------------------------------------- threads on own stacks */

/* ThreadSanitizer wants bigger stacks than 64 KiB of its threads. */
#define OWN_STACK ((size_t)(st_under_tsan() ? 1024 : 64) * 1024)
static sigsafe_pool *os_pool;

/* Runs fn in n threads, one after another, each on a stack of its own that
 * is never reused (all are kept until the end), so that no thread meets a
 * dead one's TLS block; after(), if given, runs after each join. */
static void run_on_own_stacks(unsigned n, void *(*fn)(void *),
                              void (*after)(void))
{
    char *stacks = malloc((size_t)n * OWN_STACK);
    ck_assert_ptr_nonnull(stacks);
    for (unsigned i = 0; i < n; i++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstack(&at, stacks + (size_t)i * OWN_STACK, OWN_STACK);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, &at, fn, NULL), 0);
        pthread_join(t, NULL);
        pthread_attr_destroy(&at);
        if (after)
            after();
    }
    free(stacks);
}

static void *os_worker(void *arg)
{
    (void)arg;
    void *keep[64];
    for (int k = 0; k < 64; k++)
        keep[k] = sigsafe_pool_alloc(os_pool, (size_t)(k % 16) * 64 + 16);
    for (int k = 0; k < 64; k++)
        sigsafe_free(keep[k]);
    return NULL;
}

START_TEST(own_stack_threads)
{
    size_t capacity = ST_MIB;
    os_pool = make_pool("rec-stacks", capacity);
    unsigned n = rounds() < 1000 ? 1000 : rounds();
    run_on_own_stacks(n, os_worker, NULL);
    ck_assert_uint_eq(st_stats(os_pool).bytes_in_use, 0);
    /* A block of half the capacity, then the whole capacity in 16-byte
     * blocks. */
    void *half = sigsafe_pool_alloc(os_pool, capacity / 2);
    ck_assert_ptr_nonnull(half);
    sigsafe_free(half);
    int whole = whole_capacity(os_pool);
    printf("own_stack_threads: %u threads; then the whole capacity %s\n", n,
           whole ? "served" : "NOT served");
    ck_assert_int_eq(whole, 1);
    ck_assert_uint_eq(st_stats(os_pool).bytes_in_use, 0);
}
END_TEST

/* ---------------------------------------------------- the exit hook */

static sigsafe_pool *ex_pool;

/* Given back at once, not only when the pool runs short. */
static void ex_none_held(void)
{
    ck_assert_uint_eq(held_records(ex_pool), 0);
}

static void *ex_worker(void *arg)
{
    /* A set-up call on this thread arms its exit hook. */
    ck_assert_int_eq(sigsafe_bind_signal(SIGUSR2, NULL), 0);
    void *keep[48];
    for (int k = 0; k < 48; k++)
        keep[k] = sigsafe_pool_alloc(ex_pool, (size_t)(k % 12) * 80 + 16);
    for (int k = 0; k < 48; k++)
        sigsafe_free(keep[k]);
    (void)arg;
    return NULL;
}

/*
 * A pool that may make no system call cannot ask the kernel which threads
 * are gone: threads on stacks of their own (never reused) that made a
 * set-up call give their cached blocks back at exit, by the hook.
 */
START_TEST(exit_hook_gives_back)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = "rec-exit", .capacity = ST_MIB,
                               .flags = SIGSAFE_POOL_NO_SYSCALLS};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    ex_pool = pool;
    unsigned n = 200;
    run_on_own_stacks(n, ex_worker, ex_none_held);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, (uint64_t)n * 48);
    ck_assert_uint_eq(s.frees, (uint64_t)n * 48);
    ck_assert_int_eq(whole_capacity(pool), 1);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* The hook salvages a record torn by a siglongjmp: the thread's next
 * operations took the shared path (busy stayed set), and at exit its
 * record comes back with nothing in it twice. */
static void *lj_worker_armed(void *arg)
{
    ck_assert_int_eq(sigsafe_bind_signal(SIGUSR2, NULL), 0);
    void *r = lj_worker(arg);
    /* busy is stuck: these go through the shared lists. */
    *(int *)arg = alloc_distinct(lj_pool, 16, 64);
    return r;
}

START_TEST(exit_hook_salvages_torn)
{
    lj_setup("rec-exit-torn");
    unsigned n = rounds(), bad = 0, cut = 0;
    for (unsigned r = 0; r < n; r++) {
        int dup = 0;
        cut += lj_cut_one(lj_worker_armed, &dup);
        bad += dup != 0 || held_records(lj_pool) != 0;
        bad += alloc_distinct(lj_pool, 16, 64) || alloc_distinct(lj_pool, 48, 64);
    }
    lj_report("exit_hook_salvages_torn", n, cut, bad);
}
END_TEST

/* Threads whose only sigsafe calls are in a signal handler (no set-up
 * call, so no exit hook), on stacks of their own: the pool, short of
 * memory, asks the kernel which owners are gone and takes their records
 * back. */
static sigsafe_pool *ho_pool;
static void ho_handler(int signo)
{
    (void)signo;
    void *keep[32];
    for (int k = 0; k < 32; k++)
        keep[k] = sigsafe_pool_alloc(ho_pool, (size_t)(k % 8) * 128 + 16);
    for (int k = 0; k < 32; k++)
        sigsafe_free(keep[k]);
}

static void *ho_worker(void *arg)
{
    (void)arg;
    raise(SIGUSR2);
    return NULL;
}

START_TEST(handler_only_threads)
{
    size_t capacity = ST_MIB;
    ho_pool = make_pool("rec-handler-only", capacity);
    struct sigaction sa = {.sa_handler = ho_handler};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    run_on_own_stacks(256, ho_worker, NULL);
    ck_assert_uint_eq(st_stats(ho_pool).bytes_in_use, 0);
    void *half = sigsafe_pool_alloc(ho_pool, capacity / 2);
    ck_assert_ptr_nonnull(half);
    sigsafe_free(half);
    ck_assert_int_eq(whole_capacity(ho_pool), 1);
    signal(SIGUSR2, SIG_DFL);
}
END_TEST

/* A pool destroyed while threads that used it are exiting: the destroy
 * waits for their hooks' scans, none touches an unmapped pool. */
static atomic_int dr_done;
static void *dr_worker(void *arg)
{
    sigsafe_pool *pool = arg;
    ck_assert_int_eq(sigsafe_bind_signal(SIGUSR2, NULL), 0);
    void *p = sigsafe_pool_alloc(pool, 64);
    sigsafe_free(p);
    atomic_fetch_add(&dr_done, 1); /* done with the pool: then it exits */
    return NULL;
}

START_TEST(destroy_while_threads_exit)
{
    for (unsigned r = 0; r < 300; r++) {
        sigsafe_pool *pool = make_pool("rec-destroy", 2 * ST_MIB);
        atomic_store(&dr_done, 0);
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(pthread_create(&t[i], NULL, dr_worker, pool), 0);
        }
        while (atomic_load(&dr_done) < 4)
            ;
        sigsafe_pool_destroy(pool);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
}
END_TEST

/* ------------------------------------------------ salvage by hand */

START_TEST(salvage_trusts_nothing)
{
    sigsafe_pool *pool = make_pool("rec-salvage", 4 * ST_MIB);
    /* A record nobody holds, locked as a salvager would. */
    ss_tcache *r = NULL;
    for (unsigned i = 0; i < SS_TC_RECORDS && !r; i++)
        if (atomic_load(&ss_tc_record(pool, i)->key) == 0)
            r = ss_tc_record(pool, i);
    ck_assert_ptr_nonnull(r);
    atomic_store(&r->key, SS_TC_LOCK | 0x5eedu);
    /* Class 0 (16 B): six live blocks; four turned
     * "free and cached" by hand, one left live, one of them listed twice,
     * plus an out-of-range entry.  Class 1 (32 B): a 16-byte block's grain
     * (wrong class). */
    void *b[6];
    for (int i = 0; i < 6; i++) {
        b[i] = sigsafe_pool_alloc(pool, 16);
        ck_assert_ptr_nonnull(b[i]);
    }
    uint32_t g[6];
    for (int i = 0; i < 6; i++) {
        g[i] = (uint32_t)(((uintptr_t)b[i] - pool->small_base) >> 4);
        if (i < 4 || i == 5)
            atomic_store(&pool->states[ss_state_index(g[i])], ss_st_free(0));
    }
    uint64_t before = st_stats(pool).bytes_in_use;
    ss_tc_bin *bin = ss_tc_bin_at(pool, r, 0);
    uint32_t e[] = {g[0], g[1], g[1], g[2], g[3], g[4], 0xfffffff0u};
    for (unsigned i = 0; i < 7; i++)
        bin->g[i] = e[i];
    atomic_store(&bin->n, 7);
    ss_tc_bin_at(pool, r, 1)->g[0] = g[5];
    atomic_store(&ss_tc_bin_at(pool, r, 1)->n, 1);
    ck_assert_uint_eq(sigsafe__tc_salvage(pool, r), 4);
    ck_assert_uint_eq(atomic_load(&bin->n), 0);
    ck_assert_uint_eq(atomic_load(&ss_tc_bin_at(pool, r, 1)->n), 0);
    atomic_store(&r->key, 0);
    /* The four came back once each: 64 allocations never repeat one. */
    ck_assert_uint_eq(before - st_stats(pool).bytes_in_use, 4 * 16);
    ck_assert_int_eq(alloc_distinct(pool, 16, 64), 0);
    /* b[4] is still live and b[5] never came back: both stay charged. */
    sigsafe_free(b[4]);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 16);
}
END_TEST

static Suite *records_suite(void)
{
    Suite *s = suite_create("records");
    TCase *tc = tcase_create("vanished");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, salvage_trusts_nothing);
    tcase_add_test(tc, fork_mid_operation);
    tcase_add_test(tc, longjmp_mid_operation);
    tcase_add_test(tc, own_stack_threads);
    tcase_add_test(tc, exit_hook_gives_back);
    tcase_add_test(tc, exit_hook_salvages_torn);
    tcase_add_test(tc, handler_only_threads);
    tcase_add_test(tc, destroy_while_threads_exit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(records_suite());
}
