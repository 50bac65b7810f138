/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the whole AS-safe API over up to three small pools and
 * the default pool, checked after every call against a shadow model.
 *
 * Input: byte 0 picks the number of pools (1..3); two bytes per pool pick
 * its capacity (from a table of small ones, so that exhaustion is common)
 * and its flags; the rest is a sequence of operations, one byte of opcode
 * and a few bytes of arguments each (see step()).  A missing byte reads as
 * 0, so every input is valid.
 *
 * The model knows every live block (address, pool, usable size, a seed for
 * the pattern that fills all of its usable bytes), the recently freed
 * addresses and the context stack.  After every operation each pool's
 * statistics must match it exactly: allocs, frees, failed_allocs and
 * rejected_frees counted per call; bytes_in_use the sum of the usable sizes
 * of the live blocks, never above the capacity.  Every block is 16-byte
 * aligned (or as asked), at least as large as asked, owned by its pool, and
 * keeps its pattern until freed.  Bad frees (a stack, static or malloc'd
 * pointer, an interior pointer, a double free, a wild pointer into a pool)
 * are rejected, counted once, in the right pool, and change nothing else.
 * With SIGSAFE_ASAN_POISON the model also checks the ASan shadow: live
 * blocks addressable, freed blocks and the free neighbours of small blocks
 * poisoned.
 *
 * A failed check prints one line and aborts.  test/fuzz/replay.c runs the
 * same target over files without libFuzzer (built with any compiler).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigsafe.h"

#if defined(SIGSAFE_ASAN_POISON) && SIGSAFE_ASAN_POISON
#include <sanitizer/asan_interface.h>
#define FZ_POISON 1
#else
#define FZ_POISON 0
#endif

#define FZ_NPOOLS 3           /* created per input; index 3 is the default */
#define FZ_DEFAULT FZ_NPOOLS
#define FZ_MAX_LIVE 256
#define FZ_MAX_FREED 64
#define FZ_MAX_OPS 4096
#define FZ_MAX_DEPTH 68       /* beyond the library's 64 context slots */
#define FZ_CTX_SLOTS 64
#define FZ_DEFAULT_CAPACITY ((size_t)256 << 10)
#define FZ_SMALL_MAX 16384u   /* blocks above this are guarded slots */
#define FZ_PAGE 4096u

/* ----------------------------------------------------------- failing */

#define FZ_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond))                                                         \
            fz_fail(__LINE__, #cond, __VA_ARGS__);                           \
    } while (0)

static unsigned long fz_op_index;

__attribute__((noreturn, format(printf, 3, 4))) static void
fz_fail(int line, const char *cond, const char *fmt, ...);

static void fz_fail(int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_pools: check failed at line %d, op %lu: %s: ", line,
            fz_op_index, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ----------------------------------------------------------- input */

typedef struct fz_in {
    const uint8_t *d;
    size_t n, i;
} fz_in;

static unsigned u8(fz_in *in)
{
    return in->i < in->n ? in->d[in->i++] : 0;
}

static unsigned u16(fz_in *in)
{
    unsigned v = u8(in);
    return v | u8(in) << 8;
}

static uint32_t u32(fz_in *in)
{
    uint32_t v = u16(in);
    return v | (uint32_t)u16(in) << 16;
}

/* ----------------------------------------------------------- model */

typedef struct fz_block {
    unsigned char *p;
    size_t usable, req;
    uint64_t seed;
    int pool;
} fz_block;

typedef struct fz_pool {
    sigsafe_pool *pool;
    size_t capacity;
    unsigned flags;
    sigsafe_stats base;          /* counters when the input started */
    uint64_t allocs, frees, failed, rejected;
    size_t in_use, peak, mapped;
    int fresh;                   /* nothing handed out yet */
} fz_pool;

static struct fz_model {
    int npools;                  /* created for this input */
    fz_pool pools[FZ_NPOOLS + 1];
    fz_block live[FZ_MAX_LIVE];
    size_t nlive;
    uintptr_t freed[FZ_MAX_FREED];
    size_t nfreed;
    int ctx[FZ_MAX_DEPTH];       /* pool index entered; -1 = NULL */
    int depth;
    uint64_t seeds;
} m;

static const size_t capacities[] = {
    16, 100, 4096, 20000, 65536, 100000, 262144, (size_t)1 << 20,
};

/* A pointer that is in no pool, a static one; also an invalid pool handle
 * (aligned as a pool is, its magic wrong). */
static _Alignas(64) unsigned char static_bytes[256];

/* ------------------------------------------------ size classes (design) */

/* The class table of docs/design.md §2, for the capacity guarantee only. */
static size_t class_size_of(size_t n)
{
    if (n <= 128)
        return n ? (n + 15) & ~(size_t)15 : 16;
    size_t v = n - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)v);
    size_t step = (size_t)1 << (k - 2);
    return (v / step + 1) * step;
}

