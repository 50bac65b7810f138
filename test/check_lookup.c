/* SPDX-License-Identifier: MIT */
/*
 * lookup: sigsafe_usable_size, sigsafe_pool_of, and sigsafe_free across
 * pools.
 */
#include "support.h"

#include <stdlib.h>
#include <sys/mman.h>

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s) = %d", name, rc);
    return pool;
}

static const size_t sizes[] = {0,    1,     15,    16,    17,    48,
                               100,  255,   512,   1000,  4095,  4096,
                               4097, 10000, 16384, 16385, 65536, 100000,
                               300000};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* usable_size >= requested, and the usable bytes really are usable. */
START_TEST(usable_size_ge_requested)
{
    sigsafe_pool *pool = make_pool("usable", 8 * ST_MIB);
    void *p[NSIZES], *q[NSIZES];
    for (size_t k = 0; k < NSIZES; k++) {
        p[k] = st_launder(sigsafe_alloc(sizes[k]));
        q[k] = st_launder(sigsafe_pool_alloc(pool, sizes[k]));
        ck_assert_ptr_nonnull(p[k]);
        ck_assert_ptr_nonnull(q[k]);
        size_t up = sigsafe_usable_size(p[k]), uq = sigsafe_usable_size(q[k]);
        ck_assert_msg(up >= sizes[k] && up > 0, "alloc(%zu): usable %zu",
                      sizes[k], up);
        ck_assert_msg(uq >= sizes[k] && uq > 0, "pool_alloc(%zu): usable %zu",
                      sizes[k], uq);
        st_fill(p[k], up, k);
        st_fill(q[k], uq, k + 100);
    }
    for (size_t k = 0; k < NSIZES; k++) {
        ck_assert(st_check(p[k], sigsafe_usable_size(p[k]), k) == SIZE_MAX);
        ck_assert(st_check(q[k], sigsafe_usable_size(q[k]), k + 100) ==
                  SIZE_MAX);
        sigsafe_free(p[k]);
        sigsafe_free(q[k]);
    }
    sigsafe_pool_destroy(pool);
}
END_TEST

/* usable_size is 0 for anything that is not a live block, and asking
 * counts nothing. */
