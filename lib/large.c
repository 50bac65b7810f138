/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: large blocks (over 16 KiB; every block of a GUARD_EACH pool).
 *
 * The large area is one power-of-two range, cut by a lock-free buddy tree.
 * A block of `pages` usable pages takes the smallest power-of-two node
 * that holds them and one page more: the usable pages start the node, so
 * the byte at p + usable is the first page of the node's tail, which is
 * never made accessible (the block's guard).  Freed nodes merge with their
 * buddies simply because the tree counts what is in use below each node:
 * an emptied pool can serve its largest block again.
 *
 * The tree.  One 32-bit word per node: SS_LG_ALLOC when the node itself
 * is a block, else the number of leaves in use below it.  Taking node n:
 * CAS n from 0 to ALLOC, then add n's leaves to each ancestor with a CAS
 * that refuses an ancestor marked ALLOC (someone took the ancestor whole
 * meanwhile): then the ancestors counted so far are uncounted and n is
 * given back.  A node whose count is not 0 can never become ALLOC, so two
 * blocks never overlap once both takes have finished, and only a take that
 * has finished hands its block out.  Nobody waits: a take that loses
 * starts over on a tree that someone else has changed.  Giving node n
 * back: clear it, then uncount it from its ancestors.  A handler that
 * lands anywhere in either finds the tree in a state that another thread
 * could have left it in, and works on it the same way.
 *
 * The block's state is one word per leaf, at the block's first leaf: live,
 * the node's size (log2) and the usable pages.  A free flips live off with
 * a CAS (one winner between racing frees), unmaps the pages (ordinary
 * pools: mmap of fresh PROT_NONE pages over them, one system call), then
 * gives the node back.  A take maps them (mprotect) once the node is its.
 * Pools that make no system call after create have the whole area
 * accessible from create: their large blocks have no guard page.  Other
 * pools keep at most SS_LARGE_LIVE_MAX blocks live (each costs mappings).
 */
#include <sys/mman.h>

#include "annotate.h"
#include "internal.h"
#include "sys.h"

#define SS_LG_ALLOC 0x80000000u
#define SS_LG_LIVE 0x80000000u
#define SS_LG_K_SHIFT 25
#define SS_LG_PAGES ((1u << SS_LG_K_SHIFT) - 1)

SS_INLINE uint32_t info_make(int live, unsigned k, uint32_t pages)
{
    return (live ? SS_LG_LIVE : 0u) | ((uint32_t)k << SS_LG_K_SHIFT) | pages;
}

SS_INLINE unsigned info_k(uint32_t v)
{
    return (v >> SS_LG_K_SHIFT) & 63u;
}

/* Leaves below a node of size 2^k. */
SS_INLINE uint32_t leaves_of(const sigsafe_pool *pool, unsigned k)
{
    return (uint32_t)1 << (k - pool->large_leaf_k);
}

/* A node of size 2^k, at depth top_k - k, holding offset off. */
SS_INLINE uint32_t node_at(const sigsafe_pool *pool, unsigned k, uintptr_t off)
{
    return ((uint32_t)1 << (pool->large_top_k - k)) + (uint32_t)(off >> k);
}

/*
 * A node at depth `want` that is free (0), reached through ancestors that
 * are not blocks themselves: the leftmost one, by a depth-first walk that
 * skips full subtrees.  0 if none (the area is too fragmented or full).
 * A count of 0 above `want` is not taken on trust: a take that a handler
 * interrupted may have marked a node below before counting it there, so
 * the walk goes all the way down and finds its way around that node.
 */
static uint32_t find_free(sigsafe_pool *pool, unsigned want)
{
    uint32_t stack[2 * 40];
    unsigned dstack[2 * 40], sp = 0;
    stack[sp] = 1;
    dstack[sp++] = 0;
    unsigned span = pool->large_top_k - pool->large_leaf_k;
    while (sp) {
        uint32_t x = stack[--sp];
        unsigned d = dstack[sp];
        /* acquire: pairs with the release stores below, so a node seen
         * free was given back whole. */
        uint32_t w = ss_load_acquire(&pool->tree[x]);
        if (w & SS_LG_ALLOC)
            continue;
        if (d == want) {
            if (w == 0)
                return x;
            continue;
        }
        if (w >= ((uint32_t)1 << (span - d)))
            continue; /* full */
        stack[sp] = 2 * x + 1; /* the right child after the left */
        dstack[sp++] = d + 1;
        stack[sp] = 2 * x;
        dstack[sp++] = d + 1;
    }
    return 0;
}

/* Take a node of size 2^k; 0 if none is free. */
static uint32_t tree_take(sigsafe_pool *pool, unsigned k)
{
    unsigned want = pool->large_top_k - k;
    uint32_t leaves = leaves_of(pool, k);
    for (;;) {
        uint32_t n = find_free(pool, want), zero = 0;
        if (!n)
            return 0;
        /* acq_rel: the node is ours from here; pairs with the release
         * store that gave it back.  A failure means someone changed it:
         * the next walk sees that. */
        if (!ss_cas_strong_acq_rel(&pool->tree[n], &zero,
                                   SS_LG_ALLOC | leaves))
            continue;
        uint32_t a = n >> 1;
        for (; a; a >>= 1) {
            /* relaxed: a first look; the CAS decides. */
            uint32_t w = ss_load_relaxed(&pool->tree[a]);
            do {
                if (w & SS_LG_ALLOC)
                    break;
                /* acq_rel: orders the count with the takes and gives of
                 * other nodes below a (see find_free()). */
            } while (!ss_cas_weak_acq_rel(&pool->tree[a], &w, w + leaves));
            if (w & SS_LG_ALLOC)
                break;
        }
        if (!a)
            return n;
        /* An ancestor was taken whole: uncount below it, give n back.
         * The nodes counted have a count above 0, so none of them can
         * have become a block meanwhile; the next walk skips a. */
        for (uint32_t b = n >> 1; b != a; b >>= 1)
            ss_sub_release(&pool->tree[b], leaves);
        ss_store_release(&pool->tree[n], 0);
    }
}

/* Give node n (of size 2^k) back. */
static void tree_give(sigsafe_pool *pool, uint32_t n, unsigned k)
{
    uint32_t leaves = leaves_of(pool, k);
    /* release: whoever takes the node next (acquire) sees it whole. */
    ss_store_release(&pool->tree[n], 0);
    for (uint32_t a = n >> 1; a; a >>= 1)
        ss_sub_release(&pool->tree[a], leaves); /* release: as above */
}

SS_INLINE unsigned log2_up(size_t n)
{
    return n <= 1 ? 0 : 64u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
}

/* Size (log2) of the node for a block of `pages` usable pages. */
SS_INLINE unsigned node_k(const sigsafe_pool *pool, size_t pages)
{
    unsigned k = log2_up((pages + 1) * SS_PAGE);
    return k < pool->large_leaf_k ? pool->large_leaf_k : k;
}

size_t sigsafe__large_usable_for(const sigsafe_pool *pool, size_t size)
{
    size_t pages = (size + SS_PAGE - 1) / SS_PAGE;
    pages = pages ? pages : 1;
    if (!pool->large_top_k || node_k(pool, pages) > pool->large_top_k)
        return 0;
    return pages * SS_PAGE;
}

/* Count one more large block live, within the cap; 0 if at the cap.  A
 * CAS, never overshoot-then-undo: a failing caller cannot make another one
 * fail.  Pools mapped at create spend no mapping on a block: no cap. */
static int live_take(sigsafe_pool *pool)
{
    if (pool->mapped_at_create)
        return 1;
    /* relaxed: a count; the blocks themselves are handed over elsewhere. */
    uint32_t n = ss_load_relaxed(&pool->large_live);
    do {
        if (n >= SS_LARGE_LIVE_MAX)
            return 0;
    } while (!ss_cas_weak_relaxed(&pool->large_live, &n, n + 1));
    return 1;
}

static void live_give(sigsafe_pool *pool)
{
    if (!pool->mapped_at_create)
        ss_sub_relaxed(&pool->large_live, 1); /* relaxed: as above */
}

void *sigsafe__large_alloc(sigsafe_pool *pool, size_t usable)
{
    size_t pages = usable / SS_PAGE;
    unsigned k = node_k(pool, pages);
    if (!live_take(pool))
        return NULL;
    uint32_t n = tree_take(pool, k);
    if (!n) {
        live_give(pool);
        return NULL;
    }
    uintptr_t off = (uintptr_t)(n - ((uint32_t)1 << (pool->large_top_k - k)))
                    << k;
    void *p = (void *)(pool->large_base + off);
    /* Its first use: the usable pages become accessible, the node's tail
     * stays as reserved (the guard).  Failing that, it goes back. */
    if (!pool->mapped_at_create &&
        sigsafe__sys_mprotect(p, usable, PROT_READ | PROT_WRITE) != 0) {
        tree_give(pool, n, k);
        live_give(pool);
        return NULL;
    }
    if (!ss_prefaulted(pool)) /* relaxed: a count */
        ss_add_relaxed(&pool->mapped, usable);
    /* relaxed: a high-water mark for the memory checkers (annotate.h). */
    uint64_t end = off + ((uint64_t)1 << k);
    uint64_t top = ss_load_relaxed(&pool->large_used_top);
    while (top < end &&
           !ss_cas_weak_relaxed(&pool->large_used_top, &top, end))
        ;
    /* release: the block's state is set before the block is handed out;
     * a free (given the pointer through the caller's own ordering) reads
     * it back. */
    ss_store_release(&pool->linfo[off >> pool->large_leaf_k],
                     info_make(1, k, (uint32_t)pages));
    return p;
}

/* The block (live or freed, as asked) whose node of size 2^k starts at
 * offset start, if that is what the leaf word there says; its usable
 * bytes, or 0. */
static size_t block_at(const sigsafe_pool *pool, uintptr_t start, unsigned k,
                       int live)
{
    if (start >= ((uintptr_t)1 << pool->large_top_k) ||
        (start & (((uintptr_t)1 << k) - 1)))
        return 0;
    /* relaxed: a snapshot for a report */
    uint32_t v = ss_load_relaxed(&pool->linfo[start >> pool->large_leaf_k]);
    if (!v || info_k(v) != k || ((v & SS_LG_LIVE) != 0) != live)
        return 0;
    return (size_t)(v & SS_LG_PAGES) * SS_PAGE;
}

int sigsafe__large_find(const sigsafe_pool *pool, uintptr_t a, uint32_t *leaf)
{
    uintptr_t off = a - pool->large_base;
    if (off >= ((uintptr_t)1 << pool->large_top_k) || !pool->large_top_k ||
        (off & (((uintptr_t)1 << pool->large_leaf_k) - 1)))
        return 0;
    uint32_t l = (uint32_t)(off >> pool->large_leaf_k);
    /* acquire: pairs with the release store in sigsafe__large_alloc(). */
    uint32_t v = ss_load_acquire(&pool->linfo[l]);
    /* A block (live or freed) starts here: its node is aligned to it. */
    if (!v || (off & (((uintptr_t)1 << info_k(v)) - 1)))
        return 0;
    /* A freed block's word stays; if a live block has since taken a node
     * around it, a is inside that block: not the start of a block. */
    if (!(v & SS_LG_LIVE))
        for (unsigned k = info_k(v) + 1; k <= pool->large_top_k; k++)
            if (block_at(pool, off & ~(((uintptr_t)1 << k) - 1), k, 1))
                return 0;
    *leaf = l;
    return 1;
}

size_t sigsafe__large_usable(const sigsafe_pool *pool, uint32_t leaf)
{
    /* relaxed: a snapshot (as is_live() in lookup.c). */
    uint32_t v = ss_load_relaxed(&pool->linfo[leaf]);
    return (v & SS_LG_LIVE) ? (size_t)(v & SS_LG_PAGES) * SS_PAGE : 0;
}

const char *sigsafe__large_free(sigsafe_pool *pool, uint32_t leaf)
{
    ss_a32 *st = &pool->linfo[leaf];
    /* relaxed: a first look; the CAS below decides. */
    uint32_t v = ss_load_relaxed(st);
    /* relaxed: the word's modification order decides which of two racing
     * frees wins. */
    if (!(v & SS_LG_LIVE) || !ss_cas_strong_relaxed(st, &v, v & ~SS_LG_LIVE))
        return "double free (block is not live)";
    unsigned k = info_k(v);
    size_t usable = (size_t)(v & SS_LG_PAGES) * SS_PAGE;
    uintptr_t off = (uintptr_t)leaf << pool->large_leaf_k;
    void *p = (void *)(pool->large_base + off);
    SS_ANNOTATE_FREE(pool, p, usable);
    if (!pool->mapped_at_create) {
        /* Fresh PROT_NONE pages over the block: its memory goes back to
         * the system and a use after free faults.  If the kernel refuses
         * (no mapping left to split), the pages at least stop being
         * accessible. */
        long err;
        if (!sigsafe__sys_mmap(p, usable, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                                   MAP_FIXED,
                               &err))
            (void)sigsafe__sys_mprotect(p, usable, PROT_NONE);
    }
    if (!ss_prefaulted(pool)) /* relaxed: a count */
        ss_sub_relaxed(&pool->mapped, usable);
    tree_give(pool, node_at(pool, k, off), k);
    live_give(pool);
    ss_add_relaxed(&pool->stats.frees, 1); /* relaxed: a count */
    ss_budget_give(pool, usable);
    return NULL;
}

/* A live block that starts at offset start (any size); its usable bytes. */
static size_t live_starting(const sigsafe_pool *pool, uintptr_t start,
                            unsigned *k)
{
    for (*k = pool->large_leaf_k; *k <= pool->large_top_k; (*k)++) {
        size_t u = block_at(pool, start, *k, 1);
        if (u)
            return u;
    }
    return 0;
}

static int fault_is(ss_fault *f, ss_fault_kind kind, uintptr_t block,
                    size_t size, uintptr_t addr)
{
    f->kind = kind;
    f->block = block;
    f->size = size;
    f->offset = (intptr_t)(addr - block);
    return 1;
}

/*
 * A fault in the large area: past the usable end of the live block whose
 * node holds it (an overrun), within half a page below a live block (an
 * underrun: one-byte errors land at the two ends), or in a freed block (a
 * use after free).  0 if none of these.
 */
int sigsafe__large_fault(sigsafe_pool *pool, uintptr_t addr, ss_fault *f)
{
    uintptr_t off = addr - pool->large_base;
    if (!pool->large_top_k || off >= ((uintptr_t)1 << pool->large_top_k))
        return 0;
    uintptr_t base = pool->large_base, leaf = (uintptr_t)1 << pool->large_leaf_k;
    /* The first leaf boundary at least half a page above: an underrun's. */
    uintptr_t above = (off + SS_PAGE / 2) & ~(leaf - 1);
    unsigned ka;
    size_t ua = above > off ? live_starting(pool, above, &ka) : 0;
    for (unsigned k = pool->large_leaf_k; k <= pool->large_top_k; k++) {
        uintptr_t start = off & ~(((uintptr_t)1 << k) - 1);
        size_t u = block_at(pool, start, k, 1);
        if (!u)
            continue;
        if (off < start + u)
            return 0; /* inside a live block: no guard of ours */
        if (ua && off - (start + u) >= SS_PAGE / 2)
            return fault_is(f, SS_FAULT_UNDERFLOW, base + above, ua, addr);
        return fault_is(f, SS_FAULT_OVERFLOW, base + start, u, addr);
    }
    if (ua)
        return fault_is(f, SS_FAULT_UNDERFLOW, base + above, ua, addr);
    for (unsigned k = pool->large_leaf_k; k <= pool->large_top_k; k++) {
        uintptr_t start = off & ~(((uintptr_t)1 << k) - 1);
        size_t u = block_at(pool, start, k, 0);
        if (u && off < start + u)
            return fault_is(f, SS_FAULT_USE_AFTER_FREE, base + start, u,
                            addr);
    }
    return 0;
}
