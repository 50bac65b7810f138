/* SPDX-License-Identifier: MIT */
/*
 * pool: sigsafe_init, sigsafe_pool_create/destroy, capacity, pool flags.
 */
#include "support.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static sigsafe_pool *make_pool(const char *name, size_t capacity,
                               unsigned flags)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {
        .name = name, .capacity = capacity, .flags = flags};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s, %zu, %#x) = %d (%s)",
                  name ? name : "(null)", capacity, flags, rc, strerror(rc));
    ck_assert_ptr_nonnull(pool);
    return pool;
}

static void assert_fresh(sigsafe_pool *pool, size_t capacity)
{
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.capacity, capacity);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.peak_bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, 0);
    ck_assert_uint_eq(s.frees, 0);
    ck_assert_uint_eq(s.failed_allocs, 0);
    ck_assert_uint_eq(s.rejected_frees, 0);
}

/* Allocate and free a little from a pool; the block must be its own. */
static void use_pool(sigsafe_pool *pool)
{
    const size_t sizes[] = {0, 1, 16, 100, 1000, 5000, 30000};
    void *p[sizeof(sizes) / sizeof(sizes[0])];
    sigsafe_stats s0 = st_stats(pool);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        p[k] = st_launder(sigsafe_pool_alloc(pool, sizes[k]));
        ck_assert_msg(p[k] != NULL, "pool_alloc(%zu) NULL", sizes[k]);
        ck_assert_ptr_eq(sigsafe_pool_of(p[k]), pool);
        size_t u = sigsafe_usable_size(p[k]);
        ck_assert_uint_ge(u, sizes[k]);
        st_fill(p[k], u, k);
    }
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        ck_assert(st_check(p[k], sigsafe_usable_size(p[k]), k) == SIZE_MAX);
        sigsafe_free(p[k]);
    }
    sigsafe_stats s1 = st_stats(pool);
    ck_assert_uint_eq(s1.allocs, s0.allocs + sizeof(sizes) / sizeof(sizes[0]));
    ck_assert_uint_eq(s1.frees, s0.frees + sizeof(sizes) / sizeof(sizes[0]));
    ck_assert_uint_eq(s1.bytes_in_use, s0.bytes_in_use);
    ck_assert_uint_eq(s1.rejected_frees, s0.rejected_frees);
}

/* ------------------------------------------------------ create / destroy */

START_TEST(create_defaults)
{
    sigsafe_pool *pool = make_pool(NULL, 0, 0);
    assert_fresh(pool, ST_DEFAULT_CAPACITY);
    use_pool(pool);
    ck_assert_ptr_ne(pool, sigsafe_default_pool());
    sigsafe_pool_destroy(pool);
}
END_TEST

/* pool_create(NULL, &out): defaults or EINVAL, but consistent. */
START_TEST(create_null_cfg)
{
    sigsafe_pool *sentinel = (sigsafe_pool *)(uintptr_t)0x5a5a5a50;
    sigsafe_pool *pool = sentinel;
    int rc = sigsafe_pool_create(NULL, &pool);
    if (rc == 0) {
        ck_assert_ptr_nonnull(pool);
        ck_assert_ptr_ne(pool, sentinel);
        assert_fresh(pool, ST_DEFAULT_CAPACITY);
        use_pool(pool);
        sigsafe_pool_destroy(pool);
    } else {
        ck_assert_int_eq(rc, EINVAL);
        ck_assert_ptr_eq(pool, sentinel);
    }
}
END_TEST

