/* SPDX-License-Identifier: MIT */
/*
 * errno: no sigsafe call changes errno, on success or failure paths
 * (SPEC guarantee 4; set-up functions return errors, never set errno).
 */
#include "support.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define KEEP(stmt) ST_ASSERT_ERRNO_UNCHANGED(stmt)

/* The very first call creates the default pool: errno stays. */
START_TEST(first_alloc_keeps_errno)
{
    void *p;
    KEEP(p = sigsafe_alloc(100));
    ck_assert_ptr_nonnull(p);
    KEEP(sigsafe_free(p));
}
END_TEST

START_TEST(first_calloc_keeps_errno)
{
    void *p;
    KEEP(p = sigsafe_calloc(3, 7));
    ck_assert_ptr_nonnull(p);
    KEEP(sigsafe_free(p));
}
END_TEST

START_TEST(first_default_pool_keeps_errno)
{
    sigsafe_pool *dp;
    KEEP(dp = sigsafe_default_pool());
    (void)dp;
    sigsafe_stats s;
    int rc;
    KEEP(dp = sigsafe_default_pool());
    KEEP(rc = sigsafe_pool_stats(dp, &s));
    (void)rc;
}
END_TEST

START_TEST(setup_calls_keep_errno)
{
    int rc;
    KEEP(rc = sigsafe_init(NULL));
    ck_assert_int_eq(rc, 0);
    KEEP(rc = sigsafe_init(NULL));
    sigsafe_pool_config cfg = {.name = "errno", .capacity = ST_MIB};
    KEEP(rc = sigsafe_init(&cfg));
    ck_assert_int_eq(rc, 0);
    sigsafe_pool *pool;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_eq(rc, 0);
    KEEP(sigsafe_pool_destroy(pool));
    cfg.flags = SIGSAFE_POOL_PREFAULT;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_eq(rc, 0);
    KEEP(sigsafe_pool_destroy(pool));
    cfg.flags = SIGSAFE_POOL_NO_SYSCALLS;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_eq(rc, 0);
    KEEP(sigsafe_pool_destroy(pool));
    cfg.flags = SIGSAFE_POOL_GUARD_EACH;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_eq(rc, 0);
    KEEP(sigsafe_pool_destroy(pool));
    cfg.flags = 0;
    cfg.capacity = 256 * ST_MIB;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_eq(rc, 0);
    KEEP(sigsafe_pool_destroy(pool));
    KEEP(sigsafe_set_report_fd(-1));
    KEEP(sigsafe_set_report_fd(2));
}
END_TEST

START_TEST(setup_failures_keep_errno)
{
    int rc;
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = "bad", .flags = 1u << 20};
    KEEP(rc = sigsafe_init(&cfg));
    ck_assert_int_eq(rc, EINVAL);
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_eq(rc, EINVAL);
    cfg.flags = 0;
    KEEP(rc = sigsafe_pool_create(&cfg, NULL));
    ck_assert_int_eq(rc, EINVAL);
    /* mmap itself fails: the library must not leak mmap's errno. */
    cfg.capacity = (size_t)1 << 62;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_gt(rc, 0);
    cfg.capacity = SIZE_MAX - 4095;
    KEEP(rc = sigsafe_pool_create(&cfg, &pool));
    ck_assert_int_gt(rc, 0);
    sigsafe_stats s;
    KEEP(rc = sigsafe_pool_stats(NULL, &s));
    ck_assert_int_eq(rc, EINVAL);
}
END_TEST

