// SPDX-License-Identifier: MIT
//
// sigsafe-bench: C entry points for Abseil's LowLevelAlloc on an arena made
// with kAsyncSignalSafe (every call masks all signals around a spinlock).
// LowLevelAlloc is an internal Abseil API; Debian's libabsl-dev ships it as
// absl_malloc_internal.
#include <cstddef>
#include <cstdio>

#include "absl/base/config.h"
#include "absl/base/internal/low_level_alloc.h"

#if defined(ABSL_LOW_LEVEL_ALLOC_MISSING) || \
    defined(ABSL_LOW_LEVEL_ALLOC_ASYNC_SIGNAL_SAFE_MISSING)
#error "this Abseil has no async-signal-safe LowLevelAlloc"
#endif

using absl::base_internal::LowLevelAlloc;

static LowLevelAlloc::Arena *arena;

extern "C" int sigsafe_bench_absl_init(char *version, size_t n)
{
    if (!arena)
        arena = LowLevelAlloc::NewArena(LowLevelAlloc::kAsyncSignalSafe);
#ifdef ABSL_LTS_RELEASE_VERSION
    std::snprintf(version, n, "%d", ABSL_LTS_RELEASE_VERSION);
#else
    std::snprintf(version, n, "unknown");
#endif
    return arena ? 0 : -1;
}

extern "C" void *sigsafe_bench_absl_alloc(size_t size)
{
    return LowLevelAlloc::AllocWithArena(size, arena);
}

extern "C" void sigsafe_bench_absl_free(void *ptr)
{
    LowLevelAlloc::Free(ptr);
}
