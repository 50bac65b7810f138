/* SPDX-License-Identifier: MIT */
/*
 * alloc: sigsafe_alloc / calloc / aligned_alloc and their pool_ forms.
 */
#include "support.h"

#include <stdlib.h>

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Without sigsafe_init, the first sigsafe_alloc creates the default pool. */
START_TEST(first_alloc_creates_default_pool)
{
    void *p = sigsafe_alloc(1);
    ck_assert_ptr_nonnull(p);
    sigsafe_pool *dp = sigsafe_default_pool();
    ck_assert_ptr_nonnull(dp);
    ck_assert_ptr_eq(sigsafe_pool_of(p), dp);
    sigsafe_stats s = st_stats(dp);
    ck_assert_uint_eq(s.capacity, ST_DEFAULT_CAPACITY);
    ck_assert_uint_eq(s.allocs, 1);
    ck_assert_uint_eq(s.frees, 0);
    ck_assert_uint_eq(s.bytes_in_use, sigsafe_usable_size(p));
    ck_assert_ptr_eq(sigsafe_default_pool(), dp);
    sigsafe_free(p);
    s = st_stats(dp);
    ck_assert_uint_eq(s.frees, 1);
    ck_assert_uint_eq(s.bytes_in_use, 0);
}
END_TEST

/* sigsafe_alloc(0) returns a unique live block each time. */
START_TEST(alloc_zero_unique)
{
    enum { N = 300 };
    void *p[N];
    uintptr_t a[N];
    for (int i = 0; i < N; i++) {
        p[i] = sigsafe_alloc(st_size(0));
        ck_assert_msg(p[i] != NULL, "alloc(0) #%d returned NULL", i);
        ck_assert_msg(sigsafe_usable_size(p[i]) > 0,
                      "alloc(0) block has usable_size 0");
        ck_assert_ptr_eq(sigsafe_pool_of(p[i]), sigsafe_default_pool());
        a[i] = st_uptr(p[i]);
    }
    qsort(a, N, sizeof(a[0]), cmp_uptr);
    for (int i = 1; i < N; i++)
        ck_assert_msg(a[i] != a[i - 1], "alloc(0) returned %p twice",
                      (void *)a[i]);
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.allocs, N);
    for (int i = 0; i < N; i++)
        sigsafe_free(p[i]);
    s = st_default_stats();
    ck_assert_uint_eq(s.frees, N);
    ck_assert_uint_eq(s.rejected_frees, 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
}
END_TEST

static void check_size(size_t n)
{
    unsigned char *p = st_launder(sigsafe_alloc(st_size(n)));
    ck_assert_msg(p != NULL, "alloc(%zu) returned NULL", n);
    ck_assert_msg(st_uptr(p) % 16 == 0, "alloc(%zu) = %p not 16-aligned", n,
                  (void *)p);
    size_t u = sigsafe_usable_size(p);
    ck_assert_msg(u >= n && u > 0, "alloc(%zu): usable_size %zu", n, u);
    /* Every usable byte is writable and keeps its value. */
    st_fill(p, u, n);
    ck_assert_msg(st_check(p, u, n) == SIZE_MAX,
                  "alloc(%zu): pattern lost", n);
    sigsafe_free(p);
    ck_assert_uint_eq(sigsafe_usable_size(p), 0);
}

/* 16-alignment, usable_size >= n and full-usable writes for 0..70000. */
START_TEST(sizes_aligned_and_writable)
{
    for (size_t n = 0; n <= 1100; n++)
        check_size(n);
    for (size_t n = 1100; n <= 70000; n += 61)
        check_size(n);
    for (size_t k = 4; k <= 16; k++) {
        check_size(((size_t)1 << k) - 1);
        check_size((size_t)1 << k);
        check_size(((size_t)1 << k) + 1);
    }
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.allocs, s.frees);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.failed_allocs, 0);
}
END_TEST

