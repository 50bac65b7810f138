/* SPDX-License-Identifier: MIT */
/*
 * watch: the guard component (sigsafe_guard_watch).  Each fault happens in
 * a child forked by the test; the parent reads what the child wrote to the
 * report fd (a pipe) and how it ended.  The line must name the pool, the
 * kind, the block, its size and the offset of the fault, and the crash must
 * then go on exactly as it would have without the watch.
 */
#include "support.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sigsafe_guard.h"


typedef struct outcome {
    int signo;      /* the signal that ended the child, or 0 */
    int code;       /* its exit status when it exited */
    char out[4096]; /* what it wrote on the report fd */
} outcome;

typedef void (*scenario)(int fd, void *arg);

/* Run fn in a child with the report fd on a pipe; collect how it ended. */
static outcome run_child(scenario fn, void *arg)
{
    outcome o;
    memset(&o, 0, sizeof o);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        sigsafe_set_report_fd(p[1]);
        fn(p[1], arg);
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof o.out - 1 &&
           (r = read(p[0], o.out + n, sizeof o.out - 1 - n)) > 0)
        n += (size_t)r;
    close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    o.signo = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    o.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

/* The value of `key=` in the guard line, as a string. */
static const char *field(const outcome *o, const char *key, char *buf,
                         size_t len)
{
    const char *line = strstr(o->out, "sigsafe: guard: ");
    ck_assert_msg(line != NULL, "no guard line in: %s", o->out);
    const char *at = strstr(line, key);
    ck_assert_msg(at != NULL, "no %s in: %s", key, line);
    at += strlen(key);
    size_t n = 0;
    while (at[n] && at[n] != ' ' && at[n] != '\n' && n + 1 < len) {
        buf[n] = at[n];
        n++;
    }
    buf[n] = 0;
    return buf;
}

static void expect_line(const outcome *o, const char *pool, const char *kind,
                        const void *block, size_t size, long offset)
{
    char buf[64], want[64];
    int lines = 0;
    for (const char *c = o->out; *c; c++)
        lines += *c == '\n';
    ck_assert_msg(lines == 1, "want exactly one line, got: %s", o->out);
    snprintf(want, sizeof want, "\"%s\"", pool);
    ck_assert_str_eq(field(o, "pool=", buf, sizeof buf), want);
    ck_assert_str_eq(field(o, "kind=", buf, sizeof buf), kind);
    snprintf(want, sizeof want, "0x%lx", (unsigned long)(uintptr_t)block);
    ck_assert_str_eq(field(o, "block=", buf, sizeof buf), want);
    snprintf(want, sizeof want, "%zu", size);
    ck_assert_str_eq(field(o, "size=", buf, sizeof buf), want);
    snprintf(want, sizeof want, "%ld", offset);
    ck_assert_str_eq(field(o, "offset=", buf, sizeof buf), want);
    ck_assert_int_eq(o->signo, SIGSEGV);
}

/* Shared between a scenario and the parent's check: set before fork. */
static sigsafe_pool *pool;
static unsigned char *block;
static size_t block_size;

static sigsafe_pool *make(const char *name, size_t cap, unsigned flags)
{
    sigsafe_pool *p = NULL;
    sigsafe_pool_config cfg = {name, cap, flags};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &p), 0);
    return p;
}

static void poke(int fd, void *at)
{
    (void)fd;
    ck_assert_int_eq(sigsafe_guard_watch(), 0);
    st_poke(at, 1);
}

/* --------------------------------------------------------------- kinds */

