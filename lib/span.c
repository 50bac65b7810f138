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
    /* Zones are filled one after another, each from its top down, so that
     * the first span carved in a zone ends at the zone's guard. */
    uint32_t z = pool->zone_spans;
    uint32_t h = (seq / z) * (z + 1) + (z - 1 - seq % z);
    uintptr_t base = pool->small_base + ((uintptr_t)h << pool->span_shift);
    /* The span's first use: one mprotect makes it readable and writable
     * (it merges with the zone's spans carved before it into one
     * mapping).  Failing that (no memory, no mapping left), the span is
     * lost and the allocation fails. */
    if (!pool->mapped_at_create &&
        sigsafe__sys_mprotect((void *)base, (size_t)1 << pool->span_shift,
                              PROT_READ | PROT_WRITE) != 0)
        return keep ? SS_NIL : 0;
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
    if (!(pool->flags & SIGSAFE_POOL_PREFAULT)) /* relaxed: a count */
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

/* Carve the next never-used slot of a slot class; SS_NIL when none. */
static uint32_t carve_slot(sigsafe_pool *pool, unsigned cls, size_t bs)
{
    ss_large *lg = &pool->large[cls];
    uint32_t slot = frontier_take(&lg->frontier, lg->nslots);
    if (slot == SS_NIL)
        return SS_NIL;
    uint32_t h = lg->first_hdr + slot;
    uintptr_t start = lg->base + (uintptr_t)slot * lg->stride;
    /* Its first use: the block's pages become readable and writable; the
     * guard page after it stays as reserved. */
    if (!pool->mapped_at_create &&
        sigsafe__sys_mprotect((void *)start, bs, PROT_READ | PROT_WRITE) != 0)
        return SS_NIL;
    header_publish(pool, h, start, bs, 1, cls);
    if (!(pool->flags & SIGSAFE_POOL_PREFAULT) || slot) /* relaxed: a count */
        ss_add_relaxed(&pool->mapped, bs + sizeof(ss_span));
    /* relaxed: fresh, ours alone until handed out. */
    ss_store_relaxed(&pool->spans[h].state1, ss_st_live(cls));
    return ss_id(h, 0);
}

/* Reuse a freed slot of the class; SS_NIL when its list is empty. */
static uint32_t reuse_slot(sigsafe_pool *pool, unsigned cls)
{
    for (;;) {
        int bad = 0;
        uint32_t id = ss_pop(pool, cls, &bad);
        if (id == SS_NIL && !bad)
            return SS_NIL;
        if (id != SS_NIL && mark_live(pool, id, cls)) {
            if (SS_LIKELY(!(pool->flags & SIGSAFE_POOL_GUARD_EACH)) ||
                sigsafe__unquarantine(pool, &pool->spans[id >> SS_ID_SHIFT]))
                return id;
            /* No VMA left to lift the quarantine: put it back, fail. */
            /* relaxed: the block is ours until the push, which publishes. */
            ss_store_relaxed(ss_state(pool, id), ss_st_free(cls));
            ss_push_chain(pool, cls, id, id);
            return SS_NIL;
        }
        sigsafe__list_corrupt(pool, cls, id);
    }
}

/*
 * A slot class (large blocks; every block of a GUARD_EACH pool): reuse or
 * carve a slot.  GUARD_EACH carves fresh slots first, so a freed block
 * stays quarantined as long as possible.
 */
static uint32_t alloc_slot(sigsafe_pool *pool, unsigned cls)
{
    if (cls >= pool->nclasses || !pool->large[cls].nslots)
        return SS_NIL;
    size_t bs = ss_class_size(cls);
    uint32_t id;
    if (pool->flags & SIGSAFE_POOL_GUARD_EACH) {
        id = carve_slot(pool, cls, bs);
        if (id == SS_NIL)
            id = reuse_slot(pool, cls);
    } else {
        id = reuse_slot(pool, cls);
        if (id == SS_NIL)
            id = carve_slot(pool, cls, bs);
    }
    return id;
}

/*
 * A small class whose stack was empty: carve a span; failing that (capacity
 * or small area used up), take a block of a larger small class that is free.
 */
