/* SPDX-License-Identifier: MIT */
/*
 * Shared: internal types and helpers.
 *
 * Glossary
 *   page     4096 bytes; the unit of guard pages.
 *   span     64 KiB of the small area (more in very big pools), holding
 *            blocks of one small size class packed against its end
 *            (right-aligned).
 *   zone     a run of spans followed by a guard slot (a span's worth of
 *            PROT_NONE address); carved from the top down, so the first
 *            span carved in a zone ends at the guard.
 *   large    a block over 16 KiB (every block of a GUARD_EACH pool): whole
 *            pages at the start of a node of the large area's buddy tree,
 *            the rest of the node its guard (large.c).
 *   class    a small size class, 0..SS_NSMALL-1.
 *   id       a block's index: (span header index << 12) | block in span.
 *   head     a free-list head: 32-bit id + 32-bit ABA tag in one 64-bit word.
 *   budget   bytes charged against the capacity: the usable size of every
 *            live block.  It is bytes_in_use, and the hard cap.
 *
 * Region of one pool (one mmap reservation; see docs/design.md):
 *   [pool header][span headers][small links][small states][records]
 *   [buddy tree][leaf words]
 *   [guard][zone 0: spans, guard slot][zone 1] ... [large area]
 * reserved PROT_NONE; the metadata is made accessible at create, a span
 * or a large block when it is first used.
 */
#ifndef SS_INTERNAL_H
#define SS_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "sigsafe.h"
#include "atomic.h"
#include "internal_attrs.h"

#define SS_PAGE 4096u
#define SS_SPAN_SHIFT 16                           /* 64 KiB spans ... */
#define SS_SPAN_SHIFT_MAX 18                       /* ... up to 256 KiB */
#define SS_ID_SHIFT 12                             /* blocks per span < 4096 */
#define SS_ID_MASK ((1u << SS_ID_SHIFT) - 1)
#define SS_MAX_HEADERS (1u << 20)                  /* 32-bit ids */
#define SS_NIL 0xffffffffu                         /* empty list / end */
#define SS_GRAIN_SHIFT 4                           /* a state byte per 16 B */

#define SS_NSMALL 36u          /* classes 16 .. 16384 */
#define SS_SMALL_MAX 16384u    /* the largest small block */
#define SS_ZONES 24u           /* the small area's zones, at most */
#define SS_LARGE_LEAF_K 15u    /* the buddy tree's leaves: 32 KiB ... */
#define SS_EACH_LEAF_K 13u     /* ... 8 KiB in GUARD_EACH pools */
#define SS_LARGE_LIVE_MAX 8192u /* large blocks live at once in a pool that
                                   maps them one by one: two mappings each,
                                   so a pool stays within a quarter of the
                                   default vm.max_map_count */
#define SS_DEFAULT_CAPACITY ((size_t)4 << 20)
#define SS_MAX_CAPACITY ((size_t)64 << 30)
#define SS_MAX_POOLS 256u
#define SS_NAME_MAX 31u
#define SS_CTX_DEPTH 64u       /* nested contexts: every signal once */
#ifndef SIGSAFE_CONTEXT_TLS
#define SIGSAFE_CONTEXT_TLS 1  /* 0: no TLS; sigsafe_alloc uses the default */
#endif

#define SS_POOL_MAGIC 0x73696773616665ULL /* "sigsafe" */
#define SS_KNOWN_FLAGS                                                     \
    (SIGSAFE_POOL_PREFAULT | SIGSAFE_POOL_GUARD_EACH |                     \
     SIGSAFE_POOL_NO_SYSCALLS)

/*
 * Span header: written once when the span is carved, before any of
 * its blocks is published; immutable afterwards.  `magic` is stored last with
 * release so that a lookup that reads it with acquire sees the rest.
 */
typedef struct ss_span {
    ss_a64 magic;         /* pool secret ^ header index; 0 = not carved */
    uintptr_t start;      /* address of block 0 */
    size_t block_size;
    uint32_t recip;       /* floor(2^32 / block_size) + 1: exact division */
    uint32_t nblocks;
    uint32_t cls;
    uint8_t pad[28];
} ss_span;
_Static_assert(sizeof(ss_span) == 64, "one span header per cache line");

