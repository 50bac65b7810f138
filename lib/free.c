/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: sigsafe_free().
 *
 * Checks, in order: NULL; the pool that holds the address; a carved span
 * of that pool at that address (magic); a whole number of blocks from the
 * span's first block (interior pointers); then the LIVE -> FREE transition
 * of the block's state byte, which catches double frees even when two frees
 * race.  Any failure is rejected: counted and reported in one line, and
 * the pool is left exactly as it was.
 */
#include "annotate.h"
#include "internal.h"
#include "stack.h"
#include "tcache.h"

/* Put a freed block in the thread's cache; 0 to take the shared path. */
SS_INLINE int free_cached(sigsafe_pool *pool, uint32_t id, unsigned cls)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    if (SS_UNLIKELY(!ss_tc_enter(t)))
        return 0; /* a handler that interrupted the cache */
    ss_tcache *tc = ss_tc_get(pool, t);
    if (SS_LIKELY(tc != NULL)) {
        uint32_t n = ss_load_relaxed(&tc->n[cls]); /* relaxed: owner only */
        if (SS_UNLIKELY(n >= pool->tc_cap[cls])) {
            n = pool->tc_cap[cls] / 2u;
            sigsafe__tc_flush(pool, tc, cls, n);
        }
        tc->ids[cls][n] = id;
        ss_store_relaxed(&tc->n[cls], n + 1); /* relaxed: owner only */
        ss_tc_count(&tc->frees);
    }
    ss_tc_leave(t);
    return tc != NULL;
#else
    (void)pool;
    (void)id;
    (void)cls;
    return 0;
#endif
}

/* Free a located block.  Returns 0, or the reason it was rejected. */
SS_INLINE const char *free_block(sigsafe_pool *pool, uint32_t id)
{
    /* relaxed: the state's modification order decides which of two racing
     * frees wins; the block's contents are handed on by the push. */
    if (SS_UNLIKELY(ss_xchg_relaxed(ss_state(pool, id), SS_FREE) != SS_LIVE))
        return "double free (block is not live)";
    const ss_span *s = &pool->spans[id >> SS_ID_SHIFT];
    SS_ANNOTATE_FREE(pool, ss_block_addr(pool, id), s->block_size);
    if (SS_LIKELY(s->cls < pool->tc_classes) && free_cached(pool, id, s->cls))
        return 0;
    /* relaxed: independent counters, exact once the pool is quiescent. */
    ss_add_relaxed(&pool->stats.frees, 1);
    if (SS_UNLIKELY(pool->flags & SIGSAFE_POOL_GUARD_EACH))
        sigsafe__quarantine(pool, s);
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
    const char *why = free_block(w.pool, w.id);
    return SS_LIKELY(!why) ? 0 : reject(w.pool, p, why);
}

void sigsafe_free(void *ptr)
{
    if (!ptr)
        return;
    /* The common case inline: a span block; anything else (slot blocks,
     * bad pointers) goes through the full lookup. */
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
