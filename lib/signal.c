/* SPDX-License-Identifier: MIT */
/*
 * Set-up (not AS-safe): binding pools to signals, sigsafe_sigaction(), and
 * guarded alternate signal stacks.  Never called from a handler; each
 * function keeps errno as it found it and returns 0 or a positive errno.
 */
#include <errno.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "internal.h"
#include "sys.h"

#define RESERVE_CAPACITY ((size_t)256 << 10)
/* Floor where AT_MINSIGSTKSZ is missing (qemu-user, old kernels): the
 * architecture's minimum signal frame; aarch64's MINSIGSTKSZ is 5120. */
#if defined(__aarch64__)
#define SS_MIN_ALTSTACK 5120ul
#else
#define SS_MIN_ALTSTACK 4096ul
#endif

/* Remembered for sigsafe_sigaction()'s `old`: the user's own flags. */
static ss_aint user_flags[SS_NSIG];

static int signo_ok(int signo)
{
    return signo > 0 && signo < (int)SS_NSIG;
}

/* Pools a handler may need exist before any handler can run. */
static int pools_ready(void)
{
    if (!sigsafe__default_pool())
        return ENOMEM;
    /* acquire: pairs with the release CAS below in another thread. */
    if (ss_load_acquire(&sigsafe__reserve_pool))
        return 0;
    sigsafe_pool_config cfg = {"reserve", RESERVE_CAPACITY, 0};
    sigsafe_pool *pool;
    int err = sigsafe__pool_build(&cfg, &pool);
    if (err)
        return err;
    void *expect = NULL;
    /* acq_rel: release publishes the built pool to the alloc paths (their
     * acquire in sigsafe__reserve_for()). */
    if (!ss_cas_strong_acq_rel(&sigsafe__reserve_pool, &expect, (void *)pool))
        sigsafe__pool_unmap(pool);
    return 0;
}

int sigsafe_bind_signal(int signo, sigsafe_pool *pool)
{
    sigsafe__watch_thread();
    if (!signo_ok(signo) || (pool && !sigsafe__pool_valid(pool)))
        return EINVAL;
    int saved = errno, err = pools_ready();
    errno = saved;
    if (err)
        return err;
    /* release: the pool is built before a handler can see it; pairs with
     * the acquire load in sigsafe__trampoline(). */
    ss_store_release(&sigsafe__bound[signo], (void *)pool);
    return 0;
}

static void *handler_of(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) ? (void *)sa->sa_sigaction
                                       : (void *)sa->sa_handler;
}

int sigsafe_sigaction(int signo, const struct sigaction *act,
                      struct sigaction *old)
{
    if (!signo_ok(signo) ||
        (act && (signo == SIGKILL || signo == SIGSTOP)))
        return EINVAL;
    sigsafe__watch_thread();
    int saved = errno, err = 0;
    struct sigaction cur;
    if (sigaction(signo, NULL, &cur) != 0) {
        err = errno;
        goto out;
    }
    if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
        err = pools_ready();
        if (err)
            goto out;
    }
    if (old) {
        *old = cur;
        if (cur.sa_sigaction == sigsafe__trampoline) {
            int fl = ss_load_relaxed(&user_flags[signo]); /* relaxed: set-up */
            void *h = ss_load_relaxed(&sigsafe__user_handler[signo]);
            old->sa_flags = fl;
            if (fl & SA_SIGINFO)
                old->sa_sigaction = (void (*)(int, siginfo_t *, void *))h;
            else
                old->sa_handler = (void (*)(int))h;
        }
    }
    if (!act)
        goto out;
    if (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN) {
        if (sigaction(signo, act, NULL) != 0)
            err = errno;
        goto out; /* the stale user handler is never called again */
    }
    /* relaxed: read back only by set-up code (for `old`). */
    int prev_flags = ss_load_relaxed(&user_flags[signo]);
    void *prev = ss_load_relaxed(&sigsafe__user_handler[signo]);
    ss_store_relaxed(&user_flags[signo], act->sa_flags);
    /* release: pairs with the acquire load in sigsafe__trampoline(); a
     * signal arriving before the sigaction below runs the old disposition,
     * one arriving after sees this handler. */
    ss_store_release(&sigsafe__user_handler[signo], handler_of(act));
    struct sigaction k = *act;
    k.sa_sigaction = sigsafe__trampoline;
    k.sa_flags |= SA_SIGINFO;
    if (sigaction(signo, &k, NULL) != 0) {
        err = errno;
        /* Change nothing: the trampoline, if installed, keeps the old
         * handler (release: as above). */
        ss_store_relaxed(&user_flags[signo], prev_flags);
        ss_store_release(&sigsafe__user_handler[signo], prev);
    }
