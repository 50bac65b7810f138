/* SPDX-License-Identifier: MIT */
/*
 * altstack: sigsafe_altstack_install() and _uninstall().  A guarded
 * alternate signal stack of at least AT_MINSIGSTKSZ + size bytes, a
 * PROT_NONE page below it, never replacing a foreign stack, idempotent,
 * EBUSY while on it, freed at thread exit; an SA_ONSTACK handler runs on
 * it, and one that overruns it dies with SIGSEGV on the guard page.
 *
 * The sanitizers install alternate stacks of their own (use_sigaltstack);
 * the test turns that off (its ENVIRONMENT, and the default-options hooks
 * below for a direct run), because a foreign stack makes install EEXIST.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQ (64 * ST_KIB)

/* Picked up by the sanitizer runtimes at start-up; the environment
 * (ASAN_OPTIONS, TSAN_OPTIONS) still wins. */
__attribute__((used, visibility("default"))) const char *
__asan_default_options(void)
{
    return "handle_segv=0:use_sigaltstack=0";
}
__attribute__((used, visibility("default"))) const char *
__tsan_default_options(void)
{
    return "handle_segv=0:use_sigaltstack=0";
}
__attribute__((used, visibility("default"))) const char *
__ubsan_default_options(void)
{
    return "handle_segv=0:use_sigaltstack=0";
}

static size_t min_stack(void)
{
    unsigned long m = getauxval(AT_MINSIGSTKSZ);
    if (m)
        return (size_t)m;
    /* No AT_MINSIGSTKSZ (qemu-user, old kernels): the architecture's
     * minimum frame, which glibc's sysconf reports (glibc 2.34 made
     * MINSIGSTKSZ the larger, recommended, size). */
#ifdef _SC_MINSIGSTKSZ
    long s = sysconf(_SC_MINSIGSTKSZ);
    if (s > 0)
        return (size_t)s;
#endif
    return (size_t)MINSIGSTKSZ;
}

static stack_t current_altstack(void)
{
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ck_assert_int_eq(sigaltstack(NULL, &ss), 0);
    return ss;
}

/* No alternate stack at the start of a test: nothing of anyone's. */
static void assert_none(void)
{
    stack_t ss = current_altstack();
    ck_assert_msg(ss.ss_flags & SS_DISABLE,
                  "an alternate stack (%p, %zu bytes) is already installed: "
                  "run with ASAN_OPTIONS/TSAN_OPTIONS use_sigaltstack=0",
                  ss.ss_sp, ss.ss_size);
}

static void install_ok(size_t size)
{
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_install(size));
    ck_assert_msg(rc == 0, "sigsafe_altstack_install(%zu) = %d (%s)", size,
                  rc, strerror(rc));
}

/* Our stack: big enough, enabled, its ends mapped, a guard page below. */
static stack_t assert_ours(size_t req)
{
    stack_t ss = current_altstack();
    ck_assert_msg(!(ss.ss_flags & SS_DISABLE), "no alternate stack");
    ck_assert_msg(ss.ss_size >= min_stack() + req,
                  "stack of %zu bytes < AT_MINSIGSTKSZ %zu + %zu", ss.ss_size,
                  min_stack(), req);
    char *sp = ss.ss_sp;
    ck_assert(st_readable(sp));
    ck_assert(st_readable(sp + ss.ss_size - 1));
    ck_assert_msg(!st_readable(sp - 1), "no guard page below the stack");
    ck_assert_msg(!st_readable(sp - st_page_size()),
                  "the guard below the stack is less than a page");
    return ss;
}

START_TEST(install_basic)
{
    assert_none();
    install_ok(REQ);
    stack_t ss = assert_ours(REQ);
    /* The whole stack is writable. */
    memset(ss.ss_sp, 0x5A, ss.ss_size);
    /* Size 0 still gives AT_MINSIGSTKSZ (checked on a fresh install). */
    ck_assert_int_eq(sigsafe_altstack_uninstall(), 0);
    install_ok(0);
    assert_ours(0);
}
END_TEST

