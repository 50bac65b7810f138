/* SPDX-License-Identifier: MIT */
/*
 * sigsafe-bench: the allocators under test.  Every backend is reached
 * through the same two function pointers, so each pays one indirect call.
 *
 * The malloc peers are shared libraries that all export `malloc`; each is
 * loaded with dlopen(RTLD_LOCAL) and its own entry points are taken from its
 * handle, so the process's malloc stays glibc's and the peers never see a
 * pointer from another allocator.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sigsafe.h>

#include "bench.h"

size_t bench_pool_capacity = (size_t)64 << 20;

/* -------------------------------------------------------------- sigsafe */

static sigsafe_pool *ss_pool;

static void *ss_alloc(size_t n)
{
    return sigsafe_pool_alloc(ss_pool, n);
}

static int ss_setup(bench_backend *b)
{
    sigsafe_pool_config cfg = {.name = "bench",
                               .capacity = bench_pool_capacity};
    int err = sigsafe_pool_create(&cfg, &ss_pool);
    if (err) {
        b->why = "sigsafe_pool_create failed";
        return err;
    }
    snprintf(b->version, sizeof b->version, "%d.%d.%d",
             SIGSAFE_VERSION_MAJOR, SIGSAFE_VERSION_MINOR,
             SIGSAFE_VERSION_PATCH);
    return 0;
}

int bench_sigsafe_stats(size_t *bytes_mapped, size_t *peak_in_use)
{
    sigsafe_stats st;
    if (!ss_pool || sigsafe_pool_stats(ss_pool, &st))
        return -1;
    *bytes_mapped = st.bytes_mapped;
    *peak_in_use = st.peak_bytes_in_use;
    return 0;
}

int bench_sigsafe_summary(char *buf, size_t n)
{
    sigsafe_stats st;
    if (!ss_pool || sigsafe_pool_stats(ss_pool, &st))
        return -1;
    snprintf(buf, n,
             "%llu allocations, %llu frees, %llu failed, %llu rejected, "
             "%zu bytes still in use",
             (unsigned long long)st.allocs, (unsigned long long)st.frees,
             (unsigned long long)st.failed_allocs,
             (unsigned long long)st.rejected_frees, st.bytes_in_use);
    /* bytes_in_use may count what per-thread caches hold (SPEC): not a
     * harness error. */
    return st.failed_allocs || st.rejected_frees || st.allocs != st.frees;
}

/* ---------------------------------------------------------------- glibc */

static int glibc_setup(bench_backend *b)
{
    snprintf(b->version, sizeof b->version, "%s", gnu_get_libc_version());
    return 0;
}

/* ------------------------------------------- dlopen'ed malloc libraries */

typedef struct dl_peer {
    const char *env;      /* environment variable naming the library */
    const char *path;     /* found at configure time, or a soname */
    const char *alloc[2]; /* entry points to try, in order */
    const char *free[2];
    void *(*fn_alloc)(size_t);
    void (*fn_free)(void *);
} dl_peer;

#ifndef SIGSAFE_BENCH_JEMALLOC_LIB
#define SIGSAFE_BENCH_JEMALLOC_LIB "libjemalloc.so.2"
#endif
#ifndef SIGSAFE_BENCH_MIMALLOC_LIB
#define SIGSAFE_BENCH_MIMALLOC_LIB "libmimalloc.so.2"
#endif
#ifndef SIGSAFE_BENCH_TCMALLOC_LIB
#define SIGSAFE_BENCH_TCMALLOC_LIB "libtcmalloc_minimal.so.4"
#endif

/* A jemalloc built with a prefix exports je_malloc; Debian's exports malloc. */
static dl_peer je = {"SIGSAFE_BENCH_JEMALLOC", SIGSAFE_BENCH_JEMALLOC_LIB,
                     {"je_malloc", "malloc"}, {"je_free", "free"}, 0, 0};
static dl_peer mi = {"SIGSAFE_BENCH_MIMALLOC", SIGSAFE_BENCH_MIMALLOC_LIB,
                     {"mi_malloc", NULL}, {"mi_free", NULL}, 0, 0};
static dl_peer tc = {"SIGSAFE_BENCH_TCMALLOC", SIGSAFE_BENCH_TCMALLOC_LIB,
                     {"tc_malloc", NULL}, {"tc_free", NULL}, 0, 0};

