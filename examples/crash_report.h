/* SPDX-License-Identifier: MIT */
/*
 * crash_report: a crash reporter built on sigsafe, small enough to copy.
 *
 * crash_report_install() catches SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT
 * and SIGTRAP (and, through GNU libsigsegv, a stack overflow of the thread
 * that installs it).  On a crash the handler builds a report in memory from
 * a sigsafe pool of its own -- signal, code, fault address, registers, a
 * backtrace, the pool's statistics and the lines of /proc/self/maps around
 * the fault -- writes it to stderr and to a file (a temporary name, then
 * rename(2)), and lets the process die of the original signal, so that the
 * exit status and any core dump are the true ones.
 *
 * The handler never calls malloc, stdio or any lock: it works when the
 * crash happened inside malloc, or after the heap was corrupted.
 */
#ifndef CRASH_REPORT_H
#define CRASH_REPORT_H

#include <stddef.h>

#include <sigsafe.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crash_report_config {
    const char *path;     /* report file; NULL = stderr only */
    size_t capacity;      /* the report pool's capacity; 0 = 1 MiB */
    size_t altstack_size; /* alternate stack beyond the minimum; 0 = 64 KiB */
} crash_report_config;

/* Set-up (not AS-safe): 0 or a positive errno value.  Call once, early,
 * from the main thread, before other threads start. */
int crash_report_install(const crash_report_config *cfg);

/* Set-up: give the calling thread a guarded alternate stack, so that a crash
 * on a stack that is full still gets a report.  0 or a positive errno. */
int crash_report_thread_init(void);

/* The pool that reports are built in (NULL before install). */
sigsafe_pool *crash_report_pool(void);

#ifdef __cplusplus
}
#endif

#endif /* CRASH_REPORT_H */
