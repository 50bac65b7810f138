/* SPDX-License-Identifier: MIT */
/*
 * Set-up (not AS-safe): sigsafe_init, pool create/destroy, the report fd.
 */
#include <pthread.h>

#include "internal.h"
#include "tcache.h"

/*
 * In a fork child, the other threads' cache records are salvaged at once
 * (sigsafe__tc_after_fork()).  Registered by the first set-up call: a
 * program that never makes one still gets those records back lazily (see
 * tcache.h).
 */
static void watch_forks(void)
{
#if SS_TC_ENABLED
    static ss_aint registered;
    int expect = 0;
    /* relaxed: only decides who registers; pthread_atfork orders itself. */
    if (ss_cas_strong_relaxed(&registered, &expect, 1))
        (void)pthread_atfork(NULL, NULL, sigsafe__tc_after_fork);
#endif
}

int sigsafe_init(const sigsafe_pool_config *default_pool)
{
    int err = sigsafe__config_check(default_pool);
    if (err)
        return err;
    watch_forks();
    if (sigsafe__default_peek())
        return 0; /* created earlier: kept */
    sigsafe_pool *pool;
    err = sigsafe__pool_build(default_pool, &pool);
    if (err)
        return err;
    (void)sigsafe__default_offer(pool); /* a racing first use may win */
    return 0;
}

int sigsafe_pool_create(const sigsafe_pool_config *cfg, sigsafe_pool **out)
{
    if (!out)
        return 22; /* EINVAL */
    sigsafe_pool *pool;
    int err = sigsafe__pool_build(cfg, &pool);
    if (err)
        return err;
    watch_forks();
    *out = pool;
    return 0;
}

void sigsafe_pool_destroy(sigsafe_pool *pool)
{
    /* acquire: pairs with the release CAS that published the reserve. */
    if (!sigsafe__pool_valid(pool) || pool == sigsafe__default_peek() ||
        pool == ss_load_acquire(&sigsafe__reserve_pool))
        return; /* the default and reserve pools live as long as the process */
    /* A signal bound to this pool falls back to the default pool. */
    for (unsigned s = 1; s < SS_NSIG; s++) {
        void *expect = pool;
        /* acq_rel: as the release store in sigsafe_bind_signal(). */
        (void)ss_cas_strong_acq_rel(&sigsafe__bound[s], &expect, NULL);
    }
    sigsafe__pool_unmap(pool);
}

void sigsafe_set_report_fd(int fd)
{
    /* relaxed: a setting read by later reports; no data hangs off it. */
    ss_store_relaxed(&sigsafe__report_fd, fd < 0 ? -1 : fd);
}
