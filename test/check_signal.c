/* SPDX-License-Identifier: MIT */
/*
 * signal: allocation from signal handlers (SPEC guarantees 2, 4 and 7).
 *
 * Handlers are installed with plain sigaction: a handler for a signal with
 * no bound pool runs in the default pool's context, so sigsafe_alloc there
 * uses the default pool, and sigsafe_pool_alloc an explicit one. Handlers
 * use nothing but sigsafe, atomics and the AS-safe pattern helpers; they
 * record problems in counters that the test checks afterwards.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NWORKERS = 3, WSLOTS = 64 };
#define RUN_MS 2000

static sigsafe_pool *g_pool;    /* the explicit pool everyone shares */
static sigsafe_pool *g_default; /* sigsafe_default_pool(), cached */

static atomic_ulong h_runs, h_bad, h_nulls, h_errno, h_seq;
static atomic_ulong h_bad_block, h_bad_calloc, h_bad_realloc, h_bad_pattern;
static atomic_ulong w_bad, w_nulls, w_ops;
static atomic_ulong n_usr1, n_usr2, n_nested_bad;
static atomic_bool w_stop;

/* -------------------------------------------------------------- handlers */

/*
 * The hot class: workers, the main loop and the handlers all churn blocks
 * of this size, and each thread's handlers keep a few of them across
 * invocations (the stash), so that a handler's net effect on that free list
 * is never zero: an interrupted pop or push that is not reentrant then
 * hands one block to two owners, which the patterns reveal.
 */
enum { HOT = 48, STASH = 4 };
#define HOT_SEED 0x5A5Aull
/* Atomic slots: a handler nested in another on this thread may swap the
 * same slot, and an exchange leaves no window between read and write. */
static _Thread_local _Atomic(void *) stash[STASH];
static atomic_ulong h_bad_hot;

static void hot_churn(uint64_t *rng)
{
    void *x[3];
    for (int i = 0; i < 3; i++) {
        x[i] = (i & 1) ? sigsafe_alloc(HOT) : sigsafe_pool_alloc(g_pool, HOT);
        if (x[i] == NULL) {
            atomic_fetch_add_explicit(&h_nulls, 1, memory_order_relaxed);
            continue;
        }
        st_fill(x[i], HOT, HOT_SEED);
    }
    /* Keep one in the stash, release the block it displaces. */
    int keep = (int)(st_rand(rng) % 3), s = (int)(st_rand(rng) % STASH);
    x[keep] = atomic_exchange(&stash[s], x[keep]);
    for (int j = 0; j < 3; j++) {
        int i = (keep + 1 + j) % 3; /* not allocation order */
        if (x[i] == NULL)
            continue;
        if (st_check(x[i], HOT, HOT_SEED) != SIZE_MAX) {
            atomic_fetch_add_explicit(&h_bad, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&h_bad_hot, 1, memory_order_relaxed);
        }
        sigsafe_free(x[i]);
    }
}

/* Release this thread's stash; call with the test signals blocked. */
static void flush_stash(void)
{
    for (int s = 0; s < STASH; s++) {
        void *p = atomic_exchange(&stash[s], NULL);
        if (p != NULL && st_check(p, HOT, HOT_SEED) != SIZE_MAX) {
            atomic_fetch_add(&h_bad, 1);
            atomic_fetch_add(&h_bad_hot, 1);
        }
        sigsafe_free(p);
    }
}

