/* SPDX-License-Identifier: MIT */
/*
 * context: per-signal contexts.  sigsafe_bind_signal() and
 * sigsafe_sigaction(): a handler allocates from the pool bound to its
 * signal (the default pool when none is bound), nested and recursive
 * handlers each from their own, the user's sigaction flags and masks are
 * kept, `old` reports the user's handler, and sigsafe_context_enter/leave
 * by hand, with the depth bound and the reserve pool.
 *
 * Handlers record what they saw in static variables and counters; the test
 * checks them after the handler returned.  Handlers call only sigsafe,
 * atomics, raise() and the AS-safe pattern helpers.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* The library's count of enters beyond the context depth bound. */
extern _Atomic uint64_t sigsafe__ctx_overflows;

#define CTX_DEPTH 64 /* every signal number, nested once (SIGRTMAX) */

/* Plain reads of the counters, so that failed assertions print a name. */
static int ldi(atomic_int *a) { return atomic_load(a); }
static unsigned long ldu(atomic_ulong *a) { return atomic_load(a); }
static uint64_t ld64(_Atomic uint64_t *a) { return atomic_load(a); }

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity};
    int rc = sigsafe_pool_create(&cfg, &pool);
    ck_assert_msg(rc == 0, "pool_create(%s) = %d (%s)", name, rc,
                  strerror(rc));
    ck_assert_ptr_nonnull(pool);
    return pool;
}

/* sigsafe_sigaction() with an empty mask; asserts success. */
static void install(int signo, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    int rc = sigsafe_sigaction(signo, &sa, NULL);
    ck_assert_msg(rc == 0, "sigsafe_sigaction(%d) = %d (%s)", signo, rc,
                  strerror(rc));
}

static void install_info(int signo, void (*fn)(int, siginfo_t *, void *),
                         int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | flags;
    int rc = sigsafe_sigaction(signo, &sa, NULL);
    ck_assert_msg(rc == 0, "sigsafe_sigaction(%d, SA_SIGINFO) = %d (%s)",
                  signo, rc, strerror(rc));
}

static void bind_sig(int signo, sigsafe_pool *pool)
{
    int rc = sigsafe_bind_signal(signo, pool);
    ck_assert_msg(rc == 0, "sigsafe_bind_signal(%d) = %d (%s)", signo, rc,
                  strerror(rc));
}

/* Wait for a child and return its status. */
static int wait_child(pid_t pid)
{
    int status = 0;
    ck_assert_int_gt(pid, 0);
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    ck_assert_int_eq(w, pid);
    return status;
}

