/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: the per-thread cache's slow paths: finding or claiming this
 * thread's record, refilling a class from the shared lists, flushing a
 * class back.  Each runs with the thread's busy byte set (see tcache.h), so
 * a handler on this thread never sees a record half-changed.
 */
#include "tcache.h"
#include "stack.h"

#if SS_TC_ENABLED
_Thread_local ss_tls sigsafe__tls __attribute__((tls_model("initial-exec")));
#endif

/* ss_class_of(n) for n = 16 * i (the fast paths round a request up to a
 * multiple of 16 first; classes up to 128 B are 16 B apart, above they
 * are multiples of 16 too, so rounding never changes the class). */
#define C4(a, b, c, d) a, b, c, d
const uint8_t sigsafe__tc_class[SS_TC_MAX_SIZE / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7,         /* 0, 16 .. 128 */
    C4(8, 8, 9, 9), C4(10, 10, 11, 11),           /* .. 256 */
    C4(12, 12, 12, 12), C4(13, 13, 13, 13),       /* .. 384 */
    C4(14, 14, 14, 14), C4(15, 15, 15, 15),       /* .. 512 */
    C4(16, 16, 16, 16), C4(16, 16, 16, 16),       /* .. 640 */
    C4(17, 17, 17, 17), C4(17, 17, 17, 17),       /* .. 768 */
    C4(18, 18, 18, 18), C4(18, 18, 18, 18),       /* .. 896 */
    C4(19, 19, 19, 19), C4(19, 19, 19, 19),       /* .. 1024 */
};
#undef C4

void sigsafe__tc_plan(sigsafe_pool *pool)
{
    size_t bytes = pool->capacity / SS_TC_SHARE;
    bytes = bytes < SS_TC_MIN_BYTES   ? SS_TC_MIN_BYTES
            : bytes > SS_TC_MAX_BYTES ? SS_TC_MAX_BYTES
                                      : bytes;
    pool->tc_classes = SS_TC_CLASSES;
    for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
        size_t cap = bytes / ss_class_size(c);
        cap = cap > SS_TC_CAP ? SS_TC_CAP : cap < 2 ? 2 : cap;
        pool->tc_cap_live[ss_st_live(c)] = (uint8_t)cap;
    }
}

ss_tcache *sigsafe__tc_bind(sigsafe_pool *pool, ss_tls *t)
{
    ss_tls_bind b = t->bind[1];
    if (b.pool == pool && ss_bind_current(&b)) {
        t->bind[1] = t->bind[0];
        t->bind[0] = b;
        return b.tc;
    }
    ss_tcache *tc = NULL;
    void *me = t;
    unsigned start = (unsigned)(((uintptr_t)me >> 6) % SS_TC_RECORDS);
    for (unsigned i = 0; pool->tc_classes && !tc && i < SS_TC_RECORDS; i++) {
        ss_tcache *r = &pool->tcaches[(start + i) % SS_TC_RECORDS];
        /* acquire: pairs with the claim below, by this TLS block's
         * previous thread: adopting its record sees all it wrote. */
        if (ss_load_acquire(&r->key) == me)
            tc = r;
    }
    for (unsigned i = 0; pool->tc_classes && !tc && i < SS_TC_RECORDS; i++) {
        ss_tcache *r = &pool->tcaches[(start + i) % SS_TC_RECORDS];
        void *expect = NULL;
        /* acq_rel: the claim publishes nothing yet but must be ordered
         * with the record's later use by an adopter (see above). */
        if (ss_cas_strong_acq_rel(&r->key, &expect, me))
            tc = r;
    }
    t->bind[1] = t->bind[0];
    /* relaxed: see ss_bind_current(). */
    t->bind[0] = (ss_tls_bind){
        .pool = pool,
        .gen = ss_load_relaxed(&sigsafe__pool_gen),
        .tc = tc,
        .states = pool->states,
        .caps = pool->tc_cap_live,
        .small_base = pool->small_base,
        .small_len = tc ? pool->small_end - pool->small_base : 0,
    };
    return tc;
}

/*
 * Pop up to k ids off a class's shared list with one CAS: while the head
 * is still (A, t), no block below A can have been popped (a pop takes the
 * head first and bumps t), so the links walked from A are the ones the CAS
 * commits.  Returns the number taken; *bad on a corrupt list.
 */
static uint32_t pop_chain(sigsafe_pool *pool, unsigned cls, uint32_t k,
                          uint32_t *out, int *bad)
{
    ss_a64 *h = &pool->heads[cls].word;
    /* acquire: pairs with the release CAS in ss_push_chain(). */
    uint64_t old = ss_load_acquire(h);
    for (;;) {
        uint32_t n = 0, cur = (uint32_t)old;
        while (n < k && cur != SS_NIL && cur < pool->id_limit) {
            out[n++] = cur;
            /* relaxed: validated by the CAS, as in ss_pop(). */
            cur = ss_load_relaxed(ss_link(pool, cur));
        }
        if (cur != SS_NIL && cur >= pool->id_limit) {
            /* acquire: as above.  An unchanged head means the walk was
             * not stale: the list itself names an impossible block. */
            uint64_t now = ss_load_acquire(h);
            if (now == old) {
                *bad = 1;
                return 0;
            }
            old = now;
            continue;
        }
        if (n == 0)
            return 0;
        uint64_t neu = ((old & ~(uint64_t)0xffffffffu) + SS_TAG_ONE) | cur;
        /* acquire: a reloaded head may name blocks pushed since. */
        if (ss_cas_weak_acquire(h, &old, neu))
            return n;
    }
}