/* A thread's cache record (see tcache.h). */
#define SS_TC_CLASSES 20u  /* classes up to 1024 bytes are cached */
#define SS_TC_MAX_SIZE 1024u /* the largest cached request */
#define SS_TC_RECORDS 64u  /* records per pool */
#define SS_TC_MIN_POOL ((size_t)1 << 20) /* smaller pools are not cached */
#define SS_TC_SHARE 2048u      /* a class's first cap: capacity / this, */
#define SS_TC_MIN_BYTES 2048u  /* at least this */
#define SS_TC_MAX_BYTES 16384u /* ... and at most, */
#define SS_TC_FIRST_CAP 16u    /* ... and at most this many blocks */
#define SS_TC_LIMIT_SHARE 64u  /* what one cache may hold: capacity / this, */
#define SS_TC_LIMIT_MIN ((size_t)40 << 10) /* at least this */
#define SS_TC_LIMIT_MAX ((size_t)1 << 20)  /* ... and at most */
#define SS_TC_BIN_SHIFT_MAX 10u /* bins of 64 .. 1024 bytes */
typedef struct ss_tc_bin {
    ss_a32 n;            /* blocks held */
    uint16_t cap;        /* blocks it may hold now (see tcache.h) */
    uint8_t live;        /* ss_st_live() of its class */
    ss_a64 frees;        /* blocks freed into it (owner only) */
    /* (addr - small_base) >> 4 of each, the newest last; (1 <<
     * pool->tc_bin_shift) - 8 bytes of them.  See tcache.h. */
    uint32_t g[];
} ss_tc_bin;

/* Record keys (see tcache.h): 0 = free, a thread's token = owned by that
 * thread, SS_TC_LOCK | token = being claimed or salvaged by that thread. */
#define SS_TC_LOCK ((uint64_t)1 << 63)

/* The counts (these and each bin's frees, which sit on the line the free
 * writes anyway) are written by the owner only.  An allocation served by
 * a bin is not counted: it is what the others leave unexplained, filled +
 * frees - drained - (blocks held), summed by sigsafe_pool_stats().  The
 * owner's identity (tls, tid, pid) is written only while the key holds
 * SS_TC_LOCK, and read by others like a sequence lock (tcache.c).  The
 * bins follow, SS_TC_CLASSES of them, each 1 << pool->tc_bin_shift bytes
 * (ss_tc_stride(), ss_tc_bin_at()). */
typedef struct ss_tcache {
    _Alignas(64) ss_a64 key;  /* see SS_TC_LOCK */
    ss_aptr tls;              /* the owner's TLS block */
    ss_a32 tid;               /* the owner's thread id, 0 if unknown */
    ss_a32 pid;               /* its process id then, 0 if unknown */
    ss_a64 allocs;            /* blocks refills handed out directly */
    ss_a64 filled;            /* blocks refills put into the bins */
    ss_a64 drained;           /* blocks flushes took out of them */
} ss_tcache;
_Static_assert(sizeof(ss_tcache) <= 64, "a record's header fits slot 0");

/* log2 of the bytes of one bin in a pool of this capacity: bigger pools
 * let a cache hold more blocks of a class (tcache.h, "Capacity"). */
SS_INLINE unsigned ss_tc_bin_shift(size_t capacity)
{
    return capacity >= ((size_t)32 << 20)  ? SS_TC_BIN_SHIFT_MAX
           : capacity >= ((size_t)8 << 20) ? 9u
           : capacity >= ((size_t)2 << 20) ? 8u
           : capacity >= SS_TC_MIN_POOL    ? 7u
                                           : 6u;
}

/* Bytes from one record to the next: SS_TC_CLASSES + 1 slots of a bin's
 * size, the header in slot 0 (the rest of it unused) and the bin of
 * class c in slot c + 1, so that a live state byte v, whose v >> 1 is
 * c + 1, names its bin's slot. */
