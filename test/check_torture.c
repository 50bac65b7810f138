/* SPDX-License-Identifier: MIT */
/*
 * torture: worker threads allocate, fill, check and free patterned blocks
 * from one shared pool while ITIMER_PROF (at the highest rate the kernel
 * gives) and a pthread_kill storm run handlers, installed with
 * sigsafe_sigaction() and bound to the same pool, that do the same on top
 * of them, nested (SIGUSR2 and SIGPROF inside SIGUSR1, no masks).
 *
 * Every block carries an owner tag in its first word, set and cleared with
 * an atomic exchange: a block handed out while it is live shows up as a
 * tag found already set (or a tag changed under its owner).  The rest of
 * the block holds a pattern derived from its address and tag.  At the end
 * the pool must be empty and its allocs equal its frees.
 *
 * Two ctest entries run this file: sigsafe.torture (label signal, about
 * 3 s) and sigsafe.torture_long (label stress), selected by the argument
 * --long or SIGSAFE_TORTURE_LONG=1, which runs until at least 10^6 handler
 * runs have happened.  Both print the number of handler runs.
 */
#include "support.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

enum { NWORKERS = 3, WSLOTS = 48 };
#define SHORT_MS 3000
#define LONG_RUNS 1000000ul
#define LONG_CAP_MS (1100 * 1000LL) /* the ctest TIMEOUT is 1200 s */
#define POOL_CAPACITY (64 * ST_MIB)
#define BIG_MAX (48 * 1024)

static int long_mode;

/* Most sizes come from two hot classes, so that threads and the handlers
 * that interrupt them meet on the same free lists. */
static const size_t hot[] = {48, 64};

static size_t hot_size(uint64_t r)
{
    return hot[r % (sizeof hot / sizeof hot[0])];
}
static sigsafe_pool *pool;

static atomic_ulong h_runs, h_nested, h_blocks, h_nulls, h_prof;
static atomic_ulong w_ops, w_nulls, w_big;
static atomic_ulong mismatches, twice, wrong_pool, errno_changed;
static atomic_ulong tag_seq;
static atomic_bool w_stop;
static _Thread_local int depth;
/* Each outermost handler run keeps one block until the next one on its
 * thread, so that no run leaves the pool as it found it: the interrupted
 * code's view of the lists and counts really goes stale.  Only depth 1
 * touches these: a nested run cannot land in the middle of another one's
 * update, and the thread itself drops the block with signals blocked. */
static _Thread_local void *kept;
static _Thread_local size_t kept_n;
static _Thread_local uint64_t kept_tag;
static atomic_int max_depth;

/* A plain read of a counter, so that failed assertions print its name. */
static unsigned long ldu(atomic_ulong *a) { return atomic_load(a); }

/* ------------------------------------------------------------ owner tags */

/* A live block's first word: this magic in the top 16 bits, a unique
 * sequence number below. */
#define TAG_MAGIC 0xA5C3ull
#define TAG_IS_OURS(w) (((w) >> 48) == TAG_MAGIC)

static uint64_t new_tag(void)
{
    uint64_t n = atomic_fetch_add_explicit(&tag_seq, 1, memory_order_relaxed);
    return (TAG_MAGIC << 48) | (n & 0xFFFFFFFFFFFFull);
}

/* Claim a block just handed out; AS-safe. */
static void claim(void *p, uint64_t tag)
{
    uint64_t old = atomic_exchange_explicit((_Atomic uint64_t *)p, tag,
                                            memory_order_acq_rel);
    if (TAG_IS_OURS(old))
        atomic_fetch_add_explicit(&twice, 1, memory_order_relaxed);
}

/* Give up a block about to be freed; AS-safe. */
static void unclaim(void *p, uint64_t tag)
{
    uint64_t old = atomic_exchange_explicit((_Atomic uint64_t *)p, 0,
                                            memory_order_acq_rel);
    if (old != tag)
        atomic_fetch_add_explicit(&twice, 1, memory_order_relaxed);
}

/* The pattern covers the block after the tag: all of it up to 4 KiB,
 * sparsely above.  AS-safe. */
static void fill(void *p, size_t n, uint64_t tag)
{
    if (n <= 4096)
        st_fill((char *)p + 8, n - 8, tag);
    else
        st_fill_sparse((char *)p + 8, n - 8, tag);
}

