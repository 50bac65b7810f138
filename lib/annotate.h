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
 * SIGSAFE_ASAN_POISON (with -fsanitize=address): free blocks and the small
 * area's unused memory (and the guard pages before it) are poisoned, so
 * ASan reports a use after free or an overflow into a neighbouring block as
 * "use-after-poison".  At create the guard pages after the metadata and the
 * first SS_ASAN_POISON_MAX bytes of the small area are poisoned (zones are
 * carved in address order, so these are the first zones any pool uses;
 * poisoning writes one shadow byte per 8 bytes, and a 64 GiB pool's whole
 * area would cost gigabytes of shadow).  Large blocks need no poison at
 * create: each has its guard.  At destroy, every byte that may be
 * poisoned is unpoisoned, so that a later mapping at the same address is
 * not reported.
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

#define SS_ASAN_POISON_MAX ((uintptr_t)256 << 20) /* 32 MiB of shadow */

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

/* End of the small area's prefix that create poisons. */
SS_INLINE uintptr_t ss_asan_prefix_end(const sigsafe_pool *pool)
{
    uintptr_t n = pool->small_end - pool->small_base;
    return pool->small_base + (n < SS_ASAN_POISON_MAX ? n : SS_ASAN_POISON_MAX);
}

/* Start of the poisoned prefix: the guard pages after the metadata, so
 * that the byte before a span's first block is poisoned too. */
SS_INLINE uintptr_t ss_asan_prefix_start(const sigsafe_pool *pool)
{
    return (uintptr_t)pool + pool->meta_bytes;
}

SS_INLINE void ss_annotate_pool_create(const sigsafe_pool *pool)
{
    ASAN_POISON_MEMORY_REGION((void *)ss_asan_prefix_start(pool),
                              ss_asan_prefix_end(pool) -
                                  ss_asan_prefix_start(pool));
}

/* Unpoison what create poisoned, the carved spans and the large area up
 * to the highest block it handed out: only these can hold poison (frees
 * poison blocks only). */
SS_INLINE void ss_annotate_pool_destroy(sigsafe_pool *pool)
{
    /* relaxed: the pool is quiescent at destroy.  Zones are carved in
     * address order: the spans carved are in the zones up to this one. */
    uint32_t seq = ss_load_relaxed(&pool->small_frontier);
    uint32_t zones = pool->zone_spans
                         ? (seq + pool->zone_spans - 1) / pool->zone_spans
                         : 0;
    uintptr_t end = pool->small_base +
                    ((uintptr_t)zones * (pool->zone_spans + 1)
                     << pool->span_shift);
    if (end < ss_asan_prefix_end(pool))
        end = ss_asan_prefix_end(pool);
    ASAN_UNPOISON_MEMORY_REGION((void *)ss_asan_prefix_start(pool),
                                end - ss_asan_prefix_start(pool));
    /* relaxed: as above */
    uint64_t top = ss_load_relaxed(&pool->large_used_top);
    if (top)
        ASAN_UNPOISON_MEMORY_REGION((void *)pool->large_base, (size_t)top);
}

#define SS_ANNOTATE_POOL_CREATE(pool) ss_annotate_pool_create(pool)
#define SS_ANNOTATE_POOL_DESTROY(pool) ss_annotate_pool_destroy(pool)
/* The span's shadow is as create (or frees) left it. */
#define SS_ANNOTATE_SPAN_MAPPED(p, len) ((void)(p), (void)(len))

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