START_TEST(create_bad_args)
{
    sigsafe_pool *sentinel = (sigsafe_pool *)(uintptr_t)0x5a5a5a50;
    sigsafe_pool *pool = sentinel;
    sigsafe_pool_config cfg = {.name = "bad", .capacity = 0, .flags = 0};
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_pool_create(&cfg, NULL));
    ck_assert_int_eq(rc, EINVAL);

    const unsigned bad_flags[] = {1u << 3, 1u << 8, 1u << 31, ~0u,
                                  SIGSAFE_POOL_PREFAULT | (1u << 5)};
    for (size_t k = 0; k < sizeof(bad_flags) / sizeof(bad_flags[0]); k++) {
        cfg.flags = bad_flags[k];
        ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_pool_create(&cfg, &pool));
        ck_assert_msg(rc == EINVAL, "flags %#x: rc %d, want EINVAL",
                      bad_flags[k], rc);
        ck_assert_msg(pool == sentinel, "flags %#x: *out changed",
                      bad_flags[k]);
    }
    /* A capacity no machine can reserve: a positive errno, out unchanged. */
    const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, (size_t)1 << 62};
    cfg.flags = 0;
    for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
        cfg.capacity = huge[k];
        ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_pool_create(&cfg, &pool));
        ck_assert_msg(rc > 0, "capacity %zu: rc %d, want an errno value",
                      huge[k], rc);
        ck_assert_ptr_eq(pool, sentinel);
    }
    /* Failed creates leave nothing behind that breaks a good one. */
    cfg.capacity = 0;
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    ck_assert_ptr_ne(pool, sentinel);
    assert_fresh(pool, ST_DEFAULT_CAPACITY);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(create_named_in_maps)
{
    sigsafe_pool *pool = make_pool("ckpool", 0, 0);
    if (!st_maps_contains("sigsafe:ckpool")) {
        ck_assert_msg(!st_kernel_names_vmas(),
                      "kernel names VMAs but no 'sigsafe:ckpool' mapping "
                      "in /proc/self/maps");
        printf("create_named_in_maps: skipped, kernel lacks "
               "PR_SET_VMA_ANON_NAME\n");
    }
    use_pool(pool);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(long_name_truncated)
{
    char name[64] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"; /* 44 */
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "a 44-byte name was rejected (%d)", rc);
    memset(name, 'X', 40); /* the name was copied */
    if (st_kernel_names_vmas()) {
        ck_assert_msg(
            st_maps_contains("sigsafe:abcdefghijklmnopqrstuvwxyz01234]"),
            "no mapping named by the first 31 bytes of the name");
        ck_assert(!st_maps_contains("sigsafe:abcdefghijklmnopqrstuvwxyz012345"));
    }
    use_pool(pool);

    sigsafe_pool *p31 = NULL;
    cfg.name = "ABCDEFGHIJKLMNOPQRSTUVWXYZ98765"; /* exactly 31 */
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &p31), 0);
    if (st_kernel_names_vmas())
        ck_assert(st_maps_contains("sigsafe:ABCDEFGHIJKLMNOPQRSTUVWXYZ98765]"));
    sigsafe_pool_destroy(p31);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Many pools created and destroyed in a loop, and several alive at once. */
START_TEST(many_pools)
{
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "loop%d", i);
        sigsafe_pool *pool = make_pool(name, (size_t)(i % 4 + 1) * ST_MIB, 0);
        assert_fresh(pool, (size_t)(i % 4 + 1) * ST_MIB);
        void *p = sigsafe_pool_alloc(pool, (size_t)i * 100);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_eq(sigsafe_pool_of(p), pool);
        sigsafe_free(p);
        ck_assert_uint_eq(st_stats(pool).frees, 1);
        sigsafe_pool_destroy(pool);
    }
    enum { LIVE = 12 };
    for (int round = 0; round < 4; round++) {
        sigsafe_pool *pools[LIVE];
        void *blk[LIVE];
        for (int i = 0; i < LIVE; i++) {
            pools[i] = make_pool("multi", ST_MIB, 0);
            blk[i] = sigsafe_pool_alloc(pools[i], 48);
            ck_assert_ptr_nonnull(blk[i]);
        }
        for (int i = 0; i < LIVE; i++) {
            ck_assert_ptr_eq(sigsafe_pool_of(blk[i]), pools[i]);
            for (int j = 0; j < i; j++)
                ck_assert_ptr_ne(pools[i], pools[j]);
        }
        for (int i = 0; i < LIVE; i++) {
            sigsafe_free(blk[i]);
            sigsafe_stats s = st_stats(pools[i]);
            ck_assert_uint_eq(s.frees, 1);
            ck_assert_uint_eq(s.rejected_frees, 0);
            sigsafe_pool_destroy(pools[i]);
        }
    }
}
END_TEST

