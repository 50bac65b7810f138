/* SPDX-License-Identifier: MIT */
/*
 * Shared: the only includer of <stdatomic.h>.  Every wrapper names its memory
 * order, so that the order is visible at each call site and reviewable next
 * to the comment that justifies it.  No default (seq_cst) operations.
 */
#ifndef SS_ATOMIC_H
#define SS_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "pointer atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");
_Static_assert(ATOMIC_CHAR_LOCK_FREE == 2, "byte atomics must be lock-free");

typedef _Atomic uint64_t ss_a64;
typedef _Atomic uint8_t ss_a8;
typedef _Atomic uint32_t ss_a32;
typedef _Atomic int ss_aint;
typedef _Atomic(void *) ss_aptr;

#define ss_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define ss_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define ss_store_relaxed(p, v) \
    atomic_store_explicit((p), (v), memory_order_relaxed)
#define ss_store_release(p, v) \
    atomic_store_explicit((p), (v), memory_order_release)
#define ss_add_relaxed(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define ss_sub_relaxed(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define ss_or_relaxed(p, v) \
    atomic_fetch_or_explicit((p), (v), memory_order_relaxed)
#define ss_sub_release(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define ss_xchg_relaxed(p, v) \
    atomic_exchange_explicit((p), (v), memory_order_relaxed)
/* On failure the expected value is reloaded with the second order. */
#define ss_cas_weak_acquire(p, e, d)                                        \
    atomic_compare_exchange_weak_explicit((p), (e), (d),                   \
                                          memory_order_acquire,            \
                                          memory_order_acquire)
#define ss_cas_weak_acq_rel(p, e, d)                                        \
    atomic_compare_exchange_weak_explicit((p), (e), (d),                   \
                                          memory_order_acq_rel,            \
                                          memory_order_relaxed)
#define ss_cas_weak_release(p, e, d)                                        \
    atomic_compare_exchange_weak_explicit((p), (e), (d),                   \
                                          memory_order_release,            \
                                          memory_order_relaxed)
#define ss_cas_weak_relaxed(p, e, d)                                        \
    atomic_compare_exchange_weak_explicit((p), (e), (d),                   \
                                          memory_order_relaxed,            \
                                          memory_order_relaxed)
#define ss_cas_strong_relaxed(p, e, d)                                      \
    atomic_compare_exchange_strong_explicit((p), (e), (d),                 \
                                            memory_order_relaxed,          \
                                            memory_order_relaxed)
#define ss_cas_strong_acq_rel(p, e, d)                                      \
    atomic_compare_exchange_strong_explicit((p), (e), (d),                 \
                                            memory_order_acq_rel,          \
                                            memory_order_acquire)
/*
 * A counter with one writer, which readers load relaxed: add 1.  On
 * x86-64 one increment instruction on memory (not locked: there is no
 * other writer; a handler cannot land inside one instruction, and an
 * aligned 8-byte store is seen whole); elsewhere, and under
 * ThreadSanitizer (which cannot see inside asm), a relaxed load and
 * store.  Two instructions fewer than the load and store on x86-64.
 */
#if defined(__SANITIZE_THREAD__)
#define SS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SS_TSAN 1
#endif
#endif
#if defined(__x86_64__) && !defined(SS_TSAN)
static inline void ss_owner_inc(ss_a64 *p)
{
    __asm__ volatile("incq %0" : "+m"(*(volatile uint64_t *)(void *)p));
}
#else
static inline void ss_owner_inc(ss_a64 *p)
{
    ss_store_relaxed(p, ss_load_relaxed(p) + 1);
}
#endif
#define ss_signal_fence_seq_cst() atomic_signal_fence(memory_order_seq_cst)
/* No thread fences: ThreadSanitizer cannot model them.  Where a fence
 * would do, the accesses themselves carry the order. */
/* seq_cst, for the one Dekker-style handshake (pool destroy against an
 * exiting thread's scan of the registry). */
#define ss_load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define ss_add_seq_cst(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define ss_cas_strong_seq_cst(p, e, d)                                      \
    atomic_compare_exchange_strong_explicit((p), (e), (d),                 \
                                            memory_order_seq_cst,          \
                                            memory_order_seq_cst)

#endif /* SS_ATOMIC_H */
