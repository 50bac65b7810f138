/* SPDX-License-Identifier: MIT */
/*
 * recover: guard-page faults that the program recovers from, in the test's
 * own process.  check_watch and check_guard let each fault kill a child, as
 * a crash would; here a SIGSEGV handler installed before the watch jumps
 * back after every fault, so one process sees every kind of fault in turn:
 * the watch names each (and keeps watching), and a GUARD_EACH pool hands a
 * quarantined block out again, its pages readable once more.
 */
#include "support.h"

#include <setjmp.h>
#include <stdio.h>

#include "sigsafe_guard.h"

static sigjmp_buf back;
static volatile sig_atomic_t faults;

static void recover(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)info;
    (void)ctx;
    faults++;
    siglongjmp(back, 1);
}

static void install_recover(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = recover;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
}

/* Write a byte at p; 1 if that faulted (and we came back), else 0. */
static int faults_at(void *p)
{
    if (sigsetjmp(back, 1) == 0) {
        st_poke(p, 1);
        return 0;
    }
    return 1;
}

static sigsafe_pool *make(const char *name, size_t cap, unsigned flags)
{
    sigsafe_pool *p = NULL;
    sigsafe_pool_config cfg = {name, cap, flags};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &p), 0);
    return p;
}

/* The one new report line must name this kind, block and offset. */
static void expect_line(st_capture *c, size_t *seen, const char *kind,
                        const void *block, long offset)
{
    size_t lines = st_capture_lines(c);
    ck_assert_msg(lines == *seen + 1, "want one new line, have %zu: %s",
                  lines - *seen, c->buf);
    *seen = lines;
    const char *last = c->buf;
    for (const char *nl; (nl = strchr(last, '\n')) != NULL && nl[1];)
        last = nl + 1;
    char want[96];
    snprintf(want, sizeof want, "kind=%s ", kind);
    ck_assert_msg(strstr(last, want) != NULL, "want %s in: %s", want, last);
    snprintf(want, sizeof want, " block=0x%lx ",
             (unsigned long)(uintptr_t)block);
    ck_assert_msg(strstr(last, want) != NULL, "want %s in: %s", want, last);
    snprintf(want, sizeof want, " offset=%ld\n", offset);
    ck_assert_msg(strstr(last, want) != NULL, "want %s in: %s", want, last);
}

/* Every kind of guard fault, one after another, in this process. */
START_TEST(every_kind_recovered)
{
    install_recover();
    sigsafe_pool *each = make("rec-each", ST_MIB, SIGSAFE_POOL_GUARD_EACH);
    sigsafe_pool *plain = make("rec-plain", 4 * ST_MIB, 0);
    static st_capture cap;
    st_capture_begin(&cap);
    ck_assert_int_eq(sigsafe_guard_watch(), 0);
    size_t seen = 0;

    unsigned char *b = sigsafe_pool_alloc(each, 40);
    size_t n = sigsafe_usable_size(b);
    ck_assert(faults_at(b + n));
    expect_line(&cap, &seen, "overflow", b, (long)n);
    ck_assert(faults_at(b - 1));
    expect_line(&cap, &seen, "underflow", b, -1);
    unsigned char *f = sigsafe_pool_alloc(each, 100);
    sigsafe_free(f);
    ck_assert(faults_at(f + 10));
    expect_line(&cap, &seen, "use-after-free", f, 10);

    unsigned char *large = sigsafe_pool_alloc(plain, 20 * ST_KIB);
    n = sigsafe_usable_size(large);
    ck_assert(faults_at(large + n));
    expect_line(&cap, &seen, "overflow", large, (long)n);

    /* The last block of a span ends at the span's guard page. */
    unsigned char *s = NULL;
    for (int i = 0; i < 100000 && !s; i++) {
        unsigned char *p = sigsafe_pool_alloc(plain, 4000);
        ck_assert_ptr_nonnull(p);
        if (!st_readable(p + sigsafe_usable_size(p)))
            s = p;
    }
    ck_assert_ptr_nonnull(s);
    n = sigsafe_usable_size(s);
    ck_assert(faults_at(s + n));
    expect_line(&cap, &seen, "span-end", s, (long)n);

    /* A sent SIGSEGV is no fault: handed on, never named.  (A fault
     * outside every pool is libsigsegv's to refuse: check_watch.) */
    if (sigsetjmp(back, 1) == 0)
        raise(SIGSEGV);
    ck_assert_uint_eq(st_capture_lines(&cap), seen);
    ck_assert_int_eq(faults, 6);
    st_capture_end(&cap);
}
END_TEST

/* A GUARD_EACH block freed, faulted on, and handed out again: its pages
 * are lifted out of quarantine. */
START_TEST(quarantined_block_reused)
{
    install_recover();
    sigsafe_pool *each = make("rec-reuse", 64 * ST_KIB,
                              SIGSAFE_POOL_GUARD_EACH);
    enum { MAX = 64 };
    unsigned char *b[MAX];
    int n = 0;
    while (n < MAX && (b[n] = sigsafe_pool_alloc(each, 4096)) != NULL)
        n++;
    ck_assert_int_gt(n, 1);
    ck_assert_int_lt(n, MAX); /* every slot is taken */
    unsigned char *gone = b[n / 2];
    sigsafe_free(gone);
    ck_assert(faults_at(gone));
    unsigned char *again = sigsafe_pool_alloc(each, 4096);
    ck_assert_ptr_eq(again, gone); /* the only free slot */
    ck_assert(!faults_at(again));
    ck_assert(!faults_at(again + 4095));
    memset(again, 3, 4096);
    ck_assert_int_eq(faults, 1);
    for (int i = 0; i < n; i++)
        sigsafe_free(b[i]);
    sigsafe_pool_destroy(each);
}
END_TEST

Suite *recover_suite(void)
{
    Suite *s = suite_create("recover");
    TCase *tc = tcase_create("recover");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, every_kind_recovered);
    tcase_add_test(tc, quarantined_block_reused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(recover_suite());
}
