/* SPDX-License-Identifier: MIT */
/*
 * Set-up (not AS-safe): sigsafe_init, pool create/destroy, the report fd.
 */
#include "internal.h"

int sigsafe_init(const sigsafe_pool_config *default_pool)
{
    int err = sigsafe__config_check(default_pool);
    if (err)
        return err;
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
