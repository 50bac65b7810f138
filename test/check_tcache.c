/* SPDX-License-Identifier: MIT */
/*
 * tcache: the per-thread cache's tables and bookkeeping (white-box: it
 * reads lib/internal.h and lib/tcache.h).  The fast paths find a request's
 * class, a freed block's class and the cache's room by table lookups, and
 * count the allocations they serve only by what the other counts leave
 * unexplained; each of those shortcuts must agree with the slow path.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "tcache.h"

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    return pool;
}

/* The fast path's class table agrees with ss_class_of() for every size it
 * serves. */
START_TEST(class_table_matches)
{
    for (size_t n = 0; n <= SS_TC_MAX_SIZE; n++)
        ck_assert_msg(sigsafe__tc_slot[(n + 15) >> 4] == ss_class_of(n) + 1,
                      "size %zu: table %u, ss_class_of %u", n,
                      sigsafe__tc_slot[(n + 15) >> 4], ss_class_of(n));
    ck_assert_uint_eq(ss_class_of(SS_TC_MAX_SIZE), SS_TC_CLASSES - 1);
}
END_TEST

/* The plan: a class's first cap is capacity / 2048 bytes of it (2 KiB to
 * 16 KiB), 2 to 16 blocks; a bin holds 28 to 252 blocks by pool size; a
 * record's caps may add up to capacity / 64 bytes (40 KiB to 1 MiB), and
 * its first caps fit.  Bins lie inside their record.  No cache below
 * 1 MiB. */
START_TEST(cache_plan)
{
    static const size_t caps[] = {1 * ST_MIB, 4 * ST_MIB, 8 * ST_MIB,
                                  16 * ST_MIB, 64 * ST_MIB, 1024 * ST_MIB};
    static const unsigned entries[] = {28, 60, 124, 124, 252, 252};
    for (unsigned k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        sigsafe_pool *pool = make_pool("tcache-caps", caps[k]);
        size_t bytes = caps[k] / 2048;
        bytes = bytes < 2048 ? 2048 : bytes > 16384 ? 16384 : bytes;
        size_t limit = caps[k] / 64;
        limit = limit < 40 * 1024 ? 40 * 1024 : limit > ST_MIB ? ST_MIB : limit;
        ck_assert_uint_eq(pool->tc_classes, SS_TC_CLASSES);
        ck_assert_uint_eq(pool->tc_entries, entries[k]);
        ck_assert_uint_eq(pool->tc_limit, limit);
        size_t first = 0;
        for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
            size_t want = bytes / ss_class_size(c);
            want = want > 16 ? 16 : want < 2 ? 2 : want;
            ck_assert_uint_eq(pool->tc_first_cap[c], want);
            first += want * ss_class_size(c);
        }
        ck_assert_uint_le(first, pool->tc_limit);
        ss_tcache *r0 = ss_tc_record(pool, 0);
        /* bins lie inside their record, records next to each other */
        ck_assert_ptr_eq((char *)ss_tc_bin_at(pool, r0, SS_TC_CLASSES - 1) +
                             (sizeof(ss_tc_bin) + 4 * pool->tc_entries),
                         (char *)ss_tc_record(pool, 1));
        sigsafe_pool_destroy(pool);
    }
    sigsafe_pool *small = make_pool("tcache-small", ST_MIB - 4096);
    ck_assert_uint_eq(small->tc_classes, 0);
    sigsafe_pool_destroy(small);
}
END_TEST

/* The fast free's table says "a live block of a cached class" for exactly
 * those state bytes; the record it uses for pools without a record of
 * this thread has bins that hold nothing and may hold nothing. */
START_TEST(live_cached_table)
{
    for (unsigned v = 0; v < 256; v++) {
        int want = ss_st_is_live((uint8_t)v) && v >= ss_st_live(0) &&
                   ss_st_cls((uint8_t)v) < SS_TC_CLASSES;
        ck_assert_msg(sigsafe__tc_live_cached[v] == want, "state byte %u", v);
    }
    ck_assert_uint_eq(sizeof sigsafe__tc_none,
                      sizeof(ss_tcache) + (SS_TC_CLASSES << 6));
    for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
        ss_tc_bin *bin = ss_tc_bin_of(sigsafe__tc_none, c + 1, 6);
        ck_assert_uint_eq(atomic_load(&bin->n), 0);
        ck_assert_uint_eq(bin->cap, 0);
    }
}
END_TEST

