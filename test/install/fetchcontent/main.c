/* SPDX-License-Identifier: MIT */
/* Consumer test: sigsafe pulled in with FetchContent. */
#include <sigsafe.h>
#include <stdio.h>

int main(void)
{
    sigsafe_stats before, after;

    if (sigsafe_pool_stats(sigsafe_current_pool(), &before) != 0)
        return 1;
    void *p = sigsafe_alloc(1000);
    if (p == NULL || sigsafe_pool_of(p) != sigsafe_default_pool())
        return 2;
    sigsafe_free(p);
    if (sigsafe_pool_stats(sigsafe_default_pool(), &after) != 0 ||
        after.allocs != before.allocs + 1 ||
        after.frees != before.frees + 1 || after.bytes_in_use != 0)
        return 3;
    printf("sigsafe (FetchContent): ok\n");
    return 0;
}
