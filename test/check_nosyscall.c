/* SPDX-License-Identifier: MIT */
/*
 * nosyscall: the proof of SPEC guarantee 1 for SIGSAFE_POOL_NO_SYSCALLS.
 *
 * A child process builds its pools (NO_SYSCALLS|PREFAULT) and the default
 * pool, binds signals to them with sigsafe_sigaction(), starts a thread that
 * will send it signals, and then installs a seccomp filter that kills the
 * whole process on every system call except the four the test itself makes
 * (tgkill, rt_sigreturn, sched_yield, exit_group): mmap, munmap, mprotect,
 * madvise, brk, rt_sigprocmask, futex and write included.  Under the filter
 * it runs at least 10^5 random operations (alloc, calloc, realloc,
 * aligned_alloc, free, context enter/leave, bad frees with the report fd at
 * -1; sizes up to 20 KiB), and goes on until the other thread has sent 1000
 * signals, while handlers, entered synchronously (tgkill to itself; glibc's
 * raise() would call rt_sigprocmask), asynchronously (the other thread) and
 * nested inside each other, allocate and free in their own pools (and in
 * the default pool, for a signal bound to none).  Death by SIGSYS means
 * the library made a system call.  At the end every pool's statistics must
 * match what each actor counted.
 *
 * The same run over ordinary pools, with mprotect and mmap let through
 * too, shows that those are the only system calls their spans and large
 * blocks need.
 *
 * test/check_pool.c's no_syscalls_under_seccomp is the short version
 * (alloc/free from normal code, exit_group only).
 */
#include "support.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS SECCOMP_RET_KILL
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC 1
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define NS_ON_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef NS_ON_VALGRIND
#define NS_ON_VALGRIND() 0
#endif

#define NS_OPS 100000         /* at least, from the main code */
#define NS_MAX_OPS 2000000    /* at most, waiting for the other thread */
#define NS_MIN_ASYNC 1000     /* signals the other thread must have sent */
#define NS_MAX_SIZE (20 * ST_KIB)
#define NS_EXIT_NO_SECCOMP 77

/* ------------------------------------------------------- the filter */

#ifdef NS_AUDIT_ARCH
#define NS_ALLOW(nr)                                                         \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                         \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* Ordinary pools instead of NO_SYSCALLS ones (the second test): their
 * spans and large blocks are made accessible when first used, so the
 * filter lets mprotect and mmap through too, and nothing else. */
static int ns_ordinary;

/* Every thread of the process: only these system calls; any other kills
 * the whole process with SIGSYS.  Returns 0 or -1 (no seccomp here). */
static int lock_down(void)
{
    long map_nr = ns_ordinary ? __NR_mmap : __NR_exit_group;
    long prot_nr = ns_ordinary ? __NR_mprotect : __NR_exit_group;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NS_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        NS_ALLOW(__NR_tgkill),       /* sending ourselves signals */
        NS_ALLOW(__NR_rt_sigreturn), /* returning from a handler */
        NS_ALLOW(__NR_sched_yield),  /* the sender thread's pause */
        NS_ALLOW(__NR_exit_group),   /* the end */
        NS_ALLOW(map_nr),            /* ordinary pools only: see above */
        NS_ALLOW(prot_nr),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                   SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0
               ? 0
               : -1;
}
#endif

static _Noreturn void child_exit(int code)
{
    syscall(SYS_exit_group, code);
    for (;;)
        ;
}

/* Whether a sanitizer or valgrind makes system calls of its own; prints
 * the reason and returns 1 if so. */
static int skip_reason(const char *test)
{
#ifndef NS_AUDIT_ARCH
    printf("%s: skipped, unknown architecture for seccomp\n", test);
    return 1;
#else
    const char *why = NULL;
    if (st_under_asan())
        why = "ASan's runtime maps shadow memory and takes locks";
    else if (st_under_tsan())
        why = "TSan's runtime maps memory and takes locks";
    else if (NS_ON_VALGRIND())
        why = "valgrind makes system calls for the program it runs";
    if (why)
        printf("%s: skipped: %s\n", test, why);
    return why != NULL;
#endif
}

/* Run fn in a child; return its wait status. */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        child_exit(fn());
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* ----------------------------------------- the harness traps each call */

#ifdef NS_AUDIT_ARCH
static long forbidden_nr;