/* ------------------------------------------------------------- capacity */

/* Fill a pool with `size`-byte blocks until NULL; check the hard cap. */
static void fill_to_cap(size_t capacity, size_t size)
{
    sigsafe_pool *pool = make_pool("cap", capacity, 0);
    size_t max = capacity / (size ? size : 1) + 64;
    void **blk = calloc(max, sizeof(*blk));
    ck_assert_ptr_nonnull(blk);
    size_t n = 0, sum = 0;
    while (n < max) {
        void *p = sigsafe_pool_alloc(pool, size);
        if (p == NULL)
            break;
        blk[n++] = p;
        sum += sigsafe_usable_size(p);
        ck_assert_msg(sum <= capacity,
                      "live usable bytes %zu exceed capacity %zu", sum,
                      capacity);
    }
    ck_assert_msg(n < max, "pool of %zu bytes served %zu blocks of %zu",
                  capacity, n, size);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.allocs, n);
    ck_assert_uint_eq(s.failed_allocs, 1);
    ck_assert_uint_eq(s.bytes_in_use, sum);
    ck_assert_uint_le(s.bytes_in_use, s.capacity);
    ck_assert_uint_eq(s.capacity, capacity);
    /* Not a SPEC number, a sanity bound: at least half the capacity is
     * usable for small blocks (the SPEC promises C/2 for one block). */
    ck_assert_msg(sum >= capacity / 2,
                  "only %zu of %zu bytes usable in %zu-byte blocks", sum,
                  capacity, size);
    /* Still dry; one free makes room for exactly that size again. */
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, size));
    ck_assert_uint_eq(st_stats(pool).failed_allocs, 2);
    sigsafe_free(blk[n / 2]);
    blk[n / 2] = sigsafe_pool_alloc(pool, size);
    ck_assert_msg(blk[n / 2] != NULL, "freed room not reusable");
    for (size_t i = 0; i < n; i++)
        sigsafe_free(blk[i]);
    s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.frees, n + 1);
    ck_assert_uint_eq(s.rejected_frees, 0);
    free(blk);
    sigsafe_pool_destroy(pool);
}

START_TEST(capacity_hard_cap_64)
{
    fill_to_cap(ST_MIB, 64);
}
END_TEST

START_TEST(capacity_hard_cap_sizes)
{
    fill_to_cap(ST_MIB, 16);
    fill_to_cap(2 * ST_MIB, 1000);
    fill_to_cap(2 * ST_MIB, 4096);
    fill_to_cap(4 * ST_MIB, 40000);
}
END_TEST

/* Mixed sizes: never above capacity, whatever the mix. */
START_TEST(capacity_hard_cap_mixed)
{
    const size_t cap = 2 * ST_MIB;
    sigsafe_pool *pool = make_pool("capmix", cap, 0);
    enum { MAX = 40000 };
    static void *blk[MAX];
    size_t n = 0, sum = 0, nulls = 0, calls = 0;
    uint64_t rng = 99;
    while (n < MAX && nulls < 200) {
        size_t size = st_rand_size(&rng, 300000);
        void *p = sigsafe_pool_alloc(pool, size);
        calls++;
        if (p == NULL) {
            nulls++;
            continue;
        }
        blk[n++] = p;
        sum += sigsafe_usable_size(p);
        ck_assert_msg(sum <= cap, "live usable %zu > capacity %zu", sum, cap);
        /* Free some now and then so that sizes mix within spans. */
        if (st_rand(&rng) % 4 == 0) {
            size_t i = (size_t)(st_rand(&rng) % n);
            sum -= sigsafe_usable_size(blk[i]);
            sigsafe_free(blk[i]);
            blk[i] = blk[--n];
        }
    }
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, sum);
    ck_assert_uint_eq(s.failed_allocs, nulls);
    ck_assert_uint_eq(s.allocs, calls - nulls);
    ck_assert_uint_le(s.peak_bytes_in_use, cap);
    for (size_t i = 0; i < n; i++)
        sigsafe_free(blk[i]);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A pool of capacity C serves one block of at least C/2 bytes. */