/* ------------------------------------------------------------ patterns */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

/* Fill n bytes (a multiple of 8: usable sizes are multiples of 16). */
static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = mix(seed + i);
        memcpy(p + i, &w, 8);
    }
}

/* Offset of the first byte of [0, n) that differs from fill(seed), or n. */
static size_t check(const unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8); /* a load, not a memcmp libFuzzer traces */
        if (w != mix(seed + i))
            return i;
    }
    return n;
}

/* ------------------------------------------------------------ lookups */

static sigsafe_pool *pool_ptr(int k)
{
    return m.pools[k].pool;
}

static int pool_index(const sigsafe_pool *pool)
{
    for (int k = 0; k < m.npools; k++)
        if (m.pools[k].pool == pool)
            return k;
    if (pool == m.pools[FZ_DEFAULT].pool)
        return FZ_DEFAULT;
    return -1;
}

static long find_live(uintptr_t a)
{
    for (size_t i = 0; i < m.nlive; i++)
        if ((uintptr_t)m.live[i].p == a)
            return (long)i;
    return -1;
}

/* The pool sigsafe_alloc() uses now. */
static int current_index(void)
{
    if (m.depth == 0 || m.depth > FZ_CTX_SLOTS || m.ctx[m.depth - 1] < 0)
        return FZ_DEFAULT;
    return m.ctx[m.depth - 1];
}

/* --------------------------------------------------- checking the model */

static void check_pool_stats(int k)
{
    fz_pool *fp = &m.pools[k];
    sigsafe_stats s;
    FZ_CHECK(sigsafe_pool_stats(fp->pool, &s) == 0, "pool %d", k);
    FZ_CHECK(s.capacity == fp->capacity, "pool %d: %zu", k, s.capacity);
    FZ_CHECK(s.allocs - fp->base.allocs == fp->allocs,
             "pool %d: allocs %llu, model %llu", k,
             (unsigned long long)(s.allocs - fp->base.allocs),
             (unsigned long long)fp->allocs);
    FZ_CHECK(s.frees - fp->base.frees == fp->frees,
             "pool %d: frees %llu, model %llu", k,
             (unsigned long long)(s.frees - fp->base.frees),
             (unsigned long long)fp->frees);
    FZ_CHECK(s.failed_allocs - fp->base.failed_allocs == fp->failed,
             "pool %d: failed %llu, model %llu", k,
             (unsigned long long)(s.failed_allocs - fp->base.failed_allocs),
             (unsigned long long)fp->failed);
    FZ_CHECK(s.rejected_frees - fp->base.rejected_frees == fp->rejected,
             "pool %d: rejected %llu, model %llu", k,
             (unsigned long long)(s.rejected_frees - fp->base.rejected_frees),
             (unsigned long long)fp->rejected);
    FZ_CHECK(s.bytes_in_use == fp->in_use, "pool %d: in use %zu, model %zu",
             k, s.bytes_in_use, fp->in_use);
    FZ_CHECK(s.bytes_in_use <= s.capacity, "pool %d: %zu > %zu", k,
             s.bytes_in_use, s.capacity);
    /* A cache may report the peak from above (SPEC), never below. */
    FZ_CHECK(s.peak_bytes_in_use >= fp->peak, "pool %d: peak %zu < %zu", k,
             s.peak_bytes_in_use, fp->peak);
    FZ_CHECK(s.peak_bytes_in_use >= s.bytes_in_use &&
                 s.peak_bytes_in_use <= s.capacity,
             "pool %d: peak %zu", k, s.peak_bytes_in_use);
    /* Freed large blocks go back to the system: mapped may shrink, but
     * it always holds what is in use. */
    FZ_CHECK(s.bytes_mapped >= s.bytes_in_use, "pool %d: mapped %zu < in use "
             "%zu", k, s.bytes_mapped, s.bytes_in_use);
}

