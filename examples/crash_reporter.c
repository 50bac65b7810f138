/* SPDX-License-Identifier: MIT */
/*
 * crash_reporter: installs the example crash reporter (crash_report.c) and,
 * with --demo, crashes on purpose to show its report.
 *
 *   crash_reporter [--report FILE] --demo KIND
 *
 *   segv           a write through a null pointer
 *   abort          abort()
 *   fpe            an integer division by zero
 *   stackoverflow  unbounded recursion (caught through libsigsegv)
 *   raise          raise(SIGSEGV): a SIGSEGV that no instruction caused, as
 *                  kill -SEGV sends
 *   overflow       a write one byte past a block of a SIGSAFE_POOL_GUARD_EACH
 *                  pool: the guard page faults, and sigsafe_guard_watch()
 *                  names the block before the report
 *   in-malloc      a crash inside glibc's malloc, with the arena lock held
 *                  (see stage_crash_in_malloc()); a naive handler that calls
 *                  malloc and snprintf runs first, in a child process, and
 *                  hangs; sigsafe's report then completes
 *
 * The process dies of the original signal (the exit status says so).  Exit
 * status 77: the demo cannot run here (e.g. in-malloc under a sanitizer,
 * whose allocator replaces glibc's), with the reason on stderr.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash_report.h"

#define NAIVE_TIMEOUT_S 2

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
/* The demos crash on purpose: UBSan must not stop them first. */
#define NO_UBSAN __attribute__((no_sanitize("undefined")))
#else
#define NOINLINE
#define NO_UBSAN
#endif

static void note(const char *msg)
{
    fprintf(stderr, "crash_reporter: %s\n", msg);
}

/* ------------------------------------------------------------ the demos */

static int *volatile null_pointer;
static volatile int dividend = 42, divisor;
static volatile int keep_recursing = 1;

NOINLINE NO_UBSAN static void demo_segv(void)
{
    *null_pointer = 42;
}

NOINLINE static void demo_raise(void)
{
    raise(SIGSEGV);
}

NOINLINE NO_UBSAN static void demo_fpe(void)
{
    volatile int quotient = dividend / divisor;
    (void)quotient;
    /* aarch64 returns 0 for an integer division by zero instead of
     * trapping. */
    note("integer division by zero does not trap on this CPU; "
         "raising SIGFPE instead");
    raise(SIGFPE);
}

NOINLINE static unsigned recurse(unsigned depth)
{
    volatile char frame[256];
    frame[0] = (char)depth;
    if (keep_recursing)
        return recurse(depth + 1) + (unsigned)frame[0]; /* not a tail call */
    return 0;
}

NOINLINE static void demo_overflow(void)
{
    sigsafe_pool *guarded;
    sigsafe_pool_config cfg = {.name = "guarded",
                               .capacity = 1 << 20,
                               .flags = SIGSAFE_POOL_GUARD_EACH};
    if (sigsafe_pool_create(&cfg, &guarded) != 0) {
        note("cannot create the guarded pool");
        exit(1);
    }
    char *block = sigsafe_pool_alloc(guarded, 48);
    if (!block) {
        note("cannot allocate from the guarded pool");
        exit(1);
    }
    size_t usable = sigsafe_usable_size(block);
    fprintf(stderr,
            "crash_reporter: block %p of pool \"guarded\" has %zu usable "
            "bytes; writing byte %zu\n",
            (void *)block, usable, usable);
    ((volatile char *)block)[usable] = 1; /* one byte too far */
}

/* ---------------------------------------------------- a crash in malloc */

/* Called through volatile pointers: the compiler must neither drop an
 * unused allocation nor reason about the use after free. */
static void *(*volatile call_malloc)(size_t) = malloc;
static void (*volatile call_free)(void *) = free;

#define VICTIM_BYTES 4000 /* above tcache (1032 B) and fastbins (128 B) */

/* glibc's chunk header: the size word sits just below the user pointer,
 * with PREV_INUSE in bit 0. */
static size_t chunk_size_word(const void *p)
{
    return ((const size_t *)p)[-1];
}

/*
 * A crash inside malloc with the arena lock held, made deterministic:
 *
 *  1. victim, then fence: two chunks too big for tcache and fastbins, fence
 *     right after victim (checked), victim's predecessor in use (checked),
 *     so free(victim) can merge it with nothing;
 *  2. free(victim) puts it on the arena's unsorted list, whose links are
 *     the block's first two words (fd, bk);
 *  3. a use-after-free write points bk at a PROT_NONE page;
 *  4. the next malloc(VICTIM_BYTES) locks the arena, walks the unsorted
 *     list, reads bk->fd and takes SIGSEGV inside malloc, holding the lock.
 *
 * glibc's malloc takes no lock at all while a process has one thread, so
 * the caller starts a second thread first, as every server has.  Returns
 * only if glibc did not fault.
 */
NOINLINE static void stage_crash_in_malloc(void)
{
    void *poison = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    char *victim = NULL;
    for (int tries = 0; tries < 16 && !victim; tries++) {
        char *v = call_malloc(VICTIM_BYTES);
        char *fence = call_malloc(VICTIM_BYTES);
        size_t word = chunk_size_word(v);
        if ((word & 1) && fence == v + (word & ~(size_t)7))
            victim = v; /* v and fence stay allocated otherwise: no merge */
    }
    if (!victim || poison == MAP_FAILED) {
        note("could not stage the crash on this heap");
        return;
    }
    call_free(victim);
    ((void *volatile *)victim)[1] = poison; /* the use after free */
    call_malloc(VICTIM_BYTES);              /* faults inside malloc */
    note("glibc did not fault: its heap checks differ from those expected");
}

