/* SPDX-License-Identifier: MIT */
/*
 * Shared: hooks that tell memory checkers about sigsafe's blocks.  Memory
 * from raw mmap is invisible to them otherwise.  Compiled to nothing unless
 * a build option asks for them.
 *
 *   SS_ANNOTATE_ALLOC(pool, p, size)   block p handed out; size requested
 *   SS_ANNOTATE_FREE(pool, p, usable)  block p returned to its pool
 *   SS_ANNOTATE_POOL_CREATE(pool)      pool built, no block handed out yet
 *   SS_ANNOTATE_POOL_DESTROY(pool)     pool about to be unmapped
 *   SS_ANNOTATE_SPAN_MAPPED(p, len)    a span just made accessible, no
 *                                      block of it handed out yet
 *
 * A block is usable up to sigsafe_usable_size() bytes, so that is what the
 * checkers are told is addressable, whatever the request was.
 *
 * SIGSAFE_ASAN_POISON (with -fsanitize=address): free blocks and the
 * spans' unused memory are poisoned, so ASan reports a use after free or
 * an overflow into a neighbouring block as "use-after-poison".  A span is
 * poisoned whole when it is carved (not the whole area at create: that
 * would write a shadow byte per 8 bytes of a 64 GiB pool's area).  Large
 * blocks need no poison at create: each has its guard.  At destroy, every
 * byte that may be poisoned (the carved spans, the large area up to its
 * highest block) is unpoisoned, so that a later mapping at the same
 * address is not reported.
 *
 * SIGSAFE_VALGRIND: each pool is a memcheck memory pool anchored at its
 * header, every block a chunk of it: memcheck reports invalid reads and
 * writes, uses after free and leaked blocks, and destroying a pool frees its
 * chunks.  The block areas start out inaccessible.  The allocator's own
 * accesses are all to the metadata (headers, links, states), which stays
 * accessible.  Client requests cost a few instructions outside valgrind.
 *
 * Every hook is AS-safe: shadow memory writes and client requests only.
 */
#ifndef SS_ANNOTATE_H
#define SS_ANNOTATE_H

#include "internal.h"

#if defined(SIGSAFE_ASAN_POISON) && SIGSAFE_ASAN_POISON && \
    defined(SIGSAFE_VALGRIND) && SIGSAFE_VALGRIND
#error "SIGSAFE_ASAN_POISON and SIGSAFE_VALGRIND exclude each other"
#endif

#if (defined(SIGSAFE_ASAN_POISON) && SIGSAFE_ASAN_POISON) || \
    (defined(SIGSAFE_VALGRIND) && SIGSAFE_VALGRIND)
/* Usable size of the block that starts at p (0 if none): the lookup that
 * sigsafe_usable_size() makes, without its liveness test. */
SS_INLINE size_t ss_annotate_usable(const void *p)
{
    ss_where w = sigsafe__locate(p);
    if (!w.ok)
        return 0;
    return w.large ? sigsafe__large_usable(w.pool, w.id)
                   : w.pool->spans[w.id >> SS_ID_SHIFT].block_size;
}
#endif

/* ------------------------------------------------------ AddressSanitizer */
#if defined(SIGSAFE_ASAN_POISON) && SIGSAFE_ASAN_POISON

#if defined(__SANITIZE_ADDRESS__)
#define SS_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SS_HAVE_ASAN 1
#endif
#endif
#ifndef SS_HAVE_ASAN
#error "SIGSAFE_ASAN_POISON needs -fsanitize=address"
#endif

#include <sanitizer/asan_interface.h>

#define SS_ANNOTATE_ALLOC(pool, p, size)                                     \
    do {                                                                     \
        (void)(pool);                                                        \
        (void)(size);                                                        \
        ASAN_UNPOISON_MEMORY_REGION((p), ss_annotate_usable(p));             \
    } while (0)

