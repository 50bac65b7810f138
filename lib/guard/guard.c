/* SPDX-License-Identifier: MIT */
/*
 * The guard component: a libsigsegv handler that names the sigsafe block
 * behind a guard-page fault.  sigsafe_guard_watch/unwatch are set-up code;
 * on_fault() runs inside the SIGSEGV/SIGBUS handler and is AS-safe (it
 * reads pool metadata, formats on the stack, makes one write and, to let
 * the crash go on, one or two sigaction calls).
 *
 * Letting the crash go on: libsigsegv resets a declined fault to SIG_DFL.
 * To give the handler that was installed before the watch its turn, we put
 * it back and return "handled": the faulting instruction runs again and
 * faults into that handler, exactly as if the watch had never been there.
 */
#include <errno.h>
#include <signal.h>
#include <sigsegv.h>
#include <stdint.h>

#include "../internal.h"
#include "../sys.h"
#include "sigsafe_guard.h"

static struct sigaction prev_segv, prev_bus; /* found at watch */
static struct sigaction ours;                /* libsigsegv's, after watch */
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

typedef struct line {
    char buf[256];
    size_t n;
} line;

static void put(line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = *s++;
}

static void put_num(line *l, uint64_t v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = tmp[--n];
}

static void report(uintptr_t addr, const ss_fault *f)
{
    line l = {.n = 0};
    put(&l, "sigsafe: guard: pool=\"");
    put(&l, f->pool->name[0] ? f->pool->name : "(unnamed)");
    put(&l, "\" kind=");
    put(&l, kind_name(f->kind));
    put(&l, " fault=0x");
    put_num(&l, addr, 16);
    put(&l, " block=0x");
    put_num(&l, f->block, 16);
    put(&l, " size=");
    put_num(&l, f->size, 10);
    put(&l, " offset=");
    if (f->offset < 0)
        put(&l, "-");
    put_num(&l, f->offset < 0 ? (uint64_t)-f->offset : (uint64_t)f->offset,
            10);
    l.buf[l.n++] = '\n';
    /* relaxed: the fd is a setting; any recent value will do. */
    int fd = ss_load_relaxed(&sigsafe__report_fd);
    if (fd >= 0)
        (void)sigsafe__sys_write(fd, l.buf, l.n);
}

static int same_handler(const struct sigaction *a, const struct sigaction *b)
{
    return a->sa_sigaction == b->sa_sigaction;
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
    /* Let the crash go on as it would have without the watch. */
    if (same_handler(&prev_segv, &ours))
        return 0; /* libsigsegv was there before us: its default */
    sigaction(SIGSEGV, &prev_segv, NULL);
    sigaction(SIGBUS, &prev_bus, NULL);
    watching = 0;
    return 1; /* re-execute: the restored handler gets the fault */
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
    sigaction(SIGSEGV, NULL, &ours);
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
    sigsegv_deinstall_handler();
    /* Put back what we found, unless someone replaced libsigsegv since. */
    if (same_handler(&now, &ours) && !same_handler(&prev_segv, &ours)) {
        sigaction(SIGSEGV, &prev_segv, NULL);
        sigaction(SIGBUS, &prev_bus, NULL);
    }
    watching = 0;
    errno = saved;
    return 0;
}
