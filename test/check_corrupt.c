/* SPDX-License-Identifier: MIT */
/*
 * corrupt: a heap whose allocator metadata was overwritten (SPEC guarantee
 * 8, taken one step further than check_free's stray writes into free
 * blocks).  Crash handlers run when memory is least trustworthy: a wild
 * write may land in a pool's free-list links or heads.  Whatever it wrote,
 * sigsafe must report the corrupt list in one line, abandon it, and go on
 * handing out only blocks of its pool that are not live.
 *
 * White-box: the test writes into the metadata through lib/internal.h's
 * layout (a pool's links table and list heads), as a stray store would.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define N 300

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    return pool;
}

static uint32_t id_of(const void *p)
{
    ss_where w = sigsafe__locate(p);
    ck_assert_msg(w.ok, "%p is not a block", p);
    return w.id;
}

/* Overwrite the link of every block in the span (or slot) of `in`. */
static void scribble_links(sigsafe_pool *pool, const void *in, uint32_t value)
{
    uint32_t h = id_of(in) >> SS_ID_SHIFT;
    for (uint32_t i = 0; i < pool->spans[h].nblocks; i++)
        ss_store_relaxed(ss_link(pool, ss_id(h, i)), value);
}

/* Overwrite a class's list head with `id` (keeping its tag). */
static void scribble_head(sigsafe_pool *pool, unsigned cls, uint32_t id)
{
    ss_a64 *h = &pool->heads[cls].word;
    uint64_t old = ss_load_relaxed(h);
    ss_store_relaxed(h, (old & ~(uint64_t)0xffffffffu) | id);
}

/*
 * Allocate N blocks of `size` from pool while `live` (filled with seed 7)
 * stays live: none may be `live`, lie outside the pool or be handed out
 * twice; `live` keeps its contents.  Returns the corrupt-list lines
 * reported meanwhile.
 */
static size_t hammer(sigsafe_pool *pool, size_t size, unsigned char *live,
                     size_t live_size)
{
    static st_capture cap;
    static void *got[N];
    st_capture_begin(&cap);
    for (int i = 0; i < N; i++) {
        got[i] = sigsafe_pool_alloc(pool, size);
        ck_assert_msg(got[i] != NULL, "pool stopped serving (block %d)", i);
        ck_assert_msg(got[i] != live, "live block %p handed out", live);
        ck_assert_ptr_eq(sigsafe_pool_of(got[i]), pool);
        ck_assert_uint_ge(sigsafe_usable_size(got[i]), size);
        for (int j = 0; j < i; j++)
            ck_assert_msg(got[j] != got[i], "%p handed out twice", got[i]);
        st_fill(got[i], size, (uint64_t)i);
    }
    ck_assert_msg(st_check(live, live_size, 7) == SIZE_MAX,
                  "the live block was overwritten");
    for (int i = 0; i < N; i++) {
        ck_assert(st_check(got[i], size, (uint64_t)i) == SIZE_MAX);
        sigsafe_free(got[i]);
    }
    st_capture_read(&cap);
    size_t lines = 0;
    for (const char *c = cap.buf; (c = strstr(c, "corrupt free list")) != NULL;
         c++)
        lines++;
    ck_assert_msg(strstr(cap.buf, "rejected") == NULL,
                  "unexpected report: %s", cap.buf);
    st_capture_end(&cap);
    return lines;
}

/* Every link of a span names a live block: the pop that reaches it finds
 * the block live, reports and abandons the list. */
START_TEST(links_name_a_live_block)
{
    sigsafe_pool *pool = make_pool("corrupt-live", ST_MIB);
    unsigned char *live = sigsafe_pool_alloc(pool, 48);
    ck_assert_ptr_nonnull(live);
    st_fill(live, 48, 7);
    scribble_links(pool, live, id_of(live));
    size_t lines = hammer(pool, 48, live, 48);
    ck_assert_uint_ge(lines, 1);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Links past every valid id: refused before they are followed. */
START_TEST(links_out_of_range)
{
    sigsafe_pool *pool = make_pool("corrupt-range", ST_MIB);
    unsigned char *live = sigsafe_pool_alloc(pool, 100);
    ck_assert_ptr_nonnull(live);
    st_fill(live, 100, 7);
    scribble_links(pool, live, pool->id_limit + 7);
    size_t lines = hammer(pool, 100, live, 100);
    ck_assert_uint_ge(lines, 1);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A small class's head past every valid id. */
START_TEST(head_out_of_range)
{
    sigsafe_pool *pool = make_pool("corrupt-head", ST_MIB);
    unsigned char *live = sigsafe_pool_alloc(pool, 32);
    ck_assert_ptr_nonnull(live);
    st_fill(live, 32, 7);
    scribble_head(pool, ss_class_of(32), pool->id_limit + 1);
    size_t lines = hammer(pool, 32, live, 32);
    ck_assert_uint_ge(lines, 1);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Large blocks keep nothing in their memory: a stray write over a freed
 * large block (in a pool without system calls, where freed pages stay
 * accessible) changes nothing the allocator reads.  Whatever it wrote, the
 * next large blocks are fresh ones, never the live one, and nothing is
 * reported. */
START_TEST(large_block_scribbled_after_free)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = "corrupt-large", .capacity = 8 * ST_MIB,
                               .flags = SIGSAFE_POOL_NO_SYSCALLS};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    size_t size = 20 * ST_KIB;
    unsigned char *freed = sigsafe_pool_alloc(pool, size);
    unsigned char *live = sigsafe_pool_alloc(pool, size);
    ck_assert(freed && live);
    st_fill(live, size, 7);
    sigsafe_free(freed);
    /* The use after free, byte by byte through st_poke(), which no
     * sanitizer instruments (ASan has the freed block poisoned). */
    for (size_t i = 0; i < size; i += 8)
        st_poke(freed + i, 0xA5);
    st_capture cap;
    st_capture_begin(&cap);
    unsigned char *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = sigsafe_pool_alloc(pool, size);
        ck_assert_ptr_nonnull(p[i]);
        ck_assert_msg(p[i] != live, "live block handed out");
        ck_assert_ptr_eq(sigsafe_pool_of(p[i]), pool);
        st_fill(p[i], size, 8);
    }
    ck_assert(st_check(live, size, 7) == SIZE_MAX);
    ck_assert_uint_eq(st_capture_lines(&cap), 0);
    st_capture_end(&cap);
    for (int i = 0; i < 8; i++)
        sigsafe_free(p[i]);
    sigsafe_free(live);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

Suite *corrupt_suite(void)
{
    Suite *s = suite_create("corrupt");
    TCase *tc = tcase_create("metadata");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, links_name_a_live_block);
    tcase_add_test(tc, links_out_of_range);
    tcase_add_test(tc, head_out_of_range);
    tcase_add_test(tc, large_block_scribbled_after_free);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(corrupt_suite());
}
