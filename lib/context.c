/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: the default pool, created on first use, and the current context.
 *
 * The first use may come from a signal handler, or from several threads at
 * once: each builder builds a whole pool with raw system calls and offers it
 * with one CAS; the losers unmap theirs.  Nobody waits for anybody.
 */
#include <signal.h>

#include "internal.h"

static ss_aptr default_pool;

/* Offer a built pool as the default; returns the winner. */
sigsafe_pool *sigsafe__default_offer(sigsafe_pool *mine)
{
    void *expect = NULL;
    /* acq_rel: release publishes our pool; acquire, on failure, makes the
     * winner's pool visible (pairs with the same CAS in the winner). */
    if (ss_cas_strong_acq_rel(&default_pool, &expect, (void *)mine))
        return mine;
    sigsafe__pool_unmap(mine);
    return expect;
}

sigsafe_pool *sigsafe__default_pool(void)
{
    /* acquire: pairs with the release CAS in sigsafe__default_offer(). */
    sigsafe_pool *pool = ss_load_acquire(&default_pool);
    if (SS_LIKELY(pool))
        return pool;
    if (sigsafe__pool_build(NULL, &pool) != 0)
        return NULL;
    return sigsafe__default_offer(pool);
}

sigsafe_pool *sigsafe__default_peek(void)
{
    /* acquire: as in sigsafe__default_pool(). */
    return ss_load_acquire(&default_pool);
}

sigsafe_pool *sigsafe_default_pool(void)
{
    return sigsafe__default_pool();
}

/*
 * The context stack.  Per thread, in initial-exec TLS (a few bytes, no
 * __tls_get_addr, no allocation on first touch): a depth and a small array
 * of pools.  Only this thread and handlers running on it touch it, so the
 * fields are atomics used with relaxed order (plain moves) and ordered
 * against a handler on the same thread with signal fences.
 *
 * Push (enter):  depth++, fence, slot[depth-1] = pool.
 * Pop  (leave):  slot[depth-1] = NULL, fence, depth--.
 * A handler landing between the two steps of a push sees the new depth
 * with an empty slot and uses the default pool; its own enter takes the
 * next slot, so it can never overwrite the interrupted one.  A handler
 * landing between the steps of a pop sees an empty slot (default pool) or
 * the old depth; either way it leaves the depth as it found it.  Beyond
 * SS_CTX_DEPTH the depth still counts (so leave stays balanced) but no slot
 * is written: the default pool serves, and the overflow is counted.
 */
#if SIGSAFE_CONTEXT_TLS
typedef struct ss_ctx {
    ss_a32 depth;
    ss_aptr slot[SS_CTX_DEPTH];
} ss_ctx;

static _Thread_local ss_ctx ctx __attribute__((tls_model("initial-exec")));
#endif

ss_a64 sigsafe__ctx_overflows;

void sigsafe_context_enter(sigsafe_pool *pool)
{
#if SIGSAFE_CONTEXT_TLS
    uint32_t d = ss_load_relaxed(&ctx.depth); /* relaxed: this thread only */
    ss_store_relaxed(&ctx.depth, d + 1);
    /* signal fence: the depth is claimed before the slot is written, so a
     * handler that lands here pushes above our slot, never onto it. */
    ss_signal_fence_seq_cst();
    if (SS_LIKELY(d < SS_CTX_DEPTH))
        ss_store_relaxed(&ctx.slot[d], (void *)pool); /* relaxed: ours */
    else
        ss_add_relaxed(&sigsafe__ctx_overflows, 1); /* relaxed: a count */
#else
    (void)pool;
#endif
}

void sigsafe_context_leave(void)
{
#if SIGSAFE_CONTEXT_TLS
    uint32_t d = ss_load_relaxed(&ctx.depth); /* relaxed: this thread only */
    if (SS_UNLIKELY(d == 0))
        return; /* unbalanced leave: ignored */
    if (d <= SS_CTX_DEPTH)
        ss_store_relaxed(&ctx.slot[d - 1], NULL); /* relaxed: ours */
    /* signal fence: the slot is emptied before the depth drops, so a
     * handler never sees a stale pool in a slot it is about to reuse. */
    ss_signal_fence_seq_cst();
    ss_store_relaxed(&ctx.depth, d - 1);
#endif
}

sigsafe_pool *sigsafe_current_pool(void)
{
#if SIGSAFE_CONTEXT_TLS
    uint32_t d = ss_load_relaxed(&ctx.depth); /* relaxed: this thread only */
    if (d && d <= SS_CTX_DEPTH) {
        sigsafe_pool *pool = ss_load_relaxed(&ctx.slot[d - 1]);
        if (pool)
            return pool;
    }
#endif
    return sigsafe__default_pool();
}

/*
 * The reserve: a small pool for a handler that re-entered its own context
 * (a crash handler that faulted inside itself with SA_NODEFER, or a
 * nested handler bound to the same pool) and found that pool exhausted.
 * Returns the pool to retry in, or NULL.
 */
sigsafe_pool *sigsafe__reserve_for(const sigsafe_pool *pool)
{
#if SIGSAFE_CONTEXT_TLS
    /* acquire: pairs with the release store in signal.c. */
    sigsafe_pool *reserve = ss_load_acquire(&sigsafe__reserve_pool);
    uint32_t d = ss_load_relaxed(&ctx.depth); /* relaxed: this thread only */
    if (!reserve || reserve == pool || d < 2)
        return NULL;
    if (d > SS_CTX_DEPTH)
        d = SS_CTX_DEPTH;
    for (uint32_t i = 0; i + 1 < d; i++)
        if (ss_load_relaxed(&ctx.slot[i]) == pool) /* relaxed: as above */
            return reserve;
#else
    (void)pool;
#endif
    return NULL;
}

/*
 * The sigsafe_sigaction() trampoline.  Per signal, the pool bound to it and
 * the user's handler, each one atomic word, so a signal that arrives while
 * either is being changed sees the old or the new one, never a mix.  The
 * user's handler is always called in the three-argument form: on every ABI
 * we support a one-argument handler ignores the extra registers, as it does
 * when the kernel calls it.  No system call: NO_SYSCALLS pools stay so.
 */
ss_aptr sigsafe__bound[SS_NSIG];
ss_aptr sigsafe__user_handler[SS_NSIG];
ss_aptr sigsafe__reserve_pool;

typedef void (*ss_handler3)(int, siginfo_t *, void *);

void sigsafe__trampoline(int signo, siginfo_t *info, void *uctx)
{
    if (signo <= 0 || signo >= (int)SS_NSIG)
        return;
    /* acquire: pairs with the release stores in signal.c, so the pool and
     * handler are fully built before we use them. */
    sigsafe_pool *pool = ss_load_acquire(&sigsafe__bound[signo]);
    ss_handler3 h = (ss_handler3)ss_load_acquire(&sigsafe__user_handler[signo]);
    sigsafe_context_enter(pool ? pool : sigsafe__default_peek());
    if (h)
        h(signo, info, uctx);
    sigsafe_context_leave();
}