START_TEST(half_capacity_block)
{
    const size_t caps[] = {64 * ST_KIB, ST_MIB, 4 * ST_MIB, 64 * ST_MIB};
    for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
        size_t c = caps[k];
        sigsafe_pool *pool = make_pool("half", c, 0);
        unsigned char *p = st_launder(sigsafe_pool_alloc(pool, c / 2));
        ck_assert_msg(p != NULL, "pool of %zu bytes cannot serve %zu", c,
                      c / 2);
        size_t u = sigsafe_usable_size(p);
        ck_assert_uint_ge(u, c / 2);
        ck_assert_uint_le(u, c);
        ck_assert_uint_eq(st_uptr(p) % 16, 0);
        p[0] = 1;
        p[c / 4] = 2;
        p[u - 1] = 3;
        sigsafe_stats s = st_stats(pool);
        ck_assert_uint_eq(s.bytes_in_use, u);
        ck_assert_uint_eq(s.allocs, 1);
        sigsafe_free(p);
        ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
        /* And again after the free. */
        p = sigsafe_pool_alloc(pool, c / 2);
        ck_assert_msg(p != NULL, "C/2 block not reusable after free (C=%zu)",
                      c);
        sigsafe_free(p);
        sigsafe_pool_destroy(pool);
    }
    /* The default pool (4 MiB) likewise. */
    void *d = sigsafe_alloc(2 * ST_MIB);
    ck_assert_msg(d != NULL, "default pool cannot serve 2 MiB");
    sigsafe_free(d);
}
END_TEST

/* One pool running dry does not affect another. */
START_TEST(dry_pool_isolated)
{
    sigsafe_pool *a = make_pool("dry", 256 * ST_KIB, 0);
    sigsafe_pool *b = make_pool("wet", 256 * ST_KIB, 0);
    enum { MAX = 5000 };
    static void *blk[MAX];
    int n = 0;
    while (n < MAX && (blk[n] = sigsafe_pool_alloc(a, 100)) != NULL)
        n++;
    ck_assert_int_lt(n, MAX);
    ck_assert_ptr_null(sigsafe_pool_alloc(a, 100));
    ck_assert_ptr_null(sigsafe_pool_alloc(a, 100));
    for (int i = 0; i < 200; i++) {
        void *p = sigsafe_pool_alloc(b, 100);
        ck_assert_msg(p != NULL, "pool b failed while pool a is dry");
        ck_assert_ptr_eq(sigsafe_pool_of(p), b);
        sigsafe_free(p);
        void *d = sigsafe_alloc(100);
        ck_assert_msg(d != NULL, "default pool failed while pool a is dry");
        sigsafe_free(d);
    }
    void *big = sigsafe_pool_alloc(b, 128 * ST_KIB);
    ck_assert_ptr_nonnull(big);
    sigsafe_free(big);
    ck_assert_uint_eq(st_stats(b).failed_allocs, 0);
    ck_assert_uint_eq(st_default_stats().failed_allocs, 0);
    ck_assert_uint_eq(st_stats(a).failed_allocs, 3);
    while (n > 0)
        sigsafe_free(blk[--n]);
    sigsafe_pool_destroy(a);
    sigsafe_pool_destroy(b);
}
END_TEST

/* ------------------------------------------------------------ sigsafe_init */

START_TEST(init_null_idempotent)
{
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_init(NULL));
    ck_assert_int_eq(rc, 0);
    sigsafe_pool *dp = sigsafe_default_pool();
    ck_assert_ptr_nonnull(dp);
    assert_fresh(dp, ST_DEFAULT_CAPACITY);
    ck_assert_int_eq(sigsafe_init(NULL), 0);
    ck_assert_int_eq(sigsafe_init(NULL), 0);
    ck_assert_ptr_eq(sigsafe_default_pool(), dp);
    void *p = sigsafe_alloc(10);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(sigsafe_pool_of(p), dp);
    sigsafe_free(p);
}
END_TEST