/* Charge up to k blocks of bs bytes (at least one); the number charged. */
static uint32_t charge(sigsafe_pool *pool, size_t bs, uint32_t k)
{
    for (; k; k /= 2) {
        uint64_t now = ss_budget_take(pool, (size_t)k * bs);
        if (now) {
            /* relaxed: see count_alloc() in alloc.c. */
            if (now > ss_load_relaxed(&pool->stats.peak))
                sigsafe__peak_update(pool, now);
            return k;
        }
    }
    return 0;
}

static void flush_all(sigsafe_pool *pool, ss_tcache *tc)
{
    for (unsigned c = 0; c < pool->tc_classes; c++)
        sigsafe__tc_flush(pool, tc, c, 0);
}

uint32_t sigsafe__tc_refill(sigsafe_pool *pool, ss_tcache *tc, unsigned cls)
{
    size_t bs = ss_class_size(cls);
    uint32_t want = ss_tc_cap(pool, cls) / 2u;
    uint32_t k = charge(pool, bs, want);
    if (!k) {
        flush_all(pool, tc); /* give back what this thread holds, retry */
        k = charge(pool, bs, want);
        if (!k)
            return SS_NIL;
    }
    uint32_t ids[SS_TC_CAP], got = 0;
    while (got < k) {
        int bad = 0;
        got += pop_chain(pool, cls, k - got, ids + got, &bad);
        if (bad)
            sigsafe__list_corrupt(pool, cls, SS_NIL);
        if (got < k && !sigsafe__carve_span(pool, cls))
            break;
    }
    /* Keep the blocks that are free blocks of this class, as they should
     * be; anything else means the list is corrupt: drop the block and
     * abandon the list.  Kept blocks are turned into grains. */
    uint32_t ok = 0;
    for (uint32_t i = 0; i < got; i++) {
        /* relaxed: the block is ours; its state orders nothing. */
        if (ss_load_relaxed(ss_state(pool, ids[i])) == ss_st_free(cls))
            ids[ok++] = (uint32_t)(((uintptr_t)ss_block_addr(pool, ids[i]) -
                                    pool->small_base) >> SS_GRAIN_SHIFT);
        else
            sigsafe__list_corrupt(pool, cls, ids[i]);
    }
    if (ok < k)
        ss_budget_give(pool, (size_t)(k - ok) * bs);
    if (!ok)
        return SS_NIL;
    /* ids[0] goes to the caller, the rest into the cache (the cache is
     * empty: refills happen only then). */
    ss_tc_bin *bin = &tc->bins[cls];
    uint32_t n = ss_load_relaxed(&bin->n); /* relaxed: owner only */
    for (uint32_t i = 1; i < ok; i++)
        ss_bin_push(bin, n++, ids[i]);
    /* relaxed: owner-only counts (see ss_tcache) */
    ss_store_relaxed(&tc->filled, ss_load_relaxed(&tc->filled) + (ok - 1));
    ss_tc_count(&tc->allocs);
    /* relaxed: ours alone until handed out. */
    ss_store_relaxed(&pool->states[ss_state_index(ids[0])], ss_st_live(cls));
    return ids[0];
}

void sigsafe__tc_flush(sigsafe_pool *pool, ss_tcache *tc, unsigned cls,
                       uint32_t keep)
{
    ss_tc_bin *bin = &tc->bins[cls];
    uint32_t n = ss_load_relaxed(&bin->n); /* relaxed: owner only */
    if (n <= keep)
        return;
    /* The blocks oldest first: g[1 .. n-1], then g[0]. */
    uint32_t m = n - keep, seq[SS_TC_CAP];
    for (uint32_t i = 1; i < n; i++)
        seq[i - 1] = bin->g[i];
    seq[n - 1] = bin->g[0];
    /* The oldest go back; the most recently freed stay warm. */
    uint32_t first = ss_grain_id(pool, seq[0]), prev = first;
    for (uint32_t i = 1; i < m; i++) {
        uint32_t id = ss_grain_id(pool, seq[i]);
        /* relaxed: published by the release CAS of the push. */
        ss_store_relaxed(ss_link(pool, prev), id);
        prev = id;
    }
    ss_push_chain(pool, cls, first, prev);
    /* relaxed: an owner-only count (see ss_tcache).  Counted before n
     * drops, so that a stats call in between never counts the drained
     * blocks as handed out. */
    ss_store_relaxed(&tc->drained, ss_load_relaxed(&tc->drained) + m);
    /* The kept blocks, newest in g[0], the rest oldest first. */
    if (keep) {
        bin->g[0] = seq[n - 1];
        for (uint32_t i = 1; i < keep; i++)
            bin->g[i] = seq[m + i - 1];
    }
    ss_store_relaxed(&bin->n, keep); /* relaxed: owner only */
    ss_budget_give(pool, (size_t)m * ss_class_size(cls));
}
