/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: the per-thread cache's slow paths: finding or claiming this
 * thread's record, refilling a class from the shared lists, flushing a
 * class back.  Each runs with the thread's busy byte set (see tcache.h), so
 * a handler on this thread never sees a record half-changed.
 */
#include "tcache.h"
#include "stack.h"
#include "sys.h"

ss_tcache sigsafe__tc_none[1 + SS_TC_CLASSES];

/* ss_st_live(c) is 2 * c + 3: odd bytes 3 .. 41 for the cached classes */
const uint8_t sigsafe__tc_live_cached[256] = {
    0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, /* 3 .. 15 */
    0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, /* 17 .. 31 */
    0, 1, 0, 1, 0, 1, 0, 1, 0, 1,                   /* 33 .. 41 */
};

#if SS_TC_ENABLED
/* Bound to nothing, and so that a NULL pool finds an empty bin. */
#define SS_BIND_NONE {.tc = sigsafe__tc_none, .bin_shift = 6}
_Thread_local ss_tls sigsafe__tls __attribute__((tls_model("initial-exec"))) = {
    .bind = {SS_BIND_NONE, SS_BIND_NONE},
};
#undef SS_BIND_NONE
#endif

/* ss_class_of(n) + 1 for n = 16 * i (the fast paths round a request up
 * to a multiple of 16 first; classes up to 128 B are 16 B apart, above
 * they are multiples of 16 too, so rounding never changes the class). */
#define C4(a, b, c, d) a + 1, b + 1, c + 1, d + 1
const uint8_t sigsafe__tc_slot[SS_TC_MAX_SIZE / 16 + 1] = {
    1, 1, 2, 3, 4, 5, 6, 7, 8,         /* 0, 16 .. 128 */
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
    size_t limit = pool->capacity / SS_TC_LIMIT_SHARE;
    pool->tc_limit = limit < SS_TC_LIMIT_MIN   ? SS_TC_LIMIT_MIN
                     : limit > SS_TC_LIMIT_MAX ? SS_TC_LIMIT_MAX
                                               : limit;
    pool->tc_entries = (uint32_t)((((size_t)1 << pool->tc_bin_shift) -
                                   sizeof(ss_tc_bin)) / sizeof(uint32_t));
    pool->tc_classes = SS_TC_CLASSES;
    for (unsigned c = 0; c < SS_TC_CLASSES; c++) {
        size_t cap = bytes / ss_class_size(c);
        cap = cap > SS_TC_FIRST_CAP ? SS_TC_FIRST_CAP : cap < 2 ? 2 : cap;
        pool->tc_first_cap[c] = (uint16_t)cap;
    }
}

/* ------------------------------------------------------- thread identity */

/* Tokens handed out so far; a thread's token is this count after its draw. */
static ss_a64 tokens;

/* This thread's token, drawn on first use.  Drawn with a CAS on the TLS
 * word, so that a handler that draws one in between leaves the thread with
 * a single token for its whole life. */
static uint64_t my_token(ss_tls *t)
{
    /* relaxed: only this thread and its handlers touch its TLS. */
    uint64_t me = ss_load_relaxed(&t->token);
    if (SS_LIKELY(me))
        return me;
    /* relaxed: the counter only has to hand out each value once. */
    uint64_t drawn = ss_add_relaxed(&tokens, 1) + 1;
    if (ss_cas_strong_relaxed(&t->token, &me, drawn))
        return drawn;
    return me; /* a handler drew first: its token is ours */
}

/* This thread's ids, asked of the kernel once (never for a pool that must
 * make no system call: then they may stay unknown, 0). */
static void my_ids(const sigsafe_pool *pool, ss_tls *t)
{
    /* relaxed: this thread's own TLS; the ids never change while it lives
     * (a fork child refreshes them in sigsafe__tc_after_fork()). */
    if (ss_load_relaxed(&t->tid) || (pool->flags & SIGSAFE_POOL_NO_SYSCALLS))
        return;
    ss_store_relaxed(&t->pid, (uint32_t)sigsafe__sys_getpid());
    ss_store_relaxed(&t->tid, (uint32_t)sigsafe__sys_gettid());
}

