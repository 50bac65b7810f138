/* SPDX-License-Identifier: MIT */
/*
 * stats: sigsafe_pool_stats, exact when quiescent, readable from a handler.
 */
#include "support.h"

#include <stdlib.h>

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s, %zu) = %d", name, capacity, rc);
    return pool;
}

/* A new pool starts at zero and reports its configured capacity. */
START_TEST(new_pool_zero)
{
    const size_t caps[] = {0, 64 * ST_KIB, ST_MIB, 3 * ST_MIB, 100 * ST_MIB};
    for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
        sigsafe_pool *pool = make_pool("zero", caps[k]);
        sigsafe_stats s = st_stats(pool);
        ck_assert_uint_eq(s.capacity, caps[k] ? caps[k] : ST_DEFAULT_CAPACITY);
        ck_assert_uint_eq(s.bytes_in_use, 0);
        ck_assert_uint_eq(s.peak_bytes_in_use, 0);
        ck_assert_uint_eq(s.allocs, 0);
        ck_assert_uint_eq(s.frees, 0);
        ck_assert_uint_eq(s.failed_allocs, 0);
        ck_assert_uint_eq(s.rejected_frees, 0);
        void *p = sigsafe_pool_alloc(pool, 100);
        ck_assert_ptr_nonnull(p);
        s = st_stats(pool);
        ck_assert_uint_gt(s.bytes_mapped, 0);
        ck_assert_uint_ge(s.bytes_mapped, s.bytes_in_use);
        sigsafe_free(p);
        ck_assert_uint_eq(st_stats(pool).capacity,
                          caps[k] ? caps[k] : ST_DEFAULT_CAPACITY);
        sigsafe_pool_destroy(pool);
    }
    /* The default pool too, created by the first alloc. */
    void *p = sigsafe_alloc(1);
    ck_assert_ptr_nonnull(p);
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.allocs, 1);
    ck_assert_uint_eq(s.frees + s.failed_allocs + s.rejected_frees, 0);
    ck_assert_uint_gt(s.bytes_mapped, 0);
    sigsafe_free(p);
}
END_TEST

/* allocs, frees and failed_allocs count calls exactly. */
START_TEST(counts_exact)
{
    /* Spans are committed per size class: room for a dozen classes. */
    sigsafe_pool *pool = make_pool("counts", ST_MIB);
    uint64_t allocs = 0, frees = 0, failed = 0;
    enum { MAX = 4000 };
    static void *blk[MAX];
    int n = 0;
    for (int i = 0; i < 500; i++) {
        blk[n] = sigsafe_pool_alloc(pool, (size_t)(i % 7) * 20);
        ck_assert_ptr_nonnull(blk[n]);
        n++;
        allocs++;
        if (i % 3 == 0) {
            sigsafe_free(blk[--n]);
            frees++;
        }
    }
    void *c = sigsafe_pool_calloc(pool, 10, 10);
    ck_assert_ptr_nonnull(c);
    allocs++;
    void *a = sigsafe_pool_aligned_alloc(pool, 512, 100);
    ck_assert_ptr_nonnull(a);
    allocs++;
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, allocs);
    ck_assert_uint_eq(s.frees, frees);
    ck_assert_uint_eq(s.failed_allocs, 0);

    /* Failures of every kind: one NULL is one failed alloc. */
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, st_size(SIZE_MAX)));
    failed++;
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, ST_MIB + 1));
    failed++;
    ck_assert_ptr_null(
        sigsafe_pool_calloc(pool, st_size(SIZE_MAX / 2 + 1), st_size(2)));
    failed++;
    ck_assert_ptr_null(sigsafe_pool_aligned_alloc(pool, st_size(3), 16));
    failed++;
    while (n < MAX && (blk[n] = sigsafe_pool_alloc(pool, 1000)) != NULL) {
        n++;
        allocs++;
    }
    ck_assert_int_lt(n, MAX);
    failed++; /* the NULL that ended the loop */
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_null(sigsafe_pool_alloc(pool, 1000));
    failed += 3;
    s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, allocs);
    ck_assert_uint_eq(s.frees, frees);
    ck_assert_msg(s.failed_allocs == failed, "failed_allocs %llu, want %llu",
                  (unsigned long long)s.failed_allocs,
                  (unsigned long long)failed);
    ck_assert_uint_eq(s.rejected_frees, 0);

    while (n > 0) {
        sigsafe_free(blk[--n]);
        frees++;
    }
    sigsafe_free(c);
    sigsafe_free(a);
    frees += 2;
    s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, allocs);
    ck_assert_uint_eq(s.frees, frees);
    ck_assert_uint_eq(s.allocs, s.frees);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* bytes_in_use is the sum of usable sizes of live blocks; peak is its
 * high-water mark (possibly from above, never below). */