static char dl_why[3][160];

static void *dl_sym(void *h, const char *const names[2])
{
    for (int i = 0; i < 2 && names[i]; i++) {
        void *f = dlsym(h, names[i]);
        if (f)
            return f;
    }
    return NULL;
}

/* Returns the handle, or NULL with b->why set. */
static void *dl_open(bench_backend *b, dl_peer *p, char *why, size_t n)
{
    const char *path = getenv(p->env);
    if (!path || !*path)
        path = p->path;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        /* Name the library, not where it was looked for. */
        const char *e = dlerror(), *base = strrchr(path, '/');
        size_t len = strlen(path);
        base = base ? base + 1 : path;
        if (e && strncmp(e, path, len) == 0 && e[len] == ':')
            e += len + 1 + (e[len + 1] == ' ');
        snprintf(why, n, "cannot load %s: %s", base, e ? e : "dlopen failed");
        b->why = why;
        return NULL;
    }
    /* Both are function pointers stored as object pointers by dlsym. */
    *(void **)&p->fn_alloc = dl_sym(h, p->alloc);
    *(void **)&p->fn_free = dl_sym(h, p->free);
    if (!p->fn_alloc || !p->fn_free) {
        const char *base = strrchr(path, '/');
        snprintf(why, n, "%s exports no %s/%s", base ? base + 1 : path,
                 p->alloc[0], p->free[0]);
        b->why = why;
        return NULL;
    }
    return h;
}

static void *je_alloc(size_t n) { return je.fn_alloc(n); }
static void je_free(void *p) { je.fn_free(p); }
static void *mi_alloc(size_t n) { return mi.fn_alloc(n); }
static void mi_free(void *p) { mi.fn_free(p); }
static void *tc_alloc(size_t n) { return tc.fn_alloc(n); }
static void tc_free(void *p) { tc.fn_free(p); }

static int je_setup(bench_backend *b)
{
    void *h = dl_open(b, &je, dl_why[0], sizeof dl_why[0]);
    if (!h)
        return -1;
    int (*ctl)(const char *, void *, size_t *, void *, size_t);
    *(void **)&ctl = dlsym(h, "mallctl");
    if (!ctl)
        *(void **)&ctl = dlsym(h, "je_mallctl");
    const char *v = NULL;
    size_t len = sizeof v;
    if (ctl && ctl("version", &v, &len, NULL, 0) == 0 && v)
        snprintf(b->version, sizeof b->version, "%.20s", v);
    b->alloc = je_alloc;
    b->free = je_free;
    return 0;
}

static int mi_setup(bench_backend *b)
{
    void *h = dl_open(b, &mi, dl_why[1], sizeof dl_why[1]);
    if (!h)
        return -1;
    int (*ver)(void);
    *(void **)&ver = dlsym(h, "mi_version");
    if (ver) {
        int v = ver(); /* e.g. 209 for 2.0.9 */
        snprintf(b->version, sizeof b->version, "%d.%d.%d", v / 100,
                 v / 10 % 10, v % 10);
    }
    b->alloc = mi_alloc;
    b->free = mi_free;
    return 0;
}

static int tc_setup(bench_backend *b)
{
    void *h = dl_open(b, &tc, dl_why[2], sizeof dl_why[2]);
    if (!h)
        return -1;
    const char *(*ver)(int *, int *, const char **);
    *(void **)&ver = dlsym(h, "tc_version");
    if (ver) {
        int maj, min;
        const char *patch;
        ver(&maj, &min, &patch);
        snprintf(b->version, sizeof b->version, "%d.%d%s", maj, min,
                 patch ? patch : "");
    }
    b->alloc = tc_alloc;
    b->free = tc_free;
    return 0;
}

/* --------------------------------------------- Abseil LowLevelAlloc arena */

#ifdef SIGSAFE_BENCH_HAVE_ABSL
/* bench/absl_shim.cc */
int sigsafe_bench_absl_init(char *version, size_t n);
void *sigsafe_bench_absl_alloc(size_t size);
void sigsafe_bench_absl_free(void *ptr);