/* Write this thread's identity into record r, which it holds (the key is
 * SS_TC_LOCK | token), then hand r to key `to` (the token, or 0). */
static void rec_publish(ss_tcache *r, ss_tls *t, uint64_t to)
{
    /* release: whoever reads one of these (acquire, in rec_owner()) then
     * sees the key as our lock or later, never as it was before, so its
     * sequence check fails. */
    ss_store_release(&r->tls, (void *)t);
    /* relaxed: this thread's own TLS */
    ss_store_release(&r->tid, ss_load_relaxed(&t->tid));
    ss_store_release(&r->pid, ss_load_relaxed(&t->pid));
    /* release: publishes the identity and the emptied bins; pairs with the
     * acquire loads of the key in rec_owner() and sigsafe__tc_bind(). */
    ss_store_release(&r->key, to);
}

/* Give record r, which the caller holds (SS_TC_LOCK) and whose bins are
 * empty, the caps of a new record. */
static void rec_reset(sigsafe_pool *pool, ss_tcache *r)
{
    for (unsigned c = 0; c < pool->tc_classes; c++) {
        ss_tc_bin *bin = ss_tc_bin_at(pool, r, c);
        bin->cap = pool->tc_first_cap[c];
        bin->live = ss_st_live(c);
        /* relaxed: published to the next holder by rec_publish()'s
         * release. */
        ss_store_relaxed(&bin->frees, 0);
    }
}

/* Take record r from key k (0, or a vanished owner's token) for this
 * thread: 1 if the CAS won. */
static int rec_lock(ss_tcache *r, uint64_t k, uint64_t me)
{
    /* acq_rel: acquire sees the bins and counts as the previous holder
     * left them; the identity stores that follow are release stores (see
     * rec_publish()), so a reader that sees one sees this lock too. */
    return ss_cas_strong_acq_rel(&r->key, &k, SS_TC_LOCK | me);
}

typedef struct ss_owner {
    uint64_t key;
    void *tls;
    uint32_t tid, pid;
} ss_owner;

/* A consistent reading of r's owner: 0 if r is free, locked or changed
 * while being read. */
static int rec_owner(ss_tcache *r, ss_owner *o)
{
    /* acquire: pairs with the release store in rec_publish(). */
    o->key = ss_load_acquire(&r->key);
    if (!o->key || (o->key & SS_TC_LOCK))
        return 0;
    /* acquire: pairs with the release stores in rec_publish(): a value
     * written by a later holder makes the key's reload below see that
     * holder's lock, so an unchanged key (keys never repeat) means these
     * are the owner's own. */
    o->tls = ss_load_acquire(&r->tls);
    o->tid = ss_load_acquire(&r->tid);
    o->pid = ss_load_acquire(&r->pid);
    /* relaxed: ordered after the loads above by their acquire. */
    return ss_load_relaxed(&r->key) == o->key;
}

/*
 * Has r's owner o vanished?  Only a certainty counts: a live thread's
 * record is never taken.  Its TLS block now belongs to this thread, which
 * has another token; or (probe) the kernel has no thread o->tid in the
 * process o->pid, which is ours.  A thread id reused by a newer thread
 * only makes this answer "alive": capacity waits, nothing breaks.
 */
static int rec_vanished(const ss_owner *o, ss_tls *t, int probe)
{
    if (o->tls == (void *)t)
        return 1;
    /* relaxed: this thread's own TLS */
    uint32_t pid = ss_load_relaxed(&t->pid);
    if (!probe || !o->tid || !pid || o->pid != pid)
        return 0; /* unknown ids, or an ancestor process's */
    return sigsafe__sys_tgkill(pid, o->tid, 0) == -3; /* -ESRCH */
}

/* The records of pool that can be held: those ever claimed (a record is
 * marked before it is claimed; see rec_claim()).  Scans of every record
 * read only these, so that the pages of the others stay untouched (in
 * every fork child too). */
