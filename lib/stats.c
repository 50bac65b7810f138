/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: statistics.  Every counter is an independent relaxed atomic:
 * readable from a handler at any time, exact when the pool is quiescent.
 */
#include "internal.h"

void sigsafe__peak_update(sigsafe_pool *pool, uint64_t now)
{
    /* relaxed: a monotonic maximum orders nothing else. */
    uint64_t peak = ss_load_relaxed(&pool->stats.peak);
    while (now > peak && !ss_cas_weak_relaxed(&pool->stats.peak, &peak, now))
        ;
}

int sigsafe_pool_stats(const sigsafe_pool *pool, sigsafe_stats *out)
{
    if (!out || !sigsafe__pool_valid(pool))
        return 22; /* EINVAL */
    sigsafe_pool *p = (sigsafe_pool *)pool; /* atomics are read, not written */
    /* relaxed: a snapshot of independent counters. */
    out->capacity = p->capacity;
    /* The budget counts blocks in thread caches too: take them out. */
    uint64_t allocs = ss_load_relaxed(&p->stats.allocs);
    uint64_t frees = ss_load_relaxed(&p->stats.frees);
    uint64_t cached = 0;
    /* relaxed: records ever claimed (tcache.c); one claimed after this
     * load has counted nothing yet. */
    uint64_t used = p->tc_classes ? ss_load_relaxed(&p->tc_used) : 0;
    for (; used; used &= used - 1) {
        ss_tcache *tc = ss_tc_record(p, (unsigned)__builtin_ctzll(used));
        uint64_t key = ss_load_relaxed(&tc->key);
        if (!key)
            continue;
        /* The allocations the bins served (see ss_tcache) are
         * filled + frees - drained - held, from one record's counts read
         * one by one while its owner may be working.  Taken again until
         * filled and drained are the same before and after the bins (and
         * their frees) are summed (then only bin allocations and frees
         * can have happened meanwhile, each read at most one count
         * apart); a few tries, then the last reading, clamped at 0. */
        uint64_t f = 0, in = 0, drained = 0, held = 0, held_bytes = 0;
        for (int tries = 0; tries < 8; tries++) {
            drained = ss_load_relaxed(&tc->drained);
            uint64_t filled = ss_load_relaxed(&tc->filled);
            f = held = held_bytes = 0;
            for (unsigned c = 0; c < p->tc_classes; c++) {
                ss_tc_bin *bin = ss_tc_bin_at(p, tc, c);
                f += ss_load_relaxed(&bin->frees);
                uint32_t n = ss_load_relaxed(&bin->n);
                held += n;
                held_bytes += (uint64_t)n * ss_class_size(c);
            }
            in = filled + f;
            if (drained == ss_load_relaxed(&tc->drained) &&
                filled == ss_load_relaxed(&tc->filled))
                break;
        }
        /* A locked record is being salvaged (or its salvager vanished):
         * its blocks are nobody's to hand out yet, so they count as in
         * use until they are back on the shared lists. */
        if (!(key & SS_TC_LOCK))
            cached += held_bytes;
        allocs += ss_load_relaxed(&tc->allocs) +
                  (in > drained + held ? in - drained - held : 0);
        frees += f;
    }
    uint64_t charged = ss_load_relaxed(&p->budget); /* relaxed: as above */
    out->bytes_in_use = (size_t)(charged > cached ? charged - cached : 0);
    out->peak_bytes_in_use = (size_t)ss_load_relaxed(&p->stats.peak);
    out->bytes_mapped = (size_t)ss_load_relaxed(&p->mapped);
    out->allocs = allocs;
    out->frees = frees;
    out->failed_allocs = ss_load_relaxed(&p->stats.failed);
    out->rejected_frees = ss_load_relaxed(&p->stats.rejected);
    return 0;
}
