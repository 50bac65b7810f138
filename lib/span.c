/* SPDX-License-Identifier: MIT */
/*
 * AS-safe: carving spans and slots, the allocation slow path, and the
 * pool-building core (also used when the first sigsafe_alloc() creates the
 * default pool, possibly inside a signal handler).  Only raw system calls,
 * and those only while a pool is built or unmapped.
 */
#include <string.h>
#include <sys/mman.h>

#include "annotate.h"
#include "internal.h"
#include "stack.h"
#include "sys.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define PAGE_UP(x) (((x) + SS_PAGE - 1) & ~(size_t)(SS_PAGE - 1))

/* ------------------------------------------------------------ carving */

/*
 * Publish a freshly carved span's header.  The fields are written while no
 * other context can know the span (the frontier CAS gave it to us alone);
 * the release store of the magic makes them visible to sigsafe__locate(),
 * which reads the magic with acquire.
 */
static void header_publish(sigsafe_pool *pool, uint32_t h, uintptr_t start,
                           size_t bs, uint32_t n, unsigned cls)
{
    ss_span *s = &pool->spans[h];
    s->start = start;
    s->block_size = bs;
    s->recip = n > 1 ? (uint32_t)(((uint64_t)1 << 32) / bs + 1) : 0;
    s->nblocks = n;
    s->cls = cls;
    /* release: publishes the fields above; pairs with the acquire load in
     * sigsafe__locate(). */
    ss_store_release(&s->magic, pool->secret ^ h);
}

/* Take the next span of the small area; SS_NIL when none is left. */
static uint32_t frontier_take(ss_a32 *frontier, uint32_t limit)
{
    /* relaxed: the CAS alone hands out each index once. */
    uint32_t f = ss_load_relaxed(frontier);
    do {
        if (f >= limit)
            return SS_NIL;
    } while (!ss_cas_weak_relaxed(frontier, &f, f + 1));
    return f;
}

ss_a8 sigsafe__state_void;

/* Mark a block just popped off class cls's list live; 0 if it was not a
 * free block of that class (a corrupt list), whose state is left alone. */
static int mark_live(sigsafe_pool *pool, uint32_t id, unsigned cls)
{
    uint8_t expect = ss_st_free(cls);
    /* relaxed: the state's modification order is all the check needs. */
    return ss_cas_strong_relaxed(ss_state(pool, id), &expect,
                                 ss_st_live(cls));
}

/* Carve a new span for small class `cls`: keep block 0, push the rest
 * (all of it when `keep` is 0; then SS_NIL means success, 0 failure). */
static uint32_t carve(sigsafe_pool *pool, unsigned cls, int keep)
{
    uint32_t bs = (uint32_t)ss_class_size(cls);
    uint32_t n = pool->span_usable / bs;
    if (n > SS_ID_MASK + 1) /* ids hold 4096 blocks; big spans leave room */
        n = SS_ID_MASK + 1;
    uint32_t seq = frontier_take(&pool->small_frontier, pool->small_spans);
    if (seq == SS_NIL)
        return keep ? SS_NIL : 0;
    uint32_t h = ss_zone_slot(pool, seq);
    uintptr_t base = pool->small_base + ((uintptr_t)h << pool->span_shift);
    /* The span's first use: one mprotect makes it readable and writable
     * (it merges with the zone's spans carved before it into one
     * mapping).  Failing that (no memory, no mapping left), the span is
     * lost and the allocation fails. */
    if (!pool->mapped_at_create &&
        sigsafe__sys_mprotect((void *)base, (size_t)1 << pool->span_shift,
                              PROT_READ | PROT_WRITE) != 0)
        return keep ? SS_NIL : 0;
    SS_ANNOTATE_SPAN_MAPPED((void *)base, (size_t)1 << pool->span_shift);
    /* Right-aligned: the last block ends at the span's end. */
    uintptr_t start = base + (pool->span_usable - (uintptr_t)n * bs);
    header_publish(pool, h, start, bs, n, cls);
    /* relaxed: the links and states are published by the release CAS of
     * the push (block 0, when kept, is ours alone). */
    for (uint32_t i = 0; i + 1 < n; i++)
        ss_store_relaxed(&pool->links[ss_id(h, i)], ss_id(h, i + 1));
    for (uint32_t i = 0; i < n; i++)
        ss_store_relaxed(ss_state_at(pool, start + (uintptr_t)i * bs),
                         i == 0 && keep ? ss_st_live(cls) : ss_st_free(cls));
    if (!ss_prefaulted(pool)) /* relaxed: a count */
        ss_add_relaxed(&pool->mapped, (size_t)n * bs + sizeof(ss_span) +
                                          (size_t)n * sizeof(uint32_t));
    if (!keep) {
        ss_push_chain(pool, cls, ss_id(h, 0), ss_id(h, n - 1));
        return SS_NIL;
    }
    if (n > 1)
        ss_push_chain(pool, cls, ss_id(h, 1), ss_id(h, n - 1));
    return ss_id(h, 0);
}

