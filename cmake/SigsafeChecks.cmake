# SPDX-License-Identifier: MIT
# Configure-time checks: every atomic sigsafe uses must be lock-free, and no
# atomic may turn into a libatomic call.
include(CheckCSourceCompiles)
include(CheckCSourceRuns)
include(CheckCCompilerFlag)

# aarch64: GCC (10 and later) and clang default to -moutline-atomics, which
# turns every atomic into a call to a libgcc helper (__aarch64_cas8_acq and
# friends) that picks LSE or LL/SC at run time.  sigsafe compiles its
# atomics inline instead (docs/design.md, "Platforms"): LL/SC loops for
# the armv8.0 baseline, LSE instructions where -march allows them.  The
# symbol audit (sigsafe.symbols) then forbids __aarch64_ references.
set(SIGSAFE_ARCH_FLAGS)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    check_c_compiler_flag(-mno-outline-atomics SIGSAFE_HAVE_NO_OUTLINE_ATOMICS)
    # A compiler without the option has no outline atomics either.
    if(SIGSAFE_HAVE_NO_OUTLINE_ATOMICS)
        list(APPEND SIGSAFE_ARCH_FLAGS -mno-outline-atomics)
    endif()
endif()

list(JOIN SIGSAFE_ARCH_FLAGS " " arch_flags)
set(CMAKE_REQUIRED_FLAGS "-std=c11 ${arch_flags}")
check_c_source_compiles("
#include <stdatomic.h>
#include <stdint.h>
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, \"64-bit atomics must be lock-free\");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, \"pointer atomics must be lock-free\");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, \"int atomics must be lock-free\");
_Static_assert(ATOMIC_CHAR_LOCK_FREE == 2, \"char atomics must be lock-free\");
_Atomic uint64_t w;
int main(void)
{
    uint64_t e = 0;
    atomic_compare_exchange_weak_explicit(&w, &e, 1, memory_order_acq_rel,
                                          memory_order_acquire);
    return (int)atomic_fetch_add_explicit(&w, 1, memory_order_relaxed);
}" SIGSAFE_ATOMICS_LOCK_FREE)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT SIGSAFE_ATOMICS_LOCK_FREE)
    message(FATAL_ERROR "sigsafe needs lock-free 8-byte atomics "
        "(ATOMIC_LLONG_LOCK_FREE == 2) without libatomic")
endif()