/* Allocate a few blocks (both pools), fill, check, free. AS-safe. */
static void handler_work(int signo)
{
    uint64_t rng = (atomic_fetch_add_explicit(&h_seq, 1, memory_order_relaxed)
                    << 8) ^ (uint64_t)signo;
    void *blk[4];
    size_t len[4];
    uint64_t seed[4];
    hot_churn(&rng);
    int k = 1 + (int)(st_rand(&rng) % 4);
    for (int i = 0; i < k; i++) {
        len[i] = st_rand_size(&rng, 40000);
        sigsafe_pool *want = (i & 1) ? g_default : g_pool;
        blk[i] = (i & 1) ? sigsafe_alloc(len[i])
                         : sigsafe_pool_alloc(g_pool, len[i]);
        if (blk[i] == NULL) {
            atomic_fetch_add_explicit(&h_nulls, 1, memory_order_relaxed);
            continue;
        }
        if (sigsafe_usable_size(blk[i]) < len[i] ||
            sigsafe_pool_of(blk[i]) != want || (uintptr_t)blk[i] % 16 != 0) {
            atomic_fetch_add_explicit(&h_bad, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&h_bad_block, 1, memory_order_relaxed);
        }
        seed[i] = rng + (uint64_t)i;
        st_fill_sparse(blk[i], len[i], seed[i]);
    }
    /* One calloc and one realloc too. */
    unsigned char *c = sigsafe_pool_calloc(g_pool, 1, 200);
    if (c == NULL || st_first_nonzero(c, 200) != SIZE_MAX) {
        atomic_fetch_add_explicit(&h_bad, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h_bad_calloc, 1, memory_order_relaxed);
    }
    if (c != NULL) {
        st_fill(c, 200, 1);
        unsigned char *r = sigsafe_realloc(c, 3000);
        if (r == NULL) {
            atomic_fetch_add_explicit(&h_nulls, 1, memory_order_relaxed);
            sigsafe_free(c);
        } else {
            if (st_check_moved(r, 200, (uintptr_t)c, 1) != SIZE_MAX ||
                sigsafe_pool_of(r) != g_pool) {
                atomic_fetch_add_explicit(&h_bad, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&h_bad_realloc, 1,
                                          memory_order_relaxed);
            }
            sigsafe_free(r);
        }
    }
    for (int i = 0; i < k; i++) {
        if (blk[i] == NULL)
            continue;
        if (st_check_sparse(blk[i], len[i], seed[i]) != SIZE_MAX) {
            atomic_fetch_add_explicit(&h_bad, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&h_bad_pattern, 1, memory_order_relaxed);
        }
        sigsafe_free(blk[i]);
    }
}

static void storm_handler(int signo)
{
    int saved = errno;
    errno = ST_ERRNO_SENTINEL;
    handler_work(signo);
    if (errno != ST_ERRNO_SENTINEL)
        atomic_fetch_add_explicit(&h_errno, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h_runs, 1, memory_order_relaxed);
    errno = saved;
}

/* A light handler for very high signal rates: the hot-class churn only. */
static void light_handler(int signo)
{
    int saved = errno;
    errno = ST_ERRNO_SENTINEL;
    uint64_t rng = (atomic_fetch_add_explicit(&h_seq, 1, memory_order_relaxed)
                    << 8) ^ (uint64_t)signo;
    hot_churn(&rng);
    if (errno != ST_ERRNO_SENTINEL)
        atomic_fetch_add_explicit(&h_errno, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h_runs, 1, memory_order_relaxed);
    errno = saved;
}

/* Nested: SIGUSR1 holds a block while SIGUSR2 (raised inside it) runs.
 * Per thread: the storm delivers SIGUSR1 on several threads at once. */
static _Thread_local void *volatile usr1_block;
static _Thread_local volatile size_t usr1_len;

static void usr2_handler(int signo)
{
    int saved = errno;
    errno = ST_ERRNO_SENTINEL;
    unsigned char *a = usr1_block;
    size_t alen = usr1_len;
    void *b = sigsafe_alloc(alen);
    void *c = sigsafe_pool_alloc(g_pool, alen);
    if (b == NULL || c == NULL) {
        atomic_fetch_add_explicit(&h_nulls, 1, memory_order_relaxed);
    } else {
        /* Never the block the interrupted handler holds. */
        uintptr_t ua = (uintptr_t)a, ub = (uintptr_t)b;
        if (a != NULL && ub < ua + alen && ua < ub + alen)
            atomic_fetch_add_explicit(&n_nested_bad, 1, memory_order_relaxed);
        st_fill(b, alen, 2);
        st_fill(c, alen, 3);
        if (st_check(b, alen, 2) != SIZE_MAX ||
            st_check(c, alen, 3) != SIZE_MAX)
            atomic_fetch_add_explicit(&n_nested_bad, 1, memory_order_relaxed);
    }
    sigsafe_free(b);
    sigsafe_free(c);
    handler_work(signo);
    if (errno != ST_ERRNO_SENTINEL)
        atomic_fetch_add_explicit(&h_errno, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_usr2, 1, memory_order_relaxed);
    errno = saved;
}

static void usr1_handler(int signo)
{
    (void)signo;
    int saved = errno;
    errno = ST_ERRNO_SENTINEL;
    uint64_t rng = atomic_fetch_add_explicit(&h_seq, 1, memory_order_relaxed);
    size_t len = 16 + st_rand_size(&rng, 20000);
    unsigned char *a = sigsafe_alloc(len);
    if (a == NULL) {
        atomic_fetch_add_explicit(&h_nulls, 1, memory_order_relaxed);
    } else {
        /* No pool bound to SIGUSR1: the default pool's context. */
        if (sigsafe_pool_of(a) != g_default)
            atomic_fetch_add_explicit(&n_nested_bad, 1, memory_order_relaxed);
        st_fill(a, len, 7);
        void *prev_block = usr1_block; /* a storm may nest USR1 in USR2 */
        size_t prev_len = usr1_len;
        usr1_len = len;
        usr1_block = a;
        raise(SIGUSR2);
        usr1_block = prev_block;
        usr1_len = prev_len;
        if (st_check(a, len, 7) != SIZE_MAX)
            atomic_fetch_add_explicit(&n_nested_bad, 1, memory_order_relaxed);
        sigsafe_free(a);
    }
    if (errno != ST_ERRNO_SENTINEL)
        atomic_fetch_add_explicit(&h_errno, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_usr1, 1, memory_order_relaxed);
    errno = saved;
}

