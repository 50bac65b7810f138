/* SPDX-License-Identifier: MIT */
/*
 * Shared (AS-safe): the per-class lock-free free stack.
 *
 * Invariant.  A class's head is one 64-bit word: the id of the first free
 * block (SS_NIL when empty) in the low half and a tag in the high half.
 * Each free block's successor is in an out-of-band link (pool->links for
 * span blocks, span->link1 for slots), never inside the block, so a stray
 * write into a freed block cannot redirect the list.  Links and headers live
 * as long as the pool: nothing is unmapped or made PROT_NONE while a pop
 * may read it (type-stable memory).
 *
 * Callers: any thread and any signal handler, concurrently (MPMC).
 * Progress: lock-free.  A CAS fails only because another push or pop
 * succeeded in between; no context ever waits for another one's store.
 *
 * ABA.  Every pop bumps the tag.  For a pop that read head (A, t) and then
 * next(A) = B to succeed, head must still be (A, t).  If A was popped in
 * the meantime the tag is at least t + 1 and stays so when A is pushed back
 * (push keeps the tag), so the stale CAS fails.  The tag would have to wrap
 * 2^32 pops within one pop's window to fool it.
 *
 * Reentrancy.  A handler that lands anywhere in a push or pop on the same
 * thread and runs its own pushes and pops only makes the interrupted CAS
 * fail (the head changed); the interrupted call then retries with a fresh
 * head.  A block taken by a successful CAS is owned by its popper alone: a
 * handler cannot see it in the list.
 */
#ifndef SS_STACK_H
#define SS_STACK_H

#include "internal.h"

#define SS_TAG_ONE ((uint64_t)1 << 32)

SS_INLINE uint64_t ss_head_make(uint64_t old, uint32_t id)
{
    return (old & ~(uint64_t)0xffffffffu) | id;
}

/* Pop one id, SS_NIL when empty.  Sets *bad on a corrupt head. */
SS_INLINE uint32_t ss_pop(sigsafe_pool *pool, unsigned cls, int *bad)
{
    ss_a64 *h = &pool->heads[cls].word;
    /* acquire: pairs with the release CAS in ss_push*(): the pushed block's
     * link, header and contents are visible once we see it at the head. */
    uint64_t old = ss_load_acquire(h);
    for (;;) {
        uint32_t id = (uint32_t)old;
        if (id == SS_NIL)
            return SS_NIL;
        if (SS_UNLIKELY(id >= pool->id_limit)) {
            *bad = 1;
            return SS_NIL;
        }
        /* relaxed: if another context popped id meanwhile, the tag moved and
         * the CAS below fails, so a stale link is never installed. */
        uint32_t next = ss_load_relaxed(ss_link(pool, id));
        uint64_t neu = ((old & ~(uint64_t)0xffffffffu) + SS_TAG_ONE) | next;
        /* acquire (success and failure): a reloaded head may name a block
         * pushed since; pairs with the release CAS in ss_push*(). */
        if (ss_cas_weak_acquire(h, &old, neu))
            return id;
    }
}

/* Push the chain first..last (already linked among themselves). */
SS_INLINE void ss_push_chain(sigsafe_pool *pool, unsigned cls, uint32_t first,
                             uint32_t last)
{
    ss_a64 *h = &pool->heads[cls].word;
    ss_a32 *tail = ss_link(pool, last);
    /* relaxed: only the expected value of the CAS, which validates it. */
    uint64_t old = ss_load_relaxed(h);
    do {
        /* relaxed: published by the release CAS right after. */
        ss_store_relaxed(tail, (uint32_t)old);
        /* release: publishes the link, the span header and the block's
         * contents; pairs with the acquire loads in ss_pop(). */
    } while (!ss_cas_weak_release(h, &old, ss_head_make(old, first)));
}

#endif /* SS_STACK_H */
