/* SPDX-License-Identifier: MIT */
/*
 * sigsafe: memory allocation for signal handlers.
 *
 * Pools carved out of anonymous mmap regions, lock-free free lists, guard
 * pages after every span.  Every function in the "AS-safe" section may be
 * called from a signal handler that interrupted any code, including another
 * call of the same function on the same thread.
 */
#ifndef SIGSAFE_H
#define SIGSAFE_H

#include <stddef.h>
#include <stdint.h>

struct sigaction;

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Version.  ABI promise: within one major version, sigsafe only adds
 * functions and enumerators; existing declarations and struct layouts keep
 * their meaning.
 */
#define SIGSAFE_VERSION_MAJOR 0
#define SIGSAFE_VERSION_MINOR 1
#define SIGSAFE_VERSION_PATCH 0
#define SIGSAFE_VERSION_HEX                                                  \
    ((SIGSAFE_VERSION_MAJOR << 16) | (SIGSAFE_VERSION_MINOR << 8) |          \
     SIGSAFE_VERSION_PATCH)

/*
 * Allocator attributes.  There is deliberately no alloc_size: a block may be
 * used up to sigsafe_usable_size() bytes, and with alloc_size the compiler
 * (and _FORTIFY_SOURCE) would take the requested size as the object's end.
 */
#if defined(__GNUC__) || defined(__clang__)
#define SIGSAFE_NODISCARD __attribute__((warn_unused_result))
#define SIGSAFE_MALLOC __attribute__((malloc))
#else
#define SIGSAFE_NODISCARD
#define SIGSAFE_MALLOC
#endif

/* ------------------------------------------------------------------ Types */

typedef struct sigsafe_pool sigsafe_pool; /* opaque */

enum {
    SIGSAFE_POOL_PREFAULT = 1u << 0,    /* commit and touch memory at create */
    SIGSAFE_POOL_GUARD_EACH = 1u << 1,  /* debug: each block on its own pages */
    SIGSAFE_POOL_NO_SYSCALLS = 1u << 2, /* alloc/free never enter the kernel */
};

typedef struct sigsafe_pool_config {
    const char *name;  /* for reports; copied, at most 31 bytes kept */
    size_t capacity;   /* hard cap on bytes handed out; 0 = 4 MiB */
    unsigned flags;    /* SIGSAFE_POOL_* */
} sigsafe_pool_config;

typedef struct sigsafe_stats {
    size_t capacity;          /* the configured capacity */
    size_t bytes_in_use;      /* sum of sigsafe_usable_size over live blocks */
    size_t peak_bytes_in_use; /* high-water mark of bytes_in_use */
    size_t bytes_mapped;      /* read-write memory put to use so far */
    uint64_t allocs;          /* allocation calls that returned a block */
    uint64_t frees;           /* blocks returned by free or realloc */
    uint64_t failed_allocs;   /* allocation calls that returned NULL */
    uint64_t rejected_frees;  /* bad pointers given to free/realloc */
} sigsafe_stats;

/* ------------------------------------------------- Set-up (not AS-safe) */
/* Return 0 or a positive errno value; never set errno. */

int sigsafe_init(const sigsafe_pool_config *default_pool);  /* NULL = defaults */
int sigsafe_pool_create(const sigsafe_pool_config *cfg, sigsafe_pool **out);
void sigsafe_pool_destroy(sigsafe_pool *pool);       /* no live use allowed */
int sigsafe_bind_signal(int signo, sigsafe_pool *pool); /* NULL unbinds */
int sigsafe_sigaction(int signo, const struct sigaction *act,
                      struct sigaction *old);        /* sigaction + context */
int sigsafe_altstack_install(size_t size);  /* this thread: guarded stack */
int sigsafe_altstack_uninstall(void);       /* this thread: undo install */
void sigsafe_set_report_fd(int fd);         /* default 2; -1 = silent */

/* -------------------------------------------------------------- AS-safe */
/* Thread-safe, reentrant, lock-free; errno is never changed. */

SIGSAFE_NODISCARD SIGSAFE_MALLOC
void *sigsafe_alloc(size_t size);                   /* current context */
SIGSAFE_NODISCARD SIGSAFE_MALLOC
void *sigsafe_calloc(size_t n, size_t size);        /* zeroed; NULL on overflow */
SIGSAFE_NODISCARD
void *sigsafe_realloc(void *ptr, size_t size);      /* keeps ptr's pool */
SIGSAFE_NODISCARD SIGSAFE_MALLOC
void *sigsafe_aligned_alloc(size_t alignment, size_t size); /* 1..page */
SIGSAFE_NODISCARD SIGSAFE_MALLOC
void *sigsafe_pool_alloc(sigsafe_pool *pool, size_t size);
SIGSAFE_NODISCARD SIGSAFE_MALLOC
void *sigsafe_pool_calloc(sigsafe_pool *pool, size_t n, size_t size);
SIGSAFE_NODISCARD
void *sigsafe_pool_realloc(sigsafe_pool *pool, void *ptr, size_t size);
SIGSAFE_NODISCARD SIGSAFE_MALLOC
void *sigsafe_pool_aligned_alloc(sigsafe_pool *pool, size_t alignment,
                                 size_t size);
void sigsafe_free(void *ptr);                       /* any pool's block */
size_t sigsafe_usable_size(const void *ptr);        /* 0 if not a live block */
sigsafe_pool *sigsafe_pool_of(const void *ptr);     /* NULL if in no pool */
sigsafe_pool *sigsafe_default_pool(void);           /* created on first use */
sigsafe_pool *sigsafe_current_pool(void);           /* this thread's context */
void sigsafe_context_enter(sigsafe_pool *pool);     /* handlers set up elsewhere */
void sigsafe_context_leave(void);                   /* pairs with enter */
int sigsafe_pool_stats(const sigsafe_pool *pool, sigsafe_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* SIGSAFE_H */
