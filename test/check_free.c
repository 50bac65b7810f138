/* SPDX-License-Identifier: MIT */
/*
 * free: sigsafe_free, above all its handling of bad input (SPEC guarantee 5)
 * and of a heap corrupted by a use-after-free write (guarantee 8).
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s) = %d", name, rc);
    return pool;
}

static void assert_stats_eq(sigsafe_stats a, sigsafe_stats b)
{
    ck_assert_uint_eq(a.capacity, b.capacity);
    ck_assert_uint_eq(a.bytes_in_use, b.bytes_in_use);
    ck_assert_uint_eq(a.peak_bytes_in_use, b.peak_bytes_in_use);
    ck_assert_uint_eq(a.allocs, b.allocs);
    ck_assert_uint_eq(a.frees, b.frees);
    ck_assert_uint_eq(a.failed_allocs, b.failed_allocs);
    ck_assert_uint_eq(a.rejected_frees, b.rejected_frees);
}

/* The pool still serves: blocks are distinct, usable, and free cleanly. */
static void assert_pool_works(sigsafe_pool *pool)
{
    enum { N = 200 };
    void *p[N];
    uintptr_t a[N];
    sigsafe_stats s0 = st_stats(pool);
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i % 5) * 30 + 1;
        p[i] = sigsafe_pool_alloc(pool, n);
        ck_assert_msg(p[i] != NULL, "pool stopped serving after bad free");
        ck_assert_ptr_eq(sigsafe_pool_of(p[i]), pool);
        st_fill(p[i], n, 77);
        a[i] = st_uptr(p[i]);
    }
    qsort(a, N, sizeof(a[0]), cmp_uptr);
    for (int i = 1; i < N; i++)
        ck_assert_msg(a[i] != a[i - 1], "block %p handed out twice",
                      (void *)a[i]);
    for (int i = 0; i < N; i++) {
        ck_assert(st_check(p[i], (size_t)(i % 5) * 30 + 1, 77) == SIZE_MAX);
        sigsafe_free(p[i]);
    }
    sigsafe_stats s1 = st_stats(pool);
    ck_assert_uint_eq(s1.allocs, s0.allocs + N);
    ck_assert_uint_eq(s1.frees, s0.frees + N);
    ck_assert_uint_eq(s1.rejected_frees, s0.rejected_frees);
    ck_assert_uint_eq(s1.bytes_in_use, s0.bytes_in_use);
}

/*
 * Free `bad` and check the SPEC guarantee-5 outcome: `owner`'s
 * rejected_frees +1 and nothing else changes, exactly one report line,
 * errno unchanged, and `owner` still works.
 */
static void expect_rejected(void *bad, sigsafe_pool *owner, const char *what)
{
    st_capture cap;
    st_capture_begin(&cap);
    sigsafe_pool *dp = sigsafe_default_pool();
    sigsafe_stats o0 = st_stats(owner), d0 = st_stats(dp);
    ST_ASSERT_ERRNO_UNCHANGED(sigsafe_free(bad));
    sigsafe_stats o1 = st_stats(owner), d1 = st_stats(dp);
    ck_assert_msg(o1.rejected_frees == o0.rejected_frees + 1,
                  "%s: rejected_frees %llu -> %llu, want +1", what,
                  (unsigned long long)o0.rejected_frees,
                  (unsigned long long)o1.rejected_frees);
    ck_assert_msg(o1.frees == o0.frees, "%s: counted as a free", what);
    ck_assert_uint_eq(o1.allocs, o0.allocs);
    ck_assert_uint_eq(o1.bytes_in_use, o0.bytes_in_use);
    if (owner != dp) {
        ck_assert_msg(d1.rejected_frees == d0.rejected_frees,
                      "%s: default pool counted the rejection", what);
        ck_assert_uint_eq(d1.frees, d0.frees);
    }
    size_t lines = st_capture_lines(&cap);
    ck_assert_msg(lines == 1, "%s: %zu report lines, want 1: \"%s\"", what,
                  lines, cap.buf);
    ck_assert_msg(cap.len > 1 && cap.buf[cap.len - 1] == '\n',
                  "%s: report is not one complete line: \"%s\"", what,
                  cap.buf);
    st_capture_end(&cap);
    assert_pool_works(owner);
}