static void assert_exit0(int status, const char *what)
{
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s: child status %#x (exit %d, signal %d)", what, status,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* TSan delivers a signal raised inside a handler only after that handler
 * returns (it defers signals to its own safe points, and does not honour
 * SA_NODEFER), so the tests that need handlers to nest skip under it. */
static int skip_nesting_under_tsan(const char *test)
{
    if (!st_under_tsan())
        return 0;
    printf("context: %s skipped under TSan: it runs a signal raised in a "
           "handler after the handler returns, so handlers never nest\n",
           test);
    return 1;
}

/* ----------------------------------------------------- what handlers saw */

enum { MAXREC = 8 };

/* Per nesting level: the pool of a block from sigsafe_alloc(), and
 * sigsafe_current_pool().  Level = order of entry. */
static sigsafe_pool *volatile rec_block_pool[MAXREC];
static sigsafe_pool *volatile rec_current[MAXREC];
static volatile int rec_signo[MAXREC];
static volatile int rec_n;         /* handler entries recorded */
static atomic_int h_bad;           /* pattern or sanity failures */
static atomic_int h_null;          /* unexpected NULL allocations */

static void rec_reset(void)
{
    for (int i = 0; i < MAXREC; i++) {
        rec_block_pool[i] = NULL;
        rec_current[i] = NULL;
        rec_signo[i] = 0;
    }
    rec_n = 0;
    atomic_store(&h_bad, 0);
    atomic_store(&h_null, 0);
}

/* Allocate, fill, check and free one block from the current context;
 * record the pool it came from in slot `lvl`.  AS-safe. */
static void rec_alloc(int lvl, int signo, size_t len)
{
    void *p = sigsafe_alloc(len);
    if (lvl < MAXREC) {
        rec_signo[lvl] = signo;
        rec_current[lvl] = sigsafe_current_pool();
        rec_block_pool[lvl] = p ? sigsafe_pool_of(p) : NULL;
    }
    if (!p) {
        atomic_fetch_add(&h_null, 1);
        return;
    }
    st_fill(p, len, (uint64_t)lvl);
    if (st_check(p, len, (uint64_t)lvl) != SIZE_MAX)
        atomic_fetch_add(&h_bad, 1);
    sigsafe_free(p);
}

static void simple_handler(int signo)
{
    int lvl = rec_n++;
    rec_alloc(lvl, signo, 100);
}

/* --------------------------------------------------------- bound pools */

START_TEST(handler_uses_bound_pool)
{
    sigsafe_pool *a = make_pool("ctx-a", 0);
    bind_sig(SIGUSR1, a);
    install(SIGUSR1, simple_handler, 0);
    rec_reset();
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(rec_n, 1);
    ck_assert_int_eq(ldi(&h_null), 0);
    ck_assert_int_eq(ldi(&h_bad), 0);
    ck_assert_ptr_eq(rec_block_pool[0], a);
    ck_assert_ptr_eq(rec_current[0], a);

    /* Outside any handler: the default pool again. */
    sigsafe_pool *def = sigsafe_default_pool();
    ck_assert_ptr_ne(def, a);
    ck_assert_ptr_eq(sigsafe_current_pool(), def);
    void *p = st_launder(sigsafe_alloc(64));
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(sigsafe_pool_of(p), def);
    sigsafe_free(p);

    /* The block the handler freed went back to a. */
    sigsafe_stats s = st_stats(a);
    ck_assert_uint_eq(s.allocs, 1);
    ck_assert_uint_eq(s.frees, 1);
    ck_assert_uint_eq(s.bytes_in_use, 0);
}
END_TEST

START_TEST(unbound_signal_uses_default)
{
    sigsafe_pool *a = make_pool("ctx-a", 0);
    bind_sig(SIGUSR1, a); /* bound: SIGUSR2 is not */
    install(SIGUSR2, simple_handler, 0);
    rec_reset();
    ck_assert_int_eq(raise(SIGUSR2), 0);
    ck_assert_int_eq(rec_n, 1);
    ck_assert_ptr_eq(rec_block_pool[0], sigsafe_default_pool());
    ck_assert_ptr_eq(rec_current[0], sigsafe_default_pool());
    ck_assert_uint_eq(st_stats(a).allocs, 0);

    /* Unbinding (NULL) sends SIGUSR1 back to the default pool. */
    install(SIGUSR1, simple_handler, 0);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_ptr_eq(rec_block_pool[0], a);
    bind_sig(SIGUSR1, NULL);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_int_eq(rec_n, 1);
    ck_assert_ptr_eq(rec_block_pool[0], sigsafe_default_pool());
    ck_assert_ptr_eq(rec_current[0], sigsafe_default_pool());
}
END_TEST

START_TEST(bind_after_install)
{
    /* The binding is looked up when the signal arrives, not at install. */
    install(SIGUSR1, simple_handler, 0);
    sigsafe_pool *a = make_pool("ctx-a", 0), *b = make_pool("ctx-b", 0);
    bind_sig(SIGUSR1, a);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_ptr_eq(rec_block_pool[0], a);
    bind_sig(SIGUSR1, b);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_ptr_eq(rec_block_pool[0], b);
    /* A destroyed pool's signals fall back to the default pool. */
    sigsafe_pool_destroy(b);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_int_eq(rec_n, 1);
    ck_assert_int_eq(ldi(&h_null), 0);
    ck_assert_ptr_eq(rec_block_pool[0], sigsafe_default_pool());
}
END_TEST

/* -------------------------------------------------------------- nesting */

static sigsafe_pool *volatile after_nested_pool;
static volatile int in_usr1, usr2_was_nested;

static void nest_usr2(int signo)
{
    int lvl = rec_n++;
    usr2_was_nested = in_usr1;
    rec_alloc(lvl, signo, 48);
}

static void nest_usr1(int signo)
{
    int lvl = rec_n++;
    /* Hold a block across the nested handler. */
    unsigned char *held = sigsafe_alloc(200);
    if (!held) {
        atomic_fetch_add(&h_null, 1);
        return;
    }
    st_fill(held, 200, 99);
    rec_alloc(lvl, signo, 64);
    in_usr1 = 1;
    raise(SIGUSR2);
    in_usr1 = 0;
    /* Back in our own context after the nested one left. */
    void *p = sigsafe_alloc(32);
    after_nested_pool = p ? sigsafe_pool_of(p) : NULL;
    sigsafe_free(p);
    if (st_check(held, 200, 99) != SIZE_MAX ||
        sigsafe_pool_of(held) != sigsafe_current_pool())
        atomic_fetch_add(&h_bad, 1);
    sigsafe_free(held);
}

START_TEST(nested_handlers_own_pools)
{
    sigsafe_pool *a = make_pool("ctx-a", 0), *b = make_pool("ctx-b", 0);
    bind_sig(SIGUSR1, a);
    bind_sig(SIGUSR2, b);
    install(SIGUSR1, nest_usr1, 0);
    install(SIGUSR2, nest_usr2, 0);
    rec_reset();
    after_nested_pool = NULL;
    raise(SIGUSR1);
    ck_assert_int_eq(rec_n, 2);
    ck_assert_int_eq(ldi(&h_null), 0);
    ck_assert_int_eq(ldi(&h_bad), 0);
    ck_assert_int_eq(rec_signo[0], SIGUSR1);
    ck_assert_int_eq(rec_signo[1], SIGUSR2);
    ck_assert_ptr_eq(rec_block_pool[0], a);
    ck_assert_ptr_eq(rec_current[0], a);
    ck_assert_ptr_eq(rec_block_pool[1], b);
    ck_assert_ptr_eq(rec_current[1], b);
    ck_assert_ptr_eq(after_nested_pool, a);
    ck_assert_ptr_eq(sigsafe_current_pool(), sigsafe_default_pool());
    if (!skip_nesting_under_tsan("nested_handlers_own_pools (nesting)"))
        ck_assert_msg(usr2_was_nested, "SIGUSR2 did not run inside SIGUSR1");
    ck_assert_uint_eq(st_stats(a).bytes_in_use, 0);
    ck_assert_uint_eq(st_stats(b).bytes_in_use, 0);
    ck_assert_uint_eq(st_stats(a).allocs, 3);
    ck_assert_uint_eq(st_stats(b).allocs, 1);
}
END_TEST

/* SA_NODEFER: the handler raises its own signal until depth 3. */
static volatile int nodefer_depth;
static void *volatile nodefer_held[4];

static void nodefer_handler(int signo)
{
    int lvl = rec_n++;
    int depth = ++nodefer_depth;
    void *held = sigsafe_alloc(80);
    nodefer_held[depth] = held;
    if (held)
        st_fill(held, 80, (uint64_t)depth);
    rec_alloc(lvl, signo, 24 + 16 * (size_t)depth);
    if (depth < 3 && rec_n < 8) /* (bounded if the flag were lost) */
        raise(signo);           /* delivered at once: SA_NODEFER */
    if (held) {
        if (st_check(held, 80, (uint64_t)depth) != SIZE_MAX)
            atomic_fetch_add(&h_bad, 1);
        sigsafe_free(held);
    } else {
        atomic_fetch_add(&h_null, 1);
    }
    nodefer_depth--;
}

START_TEST(nodefer_recursion)
{
    if (skip_nesting_under_tsan("nodefer_recursion"))
        return;
    sigsafe_pool *a = make_pool("ctx-a", 0), *b = make_pool("ctx-b", 0);
    bind_sig(SIGUSR1, a);
    bind_sig(SIGUSR2, b);
    install(SIGUSR1, nodefer_handler, SA_NODEFER);
    install(SIGUSR2, nodefer_handler, SA_NODEFER);
    const int signos[2] = {SIGUSR1, SIGUSR2};
    for (int k = 0; k < 2; k++) {
        int signo = signos[k];
        sigsafe_pool *want = signo == SIGUSR1 ? a : b;
        rec_reset();
        nodefer_depth = 0;
        raise(signo);
        ck_assert_int_eq(rec_n, 3);
        ck_assert_int_eq(nodefer_depth, 0);
        ck_assert_int_eq(ldi(&h_null), 0);
        ck_assert_int_eq(ldi(&h_bad), 0);
        for (int i = 0; i < 3; i++) {
            ck_assert_ptr_eq(rec_block_pool[i], want);
            ck_assert_ptr_eq(rec_current[i], want);
        }
        /* Three levels held a block each at the same time: distinct. */
        ck_assert_ptr_ne(nodefer_held[1], nodefer_held[2]);
        ck_assert_ptr_ne(nodefer_held[2], nodefer_held[3]);
        ck_assert_ptr_ne(nodefer_held[1], nodefer_held[3]);
        sigsafe_stats s = st_stats(want);
        ck_assert_uint_eq(s.allocs, 6);
        ck_assert_uint_eq(s.frees, 6);
    }
    ck_assert_ptr_eq(sigsafe_current_pool(), sigsafe_default_pool());
}
END_TEST

/* ----------------------------------------------------------- exhaustion */

enum { HOARD = 8192 };
static void *hoard[HOARD];
static volatile int hoard_n, hoard_hit_null;

static void exhaust_usr2(int signo)
{
    int lvl = rec_n++;
    rec_alloc(lvl, signo, 256);
}

/* Allocate from the context's pool until NULL, then let another context
 * (nested SIGUSR2) allocate. */
static void exhaust_usr1(int signo)
{
    int lvl = rec_n++;
    if (lvl < MAXREC) {
        rec_signo[lvl] = signo;
        rec_current[lvl] = sigsafe_current_pool();
    }
    /* Big blocks first, then smaller ones into what is left, until even
     * the smallest class gets NULL: the pool is dry for every size. */
    static const size_t sizes[] = {4096, 512, 16};
    hoard_hit_null = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        hoard_hit_null = 0;
        while (hoard_n < HOARD) {
            void *p = sigsafe_alloc(sizes[k]);
            if (!p) {
                hoard_hit_null = 1;
                break;
            }
            if (sigsafe_pool_of(p) != sigsafe_current_pool())
                atomic_fetch_add(&h_bad, 1);
            hoard[hoard_n++] = p;
        }
    }
    raise(SIGUSR2);
}