/* The state encoding round-trips every class, and 0 is neither free nor
 * live. */
START_TEST(state_encoding)
{
    ck_assert(!ss_st_is_live(0));
    for (unsigned c = 0; c < SS_NSMALL; c++) {
        /* a free state is a block start (not 0) and not live */
        ck_assert(ss_st_free(c) != 0 && !ss_st_is_live(ss_st_free(c)));
        ck_assert(ss_st_is_live(ss_st_live(c)) &&
                  ss_st_live(c) != ss_st_free(c));
        ck_assert_uint_eq(ss_st_cls(ss_st_free(c)), c);
        ck_assert_uint_eq(ss_st_cls(ss_st_live(c)), c);
    }
}
END_TEST

/* The scrambled state index is a bijection on each run of 4096 grains, and
 * neighbouring blocks of every cached class land on different lines. */
START_TEST(state_index_scramble)
{
    static unsigned char seen[3 * 4096];
    for (uint32_t g = 0; g < 3 * 4096; g++) {
        size_t i = ss_state_index(g);
        ck_assert_uint_eq(i / 4096, g / 4096);
        ck_assert_msg(!seen[i], "index %zu taken twice", i);
        seen[i] = 1;
    }
    for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
        uint32_t step = (uint32_t)(ss_class_size(c) >> SS_GRAIN_SHIFT);
        for (uint32_t k = 0; k + 1 < 4096 / step && k < 16; k++)
            ck_assert_msg(ss_state_index(k * step) / 64 !=
                              ss_state_index((k + 1) * step) / 64,
                          "class %u: blocks %u and %u share a line", c, k,
                          k + 1);
    }
}
END_TEST

/* A bin is a stack: blocks come out newest first, through every fill
 * level, and pushes and pops interleave. */
START_TEST(bin_is_lifo)
{
    static uint32_t words[256]; /* a 1 KiB bin: 254 blocks */
    ss_tc_bin *bin = (ss_tc_bin *)words;
    enum { ENTRIES = 254 };
    uint32_t model[ENTRIES], n = 0;
    unsigned seed = 7;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int push = n == 0 || (n < ENTRIES && (seed >> 16) % 2);
        if (push) {
            uint32_t g = seed & 0xffffff;
            ss_bin_push(bin, n, g);
            model[n++] = g;
        } else {
            uint32_t g = ss_bin_pop(bin, n);
            ck_assert_uint_eq(g, model[--n]);
        }
        ck_assert_uint_eq(atomic_load(&bin->n), n);
    }
}
END_TEST

/* Mixed sizes with enough churn to refill and flush every cached class:
 * allocs and frees are exact, and bytes_in_use is 0 once all is freed. */
START_TEST(counts_exact_through_refill_and_flush)
{
    sigsafe_pool *pool = make_pool("tcache-counts", 8 * ST_MIB);
    enum { LIVE = 400, ROUNDS = 20000 };
    static void *live[LIVE];
    uint64_t allocs = 0, frees = 0;
    unsigned seed = 11;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % LIVE);
        if (live[i]) {
            sigsafe_free(live[i]);
            live[i] = NULL;
            frees++;
        } else {
            size_t size = 1 + (seed >> 16) % 1100; /* some are not cached */
            live[i] = sigsafe_pool_alloc(pool, size);
            ck_assert_ptr_nonnull(live[i]);
            memset(live[i], 0x5a, size);
            allocs++;
        }
        if (r % 997 == 0) {
            sigsafe_stats s = st_stats(pool);
            ck_assert_uint_eq(s.allocs, allocs);
            ck_assert_uint_eq(s.frees, frees);
        }
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i]) {
            sigsafe_free(live[i]);
            frees++;
        }
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, allocs);
    ck_assert_uint_eq(s.frees, frees);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.rejected_frees, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* The same from four threads at once, each with its own record. */
enum { T_OPS = 20000 };
static void *t_worker(void *arg)
{
    sigsafe_pool *pool = arg;
    void *keep[64] = {0};
    for (int i = 0; i < T_OPS; i++) {
        int k = i % 64;
        if (keep[k])
            sigsafe_free(keep[k]);
        keep[k] = sigsafe_pool_alloc(pool, (size_t)(i % 37) * 27 + 1);
        if (!keep[k])
            return (void *)1;
    }
    for (int k = 0; k < 64; k++)
        sigsafe_free(keep[k]);
    return NULL;
}