SS_INLINE size_t ss_tc_stride(unsigned bin_shift)
{
    return (size_t)(SS_TC_CLASSES + 1) << bin_shift;
}

/* A free-list head alone on its cache line. */
typedef struct ss_head {
    _Alignas(64) ss_a64 word; /* id (low 32) | tag (high 32) */
} ss_head;

/* Statistics counters; relaxed: each is an independent count. */
typedef struct ss_counters {
    _Alignas(64) ss_a64 allocs;
    ss_a64 frees;
    ss_a64 failed;
    ss_a64 rejected;
    ss_a64 peak;
} ss_counters;

struct sigsafe_pool {
    uint64_t magic;           /* SS_POOL_MAGIC ^ (uintptr_t)self */
    uint64_t secret;          /* random; span magic = secret ^ index */
    char name[SS_NAME_MAX + 1];
    unsigned flags;
    unsigned span_classes;    /* classes below this live in spans (0 with
                                 GUARD_EACH: every block is large) */
    int mapped_at_create;     /* all spans and slots accessible from create */
    size_t capacity;
    uintptr_t end;            /* reservation: [pool, end) */
    size_t map_size;
    uintptr_t small_base;     /* span 0; span aligned */
    unsigned span_shift;      /* log2 of the span size */
    uint32_t span_usable;     /* bytes of a span that hold blocks */
    uintptr_t small_end;
    uint32_t nsmall;          /* span headers of the small area: the
                                 zones' spans and guard slots */
    uint32_t zone_spans;      /* spans a zone carves; a guard slot follows */
    uint32_t nzones;          /* zones: nsmall / (zone_spans + 1) */
    uint32_t small_spans;     /* spans that can be carved, all zones */
    uint32_t id_limit;        /* every valid id is below this */
    uint32_t registry_slot;
    size_t meta_bytes;        /* header + tables (for bytes_mapped) */
    ss_span *spans;           /* nheaders */
    ss_tcache *tcaches;       /* SS_TC_RECORDS thread records */
    unsigned tc_classes;      /* classes below this are cached; 0 = none */
    ss_a64 tc_used;           /* records ever claimed, a bit each: scans of
                                 every record (fork child, thread exit,
                                 stats) read only these */
    unsigned tc_bin_shift;    /* a bin is 1 << this bytes */
    uint32_t tc_entries;      /* blocks a bin can hold: its largest cap */
    size_t tc_limit;          /* bytes one record's caps may add up to */
    uint16_t tc_first_cap[SS_TC_CLASSES]; /* a class's cap in a new record */
    ss_a32 *links;            /* small ids: next id in the free list */
    ss_a8 *states;            /* small area: a state byte per 16 bytes */
    uintptr_t large_base;     /* the large area: 2^large_top_k bytes */
    unsigned large_top_k;     /* 0: no large area */
    unsigned large_leaf_k;    /* its smallest node: 2^large_leaf_k bytes */
    ss_a32 *tree;             /* buddy tree, nodes 1 .. 2^(depth + 1) - 1 */
    ss_a32 *linfo;            /* a word per leaf: the block starting there */
    ss_a64 large_used_top;    /* the highest end of a large node handed out */
    ss_a32 large_live;        /* large blocks live (capped: SS_LARGE_LIVE_MAX) */
    ss_a32 small_frontier;    /* spans carved so far */
    ss_a64 budget;            /* bytes of live blocks (<= capacity) */
    ss_a64 mapped;            /* bytes of spans and large blocks in use */
    ss_counters stats;
    ss_head heads[SS_NSMALL];
};

/* 1 if everything was made accessible and touched at create (PREFAULT; a
 * GUARD_EACH pool maps its blocks one by one all the same): then
 * bytes_mapped counts it all from create. */
SS_INLINE int ss_prefaulted(const sigsafe_pool *pool)
{
    return pool->mapped_at_create && (pool->flags & SIGSAFE_POOL_PREFAULT);
}