START_TEST(exhausted_context_isolated)
{
    sigsafe_pool *a = make_pool("ctx-small", 64 * ST_KIB);
    sigsafe_pool *b = make_pool("ctx-b", 0);
    bind_sig(SIGUSR1, a);
    bind_sig(SIGUSR2, b);
    install(SIGUSR1, exhaust_usr1, 0);
    install(SIGUSR2, exhaust_usr2, 0);
    rec_reset();
    hoard_n = 0;
    raise(SIGUSR1);
    ck_assert_msg(hoard_hit_null, "a 64 KiB pool served %d blocks", hoard_n);
    ck_assert_int_gt(hoard_n, 0);
    ck_assert_int_eq(ldi(&h_bad), 0);
    ck_assert_ptr_eq(rec_current[0], a);
    /* The nested context, bound to b, was served. */
    ck_assert_int_eq(rec_n, 2);
    ck_assert_int_eq(ldi(&h_null), 0);
    ck_assert_ptr_eq(rec_block_pool[1], b);
    ck_assert_uint_ge(st_stats(a).failed_allocs, 1);

    /* Still dry: a SIGUSR1 handler gets NULL (no reserve at depth 1) ... */
    install(SIGUSR1, simple_handler, 0);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_int_eq(ldi(&h_null), 1);
    ck_assert_ptr_null(rec_block_pool[0]);
    /* ... while b, the default pool and unbound signals serve. */
    rec_reset();
    raise(SIGUSR2);
    ck_assert_ptr_eq(rec_block_pool[0], b);
    ck_assert_int_eq(ldi(&h_null), 0);
    void *p = st_launder(sigsafe_alloc(4096));
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(sigsafe_pool_of(p), sigsafe_default_pool());
    sigsafe_free(p);

    /* Refilled, a serves its handler again. */
    for (int i = 0; i < hoard_n; i++)
        sigsafe_free(hoard[i]);
    ck_assert_uint_eq(st_stats(a).bytes_in_use, 0);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_int_eq(ldi(&h_null), 0);
    ck_assert_ptr_eq(rec_block_pool[0], a);
}
END_TEST

/* The reserve: a nested handler bound to the same, exhausted pool. */
static sigsafe_pool *volatile reserve_got;

static void reserve_usr2(int signo)
{
    (void)signo;
    void *p = sigsafe_alloc(512);
    reserve_got = p ? sigsafe_pool_of(p) : NULL;
    if (p) {
        st_fill(p, 512, 5);
        if (st_check(p, 512, 5) != SIZE_MAX)
            atomic_fetch_add(&h_bad, 1);
    }
    sigsafe_free(p);
}

