/* SPDX-License-Identifier: MIT */
/*
 * The sigsafe tests that run on musl, where Check is not packaged: one case
 * per process (musl_smoke CASE), each exiting 0 on success, or 1 after one
 * line saying what failed.  A short tour of the contract: the allocators,
 * bad frees, errno, capacity and statistics, nested signal handlers with
 * their pools, threads, fork, and a guard-page fault.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sigsafe.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static sigsafe_pool *make_pool(const char *name, size_t cap, unsigned flags)
{
    sigsafe_pool_config cfg = {.name = name, .capacity = cap, .flags = flags};
    sigsafe_pool *p = NULL;
    CHECK(sigsafe_pool_create(&cfg, &p) == 0 && p != NULL);
    return p;
}

static sigsafe_stats stats_of(const sigsafe_pool *p)
{
    sigsafe_stats s;
    CHECK(sigsafe_pool_stats(p, &s) == 0);
    return s;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ allocators */

static void case_alloc(void)
{
    static void *live[400];
    size_t n = 0;
    for (size_t size = 0; size < 70000; size = size * 3 / 2 + 1) {
        void *p = sigsafe_alloc(size);
        CHECK(p != NULL);
        CHECK((uintptr_t)p % 16 == 0);
        CHECK(sigsafe_usable_size(p) >= size);
        CHECK(sigsafe_pool_of(p) == sigsafe_default_pool());
        memset(p, 0xa5, size);
        live[n++] = p;
    }
    void *z = sigsafe_alloc(0), *z2 = sigsafe_alloc(0);
    CHECK(z != NULL && z2 != NULL && z != z2);
    sigsafe_free(z);
    sigsafe_free(z2);
    for (size_t i = 0; i < n; i++)
        sigsafe_free(live[i]);
    sigsafe_free(NULL);
    sigsafe_stats s = stats_of(sigsafe_default_pool());
    CHECK(s.allocs == s.frees);
    CHECK(s.bytes_in_use == 0);
    CHECK(s.rejected_frees == 0);
}

static void case_calloc(void)
{
    unsigned char *p = sigsafe_calloc(100, 40);
    CHECK(p != NULL && all_bytes(p, 4000, 0));
    memset(p, 0xff, 4000);
    sigsafe_free(p);
    p = sigsafe_calloc(100, 40); /* a reused block is zeroed too */
    CHECK(p != NULL && all_bytes(p, 4000, 0));
    sigsafe_free(p);
    CHECK(sigsafe_calloc(SIZE_MAX / 2, 3) == NULL);
}

static void case_realloc(void)
{
    unsigned char *p = sigsafe_realloc(NULL, 24);
    CHECK(p != NULL);
    memset(p, 7, 24);
    p = sigsafe_realloc(p, 5000);
    CHECK(p != NULL && all_bytes(p, 24, 7));
    p = sigsafe_realloc(p, 8);
    CHECK(p != NULL && all_bytes(p, 8, 7));
    sigsafe_pool *pool = make_pool("musl-realloc", 1 << 20, 0);
    unsigned char *q = sigsafe_pool_alloc(pool, 32);
    CHECK(q != NULL);
    q = sigsafe_realloc(q, 3000); /* keeps its pool */
    CHECK(q != NULL && sigsafe_pool_of(q) == pool);
    CHECK(sigsafe_realloc(q, 0) == NULL);
    CHECK(sigsafe_realloc(p, 0) == NULL);
    void *r = sigsafe_alloc(16); /* a failed grow leaves the block */
    CHECK(r != NULL && sigsafe_realloc(r, (size_t)1 << 40) == NULL);
    CHECK(sigsafe_usable_size(r) >= 16);
    sigsafe_free(r);
    CHECK(stats_of(pool).bytes_in_use == 0);
    sigsafe_pool_destroy(pool);
}

static void case_aligned(void)
{
    long page = sysconf(_SC_PAGESIZE);
    for (size_t a = 1; a <= (size_t)page; a *= 2) {
        void *p = sigsafe_aligned_alloc(a, 100);
        CHECK(p != NULL && (uintptr_t)p % a == 0);
        sigsafe_free(p);
    }
    CHECK(sigsafe_aligned_alloc(0, 16) == NULL);
    CHECK(sigsafe_aligned_alloc(24, 16) == NULL);
    CHECK(sigsafe_aligned_alloc((size_t)page * 2, 16) == NULL);
}

/* ------------------------------------------------- bad input, errno, caps */

