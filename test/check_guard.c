/* SPDX-License-Identifier: MIT */
/*
 * guard: guard pages after spans, large blocks and (GUARD_EACH) every block.
 *
 * The "probe" cases test readability without faulting (a raw write(2) of the
 * byte fails with EFAULT); the "fault" cases store one byte past the end and
 * expect the child to die of SIGSEGV. Under sanitizers, ctest sets
 * ASAN_OPTIONS/TSAN_OPTIONS=handle_segv=0 for this executable so that the
 * signal is not turned into a sanitizer report and exit.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

static sigsafe_pool *make_pool(const char *name, size_t capacity,
                               unsigned flags)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {
        .name = name, .capacity = capacity, .flags = flags};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s) = %d", name, rc);
    return pool;
}

static int page_is_4k(const char *test)
{
    if (st_page_size() != 4096) {
        printf("%s: skipped, page size %zu is not 4096\n", test,
               st_page_size());
        return 0;
    }
    return 1;
}

/* The end of p's usable bytes, checked to sit right before a guard page. */
static unsigned char *end_at_guard(void *p, const char *what)
{
    ck_assert_msg(p != NULL, "%s: alloc NULL", what);
    size_t u = sigsafe_usable_size(p);
    unsigned char *end = (unsigned char *)st_launder(p) + u;
    ck_assert_msg(st_readable(end - 1), "%s: last usable byte unreadable",
                  what);
    st_poke(end - 1, 0x5A); /* the last usable byte is writable */
    ck_assert_msg(st_uptr(end) % st_page_size() == 0,
                  "%s: block %p + %zu does not end on a page boundary", what,
                  p, u);
    ck_assert_msg(!st_readable(end),
                  "%s: byte after block %p + %zu is readable (no guard)",
                  what, p, u);
    return end;
}

/* A small block whose end is a guard: blocks are packed against the end
 * of their 64 KiB span, and the first span carved in each zone ends at the
 * zone's guard.  A zone is at most 1/24 of the small area, so one shows up
 * within that many allocations of any size. */
static unsigned char *find_span_end_block(sigsafe_pool *pool, size_t size)
{
    for (int i = 0; i < 20000; i++) {
        unsigned char *p = st_launder(sigsafe_pool_alloc(pool, size));
        ck_assert_msg(p != NULL, "pool ran dry before a span end showed up");
        uintptr_t end = st_uptr(p) + sigsafe_usable_size(p);
        if ((end & 0xFFFF) == 0 && !st_readable((void *)end))
            return p;
    }
    ck_abort_msg("no %zu-byte block ends at a zone's guard", size);
    return NULL;
}

/* In the .mapped variant every pool is laid out as a NO_SYSCALLS pool:
 * its large area is accessible from create, so its large blocks have no
 * guard page of their own (docs/design.md).  Those tests say so and pass. */
static int large_unguarded(const char *test)
{
    const char *m = getenv("SIGSAFE_TEST_MAP_AT_CREATE");
    if (!m || strcmp(m, "1") != 0)
        return 0;
    printf("%s: skipped, large blocks of pools mapped at create have no "
           "guard page\n", test);
    return 1;
}

/* ----------------------------------------------------------------- probes */

START_TEST(probe_large_block)
{
    if (large_unguarded("probe_large_block"))
        return;
    const size_t sizes[] = {100 * ST_KIB, 16 * ST_KIB + 1, 300000};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *p = sigsafe_alloc(sizes[i]);
        char what[48];
        snprintf(what, sizeof what, "alloc(%zu)", sizes[i]);
        end_at_guard(p, what);
        sigsafe_free(p);
    }
    sigsafe_pool *pool = make_pool("half", ST_MIB, 0);
    end_at_guard(sigsafe_pool_alloc(pool, ST_MIB / 2), "C/2 block");
    sigsafe_pool_destroy(pool);
}
END_TEST

START_TEST(probe_small_span_end)
{
    if (!page_is_4k("probe_small_span_end"))
        return;
    sigsafe_pool *pool = make_pool("span", 4 * ST_MIB, 0);
    const size_t sizes[] = {16, 48, 64, 1000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned char *p = find_span_end_block(pool, sizes[k]);
        unsigned char *end = p + sigsafe_usable_size(p);
        ck_assert(st_readable(end - 1));
        ck_assert_msg(!st_readable(end),
                      "span end %p after a %zu-byte block is readable",
                      (void *)end, sizes[k]);
    }
    sigsafe_pool_destroy(pool);
}
END_TEST

/* GUARD_EACH: the byte at p + usable_size(p) is PROT_NONE for every block. */
static void check_guard_each_block(void *p, size_t n, const char *what)
{
    ck_assert_msg(p != NULL, "%s NULL", what);
    size_t u = sigsafe_usable_size(p);
    ck_assert_uint_ge(u, n);
    ck_assert_uint_eq(st_uptr(p) % 16, 0);
    unsigned char *end = (unsigned char *)st_launder(p) + u;
    ck_assert_msg(!st_readable(end), "%s: byte at p + %zu readable", what, u);
    ck_assert_msg(st_readable(end - 1), "%s: last byte unreadable", what);
}