START_TEST(reserve_for_reentered_context)
{
    if (skip_nesting_under_tsan("reserve_for_reentered_context"))
        return;
    sigsafe_pool *a = make_pool("ctx-small", 64 * ST_KIB);
    bind_sig(SIGUSR1, a);
    bind_sig(SIGUSR2, a);
    install(SIGUSR1, exhaust_usr1, 0);
    install(SIGUSR2, reserve_usr2, 0);
    rec_reset();
    hoard_n = 0;
    reserve_got = NULL;
    raise(SIGUSR1);
    ck_assert(hoard_hit_null);
    ck_assert_int_eq(ldi(&h_bad), 0);
    ck_assert_msg(reserve_got != NULL,
                  "nested handler in an exhausted, re-entered context got "
                  "no memory (no reserve)");
    ck_assert_ptr_ne(reserve_got, a);
    ck_assert_ptr_ne(reserve_got, sigsafe_default_pool());
    for (int i = 0; i < hoard_n; i++)
        sigsafe_free(hoard[i]);
}
END_TEST

/* Crash handler: SIGSEGV bound to a tiny pool, SA_NODEFER; it exhausts
 * the pool, faults again inside itself, and the nested run must still get
 * memory.  Runs in a forked child that exits with a code. */
static char *guard_page;
static sigsafe_pool *crash_pool;
static volatile int crash_depth;

static void crash_handler(int signo)
{
    (void)signo;
    int depth = ++crash_depth;
    if (depth == 1) {
        if (sigsafe_current_pool() != crash_pool)
            _exit(10);
        int n = 0;
        while (sigsafe_alloc(1024) != NULL)
            if (++n > 100000)
                _exit(11); /* never ran dry */
        st_poke(guard_page, 1); /* fault inside the crash handler */
        _exit(12);              /* not reached: SA_NODEFER re-entered us */
    }
    void *p = sigsafe_alloc(1024);
    if (!p)
        _exit(13);
    if (sigsafe_pool_of(p) == crash_pool ||
        sigsafe_current_pool() != crash_pool)
        _exit(14);
    st_fill(p, 1024, 3);
    if (st_check(p, 1024, 3) != SIZE_MAX)
        _exit(15);
    sigsafe_free(p);
    _exit(0);
}

START_TEST(reserve_for_crash_handler)
{
    if (skip_nesting_under_tsan("reserve_for_crash_handler"))
        return;
    size_t ps = st_page_size();
    guard_page = mmap(NULL, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(guard_page, MAP_FAILED);
    crash_pool = make_pool("ctx-crash", 64 * ST_KIB);
    bind_sig(SIGSEGV, crash_pool);
    install(SIGSEGV, crash_handler, SA_NODEFER);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        st_poke(guard_page, 1);
        _exit(20); /* the handler never returns */
    }
    assert_exit0(wait_child(pid), "crash handler re-entered with SA_NODEFER");
}
END_TEST

/* --------------------------------------------------- old and queries */

static void h_plain_a(int signo) { (void)signo; }
static void h_plain_b(int signo) { (void)signo; }
static void h_info_a(int signo, siginfo_t *si, void *uc)
{
    (void)signo;
    (void)si;
    (void)uc;
}

#define USER_FLAGS (SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_ONSTACK)

START_TEST(old_reports_user_handler)
{
    struct sigaction sa, old, q;

    /* Previous disposition, set with plain sigaction, comes back as is. */
    st_install_handler(SIGUSR1, h_plain_b, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h_plain_a;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sa.sa_flags = SA_RESTART;
    memset(&old, 0, sizeof old);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_handler, (void *)h_plain_b);

    /* Query: the user's plain handler and flags, never the trampoline. */
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)h_plain_a);
    ck_assert_int_eq(q.sa_flags & USER_FLAGS, SA_RESTART);
    ck_assert(sigismember(&q.sa_mask, SIGUSR2));
    ck_assert(!sigismember(&q.sa_mask, SIGTERM));

    /* Replace with an SA_SIGINFO handler: old is the plain one. */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h_info_a;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    memset(&old, 0, sizeof old);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_handler, (void *)h_plain_a);
    ck_assert_int_eq(old.sa_flags & USER_FLAGS, SA_RESTART);
    ck_assert(sigismember(&old.sa_mask, SIGUSR2));

    memset(&q, 0, sizeof q);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_sigaction, (void *)h_info_a);
    ck_assert_int_eq(q.sa_flags & USER_FLAGS, SA_SIGINFO | SA_NODEFER);

    /* And back to a plain one: old is the SA_SIGINFO handler. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h_plain_b;
    sigemptyset(&sa.sa_mask);
    memset(&old, 0, sizeof old);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_sigaction, (void *)h_info_a);
    ck_assert_int_eq(old.sa_flags & USER_FLAGS, SA_SIGINFO | SA_NODEFER);
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)h_plain_b);
    ck_assert_int_eq(q.sa_flags & USER_FLAGS, 0);

    /* SIG_DFL over a sigsafe handler: queries say SIG_DFL, and so does old
     * of the next install. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    memset(&old, 0, sizeof old);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_handler, (void *)h_plain_b);
    memset(&q, 0xff, sizeof q);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)SIG_DFL);

    /* A foreign handler installed over ours with plain sigaction is what
     * a query reports afterwards. */
    install(SIGUSR2, h_plain_a, 0);
    st_install_handler(SIGUSR2, h_plain_b, 0);
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR2, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)h_plain_b);

    /* Query of SIGKILL is allowed. */
    ck_assert_int_eq(sigsafe_sigaction(SIGKILL, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)SIG_DFL);
}
END_TEST

