/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: allocation entry points (alloc, calloc, aligned_alloc).
 *
 * The fast path charges the block's size to the pool's budget (one CAS; the
 * capacity check), pops the class's free stack (one CAS loop) and marks the
 * block live; every miss (empty stack, large class, corruption) goes to
 * sigsafe__alloc_slow() in span.c.
 */
#include <string.h>

#include "annotate.h"
#include "internal.h"
#include "stack.h"
#include "tcache.h"

/* Count one handed-out block; `now` is the budget after charging it. */
SS_INLINE void count_alloc(sigsafe_pool *pool, uint64_t now)
{
    /* relaxed: independent counters, exact once the pool is quiescent. */
    ss_add_relaxed(&pool->stats.allocs, 1);
    /* relaxed: the peak is a monotonic maximum; any stale read only sends
     * us to the CAS loop, which settles it. */
    if (SS_UNLIKELY(now > ss_load_relaxed(&pool->stats.peak)))
        sigsafe__peak_update(pool, now);
}

/* The slow path handed out a block of another size: charge the difference
 * (a stolen larger block), or give the block back if that is over cap. */
static SS_NOINLINE void *settle(sigsafe_pool *pool, uint32_t id,
                                size_t charged)
{
    const ss_span *s = &pool->spans[id >> SS_ID_SHIFT];
    uint64_t now = 0;
    if (s->block_size <= charged ||
        (now = ss_budget_take(pool, s->block_size - charged)) != 0) {
        if (s->block_size < charged)
            ss_budget_give(pool, charged - s->block_size);
        /* relaxed: a snapshot for the peak. */
        count_alloc(pool, now ? now : ss_load_relaxed(&pool->budget));
        return ss_block_addr(pool, id);
    }
    /* relaxed: the block is ours until the push, which publishes. */
    ss_store_relaxed(ss_state(pool, id), ss_st_free(s->cls));
    ss_push_chain(pool, s->cls, id, id);
    ss_budget_give(pool, charged);
    ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
    return NULL;
}

/* The thread's cache: a block, or NULL to take the shared path. */
SS_INLINE void *alloc_cached(sigsafe_pool *pool, unsigned cls)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    if (SS_UNLIKELY(!ss_tc_enter(t)))
        return NULL; /* a handler that interrupted the cache */
    void *p = NULL;
    ss_tcache *tc = ss_tc_get(pool, t);
    if (SS_LIKELY(tc != NULL)) {
        ss_tc_bin *bin = ss_tc_bin_at(pool, tc, cls);
        uint32_t n = ss_load_relaxed(&bin->n); /* relaxed: owner only */
        if (SS_LIKELY(n)) {
            p = ss_tc_take(pool->states, pool->small_base, bin, n);
        } else {
            uint32_t g = sigsafe__tc_refill(pool, tc, cls);
            if (g != SS_NIL)
                p = (void *)(pool->small_base +
                             ((uintptr_t)g << SS_GRAIN_SHIFT));
        }
    }
    ss_tc_leave(t);
    return p;
#else
    (void)pool;
    (void)cls;
    return NULL;
#endif
}

/* A large block (large.c): charged by its usable size. */
static SS_NOINLINE void *alloc_large(sigsafe_pool *pool, size_t size)
{
    size_t usable = sigsafe__large_usable_for(pool, size);
    uint64_t now = usable ? ss_budget_take(pool, usable) : 0;
    /* Short of memory: take back what caches hold idle, then retry. */
    if (SS_UNLIKELY(usable && !now) && sigsafe__tc_reclaim(pool))
        now = ss_budget_take(pool, usable);
    void *p = now ? sigsafe__large_alloc(pool, usable) : NULL;
    if (SS_UNLIKELY(!p)) {
        if (now)
            ss_budget_give(pool, usable);
        ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
        return NULL;
    }
    count_alloc(pool, now);
    return p;
}

/* The shared path: the budget, the class's lock-free stack, the slow path. */
static SS_NOINLINE void *alloc_shared(sigsafe_pool *pool, unsigned cls)
{
    size_t bs = ss_class_size(cls);
    uint64_t now = ss_budget_take(pool, bs);
    /* Short of memory: first take back what caches hold idle (this
     * thread's, vanished threads'), then retry once. */
    if (SS_UNLIKELY(!now) && sigsafe__tc_reclaim(pool))
        now = ss_budget_take(pool, bs);
    if (SS_UNLIKELY(!now)) {
        ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
        return NULL;
    }
    int bad = 0;
    uint32_t id = ss_pop(pool, cls, &bad);
    if (SS_LIKELY(id != SS_NIL)) {
        /* relaxed: the state's own modification order is all the
         * double-free check needs; the block was handed over by the
         * acquire in ss_pop().  A CAS, not an exchange: a corrupt list
         * may name a live block, whose state must stay as it is. */
        uint8_t expect = ss_st_free(cls);
        if (SS_LIKELY(ss_cas_strong_relaxed(ss_state(pool, id), &expect,
                                            ss_st_live(cls)))) {
            count_alloc(pool, now);
            return ss_block_addr(pool, id);
        }
        /* A live block on the free list: the list is corrupt. */
        sigsafe__list_corrupt(pool, cls, id);
    } else if (SS_UNLIKELY(bad)) {
        sigsafe__list_corrupt(pool, cls, SS_NIL);
    }
    id = sigsafe__alloc_slow(pool, cls);
    if (SS_UNLIKELY(id == SS_NIL)) {
        ss_budget_give(pool, bs);
        ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
        return NULL;
    }
    if (SS_UNLIKELY(pool->spans[id >> SS_ID_SHIFT].block_size != bs))
        return settle(pool, id, bs);
    count_alloc(pool, now);
    return ss_block_addr(pool, id);
}