static uint64_t used_records(sigsafe_pool *pool)
{
    /* relaxed: a record marked after this load is being claimed by its
     * claimer now, and is none of the caller's business. */
    return ss_load_relaxed(&pool->tc_used);
}

/* Salvage vanished owners' records of pool (at most `want` of them; 0 for
 * all), the first one kept for this thread if `keep`.  Returns the first
 * record salvaged (or NULL), and adds the blocks given back to *blocks. */
static ss_tcache *reclaim_vanished(sigsafe_pool *pool, ss_tls *t, int probe,
                                   int keep, unsigned want, uint32_t *blocks)
{
    uint64_t me = my_token(t);
    ss_tcache *first = NULL;
    unsigned got = 0;
    for (uint64_t u = used_records(pool); u; u &= u - 1) {
        ss_tcache *r = ss_tc_record(pool, (unsigned)__builtin_ctzll(u));
        ss_owner o;
        if (!rec_owner(r, &o) || o.key == me || !rec_vanished(&o, t, probe) ||
            !rec_lock(r, o.key, me))
            continue;
        *blocks += sigsafe__tc_salvage(pool, r);
        rec_publish(r, t, keep && !first ? me : 0);
        if (!first)
            first = r;
        if (++got == want)
            break;
    }
    return first;
}

/* Claim a record for this thread: its own, a vanished owner's on the same
 * TLS block, a free one, then (system calls allowed) one whose owner the
 * kernel says is gone.  NULL if every record is held by a live thread. */
static ss_tcache *rec_claim(sigsafe_pool *pool, ss_tls *t)
{
    uint64_t me = my_token(t);
    for (uint64_t u = used_records(pool); u; u &= u - 1) {
        ss_tcache *r = ss_tc_record(pool, (unsigned)__builtin_ctzll(u));
        /* acquire: pairs with rec_publish(): our own record as we left it. */
        if (ss_load_acquire(&r->key) == me)
            return r;
    }
    int probe = !(pool->flags & SIGSAFE_POOL_NO_SYSCALLS);
    if (probe)
        my_ids(pool, t);
    uint32_t blocks = 0;
    ss_tcache *r = reclaim_vanished(pool, t, 0, 1, 1, &blocks);
    if (r)
        return r;
    void *self = t;
    unsigned start = (unsigned)(((uintptr_t)self >> 6) % SS_TC_RECORDS);
    for (unsigned i = 0; i < SS_TC_RECORDS; i++) {
        unsigned idx = (start + i) % SS_TC_RECORDS;
        r = ss_tc_record(pool, idx);
        /* relaxed: a free record is marked as used before it is claimed
         * (a claim that then fails leaves a harmless mark); scans that
         * read the marks are in tcache.c and stats.c. */
        if (ss_load_relaxed(&r->key) == 0 &&
            !(ss_load_relaxed(&pool->tc_used) & ((uint64_t)1 << idx)))
            ss_or_relaxed(&pool->tc_used, (uint64_t)1 << idx);
        /* A free record's bins are empty (salvage empties them first);
         * a record never used has no caps yet. */
        if (rec_lock(r, 0, me)) {
            rec_reset(pool, r);
            rec_publish(r, t, me);
            return r;
        }
    }
    return probe ? reclaim_vanished(pool, t, 1, 1, 1, &blocks) : NULL;
}