static void check_all_stats(void)
{
    for (int k = 0; k < m.npools; k++)
        check_pool_stats(k);
    check_pool_stats(FZ_DEFAULT);
}

#if FZ_POISON
/* Whether a live model block covers byte a. */
static int live_covers(uintptr_t a)
{
    for (size_t i = 0; i < m.nlive; i++)
        if (a >= (uintptr_t)m.live[i].p &&
            a < (uintptr_t)m.live[i].p + m.live[i].usable)
            return 1;
    return 0;
}
#endif

/* The checker's view of a live block: addressable; for a small block, the
 * bytes on either side belong to free blocks or to no block: poisoned. */
static void check_shadow_live(const fz_block *b)
{
#if FZ_POISON
    FZ_CHECK(__asan_region_is_poisoned(b->p, b->usable) == NULL,
             "live block %p (%zu bytes) is poisoned", (void *)b->p,
             b->usable);
    if (b->usable > FZ_SMALL_MAX ||
        (m.pools[b->pool].flags & SIGSAFE_POOL_GUARD_EACH))
        return; /* slots: guard pages, not poison, fence them */
    uintptr_t after = (uintptr_t)b->p + b->usable;
    uintptr_t before = (uintptr_t)b->p - 1;
    if (!live_covers(after))
        FZ_CHECK(__asan_address_is_poisoned((void *)after),
                 "byte after block %p not poisoned", (void *)b->p);
    if (!live_covers(before))
        FZ_CHECK(__asan_address_is_poisoned((void *)before),
                 "byte before block %p not poisoned", (void *)b->p);
#else
    (void)b;
#endif
}

static void check_shadow_freed(const unsigned char *p, size_t usable)
{
#if FZ_POISON
    FZ_CHECK(__asan_address_is_poisoned(p) &&
                 __asan_address_is_poisoned(p + usable - 1),
             "freed block %p not poisoned", (void *)p);
#else
    (void)p;
    (void)usable;
#endif
}

static void check_block(const fz_block *b)
{
    size_t at = check(b->p, b->usable, b->seed);
    FZ_CHECK(at == b->usable, "block %p (%zu bytes): pattern broken at %zu",
             (void *)b->p, b->usable, at);
    FZ_CHECK(sigsafe_usable_size(b->p) == b->usable, "usable of %p changed",
             (void *)b->p);
    FZ_CHECK(sigsafe_pool_of(b->p) == pool_ptr(b->pool), "owner of %p",
             (void *)b->p);
}

static void check_everything(void)
{
    for (size_t i = 0; i < m.nlive; i++) {
        check_block(&m.live[i]);
        check_shadow_live(&m.live[i]);
    }
    check_all_stats();
    FZ_CHECK(sigsafe_current_pool() == pool_ptr(current_index()),
             "current pool");
}

/* ------------------------------------------------ model transitions */

/* A block just handed out by pool k for a request of req bytes. */
static void took(int k, unsigned char *p, size_t req, size_t align)
{
    fz_pool *fp = &m.pools[k];
    size_t usable = sigsafe_usable_size(p);
    FZ_CHECK(usable >= req, "usable %zu < request %zu", usable, req);
    FZ_CHECK(usable > 0 && usable % 16 == 0, "usable %zu", usable);
    FZ_CHECK((uintptr_t)p % 16 == 0, "%p not 16-aligned", (void *)p);
    FZ_CHECK(align == 0 || (uintptr_t)p % align == 0,
             "%p not %zu-aligned", (void *)p, align);
    FZ_CHECK(sigsafe_pool_of(p) == fp->pool, "block %p in pool %d: owner %p",
             (void *)p, k, (void *)sigsafe_pool_of(p));
    /* Never a block that is live already, nor one overlapping it. */
    for (size_t i = 0; i < m.nlive; i++)
        FZ_CHECK((uintptr_t)p + usable <= (uintptr_t)m.live[i].p ||
                     (uintptr_t)m.live[i].p + m.live[i].usable <= (uintptr_t)p,
                 "%p (%zu) overlaps live %p (%zu)", (void *)p, usable,
                 (void *)m.live[i].p, m.live[i].usable);
    FZ_CHECK(m.nlive < FZ_MAX_LIVE, "model full");
    fz_block *b = &m.live[m.nlive++];
    b->p = p;
    b->usable = usable;
    b->req = req;
    b->pool = k;
    b->seed = mix(++m.seeds);
    fill(p, usable, b->seed); /* the whole usable size is the caller's */
    fp->allocs++;
    fp->in_use += usable;
    if (fp->in_use > fp->peak)
        fp->peak = fp->in_use;
    fp->fresh = 0;
    check_shadow_live(b);
}