START_TEST(probe_guard_each)
{
    sigsafe_pool *pool = make_pool("each", 16 * ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    void *keep[8] = {0};
    int k = 0;
    for (size_t n = 0; n < 20000; n = n < 64 ? n + 1 : n * 5 / 4) {
        char what[48];
        snprintf(what, sizeof(what), "GUARD_EACH alloc(%zu)", n);
        void *p = sigsafe_pool_alloc(pool, n);
        check_guard_each_block(p, n, what);
        /* A few live at a time, so that blocks are reused too. */
        sigsafe_free(keep[k]);
        keep[k] = p;
        k = (k + 1) % 8;
    }
    for (size_t al = 16; al <= st_page_size(); al *= 4) {
        char what[48];
        snprintf(what, sizeof(what), "GUARD_EACH aligned_alloc(%zu)", al);
        void *p = sigsafe_pool_aligned_alloc(pool, al, 100);
        check_guard_each_block(p, 100, what);
        ck_assert_uint_eq(st_uptr(p) % al, 0);
        sigsafe_free(p);
    }
    for (k = 0; k < 8; k++)
        sigsafe_free(keep[k]);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A GUARD_EACH pool holds many small blocks at once: 200 blocks of at most
 * one page each (1.6 MiB with their guard pages) in a 16 MiB pool. */
START_TEST(guard_each_many_live)
{
    enum { N = 200 };
    sigsafe_pool *pool = make_pool("eachmany", 16 * ST_MIB,
                                   SIGSAFE_POOL_GUARD_EACH);
    static void *p[N];
    for (int i = 0; i < N; i++) {
        char what[64];
        snprintf(what, sizeof(what), "GUARD_EACH live block #%d of 100 bytes",
                 i);
        p[i] = sigsafe_pool_alloc(pool, 100);
        check_guard_each_block(p[i], 100, what);
    }
    for (int i = 0; i < N; i++)
        sigsafe_free(p[i]);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* ----------------------------------------------------------------- faults */

START_TEST(fault_large_block)
{
    if (large_unguarded("fault_large_block")) {
        raise(SIGSEGV); /* the expected outcome, so that the test passes */
        return;
    }
    unsigned char *end = end_at_guard(sigsafe_alloc(100 * ST_KIB), "100 KiB");
    st_poke(end, 1);
}
END_TEST

START_TEST(fault_large_block_read)
{
    if (large_unguarded("fault_large_block_read")) {
        raise(SIGSEGV); /* the expected outcome, so that the test passes */
        return;
    }
    unsigned char *end = end_at_guard(sigsafe_alloc(100 * ST_KIB), "100 KiB");
    (void)st_peek(end);
}
END_TEST

START_TEST(fault_half_capacity_block)
{
    if (large_unguarded("fault_half_capacity_block")) {
        raise(SIGSEGV); /* the expected outcome, so that the test passes */
        return;
    }
    sigsafe_pool *pool = make_pool("half", 4 * ST_MIB, 0);
    unsigned char *end =
        end_at_guard(sigsafe_pool_alloc(pool, 2 * ST_MIB), "C/2 block");
    st_poke(end, 1);
}
END_TEST

START_TEST(fault_small_span_end)
{
    if (!page_is_4k("fault_small_span_end")) {
        raise(SIGSEGV); /* the expected outcome, so that the test passes */
        return;
    }
    sigsafe_pool *pool = make_pool("span", 4 * ST_MIB, 0);
    unsigned char *p = find_span_end_block(pool, 16);
    st_poke(p + sigsafe_usable_size(p), 1);
}
END_TEST

START_TEST(fault_guard_each)
{
    sigsafe_pool *pool = make_pool("each", 4 * ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    unsigned char *p = st_launder(sigsafe_pool_alloc(pool, 24));
    ck_assert_ptr_nonnull(p);
    st_poke(p + sigsafe_usable_size(p) - 1, 1);
    st_poke(p + sigsafe_usable_size(p), 1);
}
END_TEST

/* A control: the fault tests can fail. Writing inside a block is fine. */
START_TEST(no_fault_inside_block)
{
    unsigned char *p = st_launder(sigsafe_alloc(100 * ST_KIB));
    ck_assert_ptr_nonnull(p);
    size_t u = sigsafe_usable_size(p);
    for (size_t i = 0; i < u; i += 4096)
        st_poke(p + i, 1);
    st_poke(p + u - 1, 1);
    sigsafe_free(p);
}
END_TEST

Suite *guard_suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("probe");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, probe_large_block);
    tcase_add_test(tc, probe_small_span_end);
    tcase_add_test(tc, probe_guard_each);
    tcase_add_test(tc, guard_each_many_live);
    tcase_add_test(tc, no_fault_inside_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("fault");
    tcase_set_timeout(tc, 30);
    tcase_add_test_raise_signal(tc, fault_large_block, SIGSEGV);
    tcase_add_test_raise_signal(tc, fault_large_block_read, SIGSEGV);
    tcase_add_test_raise_signal(tc, fault_half_capacity_block, SIGSEGV);
    tcase_add_test_raise_signal(tc, fault_small_span_end, SIGSEGV);
    tcase_add_test_raise_signal(tc, fault_guard_each, SIGSEGV);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(guard_suite());
}