/* --------------------------------------------------------------- workers */

static void block_test_signals(void);

static uint64_t wseed(const void *p)
{
    return (uint64_t)sigsafe_usable_size(p) ^ 0xABCDEFull;
}

static void *worker_main(void *arg)
{
    uint64_t rng = 0x1234567ull * ((uintptr_t)arg + 1);
    void *slot[WSLOTS] = {0};
    unsigned long ops = 0;
    while (!atomic_load_explicit(&w_stop, memory_order_relaxed)) {
        int i = (int)(st_rand(&rng) % WSLOTS);
        ops++;
        if (slot[i] != NULL) {
            void *p = slot[i];
            size_t u = sigsafe_usable_size(p);
            if (u == 0 || st_check(p, u, wseed(p)) != SIZE_MAX)
                atomic_fetch_add_explicit(&w_bad, 1, memory_order_relaxed);
            sigsafe_free(p);
            slot[i] = NULL;
            continue;
        }
        size_t n = (st_rand(&rng) & 1) ? HOT : st_rand_size(&rng, 60000);
        void *p = (st_rand(&rng) & 1) ? sigsafe_pool_alloc(g_pool, n)
                                      : sigsafe_alloc(n);
        if (p == NULL) {
            atomic_fetch_add_explicit(&w_nulls, 1, memory_order_relaxed);
            continue;
        }
        st_fill(p, sigsafe_usable_size(p), wseed(p));
        slot[i] = p;
    }
    block_test_signals();
    flush_stash();
    for (int i = 0; i < WSLOTS; i++) {
        if (slot[i] != NULL &&
            st_check(slot[i], sigsafe_usable_size(slot[i]),
                     wseed(slot[i])) != SIZE_MAX)
            atomic_fetch_add_explicit(&w_bad, 1, memory_order_relaxed);
        sigsafe_free(slot[i]);
    }
    atomic_fetch_add(&w_ops, ops);
    return NULL;
}

/* ------------------------------------------------------------- harness */

/* Report lines: nothing here is bad input, so any line is a corruption
 * that the library detected (and survived); the tests treat it as one. */
static st_capture g_cap;

static void assert_no_reports(void)
{
    size_t lines = st_capture_lines(&g_cap);
    ck_assert_msg(lines == 0, "%zu report lines, the first: %.200s", lines,
                  g_cap.buf);
}

static void setup_pools(void)
{
    st_capture_begin(&g_cap);
    sigsafe_pool_config dcfg = {.name = "sig-default", .capacity = 64 * ST_MIB};
    ck_assert_int_eq(sigsafe_init(&dcfg), 0);
    g_default = sigsafe_default_pool();
    ck_assert_ptr_nonnull(g_default);
    sigsafe_pool_config cfg = {.name = "sig-shared", .capacity = 64 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &g_pool), 0);
}

