/* SPDX-License-Identifier: MIT */
/*
 * Test support for the sigsafe Check suites.
 *
 * Set-up side: everything here runs outside signal handlers and may use libc
 * freely, except the functions marked "AS-safe" below, which only touch
 * memory and may be called from the test's own signal handlers.
 *
 * Every suite is one executable run with CK_FORK (the default), so every test
 * starts in a fresh process with no default pool: nothing in main() may call
 * into sigsafe before srunner_run_all() forks.
 */
#ifndef SIGSAFE_TEST_SUPPORT_H
#define SIGSAFE_TEST_SUPPORT_H

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sigsafe.h"

#define ST_KIB ((size_t)1024)
#define ST_MIB ((size_t)1024 * 1024)
#define ST_DEFAULT_CAPACITY (4 * ST_MIB)

/* ------------------------------------------------------------ errno checks */

/* A value no libc function sets errno to. */
#define ST_ERRNO_SENTINEL 12345

/*
 * Run `stmt` with errno set to a sentinel and fail the test if errno differs
 * afterwards (SPEC guarantee 4; set-up functions "never set errno" either).
 */
#define ST_ASSERT_ERRNO_UNCHANGED(stmt)                                      \
    do {                                                                     \
        errno = ST_ERRNO_SENTINEL;                                           \
        stmt;                                                                \
        int st_errno_after_ = errno;                                         \
        ck_assert_msg(st_errno_after_ == ST_ERRNO_SENTINEL,                  \
                      "errno changed by `%s`: %d (%s)", #stmt,               \
                      st_errno_after_, strerror(st_errno_after_));           \
    } while (0)

/* ------------------------------------------------------------------ stats */

/* sigsafe_pool_stats() that fails the test on a non-zero return. */
sigsafe_stats st_stats(const sigsafe_pool *pool);
/* Stats of the default pool (creates it if needed). */
sigsafe_stats st_default_stats(void);

/* ---------------------------------------------------- compiler barriers */

/*
 * Hide a pointer or a size from the optimiser: the allocators carry
 * malloc/alloc_size attributes, so the compiler (and UBSan's object-size
 * check, and fortified string functions) would otherwise believe that a block
 * holds exactly the requested bytes, or that two blocks can never be equal.
 * Defined in support.c so that no caller can see through them.
 */
void *st_launder(void *p);
size_t st_size(size_t n);
uintptr_t st_uptr(const void *p);

/* --------------------------------------------- block patterns (AS-safe) */

/* Fill n bytes at p with a pattern derived from p and seed. AS-safe. */
void st_fill(void *p, size_t n, uint64_t seed);
/* Index of the first byte that differs from st_fill(p, n, seed), or
 * SIZE_MAX if all match. AS-safe. */
size_t st_check(const void *p, size_t n, uint64_t seed);
/* st_check for a block filled by st_fill(old_base, n, seed) and since moved
 * (by realloc) to p. AS-safe. */
size_t st_check_moved(const void *p, size_t n, uintptr_t old_base,
                      uint64_t seed);
/* Like st_fill/st_check but only the first and last `edge` bytes and every
 * 512th byte in between: for large blocks in handlers. AS-safe. */
void st_fill_sparse(void *p, size_t n, uint64_t seed);
size_t st_check_sparse(const void *p, size_t n, uint64_t seed);
/* Index of the first non-zero byte, or SIZE_MAX. AS-safe. */
size_t st_first_nonzero(const void *p, size_t n);

/* xorshift64*: small deterministic PRNG. AS-safe. */
uint64_t st_rand(uint64_t *state);
/* Random size: mostly 0..4096, sometimes up to max_big. AS-safe. */
size_t st_rand_size(uint64_t *state, size_t max_big);

/* ------------------------------------------------------- memory probing */

/*
 * Whether one byte at p can be read, tested without faulting: a raw
 * write(2) of that byte into a pipe fails with EFAULT when the page is not
 * readable (PROT_NONE or unmapped). Bypasses sanitizer interceptors.
 */
