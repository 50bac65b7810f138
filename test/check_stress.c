/* SPDX-License-Identifier: MIT */
/*
 * stress: several threads allocating, freeing and reallocating at random,
 * blocks passed between threads, every block checked before it is freed.
 * The short version (about 2 s per test) runs in the default ctest run.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

enum { NTHREADS = 4, SLOTS = 128, XCHG = 64 };
#define RUN_MS 2000

/* The pattern of a block depends on its address and usable size only, so
 * any thread can check any block it receives. */
static uint64_t block_seed(const void *p)
{
    return (uint64_t)sigsafe_usable_size(p) * 0x100000001B3ull;
}

static sigsafe_pool *shared_pool;
static atomic_bool stop_flag;
static atomic_ulong mismatches, nulls, wrong_pool, ops_done;
static _Atomic(void *) exchange[XCHG];

static int verify(const void *p)
{
    size_t u = sigsafe_usable_size(p);
    if (u == 0)
        return 0;
    return st_check(p, u, block_seed(p)) == SIZE_MAX;
}

static void fill(void *p)
{
    st_fill(p, sigsafe_usable_size(p), block_seed(p));
}

static void *stress_main(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (id + 1);
    void *slot[SLOTS] = {0};
    sigsafe_pool *expect[SLOTS] = {0};
    unsigned long ops = 0;
    sigsafe_pool *dp = sigsafe_default_pool();

    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        int i = (int)(st_rand(&rng) % SLOTS);
        unsigned op = (unsigned)(st_rand(&rng) % 100);
        ops++;
        if (slot[i] == NULL) {
            size_t n = st_rand_size(&rng, 100 * 1024);
            int use_shared = st_rand(&rng) & 1;
            void *p;
            if (op < 10)
                p = use_shared ? sigsafe_pool_calloc(shared_pool, 1, n)
                               : sigsafe_calloc(1, n);
            else if (op < 20)
                p = use_shared ? sigsafe_pool_aligned_alloc(shared_pool, 256, n)
                               : sigsafe_aligned_alloc(256, n);
            else
                p = use_shared ? sigsafe_pool_alloc(shared_pool, n)
                               : sigsafe_alloc(n);
            if (p == NULL) {
                atomic_fetch_add(&nulls, 1);
                continue;
            }
            if (sigsafe_usable_size(p) < n ||
                (op < 10 && st_first_nonzero(p, n) != SIZE_MAX) ||
                (op >= 10 && op < 20 && (uintptr_t)p % 256 != 0))
                atomic_fetch_add(&mismatches, 1);
            fill(p);
            slot[i] = p;
            expect[i] = use_shared ? shared_pool : dp;
            continue;
        }
        if (!verify(slot[i]) || sigsafe_pool_of(slot[i]) != expect[i]) {
            atomic_fetch_add(&mismatches, 1);
            if (sigsafe_pool_of(slot[i]) != expect[i])
                atomic_fetch_add(&wrong_pool, 1);
        }
        if (op < 45) {
            sigsafe_free(slot[i]);
            slot[i] = NULL;
        } else if (op < 70) {
            size_t n = st_rand_size(&rng, 100 * 1024);
            size_t old = sigsafe_usable_size(slot[i]);
            uint64_t seed = block_seed(slot[i]);
            uintptr_t oldaddr = (uintptr_t)slot[i];
            void *q = sigsafe_realloc(slot[i], n);
            if (q == NULL) {
                if (n == 0) {
                    slot[i] = NULL; /* freed */
                    continue;
                }
                atomic_fetch_add(&nulls, 1);
                continue; /* slot[i] intact */
            }
            /* Old content preserved: the old pattern, computed from the
             * old address, over min(old, n) bytes. */
            size_t keep = old < n ? old : n;
            if (st_check_moved(q, keep, oldaddr, seed) != SIZE_MAX)
                atomic_fetch_add(&mismatches, 1);
            if (sigsafe_pool_of(q) != expect[i])
                atomic_fetch_add(&wrong_pool, 1);
            fill(q);
            slot[i] = q;
        } else {
            /* Hand the block to whichever thread takes the exchange slot
             * next; take the block that was there. */
            int x = (int)(st_rand(&rng) % XCHG);
            void *got = atomic_exchange(&exchange[x], slot[i]);
            slot[i] = NULL;
            if (got != NULL) {
                if (!verify(got))
                    atomic_fetch_add(&mismatches, 1);
                sigsafe_free(got);
            }
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i] != NULL && !verify(slot[i]))
            atomic_fetch_add(&mismatches, 1);
        sigsafe_free(slot[i]);
    }
    atomic_fetch_add(&ops_done, ops);
    return NULL;
}