int sigsafe__carve_span(sigsafe_pool *pool, unsigned cls)
{
    return carve(pool, cls, 0) == SS_NIL;
}

/*
 * A small class whose stack was empty: carve a span; failing that (capacity
 * or small area used up), take a block of a larger small class that is free.
 */
uint32_t sigsafe__alloc_slow(sigsafe_pool *pool, unsigned cls)
{
    uint32_t id = carve(pool, cls, 1);
    if (id != SS_NIL)
        return id;
    for (unsigned c = cls; c < pool->span_classes; c++) {
        int bad = 0;
        id = ss_pop(pool, c, &bad);
        if (id != SS_NIL && mark_live(pool, id, c))
            return id;
        if (id != SS_NIL || bad)
            sigsafe__list_corrupt(pool, c, id);
    }
    return SS_NIL;
}

/*
 * A corrupt list is abandoned rather than followed: its head is swapped for
 * an empty one (its free blocks leak, nothing live is ever handed out), and
 * one line is reported.
 */
void sigsafe__list_corrupt(sigsafe_pool *pool, unsigned cls, uint32_t id)
{
    ss_a64 *h = &pool->heads[cls].word;
    /* relaxed: the expected value of the CAS only. */
    uint64_t old = ss_load_relaxed(h);
    /* relaxed: an empty list publishes nothing. */
    while (!ss_cas_weak_relaxed(h, &old,
                                ss_head_make(old + SS_TAG_ONE, SS_NIL)))
        ;
    sigsafe__report_corrupt(pool, cls, id);
}

/* ------------------------------------------------------------ building */

int sigsafe__config_check(const sigsafe_pool_config *cfg)
{
    if (!cfg)
        return 0;
    if (cfg->flags & ~(unsigned)SS_KNOWN_FLAGS)
        return 22; /* EINVAL */
    if (cfg->capacity > SS_MAX_CAPACITY)
        return 22;
    /* GUARD_EACH makes system calls on free and reuse (quarantine), and
     * its blocks are whole pages: at least one must fit the capacity. */
    if ((cfg->flags & SIGSAFE_POOL_GUARD_EACH) &&
        ((cfg->flags & SIGSAFE_POOL_NO_SYSCALLS) ||
         (cfg->capacity && cfg->capacity < SS_PAGE)))
        return 22;
    return 0;
}

/*
 * The region (docs/design.md, "Region"): one reservation, PROT_NONE, that
 * costs address space and nothing else.  Create makes the metadata
 * readable and writable (one mprotect; its pages are touched as they are
 * used); a span becomes readable and writable when it is first carved, a
 * large block when it is handed out.  Guard pages are simply never made
 * accessible: PROT_NONE pages of the reservation.
 *
 * The small area is cut into at most SS_ZONES zones of zone_spans spans
 * and one guard slot (a span's worth of address, never carved) each.
 * Zones are filled one after another, each from its top down
 * (ss_zone_slot()), so a zone's spans in use are one mapping that ends at
 * its guard: the small area needs two mappings (VMAs) a zone however many
 * spans it carves.  (Taking zones in turn would put the first span of each
 * at a guard, but spreads what is in use over the area: at 1 GiB, twice
 * the page tables for the same blocks.)  The large area (large.c) needs two a live
 * block.
 *
 * Pools that may make no system call after create (NO_SYSCALLS; PREFAULT,
 * which commits everything up front, unless GUARD_EACH) make all of it
 * accessible at create instead: one mprotect a zone and one for the large
 * area.  sigsafe__test_map_at_create makes every pool do so, for tests.
 */