ss_tcache *sigsafe__tc_bind(sigsafe_pool *pool, ss_tls *t)
{
    ss_tls_bind b = t->bind[1];
    if (b.pool == pool && ss_bind_current(&b)) {
        t->bind[1] = t->bind[0];
        t->bind[0] = b;
        return b.tc != sigsafe__tc_none ? b.tc : NULL;
    }
    ss_tcache *tc = pool->tc_classes ? rec_claim(pool, t) : NULL;
    t->bind[1] = t->bind[0];
    /* relaxed: see ss_bind_current(). */
    t->bind[0] = (ss_tls_bind){
        .pool = pool,
        .gen = ss_load_relaxed(&sigsafe__pool_gen),
        .tc = tc ? tc : sigsafe__tc_none,
        .states = pool->states,
        .bin_shift = tc ? pool->tc_bin_shift : 6u,
        .small_base = pool->small_base,
        .small_grains = tc ? (pool->small_end - pool->small_base) >>
                                 SS_GRAIN_SHIFT
                           : 0,
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

/* Flush every bin of this thread's record tc; the blocks given back. */
static uint32_t flush_all(sigsafe_pool *pool, ss_tcache *tc)
{
    uint32_t blocks = 0;
    for (unsigned c = 0; c < pool->tc_classes; c++) {
        /* relaxed: owner only */
        blocks += ss_load_relaxed(&ss_tc_bin_at(pool, tc, c)->n);
        sigsafe__tc_flush(pool, tc, c, 0);
    }
    return blocks;
}

/* Salvage every record of pool whose owner is known to have vanished;
 * the blocks given back. */
static uint32_t reclaim_others(sigsafe_pool *pool, ss_tls *t)
{
    int probe = !(pool->flags & SIGSAFE_POOL_NO_SYSCALLS);
    uint32_t blocks = 0;
    if (probe)
        my_ids(pool, t);
    (void)reclaim_vanished(pool, t, probe, 0, 0, &blocks);
    return blocks;
}

/*
 * The working-set rule (tcache.h, "Capacity"): bin `bin` of class cls ran
 * dry, so double its cap, within what the bin holds and the record's
 * limit.  Over the limit, halve first the caps of the classes that hold
 * the most above their first cap, flushing what they hold beyond it.
 */
static void grow(sigsafe_pool *pool, ss_tcache *tc, ss_tc_bin *bin,
                 unsigned cls)
{
    uint64_t bs = ss_class_size(cls), limit = pool->tc_limit;
    uint32_t cap = bin->cap;
    uint32_t want = cap * 2u > pool->tc_entries ? pool->tc_entries : cap * 2u;
    if (want == cap)
        return; /* as big as a bin holds */
    /* What the record's caps add up to now (a refill's slow path: the
     * sum is cheaper to take than a total to keep right). */
    uint64_t used = 0;
    for (unsigned c = 0; c < pool->tc_classes; c++)
        used += (uint64_t)ss_tc_bin_at(pool, tc, c)->cap * ss_class_size(c);
    while (used + (want - cap) * bs > limit) {
        unsigned victim = SS_TC_CLASSES;
        uint64_t most = 0;
        for (unsigned c = 0; c < pool->tc_classes; c++) {
            ss_tc_bin *b = ss_tc_bin_at(pool, tc, c);
            uint64_t extra = b->cap > pool->tc_first_cap[c]
                                 ? (uint64_t)(b->cap - pool->tc_first_cap[c]) *
                                       ss_class_size(c)
                                 : 0;
            if (c != cls && extra > most) {
                most = extra;
                victim = c;
            }
        }
        if (victim == SS_TC_CLASSES) {
            /* Nothing left to take: grow as far as the limit allows. */
            uint64_t room = used < limit ? (limit - used) / bs : 0;
            want = cap + (uint32_t)(room < want - cap ? room : want - cap);
            break;
        }
        ss_tc_bin *v = ss_tc_bin_at(pool, tc, victim);
        uint32_t keep = v->cap / 2u;
        if (keep < pool->tc_first_cap[victim])
            keep = pool->tc_first_cap[victim];
        sigsafe__tc_flush(pool, tc, victim, keep);
        used -= (uint64_t)(v->cap - keep) * ss_class_size(victim);
        v->cap = (uint16_t)keep;
    }
    bin->cap = (uint16_t)want;
}

uint32_t sigsafe__tc_refill(sigsafe_pool *pool, ss_tcache *tc, unsigned cls)
{
    size_t bs = ss_class_size(cls);
    ss_tc_bin *bin = ss_tc_bin_at(pool, tc, cls);
    grow(pool, tc, bin, cls);
    uint32_t want = bin->cap / 2u;
    want = want < 1 ? 1 : want;
    uint32_t k = charge(pool, bs, want);
    if (!k) {
        /* Give back what this thread holds and what vanished threads left
         * behind, then retry. */
        flush_all(pool, tc);
        k = charge(pool, bs, want);
#if SS_TC_ENABLED
        if (!k && reclaim_others(pool, &sigsafe__tls))
            k = charge(pool, bs, want);
#endif
        if (!k)
            return SS_NIL;
    }
    /* The bin is empty (refills happen only then): its slots, beyond n,
     * hold the ids popped, then the grains of the good ones. */
    uint32_t *ids = bin->g, got = 0;
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
        uint32_t id = ids[i];
        /* relaxed: the block is ours; its state orders nothing. */
        if (ss_load_relaxed(ss_state(pool, id)) == ss_st_free(cls))
            ids[ok++] = (uint32_t)(((uintptr_t)ss_block_addr(pool, id) -
                                    pool->small_base) >> SS_GRAIN_SHIFT);
        else
            sigsafe__list_corrupt(pool, cls, id);
    }
    if (ok < k)
        ss_budget_give(pool, (size_t)(k - ok) * bs);
    if (!ok)
        return SS_NIL;
    /* The last one goes to the caller, the others into the bin.
     * relaxed: owner-only counts (see ss_tcache); counted before n
     * grows, as a flush counts before n drops. */
    uint32_t g = ids[ok - 1];
    ss_store_relaxed(&tc->filled, ss_load_relaxed(&tc->filled) + (ok - 1));
    ss_owner_inc(&tc->allocs);
    /* release: the entries are written before n counts them (the bin
     * discipline). */
    ss_store_release(&bin->n, ok - 1);
    /* relaxed: ours alone until handed out. */
    ss_store_relaxed(&pool->states[ss_state_index(g)], ss_st_live(cls));
    return g;
}

/* Link the blocks at grains gs[0 .. n-1] (n > 0) of class cls and push
 * them onto its shared list; the caller has already taken them out of
 * every bin. */
static void push_grains(sigsafe_pool *pool, unsigned cls, const uint32_t *gs,
                        uint32_t n)
{
    uint32_t first = ss_grain_id(pool, gs[0]), prev = first;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t id = ss_grain_id(pool, gs[i]);
        /* relaxed: published by the release CAS of the push. */
        ss_store_relaxed(ss_link(pool, prev), id);
        prev = id;
    }
    ss_push_chain(pool, cls, first, prev);
}

