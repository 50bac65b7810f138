/* SPDX-License-Identifier: MIT */
/*
 * The guard component: a libsigsegv handler that names the sigsafe block
 * behind a guard-page fault.  sigsafe_guard_watch/unwatch are set-up code;
 * on_fault() runs inside the SIGSEGV/SIGBUS handler and is AS-safe (it
 * reads pool metadata, formats on the stack, makes one write and, to let
 * the crash go on, one or two sigaction calls).
 *
 * Letting the crash go on: see hand_on() below.
 */
#include <errno.h>
#include <signal.h>
#include <sigsegv.h>
#include <stdint.h>

#include "../internal.h"
#include "../sys.h"
#include "sigsafe_guard.h"

static struct sigaction prev_segv, prev_bus; /* found at watch */
static struct sigaction lib_segv, lib_bus;   /* libsigsegv's, wrapped */
static volatile sig_atomic_t watching;
static volatile uintptr_t reported;          /* one line per fault */

static const char *kind_name(ss_fault_kind k)
{
    switch (k) {
    case SS_FAULT_OVERFLOW: return "overflow";
    case SS_FAULT_UNDERFLOW: return "underflow";
    case SS_FAULT_USE_AFTER_FREE: return "use-after-free";
    case SS_FAULT_SPAN_END: return "span-end";
    default: return "unknown";
    }
}

static void report(uintptr_t addr, const ss_fault *f)
{
    ss_line l = {.n = 0};
    sigsafe__line_put(&l, "sigsafe: guard: pool=\"");
    sigsafe__line_put(&l, f->pool->name[0] ? f->pool->name : "(unnamed)");
    sigsafe__line_put(&l, "\" kind=");
    sigsafe__line_put(&l, kind_name(f->kind));
    sigsafe__line_put(&l, " fault=");
    sigsafe__line_num(&l, addr, 16);
    sigsafe__line_put(&l, " block=");
    sigsafe__line_num(&l, f->block, 16);
    sigsafe__line_put(&l, " size=");
    sigsafe__line_num(&l, f->size, 10);
    sigsafe__line_put(&l, " offset=");
    if (f->offset < 0)
        sigsafe__line_put(&l, "-");
    sigsafe__line_num(&l, f->offset < 0 ? (uint64_t) - f->offset
                                        : (uint64_t)f->offset,
                      10);
    sigsafe__line_emit(&l);
}

/*
 * The chain.  libsigsegv's handler, once installed, is wrapped by front():
 * a signal that was sent (kill, raise: si_code <= 0) is no fault and goes
 * straight to the handler found at watch; a fault goes through libsigsegv,
 * whose call of on_fault() names the block and then hands the fault on.
 * Handing on calls the previous handler directly, so a handler that
 * recovers (a GC's, a JIT's) returns here and the watch stays; a previous
 * default (or ignore) action is put back and the faulting instruction runs
 * again, so the process dies of the fault as it would have.
 */
typedef struct ss_frame {
    int sig;
    siginfo_t *info;
    void *ctx;
} ss_frame;

static _Thread_local ss_frame frame __attribute__((tls_model("initial-exec")));

static const struct sigaction *prev_of(int sig)
{
    return sig == SIGBUS ? &prev_bus : &prev_segv;
}

/* Hand a fault or a sent signal to the handler found at watch.  Returns 1
 * if that handler ran, 0 if its default (or ignore) action was put back. */
static int hand_on(int sig, siginfo_t *info, void *ctx)
{
    const struct sigaction *prev = prev_of(sig);
    if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        sigaction(sig, prev, NULL);
        watching = 0;
        return 0;
    }
    if (prev->sa_flags & SA_SIGINFO)
        prev->sa_sigaction(sig, info, ctx);
    else
        prev->sa_handler(sig);
    return 1;
}

static int on_fault(void *fault, int serious)
{
    uintptr_t addr = (uintptr_t)fault;
    if (!serious) {
        /* First look: only our own faults; others may be a stack overflow
         * that libsigsegv's stack-overflow handler should see. */
        ss_fault f;
        if (!sigsafe__classify_fault(addr, &f))
            return 0;
        if (reported != addr) {
            reported = addr;
            report(addr, &f);
        }
    }
    (void)hand_on(frame.sig, frame.info, frame.ctx);
    return 1; /* handled: return, and re-run the instruction if it faults */
}

static void front(int sig, siginfo_t *info, void *ctx)
{
    if (info && info->si_code <= 0) {
        /* Sent, not a fault: nothing to name, and nothing to re-run. */
        if (!hand_on(sig, info, ctx) && prev_of(sig)->sa_handler == SIG_DFL)
            raise(sig); /* blocked here: delivered, by default, on return */
        return;
    }
    ss_frame saved = frame; /* a fault inside a handler nests */
    frame = (ss_frame){sig, info, ctx};
    const struct sigaction *lib = sig == SIGBUS ? &lib_bus : &lib_segv;
    if (lib->sa_flags & SA_SIGINFO)
        lib->sa_sigaction(sig, info, ctx);
    else
        lib->sa_handler(sig);
    frame = saved;
}

int sigsafe_guard_watch(void)
{
    if (watching)
        return 0;
    int saved = errno, err = 0;
    sigaction(SIGSEGV, NULL, &prev_segv);
    sigaction(SIGBUS, NULL, &prev_bus);
    if (sigsegv_install_handler(on_fault) != 0) {
        err = ENOTSUP;
        goto out;
    }
    sigaction(SIGSEGV, NULL, &lib_segv);
    sigaction(SIGBUS, NULL, &lib_bus);
    struct sigaction f = lib_segv;
    f.sa_sigaction = front;
    f.sa_flags |= SA_SIGINFO;
    sigaction(SIGSEGV, &f, NULL);
    f = lib_bus;
    f.sa_sigaction = front;
    f.sa_flags |= SA_SIGINFO;
    sigaction(SIGBUS, &f, NULL);
    reported = 0;
    watching = 1;
out:
    errno = saved;
    return err;
}

int sigsafe_guard_unwatch(void)
{
    if (!watching)
        return 0;
    int saved = errno;
    struct sigaction now;
    sigaction(SIGSEGV, NULL, &now);
    int ours = now.sa_sigaction == front;
    sigsegv_deinstall_handler();
    /* Put back what we found, unless someone replaced us since. */
    if (ours) {
        sigaction(SIGSEGV, &prev_segv, NULL);
        sigaction(SIGBUS, &prev_bus, NULL);
    }
    watching = 0;
    errno = saved;
    return 0;
}