/* The span header index of the seq-th span carved.  Zones are filled one
 * after another (what is in use stays together: fewer page tables), each
 * from its top down, so the first span of each zone ends at its guard
 * slot. */
SS_INLINE uint32_t ss_zone_slot(const sigsafe_pool *pool, uint32_t seq)
{
    uint32_t z = seq / pool->zone_spans, k = seq % pool->zone_spans;
    return z * (pool->zone_spans + 1) + (pool->zone_spans - 1 - k);
}

/* ---- size classes (sizeclass.c) */

/* Class of a request of n <= SS_SMALL_MAX bytes. */
SS_INLINE unsigned ss_class_of(size_t n)
{
    if (n <= 128)
        return n ? (unsigned)((n - 1) >> 4) : 0;
    size_t m = n - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)m);
    return 8u + ((k - 7u) << 2) + (unsigned)((m >> (k - 2u)) & 3u);
}

SS_INLINE size_t ss_class_size(unsigned cls)
{
    if (cls < 8)
        return (size_t)(cls + 1) << 4;
    unsigned k = 7u + (cls - 8u) / 4u;
    return ((size_t)1 << k) + ((size_t)((cls - 8u) % 4u + 1) << (k - 2));
}

/*
 * ---- block states.  One byte per block, out of band: for span blocks in
 * `states`, indexed by the block's address in 16-byte grains from
 * small_base (so a pointer finds its state by arithmetic alone); for slots
 * in the slot's header.  0 means that no block starts there (never carved,
 * or inside a block); a block start holds its class and whether it is
 * live.  Spans keep their class for the pool's life, so a block start's
 * byte is never 0 again once carved.
 */
SS_INLINE uint8_t ss_st_free(unsigned cls)
{
    return (uint8_t)((cls + 1u) << 1);
}

SS_INLINE uint8_t ss_st_live(unsigned cls)
{
    return (uint8_t)(((cls + 1u) << 1) | 1u);
}

SS_INLINE int ss_st_is_live(uint8_t v)
{
    return v & 1u;
}

SS_INLINE unsigned ss_st_cls(uint8_t v)
{
    return (v >> 1) - 1u;
}

/* ---- the budget: one CAS, never overshoot-then-undo, so a failing caller
 * cannot make another one fail.  Returns the new total, 0 if over cap. */
SS_INLINE uint64_t ss_budget_take(sigsafe_pool *pool, size_t bytes)
{
    /* relaxed: the budget only counts bytes; blocks are handed over by the
     * free lists' own acquire/release. */
    uint64_t b = ss_load_relaxed(&pool->budget);
    do {
        if (bytes > pool->capacity - b)
            return 0;
    } while (!ss_cas_weak_relaxed(&pool->budget, &b, b + bytes));
    return b + bytes;
}

SS_INLINE void ss_budget_give(sigsafe_pool *pool, size_t bytes)
{
    ss_sub_relaxed(&pool->budget, bytes); /* relaxed: a count */
}

/* ---- ids */

SS_INLINE uint32_t ss_id(uint32_t hdr, uint32_t i)
{
    return (hdr << SS_ID_SHIFT) | i;
}

/* The free-list link of block `id` (below pool->id_limit). */
SS_INLINE ss_a32 *ss_link(sigsafe_pool *pool, uint32_t id)
{
    return &pool->links[id];
}

SS_INLINE void *ss_block_addr(const sigsafe_pool *pool, uint32_t id)
{
    const ss_span *s = &pool->spans[id >> SS_ID_SHIFT];
    return (void *)(s->start + (id & SS_ID_MASK) * s->block_size);
}

/*
 * The index in `states` of the block that starts g grains into the small
 * area.  Within each run of 4096 grains the index is scrambled (times an
 * odd number, modulo 4096): blocks next to each other, which refills hand
 * to different threads, get state bytes on different cache lines, so that
 * threads working on neighbouring blocks do not share a line they write.
 */