SS_INLINE void *alloc_class(sigsafe_pool *pool, unsigned cls)
{
    if (SS_LIKELY(cls < pool->tc_classes)) {
        void *p = alloc_cached(pool, cls);
        if (SS_LIKELY(p != NULL))
            return p;
    }
    return alloc_shared(pool, cls);
}

/* Everything but a hit in the thread cache of the pool bound last. */
static SS_NOINLINE void *pool_alloc_slow(sigsafe_pool *pool, size_t size)
{
    if (SS_UNLIKELY(!sigsafe__pool_valid(pool)))
        return NULL;
    if (SS_UNLIKELY(size > pool->capacity)) {
        ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
        return NULL;
    }
    void *p = SS_LIKELY(size <= SS_SMALL_MAX && pool->span_classes)
                  ? alloc_class(pool, ss_class_of(size))
                  : alloc_large(pool, size);
    if (p)
        SS_ANNOTATE_ALLOC(pool, p, size);
    return p;
}

/*
 * The fast path: a request of up to 1 KiB from the pool this thread used
 * last, served from its cache.  About forty instructions, no atomic
 * read-modify-write, no pool header read (the binding in TLS has what it
 * needs).  A signal landing anywhere in it finds busy set and takes the
 * shared path, or lands before it and finds the cache as it was.
 */
void *sigsafe_pool_alloc(sigsafe_pool *pool, size_t size)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    if (SS_LIKELY(size <= SS_TC_MAX_SIZE) && SS_LIKELY(ss_tc_enter(t))) {
        /* Read with busy set: a handler may rebind only while it is clear. */
        const ss_tls_bind *b = &t->bind[0];
        ss_tcache *tc = b->tc;
        if (SS_LIKELY(b->pool == pool) && SS_LIKELY(ss_bind_current(b))) {
            /* A bound pool without a record has sigsafe__tc_none: its
             * bins are empty. */
            size_t slot = sigsafe__tc_slot[(size + 15) >> 4];
            ss_tc_bin *bin = ss_tc_bin_of(tc, slot, b->bin_shift);
            /* relaxed: the record is this thread's alone (busy is set). */
            size_t n = ss_load_relaxed(&bin->n);
            if (SS_LIKELY(n)) {
                void *p = ss_tc_take(b->states, b->small_base, bin, n);
                ss_tc_leave(t);
                SS_ANNOTATE_ALLOC(pool, p, size);
                return p;
            }
        }
        ss_tc_leave(t);
    }
#endif
    return pool_alloc_slow(pool, size);
}

void *sigsafe_alloc(size_t size)
{
    sigsafe_pool *pool = sigsafe_current_pool();
    void *p = sigsafe_pool_alloc(pool, size);
    if (SS_UNLIKELY(!p) && (pool = sigsafe__reserve_for(pool)) != NULL)
        p = sigsafe_pool_alloc(pool, size);
    return p;
}

void *sigsafe_pool_calloc(sigsafe_pool *pool, size_t n, size_t size)
{
    size_t bytes;
    if (SS_UNLIKELY(__builtin_mul_overflow(n, size, &bytes))) {
        if (sigsafe__pool_valid(pool))
            ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
        return NULL;
    }
    void *p = sigsafe_pool_alloc(pool, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void *sigsafe_calloc(size_t n, size_t size)
{
    sigsafe_pool *pool = sigsafe_current_pool();
    void *p = sigsafe_pool_calloc(pool, n, size);
    size_t bytes;
    if (SS_UNLIKELY(!p) && !__builtin_mul_overflow(n, size, &bytes) &&
        (pool = sigsafe__reserve_for(pool)) != NULL)
        p = sigsafe_pool_calloc(pool, n, size);
    return p;
}

/*
 * Every class whose size is a multiple of `alignment` (a power of two up to
 * the page size) hands out blocks aligned to it: spans are 64 KiB aligned
 * and a span's blocks end at its end, and large blocks start on a page.
 * So the answer is the first such class that holds `size` bytes, or a
 * large block.
 */
void *sigsafe_pool_aligned_alloc(sigsafe_pool *pool, size_t alignment,
                                 size_t size)
{
    if (SS_UNLIKELY(!sigsafe__pool_valid(pool)))
        return NULL;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
        alignment > SS_PAGE || size > pool->capacity) {
        ss_add_relaxed(&pool->stats.failed, 1); /* relaxed: a count */
        return NULL;
    }
    size_t want = size < alignment ? alignment : size;
    void *p;
    if (want > SS_SMALL_MAX || !pool->span_classes) {
        p = alloc_large(pool, want);
    } else {
        unsigned cls = ss_class_of(want);
        while (ss_class_size(cls) & (alignment - 1))
            cls++; /* ends by class 27 (4096) at the latest */
        p = alloc_class(pool, cls);
    }
    if (p)
        SS_ANNOTATE_ALLOC(pool, p, size);
    return p;
}

void *sigsafe_aligned_alloc(size_t alignment, size_t size)
{
    sigsafe_pool *pool = sigsafe_current_pool();
    void *p = sigsafe_pool_aligned_alloc(pool, alignment, size);
    if (SS_UNLIKELY(!p) && (pool = sigsafe__reserve_for(pool)) != NULL)
        p = sigsafe_pool_aligned_alloc(pool, alignment, size);
    return p;
}