static int absl_setup(bench_backend *b)
{
    if (sigsafe_bench_absl_init(b->version, sizeof b->version)) {
        b->why = "LowLevelAlloc::NewArena(kAsyncSignalSafe) failed";
        return -1;
    }
    b->alloc = sigsafe_bench_absl_alloc;
    b->free = sigsafe_bench_absl_free;
    return 0;
}
#else
static int absl_setup(bench_backend *b)
{
    b->why = "Abseil (libabsl-dev) or a C++ compiler was not found at "
             "configure time";
    return -1;
}
#endif

/* ----------------------------------------------------- bump, never frees */

/*
 * Like Breakpad's PageAllocator: whole pages from mmap, a pointer bumped
 * through the current page, a new mapping when it does not fit, nothing
 * freed until the allocator goes away.  One allocator per thread (Breakpad
 * gives each user its own instance); thread_done unmaps this thread's pages.
 */
typedef struct bump_page {
    struct bump_page *next;
    size_t npages;
} bump_page;

typedef struct bump_state {
    char *cur;         /* current page, or NULL */
    size_t off;        /* offset of the next block in it */
    bump_page *pages;  /* every mapping, for thread_done */
} bump_state;

static __thread bump_state bump_tls;
static size_t bump_pagesize;

static void *bump_alloc(size_t n)
{
    bump_state *s = &bump_tls;
    n = (n + 15) & ~(size_t)15; /* keep the 16-byte alignment others give */
    if (!n)
        n = 16;
    if (s->cur && bump_pagesize - s->off >= n) {
        char *p = s->cur + s->off;
        s->off += n;
        if (s->off == bump_pagesize)
            s->cur = NULL;
        return p;
    }
    const size_t hdr = (sizeof(bump_page) + 15) & ~(size_t)15;
    size_t npages = (n + hdr + bump_pagesize - 1) / bump_pagesize;
    char *m = mmap(NULL, npages * bump_pagesize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    bump_page *pg = (bump_page *)m;
    pg->next = s->pages;
    pg->npages = npages;
    s->pages = pg;
    /* The rest of the last page, if any, serves the next requests. */
    size_t end = (hdr + n) % bump_pagesize;
    s->cur = end ? m + (npages - 1) * bump_pagesize : NULL;
    s->off = end;
    return m + hdr;
}

static void bump_free(void *p)
{
    (void)p; /* never frees */
}

static void bump_done(void)
{
    bump_state *s = &bump_tls;
    while (s->pages) {
        bump_page *pg = s->pages;
        s->pages = pg->next;
        munmap(pg, pg->npages * bump_pagesize);
    }
    s->cur = NULL;
    s->off = 0;
}

static int bump_setup(bench_backend *b)
{
    (void)b;
    bump_pagesize = (size_t)sysconf(_SC_PAGESIZE);
    return 0;
}

/* ---------------------------------------- signals masked around a mutex */

/*
 * The usual "make malloc signal-safe" wrapper: block every signal, take a
 * mutex, call malloc.  Two system calls per call, and still not safe: a
 * fault inside the masked section kills the process, and a handler reached
 * some other way (another thread's lock held across fork) deadlocks.
 */
static pthread_mutex_t mask_lock = PTHREAD_MUTEX_INITIALIZER;

static void *mask_alloc(size_t n)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&mask_lock);
    void *p = malloc(n);
    pthread_mutex_unlock(&mask_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p;
}