START_TEST(foreign_stack_kept)
{
    assert_none();
    size_t len = 2 * min_stack() + REQ;
    void *mine = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mine, MAP_FAILED);
    stack_t f = {.ss_sp = mine, .ss_size = len, .ss_flags = 0};
    ck_assert_int_eq(sigaltstack(&f, NULL), 0);
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_install(REQ));
    ck_assert_int_eq(rc, EEXIST);
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_install(16 * REQ));
    ck_assert_int_eq(rc, EEXIST);
    stack_t ss = current_altstack();
    ck_assert_ptr_eq(ss.ss_sp, mine);
    ck_assert_uint_eq(ss.ss_size, len);
    ck_assert(!(ss.ss_flags & SS_DISABLE));
    /* Uninstall removes only our own. */
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_uninstall());
    ck_assert_int_eq(rc, 0);
    ss = current_altstack();
    ck_assert_ptr_eq(ss.ss_sp, mine);
    ck_assert(!(ss.ss_flags & SS_DISABLE));
    ck_assert(st_readable(mine));

    /* Once the foreign one is gone, ours goes in. */
    stack_t off = {.ss_flags = SS_DISABLE};
    ck_assert_int_eq(sigaltstack(&off, NULL), 0);
    install_ok(REQ);
    ss = assert_ours(REQ);
    ck_assert_ptr_ne(ss.ss_sp, mine);
    munmap(mine, len);
}
END_TEST

START_TEST(install_idempotent)
{
    assert_none();
    install_ok(REQ);
    stack_t a = assert_ours(REQ);
    size_t lines = st_maps_lines();
    for (int i = 0; i < 50; i++)
        install_ok(REQ);
    install_ok(REQ / 2); /* smaller: ours is big enough */
    stack_t b = assert_ours(REQ);
    ck_assert_ptr_eq(b.ss_sp, a.ss_sp);
    ck_assert_uint_eq(b.ss_size, a.ss_size);
    ck_assert_uint_le(st_maps_lines(), lines + 2);
    /* Bigger: ours is replaced by a bigger one, the old one freed. */
    install_ok(4 * REQ);
    stack_t c = assert_ours(4 * REQ);
    ck_assert_uint_ge(c.ss_size, min_stack() + 4 * REQ);
    if (c.ss_sp != a.ss_sp)
        ck_assert_msg(!st_readable(a.ss_sp), "the old stack stays mapped");
    /* Absurd sizes are refused and change nothing. */
    int rc;
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_install(SIZE_MAX / 2));
    ck_assert_int_ne(rc, 0);
    stack_t d = current_altstack();
    ck_assert_ptr_eq(d.ss_sp, c.ss_sp);
    ck_assert_uint_eq(d.ss_size, c.ss_size);
}
END_TEST

START_TEST(uninstall_then_install)
{
    assert_none();
    int rc;
    /* Nothing installed: nothing to do. */
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_uninstall());
    ck_assert_int_eq(rc, 0);
    install_ok(REQ);
    stack_t a = assert_ours(REQ);
    ST_ASSERT_ERRNO_UNCHANGED(rc = sigsafe_altstack_uninstall());
    ck_assert_int_eq(rc, 0);
    stack_t ss = current_altstack();
    ck_assert(ss.ss_flags & SS_DISABLE);
    ck_assert_msg(!st_readable(a.ss_sp), "uninstall left the stack mapped");
    ck_assert_int_eq(sigsafe_altstack_uninstall(), 0); /* twice: no-op */
    install_ok(REQ);
    assert_ours(REQ);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(sigsafe_altstack_uninstall(), 0);
        install_ok(REQ);
    }
    assert_ours(REQ);
}
END_TEST

/* ------------------------------------------------- handlers on the stack */

static char *volatile local_addr;
static volatile int onstack_flag, uninstall_rc = -1;
static sigsafe_pool *volatile handler_pool;