/* Pool k returned NULL for a request of req bytes (0: not a size). */
static void failed(int k, size_t req)
{
    fz_pool *fp = &m.pools[k];
    fp->failed++;
    if (req == 0 || req > fp->capacity / 2)
        return;
    /* SPEC: a pool of capacity C serves a block of C/2 bytes.  Spans stay
     * with their class (docs/design.md §4), so an emptied pool keeps the
     * promise for slot sizes; a fresh one for every size. */
    size_t need = class_size_of(req);
    if (fp->flags & SIGSAFE_POOL_GUARD_EACH) {
        need = class_size_of((need + FZ_PAGE - 1) & ~(size_t)(FZ_PAGE - 1));
        if (need > fp->capacity)
            return; /* a whole page block cannot fit such a pool */
    } else if (!fp->fresh && need <= FZ_SMALL_MAX) {
        return;
    }
    FZ_CHECK(fp->in_use != 0, "empty pool %d (capacity %zu) refused %zu bytes",
             k, fp->capacity, req);
}

static void remember_freed(uintptr_t a)
{
    m.freed[m.nfreed++ % FZ_MAX_FREED] = a;
}

/* Live block i was freed (by free or by realloc). */
static void gave(size_t i)
{
    fz_block b = m.live[i];
    fz_pool *fp = &m.pools[b.pool];
    m.live[i] = m.live[--m.nlive];
    fp->frees++;
    fp->in_use -= b.usable;
    remember_freed((uintptr_t)b.p);
    FZ_CHECK(sigsafe_usable_size(b.p) == 0, "freed %p still live",
             (void *)b.p);
    FZ_CHECK(sigsafe_pool_of(b.p) == fp->pool, "freed %p changed owner",
             (void *)b.p);
    check_shadow_freed(b.p, b.usable);
}

/* A bad pointer was given to free or realloc: rejected, counted once. */
static void rejected(const void *p)
{
    sigsafe_pool *owner = sigsafe_pool_of(p);
    int k = owner ? pool_index(owner) : FZ_DEFAULT;
    FZ_CHECK(k >= 0, "bad pointer %p in an unknown pool", p);
    m.pools[k].rejected++;
    FZ_CHECK(sigsafe_usable_size(p) == 0, "bad pointer %p is live", p);
}

/* ------------------------------------------------------------ arguments */

/* A request size: mostly small, sometimes near the capacity or absurd. */
static size_t size_arg(fz_in *in, size_t capacity)
{
    unsigned sel = u8(in);
    switch (sel & 7) {
    case 0:
    case 1:
        return u8(in);
    case 2:
        return u16(in) % 4097;
    case 3:
        return u16(in) % 20001;
    case 4: { /* about the capacity */
        size_t d = u8(in) & 31;
        switch (sel >> 3 & 3) {
        case 0: return capacity / 2 - (d < capacity / 2 ? d : 0);
        case 1: return capacity / 2 + d;
        case 2: return capacity - (d < capacity ? d : 0);
        default: return capacity + d;
        }
    }
    case 5: { /* a class boundary, plus or minus one */
        size_t b = (size_t)16 << (u8(in) % 17);
        return sel & 8 ? b + 1 : b - (sel >> 4 & 1);
    }
    case 6:
        return u32(in) % ((size_t)1 << 21);
    default: /* absurd */
        return sel & 8 ? SIZE_MAX - u8(in) : (size_t)1 << (32 + u8(in) % 30);
    }
}