/* The state bytes start this far into their first page.  Then the state
 * byte of a block and the block itself share their address's low 12 bits
 * only for the grain 2047 of each run of 4096 (745 * 2047 + 2777 = 2047 *
 * 16 modulo 4096), where no block of an even number of grains (32, 64,
 * 96 ... bytes) starts; with no skew it was grain 0, the first block of
 * every span, whose accesses then looked to the processor as if they
 * depended on each other (4K aliasing: W1 ran 40 % slower on it). */
#define SS_STATES_SKEW 2777u
SS_INLINE size_t ss_state_index(uint32_t g)
{
    return (g & ~(uint32_t)4095) | ((g * 745u) & 4095u);
}

/* The state byte of the span block at address a. */
SS_INLINE ss_a8 *ss_state_at(sigsafe_pool *pool, uintptr_t a)
{
    return &pool->states[ss_state_index(
        (uint32_t)((a - pool->small_base) >> SS_GRAIN_SHIFT))];
}

/* The id of the span block that starts `g` grains into the small area (a
 * block a thread cache holds, so its span is carved). */
SS_INLINE uint32_t ss_grain_id(const sigsafe_pool *pool, uint32_t g)
{
    uint32_t h = g >> (pool->span_shift - SS_GRAIN_SHIFT);
    const ss_span *s = &pool->spans[h];
    uintptr_t off = pool->small_base + ((uintptr_t)g << SS_GRAIN_SHIFT) -
                    s->start;
    /* exact: see ss_locate_span(); recip is 0 for one-block spans. */
    return ss_id(h, (uint32_t)(((uint64_t)off * s->recip) >> 32));
}

/* Stands in for the state of an id that names no carved block (a corrupt
 * list): it never reads as free, so such an id is never handed out. */
SS_HIDDEN extern ss_a8 sigsafe__state_void;

/* The state byte of block `id` (id below pool->id_limit). */
SS_INLINE ss_a8 *ss_state(sigsafe_pool *pool, uint32_t id)
{
    ss_span *s = &pool->spans[id >> SS_ID_SHIFT];
    if (SS_UNLIKELY((id & SS_ID_MASK) >= s->nblocks))
        return &sigsafe__state_void;
    return ss_state_at(pool, (uintptr_t)ss_block_addr(pool, id));
}

/* Record i (< SS_TC_RECORDS) of pool's thread caches. */
SS_INLINE ss_tcache *ss_tc_record(const sigsafe_pool *pool, unsigned i)
{
    return (ss_tcache *)((uintptr_t)pool->tcaches +
                         (uintptr_t)i * ss_tc_stride(pool->tc_bin_shift));
}

/* The bin in slot `slot` (its class + 1) of record tc, whose bins are
 * 1 << shift bytes: the fast paths' form, from a binding. */
SS_INLINE ss_tc_bin *ss_tc_bin_of(ss_tcache *tc, uintptr_t slot,
                                  unsigned shift)
{
    return (ss_tc_bin *)((uintptr_t)tc + (slot << shift));
}

/* The bin of cached class cls in record tc of pool. */
SS_INLINE ss_tc_bin *ss_tc_bin_at(const sigsafe_pool *pool, ss_tcache *tc,
                                  unsigned cls)
{
    return ss_tc_bin_of(tc, (uintptr_t)cls + 1, pool->tc_bin_shift);
}

/* ---- AS-safe internals */

/* span.c: the free lists, refill, carving; the pool-building core. */
SS_HIDDEN void sigsafe__list_corrupt(sigsafe_pool *pool, unsigned cls,
                                    uint32_t id);
SS_HIDDEN int sigsafe__carve_span(sigsafe_pool *pool, unsigned cls);
SS_HIDDEN uint32_t sigsafe__alloc_slow(sigsafe_pool *pool, unsigned cls);
SS_HIDDEN int sigsafe__pool_build(const sigsafe_pool_config *cfg,
                                  sigsafe_pool **out);
SS_HIDDEN void sigsafe__pool_unmap(sigsafe_pool *pool);
SS_HIDDEN int sigsafe__config_check(const sigsafe_pool_config *cfg);
SS_HIDDEN extern int sigsafe__test_map_at_create; /* tests only */
/* pool.c (set-up only): fork and thread-exit hooks for the calling
 * thread (see tcache.h). */