uint32_t sigsafe__alloc_slow(sigsafe_pool *pool, unsigned cls)
{
    if (cls >= pool->span_classes) {
        /* Slots of a class are planned at create; when they are all live,
         * a slot up to four times larger serves (the caller charges the
         * difference). */
        uint32_t id = SS_NIL;
        for (unsigned c = cls; id == SS_NIL && c < pool->nclasses && c <= cls + 8;
             c++)
            id = alloc_slot(pool, c);
        return id;
    }
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

/*
 * GUARD_EACH quarantine: a freed block's pages become guard pages until the
 * block is handed out again, so a use-after-free faults.  Debug mode only:
 * these are the only system calls an AS-safe path makes on a live pool.
 */
void sigsafe__quarantine(sigsafe_pool *pool, const ss_span *s)
{
    (void)pool;
    (void)sigsafe__sys_mprotect((void *)s->start, s->block_size, PROT_NONE);
}

int sigsafe__unquarantine(sigsafe_pool *pool, const ss_span *s)
{
    (void)pool;
    return sigsafe__sys_mprotect((void *)s->start, s->block_size,
                                 PROT_READ | PROT_WRITE) == 0;
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
 * used), and a span or slot becomes readable and writable when it is first
 * carved.  Guard pages are simply never made accessible: PROT_NONE pages
 * of the reservation.
 *
 * The small area is cut into at most SS_ZONES zones of zone_spans spans
 * and one guard slot (a span's worth of address, never carved) each.  A
 * zone is carved from its top down, so its spans in use are one mapping
 * that ends at its guard: the pool needs two mappings (VMAs) a zone
 * however many spans it carves.
 *
 * Pools that may make no system call after create (NO_SYSCALLS, and
 * PREFAULT, which commits everything up front) make all of it accessible
 * at create instead: one mprotect a zone and a slot area, one more a slot
 * guard.  sigsafe__test_map_at_create makes every pool do so, for tests.
 */
int sigsafe__test_map_at_create;

typedef struct layout {
    size_t capacity;
    unsigned nclasses;
    uint32_t nsmall, zone_spans, small_spans, nheaders;
    size_t off_spans, off_links, off_states, off_tc, meta, total;
    int map_at_create;
    unsigned span_shift;
    unsigned span_classes, first_slot_class;
    uint32_t nslots[SS_NCLASSES];
} layout;

static int plan(layout *l, size_t capacity, unsigned flags)
{
    int guard_each = (flags & SIGSAFE_POOL_GUARD_EACH) != 0;
    l->capacity = capacity;
    l->map_at_create = sigsafe__test_map_at_create ||
                       (flags & (SIGSAFE_POOL_NO_SYSCALLS |
                                 SIGSAFE_POOL_PREFAULT)) != 0;
    /* A 64 KiB span holds at least 3/4 of its size in blocks of any
     * class.  Spans stay with their class, so the area is twice what the
     * capacity needs plus one span per class: mixes of sizes that shift
     * over time still find room (and a class that finds none borrows a
     * larger class's free block).  Untouched spans cost address space.
     * Very big pools get bigger spans, so that ids stay 32 bits. */
    size_t spans = 0;
    for (l->span_shift = SS_SPAN_SHIFT;; l->span_shift++) {
        size_t per_cap = capacity / ((size_t)3 << (l->span_shift - 2));
        spans = guard_each ? 0 : 2 * per_cap + SS_NSMALL + 1;
        if (spans + spans / SS_ZONES + 1 <= SS_MAX_HEADERS / 2)
            break;
        if (l->span_shift == SS_SPAN_SHIFT_MAX)
            return 22;
    }
    uint32_t z = (uint32_t)((spans + SS_ZONES - 1) / SS_ZONES);
    uint32_t nzones = z ? (uint32_t)((spans + z - 1) / z) : 0;
    l->zone_spans = z;
    l->small_spans = nzones * z;
    l->nsmall = nzones * (z + 1);
    /* Slots per class: all the capacity in blocks of that class, at most
     * SS_MAX_SLOTS.  Mapped at create, each slot's guard is a mapping of
     * its own (two VMAs a slot): the slots together then stay under
     * SS_MPROTECT_GUARDS, inside the default vm.max_map_count. */
    uint32_t slot_cap = SS_MAX_SLOTS;
    unsigned top = ss_class_of(capacity) + 1;
    if (l->map_at_create) {
        size_t share = SS_MPROTECT_GUARDS /
                       (top > SS_NSMALL ? top - SS_PAGE_CLASS : 1);
        slot_cap = (uint32_t)(share < 16 ? 16 : share);
    }
    /* GUARD_EACH: no spans; every page-multiple class gets slots. */
    l->span_classes = guard_each ? 0 : SS_NSMALL;
    l->first_slot_class = guard_each ? SS_PAGE_CLASS : SS_NSMALL;
    l->nclasses = top > l->first_slot_class ? top : l->first_slot_class;
    size_t nh = l->nsmall, large = 0;
    for (unsigned c = l->first_slot_class; c < l->nclasses; c++) {
        size_t bs = ss_class_size(c);
        size_t n = (bs % SS_PAGE) ? 0 : capacity / bs;
        l->nslots[c] = (uint32_t)(n < slot_cap ? n : slot_cap);
        nh += l->nslots[c];
        large += (size_t)l->nslots[c] * (bs + SS_PAGE);
    }
    if (nh >= SS_MAX_HEADERS)
        return 22;
    l->nheaders = (uint32_t)nh;
    l->off_spans = PAGE_UP(sizeof(sigsafe_pool));
    l->off_links = l->off_spans + PAGE_UP(nh * sizeof(ss_span));
    l->off_states = l->off_links + PAGE_UP((size_t)l->nsmall * 4u << SS_ID_SHIFT);
    l->off_tc = l->off_states +
                PAGE_UP((size_t)l->nsmall << (l->span_shift - SS_GRAIN_SHIFT));
    l->meta = l->off_tc + PAGE_UP(SS_TC_RECORDS * sizeof(ss_tcache));
    /* meta, at least one guard page, alignment slack, spans, slots */
    size_t span = (size_t)1 << l->span_shift;
    l->total = l->meta + SS_PAGE + span + (size_t)l->nsmall * span + large;
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

/* Map everything at create (see above): each zone's spans, each slot area
 * with its guard pages cut out, and, for PREFAULT, their pages touched. */
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
    for (unsigned c = pool->first_slot_class; c < pool->nclasses; c++) {
        const ss_large *lg = &pool->large[c];
        if (!lg->nslots)
            continue;
        long r = sigsafe__sys_mprotect((void *)lg->base,
                                       (size_t)lg->nslots * lg->stride, rw);
        for (uint32_t i = 0; !r && i < lg->nslots; i++)
            r = sigsafe__sys_mprotect((void *)(lg->base + (i + 1) * lg->stride -
                                               SS_PAGE),
                                      SS_PAGE, PROT_NONE);
        if (r)
            return (int)-r;
        if (touch)
            prefault((void *)lg->base, lg->stride - SS_PAGE);
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
    pool->nclasses = l.nclasses;
    pool->span_classes = l.span_classes;
    pool->first_slot_class = l.first_slot_class;
    pool->mapped_at_create = l.map_at_create;
    pool->map_size = l.total;
    pool->end = (uintptr_t)base + l.total;
    pool->nsmall = l.nsmall;
    pool->zone_spans = l.zone_spans;
    pool->small_spans = l.small_spans;
    pool->nheaders = l.nheaders;
    pool->id_limit = l.nheaders << SS_ID_SHIFT;
    pool->meta_bytes = l.meta;
    pool->spans = (ss_span *)(base + l.off_spans);
    pool->links = (ss_a32 *)(base + l.off_links);
    pool->states = (ss_a8 *)(base + l.off_states);
    pool->tcaches = (ss_tcache *)(base + l.off_tc);
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
    uintptr_t at = pool->large_base;
    uint32_t hdr = l.nsmall;
    for (unsigned c = l.first_slot_class; c < l.nclasses; c++) {
        ss_large *lg = &pool->large[c];
        lg->base = at;
        lg->stride = ss_class_size(c) + SS_PAGE;
        lg->nslots = l.nslots[c];
        lg->first_hdr = hdr;
        hdr += lg->nslots;
        at += lg->nslots * lg->stride;
    }
    for (unsigned c = 0; c < SS_NCLASSES; c++)
        ss_store_relaxed(&pool->heads[c].word, SS_NIL); /* relaxed: private */

    /* bytes_mapped: the pool header, then what carving puts to use (all
     * of it at once for a prefaulted pool). */
    size_t mapped = l.off_spans;
    if (l.map_at_create) {
        err = map_at_create(pool, (cfg->flags & SIGSAFE_POOL_PREFAULT) != 0);
        if (err)
            goto unmap;
    }
    if (cfg->flags & SIGSAFE_POOL_PREFAULT) {
        mapped = l.meta;
        prefault(base, l.meta);
        mapped += (size_t)l.small_spans * pool->span_usable;
        for (unsigned c = l.first_slot_class; c < l.nclasses; c++)
            if (pool->large[c].nslots)
                mapped += pool->large[c].stride - SS_PAGE;
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
