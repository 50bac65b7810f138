/* SPDX-License-Identifier: MIT */
/* Consumer test: the guard component of an installed sigsafe. */
#include <sigsafe.h>
#include <sigsafe_guard.h>
#include <stdio.h>

int main(void)
{
    sigsafe_stats before, after;

    if (sigsafe_guard_watch() != 0)
        return 1;
    if (sigsafe_pool_stats(sigsafe_default_pool(), &before) != 0)
        return 2;
    void *p = sigsafe_alloc(64);
    if (p == NULL)
        return 3;
    sigsafe_free(p);
    if (sigsafe_pool_stats(sigsafe_default_pool(), &after) != 0 ||
        after.allocs != before.allocs + 1 ||
        after.frees != before.frees + 1 ||
        after.bytes_in_use != before.bytes_in_use)
        return 4;
    if (sigsafe_guard_unwatch() != 0)
        return 5;
    printf("sigsafe guard: ok\n");
    return 0;
}