#define SS_ANNOTATE_FREE(pool, p, usable)                                    \
    do {                                                                     \
        (void)(pool);                                                        \
        ASAN_POISON_MEMORY_REGION((p), (usable));                            \
    } while (0)

/* Unpoison what may hold poison: the spans carved (the top spans of the
 * zones: see ss_zone_slot()) and the large area up to the highest block it
 * handed out (frees poison blocks only). */
SS_INLINE void ss_annotate_pool_destroy(sigsafe_pool *pool)
{
    /* relaxed: the pool is quiescent at destroy. */
    uint32_t seq = ss_load_relaxed(&pool->small_frontier);
    for (uint32_t z = 0; z < pool->nzones; z++) {
        uint32_t n = ss_zone_carved(pool, seq, z);
        uint32_t top = z * (pool->zone_spans + 1) + pool->zone_spans;
        ASAN_UNPOISON_MEMORY_REGION(
            (void *)(pool->small_base +
                     ((uintptr_t)(top - n) << pool->span_shift)),
            (size_t)n << pool->span_shift);
    }
    /* relaxed: as above */
    uint64_t top = ss_load_relaxed(&pool->large_used_top);
    if (top)
        ASAN_UNPOISON_MEMORY_REGION((void *)pool->large_base, (size_t)top);
}

#define SS_ANNOTATE_POOL_CREATE(pool) ((void)(pool))
#define SS_ANNOTATE_POOL_DESTROY(pool) ss_annotate_pool_destroy(pool)
/* A new span: none of its blocks is handed out yet. */
#define SS_ANNOTATE_SPAN_MAPPED(p, len) ASAN_POISON_MEMORY_REGION((p), (len))

/* ------------------------------------------------------ valgrind memcheck */
#elif defined(SIGSAFE_VALGRIND) && SIGSAFE_VALGRIND

#include <valgrind/memcheck.h>

#define SS_ANNOTATE_ALLOC(pool, p, size)                                     \
    do {                                                                     \
        (void)(size);                                                        \
        if (RUNNING_ON_VALGRIND)                                             \
            VALGRIND_MEMPOOL_ALLOC((pool), (p), ss_annotate_usable(p));      \
    } while (0)

#define SS_ANNOTATE_FREE(pool, p, usable)                                    \
    do {                                                                     \
        (void)(usable);                                                      \
        VALGRIND_MEMPOOL_FREE((pool), (p));                                  \
    } while (0)

SS_INLINE void ss_annotate_pool_create(const sigsafe_pool *pool)
{
    VALGRIND_CREATE_MEMPOOL(pool, 0, 0);
    /* The spans and slots: no block is handed out yet. */
    VALGRIND_MAKE_MEM_NOACCESS((void *)pool->small_base,
                               pool->end - pool->small_base);
}

#define SS_ANNOTATE_POOL_CREATE(pool) ss_annotate_pool_create(pool)
/* Frees every chunk still live: destroying a pool leaks nothing. */
#define SS_ANNOTATE_POOL_DESTROY(pool) VALGRIND_DESTROY_MEMPOOL(pool)
/* memcheck takes an mprotect to readable and writable as making the pages
 * addressable: the span's blocks are not, until handed out. */
#define SS_ANNOTATE_SPAN_MAPPED(p, len) VALGRIND_MAKE_MEM_NOACCESS((p), (len))

/* ------------------------------------------------------------------ none */
#else

#define SS_ANNOTATE_ALLOC(pool, p, size)                                     \
    ((void)(pool), (void)(p), (void)(size))
#define SS_ANNOTATE_FREE(pool, p, usable)                                    \
    ((void)(pool), (void)(p), (void)(usable))
#define SS_ANNOTATE_POOL_CREATE(pool) ((void)(pool))
#define SS_ANNOTATE_POOL_DESTROY(pool) ((void)(pool))
#define SS_ANNOTATE_SPAN_MAPPED(p, len) ((void)(p), (void)(len))

#endif

#endif /* SS_ANNOTATE_H */