void sigsafe__tc_flush(sigsafe_pool *pool, ss_tcache *tc, unsigned cls,
                       uint32_t keep)
{
    ss_tc_bin *bin = ss_tc_bin_at(pool, tc, cls);
    uint32_t n = ss_load_relaxed(&bin->n); /* relaxed: owner only */
    if (n <= keep)
        return;
    uint32_t m = n - keep;
    /* relaxed: an owner-only count (see ss_tcache).  Counted before n
     * drops, so that a stats call in between never counts the drained
     * blocks as handed out. */
    ss_store_relaxed(&tc->drained, ss_load_relaxed(&tc->drained) + m);
    /* The entries past keep go back: the newest, as tcmalloc returns its
     * most recent frees.  The bin drops them before they are pushed (the
     * bin discipline, tcache.h); they stay in its slots, which only this
     * thread writes, meanwhile. */
    /* release: see ss_bin_push(); and the push's release CAS below keeps
     * this store before the blocks appear on the shared list. */
    ss_store_release(&bin->n, keep);
    push_grains(pool, cls, bin->g + keep, m);
    ss_budget_give(pool, (size_t)m * ss_class_size(cls));
}

/*
 * Salvage: the record's owner may have stopped anywhere in an operation,
 * so only what the bin discipline guarantees is trusted.  Each of a bin's
 * first n entries that is in the small area, names a free block of the
 * bin's class (its state byte) and is not a repeat of an earlier entry is
 * a block nobody else holds: it goes back to the shared list, and its
 * charge to the budget with it.  Anything else is dropped: a block a cut
 * short take already marked live stays charged, so it shows as in use
 * rather than vanishing.  The bin is emptied before the push, so a
 * salvage that is itself cut short loses blocks but never lists one
 * twice.  The record's counts are folded into the pool's.
 */