static void check(const void *p, size_t n, uint64_t tag)
{
    size_t bad = n <= 4096 ? st_check((const char *)p + 8, n - 8, tag)
                           : st_check_sparse((const char *)p + 8, n - 8, tag);
    if (bad != SIZE_MAX)
        atomic_fetch_add_explicit(&mismatches, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------- handlers */

static void torture_handler(int signo)
{
    int saved = errno;
    errno = ST_ERRNO_SENTINEL;
    int d = ++depth;
    int m = atomic_load_explicit(&max_depth, memory_order_relaxed);
    while (d > m && !atomic_compare_exchange_weak_explicit(
                        &max_depth, &m, d, memory_order_relaxed,
                        memory_order_relaxed))
        ;
    if (d > 1)
        atomic_fetch_add_explicit(&h_nested, 1, memory_order_relaxed);
    if (signo == SIGPROF)
        atomic_fetch_add_explicit(&h_prof, 1, memory_order_relaxed);

    uint64_t rng = new_tag() ^ ((uint64_t)signo << 40);
    void *b[4];
    size_t n[4];
    uint64_t t[4];
    for (int i = 0; i < 4; i++) {
        uint64_t r = st_rand(&rng);
        if (i < 2)
            n[i] = hot_size(r >> 3);
        else if (i < 3)
            n[i] = 16 + (size_t)(r % 497); /* 16..512 */
        else if (r % 8 == 0)
            n[i] = 16385 + (size_t)((r >> 8) % (BIG_MAX - 16384));
        else
            n[i] = 513 + (size_t)((r >> 8) % 3584); /* 513..4096 */
        b[i] = sigsafe_alloc(n[i]);
        if (!b[i]) {
            atomic_fetch_add_explicit(&h_nulls, 1, memory_order_relaxed);
            continue;
        }
        if (sigsafe_pool_of(b[i]) != pool)
            atomic_fetch_add_explicit(&wrong_pool, 1, memory_order_relaxed);
        t[i] = new_tag();
        claim(b[i], t[i]);
        fill(b[i], n[i], t[i]);
        atomic_fetch_add_explicit(&h_blocks, 1, memory_order_relaxed);
    }
    /* Force some nesting even when the storm's timing gives none. */
    if (signo == SIGUSR1 && (rng & 15) == 0)
        raise(SIGUSR2);
    /* At depth 1 the first block is kept until the next run; the last
     * run's goes. */
    int first = 0;
    if (d == 1 && b[0]) {
        void *old = kept;
        size_t old_n = kept_n;
        uint64_t old_tag = kept_tag;
        kept = b[0];
        kept_n = n[0];
        kept_tag = t[0];
        first = 1;
        if (old) {
            check(old, old_n, old_tag);
            unclaim(old, old_tag);
            sigsafe_free(old);
        }
    }
    for (int i = first; i < 4; i++) {
        if (!b[i])
            continue;
        check(b[i], n[i], t[i]);
        unclaim(b[i], t[i]);
        sigsafe_free(b[i]);
    }
    atomic_fetch_add_explicit(&h_runs, 1, memory_order_relaxed);
    depth--;
    if (errno != ST_ERRNO_SENTINEL)
        atomic_fetch_add_explicit(&errno_changed, 1, memory_order_relaxed);
    errno = saved;
}

/* -------------------------------------------------------------- workers */

typedef struct slot {
    void *p;
    size_t n;
    uint64_t tag;
} slot;

/* Free this thread's kept block, with the test's signals blocked. */
static void drop_kept(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (kept) {
        check(kept, kept_n, kept_tag);
        unclaim(kept, kept_tag);
        sigsafe_free(kept);
        kept = NULL;
    }
}

static void *worker_main(void *arg)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(uintptr_t)arg + 1;
    slot s[WSLOTS];
    memset(s, 0, sizeof s);
    unsigned long ops = 0;
    while (!atomic_load_explicit(&w_stop, memory_order_relaxed)) {
        slot *x = &s[st_rand(&rng) % WSLOTS];
        if (x->p) {
            check(x->p, x->n, x->tag);
            unclaim(x->p, x->tag);
            sigsafe_free(x->p);
            x->p = NULL;
        }
        uint64_t r = st_rand(&rng);
        x->n = (r & 3) ? hot_size(r >> 2) : 16 + st_rand_size(&rng, BIG_MAX);
        x->p = sigsafe_pool_alloc(pool, x->n);
        if (!x->p) {
            atomic_fetch_add_explicit(&w_nulls, 1, memory_order_relaxed);
            continue;
        }
        if (x->n > 16384)
            atomic_fetch_add_explicit(&w_big, 1, memory_order_relaxed);
        x->tag = new_tag();
        claim(x->p, x->tag);
        fill(x->p, x->n, x->tag);
        /* Let the kill thread in: on two cores it would starve behind
         * the workers' time slices. */
        if (++ops % 4 == 0)
            sched_yield();
    }
    drop_kept();
    for (int i = 0; i < WSLOTS; i++) {
        if (!s[i].p)
            continue;
        check(s[i].p, s[i].n, s[i].tag);
        unclaim(s[i].p, s[i].tag);
        sigsafe_free(s[i].p);
    }
    atomic_fetch_add(&w_ops, ops);
    return NULL;
}

/* ------------------------------------------------------------------ test */

static void install(int signo)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = torture_handler;
    sigemptyset(&sa.sa_mask); /* no mask: everything nests */
    sa.sa_flags = SA_RESTART;
    int rc = sigsafe_sigaction(signo, &sa, NULL);
    ck_assert_msg(rc == 0, "sigsafe_sigaction(%d) = %d", signo, rc);
    rc = sigsafe_bind_signal(signo, pool);
    ck_assert_msg(rc == 0, "sigsafe_bind_signal(%d) = %d", signo, rc);
}

