# SPDX-License-Identifier: MIT
# Configure-time checks: every atomic sigsafe uses must be lock-free, and no
# atomic may turn into a libatomic call.
include(CheckCSourceCompiles)
include(CheckCSourceRuns)

set(CMAKE_REQUIRED_FLAGS "-std=c11")
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