/* Start n threads running fn(pool). */
static void start_threads(pthread_t *t, int n, void *(*fn)(void *),
                          sigsafe_pool *pool)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fn, pool), 0);
}

/* Join n threads, each of which must return NULL. */
static void join_threads(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        ck_assert_ptr_null(ret);
    }
}

START_TEST(counts_exact_many_threads)
{
    sigsafe_pool *pool = make_pool("tcache-threads", 16 * ST_MIB);
    pthread_t t[4];
    start_threads(t, 4, t_worker, pool);
    join_threads(t, 4);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, 4 * T_OPS);
    ck_assert_uint_eq(s.frees, 4 * T_OPS);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Threads that used a pool and exited leave at most their caches' share
 * behind: the rest of the capacity still serves. */
enum { EXITED = 16 };
static void *mixed_then_exit(void *arg)
{
    sigsafe_pool *pool = arg;
    void *keep[200];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 200; i++)
            keep[i] = sigsafe_pool_alloc(pool, (size_t)(i % 64) * 16 + 16);
        for (int i = 0; i < 200; i++)
            sigsafe_free(keep[i]);
    }
    return NULL;
}

/* Allocate 1 KiB blocks of pool (arg) until it runs dry, free them;
 * returns the bytes it got. */
static void *fill_pool(void *arg)
{
    sigsafe_pool *pool = arg;
    static void *got[8192];
    size_t n = 0;
    while (n < 8192 && (got[n] = sigsafe_pool_alloc(pool, 1024)) != NULL)
        n++;
    for (size_t i = 0; i < n; i++)
        sigsafe_free(got[i]);
    return (void *)(uintptr_t)(n * 1024);
}

/* This thread's record in pool (bound by an allocation just made). */
static ss_tcache *my_record(sigsafe_pool *pool)
{
    ck_assert_ptr_eq(sigsafe__tls.bind[0].pool, pool);
    ss_tcache *tc = sigsafe__tls.bind[0].tc;
    ck_assert_ptr_ne(tc, sigsafe__tc_none);
    return tc;
}

/* The record's caps add up to at most tc_limit bytes, and no bin
 * holds more than its cap; returns the bytes its bins hold. */
static size_t check_caps(sigsafe_pool *pool, ss_tcache *tc)
{
    size_t caps = 0, held = 0;
    for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
        ss_tc_bin *bin = ss_tc_bin_at(pool, tc, c);
        ck_assert_uint_le(bin->cap, pool->tc_entries);
        ck_assert_uint_ge(bin->cap, pool->tc_first_cap[c]);
        ck_assert_uint_le(atomic_load(&bin->n), bin->cap);
        caps += (size_t)bin->cap * ss_class_size(c);
        held += (size_t)atomic_load(&bin->n) * ss_class_size(c);
    }
    ck_assert_uint_le(caps, pool->tc_limit);
    return held;
}

/* A working set of 200 blocks of one class, allocated and freed in
 * rounds: the bin's cap grows until the whole set fits, and from then on
 * a round neither refills nor flushes. */
START_TEST(working_set_grows_cap)
{
    sigsafe_pool *pool = make_pool("tcache-grow", 64 * ST_MIB);
    enum { SET = 200 };
    static void *p[SET];
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < SET; i++)
            ck_assert_ptr_nonnull(p[i] = sigsafe_pool_alloc(pool, 1000));
        for (int i = 0; i < SET; i++)
            sigsafe_free(p[i]);
    }
    ck_assert_ptr_nonnull(p[0] = sigsafe_pool_alloc(pool, 1000));
    ss_tcache *tc = my_record(pool);
    sigsafe_free(p[0]);
    ss_tc_bin *bin = ss_tc_bin_at(pool, tc, ss_class_of(1000));
    ck_assert_uint_ge(bin->cap, SET);
    (void)check_caps(pool, tc);
    uint64_t filled = atomic_load(&tc->filled);
    uint64_t drained = atomic_load(&tc->drained);
    for (int i = 0; i < SET; i++)
        ck_assert_ptr_nonnull(p[i] = sigsafe_pool_alloc(pool, 1000));
    for (int i = 0; i < SET; i++)
        sigsafe_free(p[i]);
    ck_assert_uint_eq(atomic_load(&tc->filled), filled);
    ck_assert_uint_eq(atomic_load(&tc->drained), drained);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* One class grows to fill the record's limit; then another class's
 * working set grows too: it takes the room from the first (stealing), so
 * the second reaches a cap the limit would otherwise have refused. */