static void run_threads(int nthreads, long ms)
{
    pthread_t t[NTHREADS];
    atomic_store(&stop_flag, false);
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(
            pthread_create(&t[i], NULL, stress_main, (void *)(uintptr_t)i), 0);
    st_sleep_ms(ms);
    atomic_store(&stop_flag, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    for (int x = 0; x < XCHG; x++) {
        void *p = atomic_exchange(&exchange[x], NULL);
        if (p != NULL) {
            if (!verify(p))
                atomic_fetch_add(&mismatches, 1);
            sigsafe_free(p);
        }
    }
}

static void assert_clean(sigsafe_pool *pool, const char *what)
{
    sigsafe_stats s = st_stats(pool);
    ck_assert_msg(s.bytes_in_use == 0, "%s: bytes_in_use %zu after all frees",
                  what, s.bytes_in_use);
    ck_assert_msg(s.allocs == s.frees, "%s: allocs %llu != frees %llu", what,
                  (unsigned long long)s.allocs, (unsigned long long)s.frees);
    ck_assert_msg(s.rejected_frees == 0, "%s: %llu rejected frees", what,
                  (unsigned long long)s.rejected_frees);
    ck_assert_uint_le(s.peak_bytes_in_use, s.capacity);
}

static st_capture g_cap;

/* Nothing here is bad input: any report line is a detected corruption. */
static void assert_no_reports(void)
{
    size_t lines = st_capture_lines(&g_cap);
    ck_assert_msg(lines == 0, "%zu report lines, the first: %.200s", lines,
                  g_cap.buf);
}

static void stress(int nthreads)
{
    st_capture_begin(&g_cap);
    sigsafe_pool_config dcfg = {.name = "stress-default",
                                .capacity = 64 * ST_MIB};
    ck_assert_int_eq(sigsafe_init(&dcfg), 0);
    sigsafe_pool_config cfg = {.name = "stress", .capacity = 64 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &shared_pool), 0);
    run_threads(nthreads, RUN_MS);
    printf("stress(%d threads): %lu ops, %lu NULLs\n", nthreads,
           atomic_load(&ops_done), atomic_load(&nulls));
    ck_assert_msg(atomic_load(&mismatches) == 0,
                  "%lu blocks lost their contents or were mislabelled",
                  atomic_load(&mismatches));
    ck_assert_msg(atomic_load(&wrong_pool) == 0,
                  "%lu blocks changed pool", atomic_load(&wrong_pool));
    /* 64 MiB pools are never close to full here. */
    ck_assert_msg(atomic_load(&nulls) == 0, "%lu allocations failed",
                  atomic_load(&nulls));
    assert_clean(shared_pool, "shared pool");
    assert_clean(sigsafe_default_pool(), "default pool");
    assert_no_reports();
    sigsafe_pool_destroy(shared_pool);
}

START_TEST(stress_two_threads)
{
    stress(2);
}
END_TEST

START_TEST(stress_four_threads)
{
    stress(4);
}
END_TEST

/* ------------------------------------ same size class, maximum contention */

static sigsafe_pool *hot_pool;
static atomic_ulong hot_bad;

static void *hot_main(void *arg)
{
    uintptr_t id = (uintptr_t)arg + 1;
    void *mine[8] = {0};
    unsigned long i = 0;
    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        int k = (int)(i++ % 8);
        if (mine[k] != NULL) {
            /* Nobody else may have been handed this block meanwhile. */
            const uintptr_t *w = mine[k];
            if (w[0] != id || w[1] != (uintptr_t)mine[k])
                atomic_fetch_add(&hot_bad, 1);
            sigsafe_free(mine[k]);
        }
        uintptr_t *p = sigsafe_pool_alloc(hot_pool, 16);
        if (p == NULL) {
            atomic_fetch_add(&hot_bad, 1);
            mine[k] = NULL;
            continue;
        }
        p[0] = id;
        p[1] = (uintptr_t)p;
        mine[k] = p;
    }
    for (int k = 0; k < 8; k++)
        sigsafe_free(mine[k]);
    return NULL;
}

/* Tiny blocks of one class, 4 threads: the ABA-prone case. */
START_TEST(stress_same_class)
{
    st_capture_begin(&g_cap);
    sigsafe_pool_config cfg = {.name = "hot", .capacity = 4 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &hot_pool), 0);
    pthread_t t[NTHREADS];
    atomic_store(&stop_flag, false);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(
            pthread_create(&t[i], NULL, hot_main, (void *)(uintptr_t)i), 0);
    st_sleep_ms(1000);
    atomic_store(&stop_flag, true);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_msg(atomic_load(&hot_bad) == 0,
                  "%lu blocks were handed to two owners or failed",
                  atomic_load(&hot_bad));
    assert_clean(hot_pool, "hot pool");
    assert_no_reports();
    sigsafe_pool_destroy(hot_pool);
}
END_TEST

Suite *stress_suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stress_two_threads);
    tcase_add_test(tc, stress_four_threads);
    tcase_add_test(tc, stress_same_class);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(stress_suite());
}
