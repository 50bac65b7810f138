/* SPDX-License-Identifier: MIT */
/* Consumer test: allocate and free from a pool of an installed sigsafe. */
#include <sigsafe.h>
#include <stdio.h>

int main(void)
{
    sigsafe_pool *pool;
    sigsafe_stats st;
    sigsafe_pool_config cfg = {.name = "consumer", .capacity = 1 << 20};

    if (sigsafe_pool_create(&cfg, &pool) != 0)
        return 1;
    char *p = sigsafe_pool_alloc(pool, 100);
    if (p == NULL || sigsafe_pool_of(p) != pool ||
        sigsafe_usable_size(p) < 100)
        return 2;
    sigsafe_free(p);
    if (sigsafe_pool_stats(pool, &st) != 0 || st.allocs != 1 ||
        st.frees != 1 || st.bytes_in_use != 0 || st.capacity != 1 << 20)
        return 3;
    sigsafe_pool_destroy(pool);
    printf("sigsafe %d.%d.%d: ok\n", SIGSAFE_VERSION_MAJOR,
           SIGSAFE_VERSION_MINOR, SIGSAFE_VERSION_PATCH);
    return 0;
}