START_TEST(caps_steal_room)
{
    sigsafe_pool *pool = make_pool("tcache-steal", 4 * ST_MIB);
    enum { SET = 200 };
    static void *p[SET];
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 60; i++)
            ck_assert_ptr_nonnull(p[i] = sigsafe_pool_alloc(pool, 1024));
        for (int i = 0; i < 60; i++)
            sigsafe_free(p[i]);
    }
    ss_tcache *tc = my_record(pool);
    ss_tc_bin *big = ss_tc_bin_at(pool, tc, ss_class_of(1024));
    ss_tc_bin *small = ss_tc_bin_at(pool, tc, ss_class_of(512));
    uint32_t big_cap = big->cap;
    (void)check_caps(pool, tc);
    /* the 1 KiB class took most of the limit: the 512 B class alone
     * could not double far */
    ck_assert_uint_gt((size_t)big_cap * 1024,
                      pool->tc_limit - (size_t)small->cap * 512 - 40 * 1024);
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 60; i++)
            ck_assert_ptr_nonnull(p[i] = sigsafe_pool_alloc(pool, 512));
        for (int i = 0; i < 60; i++)
            sigsafe_free(p[i]);
    }
    (void)check_caps(pool, tc);
    ck_assert_uint_ge(small->cap, 60);
    ck_assert_uint_lt(big->cap, big_cap);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Working sets in every cached class, larger than one thread may keep:
 * the caps stay within tc_limit (classes steal from each other), so a
 * live thread holds at most tc_limit bytes idle, and another thread can
 * still have all the rest of the capacity. */
