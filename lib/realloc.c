/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: realloc.  A block keeps its pool: growing allocates the new
 * block from the pool that owns the old one.  A grow that fails returns
 * NULL and leaves the old block as it was; a shrink keeps the block.
 */
#include <string.h>

#include "internal.h"

static void *realloc_in(sigsafe_pool *fallback, void *ptr, size_t size)
{
    if (!ptr)
        return sigsafe_pool_alloc(fallback, size);
    /* One lookup serves the checks, the copy and the free. */
    ss_where w = sigsafe__locate(ptr);
    /* relaxed: a snapshot; the free below decides by its own exchange. */
    size_t have = !w.ok ? 0
                  : w.large
                      ? sigsafe__large_usable(w.pool, w.id)
                  : ss_st_is_live(ss_load_relaxed(ss_state(w.pool, w.id)))
                      ? w.pool->spans[w.id >> SS_ID_SHIFT].block_size
                      : 0;
    if (size == 0 || !have) {
        /* realloc(p, 0) frees p; a pointer that is not a live block is
         * rejected exactly as free() would reject it. */
        (void)sigsafe__free_at(w, ptr);
        return NULL;
    }
    if (size <= have)
        return ptr;
    void *q = sigsafe_pool_alloc(w.pool, size);
    if (!q)
        return NULL;
    memcpy(q, ptr, have);
    (void)sigsafe__free_at(w, ptr);
    return q;
}

void *sigsafe_pool_realloc(sigsafe_pool *pool, void *ptr, size_t size)
{
    if (!ptr && !sigsafe__pool_valid(pool))
        return NULL;
    return realloc_in(pool, ptr, size);
}

void *sigsafe_realloc(void *ptr, size_t size)
{
    return realloc_in(ptr ? NULL : sigsafe_current_pool(), ptr, size);
}