out:
    errno = saved;
    return err;
}

/* ---------------------------------------------------- alternate stacks */

typedef struct ss_alt {
    char *map;  /* guard page, then the stack */
    size_t len; /* whole mapping */
} ss_alt;

static _Thread_local ss_alt alt __attribute__((tls_model("initial-exec")));
static _Thread_local int alt_dtor_armed
    __attribute__((tls_model("initial-exec")));

/* glibc runs these at thread exit (and at exit() for the main thread). */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
                                    void *dso) __attribute__((weak));
extern void *__dso_handle __attribute__((weak));

static int alt_release(void)
{
    if (!alt.map)
        return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0) {
        if (cur.ss_flags & SS_ONSTACK)
            return EBUSY;
        if (!(cur.ss_flags & SS_DISABLE) && cur.ss_sp == alt.map + SS_PAGE) {
            stack_t off = {.ss_flags = SS_DISABLE};
            (void)sigaltstack(&off, NULL);
        }
    }
    sigsafe__sys_munmap(alt.map, alt.len);
    alt.map = NULL;
    alt.len = 0;
    return 0;
}

static void alt_at_thread_exit(void *unused)
{
    (void)unused;
    int saved = errno;
    (void)alt_release();
    errno = saved;
}

int sigsafe_altstack_uninstall(void)
{
    int saved = errno, err = alt_release();
    errno = saved;
    return err;
}

int sigsafe_altstack_install(size_t size)
{
    sigsafe__watch_thread();
    if (size > ((size_t)1 << 30))
        return EINVAL;
    int saved = errno, err = 0;
    /* SIGSTKSZ is no longer a constant: ask the kernel (Linux 4.18+). */
    unsigned long min = getauxval(AT_MINSIGSTKSZ);
    if (min < SS_MIN_ALTSTACK)
        min = SS_MIN_ALTSTACK;
    size_t need = (min + size + SS_PAGE - 1) & ~(size_t)(SS_PAGE - 1);
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0) {
        err = errno;
        goto out;
    }
    int ours = alt.map && cur.ss_sp == alt.map + SS_PAGE;
    if (!(cur.ss_flags & SS_DISABLE) && !ours) {
        err = EEXIST; /* someone else's stack: never replaced */
        goto out;
    }
    if (alt.map && !ours) {
        /* Ours was switched off behind our back: nothing uses it now. */
        sigsafe__sys_munmap(alt.map, alt.len);
        alt.map = NULL;
        alt.len = 0;
    }
    if (ours && cur.ss_size >= need)
        goto out; /* already big enough */
    if (ours && (cur.ss_flags & SS_ONSTACK)) {
        err = EBUSY;
        goto out;
    }
    long merr;
    char *map = sigsafe__sys_mmap(NULL, need + SS_PAGE, PROT_NONE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                                      MAP_STACK,
                                  &merr);
    if (!map) {
        err = (int)merr;
        goto out;
    }
    /* The guard page sits below the stack (stacks grow down): a PROT_NONE
     * page, as the pools' guards are; the stack above it is made
     * accessible. */
    if (sigsafe__sys_mprotect(map + SS_PAGE, need, PROT_READ | PROT_WRITE) !=
        0) {
        err = ENOMEM;
        goto unmap;
    }
    stack_t ss = {.ss_sp = map + SS_PAGE, .ss_flags = 0, .ss_size = need};
    if (sigaltstack(&ss, NULL) != 0) {
        err = errno;
        goto unmap;
    }
    if (ours)
        sigsafe__sys_munmap(alt.map, alt.len);
    alt.map = map;
    alt.len = need + SS_PAGE;
    if (!alt_dtor_armed && __cxa_thread_atexit_impl && &__dso_handle) {
        if (__cxa_thread_atexit_impl(alt_at_thread_exit, NULL,
                                     &__dso_handle) == 0)
            alt_dtor_armed = 1;
    }
    goto out;
unmap:
    sigsafe__sys_munmap(map, need + SS_PAGE);
out:
    errno = saved;
    return err;
}