START_TEST(guard_each_overflow)
{
    pool = make("each", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    block = sigsafe_pool_alloc(pool, 40);
    block_size = sigsafe_usable_size(block);
    ck_assert_ptr_nonnull(block);
    outcome o = run_child(poke, block + block_size);
    expect_line(&o, "each", "overflow", block, block_size, (long)block_size);
}
END_TEST

START_TEST(guard_each_underflow)
{
    pool = make("each", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    void *before = sigsafe_pool_alloc(pool, 40); /* a block before ours */
    ck_assert_ptr_nonnull(before);
    block = sigsafe_pool_alloc(pool, 40);
    block_size = sigsafe_usable_size(block);
    outcome o = run_child(poke, block - 1);
    expect_line(&o, "each", "underflow", block, block_size, -1);
}
END_TEST

static void use_after_free(int fd, void *arg)
{
    (void)arg;
    sigsafe_free(block);
    poke(fd, block + 8);
}

START_TEST(guard_each_use_after_free)
{
    pool = make("each", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    block = sigsafe_pool_alloc(pool, 100);
    block_size = sigsafe_usable_size(block);
    outcome o = run_child(use_after_free, NULL);
    expect_line(&o, "each", "use-after-free", block, block_size, 8);
}
END_TEST

START_TEST(span_end_overflow)
{
    ck_assert_uint_eq(st_page_size(), 4096);
    pool = make("spans", 4 * ST_MIB, 0);
    /* Blocks are packed against their span's end, and the first span a
     * zone carves ends at the zone's guard: a new pool's first 16-byte
     * span does.  Its last block is the one whose end is unreadable. */
    for (int i = 0; i < 5000; i++) {
        block = sigsafe_pool_alloc(pool, 16);
        ck_assert_ptr_nonnull(block);
        if (!st_readable(block + 16))
            break;
    }
    ck_assert_uint_eq((uintptr_t)(block + 16) & 0xFFFF, 0);
    ck_assert(!st_readable(block + 16));
    outcome o = run_child(poke, block + 16);
    expect_line(&o, "spans", "span-end", block, 16, 16);
}
END_TEST

START_TEST(large_block_overflow)
{
    pool = make("large", 4 * ST_MIB, 0);
    block = sigsafe_pool_alloc(pool, 100 * ST_KIB);
    block_size = sigsafe_usable_size(block);
    outcome o = run_child(poke, block + block_size);
    expect_line(&o, "large", "overflow", block, block_size, (long)block_size);
}
END_TEST

/* ------------------------------------------------------ the crash goes on */

/* The fd the user's handler writes its mark to: a copy of the pipe, high
 * enough to be clear of the files Check keeps open (its message file can
 * be fd 3). */
#define USERS_FD 63

static void users_handler(int sig)
{
    (void)sig;
    static const char msg[] = "users handler ran\n";
    /* The report fd is the pipe: write our mark after the guard line. */
    ssize_t r = write(USERS_FD, msg, sizeof msg - 1);
    (void)r;
    _exit(42);
}

static void with_users_handler(int fd, void *at)
{
    ck_assert_int_ne(dup2(fd, USERS_FD), -1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = users_handler;
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    poke(fd, at);
}

START_TEST(users_handler_still_runs)
{
    pool = make("each", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    block = sigsafe_pool_alloc(pool, 64);
    block_size = sigsafe_usable_size(block);
    outcome o = run_child(with_users_handler, block + block_size);
    ck_assert_int_eq(o.signo, 0);
    ck_assert_int_eq(o.code, 42);
    const char *line = strstr(o.out, "kind=overflow");
    const char *mark = strstr(o.out, "users handler ran");
    ck_assert_msg(line && mark && line < mark,
                  "want the guard line, then the handler's mark: %s", o.out);
}
END_TEST

static unsigned char *fixable;

static void fixer(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    if ((unsigned char *)info->si_addr == fixable)
        mprotect(fixable, 4096, PROT_READ | PROT_WRITE);
    else
        signal(sig, SIG_DFL); /* not ours: die of it */
}

static void recover_then_overflow(int fd, void *at)
{
    fixable = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(fixable, MAP_FAILED);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fixer;
    sa.sa_flags = SA_SIGINFO;
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    ck_assert_int_eq(sigsafe_guard_watch(), 0);
    st_poke(fixable, 1); /* recovered by the handler found at watch */
    (void)fd;
    st_poke(at, 1);      /* the watch is still there: a line, then death */
}

START_TEST(watch_survives_a_recovered_fault)
{
    pool = make("each", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    block = sigsafe_pool_alloc(pool, 64);
    block_size = sigsafe_usable_size(block);
    outcome o = run_child(recover_then_overflow, block + block_size);
    expect_line(&o, "each", "overflow", block, block_size, (long)block_size);
}
END_TEST

static void fault_elsewhere(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    unsigned char *page =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    ck_assert_int_eq(sigsafe_guard_watch(), 0);
    st_poke(page, 1);
}

START_TEST(fault_outside_pools_untouched)
{
    (void)make("bystander", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    outcome o = run_child(fault_elsewhere, NULL);
    ck_assert_int_eq(o.signo, SIGSEGV);
    ck_assert_msg(o.out[0] == 0, "no line expected, got: %s", o.out);
}
END_TEST

static void sent_signal(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    ck_assert_int_eq(sigsafe_guard_watch(), 0);
    kill(getpid(), SIGSEGV);
    _exit(7); /* must not be reached: SIGSEGV's default action kills */
}

START_TEST(sent_sigsegv_untouched)
{
    outcome o = run_child(sent_signal, NULL);
    ck_assert_int_eq(o.signo, SIGSEGV);
    ck_assert_msg(o.out[0] == 0, "no line expected, got: %s", o.out);
}
END_TEST

START_TEST(unwatch_restores)
{
    struct sigaction mine, now;
    memset(&mine, 0, sizeof mine);
    mine.sa_handler = users_handler;
    ck_assert_int_eq(sigaction(SIGSEGV, &mine, NULL), 0);
    ST_ASSERT_ERRNO_UNCHANGED(ck_assert_int_eq(sigsafe_guard_watch(), 0));
    ck_assert_int_eq(sigsafe_guard_watch(), 0); /* a second call: no-op */
    sigaction(SIGSEGV, NULL, &now);
    ck_assert_ptr_ne((void *)now.sa_handler, (void *)users_handler);
    ST_ASSERT_ERRNO_UNCHANGED(ck_assert_int_eq(sigsafe_guard_unwatch(), 0));
    sigaction(SIGSEGV, NULL, &now);
    ck_assert_ptr_eq((void *)now.sa_handler, (void *)users_handler);
}
END_TEST

/* ------------------------------------------------------------- limits */

START_TEST(guard_each_capacity_limit)
{
    pool = make("tight", 64 * ST_KIB, SIGSAFE_POOL_GUARD_EACH);
    int n = 0;
    while (n < 1000 && sigsafe_pool_alloc(pool, 100))
        n++;
    ck_assert_int_eq(n, 16); /* 16 whole pages fit 64 KiB */
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, 100));
    ck_assert_uint_ge(st_stats(pool).failed_allocs, 2);
}
END_TEST

START_TEST(guard_each_vma_limit)
{
    /* Each GUARD_EACH block is its pages and a guard: two mappings.  A big
     * pool caps its live blocks (8192) so that it never takes more than a
     * quarter of the default vm.max_map_count: it runs out of blocks
     * before its capacity, and says so with NULL, and the process keeps
     * mappings to spare. */
    size_t maps0 = st_maps_lines();
    pool = make("vmas", 1024 * ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    ck_assert_uint_le(st_maps_lines() - maps0, 64);
    int n = 0;
    while (n < 100000 && sigsafe_pool_alloc(pool, 4000))
        n++;
    ck_assert_int_eq(n, 8192);
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, 4000));
    ck_assert_uint_lt(st_stats(pool).bytes_in_use, 1024 * ST_MIB);
    ck_assert_uint_le(st_maps_lines() - maps0, 64 + 2 * 8192);
}
END_TEST

Suite *watch_suite(void)
{
    Suite *s = suite_create("watch");
    TCase *tc = tcase_create("kinds");
    tcase_add_test(tc, guard_each_overflow);
    tcase_add_test(tc, guard_each_underflow);
    tcase_add_test(tc, guard_each_use_after_free);
    tcase_add_test(tc, span_end_overflow);
    tcase_add_test(tc, large_block_overflow);
    suite_add_tcase(s, tc);
    tc = tcase_create("chain");
    tcase_add_test(tc, users_handler_still_runs);
    tcase_add_test(tc, watch_survives_a_recovered_fault);
    tcase_add_test(tc, fault_outside_pools_untouched);
    tcase_add_test(tc, sent_sigsegv_untouched);
    tcase_add_test(tc, unwatch_restores);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, guard_each_capacity_limit);
    tcase_add_test(tc, guard_each_vma_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(watch_suite());
}