/* Many live blocks of mixed sizes never overlap and keep their contents. */
START_TEST(live_blocks_disjoint)
{
    enum { N = 1500 };
    static uintptr_t a[N];
    static void *p[N];
    static size_t u[N];
    uint64_t rng = 42;
    size_t total = 0;
    sigsafe_pool_config cfg = {.name = "disjoint", .capacity = 64 * ST_MIB};
    ck_assert_int_eq(sigsafe_init(&cfg), 0);
    for (int i = 0; i < N; i++) {
        size_t n = st_rand_size(&rng, 20000);
        p[i] = st_launder(sigsafe_alloc(n));
        ck_assert_msg(p[i] != NULL, "alloc(%zu) #%d NULL", n, i);
        u[i] = sigsafe_usable_size(p[i]);
        ck_assert_uint_ge(u[i], n);
        st_fill(p[i], u[i], (uint64_t)i);
        total += u[i];
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(st_check(p[i], u[i], (uint64_t)i) == SIZE_MAX,
                      "block %d (%p, %zu bytes) overwritten", i, p[i], u[i]);
    for (int i = 0; i < N; i++)
        a[i] = st_uptr(p[i]);
    qsort(a, N, sizeof(a[0]), cmp_uptr);
    for (int i = 1; i < N; i++) {
        size_t prev = sigsafe_usable_size((void *)a[i - 1]);
        ck_assert_msg(a[i - 1] + prev <= a[i],
                      "blocks %p (+%zu) and %p overlap", (void *)a[i - 1],
                      prev, (void *)a[i]);
    }
    ck_assert_uint_eq(st_default_stats().bytes_in_use, total);
    for (int i = 0; i < N; i++)
        sigsafe_free(p[i]);
    ck_assert_uint_eq(st_default_stats().bytes_in_use, 0);
}
END_TEST

/* aligned_alloc: every power of two up to the page size works. */
START_TEST(aligned_alloc_powers_of_two)
{
    size_t page = st_page_size();
    const size_t sizes[] = {1, 8, 16, 100, 1000, 5000, 70000};
    for (size_t al = 1; al <= page; al *= 2) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            size_t n = sizes[k];
            unsigned char *p =
                st_launder(sigsafe_aligned_alloc(st_size(al), st_size(n)));
            ck_assert_msg(p != NULL, "aligned_alloc(%zu, %zu) NULL", al, n);
            ck_assert_msg(st_uptr(p) % al == 0 && st_uptr(p) % 16 == 0,
                          "aligned_alloc(%zu, %zu) = %p misaligned", al, n,
                          (void *)p);
            size_t u = sigsafe_usable_size(p);
            ck_assert_uint_ge(u, n);
            st_fill(p, u, al);
            ck_assert(st_check(p, u, al) == SIZE_MAX);
            sigsafe_free(p);
        }
    }
    sigsafe_stats s = st_default_stats();
    ck_assert_uint_eq(s.allocs, s.frees);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.rejected_frees, 0);
}
END_TEST

/* aligned_alloc: zero, non-powers-of-two and > page size give NULL. */
START_TEST(aligned_alloc_bad_alignment)
{
    size_t page = st_page_size();
    const size_t bad[] = {0,   3,    5,        6,        7,        12,
                          24,  48,   100,      1000,     4095,     4097,
                          page * 2, page * 4, page + 16, (size_t)1 << 20,
                          SIZE_MAX, SIZE_MAX / 2 + 1};
    /* Make sure the default pool exists, then count only our calls. */
    void *warm = sigsafe_alloc(16);
    ck_assert_ptr_nonnull(warm);
    sigsafe_stats before = st_default_stats();
    size_t nbad = 0;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        size_t al = bad[k];
        if (al != 0 && (al & (al - 1)) == 0 && al <= page)
            continue; /* a valid alignment on this page size */
        void *p = sigsafe_aligned_alloc(st_size(al), st_size(64));
        ck_assert_msg(p == NULL, "aligned_alloc(%zu, 64) = %p, want NULL",
                      al, p);
        nbad++;
    }
    sigsafe_stats after = st_default_stats();
    ck_assert_uint_eq(after.allocs, before.allocs);
    ck_assert_uint_eq(after.bytes_in_use, before.bytes_in_use);
    ck_assert_msg(after.failed_allocs == before.failed_allocs + nbad,
                  "failed_allocs +%llu for %zu NULL returns",
                  (unsigned long long)(after.failed_allocs -
                                       before.failed_allocs),
                  nbad);
    sigsafe_free(warm);
}
END_TEST

