/* SPDX-License-Identifier: MIT */
/*
 * Shared (AS-safe): raw Linux system calls for x86-64 and aarch64.  Nothing
 * here touches errno: results come back as negative errno values.
 */
#include <sys/mman.h>
#include <sys/syscall.h>

#include "sys.h"

long sigsafe__sys_call6(long nr, long a, long b, long c, long d, long e,
                        long f)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                       "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
#error "sigsafe supports Linux on x86-64 and aarch64"
#endif
}

void *sigsafe__sys_mmap(void *addr, size_t len, int prot, int flags, long *err)
{
    long r = sigsafe__sys_call6(SYS_mmap, (long)addr, (long)len, prot, flags,
                                -1, 0);
    if (r < 0 && r > -4096) {
        *err = -r;
        return NULL;
    }
    *err = 0;
    return (void *)r;
}

long sigsafe__sys_munmap(void *addr, size_t len)
{
    return sigsafe__sys_call6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
}

long sigsafe__sys_mprotect(void *addr, size_t len, int prot)
{
    return sigsafe__sys_call6(SYS_mprotect, (long)addr, (long)len, prot, 0, 0,
                              0);
}

long sigsafe__sys_madvise(void *addr, size_t len, int advice)
{
    return sigsafe__sys_call6(SYS_madvise, (long)addr, (long)len, advice, 0, 0,
                              0);
}

long sigsafe__sys_prctl(long op, long a, long b, long c, long d)
{
    return sigsafe__sys_call6(SYS_prctl, op, a, b, c, d, 0);
}

long sigsafe__sys_write(int fd, const void *buf, size_t len)
{
    return sigsafe__sys_call6(SYS_write, fd, (long)buf, (long)len, 0, 0, 0);
}

long sigsafe__sys_getrandom(void *buf, size_t len, unsigned flags)
{
    return sigsafe__sys_call6(SYS_getrandom, (long)buf, (long)len, flags, 0, 0,
                              0);
}

long sigsafe__sys_gettid(void)
{
    return sigsafe__sys_call6(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

long sigsafe__sys_getpid(void)
{
    return sigsafe__sys_call6(SYS_getpid, 0, 0, 0, 0, 0, 0);
}

long sigsafe__sys_tgkill(long pid, long tid, int sig)
{
    return sigsafe__sys_call6(SYS_tgkill, pid, tid, sig, 0, 0, 0);
}

long sigsafe__sys_sched_yield(void)
{
    return sigsafe__sys_call6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
}