static void block_test_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    sigaddset(&set, SIGALRM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void start_workers(pthread_t *t, int n)
{
    atomic_store(&w_stop, false);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(
            pthread_create(&t[i], NULL, worker_main, (void *)(uintptr_t)i), 0);
}

static void stop_workers(pthread_t *t, int n)
{
    atomic_store(&w_stop, true);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static void assert_quiet_pools(void)
{
    /* No handler may run while the pools are read. */
    block_test_signals();
    flush_stash();
    sigsafe_pool *pools[2] = {g_pool, g_default};
    for (int i = 0; i < 2; i++) {
        sigsafe_stats s = st_stats(pools[i]);
        ck_assert_msg(s.bytes_in_use == 0,
                      "%s pool: bytes_in_use %zu after everything was freed",
                      i ? "default" : "shared", s.bytes_in_use);
        ck_assert_msg(s.allocs == s.frees, "%s pool: allocs %llu frees %llu",
                      i ? "default" : "shared", (unsigned long long)s.allocs,
                      (unsigned long long)s.frees);
        ck_assert_uint_eq(s.rejected_frees, 0);
    }
    assert_no_reports();
}

static void assert_no_handler_errors(void)
{
    ck_assert_msg(atomic_load(&h_bad) == 0,
                  "handlers: %lu wrong blocks (usable_size/pool_of/"
                  "alignment), %lu calloc not zeroed, %lu realloc lost data "
                  "or pool, %lu patterns lost, %lu hot-class blocks shared",
                  atomic_load(&h_bad_block), atomic_load(&h_bad_calloc),
                  atomic_load(&h_bad_realloc), atomic_load(&h_bad_pattern),
                  atomic_load(&h_bad_hot));
    ck_assert_msg(atomic_load(&h_errno) == 0,
                  "errno changed by sigsafe inside %lu handler runs",
                  atomic_load(&h_errno));
    ck_assert_msg(atomic_load(&h_nulls) == 0,
                  "%lu allocations failed in handlers", atomic_load(&h_nulls));
    ck_assert_msg(atomic_load(&w_bad) == 0,
                  "%lu worker blocks corrupted", atomic_load(&w_bad));
    ck_assert_msg(atomic_load(&w_nulls) == 0,
                  "%lu allocations failed in workers", atomic_load(&w_nulls));
    ck_assert_msg(atomic_load(&n_nested_bad) == 0,
                  "%lu nested-handler errors", atomic_load(&n_nested_bad));
}

/* Workers hammer both pools while handlers on their threads (and on the
 * main thread) allocate and free from the same pools. */
START_TEST(storm_handlers_and_workers)
{
    setup_pools();
    st_install_handler(SIGPROF, storm_handler, 0);
    st_install_handler(SIGALRM, storm_handler, 0);
    st_install_handler(SIGUSR1, storm_handler, 0);
    st_install_handler(SIGUSR2, storm_handler, 0);
    pthread_t t[NWORKERS];
    start_workers(t, NWORKERS);
    st_storm s;
    st_storm_config cfg = {.prof_interval_us = 200,
                           .real_interval_us = 500,
                           .targets = t,
                           .ntargets = NWORKERS,
                           .kill_signo = {SIGUSR1, SIGUSR2},
                           .kill_interval_us = 100};
    st_storm_start(&s, &cfg);
    st_sleep_ms(RUN_MS);
    unsigned long kills = st_storm_stop(&s);
    stop_workers(t, NWORKERS);
    printf("storm: %lu handler runs, %lu kills, %lu worker ops\n",
           atomic_load(&h_runs), kills, atomic_load(&w_ops));
    assert_no_handler_errors();
    ck_assert_msg(atomic_load(&h_runs) > 100, "handlers ran only %lu times",
                  atomic_load(&h_runs));
    assert_quiet_pools();
}
END_TEST

/* SIGUSR2 raised inside the SIGUSR1 handler; both allocate. */
START_TEST(nested_raise)
{
    setup_pools();
    st_install_handler(SIGUSR1, usr1_handler, 0);
    st_install_handler(SIGUSR2, usr2_handler, 0);
    enum { N = 3000 };
    void *held = sigsafe_alloc(100); /* main holds blocks meanwhile */
    ck_assert_ptr_nonnull(held);
    st_fill(held, 100, 9);
    for (int i = 0; i < N; i++)
        raise(SIGUSR1);
    ck_assert_uint_eq(atomic_load(&n_usr1), N);
    ck_assert_uint_eq(atomic_load(&n_usr2), N);
    ck_assert(st_check(held, 100, 9) == SIZE_MAX);
    sigsafe_free(held);
    assert_no_handler_errors();
    assert_quiet_pools();
}
END_TEST

/* The nested handlers under a storm, with workers on the same pools. */
START_TEST(nested_under_storm)
{
    setup_pools();
    st_install_handler(SIGUSR1, usr1_handler, 0);
    st_install_handler(SIGUSR2, usr2_handler, 0);
    st_install_handler(SIGPROF, storm_handler, 0);
    st_install_handler(SIGALRM, storm_handler, 0);
    pthread_t t[NWORKERS];
    start_workers(t, NWORKERS);
    st_storm s;
    st_storm_config cfg = {.prof_interval_us = 200,
                           .real_interval_us = 300,
                           .targets = t,
                           .ntargets = NWORKERS,
                           .kill_signo = {SIGUSR1, SIGUSR1},
                           .kill_interval_us = 100};
    st_storm_start(&s, &cfg);
    st_sleep_ms(RUN_MS);
    st_storm_stop(&s);
    stop_workers(t, NWORKERS);
    printf("nested storm: %lu USR1, %lu USR2, %lu other handler runs\n",
           atomic_load(&n_usr1), atomic_load(&n_usr2), atomic_load(&h_runs));
    assert_no_handler_errors();
    ck_assert_msg(atomic_load(&n_usr1) > 100, "SIGUSR1 handled %lu times",
                  atomic_load(&n_usr1));
    /* Not ==: a SIGUSR2 raised while another is pending coalesces. */
    ck_assert_uint_gt(atomic_load(&n_usr2), 0);
    assert_quiet_pools();
}
END_TEST

/* A main-thread loop of alloc/free with a fast ITIMER_REAL whose handler
 * allocates on the same thread: signals land inside alloc/free. */
START_TEST(same_thread_interrupts)
{
    setup_pools();
    st_install_handler(SIGALRM, light_handler, 0);
    st_storm s;
    /* As fast as the handler allows: a period shorter than the handler
     * would leave the loop no time to run (sanitizers slow it down). */
    long period = st_under_asan() || st_under_tsan() ? 200 : 20;
    st_storm_config cfg = {.real_interval_us = period};
    st_storm_start(&s, &cfg);
    uint64_t rng = 77;
    long long until = st_now_ms() + RUN_MS / 2;
    unsigned long bad = 0;
    static void *slot[32];
    while (st_now_ms() < until) {
        for (int r = 0; r < 100; r++) {
            int i = (int)(st_rand(&rng) % 32);
            if (slot[i]) {
                if (st_check(slot[i], HOT, (uint64_t)i) != SIZE_MAX)
                    bad++;
                sigsafe_free(slot[i]);
                slot[i] = NULL;
            } else {
                slot[i] = (r & 1) ? sigsafe_alloc(HOT)
                                  : sigsafe_pool_alloc(g_pool, HOT);
                ck_assert_ptr_nonnull(slot[i]);
                st_fill(slot[i], HOT, (uint64_t)i);
            }
        }
    }
    st_storm_stop(&s);
    for (int i = 0; i < 32; i++)
        sigsafe_free(slot[i]);
    ck_assert_msg(bad == 0, "%lu blocks corrupted by same-thread handlers",
                  bad);
    assert_no_handler_errors();
    ck_assert_msg(atomic_load(&h_runs) > 100, "handler ran %lu times",
                  atomic_load(&h_runs));
    assert_quiet_pools();
}
END_TEST

/* --------------------------------------------------------------- fork */

static int child_work(void)
{
    /* Allocate and free at once, also from a handler (guarantee 7). */
    uint64_t rng = 3;
    for (int i = 0; i < 2000; i++) {
        size_t n = st_rand_size(&rng, 50000);
        void *p = (i & 1) ? sigsafe_alloc(n) : sigsafe_pool_alloc(g_pool, n);
        if (p == NULL)
            return 2;
        st_fill_sparse(p, n, (uint64_t)i);
        if (st_check_sparse(p, n, (uint64_t)i) != SIZE_MAX)
            return 3;
        sigsafe_free(p);
    }
    /* TSan gives up on a child of a multi-threaded fork ("we cannot
     * reasonably function after that"): its signal delivery stops being
     * synchronous, so the handler part only runs without it. */
    if (st_under_tsan())
        return 0;
    unsigned long before = atomic_load(&n_usr1);
    for (int i = 0; i < 20; i++)
        raise(SIGUSR1);
    if (atomic_load(&n_usr1) != before + 20)
        return 4;
    if (atomic_load(&n_nested_bad) != 0 || atomic_load(&h_bad) != 0 ||
        atomic_load(&h_nulls) != 0)
        return 5;
    return 0;
}

START_TEST(fork_while_threads_allocate)
{
    setup_pools();
    st_install_handler(SIGUSR1, usr1_handler, 0);
    st_install_handler(SIGUSR2, usr2_handler, 0);
    pthread_t t[NWORKERS];
    start_workers(t, NWORKERS);
    for (int round = 0; round < 10; round++) {
        st_sleep_ms(20);
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(child_work());
        int status = 0;
        long long deadline = st_now_ms() + 20000;
        pid_t w;
        while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
               st_now_ms() < deadline)
            st_sleep_ms(5);
        if (w == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("round %d: child hung allocating after fork",
                         round);
        }
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "round %d: child failed (status %#x, exit %d)", round,
                      status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    stop_workers(t, NWORKERS);
    assert_no_handler_errors();
    assert_quiet_pools();
}
END_TEST

Suite *signal_suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, storm_handlers_and_workers);
    tcase_add_test(tc, nested_raise);
    tcase_add_test(tc, nested_under_storm);
    tcase_add_test(tc, same_thread_interrupts);
    tcase_add_test(tc, fork_while_threads_allocate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(signal_suite());
}
