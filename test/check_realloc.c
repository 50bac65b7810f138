/* SPDX-License-Identifier: MIT */
/*
 * realloc: sigsafe_realloc and sigsafe_pool_realloc.
 */
#include "support.h"

#include <stdlib.h>

/* An address-independent pattern, so that it survives a move. */
static void fill_plain(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7u + seed + (i >> 9));
}

static size_t check_plain(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 7u + seed + (i >> 9)))
            return i;
    return SIZE_MAX;
}

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s, %zu) = %d", name, capacity, rc);
    ck_assert_ptr_nonnull(pool);
    return pool;
}

/* realloc(NULL, n) allocates, from the default pool / from the given pool. */
START_TEST(realloc_null_allocates)
{
    void *p = sigsafe_realloc(NULL, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(sigsafe_pool_of(p), sigsafe_default_pool());
    ck_assert_uint_ge(sigsafe_usable_size(p), 100);
    ck_assert_uint_eq(st_uptr(p) % 16, 0);
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.allocs, 1);
    ck_assert_uint_eq(s.bytes_in_use, sigsafe_usable_size(p));

    void *z = sigsafe_realloc(NULL, 0);
    ck_assert_ptr_nonnull(z);
    ck_assert_uint_gt(sigsafe_usable_size(z), 0);
    ck_assert(st_uptr(z) != st_uptr(p));

    sigsafe_pool *pool = make_pool("rnull", 0);
    void *q = sigsafe_pool_realloc(pool, NULL, 5000);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_eq(sigsafe_pool_of(q), pool);
    ck_assert_uint_eq(st_stats(pool).allocs, 1);
    sigsafe_free(q);
    sigsafe_free(z);
    sigsafe_free(p);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    ck_assert_uint_eq(st_default_stats().bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* realloc(p, 0) frees p and returns NULL; the free is counted. */
START_TEST(realloc_zero_frees)
{
    const size_t sizes[] = {1, 64, 1000, 20000, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        void *p = sigsafe_alloc(sizes[k]);
        ck_assert_ptr_nonnull(p);
        sigsafe_stats before = st_default_stats();
        void *r = sigsafe_realloc(p, st_size(0));
        ck_assert_msg(r == NULL, "realloc(p, 0) = %p, want NULL", r);
        sigsafe_stats after = st_default_stats();
        ck_assert_uint_eq(after.frees, before.frees + 1);
        ck_assert_uint_eq(after.allocs, before.allocs);
        ck_assert_uint_eq(after.rejected_frees, before.rejected_frees);
        ck_assert_uint_eq(after.bytes_in_use, 0);
        ck_assert_uint_eq(sigsafe_usable_size(p), 0);
    }
    /* Same through pool_realloc. */
    sigsafe_pool *pool = make_pool("rzero", 0);
    void *p = sigsafe_pool_alloc(pool, 300);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(sigsafe_pool_realloc(pool, p, st_size(0)));
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.frees, 1);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.failed_allocs, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

static const size_t chain[] = {1,    15,    17,    100,    1000,  4096,
                               4097, 16384, 20000, 100000, 300000};
#define NCHAIN (sizeof(chain) / sizeof(chain[0]))

/* Growing keeps the old contents, step by step up to a large block. */
START_TEST(grow_keeps_content)
{
    unsigned char *p = st_launder(sigsafe_alloc(chain[0]));
    ck_assert_ptr_nonnull(p);
    fill_plain(p, chain[0], 3);
    for (size_t k = 1; k < NCHAIN; k++) {
        unsigned char *q = st_launder(sigsafe_realloc(p, chain[k]));
        ck_assert_msg(q != NULL, "realloc to %zu NULL", chain[k]);
        ck_assert_uint_eq(st_uptr(q) % 16, 0);
        ck_assert_uint_ge(sigsafe_usable_size(q), chain[k]);
        size_t bad = check_plain(q, chain[k - 1], 3);
        ck_assert_msg(bad == SIZE_MAX,
                      "grow %zu -> %zu lost byte %zu", chain[k - 1],
                      chain[k], bad);
        fill_plain(q, chain[k], 3);
        p = q;
    }
    sigsafe_free(p);
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.rejected_frees, 0);
    ck_assert_uint_eq(s.allocs, s.frees);
}
END_TEST

/* Shrinking keeps the remaining contents. */
START_TEST(shrink_keeps_content)
{
    unsigned char *p = st_launder(sigsafe_alloc(chain[NCHAIN - 1]));
    ck_assert_ptr_nonnull(p);
    fill_plain(p, chain[NCHAIN - 1], 9);
    for (size_t k = NCHAIN - 1; k-- > 0;) {
        unsigned char *q = st_launder(sigsafe_realloc(p, chain[k]));
        ck_assert_msg(q != NULL, "realloc to %zu NULL", chain[k]);
        ck_assert_uint_ge(sigsafe_usable_size(q), chain[k]);
        size_t bad = check_plain(q, chain[k], 9);
        ck_assert_msg(bad == SIZE_MAX, "shrink %zu -> %zu lost byte %zu",
                      chain[k + 1], chain[k], bad);
        p = q;
    }
    sigsafe_free(p);
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, s.frees);
}
END_TEST