int sigsafe__test_map_at_create;

typedef struct layout {
    size_t capacity;
    uint32_t nsmall, zone_spans, small_spans;
    unsigned large_top_k, large_leaf_k;
    size_t off_spans, off_links, off_states, off_tc, off_tree, off_linfo;
    size_t meta, total;
    int map_at_create;
    unsigned span_shift;
    unsigned tc_bin_shift;
} layout;

static unsigned log2_up(size_t n)
{
    return n <= 1 ? 0 : 64u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
}

static int plan(layout *l, size_t capacity, unsigned flags)
{
    int guard_each = (flags & SIGSAFE_POOL_GUARD_EACH) != 0;
    l->capacity = capacity;
    l->map_at_create =
        (flags & SIGSAFE_POOL_NO_SYSCALLS) ||
        (!guard_each && (sigsafe__test_map_at_create ||
                         (flags & SIGSAFE_POOL_PREFAULT)));
    /* A 64 KiB span holds at least 7/8 of its size in blocks of any
     * class.  Spans stay with their class, so the area is 5/4 of what the
     * capacity needs plus one span per class: mixes of sizes that shift
     * over time find some room (and a class that finds none borrows a
     * larger class's free block).  Untouched spans cost address space.
     * Very big pools get bigger spans, so that ids stay 32 bits. */
    size_t spans = 0;
    for (l->span_shift = SS_SPAN_SHIFT;; l->span_shift++) {
        spans = guard_each ? 0
                           : (capacity >> l->span_shift) * 10 / 7 +
                                 SS_NSMALL + 1;
        if (spans + spans / SS_ZONES + 1 < SS_MAX_HEADERS)
            break;
        if (l->span_shift == SS_SPAN_SHIFT_MAX)
            return 22;
    }
    /* At least 8 spans a zone: a program that uses a few classes of a
     * small pool takes one zone (four mappings, not six: a fork copies
     * each). */
    uint32_t z = (uint32_t)((spans + SS_ZONES - 1) / SS_ZONES);
    if (spans && z < 8)
        z = 8;
    uint32_t nzones = z ? (uint32_t)((spans + z - 1) / z) : 0;
    l->zone_spans = z;
    l->small_spans = nzones * z;
    l->nsmall = nzones * (z + 1);
    /* The large area: one buddy tree whose root holds a block of the
     * whole capacity and its guard page (twice the capacity in GUARD_EACH
     * pools, whose blocks of a page take two).  None where no large block
     * fits. */
    size_t cap = (capacity + SS_PAGE - 1) & ~(size_t)(SS_PAGE - 1);
    l->large_leaf_k = guard_each ? SS_EACH_LEAF_K : SS_LARGE_LEAF_K;
    l->large_top_k = 0;
    if (guard_each || capacity > SS_SMALL_MAX) {
        unsigned k = log2_up(guard_each ? 2 * cap : cap + SS_PAGE);
        l->large_top_k = k > l->large_leaf_k ? k : l->large_leaf_k;
    }
    size_t leaves = l->large_top_k
                        ? (size_t)1 << (l->large_top_k - l->large_leaf_k)
                        : 0;
    l->off_spans = PAGE_UP(sizeof(sigsafe_pool));
    l->off_links = l->off_spans + PAGE_UP((size_t)l->nsmall * sizeof(ss_span));
    l->off_states = l->off_links + PAGE_UP((size_t)l->nsmall * 4u << SS_ID_SHIFT);
    l->off_tc = l->off_states +
                PAGE_UP(SS_STATES_SKEW +
                        ((size_t)l->nsmall << (l->span_shift - SS_GRAIN_SHIFT)));
    l->tc_bin_shift = guard_each ? 6u : ss_tc_bin_shift(capacity);
    l->off_tree = l->off_tc +
                  PAGE_UP(SS_TC_RECORDS * ss_tc_stride(l->tc_bin_shift));
    l->off_linfo = l->off_tree + PAGE_UP(2 * leaves * sizeof(uint32_t));
    l->meta = l->off_linfo + PAGE_UP(leaves * sizeof(uint32_t));
    /* meta, at least one guard page, alignment slack, spans, large area */
    size_t span = (size_t)1 << l->span_shift;
    l->total = l->meta + SS_PAGE + span + (size_t)l->nsmall * span +
               (l->large_top_k ? (size_t)1 << l->large_top_k : 0);
    return 0;
}

