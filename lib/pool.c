/* SPDX-License-Identifier: MIT */
/*
 * Set-up (not AS-safe): sigsafe_init, pool create/destroy, the report fd.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"
#include "sys.h"
#include "tcache.h"

/*
 * Threads and forks.  In a fork child, the other threads' cache records
 * are salvaged at once (sigsafe__tc_after_fork()).  A thread that made a
 * set-up call gives its cached blocks back when it exits: a pthread key's
 * destructor runs sigsafe__tc_thread_exit().  Both are registered by the
 * set-up calls (none is AS-safe).  Records of threads that never made
 * one come back when a new thread meets their TLS block, in a fork child,
 * or when a pool runs short and the kernel says their thread is gone (see
 * tcache.h).
 */
#if SS_TC_ENABLED
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static int exit_key_ok;

static void at_thread_exit(void *unused)
{
    (void)unused;
    sigsafe__tc_thread_exit(); /* touches no errno */
}

static void watch_init(void)
{
    (void)pthread_atfork(NULL, NULL, sigsafe__tc_after_fork);
    exit_key_ok = pthread_key_create(&exit_key, at_thread_exit) == 0;
}
#endif

/* Called by every set-up function, on the thread that calls it. */
void sigsafe__watch_thread(void)
{
#if SS_TC_ENABLED
    int saved = errno;
    (void)pthread_once(&exit_once, watch_init);
    /* Any non-NULL value: the destructor runs only for those. */
    if (exit_key_ok && !pthread_getspecific(exit_key))
        (void)pthread_setspecific(exit_key, &exit_key);
    errno = saved;
#endif
}

int sigsafe_init(const sigsafe_pool_config *default_pool)
{
    int err = sigsafe__config_check(default_pool);
    if (err)
        return err;
    sigsafe__watch_thread();
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
    sigsafe__watch_thread();
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
    /* A thread exiting now may be scanning this pool for its records
     * (sigsafe__tc_thread_exit()): unlist the pool, then wait until no
     * scan that could still see it is running.  seq_cst: the removal and
     * this load, and the exiting thread's count and registry loads, are
     * in one total order, so either we see it counted or it sees the pool
     * gone; and the load acquires its release decrement. */
    sigsafe__registry_remove(pool);
#if SS_TC_ENABLED
    while (ss_load_seq_cst(&sigsafe__tc_exiting))
        (void)sigsafe__sys_sched_yield();
#endif
    sigsafe__pool_unmap(pool);
}

void sigsafe_set_report_fd(int fd)
{
    /* relaxed: a setting read by later reports; no data hangs off it. */
    ss_store_relaxed(&sigsafe__report_fd, fd < 0 ? -1 : fd);
}
