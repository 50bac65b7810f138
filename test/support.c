/* SPDX-License-Identifier: MIT */
/*
 * Test support (set-up side, except the pattern and PRNG functions, which
 * only touch memory and are called from test signal handlers).
 */
#include "support.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ST_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define ST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ST_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ST_ASAN 1
#endif

#if defined(__clang__)
#define ST_NO_SANITIZE                                                       \
    __attribute__((noinline, no_sanitize("address", "thread", "undefined")))
#else
#define ST_NO_SANITIZE                                                       \
    __attribute__((noinline, no_sanitize_address, no_sanitize_thread,        \
                   no_sanitize_undefined))
#endif

/* ------------------------------------------------------------------ stats */

sigsafe_stats st_stats(const sigsafe_pool *pool)
{
    sigsafe_stats s;
    memset(&s, 0xEE, sizeof(s));
    ck_assert_ptr_nonnull(pool);
    int rc = sigsafe_pool_stats(pool, &s);
    ck_assert_msg(rc == 0, "sigsafe_pool_stats returned %d", rc);
    return s;
}

sigsafe_stats st_default_stats(void)
{
    sigsafe_pool *p = sigsafe_default_pool();
    ck_assert_msg(p != NULL, "sigsafe_default_pool() returned NULL");
    return st_stats(p);
}

/* ---------------------------------------------------- compiler barriers */

__attribute__((noinline)) void *st_launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

__attribute__((noinline)) size_t st_size(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

__attribute__((noinline)) uintptr_t st_uptr(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    __asm__ volatile("" : "+r"(u));
    return u;
}

/* ------------------------------------------------------- block patterns */

static inline unsigned char pattern_byte(uintptr_t base, uint64_t seed,
                                         size_t i)
{
    uint64_t x = (uint64_t)base * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 29;
    return (unsigned char)(x + i * 0x2Bu + (i >> 8));
}

void st_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte((uintptr_t)p, seed, i);
}

size_t st_check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte((uintptr_t)p, seed, i))
            return i;
    return SIZE_MAX;
}

size_t st_check_moved(const void *p, size_t n, uintptr_t old_base,
                      uint64_t seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(old_base, seed, i))
            return i;
    return SIZE_MAX;
}

#define SPARSE_EDGE 256
#define SPARSE_STRIDE 512

static int sparse_index(size_t i, size_t n)
{
    return i < SPARSE_EDGE || i + SPARSE_EDGE >= n || i % SPARSE_STRIDE == 0;
}

void st_fill_sparse(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n;) {
        b[i] = pattern_byte((uintptr_t)p, seed, i);
        if (i >= SPARSE_EDGE && i + SPARSE_EDGE < n) {
            size_t next = (i / SPARSE_STRIDE + 1) * SPARSE_STRIDE;
            i = next + SPARSE_EDGE < n ? next : n - SPARSE_EDGE;
        } else {
            i++;
        }
    }
}

size_t st_check_sparse(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n;) {
        if (sparse_index(i, n) &&
            b[i] != pattern_byte((uintptr_t)p, seed, i))
            return i;
        if (i >= SPARSE_EDGE && i + SPARSE_EDGE < n) {
            size_t next = (i / SPARSE_STRIDE + 1) * SPARSE_STRIDE;
            i = next + SPARSE_EDGE < n ? next : n - SPARSE_EDGE;
        } else {
            i++;
        }
    }
    return SIZE_MAX;
}

size_t st_first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return i;
    return SIZE_MAX;
}

uint64_t st_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x2545F4914F6CDD1Dull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

size_t st_rand_size(uint64_t *state, size_t max_big)
{
    uint64_t r = st_rand(state);
    if (max_big > 4096 && r % 16 == 0)
        return 4097 + (size_t)((r >> 8) % (max_big - 4096));
    return (size_t)((r >> 8) % 4097);
}

/* ------------------------------------------------------- memory probing */