START_TEST(torture)
{
    /* The library reports a corrupt free list it had to abandon: none
     * may appear. */
    static st_capture cap;
    st_capture_begin(&cap);
    sigsafe_pool_config cfg = {.name = "torture", .capacity = POOL_CAPACITY};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    install(SIGUSR1);
    install(SIGUSR2);
    install(SIGPROF);

    long long t0 = st_now_ms();
    pthread_t t[NWORKERS];
    for (uintptr_t i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(
            pthread_create(&t[i], NULL, worker_main, (void *)(i + 1)), 0);
    st_storm s;
    st_storm_config sc = {.prof_interval_us = 1, /* as fast as it goes */
                          .targets = t,
                          .ntargets = NWORKERS,
                          .kill_signo = {SIGUSR1, SIGUSR2}};
    st_storm_start(&s, &sc);
    if (long_mode) {
        while (atomic_load(&h_runs) < LONG_RUNS &&
               st_now_ms() - t0 < LONG_CAP_MS)
            st_sleep_ms(100);
    } else {
        st_sleep_ms(SHORT_MS);
    }
    unsigned long kills = st_storm_stop(&s);
    atomic_store(&w_stop, true);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(t[i], NULL);
    /* No handler may run on this thread while the stats are read. */
    drop_kept();
    long long ms = st_now_ms() - t0;

    unsigned long runs = atomic_load(&h_runs);
    sigsafe_stats st = st_stats(pool);
    printf("torture (%s): %lu handler runs (%lu nested, max depth %d, "
           "%lu SIGPROF, %lu blocks, %lu NULL) in %.1f s; %lu kills; "
           "workers: %lu ops "
           "(%lu > 16 KiB, %lu NULL); pool: %llu allocs, %llu frees, "
           "%llu failed\n",
           long_mode ? "long" : "short", runs, atomic_load(&h_nested),
           atomic_load(&max_depth), atomic_load(&h_prof),
           atomic_load(&h_blocks),
           atomic_load(&h_nulls), (double)ms / 1000.0, kills,
           atomic_load(&w_ops), atomic_load(&w_big), atomic_load(&w_nulls),
           (unsigned long long)st.allocs, (unsigned long long)st.frees,
           (unsigned long long)st.failed_allocs);
    fflush(stdout);

    size_t reports = st_capture_lines(&cap);
    if (reports)
        printf("torture: library reports:\n%.2000s\n", cap.buf);
    ck_assert_msg(reports == 0, "%zu report lines", reports);
    ck_assert_uint_eq(ldu(&mismatches), 0);
    ck_assert_uint_eq(ldu(&twice), 0);
    ck_assert_uint_eq(ldu(&wrong_pool), 0);
    ck_assert_uint_eq(ldu(&errno_changed), 0);
    ck_assert_uint_gt(runs, 0);
    ck_assert_uint_gt(ldu(&h_blocks), 0);
    /* TSan runs a signal that arrives in a handler after the handler. */
    if (!st_under_tsan())
        ck_assert_uint_gt(ldu(&h_nested), 0);
    ck_assert_uint_gt(ldu(&h_prof), 0);
    ck_assert_uint_gt(ldu(&w_ops), 0);
    if (long_mode)
        ck_assert_msg(runs >= LONG_RUNS, "only %lu handler runs in %.0f s",
                      runs, (double)ms / 1000.0);
    ck_assert_uint_eq(st.bytes_in_use, 0);
    ck_assert_uint_eq(st.allocs, st.frees);
    ck_assert_uint_le(st.peak_bytes_in_use, POOL_CAPACITY);
    ck_assert_uint_eq(st.rejected_frees, 0);
}
END_TEST

Suite *torture_suite(void)
{
    Suite *s = suite_create("torture");
    TCase *tc = tcase_create("torture");
    tcase_set_timeout(tc, long_mode ? 1200 : 60);
    tcase_add_test(tc, torture);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    const char *env = getenv("SIGSAFE_TORTURE_LONG");
    long_mode = env && *env && strcmp(env, "0") != 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--long") == 0)
            long_mode = 1;
    return st_run_suite(torture_suite());
}