SS_HIDDEN void sigsafe__watch_thread(void);

/* tcache.c: turn on thread caches for a pool being built, and size them. */
SS_HIDDEN void sigsafe__tc_plan(sigsafe_pool *pool);

/* large.c: blocks over 16 KiB (every block of a GUARD_EACH pool). */
/* The usable bytes of a large block of `size` bytes, 0 if none can be. */
SS_HIDDEN size_t sigsafe__large_usable_for(const sigsafe_pool *pool,
                                          size_t size);
/* A block of `usable` bytes (from sigsafe__large_usable_for(), already
 * charged to the budget), or NULL. */
SS_HIDDEN void *sigsafe__large_alloc(sigsafe_pool *pool, size_t usable);
/* 1 if a is the start of a large block (live or freed); *leaf its word. */
SS_HIDDEN int sigsafe__large_find(const sigsafe_pool *pool, uintptr_t a,
                                  uint32_t *leaf);
SS_HIDDEN size_t sigsafe__large_usable(const sigsafe_pool *pool,
                                       uint32_t leaf); /* 0 if not live */
/* Free the large block at leaf; NULL, or why it was rejected. */
SS_HIDDEN const char *sigsafe__large_free(sigsafe_pool *pool, uint32_t leaf);

/* lookup.c: pointer -> pool, span, block. */
typedef struct ss_where {
    sigsafe_pool *pool; /* NULL: in no pool */
    uint32_t id;        /* valid when ok: a span block's id, or a large
                           block's leaf */
    int ok;             /* 1: p is the start of a carved block */
    int large;          /* ... of a large block */
} ss_where;
SS_HIDDEN extern ss_aptr sigsafe__registry[SS_MAX_POOLS];
SS_HIDDEN extern ss_a32 sigsafe__registry_top;
/* Bumped by every pool destroy: thread caches' bindings made before it are
 * stale (see tcache.h). */
SS_HIDDEN extern ss_a64 sigsafe__pool_gen;

/* The pool whose reservation holds p, or NULL. */
SS_INLINE sigsafe_pool *sigsafe__registry_find(uintptr_t p)
{
    /* relaxed: a bound on the scan; see sigsafe__registry_add(). */
    uint32_t top = ss_load_relaxed(&sigsafe__registry_top);
    for (uint32_t i = 0; i < top; i++) {
        /* acquire: pairs with the release CAS in sigsafe__registry_add(),
         * so the pool's header fields are visible. */
        sigsafe_pool *pool = ss_load_acquire(&sigsafe__registry[i]);
        if (pool && p - (uintptr_t)pool < pool->map_size)
            return pool;
    }
    return NULL;
}
SS_HIDDEN ss_where sigsafe__locate(const void *p);
SS_HIDDEN int sigsafe__registry_add(sigsafe_pool *pool);
SS_HIDDEN void sigsafe__registry_remove(sigsafe_pool *pool);
SS_INLINE int sigsafe__pool_valid(const sigsafe_pool *pool)
{
    /* A pool is the first page of its mapping: anything not page aligned
     * is rejected before it is read. */
    return pool && !((uintptr_t)pool & (SS_PAGE - 1)) &&
           pool->magic == (SS_POOL_MAGIC ^ (uintptr_t)pool);
}

/*
 * Address a -> block of span header h, by arithmetic alone: the
 * magic that says this pool carved it, then a whole number of blocks from
 * its first.  0 if a is not the start of one of its blocks.
 */