START_TEST(init_config_before_use)
{
    sigsafe_pool_config cfg = {.name = "mydefault", .capacity = 8 * ST_MIB};
    ck_assert_int_eq(sigsafe_init(&cfg), 0);
    sigsafe_pool *dp = sigsafe_default_pool();
    ck_assert_ptr_nonnull(dp);
    ck_assert_uint_eq(st_stats(dp).capacity, 8 * ST_MIB);
    void *p = sigsafe_alloc(4 * ST_MIB); /* C/2 of the configured pool */
    ck_assert_msg(p != NULL, "configured 8 MiB default pool cannot serve 4 MiB");
    ck_assert_ptr_eq(sigsafe_pool_of(p), dp);
    sigsafe_free(p);
    if (st_kernel_names_vmas())
        ck_assert(st_maps_contains("sigsafe:mydefault"));
    /* A second init keeps the pool. */
    sigsafe_pool_config other = {.name = "other", .capacity = ST_MIB};
    ck_assert_int_eq(sigsafe_init(&other), 0);
    ck_assert_ptr_eq(sigsafe_default_pool(), dp);
    ck_assert_uint_eq(st_stats(dp).capacity, 8 * ST_MIB);
}
END_TEST

START_TEST(init_after_lazy_creation)
{
    void *p = sigsafe_alloc(100);
    ck_assert_ptr_nonnull(p);
    sigsafe_pool *dp = sigsafe_default_pool();
    ck_assert_ptr_nonnull(dp);
    sigsafe_pool_config cfg = {.name = "late", .capacity = ST_MIB};
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_init(&cfg));
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_eq(sigsafe_default_pool(), dp);
    sigsafe_stats s = st_stats(dp);
    ck_assert_uint_eq(s.capacity, ST_DEFAULT_CAPACITY);
    ck_assert_uint_eq(s.allocs, 1);
    ck_assert_int_eq(sigsafe_init(NULL), 0);
    ck_assert_ptr_eq(sigsafe_default_pool(), dp);
    ck_assert_ptr_eq(sigsafe_pool_of(p), dp);
    ck_assert_uint_ge(sigsafe_usable_size(p), 100);
    sigsafe_free(p);
    ck_assert_uint_eq(st_stats(dp).frees, 1);
}
END_TEST

START_TEST(init_bad_config)
{
    sigsafe_pool_config bad = {.name = "bad", .flags = 1u << 30};
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_init(&bad));
    ck_assert_int_eq(rc, EINVAL);
    bad.flags = ~0u;
    ck_assert_int_eq(sigsafe_init(&bad), EINVAL);
    /* The bad calls changed nothing: a good config still takes effect. */
    sigsafe_pool_config good = {.name = "good", .capacity = 2 * ST_MIB};
    ck_assert_int_eq(sigsafe_init(&good), 0);
    ck_assert_uint_eq(st_default_stats().capacity, 2 * ST_MIB);
    /* And with the pool in place, a bad config is still refused. */
    bad.flags = 1u << 30;
    ck_assert_int_eq(sigsafe_init(&bad), EINVAL);
    ck_assert_uint_eq(st_default_stats().capacity, 2 * ST_MIB);
}
END_TEST

/* --------------------------------------------------------- big and flags */