static void onstack_handler(int signo)
{
    (void)signo;
    volatile char local = 1;
    local_addr = (char *)&local;
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0)
        onstack_flag = (ss.ss_flags & SS_ONSTACK) != 0;
    /* On it: uninstall must refuse. */
    uninstall_rc = sigsafe_altstack_uninstall();
    void *p = sigsafe_alloc(300);
    handler_pool = p ? sigsafe_pool_of(p) : NULL;
    if (p)
        st_fill(p, 300, 9);
    sigsafe_free(p);
}

START_TEST(handler_runs_on_it)
{
    assert_none();
    install_ok(REQ);
    stack_t ss = assert_ours(REQ);
    sigsafe_pool *pool;
    sigsafe_pool_config cfg = {.name = "alt"};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    ck_assert_int_eq(sigsafe_bind_signal(SIGUSR1, pool), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onstack_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_ONSTACK;
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0);
    raise(SIGUSR1);
    char *lo = ss.ss_sp, *hi = lo + ss.ss_size;
    ck_assert_msg(local_addr >= lo && local_addr < hi,
                  "handler local %p outside the alternate stack [%p, %p)",
                  (void *)local_addr, (void *)lo, (void *)hi);
    ck_assert_int_eq(onstack_flag, 1);
    ck_assert_int_eq(uninstall_rc, EBUSY);
    ck_assert_ptr_eq(handler_pool, pool);
    assert_ours(REQ); /* still installed after the refused uninstall */

    /* Control: without SA_ONSTACK the handler runs on the thread stack. */
    sa.sa_flags = 0;
    ck_assert_int_eq(sigsafe_sigaction(SIGUSR1, &sa, NULL), 0);
    raise(SIGUSR1);
    ck_assert(local_addr < lo || local_addr >= hi);
    ck_assert_int_eq(onstack_flag, 0);
    ck_assert_int_eq(uninstall_rc, 0); /* not on it: removed */
}
END_TEST

/* A handler that recurses past the end of the stack.  What it reached is
 * written to a shared page for the parent. */
typedef struct overrun_report {
    char *lowest;     /* lowest frame address reached */
    char *stack_lo;   /* ss_sp */
    size_t stack_size;
    int traced;
} overrun_report;

static overrun_report *report;
static volatile int depth_limit = 1 << 30; /* far past any stack */

__attribute__((noinline)) static void recurse(int depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if ((char *)frame < report->lowest)
        report->lowest = (char *)frame;
    if (depth < depth_limit)
        recurse(depth + 1);
    frame[1] = frame[0]; /* not a tail call */
}

static void overrun_handler(int signo)
{
    (void)signo;
    recurse(0);
}

START_TEST(overrun_hits_guard)
{
    assert_none();
    report = mmap(NULL, st_page_size(), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(report, MAP_FAILED);
    report->lowest = (char *)UINTPTR_MAX;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Traced if we may: the parent reads the fault address. */
        report->traced = ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0;
        if (report->traced)
            raise(SIGSTOP);
        if (sigsafe_altstack_install(REQ) != 0)
            _exit(2);
        stack_t ss;
        sigaltstack(NULL, &ss);
        report->stack_lo = ss.ss_sp;
        report->stack_size = ss.ss_size;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = overrun_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_ONSTACK;
        if (sigsafe_sigaction(SIGUSR1, &sa, NULL) != 0)
            _exit(3);
        raise(SIGUSR1);
        _exit(4); /* not reached */
    }
    int status;
    uintptr_t fault = 0;
    int got_fault = 0;
    for (;;) {
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        if (!WIFSTOPPED(status))
            break;
        int sig = WSTOPSIG(status);
        if (sig == SIGSEGV && !got_fault) {
            siginfo_t si;
            if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0) {
                fault = (uintptr_t)si.si_addr;
                got_fault = 1;
            }
        }
        ptrace(PTRACE_CONT, pid, NULL,
               (void *)(uintptr_t)(sig == SIGSTOP ? 0 : sig));
    }
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "overrun: child status %#x (exit %d, signal %d)", status,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    char *lo = report->stack_lo;
    size_t ps = st_page_size();
    ck_assert_ptr_nonnull(lo);
    /* It ran on the stack and got down to its last frames. */
    ck_assert_msg(report->lowest >= lo &&
                      report->lowest < lo + report->stack_size,
                  "deepest frame %p not on the alternate stack [%p, +%zu)",
                  (void *)report->lowest, (void *)lo, report->stack_size);
    ck_assert_msg(report->lowest < lo + 4096,
                  "died %td bytes above the end of the stack",
                  report->lowest - lo);
    if (got_fault) {
        printf("altstack: overrun faulted at %#lx, guard page [%#lx, %#lx)\n",
               (unsigned long)fault, (unsigned long)(lo - ps),
               (unsigned long)lo);
        ck_assert_msg(fault >= (uintptr_t)(lo - ps) && fault < (uintptr_t)lo,
                      "fault at %#lx, not in the guard page below %p",
                      (unsigned long)fault, (void *)lo);
    } else {
        printf("altstack: ptrace refused; fault address not checked\n");
    }
    munmap(report, st_page_size());
}
END_TEST