static atomic_int ign_runs;
static void count_handler(int signo)
{
    (void)signo;
    atomic_fetch_add(&ign_runs, 1);
}

START_TEST(sig_ign_passes_through)
{
    struct sigaction sa, q;
    install(SIGUSR1, count_handler, 0);
    raise(SIGUSR1);
    ck_assert_int_eq(ldi(&ign_runs), 1);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0); /* ignored: nothing happens */
    ck_assert_int_eq(ldi(&ign_runs), 1);
    /* The kernel holds SIG_IGN itself (so it survives exec, for one). */
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)SIG_IGN);
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)SIG_IGN);
}
END_TEST

START_TEST(sig_dfl_passes_through)
{
    install(SIGUSR1, count_handler, 0);
    struct sigaction sa, q;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &q), 0);
    ck_assert_ptr_eq((void *)q.sa_handler, (void *)SIG_DFL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGUSR1); /* default action: terminate */
        _exit(atomic_load(&ign_runs) ? 3 : 4);
    }
    int status = wait_child(pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1,
                  "SIG_DFL: child status %#x", status);
}
END_TEST

START_TEST(resethand_second_raise_default)
{
    sigsafe_pool *a = make_pool("ctx-a", 0);
    bind_sig(SIGUSR1, a);
    install(SIGUSR1, simple_handler, SA_RESETHAND);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        rec_reset();
        raise(SIGUSR1); /* runs the handler once, resets to SIG_DFL */
        struct sigaction q;
        memset(&q, 0, sizeof q);
        char report[3] = {(char)rec_n,
                          (char)(rec_block_pool[0] == a),
                          0};
        if (sigsafe_sigaction(SIGUSR1, NULL, &q) == 0 &&
            q.sa_handler == SIG_DFL)
            report[2] = 1;
        if (write(fds[1], report, sizeof report) != sizeof report)
            _exit(2);
        raise(SIGUSR1); /* default action now: terminate */
        _exit(3);
    }
    close(fds[1]);
    char report[3] = {0, 0, 0};
    ssize_t n;
    while ((n = read(fds[0], report, sizeof report)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    int status = wait_child(pid);
    ck_assert_int_eq(n, 3);
    ck_assert_msg(report[0] == 1, "handler ran %d times", report[0]);
    ck_assert_msg(report[1] == 1, "handler did not allocate from its pool");
    ck_assert_msg(report[2] == 1, "query after reset is not SIG_DFL");
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1,
                  "SA_RESETHAND: second raise did not kill (status %#x)",
                  status);
}
END_TEST

/* SA_RESTART: a read blocked in another thread resumes after the handler
 * with it, and fails with EINTR without it. */
static int restart_fds[2];
static volatile pid_t reader_tid;
static atomic_int restart_runs;

static void restart_handler(int signo)
{
    (void)signo;
    void *p = sigsafe_alloc(64);
    sigsafe_free(p);
    atomic_fetch_add(&restart_runs, 1);
}

static void *reader_main(void *arg)
{
    (void)arg;
    reader_tid = gettid();
    char c;
    ssize_t r = read(restart_fds[0], &c, 1);
    int e = errno;
    return (void *)(intptr_t)(r == 1 ? 1 : r < 0 && e == EINTR ? 2 : 3);
}

/* Whether the thread is asleep (here: blocked in its read). */
static int thread_sleeping(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *state = strrchr(buf, ')'); /* after the command name */
    return state && state[1] == ' ' && state[2] == 'S';
}

START_TEST(restart_is_kept)
{
    if (st_under_tsan()) {
        printf("context: restart_is_kept skipped under TSan: it holds a "
               "signal back until the blocked read returns\n");
        return;
    }
    const int flags[2] = {SA_RESTART, 0};
    for (int k = 0; k < 2; k++) {
        install(SIGUSR1, restart_handler, flags[k]);
        ck_assert_int_eq(pipe(restart_fds), 0);
        atomic_store(&restart_runs, 0);
        reader_tid = 0;
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, reader_main, NULL), 0);
        while (reader_tid == 0 || !thread_sleeping(reader_tid))
            st_sleep_ms(1);
        ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
        while (ldi(&restart_runs) == 0)
            st_sleep_ms(1);
        ck_assert_int_eq(write(restart_fds[1], "x", 1), 1);
        void *rc;
        ck_assert_int_eq(pthread_join(t, &rc), 0);
        if (flags[k] == SA_RESTART)
            ck_assert_msg((intptr_t)rc == 1,
                          "SA_RESTART: the read did not resume (%d)",
                          (int)(intptr_t)rc);
        else
            ck_assert_msg((intptr_t)rc == 2,
                          "no SA_RESTART: the read did not fail with EINTR "
                          "(%d)", (int)(intptr_t)rc);
        close(restart_fds[0]);
        close(restart_fds[1]);
    }
}
END_TEST

/* sa_mask: SIGUSR2 raised inside the SIGUSR1 handler waits for it. */
static volatile int seq, usr2_seen_in_usr1, usr2_at, usr1_end_at;
static sigsafe_pool *volatile usr2_pool;

static void mask_usr2(int signo)
{
    (void)signo;
    usr2_at = ++seq;
    void *p = sigsafe_alloc(40);
    usr2_pool = p ? sigsafe_pool_of(p) : NULL;
    sigsafe_free(p);
}

static void mask_usr1(int signo)
{
    (void)signo;
    ++seq;
    raise(SIGUSR2);
    usr2_seen_in_usr1 = usr2_at != 0;
    usr1_end_at = ++seq;
}