START_TEST(gib_pool)
{
    size_t maps0 = st_maps_lines();
    sigsafe_pool *pool = make_pool("gib", 1024 * ST_MIB, 0);
    size_t maps1 = st_maps_lines();
    printf("gib_pool: a 1 GiB pool added %zu mappings\n", maps1 - maps0);
    assert_fresh(pool, 1024 * ST_MIB);
    use_pool(pool);
    unsigned char *m = st_launder(sigsafe_pool_alloc(pool, ST_MIB));
    ck_assert_ptr_nonnull(m);
    m[0] = m[ST_MIB - 1] = 1;
    unsigned char *h = st_launder(sigsafe_pool_alloc(pool, 512 * ST_MIB));
    ck_assert_msg(h != NULL, "1 GiB pool cannot serve 512 MiB");
    h[0] = h[512 * ST_MIB - 1] = 2;
    ck_assert_ptr_eq(sigsafe_pool_of(h), pool);
    sigsafe_free(h);
    sigsafe_free(m);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/*
 * SPEC: "Keep the number of VMAs per pool modest (a 1 GiB pool must fit the
 * default vm.max_map_count)". Read here as: a 1 GiB pool takes at most a
 * quarter of the default 65530, so that a process can hold a few of them
 * next to its other mappings.
 */
START_TEST(gib_pool_vma_budget)
{
    const size_t budget = 65530 / 4;
    size_t maps0 = st_maps_lines();
    sigsafe_pool *pool = make_pool("gibvma", 1024 * ST_MIB, 0);
    size_t added = st_maps_lines() - maps0;
    ck_assert_msg(added <= budget,
                  "a 1 GiB pool added %zu mappings (budget %zu of the "
                  "default vm.max_map_count 65530)",
                  added, budget);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(prefault_pool)
{
    sigsafe_pool *pool =
        make_pool("prefault", 2 * ST_MIB, SIGSAFE_POOL_PREFAULT);
    assert_fresh(pool, 2 * ST_MIB);
    use_pool(pool);
    void *p = sigsafe_pool_alloc(pool, ST_MIB);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_gt(st_stats(pool).bytes_mapped, 0);
    sigsafe_free(p);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(no_syscalls_pool)
{
    sigsafe_pool *pool =
        make_pool("nosys", 2 * ST_MIB, SIGSAFE_POOL_NO_SYSCALLS);
    assert_fresh(pool, 2 * ST_MIB);
    use_pool(pool);
    void *p = sigsafe_pool_alloc(pool, ST_MIB);
    ck_assert_ptr_nonnull(p);
    sigsafe_free(p);
    sigsafe_pool_destroy(pool);
    pool = make_pool("both", ST_MIB,
                     SIGSAFE_POOL_NO_SYSCALLS | SIGSAFE_POOL_PREFAULT);
    use_pool(pool);
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(guard_each_pool)
{
    sigsafe_pool *pool =
        make_pool("gEach", 4 * ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    assert_fresh(pool, 4 * ST_MIB);
    use_pool(pool);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* ---------------------------------------- NO_SYSCALLS under seccomp */

#if defined(__x86_64__)
#define ST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS SECCOMP_RET_KILL
#endif

#ifdef ST_AUDIT_ARCH
/* Allow exit_group only; any other system call kills with SIGSYS. */
static int lock_down(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static void child_exit(int code)
{
    syscall(SYS_exit_group, code);
    for (;;)
        ;
}

/* Run `work` in a child under the filter; return its wait status, or -1
 * when seccomp is unavailable. */
static int run_locked(int (*work)(sigsafe_pool *), sigsafe_pool *pool)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (lock_down() != 0)
            child_exit(77);
        child_exit(work(pool));
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        return -1;
    return status;
}

static int work_getpid(sigsafe_pool *pool)
{
    (void)pool;
    return getpid() > 0 ? 3 : 4; /* a syscall: must be killed before */
}

static int work_alloc_free(sigsafe_pool *pool)
{
    static void *keep[256];
    uint64_t rng = 5;
    for (int i = 0; i < 20000; i++) {
        size_t n = st_rand_size(&rng, 100000);
        unsigned char *p = sigsafe_pool_alloc(pool, n);
        if (p == NULL)
            return 10;
        if (sigsafe_usable_size(p) < n || sigsafe_pool_of(p) != pool)
            return 11;
        st_fill_sparse(p, n, (uint64_t)i);
        if (st_check_sparse(p, n, (uint64_t)i) != SIZE_MAX)
            return 12;
        int slot = (int)(st_rand(&rng) % 256);
        sigsafe_free(keep[slot]);
        keep[slot] = p;
        if (i % 64 == 0) {
            void *q = sigsafe_pool_calloc(pool, 3, 100);
            void *r = sigsafe_pool_realloc(pool, q, 5000);
            void *a = sigsafe_pool_aligned_alloc(pool, 256, 300);
            if (!q || !r || !a)
                return 13;
            sigsafe_free(r);
            sigsafe_free(a);
        }
    }
    for (int i = 0; i < 256; i++)
        sigsafe_free(keep[i]);
    sigsafe_stats s;
    if (sigsafe_pool_stats(pool, &s) != 0 || s.bytes_in_use != 0)
        return 14;
    return 0;
}
#endif

/* SPEC guarantee 1: alloc/free on a NO_SYSCALLS pool make no system call. */
START_TEST(no_syscalls_under_seccomp)
{
#ifndef ST_AUDIT_ARCH
    printf("no_syscalls_under_seccomp: skipped, unknown architecture\n");
#else
    if (st_under_tsan()) {
        printf("no_syscalls_under_seccomp: skipped under TSan (its "
               "runtime maps memory on the library's behalf)\n");
        return;
    }
    sigsafe_pool *pool =
        make_pool("seccomp", 8 * ST_MIB, SIGSAFE_POOL_NO_SYSCALLS);
    /* The harness can fail: a plain getpid() is killed. */
    int st = run_locked(work_getpid, pool);
    if (st == -1) {
        printf("no_syscalls_under_seccomp: skipped, seccomp unavailable\n");
        sigsafe_pool_destroy(pool);
        return;
    }
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
                  "seccomp harness did not trap getpid (status %#x)", st);
    st = run_locked(work_alloc_free, pool);
    ck_assert_msg(!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS,
                  "a NO_SYSCALLS pool made a system call in alloc/free");
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "locked-down child failed: status %#x (exit %d)", st,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    sigsafe_pool_destroy(pool);
#endif
}
END_TEST

/* Spans stay with their class.  Once every span of the small area has been
 * carved, a request whose class has no free block is served from a larger
 * class's free block, charged at that block's size; and when the budget
 * cannot take the larger size, the block goes back and the call fails. */
START_TEST(borrow_when_area_is_carved)
{
    sigsafe_pool *pool = make_pool("borrow", 1 * ST_MIB, 0);
    enum { MAX = 70000 };
    static void *blk[MAX];
    /* Fill the capacity with one class, free it all, and move on to the
     * next class, until a class finds no span left to carve. */
    static const size_t sizes[] = {16, 32, 64, 96, 128, 192, 256, 384, 512,
                                   768, 1024, 1536, 2048, 3072, 4096};
    size_t k = 0, carved_out = 0;
    for (; k < sizeof sizes / sizeof sizes[0] && !carved_out; k++) {
        int n = 0;
        while (n < MAX && (blk[n] = sigsafe_pool_alloc(pool, sizes[k])))
            n++;
        sigsafe_stats s = st_stats(pool);
        /* Stopped short of the capacity: the area ran out, not the budget */
        carved_out = s.bytes_in_use + 2 * sizes[k] + 16384 < s.capacity;
        while (n > 0)
            sigsafe_free(blk[--n]);
    }
    ck_assert_msg(carved_out, "the small area never ran out");
    /* 48 bytes: a class never carved.  Free blocks of larger classes
     * exist (everything was freed), so it is served from one of them. */
    void *p = sigsafe_pool_alloc(pool, 48);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_gt(sigsafe_usable_size(p), 48);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, sigsafe_usable_size(p));
    sigsafe_free(p);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("create");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, create_defaults);
    tcase_add_test(tc, create_null_cfg);
    tcase_add_test(tc, create_bad_args);
    tcase_add_test(tc, create_named_in_maps);
    tcase_add_test(tc, long_name_truncated);
    tcase_add_test(tc, many_pools);
    suite_add_tcase(s, tc);

    tc = tcase_create("capacity");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, capacity_hard_cap_64);
    tcase_add_test(tc, capacity_hard_cap_sizes);
    tcase_add_test(tc, capacity_hard_cap_mixed);
    tcase_add_test(tc, half_capacity_block);
    tcase_add_test(tc, dry_pool_isolated);
    suite_add_tcase(s, tc);

    tc = tcase_create("init");
    tcase_add_test(tc, init_null_idempotent);
    tcase_add_test(tc, init_config_before_use);
    tcase_add_test(tc, init_after_lazy_creation);
    tcase_add_test(tc, init_bad_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("flags");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, gib_pool);
    tcase_add_test(tc, gib_pool_vma_budget);
    tcase_add_test(tc, prefault_pool);
    tcase_add_test(tc, no_syscalls_pool);
    tcase_add_test(tc, guard_each_pool);
    tcase_add_test(tc, no_syscalls_under_seccomp);
    tcase_add_test(tc, borrow_when_area_is_carved);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(pool_suite());
}