START_TEST(bytes_in_use_random)
{
    enum { SLOTS = 300, OPS = 6000 };
    const size_t cap = 32 * ST_MIB;
    sigsafe_pool *pool = make_pool("bytes", cap);
    static void *p[SLOTS];
    uint64_t rng = 12345;
    size_t sum = 0, max_sum = 0, last_peak = 0;
    for (int op = 0; op < OPS; op++) {
        int i = (int)(st_rand(&rng) % SLOTS);
        if (p[i]) {
            sum -= sigsafe_usable_size(p[i]);
            sigsafe_free(p[i]);
            p[i] = NULL;
        } else {
            size_t n = st_rand_size(&rng, 200000);
            p[i] = sigsafe_pool_alloc(pool, n);
            ck_assert_msg(p[i] != NULL, "op %d: alloc(%zu) NULL", op, n);
            sum += sigsafe_usable_size(p[i]);
            if (sum > max_sum)
                max_sum = sum;
        }
        if (op % 50 == 0 || op == OPS - 1) {
            sigsafe_stats s = st_stats(pool);
            ck_assert_msg(s.bytes_in_use == sum,
                          "op %d: bytes_in_use %zu, live usable sum %zu", op,
                          s.bytes_in_use, sum);
            ck_assert_msg(s.peak_bytes_in_use >= max_sum,
                          "op %d: peak %zu below the observed %zu", op,
                          s.peak_bytes_in_use, max_sum);
            ck_assert_msg(s.peak_bytes_in_use >= last_peak,
                          "peak went down: %zu -> %zu", last_peak,
                          s.peak_bytes_in_use);
            ck_assert_uint_le(s.peak_bytes_in_use, cap);
            ck_assert_uint_ge(s.bytes_mapped, s.bytes_in_use);
            last_peak = s.peak_bytes_in_use;
        }
    }
    for (int i = 0; i < SLOTS; i++)
        sigsafe_free(p[i]);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_ge(s.peak_bytes_in_use, max_sum);
    ck_assert_uint_eq(s.allocs, s.frees);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A simple peak: two blocks live at once, then fewer. */
START_TEST(peak_high_water)
{
    sigsafe_pool *pool = make_pool("peak", 0);
    void *a = sigsafe_pool_alloc(pool, 50000);
    void *b = sigsafe_pool_alloc(pool, 30000);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    size_t both = sigsafe_usable_size(a) + sigsafe_usable_size(b);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, both);
    ck_assert_uint_ge(s.peak_bytes_in_use, both);
    sigsafe_free(a);
    sigsafe_free(b);
    void *c = sigsafe_pool_alloc(pool, 100);
    ck_assert_ptr_nonnull(c);
    s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, sigsafe_usable_size(c));
    ck_assert_uint_ge(s.peak_bytes_in_use, both);
    sigsafe_free(c);
    s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_ge(s.peak_bytes_in_use, both);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Bad arguments: EINVAL, errno untouched, *out untouched for NULL pool. */
START_TEST(stats_bad_args)
{
    sigsafe_pool *pool = make_pool("args", 0);
    sigsafe_stats s;
    memset(&s, 0x77, sizeof(s));
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_pool_stats(NULL, &s));
    ck_assert_int_eq(rc, EINVAL);
    unsigned char expect[sizeof(s)];
    memset(expect, 0x77, sizeof(expect));
    ck_assert_mem_eq(&s, expect, sizeof(s));
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_pool_stats(pool, NULL));
    ck_assert_int_eq(rc, EINVAL);
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_pool_stats(pool, &s));
    ck_assert_int_eq(rc, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------ stats from a handler */

static sigsafe_pool *h_pool;
static sigsafe_stats h_stats;
static volatile sig_atomic_t h_rc, h_runs, h_errno_bad, h_insane;

static void stats_handler(int signo)
{
    (void)signo;
    int saved = errno;
    errno = ST_ERRNO_SENTINEL;
    h_rc = sigsafe_pool_stats(h_pool, &h_stats);
    if (errno != ST_ERRNO_SENTINEL)
        h_errno_bad = 1;
    if (h_stats.bytes_in_use > h_stats.capacity ||
        h_stats.peak_bytes_in_use < h_stats.bytes_in_use ||
        h_stats.frees > h_stats.allocs)
        h_insane = 1;
    /* The handler can also allocate and account for it. */
    void *p = sigsafe_pool_alloc(h_pool, 32);
    if (p == NULL)
        h_insane = 1;
    sigsafe_free(p);
    h_runs++;
    errno = saved;
}

START_TEST(stats_from_handler)
{
    h_pool = make_pool("handler", 4 * ST_MIB);
    st_install_handler(SIGUSR1, stats_handler, 0);
    enum { N = 400 };
    static void *blk[N];
    uint64_t allocs = 0, frees = 0;
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        blk[i] = sigsafe_pool_alloc(h_pool, (size_t)i * 13 % 3000);
        ck_assert_ptr_nonnull(blk[i]);
        allocs++;
        sum += sigsafe_usable_size(blk[i]);
        if (i % 4 == 3) {
            sum -= sigsafe_usable_size(blk[i - 1]);
            sigsafe_free(blk[i - 1]);
            blk[i - 1] = NULL;
            frees++;
        }
        h_rc = -1;
        raise(SIGUSR1);
        ck_assert_int_eq(h_rc, 0);
        ck_assert_int_eq(h_errno_bad, 0);
        ck_assert_int_eq(h_insane, 0);
        /* Quiescent at the raise: the snapshot is exact. */
        ck_assert_uint_eq(h_stats.allocs, allocs);
        ck_assert_uint_eq(h_stats.frees, frees);
        ck_assert_uint_eq(h_stats.bytes_in_use, sum);
        ck_assert_uint_eq(h_stats.capacity, 4 * ST_MIB);
        allocs++; /* the handler's own alloc and free */
        frees++;
    }
    ck_assert_int_eq(h_runs, N);
    for (int i = 0; i < N; i++)
        sigsafe_free(blk[i]);
    sigsafe_stats s = st_stats(h_pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, s.frees);
    sigsafe_pool_destroy(h_pool);
}
END_TEST

Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, new_pool_zero);
    tcase_add_test(tc, counts_exact);
    tcase_add_test(tc, bytes_in_use_random);
    tcase_add_test(tc, peak_high_water);
    tcase_add_test(tc, stats_bad_args);
    tcase_add_test(tc, stats_from_handler);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(stats_suite());
}
