/* SPDX-License-Identifier: MIT */
/* Consumer test: sigsafe built in-tree with add_subdirectory. */
#include <sigsafe.h>
#include <sigsafe_guard.h>
#include <stdio.h>

int main(void)
{
    sigsafe_pool *pool;
    sigsafe_stats st;
    sigsafe_pool_config cfg = {.name = "subdir"};

    if (sigsafe_guard_watch() != 0)
        return 1;
    if (sigsafe_pool_create(&cfg, &pool) != 0)
        return 2;
    void *p = sigsafe_pool_aligned_alloc(pool, 256, 200);
    if (p == NULL || (uintptr_t)p % 256 != 0)
        return 3;
    sigsafe_free(p);
    if (sigsafe_pool_stats(pool, &st) != 0 || st.allocs != 1 ||
        st.frees != 1 || st.bytes_in_use != 0)
        return 4;
    sigsafe_pool_destroy(pool);
    sigsafe_guard_unwatch();
    printf("sigsafe (add_subdirectory): ok\n");
    return 0;
}