static void case_bad_free(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    sigsafe_set_report_fd(fds[1]);
    sigsafe_pool *pool = make_pool("musl-bad", 1 << 20, 0);
    char *p = sigsafe_pool_alloc(pool, 64);
    CHECK(p != NULL);
    int on_stack;
    sigsafe_free(&on_stack); /* in no pool: the default pool counts it */
    sigsafe_free(p + 8);     /* interior */
    sigsafe_free(p);
    sigsafe_free(p); /* double */
    CHECK(stats_of(pool).rejected_frees == 2);
    CHECK(stats_of(sigsafe_default_pool()).rejected_frees == 1);
    sigsafe_set_report_fd(-1);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    CHECK(n > 0);
    buf[n] = '\0';
    int lines = 0;
    for (char *c = buf; *c; c++)
        lines += *c == '\n';
    CHECK(lines == 3); /* one line per rejected free */
    CHECK(stats_of(pool).bytes_in_use == 0);
    sigsafe_pool_destroy(pool);
}

static void case_errno(void)
{
    errno = 12345;
    void *p = sigsafe_alloc(100);
    sigsafe_free(p);
    sigsafe_set_report_fd(-1);
    sigsafe_free(&p); /* rejected */
    CHECK(sigsafe_aligned_alloc(3, 1) == NULL);
    CHECK(errno == 12345);
}

static void case_capacity(void)
{
    sigsafe_pool *pool = make_pool("musl-cap", 256 << 10, 0);
    static void *live[100000];
    size_t n = 0, sum = 0;
    void *p;
    while (n < 100000 && (p = sigsafe_pool_alloc(pool, 1000)) != NULL) {
        sum += sigsafe_usable_size(p);
        live[n++] = p;
    }
    CHECK(n > 0 && n < 100000);
    CHECK(sum <= 256 << 10);
    sigsafe_stats s = stats_of(pool);
    CHECK(s.failed_allocs == 1);
    CHECK(s.bytes_in_use == sum);
    CHECK(sigsafe_alloc(100) != NULL); /* the default pool is unaffected */
    for (size_t i = 0; i < n; i++)
        sigsafe_free(live[i]);
    CHECK(stats_of(pool).bytes_in_use == 0);
    void *big = sigsafe_pool_alloc(pool, 128 << 10); /* C/2 in one block */
    CHECK(big != NULL);
    sigsafe_free(big);
    sigsafe_pool_destroy(pool);
}

static void case_stats(void)
{
    sigsafe_pool *pool = make_pool("musl-stats", 1 << 20, 0);
    sigsafe_stats s = stats_of(pool);
    CHECK(s.allocs == 0 && s.frees == 0 && s.bytes_in_use == 0);
    CHECK(s.capacity == 1 << 20);
    void *a = sigsafe_pool_alloc(pool, 100), *b = sigsafe_pool_alloc(pool, 5);
    s = stats_of(pool);
    CHECK(s.allocs == 2);
    CHECK(s.bytes_in_use == sigsafe_usable_size(a) + sigsafe_usable_size(b));
    sigsafe_free(a);
    sigsafe_free(b);
    s = stats_of(pool);
    CHECK(s.frees == 2 && s.bytes_in_use == 0 && s.peak_bytes_in_use > 0);
    sigsafe_pool_destroy(pool);
}

/* --------------------------------------------------------------- signals */

static sigsafe_pool *pool_a, *pool_b;
static volatile sig_atomic_t seen_a, seen_b;

static void on_usr2(int sig)
{
    (void)sig;
    void *p = sigsafe_alloc(48);
    seen_b = p != NULL && sigsafe_pool_of(p) == pool_b &&
             sigsafe_current_pool() == pool_b;
    sigsafe_free(p);
}

static void on_usr1(int sig)
{
    (void)sig;
    void *p = sigsafe_alloc(32);
    raise(SIGUSR2); /* nested: runs in pool_b's context, then back */
    void *q = sigsafe_alloc(32);
    seen_a = p != NULL && q != NULL && sigsafe_pool_of(p) == pool_a &&
             sigsafe_pool_of(q) == pool_a && sigsafe_current_pool() == pool_a;
    sigsafe_free(p);
    sigsafe_free(q);
}