/* Where an allocation goes: a created pool, the default pool by handle,
 * the current context, or an invalid handle. */
enum { T_POOL, T_CONTEXT, T_NULL, T_BOGUS };

typedef struct fz_target {
    int kind;
    int k; /* model index (T_POOL, T_CONTEXT) */
} fz_target;

static fz_target target_arg(fz_in *in)
{
    unsigned t = u8(in);
    fz_target r = {T_POOL, 0};
    if (t >= 0xfc) {
        r.kind = t & 1 ? T_NULL : T_BOGUS;
        r.k = -1;
    } else if (t & 0x80) {
        r.kind = T_CONTEXT;
        r.k = current_index();
    } else {
        r.k = (int)(t % (unsigned)(m.npools + 1));
        if (r.k == m.npools)
            r.k = FZ_DEFAULT;
    }
    return r;
}

static sigsafe_pool *target_pool(fz_target t)
{
    if (t.kind == T_NULL)
        return NULL;
    if (t.kind == T_BOGUS)
        return (sigsafe_pool *)(void *)static_bytes;
    return pool_ptr(t.k);
}

/* --------------------------------------------------------------- ops */

static void op_alloc(fz_in *in)
{
    fz_target t = target_arg(in);
    size_t cap = t.k >= 0 ? m.pools[t.k].capacity : 4096;
    size_t n = size_arg(in, cap);
    unsigned char *p = t.kind == T_CONTEXT
                           ? sigsafe_alloc(n)
                           : sigsafe_pool_alloc(target_pool(t), n);
    if (t.k < 0) {
        FZ_CHECK(p == NULL, "alloc from an invalid pool handle");
        return;
    }
    if (p)
        took(t.k, p, n, 0);
    else
        failed(t.k, n);
}

static void op_calloc(fz_in *in)
{
    fz_target t = target_arg(in);
    unsigned sel = u8(in);
    size_t cnt, size;
    if (sel & 1) { /* n * size overflows */
        cnt = ((size_t)1 << (33 + sel % 30)) + u8(in);
        size = ((size_t)1 << (33 - sel % 30 + 30)) + u8(in);
    } else {
        cnt = u8(in);
        size = u16(in) % 2049;
    }
    size_t bytes;
    int over = __builtin_mul_overflow(cnt, size, &bytes);
    unsigned char *p = t.kind == T_CONTEXT
                           ? sigsafe_calloc(cnt, size)
                           : sigsafe_pool_calloc(target_pool(t), cnt, size);
    if (t.k < 0) {
        FZ_CHECK(p == NULL, "calloc from an invalid pool handle");
        return;
    }
    if (over) {
        FZ_CHECK(p == NULL, "calloc(%zu, %zu) overflow not refused", cnt,
                 size);
        failed(t.k, 0);
        return;
    }
    if (!p) {
        failed(t.k, bytes);
        return;
    }
    for (size_t i = 0; i < bytes; i++)
        FZ_CHECK(p[i] == 0, "calloc byte %zu of %zu is %u", i, bytes, p[i]);
    took(t.k, p, bytes, 0);
}

static void op_aligned(fz_in *in)
{
    fz_target t = target_arg(in);
    unsigned sel = u8(in);
    size_t align;
    switch (sel & 3) {
    case 0:
    case 1:
        align = (size_t)1 << (sel >> 2) % 13; /* 1 .. 4096: valid */
        break;
    case 2:
        align = (size_t)8192 << (sel >> 2) % 8; /* above a page */
        break;
    default:
        align = sel >> 2; /* 0 and non powers of two (and some valid) */
        break;
    }
    size_t cap = t.k >= 0 ? m.pools[t.k].capacity : 4096;
    size_t n = size_arg(in, cap);
    unsigned char *p =
        t.kind == T_CONTEXT
            ? sigsafe_aligned_alloc(align, n)
            : sigsafe_pool_aligned_alloc(target_pool(t), align, n);
    if (t.k < 0) {
        FZ_CHECK(p == NULL, "aligned_alloc from an invalid pool handle");
        return;
    }
    int valid = align && !(align & (align - 1)) && align <= FZ_PAGE;
    if (!valid) {
        FZ_CHECK(p == NULL, "alignment %zu accepted", align);
        failed(t.k, 0);
        return;
    }
    if (p)
        took(t.k, p, n, align);
    else
        failed(t.k, n < align ? align : n);
}