/* pool_aligned_alloc: same rules, block lands in that pool. */
START_TEST(pool_aligned_alloc)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = "aligned", .capacity = 8 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    size_t page = st_page_size();
    void *keep[64];
    int nkeep = 0;
    for (size_t al = 1; al <= page; al *= 2) {
        for (size_t n = 1; n <= 9000; n = n * 3 + 7) {
            unsigned char *p = st_launder(
                sigsafe_pool_aligned_alloc(pool, st_size(al), st_size(n)));
            ck_assert_msg(p != NULL, "pool_aligned_alloc(%zu, %zu) NULL", al,
                          n);
            ck_assert_msg(st_uptr(p) % al == 0 && st_uptr(p) % 16 == 0,
                          "pool_aligned_alloc(%zu, %zu) = %p", al, n,
                          (void *)p);
            ck_assert_ptr_eq(sigsafe_pool_of(p), pool);
            ck_assert_uint_ge(sigsafe_usable_size(p), n);
            st_fill(p, sigsafe_usable_size(p), n);
            if (nkeep < 64 && n > 100)
                keep[nkeep++] = p; /* live alongside later blocks */
            else
                sigsafe_free(p);
        }
    }
    for (int i = 0; i < nkeep; i++)
        sigsafe_free(keep[i]);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, s.frees);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.failed_allocs, 0);

    const size_t bad[] = {0, 3, 6, 12, 4095, page * 2, SIZE_MAX};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        void *p =
            sigsafe_pool_aligned_alloc(pool, st_size(bad[k]), st_size(32));
        ck_assert_msg(p == NULL, "pool_aligned_alloc(%zu, 32) = %p", bad[k],
                      p);
    }
    s = st_stats(pool);
    ck_assert_uint_eq(s.failed_allocs, sizeof(bad) / sizeof(bad[0]));
    sigsafe_pool_destroy(pool);
}
END_TEST

static void check_calloc_zeroes(sigsafe_pool *pool, size_t n, size_t size)
{
    size_t total = n * size;
    for (int round = 0; round < 3; round++) {
        unsigned char *d = st_launder(pool ? sigsafe_pool_alloc(pool, total)
                                           : sigsafe_alloc(total));
        ck_assert_msg(d != NULL, "alloc(%zu) NULL", total);
        memset(d, 0xA5, sigsafe_usable_size(d));
        sigsafe_free(d);
        unsigned char *z =
            st_launder(pool ? sigsafe_pool_calloc(pool, st_size(n), size)
                            : sigsafe_calloc(st_size(n), size));
        ck_assert_msg(z != NULL, "calloc(%zu, %zu) NULL", n, size);
        ck_assert_uint_eq(st_uptr(z) % 16, 0);
        ck_assert_uint_ge(sigsafe_usable_size(z), total);
        size_t nz = st_first_nonzero(z, total);
        ck_assert_msg(nz == SIZE_MAX,
                      "calloc(%zu, %zu) byte %zu is 0x%02x (reused %s)", n,
                      size, nz, z[nz], z == d ? "same block" : "other block");
        memset(z, 0x5A, total);
        sigsafe_free(z);
    }
}

