/* SPDX-License-Identifier: MIT */
/*
 * large: blocks over 16 KiB, from the large area's buddy tree (lib/large.c;
 * docs/design.md §1).  Each is whole pages with a guard page right after
 * its last usable byte; freed blocks are unmapped (a use after free
 * faults) and merge with their buddies again, so an emptied pool serves
 * its largest block; of two racing frees exactly one wins; and the tree
 * stays whole under threads and a handler that allocates on every
 * instruction the signal storm can reach.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static sigsafe_pool *make_pool(const char *name, size_t capacity,
                               unsigned flags)
{
    sigsafe_pool *pool = NULL;
    sigsafe_pool_config cfg = {.name = name, .capacity = capacity,
                               .flags = flags};
    ck_assert_int_eq(sigsafe_pool_create(&cfg, &pool), 0);
    return pool;
}

static size_t page_up(size_t n)
{
    size_t ps = st_page_size();
    return (n + ps - 1) / ps * ps;
}

/* Usable size, alignment and guard of a large block. */
START_TEST(whole_pages_and_a_guard)
{
    sigsafe_pool *pool = make_pool("large-shape", 8 * ST_MIB, 0);
    const size_t sizes[] = {16 * ST_KIB + 1, 20000, 65536, 100000, ST_MIB,
                            4 * ST_MIB};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = sigsafe_pool_alloc(pool, sizes[i]);
        ck_assert_ptr_nonnull(p);
        size_t u = sigsafe_usable_size(p);
        ck_assert_uint_eq(u, page_up(sizes[i]));
        ck_assert_uint_eq(st_uptr(p) % st_page_size(), 0);
        st_poke(p, 1);
        st_poke(p + u - 1, 1);
        ck_assert_msg(!st_readable(p + u), "no guard after %zu bytes", u);
        sigsafe_free(p);
        /* Unmapped at once: a use after free faults. */
        ck_assert(!st_readable(p));
    }
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* The permissions of the mapping that holds address a, as /proc/self/maps
 * shows them ("rw-p", "---p"), in perms[5]; 0 if no mapping holds it. */
static int maps_perms(const void *a, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
            (uintptr_t)a >= lo && (uintptr_t)a < hi)
            found = 1;
    }
    fclose(f);
    return found;
}

static void on_segv(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    _exit(info->si_code == SEGV_ACCERR ? 42 : 43);
}

/* A store at p in a forked child: the SIGSEGV's si_code, as an exit status
 * (42: SEGV_ACCERR, 43: another code, 0: no fault). */
static int child_store(unsigned char *p)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        st_poke(p, 1); /* no sanitizer between the store and the guard */
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Guard pages are PROT_NONE pages: a `---p` mapping, and a store there is
 * SEGV_ACCERR (not SEGV_MAPERR, as a page-table guard marker gives): after
 * a large block, and at the end of a zone of small blocks. */