/* Memcheck sees every access: with the library's valgrind hooks on, a
 * deliberate access to a free block or a guard page (and a probe of one)
 * is hidden from its error reports. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ST_MEMCHECK_OFF() VALGRIND_DISABLE_ERROR_REPORTING
#define ST_MEMCHECK_ON() VALGRIND_ENABLE_ERROR_REPORTING
#endif
#endif
#ifndef ST_MEMCHECK_OFF
#define ST_MEMCHECK_OFF() ((void)0)
#define ST_MEMCHECK_ON() ((void)0)
#endif

int st_readable(const void *p)
{
    int fds[2];
    if (pipe(fds) != 0)
        ck_abort_msg("pipe: %s", strerror(errno));
    ST_MEMCHECK_OFF(); /* a probe, not a use of the byte */
    long r = syscall(SYS_write, fds[1], p, 1);
    int e = errno;
    ST_MEMCHECK_ON();
    close(fds[0]);
    close(fds[1]);
    if (r == 1)
        return 1;
    ck_assert_msg(e == EFAULT, "probe write failed with %s", strerror(e));
    return 0;
}

ST_NO_SANITIZE void st_poke(void *p, unsigned char v)
{
    ST_MEMCHECK_OFF();
    *(volatile unsigned char *)p = v;
    ST_MEMCHECK_ON();
}

ST_NO_SANITIZE unsigned char st_peek(const void *p)
{
    ST_MEMCHECK_OFF();
    unsigned char v = *(const volatile unsigned char *)p;
    ST_MEMCHECK_ON();
    return v;
}

size_t st_page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    ck_assert_msg(ps > 0, "sysconf(_SC_PAGESIZE) failed");
    return (size_t)ps;
}

static char *read_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_msg(f != NULL, "cannot open /proc/self/maps");
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

size_t st_maps_lines(void)
{
    char *m = read_maps();
    size_t n = 0;
    for (char *c = m; *c; c++)
        n += *c == '\n';
    free(m);
    return n;
}

int st_maps_contains(const char *needle)
{
    char *m = read_maps();
    int found = strstr(m, needle) != NULL;
    free(m);
    return found;
}

int st_kernel_names_vmas(void)
{
    size_t ps = st_page_size();
    void *p = mmap(NULL, ps, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
    int ok = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, ps,
                   (unsigned long)"st-probe") == 0;
    munmap(p, ps);
    return ok;
}

/* -------------------------------------------------------- report capture */

void st_capture_begin(st_capture *c)
{
    int fds[2];
    ck_assert_msg(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2: %s",
                  strerror(errno));
    /* Best effort: room for many report lines before anyone drains. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    c->rfd = fds[0];
    c->wfd = fds[1];
    c->len = 0;
    c->buf[0] = '\0';
    sigsafe_set_report_fd(c->wfd);
}

size_t st_capture_read(st_capture *c)
{
    for (;;) {
        size_t room = sizeof(c->buf) - 1 - c->len;
        if (room == 0) {
            /* Keep counting lines correctly: drop the oldest half. */
            size_t keep = c->len / 2;
            memmove(c->buf, c->buf + c->len - keep, keep);
            c->len = keep;
            continue;
        }
        ssize_t n = read(c->rfd, c->buf + c->len, room);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    c->buf[c->len] = '\0';
    return c->len;
}

size_t st_capture_lines(st_capture *c)
{
    st_capture_read(c);
    size_t n = 0;
    for (size_t i = 0; i < c->len; i++)
        n += c->buf[i] == '\n';
    return n;
}

void st_capture_reset(st_capture *c)
{
    st_capture_read(c);
    c->len = 0;
    c->buf[0] = '\0';
}

void st_capture_end(st_capture *c)
{
    sigsafe_set_report_fd(2);
    close(c->rfd);
    close(c->wfd);
    c->rfd = c->wfd = -1;
}

/* ------------------------------------------------------------ signal storm */