START_TEST(alloc_paths_keep_errno)
{
    sigsafe_pool *pool;
    sigsafe_pool_config cfg = {.name = "paths", .capacity = 64 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    const size_t sizes[] = {0, 1, 16, 17, 200, 4096, 5000, 16385, 70000,
                            300000, 4 * ST_MIB};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        void *a, *b, *c, *d, *e, *f;
        size_t u;
        sigsafe_pool *o;
        KEEP(a = sigsafe_pool_alloc(pool, sizes[k]));
        KEEP(b = sigsafe_pool_calloc(pool, 1, sizes[k]));
        KEEP(c = sigsafe_pool_aligned_alloc(pool, 64, sizes[k]));
        KEEP(d = sigsafe_alloc(sizes[k] % ST_MIB));
        KEEP(e = sigsafe_calloc(sizes[k] % ST_MIB, 1));
        KEEP(f = sigsafe_aligned_alloc(4096, sizes[k] % ST_MIB));
        ck_assert_msg(a && b && c && d && e && f,
                      "size %zu: an allocation failed (%p %p %p %p %p %p)",
                      sizes[k], a, b, c, d, e, f);
        KEEP(u = sigsafe_usable_size(a));
        ck_assert_uint_ge(u, sizes[k]);
        KEEP(o = sigsafe_pool_of(b));
        ck_assert_ptr_eq(o, pool);
        KEEP(a = sigsafe_realloc(a, sizes[k] * 2 + 1));
        KEEP(b = sigsafe_pool_realloc(pool, b, sizes[k] / 2 + 1));
        ck_assert_msg(a && b, "size %zu: realloc failed (%p %p)", sizes[k],
                      a, b);
        KEEP(sigsafe_free(a));
        KEEP(sigsafe_free(b));
        KEEP(sigsafe_free(c));
        KEEP(sigsafe_free(d));
        KEEP(sigsafe_free(e));
        KEEP(c = sigsafe_realloc(f, 0));
        ck_assert_ptr_null(c);
    }
    void *p;
    KEEP(p = sigsafe_realloc(NULL, 10));
    KEEP(p = sigsafe_pool_realloc(pool, p, 0));
    KEEP(p = sigsafe_pool_realloc(pool, NULL, 0));
    KEEP(sigsafe_free(p));
    sigsafe_pool *cur;
    KEEP(cur = sigsafe_default_pool());
    ck_assert_ptr_nonnull(cur);
    sigsafe_stats s;
    int rc;
    KEEP(rc = sigsafe_pool_stats(pool, &s));
    ck_assert_int_eq(rc, 0);
    KEEP(sigsafe_pool_destroy(pool));
}
END_TEST