static void prefault(void *addr, size_t len)
{
    if (sigsafe__sys_madvise(addr, len, MADV_POPULATE_WRITE) == 0)
        return;
    for (size_t o = 0; o < len; o += SS_PAGE)
        ((volatile char *)addr)[o] = 0;
}

static void name_region(sigsafe_pool *pool)
{
    char buf[8 + SS_NAME_MAX + 1] = "sigsafe:";
    size_t n = 8;
    for (const char *c = pool->name; *c && n < sizeof buf - 1; c++) {
        /* the kernel refuses non-printable characters and [ ] \ $ ` */
        int ok = *c > 0x20 && *c < 0x7f && *c != '[' && *c != ']' &&
                 *c != '\\' && *c != '$' && *c != '`';
        buf[n++] = ok ? *c : '_';
    }
    buf[n] = 0;
    /* Best effort: kernels before 5.17 (or without the option) refuse. */
    sigsafe__sys_prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (long)pool,
                       (long)pool->map_size, (long)buf);
}

static uint64_t make_secret(uintptr_t base)
{
    uint64_t s = 0;
    if (sigsafe__sys_getrandom(&s, sizeof s, 1 /* GRND_NONBLOCK */) !=
        (long)sizeof s)
        s = (uint64_t)base * 0x9e3779b97f4a7c15ull;
    return s | 1; /* never 0, the mark of an uncarved span */
}

/* Map everything at create (see above): each zone's spans and the large
 * area, and, for PREFAULT, their pages touched. */
static int map_at_create(sigsafe_pool *pool, int touch)
{
    int rw = PROT_READ | PROT_WRITE;
    size_t zone = (size_t)pool->zone_spans << pool->span_shift;
    for (uint32_t h = 0; h < pool->nsmall; h += pool->zone_spans + 1) {
        void *at = (void *)(pool->small_base + ((uintptr_t)h << pool->span_shift));
        long r = sigsafe__sys_mprotect(at, zone, rw);
        if (r)
            return (int)-r;
        if (touch)
            prefault(at, zone);
    }
    if (pool->large_top_k) {
        size_t len = (size_t)1 << pool->large_top_k;
        long r = sigsafe__sys_mprotect((void *)pool->large_base, len, rw);
        if (r)
            return (int)-r;
        if (touch)
            prefault((void *)pool->large_base, len);
    }
    return 0;
}

