/* SPDX-License-Identifier: MIT */
/* Consumer test: built with the flags of `pkg-config sigsafe`. */
#include <sigsafe.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    sigsafe_stats st;

    if (sigsafe_init(NULL) != 0)
        return 1;
    char *p = sigsafe_calloc(10, 10);
    if (p == NULL || p[99] != 0)
        return 2;
    memset(p, 'x', 100);
    p = sigsafe_realloc(p, 1000);
    if (p == NULL || p[99] != 'x')
        return 3;
    sigsafe_free(p);
    if (sigsafe_pool_stats(sigsafe_default_pool(), &st) != 0 ||
        st.allocs < 1 || st.frees < 1 || st.bytes_in_use != 0)
        return 4;
    printf("sigsafe (pkg-config): ok\n");
    return 0;
}