/* free(NULL) is a no-op: no stats change, no report line, errno kept. */
START_TEST(free_null_noop)
{
    void *warm = sigsafe_alloc(32);
    ck_assert_ptr_nonnull(warm);
    st_capture cap;
    st_capture_begin(&cap);
    sigsafe_stats s0 = st_default_stats();
    for (int i = 0; i < 10; i++)
        ST_ASSERT_ERRNO_UNCHANGED(sigsafe_free(NULL));
    assert_stats_eq(s0, st_default_stats());
    ck_assert_uint_eq(st_capture_lines(&cap), 0);
    sigsafe_free(warm);
    ck_assert_uint_eq(st_capture_lines(&cap), 0);
    st_capture_end(&cap);
}
END_TEST

/* free(NULL) as the very first call does not fail either. */
START_TEST(free_null_first)
{
    ST_ASSERT_ERRNO_UNCHANGED(sigsafe_free(NULL));
    void *p = sigsafe_alloc(1);
    ck_assert_ptr_nonnull(p);
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.frees, 0);
    ck_assert_uint_eq(s.rejected_frees, 0);
    sigsafe_free(p);
}
END_TEST

START_TEST(free_stack_pointer)
{
    void *warm = sigsafe_alloc(32);
    ck_assert_ptr_nonnull(warm);
    unsigned char buf[128];
    memset(buf, 0x33, sizeof(buf));
    expect_rejected(st_launder(buf), sigsafe_default_pool(), "stack");
    expect_rejected(st_launder(buf + 16), sigsafe_default_pool(), "stack+16");
    for (size_t i = 0; i < sizeof(buf); i++)
        ck_assert_int_eq(buf[i], 0x33);
    sigsafe_free(warm);
}
END_TEST

START_TEST(free_malloc_pointer)
{
    void *warm = sigsafe_alloc(32);
    ck_assert_ptr_nonnull(warm);
    unsigned char *m = malloc(64);
    ck_assert_ptr_nonnull(m);
    memset(m, 0x44, 64);
    expect_rejected(m, sigsafe_default_pool(), "malloc'd");
    for (size_t i = 0; i < 64; i++)
        ck_assert_int_eq(m[i], 0x44);
    free(m); /* still malloc's */
    static char global[64];
    expect_rejected(st_launder(global + 16), sigsafe_default_pool(),
                    "global");
    sigsafe_free(warm);
}
END_TEST

