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

/* Free a located block.  Returns 0, or the reason it was rejected. */
static const char *free_block(sigsafe_pool *pool, uint32_t id)
{
    /* relaxed: the state's modification order decides which of two racing
     * frees wins; the block's contents are handed on by the push. */
    if (SS_UNLIKELY(ss_xchg_relaxed(ss_state(pool, id), SS_FREE) != SS_LIVE))
        return "double free (block is not live)";
    const ss_span *s = &pool->spans[id >> SS_ID_SHIFT];
    SS_ANNOTATE_FREE(pool, ss_block_addr(pool, id), s->block_size);
    /* relaxed: independent counters, exact once the pool is quiescent. */
    ss_add_relaxed(&pool->stats.frees, 1);
    if (SS_UNLIKELY(pool->flags & SIGSAFE_POOL_GUARD_EACH))
        sigsafe__quarantine(pool, s);
    ss_push_chain(pool, s->cls, id, id);
    ss_budget_give(pool, s->block_size);
    return 0;
}

int sigsafe__free_in(const void *p, sigsafe_pool **owner)
{
    ss_where w = sigsafe__locate(p);
    const char *why;
    *owner = w.pool;
    if (SS_LIKELY(w.ok)) {
        why = free_block(w.pool, w.id);
        if (SS_LIKELY(!why))
            return 0;
    } else {
        why = w.pool ? "not the start of a block" : "not from any pool";
    }
    sigsafe_pool *blame = w.pool ? w.pool : sigsafe__default_pool();
    if (blame) {
        ss_add_relaxed(&blame->stats.rejected, 1); /* relaxed: a count */
        sigsafe__report_reject(blame, p, why);
    }
    return -1;
}

void sigsafe_free(void *ptr)
{
    sigsafe_pool *owner;
    if (ptr)
        (void)sigsafe__free_in(ptr, &owner);
}