int st_readable(const void *p);

/* Write one byte at p, invisible to ASan/TSan instrumentation (and to
 * memcheck's error reports): for guard page tests that expect the store to
 * raise SIGSEGV, and for deliberate writes into free blocks. */
void st_poke(void *p, unsigned char v);
/* Read one byte at p, likewise uninstrumented. */
unsigned char st_peek(const void *p);

/* The page size, as sysconf reports it. */
size_t st_page_size(void);

/* Number of lines in /proc/self/maps, and whether one contains `needle`. */
size_t st_maps_lines(void);
int st_maps_contains(const char *needle);
/* Whether this kernel can name anonymous mappings (PR_SET_VMA_ANON_NAME). */
int st_kernel_names_vmas(void);

/* -------------------------------------------------------- report capture */

/*
 * Capture of the sigsafe report fd through a pipe: both ends non-blocking
 * so a library write can never hang the test; output accumulates in buf.
 */
typedef struct st_capture {
    int rfd, wfd;
    size_t len;
    char buf[256 * 1024];
} st_capture;

/* Create the pipe and point sigsafe_set_report_fd at it. */
void st_capture_begin(st_capture *c);
/* Drain what the library wrote so far into buf; return the total length. */
size_t st_capture_read(st_capture *c);
/* Drain, then count '\n' in everything captured so far. */
size_t st_capture_lines(st_capture *c);
/* Drain and forget everything captured so far. */
void st_capture_reset(st_capture *c);
/* Restore the report fd to 2 and close the pipe. */
void st_capture_end(st_capture *c);

/* ------------------------------------------------------------ signal storm */

/*
 * A signal storm: ITIMER_PROF and/or ITIMER_REAL at a high rate (process
 * directed), plus a thread that sends kill_signo[] round-robin to every
 * target thread with pthread_kill. The caller installs the handlers first
 * (SIGALRM and SIGPROF default to terminating the process; in a Check child,
 * SIGALRM still has Check's own handler, which kills the test).
 */
typedef struct st_storm_config {
    long prof_interval_us;     /* ITIMER_PROF period; 0 = off */
    long real_interval_us;     /* ITIMER_REAL period; 0 = off */
    const pthread_t *targets;  /* threads to pthread_kill */
    size_t ntargets;
    int kill_signo[2];         /* signals to send (0 = unused) */
    long kill_interval_us;     /* pause between rounds; 0 = sched_yield */
} st_storm_config;

typedef struct st_storm {
    st_storm_config cfg;
    pthread_t thread;
    pthread_t targets[16];
    atomic_bool stop;
    atomic_ulong kills;
    int running;
} st_storm;

void st_storm_start(st_storm *s, const st_storm_config *cfg);
/* Stop the timers and the kill thread; return the number of kills sent. */
unsigned long st_storm_stop(st_storm *s);

/* Install `fn` for signo with sigaction (SA_RESTART, empty mask) and assert
 * it worked. extra_flags are or'ed in (e.g. SA_NODEFER). */
void st_install_handler(int signo, void (*fn)(int), int extra_flags);

/* Sleep for ms milliseconds of wall time, resuming after signals. */
void st_sleep_ms(long ms);
/* Monotonic milliseconds. */
long long st_now_ms(void);

/* Whether this build runs under TSan or ASan. */
int st_under_tsan(void);
int st_under_asan(void);
/* Whether the suites run under a user-mode emulator (qemu-user, for a cross
 * build): CMake sets SIGSAFE_TEST_EMULATOR in the tests' environment.  A
 * test that the emulator cannot run prints why and returns. */
int st_under_emulator(void);

/* ------------------------------------------------------------------ main */

/* srunner_run_all(CK_ENV) on one suite; return the process exit status. */
int st_run_suite(Suite *s);

#endif /* SIGSAFE_TEST_SUPPORT_H */
