/* SPDX-License-Identifier: MIT */
/*
 * Shared: raw system calls.  Each returns the kernel's result, a negative
 * errno value on failure, and never reads or writes errno (like musl's
 * __syscall), so every caller on an AS-safe path keeps errno untouched.
 */
#ifndef SS_SYS_H
#define SS_SYS_H

#include <stddef.h>
#include <stdint.h>

#include "internal_attrs.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

SS_HIDDEN long sigsafe__sys_call6(long nr, long a, long b, long c, long d,
                                  long e, long f);

SS_HIDDEN void *sigsafe__sys_mmap(void *addr, size_t len, int prot, int flags,
                                  long *err);
SS_HIDDEN long sigsafe__sys_munmap(void *addr, size_t len);
SS_HIDDEN long sigsafe__sys_mprotect(void *addr, size_t len, int prot);
SS_HIDDEN long sigsafe__sys_madvise(void *addr, size_t len, int advice);
SS_HIDDEN long sigsafe__sys_prctl(long op, long a, long b, long c, long d);
SS_HIDDEN long sigsafe__sys_write(int fd, const void *buf, size_t len);
SS_HIDDEN long sigsafe__sys_getrandom(void *buf, size_t len, unsigned flags);
SS_HIDDEN long sigsafe__sys_gettid(void);
SS_HIDDEN long sigsafe__sys_getpid(void);
/* sig 0: only asks whether thread tid of process pid exists (-ESRCH if not). */
SS_HIDDEN long sigsafe__sys_tgkill(long pid, long tid, int sig);
SS_HIDDEN long sigsafe__sys_sched_yield(void);

#endif /* SS_SYS_H */