START_TEST(mask_is_kept)
{
    sigsafe_pool *a = make_pool("ctx-a", 0), *b = make_pool("ctx-b", 0);
    bind_sig(SIGUSR1, a);
    bind_sig(SIGUSR2, b);
    install(SIGUSR2, mask_usr2, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mask_usr1;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0);
    seq = usr2_at = usr1_end_at = 0;
    usr2_seen_in_usr1 = -1;
    raise(SIGUSR1);
    ck_assert_msg(usr2_seen_in_usr1 == 0,
                  "SIGUSR2 ran inside the SIGUSR1 handler despite sa_mask");
    ck_assert_int_eq(usr1_end_at, 2);
    ck_assert_msg(usr2_at == 3, "SIGUSR2 ran at step %d", usr2_at);
    /* Delivered after SIGUSR1's handler left: its own context. */
    ck_assert_ptr_eq(usr2_pool, b);

    /* Control: without the mask it nests. */
    if (skip_nesting_under_tsan("mask_is_kept (control)"))
        return;
    install(SIGUSR1, mask_usr1, 0);
    seq = usr2_at = usr1_end_at = 0;
    raise(SIGUSR1);
    ck_assert_int_eq(usr2_seen_in_usr1, 1);
    ck_assert_int_eq(usr2_at, 2);
}
END_TEST

/* SA_SIGINFO: the user's handler gets the kernel's siginfo. */
static volatile int si_signo_seen, si_code_seen, si_calls, si_value_seen;
static volatile pid_t si_pid_seen;
static void *volatile si_uc_seen;
static sigsafe_pool *volatile si_pool_seen;

static void info_handler(int signo, siginfo_t *si, void *uc)
{
    si_calls++;
    si_signo_seen = si ? si->si_signo : -1;
    si_code_seen = si ? si->si_code : -12345;
    si_pid_seen = si ? si->si_pid : -1;
    si_value_seen = si ? si->si_value.sival_int : -1;
    si_uc_seen = uc;
    (void)signo;
    void *p = sigsafe_alloc(16);
    si_pool_seen = p ? sigsafe_pool_of(p) : NULL;
    sigsafe_free(p);
}

static volatile int plain_signo_seen;
static void plain_signo_handler(int signo)
{
    plain_signo_seen = signo;
}

START_TEST(siginfo_is_passed)
{
    sigsafe_pool *a = make_pool("ctx-a", 0);
    bind_sig(SIGUSR1, a);
    install_info(SIGUSR1, info_handler, 0);

    si_calls = 0;
    ck_assert_int_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
    ck_assert_int_eq(si_calls, 1);
    ck_assert_int_eq(si_signo_seen, SIGUSR1);
    ck_assert_int_eq(si_code_seen, SI_TKILL);
    ck_assert_int_eq(si_pid_seen, getpid());
    ck_assert_ptr_nonnull(si_uc_seen);
    ck_assert_ptr_eq(si_pool_seen, a);

    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(si_calls, 2);
    ck_assert_int_eq(si_signo_seen, SIGUSR1);
    ck_assert_int_eq(si_code_seen, SI_USER);
    ck_assert_int_eq(si_pid_seen, getpid());

    union sigval v = {.sival_int = 4242};
    ck_assert_int_eq(sigqueue(getpid(), SIGUSR1, v), 0);
    ck_assert_int_eq(si_calls, 3);
    ck_assert_int_eq(si_code_seen, SI_QUEUE);
    ck_assert_int_eq(si_value_seen, 4242);

    /* A plain handler gets its signal number. */
    install(SIGUSR2, plain_signo_handler, 0);
    plain_signo_seen = 0;
    raise(SIGUSR2);
    ck_assert_int_eq(plain_signo_seen, SIGUSR2);
}
END_TEST

/* ------------------------------------------------------- enter / leave */

START_TEST(enter_leave_by_hand)
{
    sigsafe_pool *def = sigsafe_default_pool();
    sigsafe_pool *a = make_pool("ctx-a", 0), *b = make_pool("ctx-b", 0);
    ck_assert_ptr_eq(sigsafe_current_pool(), def);
    sigsafe_context_enter(a);
    ck_assert_ptr_eq(sigsafe_current_pool(), a);
    sigsafe_context_enter(b);
    ck_assert_ptr_eq(sigsafe_current_pool(), b);
    void *p = st_launder(sigsafe_alloc(100));
    ck_assert_ptr_eq(sigsafe_pool_of(p), b);
    sigsafe_free(p);
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), a);
    p = st_launder(sigsafe_calloc(10, 10));
    ck_assert_ptr_eq(sigsafe_pool_of(p), a);
    sigsafe_free(p);
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), def);

    /* An unbalanced leave is ignored: it does not underflow. */
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), def);
    sigsafe_context_enter(a);
    ck_assert_ptr_eq(sigsafe_current_pool(), a);
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), def);
}
END_TEST

static sigsafe_pool *volatile deep_handler_pool;
static void deep_handler(int signo)
{
    (void)signo;
    void *p = sigsafe_alloc(32);
    deep_handler_pool = p ? sigsafe_pool_of(p) : NULL;
    sigsafe_free(p);
}

