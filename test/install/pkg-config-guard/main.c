/* SPDX-License-Identifier: MIT */
/* Consumer test: built with the flags of `pkg-config sigsafe-guard`. */
#include <sigsafe.h>
#include <sigsafe_guard.h>
#include <stdio.h>

int main(void)
{
    sigsafe_pool *pool;
    sigsafe_stats st;
    sigsafe_pool_config cfg = {.name = "guarded",
                               .flags = SIGSAFE_POOL_GUARD_EACH};

    if (sigsafe_guard_watch() != 0)
        return 1;
    if (sigsafe_pool_create(&cfg, &pool) != 0)
        return 2;
    void *p = sigsafe_pool_alloc(pool, 48);
    if (p == NULL)
        return 3;
    sigsafe_free(p);
    if (sigsafe_pool_stats(pool, &st) != 0 || st.allocs != 1 ||
        st.frees != 1 || st.bytes_in_use != 0)
        return 4;
    sigsafe_pool_destroy(pool);
    printf("sigsafe guard (pkg-config): ok\n");
    return 0;
}
