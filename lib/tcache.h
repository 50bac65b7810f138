/* SPDX-License-Identifier: MIT */
/*
 * Shared (AS-safe): the per-thread cache in front of the shared free lists.
 *
 * Each thread that uses a pool owns one record of that pool's cache table
 * (in the pool's metadata, so statistics can read every record): per small
 * class up to SS_TC_CAP free block ids, and the thread's alloc/free counts.
 * A thread finds its record through initial-exec TLS, which also holds the
 * thread's `busy` byte.
 *
 * Reentrancy.  An operation on the cache sets busy, works on the record
 * with plain loads and stores, and clears busy; signal fences keep the
 * compiler from moving record accesses outside that window.  A handler on
 * the same thread that finds busy set takes the shared lock-free path and
 * never touches the record; one that finds it clear may use the record
 * itself, because the interrupted code has not read anything from it yet
 * (or has finished with it), and the handler restores busy before it
 * returns.  Nothing ever waits for busy to clear.
 *
 * Records are keyed by the address of the owning thread's TLS block.  A
 * thread that exits leaves its record (and the few free blocks in it)
 * behind; the next thread that gets the same TLS block (glibc reuses the
 * stacks of exited threads) adopts it.  When a pool's table is full, threads
 * without a record use the shared path.  After fork the child's thread keeps
 * its record; the others' blocks wait for adoption.
 *
 * Capacity.  A block is charged to the budget when it leaves the shared
 * lists (into a cache or to the caller) and uncharged when it goes back;
 * bytes_in_use subtracts what the caches hold.  A cache holds at most
 * SS_TC_CAP blocks or 2 KiB per class, and only classes up to 1 KiB are
 * cached, so one thread strands at most about 40 KiB of a pool.
 */
#ifndef SS_TCACHE_H
#define SS_TCACHE_H

#include "internal.h"

#if SIGSAFE_CONTEXT_TLS
#define SS_TC_ENABLED 1
#else
#define SS_TC_ENABLED 0
#endif

typedef struct ss_tls_bind {
    sigsafe_pool *pool;
    uint64_t secret;  /* the pool's: a new pool at the same address differs */
    ss_tcache *tc;    /* NULL: no record; use the shared path */
} ss_tls_bind;

typedef struct ss_tls {
    _Atomic unsigned char busy;
    ss_tls_bind bind[2]; /* the two pools used last, most recent first */
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

/* This thread's record for pool, or NULL.  Call with busy set. */
SS_INLINE ss_tcache *ss_tc_get(sigsafe_pool *pool, ss_tls *t)
{
    if (SS_LIKELY(t->bind[0].pool == pool &&
                  t->bind[0].secret == pool->secret))
        return t->bind[0].tc;
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

/* Count one operation in a record; only its owner writes it. */
SS_INLINE void ss_tc_count(ss_a64 *c)
{
    /* relaxed load + store, not an RMW: the owner is the only writer (busy
     * keeps its handlers out); stats readers see a recent value. */
    ss_store_relaxed(c, ss_load_relaxed(c) + 1);
}

#endif /* SS_TCACHE_H */