START_TEST(depth_bound_overflow)
{
    sigsafe_pool *def = sigsafe_default_pool();
    sigsafe_pool *a = make_pool("ctx-a", 0), *b = make_pool("ctx-b", 0);
    uint64_t c0 = atomic_load(&sigsafe__ctx_overflows);
    for (int i = 0; i < CTX_DEPTH; i++) {
        sigsafe_context_enter(i % 2 ? b : a);
        ck_assert_ptr_eq(sigsafe_current_pool(), i % 2 ? b : a);
    }
    ck_assert_uint_eq(ld64(&sigsafe__ctx_overflows), c0);
    /* Levels 65 and 66: the default pool, each counted. */
    sigsafe_context_enter(a);
    ck_assert_uint_eq(ld64(&sigsafe__ctx_overflows), c0 + 1);
    ck_assert_ptr_eq(sigsafe_current_pool(), def);
    void *p = st_launder(sigsafe_alloc(64));
    ck_assert_ptr_eq(sigsafe_pool_of(p), def);
    sigsafe_free(p);
    sigsafe_context_enter(b);
    ck_assert_uint_eq(ld64(&sigsafe__ctx_overflows), c0 + 2);
    ck_assert_ptr_eq(sigsafe_current_pool(), def);

    /* A handler bound to a, entered at depth 67: default, counted. */
    bind_sig(SIGUSR1, a);
    install(SIGUSR1, deep_handler, 0);
    deep_handler_pool = NULL;
    raise(SIGUSR1);
    ck_assert_ptr_eq(deep_handler_pool, def);
    ck_assert_uint_eq(ld64(&sigsafe__ctx_overflows), c0 + 3);

    /* Leaves restore, level by level, without counting. */
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), def); /* depth 65 */
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), b); /* depth 64: slot 63 */
    for (int i = CTX_DEPTH - 1; i >= 1; i--) {
        sigsafe_context_leave();
        ck_assert_ptr_eq(sigsafe_current_pool(), (i - 1) % 2 ? b : a);
    }
    sigsafe_context_leave();
    ck_assert_ptr_eq(sigsafe_current_pool(), def);
    ck_assert_uint_eq(ld64(&sigsafe__ctx_overflows), c0 + 3);

    /* And the bound handler is back in a's context. */
    deep_handler_pool = NULL;
    raise(SIGUSR1);
    ck_assert_ptr_eq(deep_handler_pool, a);
}
END_TEST

/* ------------------------------------------------- bad arguments, errno */

START_TEST(bind_signal_einval)
{
    sigsafe_pool *a = make_pool("ctx-a", 0);
    const int bad[] = {0, -1, 65, 1000, -SIGUSR1, 1 << 30};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ST_ASSERT_ERRNO_UNCHANGED(
            ck_assert_int_eq(sigsafe_bind_signal(bad[i], a), EINVAL));
        ST_ASSERT_ERRNO_UNCHANGED(
            ck_assert_int_eq(sigsafe_bind_signal(bad[i], NULL), EINVAL));
    }
    /* Not a pool: rejected, and the binding is unchanged. */
    bind_sig(SIGUSR1, a);
    static _Alignas(64) uint64_t not_a_pool[64]; /* zeros: no magic */
    ST_ASSERT_ERRNO_UNCHANGED(ck_assert_int_eq(
        sigsafe_bind_signal(SIGUSR1, (sigsafe_pool *)not_a_pool), EINVAL));
    install(SIGUSR1, simple_handler, 0);
    rec_reset();
    raise(SIGUSR1);
    ck_assert_ptr_eq(rec_block_pool[0], a);

    /* The top signal numbers are valid. */
    ck_assert_int_eq(sigsafe_bind_signal(SIGRTMAX, a), 0);
    ck_assert_int_eq(sigsafe_bind_signal(1, a), 0);
    ck_assert_int_eq(sigsafe_bind_signal(SIGRTMAX, NULL), 0);
    ck_assert_int_eq(sigsafe_bind_signal(1, NULL), 0);
}
END_TEST

START_TEST(sigaction_einval)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h_plain_a;
    const int bad[] = {0, -1, 65, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ST_ASSERT_ERRNO_UNCHANGED(
            ck_assert_int_eq(sigsafe_sigaction(bad[i], &sa, NULL), EINVAL));
        ST_ASSERT_ERRNO_UNCHANGED(
            ck_assert_int_eq(sigsafe_sigaction(bad[i], NULL, &old), EINVAL));
    }
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGKILL, &sa, NULL), EINVAL));
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGSTOP, &sa, &old), EINVAL));
    sa.sa_handler = SIG_IGN;
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGKILL, &sa, NULL), EINVAL));
}
END_TEST

START_TEST(setup_calls_keep_errno)
{
    sigsafe_pool *a = make_pool("ctx-a", 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = simple_handler;
    sigemptyset(&sa.sa_mask);
    /* The first of these builds the default and reserve pools. */
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, &old), 0));
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_bind_signal(SIGUSR1, a), 0));
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_bind_signal(SIGUSR2, a), 0));
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_bind_signal(SIGUSR2, NULL), 0));
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, NULL, &old), 0));
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0));
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = h_info_a;
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGUSR2, &sa, &old), 0));
    sa.sa_flags = 0;
    sa.sa_handler = SIG_IGN;
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGUSR2, &sa, &old), 0));
    sa.sa_handler = SIG_DFL;
    ST_ASSERT_ERRNO_UNCHANGED(
        ck_assert_int_eq(sigsafe_sigaction(SIGUSR2, &sa, &old), 0));
    /* The kernel (or libc) refuses: its errno comes back as the return
     * value, and errno itself is restored.  SIGRTMIN-1 and below are
     * reserved for the C library's own use on glibc and musl. */
    sa.sa_handler = h_plain_a;
    for (int signo = 32; signo < SIGRTMIN; signo++) {
        int rc;
        ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_sigaction(signo, &sa, NULL));
        ck_assert_msg(rc == EINVAL, "sigsafe_sigaction(%d) = %d", signo, rc);
    }
    /* The context functions and queries. */
    ST_ASSERT_ERRNO_UNCHANGED(sigsafe_context_enter(a));
    ST_ASSERT_ERRNO_UNCHANGED(ck_assert_ptr_eq(sigsafe_current_pool(), a));
    ST_ASSERT_ERRNO_UNCHANGED(sigsafe_context_leave());
    ST_ASSERT_ERRNO_UNCHANGED(sigsafe_context_leave()); /* unbalanced */

    /* Across a handler that allocates: the interrupted code's errno. */
    bind_sig(SIGUSR1, a);
    install(SIGUSR1, simple_handler, 0);
    rec_reset();
    ST_ASSERT_ERRNO_UNCHANGED(raise(SIGUSR1));
    ck_assert_int_eq(rec_n, 1);
}
END_TEST