START_TEST(usable_size_zero_when_not_live)
{
    sigsafe_pool *pool = make_pool("notlive", 0);
    sigsafe_set_report_fd(-1);
    unsigned char stackbuf[64];
    char *m = malloc(64);
    ck_assert_ptr_nonnull(m);
    size_t page = st_page_size();
    void *pg = mmap(NULL, page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(pg != MAP_FAILED);
    /* Create the default pool before unmapping, so it cannot land there. */
    void *warm = sigsafe_alloc(8);
    ck_assert_ptr_nonnull(warm);
    ck_assert_int_eq(munmap(pg, page), 0);

    sigsafe_stats d0 = st_default_stats();
    ck_assert_uint_eq(sigsafe_usable_size(NULL), 0);
    ck_assert_uint_eq(sigsafe_usable_size(st_launder(stackbuf)), 0);
    ck_assert_uint_eq(sigsafe_usable_size(m), 0);
    ck_assert_uint_eq(sigsafe_usable_size(pg), 0);

    for (size_t k = 0; k < NSIZES; k++) {
        unsigned char *b = st_launder(sigsafe_pool_alloc(pool, sizes[k]));
        ck_assert_ptr_nonnull(b);
        size_t u = sigsafe_usable_size(b);
        ck_assert_uint_gt(u, 0);
        const size_t off[] = {1, 8, 16, 32, 4096, 65536};
        for (size_t j = 0; j < sizeof(off) / sizeof(off[0]); j++) {
            if (off[j] >= u)
                continue;
            ck_assert_msg(sigsafe_usable_size(b + off[j]) == 0,
                          "usable_size(p + %zu) of a %zu-byte block = %zu",
                          off[j], sizes[k], sigsafe_usable_size(b + off[j]));
        }
        sigsafe_free(b);
        ck_assert_msg(sigsafe_usable_size(b) == 0,
                      "usable_size of a freed %zu-byte block = %zu",
                      sizes[k], sigsafe_usable_size(b));
    }
    sigsafe_stats d1 = st_default_stats();
    ck_assert_uint_eq(d1.rejected_frees, d0.rejected_frees);
    ck_assert_uint_eq(st_stats(pool).rejected_frees, 0);
    ck_assert_uint_eq(st_stats(pool).frees, NSIZES);
    free(m);
    sigsafe_free(warm);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* pool_of names the owning pool for blocks of several pools. */
START_TEST(pool_of_owner)
{
    enum { NP = 4, PER = 40 };
    sigsafe_pool *pools[NP];
    static void *blk[NP][PER];
    pools[0] = NULL; /* the default pool, through sigsafe_alloc */
    for (int i = 1; i < NP; i++)
        pools[i] = make_pool("owner", 4 * ST_MIB);
    for (int j = 0; j < PER; j++) {
        size_t n = sizes[(size_t)j % (NSIZES - 1)];
        blk[0][j] = sigsafe_alloc(n);
        ck_assert_ptr_nonnull(blk[0][j]);
        for (int i = 1; i < NP; i++) {
            blk[i][j] = sigsafe_pool_alloc(pools[i], n);
            ck_assert_ptr_nonnull(blk[i][j]);
        }
    }
    pools[0] = sigsafe_default_pool();
    ck_assert_ptr_nonnull(pools[0]);
    for (int i = 0; i < NP; i++)
        for (int j = 0; j < PER; j++)
            ck_assert_msg(sigsafe_pool_of(blk[i][j]) == pools[i],
                          "pool_of(block %d of pool %d) = %p, want %p", j, i,
                          (void *)sigsafe_pool_of(blk[i][j]),
                          (void *)pools[i]);
    /* sigsafe_free works on any pool's block and counts in its pool. */
    for (int i = 0; i < NP; i++) {
        sigsafe_stats before[NP];
        for (int k = 0; k < NP; k++)
            before[k] = st_stats(pools[k]);
        for (int j = 0; j < PER; j++)
            sigsafe_free(blk[i][j]);
        for (int k = 0; k < NP; k++) {
            sigsafe_stats after = st_stats(pools[k]);
            ck_assert_uint_eq(after.frees,
                              before[k].frees + (k == i ? PER : 0));
            ck_assert_uint_eq(after.rejected_frees, before[k].rejected_frees);
        }
        ck_assert_uint_eq(st_stats(pools[i]).bytes_in_use, 0);
    }
    for (int i = 1; i < NP; i++)
        sigsafe_pool_destroy(pools[i]);
}
END_TEST

/* pool_of is NULL for memory that belongs to no pool. */
START_TEST(pool_of_foreign)
{
    sigsafe_pool *pool = make_pool("foreign", 0);
    void *warm = sigsafe_alloc(8);
    ck_assert_ptr_nonnull(warm);
    int local = 0;
    static int global;
    char *m = malloc(100);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(sigsafe_pool_of(NULL));
    ck_assert_ptr_null(sigsafe_pool_of(st_launder(&local)));
    ck_assert_ptr_null(sigsafe_pool_of(st_launder(&global)));
    ck_assert_ptr_null(sigsafe_pool_of(m));
    ck_assert_ptr_null(sigsafe_pool_of((void *)(uintptr_t)4096));
    ck_assert_ptr_null(sigsafe_pool_of(st_launder((void *)"rodata")));
    free(m);
    sigsafe_free(warm);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* After a pool is destroyed and another created, lookups follow the new
 * pool's blocks. */
START_TEST(pool_of_after_recreate)
{
    for (int i = 0; i < 20; i++) {
        sigsafe_pool *a = make_pool("re-a", ST_MIB);
        sigsafe_pool *b = make_pool("re-b", ST_MIB);
        void *pa = sigsafe_pool_alloc(a, 64), *pb = sigsafe_pool_alloc(b, 64);
        ck_assert_ptr_nonnull(pa);
        ck_assert_ptr_nonnull(pb);
        ck_assert_ptr_eq(sigsafe_pool_of(pa), a);
        ck_assert_ptr_eq(sigsafe_pool_of(pb), b);
        ck_assert_uint_ge(sigsafe_usable_size(pa), 64);
        sigsafe_free(pa);
        sigsafe_free(pb);
        sigsafe_pool_destroy(a);
        sigsafe_pool_destroy(b);
    }
}
END_TEST

Suite *lookup_suite(void)
{
    Suite *s = suite_create("lookup");
    TCase *tc = tcase_create("lookup");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, usable_size_ge_requested);
    tcase_add_test(tc, usable_size_zero_when_not_live);
    tcase_add_test(tc, pool_of_owner);
    tcase_add_test(tc, pool_of_foreign);
    tcase_add_test(tc, pool_of_after_recreate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(lookup_suite());
}