static void op_free(fz_in *in)
{
    if (!m.nlive) {
        sigsafe_free(NULL); /* a no-op: nothing may change */
        return;
    }
    size_t i = u8(in) % m.nlive;
    check_block(&m.live[i]);
    sigsafe_free(m.live[i].p);
    gave(i);
}

static void op_realloc(fz_in *in)
{
    unsigned sel = u8(in);
    if (!m.nlive || (sel & 7) == 0) { /* realloc(NULL, n) allocates */
        fz_target t = target_arg(in);
        size_t cap = t.k >= 0 ? m.pools[t.k].capacity : 4096;
        size_t n = size_arg(in, cap);
        unsigned char *p = t.kind == T_CONTEXT
                               ? sigsafe_realloc(NULL, n)
                               : sigsafe_pool_realloc(target_pool(t), NULL, n);
        if (t.k < 0) {
            FZ_CHECK(p == NULL, "realloc(NULL) from an invalid pool handle");
            return;
        }
        if (p)
            took(t.k, p, n, 0);
        else
            failed(t.k, n);
        return;
    }
    size_t i = u8(in) % m.nlive;
    fz_block b = m.live[i];
    size_t n = sel & 8 ? 0 : size_arg(in, m.pools[b.pool].capacity);
    check_block(&b);
    /* The pool argument is ignored when ptr is a block: it keeps its own. */
    int other = (int)(sel >> 4) % (m.npools + 1);
    unsigned char *q =
        sel & 0x80 ? sigsafe_realloc(b.p, n)
                   : sigsafe_pool_realloc(
                         pool_ptr(other == m.npools ? FZ_DEFAULT : other), b.p,
                         n);
    if (n == 0) {
        FZ_CHECK(q == NULL, "realloc(p, 0) returned %p", (void *)q);
        gave(i);
        return;
    }
    if (n <= b.usable) {
        FZ_CHECK(q == b.p, "shrink moved %p to %p", (void *)b.p, (void *)q);
        m.live[i].req = n;
        return;
    }
    fz_pool *fp = &m.pools[b.pool];
    if (!q) {
        failed(b.pool, n);
        check_block(&m.live[i]); /* left intact */
        return;
    }
    size_t at = check(q, b.usable, b.seed);
    FZ_CHECK(at == b.usable, "realloc lost byte %zu of %zu", at, b.usable);
    /* Both were live at once: the peak saw them together. */
    size_t usable = sigsafe_usable_size(q);
    if (fp->in_use + usable > fp->peak)
        fp->peak = fp->in_use + usable;
    gave(i);
    took(b.pool, q, n, 0);
}

/* Bad frees: each must be rejected and counted, and change nothing. */
static void op_bad_free(fz_in *in)
{
    unsigned sel = u8(in);
    unsigned char local[32];
    void *heap = NULL;
    const unsigned char *p = NULL;
    switch (sel % 6) {
    case 0:
        p = local + (sel >> 3 & 15);
        break;
    case 1:
        p = static_bytes + (sel >> 3 & 31);
        break;
    case 2:
        heap = malloc(32);
        FZ_CHECK(heap != NULL, "malloc");
        p = heap;
        break;
    case 3: { /* interior */
        if (!m.nlive)
            return;
        fz_block *b = &m.live[u8(in) % m.nlive];
        p = b->p + 1 + u16(in) % (b->usable - 1);
        break;
    }
    case 4: { /* double free, unless the address is live again */
        if (!m.nfreed)
            return;
        size_t have = m.nfreed < FZ_MAX_FREED ? m.nfreed : FZ_MAX_FREED;
        p = (const unsigned char *)m.freed[u8(in) % have];
        break;
    }
    default: { /* wild: anywhere in or near a pool's reservation */
        int k = (int)(u8(in) % (unsigned)(m.npools + 1));
        if (k == m.npools)
            k = FZ_DEFAULT;
        uint32_t off = u32(in);
        uintptr_t base = (uintptr_t)pool_ptr(k);
        if (m.nlive && (sel & 0x40))
            base = (uintptr_t)m.live[u8(in) % m.nlive].p;
        p = (const unsigned char *)(base + (off % ((uint32_t)8 << 20)) -
                                    (sel & 0x80 ? 4096 : 0));
        break;
    }
    }
    if (find_live((uintptr_t)p) >= 0)
        return; /* a real block after all */
    if (sel & 0x40 && sel % 6 != 5) {
        size_t n = u8(in);
        FZ_CHECK(sigsafe_realloc((void *)p, n) == NULL,
                 "realloc of bad pointer %p", (const void *)p);
    } else {
        sigsafe_free((void *)p);
    }
    rejected(p);
    free(heap);
}