/* Reallocating to the same size or within the usable size keeps data. */
START_TEST(same_size_keeps_content)
{
    for (size_t n = 1; n < 70000; n = n * 2 + 3) {
        unsigned char *p = st_launder(sigsafe_alloc(n));
        ck_assert_ptr_nonnull(p);
        size_t u = sigsafe_usable_size(p);
        fill_plain(p, u, 1);
        unsigned char *q = st_launder(sigsafe_realloc(p, n));
        ck_assert_ptr_nonnull(q);
        ck_assert(check_plain(q, n, 1) == SIZE_MAX);
        unsigned char *r = st_launder(sigsafe_realloc(q, u));
        ck_assert_ptr_nonnull(r);
        ck_assert(check_plain(r, n, 1) == SIZE_MAX);
        sigsafe_free(r);
    }
    ck_assert_uint_eq(st_default_stats().bytes_in_use, 0);
}
END_TEST

static void assert_intact(sigsafe_pool *pool, unsigned char *p, size_t u,
                          unsigned seed)
{
    ck_assert_ptr_eq(sigsafe_pool_of(p), pool);
    ck_assert_msg(sigsafe_usable_size(p) == u,
                  "usable_size changed from %zu to %zu after failed grow", u,
                  sigsafe_usable_size(p));
    size_t bad = check_plain(p, u, seed);
    ck_assert_msg(bad == SIZE_MAX, "failed grow changed byte %zu", bad);
}