START_TEST(failure_paths_keep_errno)
{
    sigsafe_pool *pool;
    sigsafe_pool_config cfg = {.name = "fail", .capacity = 256 * ST_KIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    void *p;
    /* Bad alignment, overflow, huge sizes. */
    KEEP(p = sigsafe_aligned_alloc(st_size(3), 16));
    ck_assert_ptr_null(p);
    KEEP(p = sigsafe_aligned_alloc(st_size(0), 16));
    KEEP(p = sigsafe_aligned_alloc(st_page_size() * 2, 16));
    ck_assert_ptr_null(p);
    KEEP(p = sigsafe_pool_aligned_alloc(pool, st_size(24), 16));
    ck_assert_ptr_null(p);
    KEEP(p = sigsafe_calloc(st_size(SIZE_MAX / 2 + 1), st_size(2)));
    ck_assert_ptr_null(p);
    KEEP(p = sigsafe_pool_calloc(pool, st_size(SIZE_MAX), st_size(3)));
    ck_assert_ptr_null(p);
    KEEP(p = sigsafe_alloc(st_size(SIZE_MAX)));
    ck_assert_ptr_null(p);
    KEEP(p = sigsafe_pool_alloc(pool, st_size(SIZE_MAX - 15)));
    ck_assert_ptr_null(p);
    /* Exhaustion. */
    enum { MAX = 10000 };
    static void *blk[MAX];
    int n = 0;
    for (;;) {
        KEEP(blk[n] = sigsafe_pool_alloc(pool, 512));
        if (blk[n] == NULL)
            break;
        ck_assert_int_lt(++n, MAX);
    }
    KEEP(p = sigsafe_pool_calloc(pool, 1, 512));
    ck_assert_ptr_null(p);
    /* A grow that fails. */
    void *q;
    KEEP(q = sigsafe_realloc(blk[0], 200 * ST_KIB));
    ck_assert_ptr_null(q);
    KEEP(q = sigsafe_pool_realloc(pool, blk[0], st_size(SIZE_MAX)));
    ck_assert_ptr_null(q);
    for (int i = 0; i < n; i++)
        KEEP(sigsafe_free(blk[i]));
    KEEP(sigsafe_pool_destroy(pool));
}
END_TEST

static void bad_frees_keep_errno(void)
{
    sigsafe_pool *pool;
    sigsafe_pool_config cfg = {.name = "badfree"};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    unsigned char stackbuf[32];
    char *m = malloc(32);
    ck_assert_ptr_nonnull(m);
    unsigned char *b = sigsafe_pool_alloc(pool, 64);
    ck_assert_ptr_nonnull(b);
    size_t u;
    sigsafe_pool *o;
    void *r;
    KEEP(sigsafe_free(st_launder(stackbuf)));
    KEEP(sigsafe_free(m));
    KEEP(sigsafe_free(b + 16));
    KEEP(sigsafe_free((void *)(uintptr_t)16));
    KEEP(r = sigsafe_realloc(b + 1, 100));
    KEEP(r = sigsafe_realloc(st_launder(stackbuf), 100));
    KEEP(r = sigsafe_pool_realloc(pool, m, 100));
    (void)r;
    KEEP(u = sigsafe_usable_size(m));
    KEEP(u = sigsafe_usable_size(b + 16));
    KEEP(o = sigsafe_pool_of(m));
    KEEP(o = sigsafe_pool_of(stackbuf));
    (void)u;
    (void)o;
    KEEP(sigsafe_free(b));
    KEEP(sigsafe_free(b)); /* double free */
    KEEP(u = sigsafe_usable_size(b));
    free(m);
    ck_assert_uint_ge(st_stats(pool).rejected_frees, 3);
    sigsafe_pool_destroy(pool);
}

/* Bad frees write a report line: errno stays whatever the write does. */
START_TEST(bad_frees_keep_errno_devnull)
{
    void *warm = sigsafe_alloc(1);
    sigsafe_free(warm);
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(null_fd, 0);
    sigsafe_set_report_fd(null_fd);
    bad_frees_keep_errno();
    close(null_fd);
}
END_TEST

START_TEST(bad_frees_keep_errno_silent)
{
    sigsafe_set_report_fd(-1);
    bad_frees_keep_errno();
}
END_TEST

START_TEST(bad_frees_keep_errno_closed_fd)
{
    /* The write fails with EBADF. */
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    close(fd);
    sigsafe_set_report_fd(fd);
    bad_frees_keep_errno();
}
END_TEST

START_TEST(bad_frees_keep_errno_full_pipe)
{
    /* The write fails with EAGAIN. */
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    static char junk[4096];
    while (write(fds[1], junk, sizeof(junk)) > 0)
        ;
    sigsafe_set_report_fd(fds[1]);
    bad_frees_keep_errno();
    sigsafe_set_report_fd(-1);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(bad_frees_keep_errno_broken_pipe)
{
    /* The write fails with EPIPE (SIGPIPE ignored). */
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    sigsafe_set_report_fd(fds[1]);
    bad_frees_keep_errno();
    sigsafe_set_report_fd(-1);
    close(fds[1]);
}
END_TEST

Suite *errno_suite(void)
{
    Suite *s = suite_create("errno");
    TCase *tc = tcase_create("errno");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, first_alloc_keeps_errno);
    tcase_add_test(tc, first_calloc_keeps_errno);
    tcase_add_test(tc, first_default_pool_keeps_errno);
    tcase_add_test(tc, setup_calls_keep_errno);
    tcase_add_test(tc, setup_failures_keep_errno);
    tcase_add_test(tc, alloc_paths_keep_errno);
    tcase_add_test(tc, failure_paths_keep_errno);
    tcase_add_test(tc, bad_frees_keep_errno_devnull);
    tcase_add_test(tc, bad_frees_keep_errno_silent);
    tcase_add_test(tc, bad_frees_keep_errno_closed_fd);
    tcase_add_test(tc, bad_frees_keep_errno_full_pipe);
    tcase_add_test(tc, bad_frees_keep_errno_broken_pipe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(errno_suite());
}