static void set_itimer(int which, long us)
{
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    it.it_interval.tv_sec = us / 1000000;
    it.it_interval.tv_usec = us % 1000000;
    it.it_value = it.it_interval;
    ck_assert_msg(setitimer(which, &it, NULL) == 0, "setitimer: %s",
                  strerror(errno));
}

static void *storm_main(void *arg)
{
    st_storm *s = arg;
    size_t round = 0;
    while (!atomic_load(&s->stop)) {
        for (size_t t = 0; t < s->cfg.ntargets; t++) {
            int signo = s->cfg.kill_signo[(round + t) % 2];
            if (signo == 0)
                signo = s->cfg.kill_signo[0];
            if (signo == 0)
                continue;
            if (pthread_kill(s->targets[t], signo) == 0)
                atomic_fetch_add(&s->kills, 1);
        }
        round++;
        if (s->cfg.kill_interval_us > 0) {
            struct timespec ts = {0, s->cfg.kill_interval_us * 1000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
    return NULL;
}

void st_storm_start(st_storm *s, const st_storm_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    ck_assert_msg(cfg->ntargets <= 16, "too many storm targets");
    for (size_t i = 0; i < cfg->ntargets; i++)
        s->targets[i] = cfg->targets[i];
    atomic_init(&s->stop, false);
    atomic_init(&s->kills, 0);

    /* The kill thread must not take the storm's signals itself. */
    sigset_t all, old;
    sigemptyset(&all);
    sigaddset(&all, SIGPROF);
    sigaddset(&all, SIGALRM);
    sigaddset(&all, SIGUSR1);
    sigaddset(&all, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    if (cfg->ntargets > 0)
        rc = pthread_create(&s->thread, NULL, storm_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ck_assert_msg(rc == 0, "pthread_create: %s", strerror(rc));
    s->running = cfg->ntargets > 0;

    if (cfg->prof_interval_us > 0)
        set_itimer(ITIMER_PROF, cfg->prof_interval_us);
    if (cfg->real_interval_us > 0)
        set_itimer(ITIMER_REAL, cfg->real_interval_us);
}

unsigned long st_storm_stop(st_storm *s)
{
    if (s->cfg.prof_interval_us > 0)
        set_itimer(ITIMER_PROF, 0);
    if (s->cfg.real_interval_us > 0)
        set_itimer(ITIMER_REAL, 0);
    atomic_store(&s->stop, true);
    if (s->running)
        pthread_join(s->thread, NULL);
    s->running = 0;
    return atomic_load(&s->kills);
}

void st_install_handler(int signo, void (*fn)(int), int extra_flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | extra_flags;
    ck_assert_msg(sigaction(signo, &sa, NULL) == 0, "sigaction(%d): %s",
                  signo, strerror(errno));
}

long long st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void st_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
}

int st_under_tsan(void)
{
#ifdef ST_TSAN
    return 1;
#else
    return 0;
#endif
}

int st_under_asan(void)
{
#ifdef ST_ASAN
    return 1;
#else
    return 0;
#endif
}

int st_under_emulator(void)
{
    const char *emu = getenv("SIGSAFE_TEST_EMULATOR");
    return emu != NULL && emu[0] != '\0';
}

/* ------------------------------------------------------------------ main */

/*
 * The library's test hook for the layout of pools that may make no system
 * call: everything made accessible at create.  Weak, so that the suites
 * still link if the hook goes away; SIGSAFE_TEST_MAP_AT_CREATE=1 in the
 * environment turns it on for every test of the run.
 */
extern int sigsafe__test_map_at_create __attribute__((weak));

int st_run_suite(Suite *s)
{
    const char *force = getenv("SIGSAFE_TEST_MAP_AT_CREATE");
    if (force != NULL && strcmp(force, "1") == 0) {
        if (&sigsafe__test_map_at_create == NULL) {
            fprintf(stderr, "SIGSAFE_TEST_MAP_AT_CREATE: the library has "
                            "no sigsafe__test_map_at_create hook\n");
            return 77;
        }
        sigsafe__test_map_at_create = 1;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