uint32_t sigsafe__tc_salvage(sigsafe_pool *pool, ss_tcache *r)
{
    uint32_t grains = (uint32_t)((pool->small_end - pool->small_base) >>
                                 SS_GRAIN_SHIFT);
    uint32_t total = 0;
    uint64_t frees = 0;
    for (unsigned c = 0; c < pool->tc_classes; c++) {
        ss_tc_bin *bin = ss_tc_bin_at(pool, r, c);
        /* relaxed: the record is ours (locked); the acquire of the lock
         * ordered the previous holder's stores before these loads. */
        frees += ss_load_relaxed(&bin->frees);
        uint32_t n = ss_load_relaxed(&bin->n), ok = 0;
        n = n > pool->tc_entries ? pool->tc_entries : n;
        if (!n)
            continue;
        /* Each good entry is kept once: its state is turned live as it is
         * kept (moved down in place), so a repeat no longer reads free.
         * relaxed: a cached block's state is written only by its holder,
         * which is this record's vanished owner, and now by us. */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t g = bin->g[i];
            if (g >= grains)
                continue;
            ss_a8 *st = &pool->states[ss_state_index(g)];
            if (ss_load_relaxed(st) != ss_st_free(c))
                continue;
            ss_store_relaxed(st, ss_st_live(c));
            bin->g[ok++] = g;
        }
        for (uint32_t i = 0; i < ok; i++)
            /* relaxed: published by the push's release CAS */
            ss_store_relaxed(&pool->states[ss_state_index(bin->g[i])],
                             ss_st_free(c));
        /* release: the bin is empty before its blocks are listed. */
        ss_store_release(&bin->n, 0);
        if (!ok)
            continue;
        /* relaxed: the holder's count, as in sigsafe__tc_flush() */
        ss_store_relaxed(&r->drained, ss_load_relaxed(&r->drained) + ok);
        push_grains(pool, c, bin->g, ok);
        ss_budget_give(pool, (size_t)ok * ss_class_size(c));
        total += ok;
    }
    rec_reset(pool, r);
    /* relaxed: counts, exact when quiescent: the record's allocations and
     * frees move to the pool's counters, the record starts from zero. */
    uint64_t in = ss_load_relaxed(&r->filled) + frees;
    uint64_t drained = ss_load_relaxed(&r->drained);
    uint64_t allocs = ss_load_relaxed(&r->allocs) +
                      (in > drained ? in - drained : 0);
    ss_store_relaxed(&r->allocs, 0);
    ss_store_relaxed(&r->filled, 0);
    ss_store_relaxed(&r->drained, 0);
    ss_add_relaxed(&pool->stats.allocs, allocs);
    ss_add_relaxed(&pool->stats.frees, frees);
    return total;
}

int sigsafe__tc_reclaim(sigsafe_pool *pool)
{
#if SS_TC_ENABLED
    if (!pool->tc_classes)
        return 0;
    ss_tls *t = &sigsafe__tls;
    uint32_t blocks = 0;
    /* This thread's own cache first, unless a context below holds it. */
    /* relaxed: this thread's TLS */
    uint64_t me = ss_load_relaxed(&t->token);
    if (me && ss_tc_enter(t)) {
        for (uint64_t u = used_records(pool); u; u &= u - 1) {
            ss_tcache *r = ss_tc_record(pool, (unsigned)__builtin_ctzll(u));
            /* acquire: as in rec_claim() */
            if (ss_load_acquire(&r->key) == me) {
                blocks = flush_all(pool, r);
                break;
            }
        }
        ss_tc_leave(t);
    }
    blocks += reclaim_others(pool, t);
    return blocks != 0;
#else
    (void)pool;
    return 0;
#endif
}

