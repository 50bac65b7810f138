/* SPDX-License-Identifier: MIT */
/*
 * sigsafe_guard: name the block behind a guard-page fault.
 *
 * An optional component (libsigsafe_guard.a, CMake target sigsafe::guard)
 * built on GNU libsigsegv.  Once sigsafe_guard_watch() is called, a fault on
 * a sigsafe guard page or on a freed (quarantined) block of a
 * SIGSAFE_POOL_GUARD_EACH pool writes one line on the report fd, then the
 * crash goes on exactly as it would have: the previously installed SIGSEGV
 * or SIGBUS handler runs, or the default action.  Faults anywhere else pass
 * through untouched.  The line (see docs/errors.md):
 *
 *   sigsafe: guard: pool="crash" kind=overflow fault=0x... block=0x... size=48 offset=48
 *
 * kind is one of overflow, underflow, use-after-free, span-end.
 */
#ifndef SIGSAFE_GUARD_H
#define SIGSAFE_GUARD_H

#ifdef __cplusplus
extern "C" {
#endif

/* Set-up (not AS-safe).  0, or a positive errno value (ENOTSUP where
 * libsigsegv cannot catch faults). */
int sigsafe_guard_watch(void);   /* install; a second call is a no-op */
int sigsafe_guard_unwatch(void); /* restore the handlers found at watch */

#ifdef __cplusplus
}
#endif

#endif /* SIGSAFE_GUARD_H */
