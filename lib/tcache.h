/* SPDX-License-Identifier: MIT */
/*
 * Shared (AS-safe): the per-thread cache in front of the shared free lists.
 *
 * Each thread that uses a pool owns one record of that pool's cache table
 * (in the pool's metadata, so statistics can read every record): per small
 * class a bin of free blocks (up to its cap: see Capacity), each kept as
 * its offset from the small area in 16-byte grains, and the
 * thread's alloc/free counts.  A thread finds its record through
 * initial-exec TLS, which also holds the thread's `busy` byte and a copy of
 * the few pool fields the fast paths need (see ss_tls_bind).
 *
 * Reentrancy.  An operation on the cache sets busy, works on the record
 * with plain loads and stores, and clears busy; signal fences keep the
 * compiler from moving record accesses outside that window.  A handler on
 * the same thread that finds busy set takes the shared lock-free path and
 * never touches the record; one that finds it clear may use the record
 * itself, because the interrupted code has not read anything from it yet
 * (or has finished with it), and the handler restores busy before it
 * returns.  Nothing ever waits for busy to clear.  The bindings in TLS
 * are read only with busy set too: a handler that finds busy clear may
 * rebind them, so reading them first could mix two pools' fields.
 *
 * Records.  Each thread draws a token once (a global counter: tokens are
 * never reused) and a record it claims is keyed by that token, so a new
 * thread never mistakes a dead thread's record for its own, even on the
 * same stack and TLS block.  The record also names its owner's TLS block
 * and, where system calls are allowed, its thread and process ids.  A
 * record whose owner vanished -- it exited, it was left behind in a fork
 * child, or a siglongjmp abandoned an operation on it -- may be torn
 * (stopped in the middle of an operation), so it is never used as it is:
 * it is salvaged (sigsafe__tc_salvage()), each cached block checked
 * against its state byte and duplicates dropped, and the good blocks go
 * back to the shared lists.  An owner is known to have vanished when
 *   - a live thread with another token has the record's TLS block (two
 *     live threads never share one): checked when a thread claims a record;
 *   - the kernel says its thread id is gone (tgkill with signal 0 answers
 *     ESRCH; pools that allow system calls): checked when a pool runs
 *     short of memory or out of free records;
 *   - a fork child's only thread is another thread (pthread_atfork, when
 *     the program called a set-up function);
 *   - the owner itself says so at its exit (a pthread key destructor on
 *     each thread that made a set-up call: sigsafe__tc_thread_exit()).
 * See docs/design.md for why a torn record is safe to salvage.
 *
 * Bin discipline (what makes salvage sound).  Every owner operation keeps
 * this true at each of its steps, in the order its stores become visible:
 * each of a bin's first n entries names a block that no list, other cache
 * or caller holds, whose state byte is free (or live, if a take was cut
 * short: salvage skips it).  So a new entry is written before n grows
 * (release stores of n), and a flush shrinks n before the shared push.
 *
 * Capacity.  A block is charged to the budget when it leaves the shared
 * lists (into a cache or to the caller) and uncharged when it goes back;
 * bytes_in_use subtracts what the caches hold.  Only classes up to 1 KiB
 * are cached.  Each bin has a cap, the blocks it may hold now, sized by
 * the thread's working set: a new record starts each class at
 * tc_first_cap (capacity / 2048 bytes of it, 2 to 16 blocks), and a bin
 * that runs dry doubles its cap, up to what the bin can hold
 * (tc_entries: 28 to 252 blocks by pool size).  A free into a full bin
 * sends the newest half of it back in one push.  The caps of one record
 * add up to at most tc_limit bytes (capacity / 64, 40 KiB to 1 MiB): a
 * class that would grow past it first halves the caps of the classes
 * holding the most (stealing, as tcmalloc does), so one thread strands
 * at most tc_limit bytes, and a pool short of memory takes back what
 * vanished threads and the caller hold (sigsafe__tc_reclaim()).
 */
#ifndef SS_TCACHE_H
#define SS_TCACHE_H

#include "internal.h"

#if SIGSAFE_CONTEXT_TLS
#define SS_TC_ENABLED 1
#else
#define SS_TC_ENABLED 0
#endif

/*
 * A binding of this thread to one pool's record, with what the fast paths
 * need from the pool copied next to it (one cache line of TLS, no pool
 * header reads).  Valid while `gen` equals sigsafe__pool_gen: a pool
 * destroyed since may have been replaced by another at the same address.
 * A bound pool without a record of this thread has sigsafe__tc_none here,
 * whose bins are all empty and full at once; small_grains is 0 in an empty
 * binding and in that one, so no pointer matches it.
 */
typedef struct ss_tls_bind {
    sigsafe_pool *pool;
    uint64_t gen;
    ss_tcache *tc;
    ss_a8 *states;        /* pool->states */
    uintptr_t small_base; /* pool->small_base */
    uintptr_t small_grains; /* (pool->small_end - small_base) >> 4 */
    unsigned bin_shift;   /* pool->tc_bin_shift */
} ss_tls_bind;

typedef struct ss_tls {
    _Alignas(64) _Atomic unsigned char busy; /* busy and bind[0]: one line */
    ss_tls_bind bind[2]; /* the two pools used last, most recent first */
    ss_a64 token;        /* this thread's record key; 0 until drawn */
    ss_a32 tid;          /* this thread's id, 0 until asked */
    ss_a32 pid;          /* this process's id when it was asked */
} ss_tls;

#if SS_TC_ENABLED
SS_HIDDEN extern _Thread_local ss_tls sigsafe__tls
    __attribute__((tls_model("initial-exec")));
#endif

