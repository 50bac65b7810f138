/* SPDX-License-Identifier: MIT */
/*
 * fork: a child may allocate and free at once, from a handler or from plain
 * code, whatever the parent's other threads were doing (SPEC guarantee 7).
 *
 * Two threads hammer a pool and the default pool while the main thread
 * forks, from plain code and from inside a signal handler.  The child
 * allocates from both pools (in a handler it raises and in plain code),
 * checks patterns, and checks that no block it gets is one that a parent
 * thread held at the fork: every block the hammers hold carries an owner
 * tag in its first word, set after alloc and cleared before free, so a
 * block handed out to the child with a tag still on it was live.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NTHREADS = 2, SLOTS = 32, ROUNDS = 50, CHILD_BLOCKS = 12 };
#define HANG_MS 30000

static sigsafe_pool *pool, *defpool;
static atomic_bool stop;
static atomic_ulong hammer_bad, hammer_ops;

/* A plain read of a counter, so that failed assertions print its name. */
static unsigned long ldu(atomic_ulong *a) { return atomic_load(a); }

#define TAG_MAGIC 0xF0C5ull
#define TAG_IS_OURS(w) (((w) >> 48) == TAG_MAGIC)
static atomic_ulong tag_seq;

static uint64_t new_tag(void)
{
    return (TAG_MAGIC << 48) |
           (atomic_fetch_add_explicit(&tag_seq, 1, memory_order_relaxed) &
            0xFFFFFFFFFFFFull);
}

static uint64_t tag_swap(void *p, uint64_t v)
{
    return atomic_exchange_explicit((_Atomic uint64_t *)p, v,
                                    memory_order_acq_rel);
}

/* ----------------------------------------------------------- hammers */

typedef struct slot {
    void *p;
    size_t n;
    uint64_t tag;
} slot;

static void *hammer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 3;
    slot s[SLOTS];
    memset(s, 0, sizeof s);
    unsigned long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        slot *x = &s[st_rand(&rng) % SLOTS];
        if (x->p) {
            if (st_check_sparse((char *)x->p + 8, x->n - 8, x->tag) !=
                    SIZE_MAX ||
                tag_swap(x->p, 0) != x->tag)
                atomic_fetch_add(&hammer_bad, 1);
            sigsafe_free(x->p);
            x->p = NULL;
        }
        x->n = 16 + st_rand_size(&rng, 40000);
        sigsafe_pool *from = (ops & 1) ? pool : defpool;
        x->p = sigsafe_pool_alloc(from, x->n);
        if (!x->p)
            continue;
        x->tag = new_tag();
        if (TAG_IS_OURS(tag_swap(x->p, x->tag)))
            atomic_fetch_add(&hammer_bad, 1);
        st_fill_sparse((char *)x->p + 8, x->n - 8, x->tag);
        ops++;
    }
    for (int i = 0; i < SLOTS; i++) {
        if (!s[i].p)
            continue;
        if (tag_swap(s[i].p, 0) != s[i].tag)
            atomic_fetch_add(&hammer_bad, 1);
        sigsafe_free(s[i].p);
    }
    atomic_fetch_add(&hammer_ops, ops);
    return NULL;
}

static void start_hammers(pthread_t *t)
{
    atomic_store(&stop, false);
    for (uintptr_t i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)),
                         0);
}

static void stop_hammers(pthread_t *t)
{
    atomic_store(&stop, true);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(ldu(&hammer_bad), 0);
    ck_assert_uint_gt(ldu(&hammer_ops), 0);
    /* The parent's pools are whole after all the forks. */
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, s.frees);
    ck_assert_uint_eq(s.rejected_frees, 0);
}

/* ------------------------------------------------------ child's work */

/*
 * In the child: allocate CHILD_BLOCKS blocks, alternately from `ctx` via
 * sigsafe_alloc (the current context must be ctx) and from the other
 * pool, fill, check, free.  Returns 0 or a failure code.  AS-safe.
 */
static int child_work(sigsafe_pool *ctx, uint64_t seed)
{
    void *b[CHILD_BLOCKS];
    size_t n[CHILD_BLOCKS];
    if (sigsafe_current_pool() != ctx)
        return 1;
    for (int i = 0; i < CHILD_BLOCKS; i++) {
        n[i] = 16 + (size_t)(i * 1237 % 3000) + (i == 5 ? 30000 : 0);
        sigsafe_pool *want = (i & 1) ? (ctx == pool ? defpool : pool) : ctx;
        b[i] = (i & 1) ? sigsafe_pool_alloc(want, n[i]) : sigsafe_alloc(n[i]);
        if (!b[i])
            return 2;
        if (sigsafe_pool_of(b[i]) != want)
            return 3;
        /* A block a parent thread held at the fork: handed out twice. */
        if (TAG_IS_OURS(tag_swap(b[i], seed + (uint64_t)i)))
            return 4;
        st_fill((char *)b[i] + 8, n[i] - 8, seed + (uint64_t)i);
    }
    for (int i = 0; i < CHILD_BLOCKS; i++) {
        if (st_check((char *)b[i] + 8, n[i] - 8, seed + (uint64_t)i) !=
            SIZE_MAX)
            return 5;
        tag_swap(b[i], 0);
        sigsafe_free(b[i]);
    }
    return 0;
}