static int call_forbidden(void)
{
    if (lock_down() != 0)
        return NS_EXIT_NO_SECCOMP;
    long a[6] = {0, 0, 0, 0, 0, 0};
    if (forbidden_nr == SYS_mmap) {
        a[1] = 4096;
        a[2] = PROT_READ;
        a[3] = MAP_PRIVATE | MAP_ANONYMOUS;
        a[4] = -1;
    }
    syscall(forbidden_nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    return 3; /* not killed: the filter let it through */
}
#endif

/* Each system call the library could make kills a locked-down child. */
START_TEST(filter_traps)
{
    if (skip_reason("filter_traps"))
        return;
#ifdef NS_AUDIT_ARCH
    static const struct {
        long nr;
        const char *name;
    } calls[] = {
        {SYS_mmap, "mmap"},         {SYS_munmap, "munmap"},
        {SYS_mprotect, "mprotect"}, {SYS_madvise, "madvise"},
        {SYS_brk, "brk"},           {SYS_rt_sigprocmask, "rt_sigprocmask"},
        {SYS_futex, "futex"},       {SYS_write, "write"},
        {SYS_getpid, "getpid"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        forbidden_nr = calls[i].nr;
        int st = in_child(call_forbidden);
        if (WIFEXITED(st) && WEXITSTATUS(st) == NS_EXIT_NO_SECCOMP) {
            printf("filter_traps: skipped, seccomp unavailable\n");
            return;
        }
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
                      "%s under the filter: status %#x, not SIGSYS",
                      calls[i].name, st);
    }
#endif
}
END_TEST

/* ------------------------------------------------------------- actors */

/* Position-relative pattern (a realloc moves it), AS-safe. */
static unsigned char pat(uint64_t seed, size_t i)
{
    uint64_t x = (seed + i) * 0x9e3779b97f4a7c15ull;
    return (unsigned char)(x >> 56);
}

/*
 * The bytes a pattern covers in an n-byte block: the first and last 16 and
 * every 509th in between, cheap enough for 20 KiB blocks in handlers.
 * Walks them, filling (p != NULL, check == 0) or checking those below
 * `limit`; a check returns 1 on the first mismatch.  AS-safe.
 */
static int pat_walk(unsigned char *p, size_t n, size_t limit, uint64_t seed,
                    int check)
{
    for (size_t i = 0; i < n && i < limit;
         i = (i < 16 || i + 16 >= n) ? i + 1 : (i + 509 < n - 16 ? i + 509
                                                                  : n - 16)) {
        if (!check)
            p[i] = pat(seed, i);
        else if (p[i] != pat(seed, i))
            return 1;
    }
    return 0;
}

static void pat_fill(unsigned char *p, size_t n, uint64_t seed)
{
    (void)pat_walk(p, n, n, seed, 0);
}

static int pat_check(const unsigned char *p, size_t n, uint64_t seed)
{
    return pat_walk((unsigned char *)p, n, n, seed, 1);
}

#define NS_SLOTS 256

/*
 * One actor: main code, or one signal's handler.  Each uses one pool and
 * counts what the pool's statistics must show.  A handler's actor is
 * touched only by that handler (a signal does not interrupt its own
 * handler), and by the main code once every handler is switched off.
 */
typedef struct actor {
    sigsafe_pool *pool;
    unsigned nslots;
    unsigned char *blk[NS_SLOTS];
    size_t len[NS_SLOTS];
    uint64_t seed[NS_SLOTS];
    uint64_t rng;
    uint64_t allocs, frees, failed, rejected;
    unsigned long runs;
} actor;

/* Results, in memory shared with the parent (the child cannot write). */
typedef struct results {
    int code, line;
    unsigned long main_ops, sync_signals, usr1_runs, usr2_runs, nested_runs;
    unsigned long sent_async, alloc_failures;
} results;

static results *res;
static volatile sig_atomic_t handlers_off;
static actor main_actor, usr1_actor, usr2_actor, nested_actor;
static pid_t my_pid, my_tid;

#define NS_FAIL(code_)                                                       \
    do {                                                                     \
        if (!res->code) {                                                    \
            res->code = (code_);                                             \
            res->line = __LINE__;                                            \
        }                                                                    \
        child_exit(code_);                                                   \
    } while (0)

/* An allocation through the context functions (ctx) or the pool ones. */
static unsigned char *actor_alloc(actor *a, int ctx, unsigned kind, size_t n,
                                  size_t align)
{
    switch (kind) {
    case 0:
        return ctx ? sigsafe_alloc(n) : sigsafe_pool_alloc(a->pool, n);
    case 1:
        return ctx ? sigsafe_calloc(1, n) : sigsafe_pool_calloc(a->pool, 1, n);
    default:
        return ctx ? sigsafe_aligned_alloc(align, n)
                   : sigsafe_pool_aligned_alloc(a->pool, align, n);
    }
}

/* One random operation.  AS-safe: handlers run it too. */
static void actor_op(actor *a, int ctx)
{
    uint64_t r = st_rand(&a->rng);
    unsigned s = (unsigned)(r >> 16) % a->nslots;
    size_t n = st_rand_size(&a->rng, NS_MAX_SIZE);
    unsigned char *p = a->blk[s];
    if (!p) {
        unsigned kind = (unsigned)(r % 4) < 2 ? 0 : (unsigned)(r % 4) - 1;
        size_t align = (size_t)1 << (r >> 40) % 13;
        p = actor_alloc(a, ctx, kind, n, align);
        if (!p) {
            a->failed++;
            return;
        }
        if (sigsafe_pool_of(p) != a->pool)
            NS_FAIL(20);
        if (sigsafe_usable_size(p) < n || ((uintptr_t)p & 15) ||
            (kind == 2 && ((uintptr_t)p & (align - 1))))
            NS_FAIL(21);
        if (kind == 1 && n && (p[0] || p[n - 1] || p[n / 2]))
            NS_FAIL(22);
        a->allocs++;
        a->blk[s] = p;
        a->len[s] = n;
        a->seed[s] = r;
        pat_fill(p, n, r);
        return;
    }
    if (pat_check(p, a->len[s], a->seed[s]))
        NS_FAIL(23);
    if (r % 3 != 2) {
        sigsafe_free(p);
        a->frees++;
        a->blk[s] = NULL;
        return;
    }
    size_t have = sigsafe_usable_size(p);
    if (r % 7 == 0)
        n = 0;
    unsigned char *q = ctx ? sigsafe_realloc(p, n)
                           : sigsafe_pool_realloc(a->pool, p, n);
    if (n == 0) { /* realloc(p, 0) frees */
        if (q)
            NS_FAIL(24);
        a->frees++;
        a->blk[s] = NULL;
        return;
    }
    if (!q) { /* a failed grow leaves p as it was */
        a->failed++;
        if (pat_check(p, a->len[s], a->seed[s]))
            NS_FAIL(25);
        return;
    }
    if (n <= have) {
        if (q != p)
            NS_FAIL(26);
    } else {
        a->allocs++;
        a->frees++;
    }
    /* The pattern survives, up to the new size. */
    if (pat_walk(q, a->len[s], n, a->seed[s], 1))
        NS_FAIL(27);
    if (sigsafe_pool_of(q) != a->pool)
        NS_FAIL(28);
    a->blk[s] = q;
    a->len[s] = n;
    a->seed[s] = r ^ 0x5555;
    pat_fill(q, n, a->seed[s]);
}

/* A handler's share: a few operations in the pool it is bound to. */
static void handler_ops(actor *a)
{
    if (handlers_off)
        return;
    a->runs++;
    if (sigsafe_current_pool() != a->pool)
        NS_FAIL(30);
    for (int i = 0; i < 4; i++)
        actor_op(a, 1);
    if (sigsafe_current_pool() != a->pool)
        NS_FAIL(31);
}

static void on_usr1(int signo)
{
    (void)signo;
    handler_ops(&usr1_actor);
    /* Every third run, a nested handler in a third pool. */
    if (!handlers_off && usr1_actor.runs % 3 == 0)
        syscall(SYS_tgkill, my_pid, my_tid, SIGURG);
    if (sigsafe_current_pool() != usr1_actor.pool)
        NS_FAIL(32);
}

static void on_usr2(int signo)
{
    (void)signo;
    handler_ops(&usr2_actor);
}

static void on_urg(int signo)
{
    (void)signo;
    handler_ops(&nested_actor);
}

/* ------------------------------------------------------ the sender */

static atomic_int sender_state; /* 0 start, 1 ready, 2 go, 3 stop, 4 done */
static atomic_ulong sent;        /* signals the other thread sent */

static void *sender(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* before the filter */
    atomic_store(&sender_state, 1);
    while (atomic_load(&sender_state) == 1)
        sched_yield();
    unsigned long n = 0;
    while (atomic_load(&sender_state) == 2) {
        syscall(SYS_tgkill, my_pid, my_tid, n & 1 ? SIGUSR2 : SIGUSR1);
        atomic_store(&sent, ++n);
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        sched_yield();
    }
    res->sent_async = n;
    atomic_store(&sender_state, 4);
    /* Never return: a thread's exit unmaps and madvises. */
    for (;;)
        sched_yield();
    return NULL;
}

/* --------------------------------------------------------- the child */

static sigsafe_pool *make_pool(const char *name, size_t capacity)
{
    sigsafe_pool_config cfg = {
        .name = name,
        .capacity = capacity,
        .flags = ns_ordinary ? 0u
                             : SIGSAFE_POOL_NO_SYSCALLS | SIGSAFE_POOL_PREFAULT,
    };
    sigsafe_pool *pool = NULL;
    return sigsafe_pool_create(&cfg, &pool) == 0 ? pool : NULL;
}

static int bind_handler(int signo, sigsafe_pool *pool, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (pool && sigsafe_bind_signal(signo, pool) != 0)
        return -1;
    return sigsafe_sigaction(signo, &sa, NULL);
}

static void actor_init(actor *a, sigsafe_pool *pool, unsigned nslots,
                       uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->pool = pool;
    a->nslots = nslots;
    a->rng = seed;
}

/* Bad frees with the report fd at -1: rejected without a system call. */
static void bad_frees(actor *a, actor *dflt)
{
    for (unsigned s = 0; s < a->nslots; s++) {
        if (!a->blk[s])
            continue;
        sigsafe_free(a->blk[s] + 1); /* interior */
        a->rejected++;
        sigsafe_free(a->blk[s]);
        a->frees++;
        sigsafe_free(a->blk[s]); /* double: nobody else allocates in a */
        a->rejected++;
        a->blk[s] = NULL;
        break;
    }
    long local = 0;
    sigsafe_free(&local); /* in no pool: the default pool counts it */
    dflt->rejected++;
}

/* The statistics of a's pool match a's counts, and the pool is empty. */
static int stats_match(const actor *a)
{
    sigsafe_stats st;
    if (sigsafe_pool_stats(a->pool, &st) != 0)
        return 0;
    return st.allocs == a->allocs && st.frees == a->frees &&
           st.failed_allocs == a->failed && st.rejected_frees == a->rejected &&
           st.bytes_in_use == 0;
}

static void free_all(actor *a)
{
    for (unsigned s = 0; s < a->nslots; s++)
        if (a->blk[s]) {
            if (pat_check(a->blk[s], a->len[s], a->seed[s]))
                NS_FAIL(40);
            sigsafe_free(a->blk[s]);
            a->frees++;
            a->blk[s] = NULL;
        }
}

static int locked_work(void)
{
    sigsafe_pool_config dcfg = {
        .name = "nosys-default",
        .flags = ns_ordinary ? 0u : SIGSAFE_POOL_NO_SYSCALLS,
    };
    if (sigsafe_init(&dcfg) != 0)
        return 10;
    sigsafe_pool *main_pool = make_pool("nosys-main", 4 * ST_MIB);
    sigsafe_pool *usr1_pool = make_pool("nosys-usr1", ST_MIB);
    sigsafe_pool *urg_pool = make_pool("nosys-nested", 64 * ST_KIB);
    if (!main_pool || !usr1_pool || !urg_pool)
        return 11;
    actor_init(&main_actor, main_pool, NS_SLOTS, 1);
    actor_init(&usr1_actor, usr1_pool, 8, 2);
    actor_init(&usr2_actor, sigsafe_default_pool(), 8, 3);
    actor_init(&nested_actor, urg_pool, 8, 4);
    /* SIGUSR2 is bound to no pool: its handler runs in the default one. */
    if (bind_handler(SIGUSR1, usr1_pool, on_usr1) != 0 ||
        bind_handler(SIGUSR2, NULL, on_usr2) != 0 ||
        bind_handler(SIGURG, urg_pool, on_urg) != 0)
        return 12;
    sigsafe_set_report_fd(-1);
    /* An ordinary pool's first use on a thread asks the kernel for the
     * thread's ids, once (docs/design.md).  That is not steady state, so
     * it happens here, before the lock-down. */
    sigsafe_free(sigsafe_pool_alloc(sigsafe_default_pool(), 16));
    usr2_actor.allocs++; /* counted in the default pool's statistics */
    usr2_actor.frees++;
    my_pid = getpid();
    my_tid = (pid_t)syscall(SYS_gettid);
    pthread_t thread;
    if (pthread_create(&thread, NULL, sender, NULL) != 0)
        return 13;
    while (atomic_load(&sender_state) != 1)
        sched_yield();

#ifdef NS_AUDIT_ARCH
    if (lock_down() != 0)
        return NS_EXIT_NO_SECCOMP;
#endif
    /* From here on, any system call but the four allowed kills us. */
    atomic_store(&sender_state, 2);
    unsigned long i;
    for (i = 0; i < NS_OPS || (atomic_load(&sent) < NS_MIN_ASYNC &&
                                i < NS_MAX_OPS);
         i++) {
        if (i % 10 == 0) { /* through the context functions */
            sigsafe_context_enter(main_pool);
            actor_op(&main_actor, 1);
            sigsafe_context_leave();
        } else {
            actor_op(&main_actor, 0);
        }
        if (i % 50 == 0) {
            syscall(SYS_tgkill, my_pid, my_tid, SIGUSR1);
            res->sync_signals++;
        }
        if (i % 1000 == 999)
            bad_frees(&main_actor, &usr2_actor);
        if (i % 5000 == 0 && sigsafe_current_pool() != sigsafe_default_pool())
            NS_FAIL(41);
    }
    res->main_ops = i;
    atomic_store(&sender_state, 3);
    while (atomic_load(&sender_state) != 4)
        sched_yield();
    handlers_off = 1;
    atomic_signal_fence(memory_order_seq_cst); /* before the frees below */

    free_all(&main_actor);
    free_all(&usr1_actor);
    free_all(&usr2_actor);
    free_all(&nested_actor);
    res->usr1_runs = usr1_actor.runs;
    res->usr2_runs = usr2_actor.runs;
    res->nested_runs = nested_actor.runs;
    res->alloc_failures = main_actor.failed + usr1_actor.failed +
                          usr2_actor.failed + nested_actor.failed;
    if (!stats_match(&main_actor))
        NS_FAIL(50);
    if (!stats_match(&usr1_actor))
        NS_FAIL(51);
    if (!stats_match(&usr2_actor))
        NS_FAIL(52);
    if (!stats_match(&nested_actor))
        NS_FAIL(53);
    return 0;
}

static void run_locked_down(const char *name)
{
    if (skip_reason(name))
        return;
    res = mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(res, MAP_FAILED);
    memset(res, 0, sizeof *res);
    int st = in_child(locked_work);
    if (WIFEXITED(st) && WEXITSTATUS(st) == NS_EXIT_NO_SECCOMP) {
        printf("%s: skipped, seccomp unavailable\n", name);
        return;
    }
    printf("%s: %lu operations, %lu handler runs "
           "(SIGUSR1 %lu, SIGUSR2 %lu, nested %lu), %lu signals sent by the "
           "other thread, %lu NULLs from exhaustion\n",
           name, res->main_ops, res->usr1_runs + res->usr2_runs + res->nested_runs,
           res->usr1_runs, res->usr2_runs, res->nested_runs, res->sent_async,
           res->alloc_failures);
    ck_assert_msg(!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS),
                  "a system call was made under the filter (SIGSYS; "
                  "%lu operations done)", res->main_ops);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "child failed: status %#x, check %d at line %d", st,
                  res->code, res->line);
    ck_assert_uint_ge(res->main_ops, NS_OPS);
    /* Every 50th operation raised SIGUSR1 synchronously. */
    ck_assert_uint_ge(res->usr1_runs, NS_OPS / 50);
    ck_assert_uint_ge(res->nested_runs, NS_OPS / 50 / 3);
    munmap(res, sizeof *res);
}

/* NO_SYSCALLS pools (and a NO_SYSCALLS default pool): no system call. */
START_TEST(locked_down_operations)
{
    ns_ordinary = 0;
    run_locked_down("locked_down_operations");
}
END_TEST

/* Ordinary pools: only mprotect (a span or slot's first use) and mmap. */
START_TEST(ordinary_pools_map_only)
{
    ns_ordinary = 1;
    run_locked_down("ordinary_pools_map_only");
}
END_TEST

Suite *nosyscall_suite(void)
{
    Suite *s = suite_create("nosyscall");
    TCase *tc = tcase_create("seccomp");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, filter_traps);
    tcase_add_test(tc, locked_down_operations);
    tcase_add_test(tc, ordinary_pools_map_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(nosyscall_suite());
}