/* A grow the pool cannot serve returns NULL and leaves p intact. */
START_TEST(grow_fail_leaves_block)
{
    sigsafe_pool *pool = make_pool("rfail", 256 * ST_KIB);
    unsigned char *p = st_launder(sigsafe_pool_alloc(pool, 100));
    ck_assert_ptr_nonnull(p);
    size_t u = sigsafe_usable_size(p);
    fill_plain(p, u, 5);
    const size_t too_big[] = {ST_MIB, 256 * ST_KIB + 1, SIZE_MAX,
                              SIZE_MAX - 15, SIZE_MAX / 2};
    size_t nbig = sizeof(too_big) / sizeof(too_big[0]);
    sigsafe_stats before = st_stats(pool);
    for (size_t k = 0; k < nbig; k++) {
        void *q = sigsafe_realloc(p, st_size(too_big[k]));
        ck_assert_msg(q == NULL, "realloc(p, %zu) = %p, want NULL",
                      too_big[k], q);
        assert_intact(pool, p, u, 5);
        q = sigsafe_pool_realloc(pool, p, st_size(too_big[k]));
        ck_assert_msg(q == NULL, "pool_realloc(p, %zu) = %p", too_big[k], q);
        assert_intact(pool, p, u, 5);
    }
    sigsafe_stats after = st_stats(pool);
    ck_assert_uint_eq(after.bytes_in_use, before.bytes_in_use);
    ck_assert_uint_eq(after.frees, before.frees);
    ck_assert_uint_eq(after.allocs, before.allocs);
    ck_assert_uint_eq(after.rejected_frees, 0);
    ck_assert_msg(after.failed_allocs == before.failed_allocs + 2 * nbig,
                  "failed_allocs +%llu after %zu failed reallocs",
                  (unsigned long long)(after.failed_allocs -
                                       before.failed_allocs),
                  2 * nbig);
    /* Still a live block: a normal free succeeds. */
    sigsafe_free(p);
    after = st_stats(pool);
    ck_assert_uint_eq(after.frees, before.frees + 1);
    ck_assert_uint_eq(after.rejected_frees, 0);
    ck_assert_uint_eq(after.bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A grow into an exhausted pool returns NULL and leaves p intact. */
START_TEST(grow_fail_exhausted_pool)
{
    enum { MAXB = 20000 };
    static void *blk[MAXB];
    int n = 0;
    sigsafe_pool *pool = make_pool("rexh", 256 * ST_KIB);
    unsigned char *p = st_launder(sigsafe_pool_alloc(pool, 64));
    ck_assert_ptr_nonnull(p);
    size_t u = sigsafe_usable_size(p);
    fill_plain(p, u, 11);
    /* Exhaust the pool for 8 KiB blocks. */
    while (n < MAXB && (blk[n] = sigsafe_pool_alloc(pool, 8192)) != NULL)
        n++;
    ck_assert_int_lt(n, MAXB);
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, 8192));
    sigsafe_stats before = st_stats(pool);
    void *q = sigsafe_realloc(p, 8192);
    ck_assert_msg(q == NULL, "realloc into an exhausted pool = %p", q);
    assert_intact(pool, p, u, 11);
    sigsafe_stats after = st_stats(pool);
    ck_assert_uint_eq(after.bytes_in_use, before.bytes_in_use);
    ck_assert_uint_eq(after.frees, before.frees);
    /* Free one 8 KiB block: now the grow fits. */
    ck_assert_int_gt(n, 0);
    sigsafe_free(blk[--n]);
    unsigned char *r = st_launder(sigsafe_realloc(p, 8192));
    ck_assert_msg(r != NULL, "grow failed after room was made");
    ck_assert_ptr_eq(sigsafe_pool_of(r), pool);
    ck_assert(check_plain(r, u, 11) == SIZE_MAX);
    sigsafe_free(r);
    while (n > 0)
        sigsafe_free(blk[--n]);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.rejected_frees, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A block keeps its pool on realloc, whichever entry point is used. */
START_TEST(realloc_keeps_pool)
{
    sigsafe_pool *a = make_pool("ra", 0);
    sigsafe_pool *b = make_pool("rb", 0);
    for (size_t k = 0; k + 1 < NCHAIN; k++) {
        unsigned char *p = st_launder(sigsafe_pool_alloc(b, chain[k]));
        ck_assert_ptr_nonnull(p);
        fill_plain(p, chain[k], 2);
        unsigned char *q = st_launder(sigsafe_realloc(p, chain[k + 1]));
        ck_assert_ptr_nonnull(q);
        ck_assert_msg(sigsafe_pool_of(q) == b,
                      "sigsafe_realloc moved a block of pool b to %p",
                      (void *)sigsafe_pool_of(q));
        ck_assert(check_plain(q, chain[k], 2) == SIZE_MAX);
        unsigned char *r = st_launder(sigsafe_realloc(q, chain[k] / 2 + 1));
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_eq(sigsafe_pool_of(r), b);
        /* pool_realloc with another pool still keeps the block's pool. */
        unsigned char *t = st_launder(sigsafe_pool_realloc(a, r, chain[k + 1]));
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(sigsafe_pool_of(t) == b,
                      "pool_realloc(a, block of b) moved it to pool %p",
                      (void *)sigsafe_pool_of(t));
        ck_assert(check_plain(t, chain[k] / 2 + 1, 2) == SIZE_MAX);
        sigsafe_free(t);
    }
    sigsafe_stats sa = st_stats(a), sb = st_stats(b);
    ck_assert_uint_eq(sa.allocs, 0);
    ck_assert_uint_eq(sa.bytes_in_use, 0);
    ck_assert_uint_eq(sb.bytes_in_use, 0);
    ck_assert_uint_eq(sb.allocs, sb.frees);
    ck_assert_uint_eq(sb.rejected_frees, 0);
    /* And a default-pool block stays in the default pool. */
    void *d = sigsafe_alloc(10);
    ck_assert_ptr_nonnull(d);
    void *d2 = sigsafe_pool_realloc(a, d, 50000);
    ck_assert_ptr_nonnull(d2);
    ck_assert_ptr_eq(sigsafe_pool_of(d2), sigsafe_default_pool());
    sigsafe_free(d2);
    sigsafe_pool_destroy(a);
    sigsafe_pool_destroy(b);
}
END_TEST

/* realloc of a pointer that is no live block: NULL, rejected, reported. */
START_TEST(realloc_bad_pointer)
{
    st_capture cap;
    sigsafe_pool *pool = make_pool("rbad", 0);
    unsigned char *blk = st_launder(sigsafe_pool_alloc(pool, 64));
    ck_assert_ptr_nonnull(blk);
    size_t u = sigsafe_usable_size(blk);
    fill_plain(blk, u, 4);
    void *warm = sigsafe_alloc(8); /* default pool exists */
    ck_assert_ptr_nonnull(warm);
    st_capture_begin(&cap);

    /* A stack address: default pool's rejected_frees. */
    unsigned char stackbuf[64];
    memset(stackbuf, 1, sizeof(stackbuf));
    sigsafe_stats d0 = st_default_stats();
    void *r = sigsafe_realloc(st_launder(stackbuf + 16), 100);
    ck_assert_ptr_null(r);
    sigsafe_stats d1 = st_default_stats();
    ck_assert_uint_eq(d1.rejected_frees, d0.rejected_frees + 1);
    ck_assert_uint_eq(d1.allocs, d0.allocs);
    ck_assert_uint_eq(d1.frees, d0.frees);
    ck_assert_uint_eq(st_capture_lines(&cap), 1);
    for (size_t i = 0; i < sizeof(stackbuf); i++)
        ck_assert_int_eq(stackbuf[i], 1);

    /* A malloc'd pointer. */
    st_capture_reset(&cap);
    char *m = malloc(100);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(sigsafe_realloc(m, 200));
    ck_assert_uint_eq(st_default_stats().rejected_frees,
                      d0.rejected_frees + 2);
    ck_assert_uint_eq(st_capture_lines(&cap), 1);
    free(m);

    /* Interior pointers: the owning pool's rejected_frees. */
    const size_t off[] = {1, 8, 16, 32};
    for (size_t k = 0; k < sizeof(off) / sizeof(off[0]); k++) {
        st_capture_reset(&cap);
        sigsafe_stats p0 = st_stats(pool);
        ck_assert_ptr_null(sigsafe_realloc(blk + off[k], 200));
        ck_assert_ptr_null(sigsafe_pool_realloc(pool, blk + off[k], 10));
        sigsafe_stats p1 = st_stats(pool);
        ck_assert_msg(p1.rejected_frees == p0.rejected_frees + 2,
                      "interior +%zu: rejected_frees %llu -> %llu", off[k],
                      (unsigned long long)p0.rejected_frees,
                      (unsigned long long)p1.rejected_frees);
        ck_assert_uint_eq(p1.frees, p0.frees);
        ck_assert_uint_eq(p1.allocs, p0.allocs);
        ck_assert_uint_eq(p1.bytes_in_use, p0.bytes_in_use);
        ck_assert_uint_eq(st_capture_lines(&cap), 2);
        assert_intact(pool, blk, u, 4);
    }

    /* A freed block (realloc after free is a double free). */
    unsigned char *g = sigsafe_pool_alloc(pool, 200);
    ck_assert_ptr_nonnull(g);
    sigsafe_free(g);
    st_capture_reset(&cap);
    sigsafe_stats p0 = st_stats(pool);
    ck_assert_ptr_null(sigsafe_realloc(g, 300));
    sigsafe_stats p1 = st_stats(pool);
    ck_assert_uint_eq(p1.rejected_frees, p0.rejected_frees + 1);
    ck_assert_uint_eq(p1.frees, p0.frees);
    ck_assert_uint_eq(st_capture_lines(&cap), 1);

    /* Everything still works. */
    sigsafe_free(blk);
    void *ok = sigsafe_pool_alloc(pool, 64);
    ck_assert_ptr_nonnull(ok);
    sigsafe_free(ok);
    sigsafe_free(warm);
    ck_assert_uint_eq(st_capture_lines(&cap), 1);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    st_capture_end(&cap);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A random sequence of reallocs keeps the stats exact. */
START_TEST(realloc_random_stats)
{
    enum { SLOTS = 64, OPS = 20000 };
    unsigned char *p[SLOTS] = {0};
    size_t n[SLOTS] = {0};
    uint64_t rng = 7;
    sigsafe_pool *pool = make_pool("rrand", 16 * ST_MIB);
    for (int op = 0; op < OPS; op++) {
        int i = (int)(st_rand(&rng) % SLOTS);
        size_t want = st_rand_size(&rng, 100000);
        if (st_rand(&rng) % 8 == 0)
            want = 0;
        unsigned char *q = st_launder(sigsafe_pool_realloc(pool, p[i], want));
        if (p[i] != NULL && want == 0) {
            ck_assert_ptr_null(q);
            p[i] = NULL;
            n[i] = 0;
            continue;
        }
        ck_assert_msg(q != NULL, "op %d: realloc to %zu NULL", op, want);
        size_t keep = n[i] < want ? n[i] : want;
        ck_assert_msg(check_plain(q, keep, (unsigned)i) == SIZE_MAX,
                      "op %d: realloc %zu -> %zu lost data", op, n[i], want);
        fill_plain(q, want, (unsigned)i);
        p[i] = q;
        n[i] = want;
    }
    size_t live = 0, bytes = 0;
    for (int i = 0; i < SLOTS; i++)
        if (p[i]) {
            live++;
            bytes += sigsafe_usable_size(p[i]);
        }
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, bytes);
    ck_assert_uint_eq(s.rejected_frees, 0);
    ck_assert_uint_eq(s.failed_allocs, 0);
    for (int i = 0; i < SLOTS; i++)
        sigsafe_free(p[i]);
    s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_msg(s.allocs == s.frees,
                  "after freeing everything allocs=%llu frees=%llu",
                  (unsigned long long)s.allocs, (unsigned long long)s.frees);
    (void)live;
    sigsafe_pool_destroy(pool);
}
END_TEST

Suite *realloc_suite(void)
{
    Suite *s = suite_create("realloc");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, realloc_null_allocates);
    tcase_add_test(tc, realloc_zero_frees);
    tcase_add_test(tc, grow_keeps_content);
    tcase_add_test(tc, shrink_keeps_content);
    tcase_add_test(tc, same_size_keeps_content);
    tcase_add_test(tc, realloc_keeps_pool);
    tcase_add_test(tc, realloc_random_stats);
    suite_add_tcase(s, tc);

    tc = tcase_create("failure");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, grow_fail_leaves_block);
    tcase_add_test(tc, grow_fail_exhausted_pool);
    tcase_add_test(tc, realloc_bad_pointer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(realloc_suite());
}