static void op_rewrite(fz_in *in)
{
    if (!m.nlive)
        return;
    fz_block *b = &m.live[u8(in) % m.nlive];
    check_block(b);
    b->seed = mix(++m.seeds);
    fill(b->p, b->usable, b->seed);
}

static void op_enter(fz_in *in)
{
    if (m.depth == FZ_MAX_DEPTH)
        return;
    unsigned t = u8(in);
    int k = (int)(t % (unsigned)(m.npools + 2));
    if (k == m.npools)
        k = FZ_DEFAULT;
    else if (k == m.npools + 1)
        k = -1; /* enter(NULL): the default pool serves */
    sigsafe_context_enter(k < 0 ? NULL : pool_ptr(k));
    m.ctx[m.depth++] = k;
    FZ_CHECK(sigsafe_current_pool() == pool_ptr(current_index()),
             "current pool after enter");
}

static void op_leave(void)
{
    sigsafe_context_leave(); /* unbalanced: ignored */
    if (m.depth)
        m.depth--;
    FZ_CHECK(sigsafe_current_pool() == pool_ptr(current_index()),
             "current pool after leave");
}

static void op_query(fz_in *in)
{
    sigsafe_stats s;
    FZ_CHECK(sigsafe_pool_stats(NULL, &s) == EINVAL, "stats(NULL)");
    FZ_CHECK(sigsafe_pool_stats(pool_ptr(0), NULL) == EINVAL, "stats(, NULL)");
    FZ_CHECK(sigsafe_usable_size(NULL) == 0 && sigsafe_pool_of(NULL) == NULL,
             "NULL queries");
    FZ_CHECK(sigsafe_pool_of(static_bytes) == NULL, "static in a pool");
    FZ_CHECK(sigsafe_default_pool() == pool_ptr(FZ_DEFAULT), "default pool");
    if (m.nlive) {
        fz_block *b = &m.live[u8(in) % m.nlive];
        size_t off = 1 + u16(in) % (b->usable - 1 ? b->usable - 1 : 1);
        if (off < b->usable) {
            FZ_CHECK(sigsafe_usable_size(b->p + off) == 0, "interior usable");
            FZ_CHECK(sigsafe_pool_of(b->p + off) == pool_ptr(b->pool),
                     "interior owner");
        }
    }
}

static void step(fz_in *in)
{
    unsigned op = u8(in);
    switch (op % 16) {
    case 0:
    case 1:
    case 2:
        if (m.nlive == FZ_MAX_LIVE)
            op_free(in);
        else
            op_alloc(in);
        break;
    case 3:
        if (m.nlive < FZ_MAX_LIVE)
            op_calloc(in);
        break;
    case 4:
        if (m.nlive < FZ_MAX_LIVE)
            op_aligned(in);
        break;
    case 5:
    case 6:
        if (m.nlive < FZ_MAX_LIVE)
            op_realloc(in);
        break;
    case 7:
    case 8:
        op_free(in);
        break;
    case 9:
        op_bad_free(in);
        break;
    case 10:
        op_rewrite(in);
        break;
    case 11:
        op_enter(in);
        break;
    case 12:
        op_leave();
        break;
    case 13:
        op_query(in);
        break;
    case 14:
        check_everything();
        break;
    default:
        if (m.nlive == FZ_MAX_LIVE)
            op_free(in);
        else
            op_alloc(in);
        break;
    }
}

/* ------------------------------------------------------------ set-up */