/* ------------------------------------------- rebinding under a storm */

static sigsafe_pool *swap_a, *swap_b;
static atomic_ulong swap_runs, swap_bad, swap_null, swap_seen_a,
    swap_seen_b;

static void swap_handler(int signo)
{
    (void)signo;
    int saved = errno;
    sigsafe_pool *cur = sigsafe_current_pool();
    void *p = sigsafe_alloc(48);
    if (!p) {
        atomic_fetch_add_explicit(&swap_null, 1, memory_order_relaxed);
    } else {
        sigsafe_pool *got = sigsafe_pool_of(p);
        if ((got != swap_a && got != swap_b) || got != cur)
            atomic_fetch_add_explicit(&swap_bad, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(got == swap_a ? &swap_seen_a : &swap_seen_b,
                                  1, memory_order_relaxed);
        st_fill(p, 48, 17);
        if (st_check(p, 48, 17) != SIZE_MAX)
            atomic_fetch_add_explicit(&swap_bad, 1, memory_order_relaxed);
        sigsafe_free(p);
    }
    atomic_fetch_add_explicit(&swap_runs, 1, memory_order_relaxed);
    errno = saved;
}

static atomic_bool swap_stop;

/* A second target: allocates from the default pool between signals. */
static void *swap_worker(void *arg)
{
    (void)arg;
    uint64_t rng = 7;
    while (!atomic_load(&swap_stop)) {
        size_t n = 16 + st_rand(&rng) % 300;
        void *p = sigsafe_alloc(n);
        if (p) {
            st_fill(p, n, 3);
            if (st_check(p, n, 3) != SIZE_MAX ||
                sigsafe_pool_of(p) != sigsafe_default_pool())
                atomic_fetch_add(&swap_bad, 1);
            sigsafe_free(p);
        }
        sched_yield();
    }
    return NULL;
}

START_TEST(rebind_under_storm)
{
    swap_a = make_pool("swap-a", 0);
    swap_b = make_pool("swap-b", 0);
    bind_sig(SIGUSR1, swap_a);
    bind_sig(SIGUSR2, swap_b);
    install(SIGUSR1, swap_handler, 0);
    install(SIGUSR2, swap_handler, 0);

    pthread_t worker;
    ck_assert_int_eq(pthread_create(&worker, NULL, swap_worker, NULL), 0);
    pthread_t targets[2] = {pthread_self(), worker};
    st_storm s;
    st_storm_config cfg = {.targets = targets,
                           .ntargets = 2,
                           .kill_signo = {SIGUSR1, SIGUSR2}};
    st_storm_start(&s, &cfg);
    long long end = st_now_ms() + 1500;
    unsigned long binds = 0;
    while (st_now_ms() < end) {
        for (int i = 0; i < 200; i++, binds++) {
            /* Swap: each signal sees a or b, never anything else. */
            sigsafe_pool *x = binds & 1 ? swap_b : swap_a;
            sigsafe_pool *y = binds & 1 ? swap_a : swap_b;
            int rc1 = sigsafe_bind_signal(SIGUSR1, x);
            int rc2 = sigsafe_bind_signal(SIGUSR2, y);
            ck_assert_int_eq(rc1, 0);
            ck_assert_int_eq(rc2, 0);
        }
        sched_yield();
    }
    unsigned long kills = st_storm_stop(&s);
    atomic_store(&swap_stop, true);
    pthread_join(worker, NULL);
    /* Let the last pending signals land. */
    st_sleep_ms(10);
    unsigned long runs = atomic_load(&swap_runs);
    printf("context: rebind storm: %lu binds, %lu kills, %lu handler runs "
           "(%lu in a, %lu in b)\n",
           binds, kills, runs, atomic_load(&swap_seen_a),
           atomic_load(&swap_seen_b));
    ck_assert_uint_gt(runs, 0);
    ck_assert_uint_eq(ldu(&swap_bad), 0);
    ck_assert_uint_eq(ldu(&swap_null), 0);
    ck_assert_uint_eq(st_stats(swap_a).bytes_in_use, 0);
    ck_assert_uint_eq(st_stats(swap_b).bytes_in_use, 0);
}
END_TEST

Suite *context_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("bound");
    tcase_add_test(tc, handler_uses_bound_pool);
    tcase_add_test(tc, unbound_signal_uses_default);
    tcase_add_test(tc, bind_after_install);
    tcase_add_test(tc, nested_handlers_own_pools);
    tcase_add_test(tc, nodefer_recursion);
    tcase_add_test(tc, exhausted_context_isolated);
    tcase_add_test(tc, reserve_for_reentered_context);
    tcase_add_test(tc, reserve_for_crash_handler);
    suite_add_tcase(s, tc);

    tc = tcase_create("sigaction");
    tcase_add_test(tc, old_reports_user_handler);
    tcase_add_test(tc, sig_ign_passes_through);
    tcase_add_test(tc, sig_dfl_passes_through);
    tcase_add_test(tc, resethand_second_raise_default);
    tcase_add_test(tc, restart_is_kept);
    tcase_add_test(tc, mask_is_kept);
    tcase_add_test(tc, siginfo_is_passed);
    suite_add_tcase(s, tc);

    tc = tcase_create("manual");
    tcase_add_test(tc, enter_leave_by_hand);
    tcase_add_test(tc, depth_bound_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, bind_signal_einval);
    tcase_add_test(tc, sigaction_einval);
    tcase_add_test(tc, setup_calls_keep_errno);
    suite_add_tcase(s, tc);

    tc = tcase_create("storm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rebind_under_storm);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(context_suite());
}