int sigsafe__pool_build(const sigsafe_pool_config *cfg, sigsafe_pool **out)
{
    sigsafe_pool_config def = {0};
    if (!cfg)
        cfg = &def;
    int err = sigsafe__config_check(cfg);
    if (err)
        return err;
    layout l;
    err = plan(&l, cfg->capacity ? cfg->capacity : SS_DEFAULT_CAPACITY,
               cfg->flags);
    if (err)
        return err;
    long merr;
    /* The reservation: address space only (PROT_NONE, no commit). */
    char *base = sigsafe__sys_mmap(NULL, l.total, PROT_NONE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                   &merr);
    if (!base)
        return (int)merr;
    merr = sigsafe__sys_mprotect(base, l.meta, PROT_READ | PROT_WRITE);
    if (merr) {
        sigsafe__sys_munmap(base, l.total);
        return (int)-merr;
    }

    sigsafe_pool *pool = (sigsafe_pool *)base;
    pool->secret = make_secret((uintptr_t)base);
    if (cfg->name) {
        size_t n = 0;
        while (n < SS_NAME_MAX && cfg->name[n])
            n++;
        memcpy(pool->name, cfg->name, n);
    }
    pool->flags = cfg->flags;
    pool->capacity = l.capacity;
    pool->span_classes = (cfg->flags & SIGSAFE_POOL_GUARD_EACH) ? 0 : SS_NSMALL;
    pool->mapped_at_create = l.map_at_create;
    pool->map_size = l.total;
    pool->end = (uintptr_t)base + l.total;
    pool->nsmall = l.nsmall;
    pool->zone_spans = l.zone_spans;
    pool->nzones = l.zone_spans ? l.nsmall / (l.zone_spans + 1) : 0;
    pool->small_spans = l.small_spans;
    pool->id_limit = l.nsmall << SS_ID_SHIFT;
    pool->meta_bytes = l.meta;
    pool->spans = (ss_span *)(base + l.off_spans);
    pool->links = (ss_a32 *)(base + l.off_links);
    pool->states = (ss_a8 *)(base + l.off_states + SS_STATES_SKEW);
    pool->tcaches = (ss_tcache *)(base + l.off_tc);
    pool->tc_bin_shift = l.tc_bin_shift;
    pool->tree = (ss_a32 *)(base + l.off_tree);
    pool->linfo = (ss_a32 *)(base + l.off_linfo);
    /* Thread caches for the classes up to 1 KiB, in pools big enough that
     * what they hold (capacity / 2048 a class at most: see tcache.h) is
     * small change. */
    if (!(cfg->flags & SIGSAFE_POOL_GUARD_EACH) && l.capacity >= SS_TC_MIN_POOL)
        sigsafe__tc_plan(pool);
    uintptr_t span = (uintptr_t)1 << l.span_shift;
    pool->span_shift = l.span_shift;
    pool->span_usable = (uint32_t)span;
    pool->small_base = ((uintptr_t)base + l.meta + SS_PAGE + span - 1) &
                       ~(span - 1);
    pool->small_end = pool->small_base + ((uintptr_t)l.nsmall << l.span_shift);
    pool->large_base = pool->small_end;
    pool->large_top_k = l.large_top_k;
    pool->large_leaf_k = l.large_leaf_k;
    for (unsigned c = 0; c < SS_NSMALL; c++)
        ss_store_relaxed(&pool->heads[c].word, SS_NIL); /* relaxed: private */

    /* bytes_mapped: the pool header, then what carving puts to use (all
     * of it at once for a prefaulted pool). */
    size_t mapped = l.off_spans;
    if (l.map_at_create) {
        err = map_at_create(pool, ss_prefaulted(pool));
        if (err)
            goto unmap;
    }
    if (ss_prefaulted(pool)) {
        mapped = l.meta;
        prefault(base, l.meta);
        mapped += (size_t)l.small_spans * pool->span_usable;
        if (l.large_top_k)
            mapped += (size_t)1 << l.large_top_k;
    }
    ss_store_relaxed(&pool->mapped, mapped); /* relaxed: still private */
    name_region(pool);
    pool->magic = SS_POOL_MAGIC ^ (uintptr_t)pool;
    err = sigsafe__registry_add(pool);
    if (err)
        goto unmap;
    SS_ANNOTATE_POOL_CREATE(pool); /* memory checkers: no block out */
    *out = pool;
    return 0;
unmap:
    sigsafe__sys_munmap(base, l.total);
    return err;
}

void sigsafe__pool_unmap(sigsafe_pool *pool)
{
    sigsafe__registry_remove(pool);
    /* relaxed: thread caches' bindings to this pool are stale from now on;
     * the caller's own synchronisation orders this before their next use
     * (see ss_bind_current()). */
    ss_add_relaxed(&sigsafe__pool_gen, 1);
    SS_ANNOTATE_POOL_DESTROY(pool); /* memory checkers: all blocks go */
    pool->magic = 0;
    sigsafe__sys_munmap(pool, pool->map_size);
}