START_TEST(guards_are_prot_none)
{
    sigsafe_pool *pool = make_pool("large-guard", 8 * ST_MIB, 0);
    unsigned char *p = sigsafe_pool_alloc(pool, 100 * ST_KIB);
    ck_assert_ptr_nonnull(p);
    unsigned char *g = p + sigsafe_usable_size(p);
    char perms[5];
    ck_assert(maps_perms(p, perms));
    ck_assert_str_eq(perms, "rw-p");
    ck_assert(maps_perms(g, perms));
    ck_assert_str_eq(perms, "---p");
    ck_assert_int_eq(child_store(g), 42);
    /* A new pool's first 16-byte span ends at its zone's guard. */
    unsigned char *s = NULL;
    for (int i = 0; i < 5000 && !s; i++) {
        unsigned char *q = sigsafe_pool_alloc(pool, 16);
        ck_assert_ptr_nonnull(q);
        if (!st_readable(q + 16))
            s = q;
    }
    ck_assert_ptr_nonnull(s);
    ck_assert(maps_perms(s + 16, perms));
    ck_assert_str_eq(perms, "---p");
    ck_assert_int_eq(child_store(s + 16), 42);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Fill the pool with small large blocks, free them all: the buddies merge
 * and the whole capacity is one block again; bytes_mapped follows. */
START_TEST(freed_buddies_merge)
{
    size_t cap = 4 * ST_MIB;
    sigsafe_pool *pool = make_pool("large-merge", cap, 0);
    static void *b[4096];
    int n = 0;
    while (n < 4096 && (b[n] = sigsafe_pool_alloc(pool, 17 * ST_KIB)) != NULL)
        n++;
    /* 20 KiB usable in a 32 KiB node: the area (8 MiB) holds 256 of them,
     * the capacity 204. */
    ck_assert_int_ge(n, (int)(cap / (20 * ST_KIB)));
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, cap / 2));
    size_t mapped_full = st_stats(pool).bytes_mapped;
    /* Free every other one first: no two free buddies yet. */
    for (int i = 0; i < n; i += 2)
        sigsafe_free(b[i]);
    for (int i = 1; i < n; i += 2)
        sigsafe_free(b[i]);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_lt(s.bytes_mapped, mapped_full);
    void *whole = sigsafe_pool_alloc(pool, cap);
    ck_assert_ptr_nonnull(whole);
    ck_assert_uint_eq(sigsafe_usable_size(whole), cap);
    ck_assert_ptr_null(sigsafe_pool_alloc(pool, 17 * ST_KIB));
    sigsafe_free(whole);
    ck_assert_uint_eq(st_stats(pool).bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* A pointer inside a live block is no block's start, even where a freed
 * smaller block once started (its word stays in the tree's leaves). */
START_TEST(interior_where_a_block_was)
{
    sigsafe_pool *pool = make_pool("large-interior", 8 * ST_MIB, 0);
    /* Leftmost first: two 32 KiB nodes side by side, then one node of
     * 256 KiB over both. */
    unsigned char *a = sigsafe_pool_alloc(pool, 20 * ST_KIB);
    unsigned char *b = sigsafe_pool_alloc(pool, 20 * ST_KIB);
    ck_assert(a && b);
    ck_assert_ptr_eq(b, a + 32 * ST_KIB);
    sigsafe_free(a);
    sigsafe_free(b);
    unsigned char *big = sigsafe_pool_alloc(pool, 200 * ST_KIB);
    ck_assert_ptr_eq(big, a);
    st_capture cap;
    st_capture_begin(&cap);
    ck_assert_uint_eq(sigsafe_usable_size(b), 0);
    sigsafe_free(b); /* b's old start, inside big */
    ck_assert_uint_eq(st_capture_lines(&cap), 1);
    ck_assert_ptr_nonnull(strstr(cap.buf, "not the start of a block"));
    sigsafe_free(big + 4096); /* not a leaf's start at all */
    ck_assert_uint_eq(st_capture_lines(&cap), 2);
    st_capture_end(&cap);
    ck_assert_uint_eq(sigsafe_usable_size(big), 200 * ST_KIB);
    st_poke(big + 200 * ST_KIB - 1, 1); /* big is intact */
    sigsafe_free(big);
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.rejected_frees, 2);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Two threads free one large block at once: one wins, one is rejected. */
static void *volatile race_block;
static atomic_int race_go;

static void *racer(void *arg)
{
    (void)arg;
    while (!atomic_load(&race_go))
        ;
    sigsafe_free(race_block);
    return NULL;
}

START_TEST(racing_double_free)
{
    sigsafe_pool *pool = make_pool("large-race", 8 * ST_MIB, 0);
    sigsafe_set_report_fd(-1);
    for (int r = 0; r < 200; r++) {
        race_block = sigsafe_pool_alloc(pool, 40 * ST_KIB);
        ck_assert_ptr_nonnull(race_block);
        atomic_store(&race_go, 0);
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, racer, NULL), 0);
        atomic_store(&race_go, 1);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
    }
    sigsafe_stats s = st_stats(pool);
    ck_assert_uint_eq(s.frees, 200);
    ck_assert_uint_eq(s.rejected_frees, 200);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    sigsafe_set_report_fd(2);
    sigsafe_pool_destroy(pool);
}
END_TEST