/* calloc zeroes a block even when it reuses a dirty one. */
START_TEST(calloc_zeroes)
{
    const size_t sizes[][2] = {{1, 1},    {1, 16},  {3, 33},   {10, 100},
                               {1, 4096}, {7, 999}, {1, 70000}, {4, 50000},
                               {1, 300000}};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        check_calloc_zeroes(NULL, sizes[k][0], sizes[k][1]);
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = "calloc", .capacity = 4 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        check_calloc_zeroes(pool, sizes[k][0], sizes[k][1]);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, s.frees);
    sigsafe_pool_destroy(pool);
    ck_assert_uint_eq(st_default_stats().bytes_in_use, 0);
}
END_TEST

/* calloc(0, x) and calloc(x, 0) behave like alloc(0): a unique block. */
START_TEST(calloc_zero)
{
    void *a = sigsafe_calloc(st_size(0), 16);
    void *b = sigsafe_calloc(16, st_size(0));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert(st_uptr(a) != st_uptr(b));
    sigsafe_free(a);
    sigsafe_free(b);
    ck_assert_uint_eq(st_default_stats().rejected_frees, 0);
}
END_TEST

/* n * size overflowing size_t returns NULL and counts a failed alloc. */
START_TEST(calloc_overflow)
{
    void *warm = sigsafe_alloc(16);
    ck_assert_ptr_nonnull(warm);
    const size_t ov[][2] = {
        {SIZE_MAX / 2 + 1, 2},
        {2, SIZE_MAX / 2 + 1},
        {SIZE_MAX, SIZE_MAX},
        {SIZE_MAX, 2},
        {(size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4)},
        {SIZE_MAX / 16 + 1, 16},
        {65537, SIZE_MAX / 65536},
    };
    size_t nov = sizeof(ov) / sizeof(ov[0]);
    sigsafe_stats before = st_default_stats();
    for (size_t k = 0; k < nov; k++) {
        void *p = sigsafe_calloc(st_size(ov[k][0]), st_size(ov[k][1]));
        ck_assert_msg(p == NULL, "calloc(%zu, %zu) = %p, want NULL", ov[k][0],
                      ov[k][1], p);
    }
    sigsafe_stats after = st_default_stats();
    ck_assert_uint_eq(after.failed_allocs, before.failed_allocs + nov);
    ck_assert_uint_eq(after.allocs, before.allocs);
    ck_assert_uint_eq(after.bytes_in_use, before.bytes_in_use);

    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = "overflow"};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    for (size_t k = 0; k < nov; k++) {
        void *p =
            sigsafe_pool_calloc(pool, st_size(ov[k][0]), st_size(ov[k][1]));
        ck_assert_msg(p == NULL, "pool_calloc(%zu, %zu) = %p", ov[k][0],
                      ov[k][1], p);
    }
    sigsafe_stats ps = st_stats(pool);
    ck_assert_uint_eq(ps.failed_allocs, nov);
    ck_assert_uint_eq(ps.allocs, 0);
    ck_assert_uint_eq(ps.bytes_in_use, 0);
    /* The pool still works. */
    void *q = sigsafe_pool_calloc(pool, 4, 4);
    ck_assert_ptr_nonnull(q);
    sigsafe_free(q);
    sigsafe_pool_destroy(pool);
    sigsafe_free(warm);
}
END_TEST