/* tcache.c */
SS_HIDDEN ss_tcache *sigsafe__tc_bind(sigsafe_pool *pool, ss_tls *t);
SS_HIDDEN uint32_t sigsafe__tc_refill(sigsafe_pool *pool, ss_tcache *tc,
                                      unsigned cls);
SS_HIDDEN void sigsafe__tc_flush(sigsafe_pool *pool, ss_tcache *tc,
                                 unsigned cls, uint32_t keep);
/* Give this pool the blocks of records whose owners vanished (and this
 * thread's own cached blocks, if a context below does not hold them);
 * nonzero if any capacity came back.  For a pool short of memory. */
SS_HIDDEN int sigsafe__tc_reclaim(sigsafe_pool *pool);
/* Empty record r's bins into the shared lists, trusting nothing in them;
 * the caller holds r (SS_TC_LOCK).  Returns the blocks given back. */
SS_HIDDEN uint32_t sigsafe__tc_salvage(sigsafe_pool *pool, ss_tcache *r);
/* In a fork child: salvage every record of every pool that is not this
 * thread's.  Registered with pthread_atfork by the set-up side. */
SS_HIDDEN void sigsafe__tc_after_fork(void);
/* At this thread's exit (a pthread key's destructor, armed by the set-up
 * functions): salvage this thread's records in every pool, and keep its
 * cache off from now on. */
SS_HIDDEN void sigsafe__tc_thread_exit(void);
/* Threads inside sigsafe__tc_thread_exit() now; a pool destroy waits for
 * 0 after unlisting the pool (pool.c). */
SS_HIDDEN extern ss_a32 sigsafe__tc_exiting;
/* The bin slot (size class + 1) of a cached request of 16 * i bytes,
 * i <= SS_TC_MAX_SIZE / 16, by table. */
SS_HIDDEN extern const uint8_t sigsafe__tc_slot[SS_TC_MAX_SIZE / 16 + 1];


/* 1 if binding b is current (not made before a pool was destroyed). */
SS_INLINE int ss_bind_current(const ss_tls_bind *b)
{
    /* relaxed: a destroy that happens-before this call (as the API asks of
     * destroys) is seen; one racing with it is the caller's bug. */
    return b->gen == ss_load_relaxed(&sigsafe__pool_gen);
}

/* What a binding holds for a pool without a record of this thread: a
 * record whose bins of 64 bytes (bin_shift 6) hold nothing and may hold
 * nothing, so that the fast paths miss without a test of their own. */
SS_HIDDEN extern ss_tcache sigsafe__tc_none[1 + SS_TC_CLASSES];
/* By state byte: 1 for a live block of a cached class, else 0. */
SS_HIDDEN extern const uint8_t sigsafe__tc_live_cached[256];

/* This thread's record for pool, or NULL.  Call with busy set. */
SS_INLINE ss_tcache *ss_tc_get(sigsafe_pool *pool, ss_tls *t)
{
    if (SS_LIKELY(t->bind[0].pool == pool && ss_bind_current(&t->bind[0]))) {
        ss_tcache *tc = t->bind[0].tc;
        return tc != sigsafe__tc_none ? tc : NULL;
    }
    return sigsafe__tc_bind(pool, t);
}

/* Claim the cache: 0 if a context below us on this thread holds it. */
SS_INLINE int ss_tc_enter(ss_tls *t)
{
    /* relaxed + signal fence: only this thread and its handlers touch
     * busy; the fence keeps record accesses after the claim. */
    if (ss_load_relaxed(&t->busy))
        return 0;
    ss_store_relaxed(&t->busy, 1);
    ss_signal_fence_seq_cst();
    return 1;
}

SS_INLINE void ss_tc_leave(ss_tls *t)
{
    /* signal fence: every record access is done before busy clears. */
    ss_signal_fence_seq_cst();
    ss_store_relaxed(&t->busy, 0);
}

/*
 * A bin's stack: g[0 .. n-1], the newest last.  Pop: take g[n-1], then
 * n - 1.  Push: write g[n], then n + 1 (the bin discipline's order).
 */
SS_INLINE uint32_t ss_bin_pop(ss_tc_bin *bin, size_t n)
{
    uint32_t g = bin->g[n - 1];
    /* relaxed: owner only (busy is set); stats read it. */
    ss_store_relaxed(&bin->n, (uint32_t)(n - 1));
    return g;
}

SS_INLINE void ss_bin_push(ss_tc_bin *bin, size_t n, uint32_t g)
{
    bin->g[n] = g;
    /* release: the entry is written before n counts it (the bin
     * discipline above), for whoever salvages a record whose owner
     * stopped here: a handler that siglongjmps, a fork child.  A plain
     * store on x86-64. */
    ss_store_release(&bin->n, (uint32_t)(n + 1));
}

/* Hand out the newest block of a bin that holds n > 0 (busy set): mark it
 * live and return its address.  states and small_base are the pool's. */
SS_INLINE void *ss_tc_take(ss_a8 *states, uintptr_t small_base,
                           ss_tc_bin *bin, size_t n)
{
    uint32_t g = ss_bin_pop(bin, n);
    /* relaxed: a cached block is this thread's alone.  Not counted: see
     * ss_tcache. */
    ss_store_relaxed(&states[ss_state_index(g)], bin->live);
    return (void *)(small_base + ((uintptr_t)g << SS_GRAIN_SHIFT));
}

/* Keep a freed block (live bit already cleared) in a bin holding n blocks,
 * n below its cap (busy set). */
SS_INLINE void ss_tc_put(ss_tc_bin *bin, size_t n, uint32_t g)
{
    ss_bin_push(bin, n, g);
    /* only the owner writes it (busy keeps its handlers out) */
    ss_owner_inc(&bin->frees);
}

#endif /* SS_TCACHE_H */