static void case_nested_signals(void)
{
    pool_a = make_pool("musl-a", 1 << 20, 0);
    pool_b = make_pool("musl-b", 1 << 20, 0);
    CHECK(sigsafe_bind_signal(SIGUSR1, pool_a) == 0);
    CHECK(sigsafe_bind_signal(SIGUSR2, pool_b) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr2;
    CHECK(sigsafe_sigaction(SIGUSR2, &sa, NULL) == 0);
    sa.sa_handler = on_usr1;
    CHECK(sigsafe_sigaction(SIGUSR1, &sa, NULL) == 0);
    raise(SIGUSR1);
    CHECK(seen_a && seen_b);
    CHECK(sigsafe_current_pool() == sigsafe_default_pool());
    CHECK(stats_of(pool_a).allocs == 2 && stats_of(pool_b).allocs == 1);
    CHECK(stats_of(pool_a).bytes_in_use == 0);
}

/* --------------------------------------------------- threads and fork */

static sigsafe_pool *shared;
static volatile int stop;

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[64] = {0};
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned slot = (seed >> 8) % 64;
        sigsafe_free(keep[slot]);
        keep[slot] = sigsafe_pool_alloc(shared, (seed >> 16) % 512);
        if (keep[slot])
            memset(keep[slot], (int)slot, 1);
    }
    for (int i = 0; i < 64; i++)
        sigsafe_free(keep[i]);
    return NULL;
}

static void case_threads(void)
{
    shared = make_pool("musl-threads", 8 << 20, 0);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    sigsafe_stats s = stats_of(shared);
    CHECK(s.allocs > 0 && s.bytes_in_use == 0 && s.rejected_frees == 0);
}

static void *hammer(void *arg)
{
    (void)arg;
    while (!stop) {
        void *a = sigsafe_pool_alloc(shared, 16);
        sigsafe_free(a);
    }
    return NULL;
}

static void case_fork(void)
{
    shared = make_pool("musl-fork", 1 << 20, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hammer, NULL) == 0);
    for (int r = 0; r < 50; r++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            void *p[32];
            for (int i = 0; i < 32; i++)
                if (!(p[i] = sigsafe_pool_alloc(shared, 16)))
                    _exit(2);
            for (int i = 0; i < 32; i++)
                sigsafe_free(p[i]);
            _exit(0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    stop = 1;
    CHECK(pthread_join(t, NULL) == 0);
}

/* -------------------------------------------- guard pages, alt stacks */

static void case_guard_fault(void)
{
    sigsafe_pool *pool = make_pool("musl-guard", 1 << 20,
                                   SIGSAFE_POOL_GUARD_EACH);
    unsigned char *p = sigsafe_pool_alloc(pool, 100);
    CHECK(p != NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        volatile unsigned char *end = p + sigsafe_usable_size(p);
        *end = 1; /* a PROT_NONE page */
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    sigsafe_free(p);
}

static volatile uintptr_t handler_sp;

static void on_alt(int sig)
{
    int here;
    (void)sig;
    handler_sp = (uintptr_t)&here;
}

static void *alt_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)sigsafe_altstack_install(16384);
}

static void case_altstack(void)
{
    CHECK(sigsafe_altstack_install(65536) == 0);
    stack_t ss;
    CHECK(sigaltstack(NULL, &ss) == 0);
    CHECK(!(ss.ss_flags & SS_DISABLE) && ss.ss_size >= 65536);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alt;
    sa.sa_flags = SA_ONSTACK;
    CHECK(sigsafe_sigaction(SIGUSR1, &sa, NULL) == 0);
    raise(SIGUSR1);
    CHECK(handler_sp >= (uintptr_t)ss.ss_sp &&
          handler_sp < (uintptr_t)ss.ss_sp + ss.ss_size);
    /* A thread's stack is freed at its exit (or leaked, where the libc has
     * no thread-exit hook): either way, install and exit work. */
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        void *rc;
        CHECK(pthread_create(&t, NULL, alt_thread, NULL) == 0);
        CHECK(pthread_join(t, &rc) == 0 && rc == NULL);
    }
}

/* ------------------------------------------------------------------ main */

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"alloc", case_alloc},
    {"calloc", case_calloc},
    {"realloc", case_realloc},
    {"aligned", case_aligned},
    {"bad_free", case_bad_free},
    {"errno", case_errno},
    {"capacity", case_capacity},
    {"stats", case_stats},
    {"nested_signals", case_nested_signals},
    {"threads", case_threads},
    {"fork", case_fork},
    {"guard_fault", case_guard_fault},
    {"altstack", case_altstack},
};

int main(int argc, char **argv)
{
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; argc == 2 && i < n; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].fn();
            printf("musl_smoke %s: ok\n", cases[i].name);
            return 0;
        }
    }
    fprintf(stderr, "usage: musl_smoke CASE; cases:");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
}