START_TEST(free_unmapped_pointer)
{
    /* Create the default pool first, so that it cannot land on the page. */
    void *warm = sigsafe_alloc(32);
    ck_assert_ptr_nonnull(warm);
    size_t page = st_page_size();
    void *pg = mmap(NULL, page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(pg != MAP_FAILED);
    ck_assert_int_eq(munmap(pg, page), 0);
    expect_rejected(pg, sigsafe_default_pool(), "unmapped");
    expect_rejected((char *)pg + 64, sigsafe_default_pool(), "unmapped+64");
    /* Addresses nowhere near any mapping. */
    expect_rejected((void *)(uintptr_t)16, sigsafe_default_pool(), "0x10");
    expect_rejected((void *)(uintptr_t)0x7ff0, sigsafe_default_pool(),
                    "0x7ff0");
    sigsafe_free(warm);
}
END_TEST

START_TEST(free_interior_pointer)
{
    sigsafe_pool *pool = make_pool("interior", 0);
    void *warm = sigsafe_alloc(32); /* default pool exists */
    ck_assert_ptr_nonnull(warm);
    unsigned char *b = st_launder(sigsafe_pool_alloc(pool, 64));
    ck_assert_ptr_nonnull(b);
    size_t u = sigsafe_usable_size(b);
    st_fill(b, u, 1);
    const size_t off[] = {1, 8, 15, 16, 32, 48};
    for (size_t k = 0; k < sizeof(off) / sizeof(off[0]); k++) {
        char what[32];
        snprintf(what, sizeof(what), "interior +%zu", off[k]);
        expect_rejected(b + off[k], pool, what);
        ck_assert_uint_eq(sigsafe_usable_size(b), u);
        ck_assert_msg(st_check(b, u, 1) == SIZE_MAX,
                      "%s changed the block", what);
    }
    /* Interior of a large block. */
    unsigned char *big = st_launder(sigsafe_pool_alloc(pool, 100000));
    ck_assert_ptr_nonnull(big);
    expect_rejected(big + 16, pool, "interior of 100000 +16");
    expect_rejected(big + 4096, pool, "interior of 100000 +4096");
    expect_rejected(big + 65536, pool, "interior of 100000 +65536");
    ck_assert_uint_ge(sigsafe_usable_size(big), 100000);
    /* The real pointers still free normally. */
    sigsafe_stats s0 = st_stats(pool);
    sigsafe_free(b);
    sigsafe_free(big);
    sigsafe_stats s1 = st_stats(pool);
    ck_assert_uint_eq(s1.frees, s0.frees + 2);
    ck_assert_uint_eq(s1.rejected_frees, s0.rejected_frees);
    ck_assert_uint_eq(s1.bytes_in_use, 0);
    sigsafe_free(warm);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(free_double)
{
    sigsafe_pool *pool = make_pool("double", 0);
    void *warm = sigsafe_alloc(32);
    ck_assert_ptr_nonnull(warm);
    const size_t sizes[] = {0, 16, 64, 1000, 20000, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        void *p = sigsafe_pool_alloc(pool, sizes[k]);
        ck_assert_ptr_nonnull(p);
        sigsafe_free(p);
        char what[48];
        snprintf(what, sizeof(what), "double free of %zu bytes", sizes[k]);
        expect_rejected(p, pool, what);
        expect_rejected(p, pool, what); /* and a third time */
        /* The block is on the free list once: two allocations of the
         * same size never return the same address. */
        void *a = sigsafe_pool_alloc(pool, sizes[k]);
        void *b = sigsafe_pool_alloc(pool, sizes[k]);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(st_uptr(a) != st_uptr(b),
                      "%s: block handed out twice", what);
        sigsafe_free(a);
        sigsafe_free(b);
    }
    /* Double free in the default pool. */
    void *d = sigsafe_alloc(100);
    ck_assert_ptr_nonnull(d);
    sigsafe_free(d);
    expect_rejected(d, sigsafe_default_pool(), "default double free");
    sigsafe_free(warm);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    ck_assert_uint_eq(st_default_stats().bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Many bad frees in a row leave both pools fully working. */
START_TEST(free_bad_mix_pool_survives)
{
    sigsafe_pool *pool = make_pool("mix", 0);
    sigsafe_set_report_fd(-1);
    unsigned char stackbuf[64];
    void *live[16];
    for (int i = 0; i < 16; i++) {
        live[i] = sigsafe_pool_alloc(pool, 64);
        ck_assert_ptr_nonnull(live[i]);
        st_fill(live[i], 64, (uint64_t)i);
    }
    void *warm = sigsafe_alloc(32);
    ck_assert_ptr_nonnull(warm);
    sigsafe_stats p0 = st_stats(pool), d0 = st_default_stats();
    uint64_t prej = 0, drej = 0;
    for (int r = 0; r < 500; r++) {
        unsigned char *l = live[r % 16];
        sigsafe_free(l + 1 + r % 63);
        prej++;
        sigsafe_free(st_launder(stackbuf + r % 64));
        drej++;
        void *t = sigsafe_pool_alloc(pool, 64);
        ck_assert_ptr_nonnull(t);
        sigsafe_free(t);
        sigsafe_free(t);
        prej++;
    }
    sigsafe_stats p1 = st_stats(pool), d1 = st_default_stats();
    ck_assert_uint_eq(p1.rejected_frees, p0.rejected_frees + prej);
    ck_assert_uint_eq(d1.rejected_frees, d0.rejected_frees + drej);
    ck_assert_uint_eq(p1.frees, p0.frees + 500);
    ck_assert_uint_eq(p1.bytes_in_use, p0.bytes_in_use);
    for (int i = 0; i < 16; i++)
        ck_assert_msg(st_check(live[i], 64, (uint64_t)i) == SIZE_MAX,
                      "live block %d corrupted by bad frees", i);
    assert_pool_works(pool);
    assert_pool_works(sigsafe_default_pool());
    for (int i = 0; i < 16; i++)
        sigsafe_free(live[i]);
    sigsafe_free(warm);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------- racing double frees */

enum { RACE_ROUNDS = 300 };
static void *race_blocks[RACE_ROUNDS];
static pthread_barrier_t race_barrier;

static void *race_main(void *arg)
{
    (void)arg;
    for (int r = 0; r < RACE_ROUNDS; r++) {
        pthread_barrier_wait(&race_barrier);
        sigsafe_free(race_blocks[r]);
    }
    return NULL;
}

/* Two threads free the same block at once: exactly one free succeeds. */
START_TEST(free_double_race)
{
    sigsafe_pool *pool = make_pool("race", 0);
    for (int r = 0; r < RACE_ROUNDS; r++) {
        race_blocks[r] = sigsafe_pool_alloc(pool, (size_t)(r % 4) * 48 + 16);
        ck_assert_ptr_nonnull(race_blocks[r]);
    }
    st_capture cap;
    st_capture_begin(&cap);
    sigsafe_stats s0 = st_stats(pool);
    ck_assert_int_eq(pthread_barrier_init(&race_barrier, NULL, 2), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_main, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&race_barrier);
    sigsafe_stats s1 = st_stats(pool);
    ck_assert_msg(s1.frees == s0.frees + RACE_ROUNDS,
                  "%d racing double frees: frees +%llu, want +%d",
                  RACE_ROUNDS, (unsigned long long)(s1.frees - s0.frees),
                  RACE_ROUNDS);
    ck_assert_msg(s1.rejected_frees == s0.rejected_frees + RACE_ROUNDS,
                  "%d racing double frees: rejected +%llu, want +%d",
                  RACE_ROUNDS,
                  (unsigned long long)(s1.rejected_frees - s0.rejected_frees),
                  RACE_ROUNDS);
    ck_assert_uint_eq(s1.bytes_in_use, 0);
    ck_assert_uint_eq(st_capture_lines(&cap), RACE_ROUNDS);
    st_capture_end(&cap);
    /* No block went on a free list twice. */
    enum { M = 2 * RACE_ROUNDS };
    static void *p[M];
    static uintptr_t a[M];
    for (int i = 0; i < M; i++) {
        p[i] = sigsafe_pool_alloc(pool, (size_t)(i % 4) * 48 + 16);
        ck_assert_ptr_nonnull(p[i]);
        a[i] = st_uptr(p[i]);
    }
    qsort(a, M, sizeof(a[0]), cmp_uptr);
    for (int i = 1; i < M; i++)
        ck_assert_msg(a[i] != a[i - 1], "block %p handed out twice",
                      (void *)a[i]);
    for (int i = 0; i < M; i++)
        sigsafe_free(p[i]);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------ use-after-free hardening */

/* Stray writes into free blocks, bypassing sanitizer instrumentation (a
 * library may poison free blocks; this test writes there on purpose). */
static void scribble(void *p, size_t n, uint64_t word)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        st_poke(b + i, (unsigned char)(word >> (8 * (i % 8))));
}

/*
 * SPEC guarantee 8: after use-after-free writes into free blocks, sigsafe
 * hands out neither memory outside its pool nor a block that is still live.
 */
static void uaf_round(uint64_t word, const char *what)
{
    enum { N = 64, LIVE_FROM = 32, M = 200 };
    sigsafe_pool *pool = make_pool("uaf", 0);
    sigsafe_set_report_fd(-1);
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = sigsafe_pool_alloc(pool, 64);
        ck_assert_ptr_nonnull(b[i]);
    }
    for (int i = LIVE_FROM; i < N; i++)
        st_fill(b[i], 64, (uint64_t)i);
    if (word == 1)
        word = (uint64_t)st_uptr(b[N - 1]); /* a live block's address */
    for (int i = 0; i < LIVE_FROM; i++)
        sigsafe_free(b[i]);
    for (int i = 0; i < LIVE_FROM; i++)
        scribble(b[i], 64, word);

    static uintptr_t got[M];
    int ngot = 0;
    for (int i = 0; i < M; i++) {
        unsigned char *q = sigsafe_pool_alloc(pool, 64);
        if (q == NULL)
            continue; /* abandoning a corrupt list may cost capacity */
        ck_assert_msg(sigsafe_pool_of(q) == pool,
                      "%s: alloc returned %p outside the pool", what,
                      (void *)q);
        for (int j = LIVE_FROM; j < N; j++)
            ck_assert_msg(st_uptr(q) + 64 <= st_uptr(b[j]) ||
                              st_uptr(b[j]) + 64 <= st_uptr(q),
                          "%s: alloc returned %p overlapping live %p", what,
                          (void *)q, b[j]);
        for (int j = 0; j < ngot; j++)
            ck_assert_msg(got[j] != st_uptr(q),
                          "%s: %p handed out twice", what, (void *)q);
        ck_assert_uint_ge(sigsafe_usable_size(q), 64);
        memset(q, 0xCD, 64);
        got[ngot++] = st_uptr(q);
    }
    ck_assert_msg(ngot > 0, "%s: pool stopped serving", what);
    for (int i = LIVE_FROM; i < N; i++)
        ck_assert_msg(st_check(b[i], 64, (uint64_t)i) == SIZE_MAX,
                      "%s: live block %d overwritten", what, i);
    for (int i = LIVE_FROM; i < N; i++)
        sigsafe_free(b[i]);
    for (int j = 0; j < ngot; j++)
        sigsafe_free((void *)got[j]);
    /* Other pools are unaffected. */
    void *d = sigsafe_alloc(64);
    ck_assert_ptr_nonnull(d);
    sigsafe_free(d);
    sigsafe_pool_destroy(pool);
}

START_TEST(uaf_write_zero)
{
    uaf_round(0, "zeroes");
}
END_TEST

START_TEST(uaf_write_ones)
{
    uaf_round(UINT64_MAX, "0xff bytes");
}
END_TEST

START_TEST(uaf_write_live_address)
{
    uaf_round(1, "live block address");
}
END_TEST

START_TEST(uaf_write_small_ints)
{
    uaf_round(0x0000000200000001ull, "small indices");
}
END_TEST

START_TEST(uaf_write_stack_address)
{
    int local = 0;
    uaf_round((uint64_t)st_uptr(&local), "stack address");
}
END_TEST

Suite *free_suite(void)
{
    Suite *s = suite_create("free");
    TCase *tc = tcase_create("bad_input");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, free_null_noop);
    tcase_add_test(tc, free_null_first);
    tcase_add_test(tc, free_stack_pointer);
    tcase_add_test(tc, free_malloc_pointer);
    tcase_add_test(tc, free_unmapped_pointer);
    tcase_add_test(tc, free_interior_pointer);
    tcase_add_test(tc, free_double);
    tcase_add_test(tc, free_bad_mix_pool_survives);
    suite_add_tcase(s, tc);

    tc = tcase_create("race");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, free_double_race);
    suite_add_tcase(s, tc);

    tc = tcase_create("hardening");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, uaf_write_zero);
    tcase_add_test(tc, uaf_write_ones);
    tcase_add_test(tc, uaf_write_live_address);
    tcase_add_test(tc, uaf_write_small_ints);
    tcase_add_test(tc, uaf_write_stack_address);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(free_suite());
}