#if SS_TC_ENABLED
/*
 * Salvage, in every pool, the records that `mine` selects: those of token
 * `me` (its own and any claim of it that was cut short) when mine is 1,
 * every other held record when it is 0; each is left free.
 */
static void salvage_held(ss_tls *t, uint64_t me, int mine)
{
    /* relaxed: a bound for the scan, as in sigsafe__registry_find(). */
    uint32_t top = ss_load_relaxed(&sigsafe__registry_top);
    for (uint32_t p = 0; p < top; p++) {
        /* seq_cst: acquire pairs with the registry's release CAS; seq_cst
         * for the exit hook's handshake with pool destroy (above). */
        sigsafe_pool *pool = ss_load_seq_cst(&sigsafe__registry[p]);
        if (!pool || !pool->tc_classes)
            continue;
        for (uint64_t u = used_records(pool); u; u &= u - 1) {
            ss_tcache *r = ss_tc_record(pool, (unsigned)__builtin_ctzll(u));
            /* acquire: as in rec_lock() */
            uint64_t k = ss_load_acquire(&r->key);
            if (!k || ((k & ~SS_TC_LOCK) == me) != mine ||
                !rec_lock(r, k, me))
                continue;
            (void)sigsafe__tc_salvage(pool, r);
            rec_publish(r, t, 0);
        }
    }
}
#endif

void sigsafe__tc_after_fork(void)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    /* busy kept as it was: fork may have been called by a handler that
     * interrupted this thread's own cache operation, which goes on. */
    unsigned char was = ss_load_relaxed(&t->busy); /* relaxed: ours */
    ss_store_relaxed(&t->busy, 1);
    ss_signal_fence_seq_cst();
    uint64_t me = my_token(t);
    /* relaxed: this thread's TLS; the child has new ids. */
    if (ss_load_relaxed(&t->tid)) {
        ss_store_relaxed(&t->pid, (uint32_t)sigsafe__sys_getpid());
        ss_store_relaxed(&t->tid, (uint32_t)sigsafe__sys_gettid());
    }
    /* Threads that were exiting in the parent are not here: a destroy in
     * the child must not wait for them.  relaxed: one thread now. */
    ss_store_relaxed(&sigsafe__tc_exiting, 0);
    /* This thread's records, and those it is locking (its own interrupted
     * claim or salvage), stay as they are; every other holder is gone,
     * whatever it was doing, even mid-salvage: salvage is safe to repeat
     * (the bin discipline). */
    salvage_held(t, me, 0);
    ss_signal_fence_seq_cst();
    ss_store_relaxed(&t->busy, was);
#endif
}

ss_a32 sigsafe__tc_exiting;

void sigsafe__tc_thread_exit(void)
{
#if SS_TC_ENABLED
    ss_tls *t = &sigsafe__tls;
    /* busy for good: a handler that lands from here on, and any use of
     * sigsafe later in this thread's exit, takes the shared path; the
     * records are released below and must not be bound again. */
    ss_store_relaxed(&t->busy, 1); /* relaxed: this thread's own byte */
    ss_signal_fence_seq_cst();
    /* relaxed: this thread's TLS */
    uint64_t me = ss_load_relaxed(&t->token);
    if (!me)
        return; /* it never claimed a record */
    /* seq_cst, with the registry loads of the scan: in one total order
     * with sigsafe_pool_destroy()'s removal and its load of this count,
     * so either the destroy sees this thread counted and waits, or the
     * scan no longer finds the pool. */
    ss_add_seq_cst(&sigsafe__tc_exiting, 1);
    /* Salvage rather than flush: a siglongjmp may have left the record
     * torn (busy was set when the thread left its operation). */
    salvage_held(t, me, 1);
    /* release: the scan's reads of the pools are done before a destroy
     * that sees the count drop unmaps one. */
    ss_sub_release(&sigsafe__tc_exiting, 1);
#endif
}
