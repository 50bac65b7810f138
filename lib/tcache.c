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

ss_tcache *sigsafe__tc_bind(sigsafe_pool *pool, ss_tls *t)
{
    ss_tls_bind b = t->bind[1];
    if (b.pool == pool && b.secret == pool->secret) {
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
    t->bind[0] = (ss_tls_bind){pool, pool->secret, tc};
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
    uint32_t want = pool->tc_cap[cls] / 2u;
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
    /* Keep the blocks that are free as they should be; a live one on a
     * free list means the list is corrupt: drop it and abandon the list. */
    uint32_t ok = 0;
    for (uint32_t i = 0; i < got; i++) {
        /* relaxed: the block is ours; its state orders nothing. */
        if (ss_load_relaxed(ss_state(pool, ids[i])) == SS_FREE)
            ids[ok++] = ids[i];
        else
            sigsafe__list_corrupt(pool, cls, ids[i]);
    }
    if (ok < k)
        ss_budget_give(pool, (size_t)(k - ok) * bs);
    if (!ok)
        return SS_NIL;
    /* ids[0] goes to the caller, the rest into the cache (the cache is
     * empty: refills happen only then). */
    uint32_t n = ss_load_relaxed(&tc->n[cls]); /* relaxed: owner only */
    for (uint32_t i = 1; i < ok; i++)
        tc->ids[cls][n++] = ids[i];
    ss_store_relaxed(&tc->n[cls], n); /* relaxed: owner only */
    /* relaxed: ours alone until handed out. */
    ss_store_relaxed(ss_state(pool, ids[0]), SS_LIVE);
    return ids[0];
}

void sigsafe__tc_flush(sigsafe_pool *pool, ss_tcache *tc, unsigned cls,
                       uint32_t keep)
{
    uint32_t n = ss_load_relaxed(&tc->n[cls]); /* relaxed: owner only */
    if (n <= keep)
        return;
    uint32_t m = n - keep, *ids = tc->ids[cls];
    /* The oldest blocks go back; the most recently freed stay warm. */
    for (uint32_t i = 0; i + 1 < m; i++)
        /* relaxed: published by the release CAS of the push. */
        ss_store_relaxed(ss_link(pool, ids[i]), ids[i + 1]);
    ss_push_chain(pool, cls, ids[0], ids[m - 1]);
    for (uint32_t i = 0; i < keep; i++)
        ids[i] = ids[m + i];
    ss_store_relaxed(&tc->n[cls], keep); /* relaxed: owner only */
    ss_budget_give(pool, (size_t)m * ss_class_size(cls));
}