static void mask_free(void *p)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&mask_lock);
    free(p);
    pthread_mutex_unlock(&mask_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int mask_setup(bench_backend *b)
{
    (void)b;
    return 0;
}

/* ------------------------------------- bare shared lock-free stack (ref) */

/*
 * A Treiber stack over preallocated 64-byte nodes: the cost floor of one
 * shared lock-free list, one pop per alloc and one push per free.
 * Invariant: nodes and their out-of-band links stay mapped for the
 * process's life, so a pop may read a stale link safely.  ABA: the head is
 * one 64-bit word, node index (low 32 bits) and a tag (high 32 bits) that
 * every pop bumps; a pop whose node was popped and pushed back meanwhile
 * sees a newer tag and its CAS fails.  Lock-free: a failed CAS means
 * another context's CAS succeeded.  Callers: any thread, any handler.
 */
#define TS_NODES (1u << 16)
#define TS_EMPTY 0xffffffffu

typedef struct ts_node {
    _Alignas(64) char bytes[64];
} ts_node;

static ts_node *ts_base;
static _Atomic uint32_t *ts_next;
static _Alignas(64) _Atomic uint64_t ts_head;

static void *ts_pop(size_t n)
{
    (void)n; /* a cost reference: every request gets one 64-byte node */
    /* acquire: pairs with the release CAS in ts_push(): the link is seen */
    uint64_t h = atomic_load_explicit(&ts_head, memory_order_acquire);
    for (;;) {
        uint32_t i = (uint32_t)h;
        if (i == TS_EMPTY)
            return NULL;
        /* relaxed: a stale link only makes the CAS below fail */
        uint32_t nx = atomic_load_explicit(&ts_next[i], memory_order_relaxed);
        uint64_t nh = ((h >> 32) + 1) << 32 | nx;
        /* acquire: a reloaded head may name a node pushed since */
        if (atomic_compare_exchange_weak_explicit(&ts_head, &h, nh,
                                                  memory_order_acquire,
                                                  memory_order_acquire))
            return &ts_base[i];
    }
}

static void ts_push(void *p)
{
    uint32_t i = (uint32_t)((ts_node *)p - ts_base);
    /* relaxed: the CAS below re-reads the head if this one is stale */
    uint64_t h = atomic_load_explicit(&ts_head, memory_order_relaxed);
    do {
        /* relaxed: published by the release CAS that follows */
        atomic_store_explicit(&ts_next[i], (uint32_t)h, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(
        &ts_head, &h, (h & ~(uint64_t)TS_EMPTY) | i,
        /* release: publishes the link; pairs with acquire in ts_pop() */
        memory_order_release, memory_order_relaxed));
}

static int ts_setup(bench_backend *b)
{
    ts_base = mmap(NULL, (size_t)TS_NODES * sizeof(ts_node),
                   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ts_next = mmap(NULL, (size_t)TS_NODES * sizeof *ts_next,
                   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ts_base == MAP_FAILED || ts_next == MAP_FAILED) {
        b->why = "mmap failed";
        return -1;
    }
    /* Chain every node, then publish the chain before any thread starts. */
    for (uint32_t i = 0; i < TS_NODES; i++) {
        ts_base[i].bytes[0] = 0; /* prefault */
        atomic_store_explicit(&ts_next[i], i + 1 < TS_NODES ? i + 1 : TS_EMPTY,
                              memory_order_relaxed);
    }
    /* release: publishes the links; threads start after this anyway */
    atomic_store_explicit(&ts_head, 0, memory_order_release);
    return 0;
}

/* ------------------------------------------------------------- the table */

bench_backend bench_backends[] = {
    {"sigsafe", "sigsafe", BK_HANDLER, ss_setup, ss_alloc, sigsafe_free,
     NULL, NULL, "", 0},
    {"glibc", "glibc malloc", BK_UNSAFE, glibc_setup, malloc, free, NULL,
     NULL, "", 0},
    {"jemalloc", "jemalloc", 0, je_setup, NULL, NULL, NULL, NULL, "", 0},
    {"mimalloc", "mimalloc", 0, mi_setup, NULL, NULL, NULL, NULL, "", 0},
    {"tcmalloc", "tcmalloc (gperftools)", 0, tc_setup, NULL, NULL, NULL,
     NULL, "", 0},
    {"abseil", "Abseil LowLevelAlloc, signal-safe arena", BK_HANDLER,
     absl_setup, NULL, NULL, NULL, NULL, "", 0},
    {"bump", "bump, never frees (Breakpad-like)", BK_HANDLER, bump_setup,
     bump_alloc, bump_free, bump_done, NULL, "", 0},
    {"maskmutex", "sigprocmask + mutex + malloc", 0, mask_setup, mask_alloc,
     mask_free, NULL, NULL, "", 0},
    {"treiber", "bare shared lock-free stack (reference)",
     BK_HANDLER | BK_FIXED64 | BK_REFERENCE, ts_setup, ts_pop, ts_push, NULL,
     NULL, "", 0},
};
const size_t bench_nbackends = sizeof bench_backends / sizeof bench_backends[0];

bench_backend *bench_backend_find(const char *name)
{
    for (size_t i = 0; i < bench_nbackends; i++)
        if (strcmp(bench_backends[i].name, name) == 0)
            return &bench_backends[i];
    return NULL;
}