/* Huge requests return NULL, count one failed alloc each, crash nothing. */
START_TEST(huge_sizes_fail_cleanly)
{
    void *warm = sigsafe_alloc(16);
    ck_assert_ptr_nonnull(warm);
    const size_t huge[] = {SIZE_MAX,          SIZE_MAX - 15,
                           SIZE_MAX - 4096,   SIZE_MAX / 2,
                           SIZE_MAX / 2 + 1,  (size_t)1 << 40,
                           ST_DEFAULT_CAPACITY * 2,
                           ST_DEFAULT_CAPACITY + 1};
    size_t nh = sizeof(huge) / sizeof(huge[0]);
    sigsafe_stats before = st_default_stats();
    for (size_t k = 0; k < nh; k++) {
        void *p = sigsafe_alloc(st_size(huge[k]));
        ck_assert_msg(p == NULL, "alloc(%zu) = %p, want NULL", huge[k], p);
        p = sigsafe_aligned_alloc(64, st_size(huge[k]));
        ck_assert_msg(p == NULL, "aligned_alloc(64, %zu) = %p", huge[k], p);
        p = sigsafe_calloc(1, st_size(huge[k]));
        ck_assert_msg(p == NULL, "calloc(1, %zu) = %p", huge[k], p);
    }
    sigsafe_stats after = st_default_stats();
    ck_assert_uint_eq(after.failed_allocs, before.failed_allocs + 3 * nh);
    ck_assert_uint_eq(after.allocs, before.allocs);
    ck_assert_uint_eq(after.bytes_in_use, before.bytes_in_use);
    /* Still serves ordinary requests. */
    void *p = sigsafe_alloc(1000);
    ck_assert_ptr_nonnull(p);
    sigsafe_free(p);
    sigsafe_free(warm);
    ck_assert_uint_eq(st_default_stats().bytes_in_use, 0);
}
END_TEST

/* pool_alloc hands out blocks of that pool only, and frees go back to it. */
START_TEST(pool_alloc_basic)
{
    sigsafe_pool *a = NULL, *b = NULL;
    ck_assert_int_eq(sigsafe_pool_create(
                         &(sigsafe_pool_config){.name = "a"}, &a),
                     0);
    ck_assert_int_eq(sigsafe_pool_create(
                         &(sigsafe_pool_config){.name = "b"}, &b),
                     0);
    ck_assert(a != b);
    void *pa[100], *pb[100];
    for (int i = 0; i < 100; i++) {
        pa[i] = sigsafe_pool_alloc(a, (size_t)i * 37);
        pb[i] = sigsafe_pool_alloc(b, (size_t)i * 37);
        ck_assert_ptr_nonnull(pa[i]);
        ck_assert_ptr_nonnull(pb[i]);
        ck_assert_ptr_eq(sigsafe_pool_of(pa[i]), a);
        ck_assert_ptr_eq(sigsafe_pool_of(pb[i]), b);
        ck_assert_uint_eq(st_uptr(pa[i]) % 16, 0);
    }
    ck_assert_uint_eq(st_stats(a).allocs, 100);
    ck_assert_uint_eq(st_stats(b).allocs, 100);
    for (int i = 0; i < 100; i++) {
        sigsafe_free(pa[i]);
        sigsafe_free(pb[i]);
    }
    ck_assert_uint_eq(st_stats(a).frees, 100);
    ck_assert_uint_eq(st_stats(b).frees, 100);
    ck_assert_uint_eq(st_stats(a).bytes_in_use, 0);
    sigsafe_pool_destroy(a);
    sigsafe_pool_destroy(b);
}
END_TEST

Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("alloc");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, first_alloc_creates_default_pool);
    tcase_add_test(tc, alloc_zero_unique);
    tcase_add_test(tc, sizes_aligned_and_writable);
    tcase_add_test(tc, live_blocks_disjoint);
    tcase_add_test(tc, pool_alloc_basic);
    suite_add_tcase(s, tc);

    tc = tcase_create("aligned");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, aligned_alloc_powers_of_two);
    tcase_add_test(tc, aligned_alloc_bad_alignment);
    tcase_add_test(tc, pool_aligned_alloc);
    suite_add_tcase(s, tc);

    tc = tcase_create("calloc");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, calloc_zeroes);
    tcase_add_test(tc, calloc_zero);
    tcase_add_test(tc, calloc_overflow);
    tcase_add_test(tc, huge_sizes_fail_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(alloc_suite());
}