START_TEST(caps_stay_within_limit)
{
    size_t capacity = 4 * ST_MIB;
    sigsafe_pool *pool = make_pool("tcache-limit", capacity);
    enum { SET = 120 };
    static void *p[SET];
    ss_tcache *tc = NULL;
    for (int round = 0; round < 6; round++) {
        for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
            size_t size = ss_class_size(c);
            for (int i = 0; i < SET; i++)
                ck_assert_ptr_nonnull(p[i] = sigsafe_pool_alloc(pool, size));
            tc = my_record(pool);
            for (int i = 0; i < SET; i++)
                sigsafe_free(p[i]);
            size_t held = check_caps(pool, tc);
            ck_assert_uint_le(held, pool->tc_limit);
        }
    }
    /* this thread keeps its cache; another takes what is left */
    size_t held = check_caps(pool, tc);
    ck_assert_uint_gt(held, 0);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    size_t got = 0;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fill_pool, pool), 0);
    void *r;
    ck_assert_int_eq(pthread_join(t, &r), 0);
    got = (size_t)(uintptr_t)r;
    ck_assert_msg(got + held + 1024 >= capacity,
                  "another thread got %zu of %zu bytes; this one holds %zu",
                  got, capacity, held);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(exited_threads_strand_little)
{
    size_t capacity = 4 * ST_MIB;
    sigsafe_pool *pool = make_pool("tcache-exited", capacity);
    pthread_t t[EXITED];
    start_threads(t, EXITED, mixed_then_exit, pool);
    join_threads(t, EXITED);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    static void *got[8192];
    size_t n = 0, bytes = 0;
    while (n < 8192 && (got[n] = sigsafe_pool_alloc(pool, 1024)) != NULL)
        bytes += 1024, n++;
    /* a share of at most tc_limit a thread, and a span's rounding */
    ck_assert_msg(bytes + EXITED * pool->tc_limit + 64 * ST_KIB >= capacity,
                  "only %zu of %zu bytes served after %d threads exited",
                  bytes, capacity, EXITED);
    for (size_t i = 0; i < n; i++)
        sigsafe_free(got[i]);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Stats read while the owners work: every count stays within what has
 * been done (the derived count never wraps below zero). */
START_TEST(counts_sane_while_running)
{
    sigsafe_pool *pool = make_pool("tcache-sample", 16 * ST_MIB);
    pthread_t t[2];
    start_threads(t, 2, t_worker, pool);
    uint64_t samples = 0;
    for (;;) {
        sigsafe_stats s = st_stats(pool);
        ck_assert_uint_le(s.allocs, 2 * T_OPS);
        ck_assert_uint_le(s.frees, 2 * T_OPS);
        ck_assert_uint_le(s.bytes_in_use, s.capacity);
        samples++;
        if (s.frees == 2 * T_OPS)
            break;
    }
    join_threads(t, 2);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, 2 * T_OPS);
    ck_assert_uint_eq(s.frees, 2 * T_OPS);
    ck_assert_uint_gt(samples, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/*
 * Destroying any pool makes every thread's bindings stale: a new pool,
 * even at the address of the old one, gets a record of its own, and the
 * fast paths work on it at once.
 */
START_TEST(destroy_unbinds)
{
#if !SS_TC_ENABLED
    printf("tcache: built without TLS: no bindings to check\n");
#endif
    for (int round = 0; round < 20; round++) {
        sigsafe_pool *pool = make_pool("tcache-rebind", 2 * ST_MIB);
        void *p = sigsafe_pool_alloc(pool, 64);
        ck_assert_ptr_nonnull(p);
#if SS_TC_ENABLED
        ck_assert_ptr_eq(sigsafe__tls.bind[0].pool, pool);
        ck_assert(ss_bind_current(&sigsafe__tls.bind[0]));
#endif
        sigsafe_free(p);
        sigsafe_stats s = st_stats(pool);
        ck_assert_uint_eq(s.allocs, 1);
        ck_assert_uint_eq(s.frees, 1);
        ck_assert_uint_eq(s.bytes_in_use, 0);
        sigsafe_pool_destroy(pool);
#if SS_TC_ENABLED
        ck_assert(!ss_bind_current(&sigsafe__tls.bind[0]));
#endif
    }
}
END_TEST

/* A free that the fast path cannot take (an interior pointer, a double
 * free, a pointer of another pool) is rejected by the full path. */
START_TEST(fast_free_falls_through)
{
    sigsafe_pool *a = make_pool("tcache-a", 2 * ST_MIB);
    sigsafe_pool *b = make_pool("tcache-b", 2 * ST_MIB);
    sigsafe_set_report_fd(-1);
    char *p = sigsafe_pool_alloc(a, 64);
    char *q = sigsafe_pool_alloc(b, 64); /* b is bound now */
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    sigsafe_free(q + 16); /* interior, bound pool */
    sigsafe_free(p + 8);  /* interior, other pool */
    sigsafe_free(q);
    sigsafe_free(q); /* double, through the fast path's pool */
    sigsafe_free(p);
    sigsafe_free(p);
    ck_assert_uint_eq(st_stats(a).rejected_frees, 2);
    ck_assert_uint_eq(st_stats(b).rejected_frees, 2);
    ck_assert_uint_eq(st_stats(a).bytes_in_use, 0);
    ck_assert_uint_eq(st_stats(b).bytes_in_use, 0);
    sigsafe_pool_destroy(a);
    sigsafe_pool_destroy(b);
}
END_TEST

static Suite *tcache_suite(void)
{
    Suite *s = suite_create("tcache");
    TCase *tc = tcase_create("tables");
    tcase_add_test(tc, class_table_matches);
    tcase_add_test(tc, cache_plan);
    tcase_add_test(tc, live_cached_table);
    tcase_add_test(tc, state_encoding);
    tcase_add_test(tc, state_index_scramble);
    tcase_add_test(tc, bin_is_lifo);
    suite_add_tcase(s, tc);
    tc = tcase_create("bookkeeping");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, counts_exact_through_refill_and_flush);
    tcase_add_test(tc, counts_exact_many_threads);
    tcase_add_test(tc, counts_sane_while_running);
    tcase_add_test(tc, exited_threads_strand_little);
    tcase_add_test(tc, working_set_grows_cap);
    tcase_add_test(tc, caps_stay_within_limit);
    tcase_add_test(tc, caps_steal_room);
    tcase_add_test(tc, destroy_unbinds);
    tcase_add_test(tc, fast_free_falls_through);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(tcache_suite());
}
