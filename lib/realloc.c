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
    sigsafe_pool *owner;
    if (size == 0) {
        (void)sigsafe__free_in(ptr, &owner);
        return NULL;
    }
    size_t have = sigsafe_usable_size(ptr);
    if (!have) {
        /* Not a live block: reject it exactly as free() would. */
        (void)sigsafe__free_in(ptr, &owner);
        return NULL;
    }
    if (size <= have)
        return ptr;
    owner = sigsafe_pool_of(ptr);
    void *q = sigsafe_pool_alloc(owner, size);
    if (!q)
        return NULL;
    memcpy(q, ptr, have);
    (void)sigsafe__free_in(ptr, &owner);
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