/* ---------------------------------------------------------- thread exit */

static void *install_and_exit(void *arg)
{
    stack_t *out = arg;
    int rc = sigsafe_altstack_install(REQ);
    if (rc == 0 && out)
        sigaltstack(NULL, out);
    return (void *)(intptr_t)rc;
}

static void run_thread(stack_t *out)
{
    pthread_t t;
    void *rc;
    ck_assert_int_eq(pthread_create(&t, NULL, install_and_exit, out), 0);
    ck_assert_int_eq(pthread_join(t, &rc), 0);
    ck_assert_msg((intptr_t)rc == 0, "install in a thread returned %d",
                  (int)(intptr_t)rc);
}

/* Mapped address space, in bytes (VmSize): leaked stacks can merge into
 * one mapping with their neighbours, so maps lines alone may not show them. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long pages = 0;
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * st_page_size();
}

START_TEST(thread_exit_frees)
{
    assert_none();
    /* Warm up: the thread stack cache and the libraries' own mappings. */
    stack_t first;
    memset(&first, 0, sizeof first);
    run_thread(&first);
    ck_assert_ptr_nonnull(first.ss_sp);
    for (int i = 0; i < 20; i++)
        run_thread(NULL);
    size_t before = st_maps_lines(), vm_before = vm_size();
    for (int i = 0; i < 1000; i++)
        run_thread(NULL);
    size_t after = st_maps_lines(), vm_after = vm_size();
    printf("altstack: /proc/self/maps lines %zu before and %zu after 1000 "
           "threads; VmSize %zu KiB before, %zu KiB after\n",
           before, after, vm_before >> 10, vm_after >> 10);
    /* Each leaked stack would add a line (unless it merged with a
     * neighbour) and more than REQ bytes: 64 MiB in all.  The sanitizers'
     * per-thread bookkeeping takes a few MiB. */
    ck_assert_msg(after < before + 50,
                  "maps grew from %zu to %zu lines over 1000 threads",
                  before, after);
    if (st_under_emulator()) {
        /* qemu-user's own per-thread state grows VmSize by about 280 KiB
         * per thread, with or without sigsafe. */
        printf("thread_exit_frees: VmSize check skipped under qemu-user: "
               "it counts the emulator's own memory\n");
        return;
    }
    ck_assert_msg(vm_after < vm_before + 1000 * REQ / 2,
                  "mapped memory grew by %zu KiB over 1000 threads",
                  (vm_after - vm_before) >> 10);
    /* The main thread has none of them. */
    assert_none();
}
END_TEST

Suite *altstack_suite(void)
{
    Suite *s = suite_create("altstack");
    TCase *tc = tcase_create("altstack");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, install_basic);
    tcase_add_test(tc, foreign_stack_kept);
    tcase_add_test(tc, install_idempotent);
    tcase_add_test(tc, uninstall_then_install);
    tcase_add_test(tc, handler_runs_on_it);
    tcase_add_test(tc, overrun_hits_guard);
    tcase_add_test(tc, thread_exit_frees);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(altstack_suite());
}