static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void start_second_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0) {
        note("cannot start a thread");
        exit(1);
    }
}

/* What most crash handlers look like, and why they hang. */
static void naive_handler(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    char *msg = malloc(4096); /* blocks forever: this thread holds the lock */
    if (msg) {
        int n = snprintf(msg, 4096, "naive handler: signal %d at %p\n", sig,
                         info->si_addr);
        if (write(2, msg, (size_t)n) < 0)
            n = 0;
        free(msg);
    }
    signal(sig, SIG_DFL);
}

static const char *why_not_glibc_malloc(void)
{
#if !defined(__GLIBC__)
    return "the C library is not glibc, whose heap this demo corrupts";
#else
    Dl_info info;
    void *m = (void *)malloc;
    if (!dladdr(m, &info) || !info.dli_fname ||
        !strstr(info.dli_fname, "libc.so"))
        return "malloc here is not glibc's (a sanitizer or a preloaded "
               "allocator replaces it), so there is no arena lock to hold";
    return NULL;
#endif
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 +
           (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Runs the naive handler in a child; says whether it finished in time. */
static void run_naive_child(void)
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        note("fork failed");
        exit(1);
    }
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = naive_handler;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
        start_second_thread();
        stage_crash_in_malloc();
        _exit(1);
    }
    struct timespec tick = {0, 10 * 1000 * 1000}, start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status = 0;
    while (elapsed_ms(&start) < NAIVE_TIMEOUT_S * 1000) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            if (WIFSIGNALED(status))
                fprintf(stderr, "naive handler: finished, died of signal "
                                "%d\n", WTERMSIG(status));
            else
                fprintf(stderr, "naive handler: finished, exit status %d\n",
                        WEXITSTATUS(status));
            return;
        }
        nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fprintf(stderr, "naive handler: hung, killed after %d s\n",
            NAIVE_TIMEOUT_S);
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: crash_reporter [--report FILE] [--demo KIND]\n"
            "  --report FILE  where the report is saved (default: "
            "$TMPDIR or /tmp,\n"
            "                 crash_reporter.PID.txt)\n"
            "  --demo KIND    crash on purpose: segv, abort, fpe, "
            "stackoverflow,\n"
            "                 raise, overflow, in-malloc\n");
}

static const char *const kinds[] = {
    "segv", "abort", "fpe", "stackoverflow", "raise", "overflow", "in-malloc",
};

int main(int argc, char **argv)
{
    const char *demo = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--demo") && i + 1 < argc) {
            demo = argv[++i];
        } else if (!strcmp(argv[i], "--report") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    int known = !demo;
    for (size_t i = 0; demo && i < sizeof kinds / sizeof kinds[0]; i++)
        known |= !strcmp(demo, kinds[i]);
    if (!known) {
        usage(stderr);
        return 2;
    }

    char default_path[4096];
    if (!path) {
        const char *dir = getenv("TMPDIR");
        snprintf(default_path, sizeof default_path, "%s/crash_reporter.%ld.txt",
                 dir && *dir ? dir : "/tmp", (long)getpid());
        path = default_path;
    }

    if (demo && !strcmp(demo, "in-malloc")) {
        const char *why = why_not_glibc_malloc();
        if (why) {
            fprintf(stderr, "crash_reporter: in-malloc skipped: %s\n", why);
            return 77;
        }
        note("demo in-malloc: a use-after-free write corrupts a free chunk "
             "of glibc's heap;\n  the next malloc follows the corrupt link "
             "and faults inside malloc, holding the\n  arena lock.  First a "
             "naive handler (malloc + snprintf), in a child process:");
        run_naive_child();
        note("now the same crash, reported by sigsafe's crash reporter:");
    }

    crash_report_config cfg = {.path = path};
    int err = crash_report_install(&cfg);
    if (err) {
        fprintf(stderr, "crash_reporter: install failed: %s\n", strerror(err));
        return 1;
    }
    if (!demo) {
        printf("crash reporter installed; reports go to stderr and %s\n"
               "run with --demo KIND to crash on purpose\n", path);
        return 0;
    }

    if (!strcmp(demo, "segv")) {
        note("demo segv: a write through a null pointer");
        demo_segv();
    } else if (!strcmp(demo, "abort")) {
        note("demo abort: abort()");
        abort();
    } else if (!strcmp(demo, "fpe")) {
        note("demo fpe: an integer division by zero");
        demo_fpe();
    } else if (!strcmp(demo, "stackoverflow")) {
        note("demo stackoverflow: unbounded recursion");
        recurse(0);
    } else if (!strcmp(demo, "raise")) {
        note("demo raise: raise(SIGSEGV), as kill -SEGV would send it");
        demo_raise();
    } else if (!strcmp(demo, "overflow")) {
        note("demo overflow: a write one byte past a block of a "
             "SIGSAFE_POOL_GUARD_EACH pool");
        demo_overflow();
    } else {
        start_second_thread();
        stage_crash_in_malloc();
    }
    note("still alive after the demo: the crash did not happen");
    return 1;
}