/* Threads allocate, fill, check and free large blocks of random sizes while
 * a signal storm's handler does the same on each of them: no block is ever
 * handed out twice (the pattern would break), and everything comes back. */
#define TORTURE_THREADS 3
static sigsafe_pool *tp;
static atomic_int t_stop;
static atomic_long t_bad, t_ops, t_handler_ops;

static int fill_check(unsigned char *p, size_t n, uint64_t seed)
{
    st_fill(p, n, seed);
    return st_check(p, n, seed) == SIZE_MAX;
}

static void storm_handler(int signo)
{
    (void)signo;
    uint64_t seed = (uint64_t)atomic_fetch_add(&t_handler_ops, 1) + 77;
    size_t n = 16 * ST_KIB + 1 + (size_t)(seed * 2654435761u % (200 * ST_KIB));
    unsigned char *p = sigsafe_pool_alloc(tp, n);
    if (p) {
        if (!fill_check(p, 64, seed) || !fill_check(p + n - 64, 64, seed))
            atomic_fetch_add(&t_bad, 1);
        sigsafe_free(p);
    }
}

static void *torturer(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    unsigned char *live[8] = {0};
    size_t len[8] = {0};
    while (!atomic_load(&t_stop)) {
        unsigned i = (unsigned)(st_rand(&rng) % 8);
        if (live[i]) {
            if (st_check(live[i], 64, (uint64_t)(uintptr_t)live[i]) != SIZE_MAX ||
                st_check(live[i] + len[i] - 64, 64,
                         (uint64_t)(uintptr_t)live[i]) != SIZE_MAX)
                atomic_fetch_add(&t_bad, 1);
            sigsafe_free(live[i]);
            live[i] = NULL;
        } else {
            len[i] = 16 * ST_KIB + 1 + (size_t)(st_rand(&rng) % (300 * ST_KIB));
            live[i] = sigsafe_pool_alloc(tp, len[i]);
            if (live[i]) {
                st_fill(live[i], 64, (uint64_t)(uintptr_t)live[i]);
                st_fill(live[i] + len[i] - 64, 64,
                        (uint64_t)(uintptr_t)live[i]);
            }
        }
        atomic_fetch_add(&t_ops, 1);
    }
    for (unsigned i = 0; i < 8; i++)
        sigsafe_free(live[i]);
    return NULL;
}

START_TEST(threads_and_handlers)
{
    tp = make_pool("large-torture", 16 * ST_MIB, 0);
    st_install_handler(SIGUSR1, storm_handler, 0);
    pthread_t t[TORTURE_THREADS];
    for (int i = 0; i < TORTURE_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, torturer,
                                        (void *)(uintptr_t)(i + 1)), 0);
    long long end = st_now_ms() + 1500;
    while (st_now_ms() < end)
        for (int i = 0; i < TORTURE_THREADS; i++)
            pthread_kill(t[i], SIGUSR1);
    atomic_store(&t_stop, 1);
    for (int i = 0; i < TORTURE_THREADS; i++)
        pthread_join(t[i], NULL);
    signal(SIGUSR1, SIG_IGN);
    sigsafe_stats s = st_stats(tp);
    printf("threads_and_handlers: %ld operations, %ld in handlers, %ld bad\n",
           atomic_load(&t_ops), atomic_load(&t_handler_ops),
           atomic_load(&t_bad));
    ck_assert_int_eq(atomic_load(&t_bad), 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.allocs, s.frees);
    /* Everything merged back: the whole capacity is one block again. */
    void *whole = sigsafe_pool_alloc(tp, 16 * ST_MIB);
    ck_assert_ptr_nonnull(whole);
    sigsafe_free(whole);
    sigsafe_pool_destroy(tp);
}
END_TEST

static Suite *large_suite(void)
{
    Suite *s = suite_create("large");
    TCase *tc = tcase_create("buddy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, whole_pages_and_a_guard);
    tcase_add_test(tc, guards_are_prot_none);
    tcase_add_test(tc, freed_buddies_merge);
    tcase_add_test(tc, interior_where_a_block_was);
    tcase_add_test(tc, racing_double_free);
    tcase_add_test(tc, threads_and_handlers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return st_run_suite(large_suite());
}
