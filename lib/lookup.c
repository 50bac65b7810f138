/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: pointer -> pool, span, block; the pool registry;
 * sigsafe_usable_size() and sigsafe_pool_of().
 *
 * A bad pointer is rejected by arithmetic alone: find the pool whose
 * reservation holds it, the span header its address maps to, check that
 * the span was carved by this pool (magic), and that the offset is a whole
 * number of blocks.  Nothing here dereferences the pointer itself.
 */
#include "internal.h"

/*
 * Registry: a fixed table of pools.  Invariant: a non-NULL slot names a
 * fully built pool whose header is immutable until it is removed.
 * Callers: any context (lookups); set-up code and the first use that builds
 * the default pool (adds).  Lock-free: adding is one CAS on an empty slot.
 */
ss_aptr sigsafe__registry[SS_MAX_POOLS];
ss_a32 sigsafe__registry_top; /* slots at or above this were never used */
ss_a64 sigsafe__pool_gen;

int sigsafe__registry_add(sigsafe_pool *pool)
{
    for (uint32_t i = 0; i < SS_MAX_POOLS; i++) {
        void *expect = NULL;
        pool->registry_slot = i;
        /* acq_rel: release publishes the built pool to lookups (pairs with
         * the acquire load in sigsafe__registry_find()); acquire is unused
         * but the failure order cannot be weaker than needed. */
        if (ss_cas_strong_acq_rel(&sigsafe__registry[i], &expect, (void *)pool)) {
            /* relaxed: a hint bounding the scan; the slot itself is the
             * published fact, and a lookup that misses the new top cannot
             * be looking for a pointer of this pool yet. */
            uint32_t top = ss_load_relaxed(&sigsafe__registry_top);
            while (top < i + 1 &&
                   !ss_cas_weak_relaxed(&sigsafe__registry_top, &top, i + 1))
                ;
            return 0;
        }
    }
    return 12; /* ENOMEM: too many pools */
}

void sigsafe__registry_remove(sigsafe_pool *pool)
{
    void *expect = pool;
    /* seq_cst: orders the pool's last uses before its slot is freed
     * (release), and takes part in the handshake with exiting threads
     * (sigsafe_pool_destroy()).  A CAS, so that removing twice never
     * unlists a pool added since. */
    (void)ss_cas_strong_seq_cst(&sigsafe__registry[pool->registry_slot],
                                &expect, NULL);
}


ss_where sigsafe__locate(const void *p)
{
    ss_where w = {sigsafe__registry_find((uintptr_t)p), SS_NIL, 0, 0};
    if (!w.pool)
        return w;
    w.ok = ss_locate_span(w.pool, (uintptr_t)p, &w.id);
    if (!w.ok)
        w.ok = w.large = sigsafe__large_find(w.pool, (uintptr_t)p, &w.id);
    return w;
}

/* 1 if the block is live now (racy by nature; exact when quiescent). */
static int is_live(sigsafe_pool *pool, uint32_t id)
{
    /* relaxed: a snapshot; racing frees decide by their own exchange. */
    return ss_st_is_live(ss_load_relaxed(ss_state(pool, id)));
}

size_t sigsafe_usable_size(const void *ptr)
{
    if (!ptr)
        return 0;
    ss_where w = sigsafe__locate(ptr);
    if (!w.ok)
        return 0;
    if (w.large)
        return sigsafe__large_usable(w.pool, w.id);
    if (!is_live(w.pool, w.id))
        return 0;
    return w.pool->spans[w.id >> SS_ID_SHIFT].block_size;
}

sigsafe_pool *sigsafe_pool_of(const void *ptr)
{
    return ptr ? sigsafe__registry_find((uintptr_t)ptr) : NULL;
}

/* 1 if span header h was carved. */
static int carved(const sigsafe_pool *pool, uint32_t h)
{
    /* acquire: pairs with the release store in header_publish(). */
    return h < pool->nsmall &&
           ss_load_acquire(&pool->spans[h].magic) == (pool->secret ^ h);
}

static void fault_block(const sigsafe_pool *pool, uint32_t h, uint32_t i,
                        uintptr_t addr, ss_fault *f)
{
    const ss_span *s = &pool->spans[h];
    f->block = s->start + (uintptr_t)i * s->block_size;
    f->size = s->block_size;
    f->offset = (intptr_t)(addr - f->block);
}

/*
 * Classify a fault address for the guard component: which pool, which
 * guard (a zone's end, the guard after or before a large block) or which
 * freed large block.  Returns 0 if the address is in no pool's guard or
 * quarantined memory.  AS-safe: reads only, no locks.
 */
int sigsafe__classify_fault(uintptr_t addr, ss_fault *f)
{
    sigsafe_pool *pool = sigsafe__registry_find(addr);
    f->pool = pool;
    f->kind = SS_FAULT_NONE;
    f->block = 0;
    f->size = 0;
    f->offset = 0;
    if (!pool)
        return 0;
    uintptr_t meta_end = (uintptr_t)pool + pool->meta_bytes;
    if (addr < meta_end)
        return 0;
    if (addr < pool->small_base) {
        /* The guard before the first area: an underflow of its first
         * block (span 0, or the large area's first block). */
        f->kind = SS_FAULT_UNDERFLOW;
        uint32_t leaf;
        size_t u;
        if (carved(pool, 0)) {
            fault_block(pool, 0, 0, addr, f);
        } else if (!pool->nsmall &&
                   sigsafe__large_find(pool, pool->large_base, &leaf) &&
                   (u = sigsafe__large_usable(pool, leaf)) != 0) {
            f->block = pool->large_base;
            f->size = u;
            f->offset = (intptr_t)(addr - f->block);
        }
        return 1;
    }
    if (addr < pool->small_end) {
        uint32_t h = (uint32_t)((addr - pool->small_base) >> pool->span_shift);
        uint32_t z = pool->zone_spans + 1, k = h % z;
        if (k == z - 1) {
            /* A zone's guard slot: past the end of the zone's top span. */
            f->kind = SS_FAULT_SPAN_END;
            if (carved(pool, h - 1))
                fault_block(pool, h - 1, pool->spans[h - 1].nblocks - 1,
                            addr, f);
            return 1;
        }
        if (carved(pool, h))
            return 0; /* inside a span in use: not a guard */
        /* A span not carved yet (reserved, PROT_NONE): below the lowest
         * span in use of its zone, whose first block it underruns. */
        f->kind = SS_FAULT_UNDERFLOW;
        for (uint32_t i = h + 1; i % z != z - 1; i++)
            if (carved(pool, i)) {
                fault_block(pool, i, 0, addr, f);
                break;
            }
        return 1;
    }
    return sigsafe__large_fault(pool, addr, f);
}