static void start_pool(int k, sigsafe_pool *pool, unsigned flags)
{
    fz_pool *fp = &m.pools[k];
    memset(fp, 0, sizeof *fp);
    fp->pool = pool;
    fp->flags = flags;
    fp->fresh = 1;
    FZ_CHECK(sigsafe_pool_stats(pool, &fp->base) == 0, "stats");
    fp->capacity = fp->base.capacity;
    fp->in_use = fp->base.bytes_in_use;
    fp->peak = fp->base.peak_bytes_in_use;
    fp->mapped = fp->base.bytes_mapped;
}

static void setup(fz_in *in)
{
    static int once;
    if (!once) {
        sigsafe_pool_config def = {.name = "fuzz-default",
                                   .capacity = FZ_DEFAULT_CAPACITY};
        FZ_CHECK(sigsafe_init(&def) == 0, "init");
        sigsafe_set_report_fd(-1); /* bad frees are the point */
        once = 1;
    }
    memset(&m, 0, sizeof m);
    m.npools = 1 + (int)(u8(in) % FZ_NPOOLS);
    for (int k = 0; k < m.npools; k++) {
        size_t cap = capacities[u8(in) % (sizeof capacities /
                                          sizeof capacities[0])];
        unsigned flags = u8(in) & 7;
        char name[16];
        snprintf(name, sizeof name, "fuzz%d", k);
        sigsafe_pool_config cfg = {.name = name, .capacity = cap,
                                   .flags = flags};
        sigsafe_pool *pool = NULL;
        int rc = sigsafe_pool_create(&cfg, &pool);
        if ((flags & SIGSAFE_POOL_GUARD_EACH) &&
            (flags & SIGSAFE_POOL_NO_SYSCALLS)) {
            FZ_CHECK(rc == EINVAL, "GUARD_EACH|NO_SYSCALLS accepted");
            cfg.flags = flags &= ~(unsigned)SIGSAFE_POOL_NO_SYSCALLS;
            rc = sigsafe_pool_create(&cfg, &pool);
        }
        if ((flags & SIGSAFE_POOL_GUARD_EACH) && cap < 4096) {
            /* GUARD_EACH blocks are whole pages: a pool must hold one. */
            FZ_CHECK(rc == EINVAL, "GUARD_EACH below a page accepted");
            cfg.flags = flags &= ~(unsigned)SIGSAFE_POOL_GUARD_EACH;
            rc = sigsafe_pool_create(&cfg, &pool);
        }
        FZ_CHECK(rc == 0 && pool != NULL, "pool_create(%zu, %#x) = %d", cap,
                 flags, rc);
        start_pool(k, pool, flags);
        FZ_CHECK(m.pools[k].capacity == cap, "capacity %zu, asked %zu",
                 m.pools[k].capacity, cap);
        sigsafe_stats s;
        FZ_CHECK(sigsafe_pool_stats(pool, &s) == 0 && s.allocs == 0 &&
                     s.frees == 0 && s.failed_allocs == 0 &&
                     s.rejected_frees == 0 && s.bytes_in_use == 0 &&
                     s.peak_bytes_in_use == 0,
                 "new pool %d not at zero", k);
    }
    start_pool(FZ_DEFAULT, sigsafe_default_pool(), 0);
    m.pools[FZ_DEFAULT].fresh = 0;
    FZ_CHECK(m.pools[FZ_DEFAULT].in_use == 0,
             "default pool not empty at start: %zu",
             m.pools[FZ_DEFAULT].in_use);
}

static void teardown(void)
{
    check_everything();
    while (m.depth)
        op_leave();
    while (m.nlive) {
        check_block(&m.live[m.nlive - 1]);
        sigsafe_free(m.live[m.nlive - 1].p);
        gave(m.nlive - 1);
    }
    check_all_stats();
    for (int k = 0; k < m.npools; k++) {
        FZ_CHECK(m.pools[k].in_use == 0, "pool %d not empty", k);
        sigsafe_pool_destroy(m.pools[k].pool);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size, 0};
    setup(&in);
    for (fz_op_index = 0; in.i < in.n && fz_op_index < FZ_MAX_OPS;
         fz_op_index++) {
        step(&in);
        check_all_stats();
    }
    teardown();
    return 0;
}
