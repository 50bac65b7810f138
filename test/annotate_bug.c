/* SPDX-License-Identifier: MIT */
/*
 * Planted bugs for the memory-checker hooks (lib/annotate.h).  Built twice:
 * against the library with the hooks (SIGSAFE_ASAN_POISON or
 * SIGSAFE_VALGRIND) and against the same sources without them, so a test
 * can show that the checker now reports what it missed before.
 *
 *   annotate_bug uaf       write one byte into a freed block
 *   annotate_bug overflow  write one byte past a live block, into its
 *                          never-used neighbour in the same span
 *   annotate_bug leak      drop the only pointer to a live block (not the
 *                          first of its span: see leak_one())
 *   annotate_bug ok        correct use: no checker may report anything
 *
 * Each returns 0 unless a checker stops it; a wrong usage is 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigsafe.h"

/* Opaque to the optimiser: the stores below must happen. */
static void *volatile sink;

static void poke(void *p, size_t off)
{
    ((volatile unsigned char *)p)[off] = 0x5a;
}

static int uaf(void)
{
    char *p = sigsafe_alloc(32);
    if (!p)
        return 1;
    memset(p, 1, sigsafe_usable_size(p));
    sigsafe_free(p);
    poke(p, 0);
    return 0;
}

static int overflow(void)
{
    sigsafe_pool *pool;
    sigsafe_pool_config cfg = {.name = "overflow", .capacity = 1 << 20};
    if (sigsafe_pool_create(&cfg, &pool) != 0)
        return 1;
    /* The first block of a fresh span; its neighbour was never handed out. */
    char *p = sigsafe_pool_alloc(pool, 16);
    if (!p)
        return 1;
    size_t n = sigsafe_usable_size(p);
    memset(p, 1, n);
    poke(p, n);
    sigsafe_free(p);
    sigsafe_pool_destroy(pool);
    return 0;
}

/* Reachable to the end: memcheck (3.19) leak-checks memory pool chunks,
 * sigsafe's blocks, only in a program that has a malloc'd block too, as
 * nearly every program has. */
static void *volatile reachable;

/* Leaks the second block of a span: the first one's address is in its span
 * header, so memcheck would count it as still reachable. */
static __attribute__((noinline)) int leak_one(void)
{
    char *first = sigsafe_alloc(100);
    sink = sigsafe_alloc(100);
    if (!first || !sink)
        return 1;
    memset((void *)sink, 1, 100);
    sigsafe_free(first);
    sink = NULL;
    return 0;
}

/* Overwrites the stack that leak_one() used, where the pointer may linger. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0;
}

static int leak(void)
{
    reachable = malloc(1);
    int rc = leak_one();
    scrub_stack();
    return rc;
}

static int ok(void)
{
    sigsafe_pool *pool;
    sigsafe_pool_config cfg = {.name = "ok", .capacity = 1 << 20};
    if (sigsafe_pool_create(&cfg, &pool) != 0)
        return 1;
    for (int round = 0; round < 2; round++) {
        char *blocks[64];
        for (int i = 0; i < 64; i++) {
            size_t want = (size_t)(i * 97 % 5000);
            blocks[i] = sigsafe_pool_alloc(pool, want);
            if (!blocks[i])
                return 1;
            memset(blocks[i], i, sigsafe_usable_size(blocks[i]));
        }
        for (int i = 0; i < 64; i += 2) {
            char *q = sigsafe_realloc(blocks[i], 20000);
            if (!q || q[0] != (char)i)
                return 1;
            memset(q, i, sigsafe_usable_size(q));
            blocks[i] = q;
        }
        char *z = sigsafe_pool_calloc(pool, 10, 10);
        char *a = sigsafe_pool_aligned_alloc(pool, 256, 100);
        if (!z || !a || z[99] != 0)
            return 1;
        memset(a, 3, sigsafe_usable_size(a));
        sigsafe_free(z);
        sigsafe_free(a);
        /* Round 0 frees its blocks; round 1 leaves them to the destroy. */
        for (int i = 0; round == 0 && i < 64; i++)
            sigsafe_free(blocks[i]);
    }
    sigsafe_pool_destroy(pool);
    /* A new pool, possibly at the same address: nothing stale remains. */
    if (sigsafe_pool_create(&cfg, &pool) != 0)
        return 1;
    char *p = sigsafe_pool_alloc(pool, 16);
    if (!p)
        return 1;
    memset(p, 1, sigsafe_usable_size(p));
    sigsafe_free(p);
    sigsafe_pool_destroy(pool);
    /* The default pool, through its context: freed, so no leak. */
    char *d = sigsafe_alloc(200);
    if (!d)
        return 1;
    memset(d, 2, 200);
    sigsafe_free(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: annotate_bug uaf|overflow|leak|ok\n");
        return 2;
    }
    sigsafe_set_report_fd(-1);
    if (!strcmp(argv[1], "uaf"))
        return uaf();
    if (!strcmp(argv[1], "overflow"))
        return overflow();
    if (!strcmp(argv[1], "leak"))
        return leak();
    if (!strcmp(argv[1], "ok"))
        return ok();
    fprintf(stderr, "annotate_bug: unknown case %s\n", argv[1]);
    return 2;
}