static volatile int usr1_result = -1;

/* SIGUSR1, bound to pool: the child's handler work. */
static void usr1_handler(int signo)
{
    (void)signo;
    int saved = errno;
    usr1_result = child_work(pool, 1000);
    errno = saved;
}

/* fork() is not async-signal-safe (it runs atfork handlers and takes
 * libc's locks); _Fork() is, where libc has it.  TSan must see the fork,
 * through its fork() interceptor, to keep its own state sane. */
static pid_t as_fork(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    if (!st_under_tsan())
        return _Fork();
#endif
    return fork();
}

/* Wait for a child; fail the test if it hangs (a lock held at the fork). */
static void wait_ok(pid_t pid, int round, const char *what)
{
    ck_assert_msg(pid > 0, "%s: fork failed: %s", what, strerror(errno));
    int status = 0;
    long long deadline = st_now_ms() + HANG_MS;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
           st_now_ms() < deadline)
        st_sleep_ms(2);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("%s round %d: the child hung", what, round);
    }
    ck_assert_int_eq(w, pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s round %d: child status %#x (exit %d, signal %d)", what,
                  round, status, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/*
 * After a fork of a multi-threaded process TSan ignores every interceptor
 * in the child ("we cannot reasonably function after that"), and with them
 * its signal delivery: a handler raised there never runs.  Under TSan the
 * child does its work in plain code (and, for the fork from a handler,
 * inside the handler it was forked in) only.
 */
static int handlers_in_child = 1;

static void setup(void)
{
    if (st_under_tsan()) {
        handlers_in_child = 0;
        printf("fork: under TSan the child raises no handler of its own "
               "(TSan disables signal delivery after a multi-threaded "
               "fork)\n");
    }
    sigsafe_pool_config cfg = {.name = "fork", .capacity = 32 * ST_MIB};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    defpool = sigsafe_default_pool();
    ck_assert_ptr_nonnull(defpool);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = usr1_handler;
    ck_assert_int_eq(sigsafe_bind_signal(SIGUSR1, pool), 0);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0);
}

START_TEST(fork_while_hammering)
{
    setup();
    pthread_t t[NTHREADS];
    start_hammers(t);
    for (int round = 0; round < ROUNDS; round++) {
        st_sleep_ms(1 + round % 3);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            /* At once: from a handler, then from plain code. */
            if (!handlers_in_child) {
                usr1_result = 0; /* (TSan: see handlers_in_child) */
            } else {
                usr1_result = -1;
                raise(SIGUSR1);
            }
            if (usr1_result != 0)
                _exit(10 + usr1_result);
            int rc = child_work(defpool, 2000);
            _exit(rc ? 20 + rc : 0);
        }
        wait_ok(pid, round, "fork");
    }
    stop_hammers(t);
}
END_TEST

/* Fork from inside a handler: the child goes on in the handler's context. */
static volatile pid_t handler_child;

static void usr2_handler(int signo)
{
    (void)signo;
    int saved = errno;
    pid_t pid = as_fork();
    if (pid == 0) {
        int rc = child_work(pool, 3000); /* still in the handler: pool */
        if (rc)
            _exit(30 + rc);
        usr1_result = 0;
        if (handlers_in_child) {
            usr1_result = -1;
            raise(SIGUSR1); /* nested: bound to pool as well */
        }
        if (usr1_result != 0)
            _exit(40 + usr1_result);
        rc = child_work(pool, 4000);
        _exit(rc ? 50 + rc : 0);
    }
    handler_child = pid;
    errno = saved;
}

START_TEST(fork_from_handler)
{
    setup();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = usr2_handler;
    ck_assert_int_eq(sigsafe_bind_signal(SIGUSR2, pool), 0);
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR2, &sa, NULL), 0);
    pthread_t t[NTHREADS];
    start_hammers(t);
    for (int round = 0; round < ROUNDS; round++) {
        st_sleep_ms(1 + round % 3);
        fflush(NULL);
        handler_child = -1;
        ck_assert_int_eq(pthread_kill(pthread_self(), SIGUSR2), 0);
        wait_ok(handler_child, round, "fork in handler");
    }
    stop_hammers(t);
}
END_TEST

Suite *fork_suite(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = tcase_create("fork");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fork_while_hammering);
    tcase_add_test(tc, fork_from_handler);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(fork_suite());
}
