/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: sigsafe_free().
 *
 * The fast path (a block of the pool this thread used last, into its
 * cache) is at the end.  The full path checks, in order: NULL; the pool
 * that holds the address; a carved span of that pool at that address
 * (magic); a whole number of blocks from the span's first block (interior
 * pointers); then the live -> free transition of the block's state byte,
 * which catches double frees even when two frees race.  Any failure is
 * rejected: counted and reported in one line, and the pool is left exactly
 * as it was.
 */
#include "annotate.h"
#include "internal.h"
#include "stack.h"
#include "tcache.h"

/* Put a freed block (g grains into the small area) in the thread's cache;
 * 0 to take the shared path. */
SS_INLINE int free_cached(sigsafe_pool *pool, uint32_t g, unsigned cls)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    if (SS_UNLIKELY(!ss_tc_enter(t)))
        return 0; /* a handler that interrupted the cache */
    ss_tcache *tc = ss_tc_get(pool, t);
    if (SS_LIKELY(tc != NULL)) {
        ss_tc_bin *bin = ss_tc_bin_at(pool, tc, cls);
        uint32_t n = ss_load_relaxed(&bin->n); /* relaxed: owner only */
        if (SS_UNLIKELY(n >= bin->cap)) {
            n = bin->cap / 2u;
            sigsafe__tc_flush(pool, tc, cls, n);
        }
        ss_tc_put(bin, n, g);
    }
    ss_tc_leave(t);
    return tc != NULL;
#else
    (void)pool;
    (void)g;
    (void)cls;
    return 0;
#endif
}

/* Free a located block.  Returns 0, or the reason it was rejected. */
SS_INLINE const char *free_block(sigsafe_pool *pool, uint32_t id)
{
    ss_a8 *st = ss_state(pool, id);
    /* relaxed: a first look; the exchange below decides. */
    uint8_t v = ss_load_relaxed(st);
    /* relaxed: the state's modification order decides which of two racing
     * frees wins (only the live bit changes: a block keeps its class);
     * the block's contents are handed on by the push. */
    if (SS_UNLIKELY(!ss_st_is_live(v)) ||
        SS_UNLIKELY(ss_xchg_relaxed(st, (uint8_t)(v & ~1u)) != v))
        return "double free (block is not live)";
    const ss_span *s = &pool->spans[id >> SS_ID_SHIFT];
    void *p = ss_block_addr(pool, id);
    SS_ANNOTATE_FREE(pool, p, s->block_size);
    if (SS_LIKELY(s->cls < pool->tc_classes) &&
        free_cached(pool,
                    (uint32_t)(((uintptr_t)p - pool->small_base) >>
                               SS_GRAIN_SHIFT),
                    s->cls))
        return 0;
    /* relaxed: independent counters, exact once the pool is quiescent. */
    ss_add_relaxed(&pool->stats.frees, 1);
    ss_push_chain(pool, s->cls, id, id);
    ss_budget_give(pool, s->block_size);
    return 0;
}

/* Count and report a rejected pointer; the pool is left as it was. */
static SS_NOINLINE int reject(sigsafe_pool *pool, const void *p,
                              const char *why)
{
    sigsafe_pool *blame = pool ? pool : sigsafe__default_pool();
    if (blame) {
        ss_add_relaxed(&blame->stats.rejected, 1); /* relaxed: a count */
        sigsafe__report_reject(blame, p, why);
    }
    return -1;
}

int sigsafe__free_at(ss_where w, const void *p)
{
    if (SS_UNLIKELY(!w.ok))
        return reject(w.pool, p, w.pool ? "not the start of a block"
                                        : "not from any pool");
    const char *why = w.large ? sigsafe__large_free(w.pool, w.id)
                              : free_block(w.pool, w.id);
    return SS_LIKELY(!why) ? 0 : reject(w.pool, p, why);
}

/* Everything but a hit in the thread cache of the pool bound last. */
static SS_NOINLINE void free_slow(void *ptr)
{
    if (!ptr)
        return;
    /* Span blocks by arithmetic; anything else (large blocks, bad
     * pointers) goes through the full lookup. */
    sigsafe_pool *pool = sigsafe__registry_find((uintptr_t)ptr);
    uint32_t id;
    if (SS_LIKELY(pool != NULL) &&
        SS_LIKELY(ss_locate_span(pool, (uintptr_t)ptr, &id))) {
        const char *why = free_block(pool, id);
        if (SS_UNLIKELY(why))
            (void)reject(pool, ptr, why);
        return;
    }
    (void)sigsafe__free_at(sigsafe__locate(ptr), ptr);
}

/*
 * The fast path: a live block of a cached class in the small area of the
 * pool this thread used last, into its cache while there is room.  The
 * block is found by arithmetic alone: its state byte, indexed by its
 * address, says whether a block starts there, its class, and whether it
 * is live, so an interior or foreign pointer or a double free falls
 * through to free_slow(), which rejects it.  One atomic exchange (the
 * double-free check against another thread's racing free); a signal
 * landing anywhere in it finds busy set and takes the shared path.
 */
void sigsafe_free(void *ptr)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    if (SS_LIKELY(ss_tc_enter(t))) {
        /* Read with busy set: a handler may rebind only while it is clear. */
        const ss_tls_bind *b = &t->bind[0];
        /* The offset in grains, rotated: a pointer that is not on a
         * grain has its low bits on top and fails the range check, as
         * NULL and foreign pointers do.  One compare for both. */
        uintptr_t off = (uintptr_t)ptr - b->small_base;
        uintptr_t rot = (off >> SS_GRAIN_SHIFT) |
                        (off << (sizeof off * 8 - SS_GRAIN_SHIFT));
        if (SS_LIKELY(rot < b->small_grains) &&
            SS_LIKELY(ss_bind_current(b))) {
            uint32_t g = (uint32_t)rot;
            ss_a8 *st = &b->states[ss_state_index(g)];
            ss_tcache *tc = b->tc;
            /* relaxed: a first look; the exchange below decides. */
            uint32_t v = ss_load_relaxed(st);
            /* The bin of class ss_st_cls(v), in slot v >> 1, by
             * arithmetic (no load on the way to the bin): v may be
             * anything until the table says it is a live block of a
             * cached class. */
            ss_tc_bin *bin = ss_tc_bin_of(tc, (uintptr_t)v >> 1, b->bin_shift);
            uint32_t n;
            if (SS_LIKELY(sigsafe__tc_live_cached[v]) &&
                /* relaxed: the record is this thread's alone (busy). */
                SS_LIKELY((n = ss_load_relaxed(&bin->n)) < bin->cap)) {
                /* relaxed: as in free_block(); a loser of a race with
                 * another free is that free's double. */
                if (SS_LIKELY(ss_xchg_relaxed(st, (uint8_t)(v & ~1u)) == v)) {
                    /* before the block is in the cache, where the next
                     * allocation on this thread may take it */
                    SS_ANNOTATE_FREE(b->pool, ptr,
                                     ss_class_size(ss_st_cls(v)));
                    ss_tc_put(bin, n, g);
                    ss_tc_leave(t);
                    return;
                }
                sigsafe_pool *pool = b->pool;
                ss_tc_leave(t);
                (void)reject(pool, ptr, "double free (block is not live)");
                return;
            }
        }
        ss_tc_leave(t);
    }
#endif
    free_slow(ptr);
}