SS_INLINE int ss_block_in(const sigsafe_pool *pool, uint32_t h, uintptr_t a,
                          uint32_t *id)
{
    const ss_span *s = &pool->spans[h];
    /* acquire: pairs with the release store in header_publish(). */
    if (ss_load_acquire(&s->magic) != (pool->secret ^ h) || a < s->start)
        return 0;
    uintptr_t off = a - s->start;
    /* off < 2^18 and block_size <= 2^14, so the reciprocal is exact (its
     * error, below off / 2^32 < 2^-14, never reaches 1 / block_size).
     * One-block spans have recip 0: only off 0 passes. */
    uint32_t i = (uint32_t)(((uint64_t)off * s->recip) >> 32);
    if (off != (uintptr_t)i * s->block_size || i >= s->nblocks)
        return 0;
    *id = ss_id(h, i);
    return 1;
}

/* ss_block_in() by address: a span block.  0 if a is not the start of
 * one (it may still be a large block: see sigsafe__locate()). */
SS_INLINE int ss_locate_span(const sigsafe_pool *pool, uintptr_t a,
                             uint32_t *id)
{
    if (a - pool->small_base >= pool->small_end - pool->small_base)
        return 0;
    return ss_block_in(
        pool, (uint32_t)((a - pool->small_base) >> pool->span_shift), a, id);
}

/* Guard-page faults, for the guard component. */
typedef enum ss_fault_kind {
    SS_FAULT_NONE,
    SS_FAULT_OVERFLOW,       /* past the end of a large block */
    SS_FAULT_UNDERFLOW,      /* before the start of a large block (or the
                                lowest span in use of a zone) */
    SS_FAULT_USE_AFTER_FREE, /* a freed large block */
    SS_FAULT_SPAN_END,       /* past the last block of a zone's top span */
} ss_fault_kind;
typedef struct ss_fault {
    sigsafe_pool *pool;
    ss_fault_kind kind;
    uintptr_t block; /* 0 if the block was never carved */
    size_t size;
    intptr_t offset; /* fault address - block */
} ss_fault;
SS_HIDDEN int sigsafe__classify_fault(uintptr_t addr, ss_fault *f);
SS_HIDDEN int sigsafe__large_fault(sigsafe_pool *pool, uintptr_t addr,
                                   ss_fault *f);

/* free.c */
/* Free the block located at p (w from sigsafe__locate), or reject p. */
SS_HIDDEN int sigsafe__free_at(ss_where w, const void *p);

/* context.c */
SS_HIDDEN sigsafe_pool *sigsafe__default_pool(void);
SS_HIDDEN sigsafe_pool *sigsafe__default_peek(void);
SS_HIDDEN sigsafe_pool *sigsafe__default_offer(sigsafe_pool *mine);
SS_HIDDEN sigsafe_pool *sigsafe__reserve_for(const sigsafe_pool *pool);
SS_HIDDEN void sigsafe__trampoline(int signo, siginfo_t *info, void *uctx);
SS_HIDDEN extern ss_a64 sigsafe__ctx_overflows;
#define SS_NSIG 65                 /* signals 1..64 */
SS_HIDDEN extern ss_aptr sigsafe__bound[SS_NSIG];
SS_HIDDEN extern ss_aptr sigsafe__user_handler[SS_NSIG];
SS_HIDDEN extern ss_aptr sigsafe__reserve_pool;

/* stats.c */
SS_HIDDEN void sigsafe__peak_update(sigsafe_pool *pool, uint64_t now);

/* report.c: one line on the report fd. */
SS_HIDDEN void sigsafe__report_reject(sigsafe_pool *pool, const void *p,
                                      const char *why);
SS_HIDDEN void sigsafe__report_corrupt(sigsafe_pool *pool, unsigned cls,
                                       uint32_t id);
SS_HIDDEN extern ss_aint sigsafe__report_fd;
/* A report line under construction: formatted by hand on the stack (no
 * stdio), written with one write(2) by sigsafe__line_emit(). */
typedef struct ss_line {
    char buf[256];
    size_t n; /* the last byte is kept for the newline */
} ss_line;
SS_HIDDEN void sigsafe__line_put(ss_line *l, const char *s);
SS_HIDDEN void sigsafe__line_num(ss_line *l, uint64_t v, unsigned base);
SS_HIDDEN void sigsafe__line_emit(ss_line *l);

/* alloc.c */

#endif /* SS_INTERNAL_H */
